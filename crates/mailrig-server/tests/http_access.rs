//! Cross-site safety of the HTTP API, shown with curl the way each attack
//! reaches a user's machine: a web page's `text/plain` or form POST of a
//! fault rule (415), a DNS-rebinding page whose name resolves to 127.0.0.1
//! (`curl --resolve evil.test:PORT:127.0.0.1`, 403), a cross-origin POST
//! that a page makes without a body (403), and — with a token set — any
//! request without it (401). Each test also shows that the legitimate call
//! still works. Mail goes in with curl's own SMTP client. A missing curl
//! fails the test with a hint; it never skips.

use mailrig_server::MockServer;
use serde_json::Value;
use tokio::process::Command;

const KANZLEI: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../mailrig-core/catalog/kanzlei.toml"
);

const RULE: &str =
    r#"{"name": "no-user03", "stage": "rcpt", "action": "reject", "mailbox": "user03"}"#;

async fn start(
    configure: impl FnOnce(mailrig_server::MockServerBuilder) -> mailrig_server::MockServerBuilder,
) -> MockServer {
    let builder = MockServer::builder().scenario_file(KANZLEI).unwrap();
    configure(builder).start().await.unwrap()
}

/// What curl saw: status, response headers (lower-case names) and body.
struct Seen {
    status: u16,
    headers: String,
    body: String,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// Asserts this status and a JSON `error` containing every needle.
    fn refused(&self, status: u16, needles: &[&str]) -> &Self {
        assert_eq!(self.status, status, "{}\n{}", self.headers, self.body);
        let msg = self.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        for n in needles {
            assert!(msg.contains(n), "{msg:?} lacks {n:?}");
        }
        self
    }

    fn header(&self, name: &str) -> Vec<String> {
        self.headers
            .lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }
}

/// Runs curl with `args` (the URL among them); `-i` gives the headers.
async fn curl(args: &[&str]) -> Seen {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10"])
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!("this test needs `curl` on PATH ({e}): run `bash scripts/install-test-deps.sh`")
        });
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text}"));
    Seen {
        status,
        headers: head.to_string(),
        body: body.to_string(),
    }
}

fn url(server: &MockServer, path: &str) -> String {
    format!("http://{}{path}", server.http_addr())
}

/// Sends one message to `to` with curl's SMTP client.
async fn send_mail(server: &MockServer, to: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mail.eml");
    std::fs::write(
        &file,
        format!("From: a@extern.test\r\nTo: {to}\r\nSubject: private\r\n\r\nconfidential\r\n"),
    )
    .unwrap();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .arg(format!("smtp://{}", server.smtp_addr()))
        .args([
            "--mail-from",
            "a@extern.test",
            "--mail-rcpt",
            to,
            "--upload-file",
        ])
        .arg(&file)
        .output()
        .await
        .expect("curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn rules_posted_as_text_plain_or_a_form_are_refused_json_and_toml_work() {
    let server = start(|b| b).await;
    let faults = url(&server, "/api/v1/faults");
    // What a <form enctype="text/plain"> or fetch(..., {mode: "no-cors"}) sends.
    curl(&[
        "-H",
        "Content-Type: text/plain",
        "--data-binary",
        RULE,
        &faults,
    ])
    .await
    .refused(
        415,
        &["'text/plain'", "application/json", "application/toml"],
    );
    // What an ordinary <form> sends, and what `curl -d` sends without -H.
    let form = curl(&["-d", RULE, &faults]).await;
    form.refused(
        415,
        &[
            "application/x-www-form-urlencoded",
            "-H 'Content-Type: application/json'",
        ],
    );
    assert!(
        form.header("accept")[0].contains("application/json"),
        "{}",
        form.headers
    );
    curl(&[
        "-H",
        "Content-Type: multipart/form-data; boundary=x",
        "--data-binary",
        RULE,
        &faults,
    ])
    .await
    .refused(415, &["multipart/form-data"]);
    // No content type at all.
    curl(&["-H", "Content-Type:", "--data-binary", RULE, &faults])
        .await
        .refused(415, &["no Content-Type"]);
    assert!(server.faults().is_empty(), "a refused body added a rule");

    // The legitimate calls.
    let ok = curl(&[
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        RULE,
        &faults,
    ])
    .await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    let toml = "name = \"t\"\nstage = \"rcpt\"\naction = \"reject\"\nmailbox = \"user04\"\n";
    for (i, t) in ["application/toml", "text/toml; charset=utf-8"]
        .iter()
        .enumerate()
    {
        let body = toml.replace("\"t\"", &format!("\"t{i}\""));
        let ok = curl(&[
            "-H",
            &format!("Content-Type: {t}"),
            "--data-binary",
            &body,
            &faults,
        ])
        .await;
        assert_eq!(ok.status, 201, "{t}: {}", ok.body);
    }
    assert_eq!(server.faults().len(), 3);

    // PATCH reads JSON only; the error names what it accepts.
    let one = url(&server, "/api/v1/faults/no-user03");
    curl(&[
        "-X",
        "PATCH",
        "-H",
        "Content-Type: text/plain",
        "-d",
        "{\"enabled\": false}",
        &one,
    ])
    .await
    .refused(415, &["text/plain"]);
    curl(&[
        "-X",
        "PATCH",
        "-H",
        "Content-Type: application/toml",
        "-d",
        "enabled = false",
        &one,
    ])
    .await
    .refused(
        415,
        &["'application/toml'", "send the body as application/json ("],
    );
    let ok = curl(&[
        "-X",
        "PATCH",
        "-H",
        "Content-Type: application/json",
        "-d",
        "{\"enabled\": false}",
        &one,
    ])
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["enabled"], false);
    server.shutdown().await;
}

#[tokio::test]
async fn a_dns_rebinding_page_cannot_read_mail() {
    let server = start(|b| b).await;
    send_mail(&server, "anna@kanzlei.test").await;
    let port = server.http_addr().port();
    let path = "/api/v1/mailboxes/anna@kanzlei.test/messages/1/raw";
    // evil.test now resolves to 127.0.0.1: the browser's request carries
    // `Host: evil.test:PORT`, and that is what curl sends here too.
    let resolve = format!("evil.test:{port}:127.0.0.1");
    for p in [
        path,
        "/api/v1/mailboxes/anna@kanzlei.test/messages",
        "/",
        "/metrics",
    ] {
        let seen = curl(&[
            "--resolve",
            &resolve,
            &format!("http://evil.test:{port}{p}"),
        ])
        .await;
        seen.refused(
            403,
            &["Host 'evil.test:", "--http-allow-host", "DNS rebinding"],
        );
        assert!(!seen.body.contains("confidential"), "{}", seen.body);
    }
    // A name that merely starts like a loopback one is no loopback name.
    let resolve2 = format!("localhost.evil.test:{port}:127.0.0.1");
    curl(&[
        "--resolve",
        &resolve2,
        &format!("http://localhost.evil.test:{port}{path}"),
    ])
    .await
    .refused(403, &["localhost.evil.test"]);

    // The legitimate reads: by address, by `localhost`, by `[::1]`-style Host.
    for u in [
        format!("http://127.0.0.1:{port}{path}"),
        format!("http://localhost:{port}{path}"),
    ] {
        let seen = curl(&[&u]).await;
        assert_eq!(seen.status, 200, "{u}: {}", seen.body);
        assert!(seen.body.contains("confidential"));
    }
    let seen = curl(&["-H", &format!("Host: [::1]:{port}"), &url(&server, path)]).await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    server.shutdown().await;

    // A name the user allows is answered.
    let server = start(|b| b.http_allow_host("mail.test")).await;
    let port = server.http_addr().port();
    let resolve = format!("mail.test:{port}:127.0.0.1");
    let seen = curl(&[
        "--resolve",
        &resolve,
        &format!("http://mail.test:{port}/api/v1/health"),
    ])
    .await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    let resolve = format!("evil.test:{port}:127.0.0.1");
    curl(&[
        "--resolve",
        &resolve,
        &format!("http://evil.test:{port}/api/v1/health"),
    ])
    .await
    .refused(403, &["evil.test"]);
    server.shutdown().await;
}

#[tokio::test]
async fn a_cross_site_page_cannot_switch_rules_off() {
    let server = start(|b| b).await;
    server
        .add_fault_toml(
            "name = \"no-user03\"\nstage = \"rcpt\"\naction = \"reject\"\nmailbox = \"user03\"",
        )
        .unwrap();
    let disable = url(&server, "/api/v1/faults/no-user03/disable");
    // fetch("http://127.0.0.1:8025/.../disable", {method: "POST", mode: "no-cors"})
    // from a page on evil.test: no body, so no content type to refuse; the
    // browser names the page's origin.
    for (h, what) in [
        ("Origin: http://evil.test", "Origin: http://evil.test"),
        ("Origin: null", "Origin: null"),
        ("Sec-Fetch-Site: cross-site", "Sec-Fetch-Site: cross-site"),
    ] {
        curl(&["-X", "POST", "-H", h, &disable])
            .await
            .refused(403, &["cross-site request refused", what]);
    }
    // Another port on localhost is another origin.
    let port = server.http_addr().port();
    curl(&[
        "-X",
        "DELETE",
        "-H",
        "Origin: http://127.0.0.1:3000",
        &url(&server, "/api/v1/faults"),
    ])
    .await
    .refused(403, &["http://127.0.0.1:3000"]);
    assert!(
        server.faults()[0].enabled,
        "a cross-site request changed a rule"
    );

    // The server's own page, and curl, may.
    let own = format!("Origin: http://127.0.0.1:{port}");
    let seen = curl(&[
        "-X",
        "POST",
        "-H",
        &own,
        "-H",
        "Sec-Fetch-Site: same-origin",
        &disable,
    ])
    .await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert!(!server.faults()[0].enabled);
    let seen = curl(&[
        "-X",
        "POST",
        &url(&server, "/api/v1/faults/no-user03/enable"),
    ])
    .await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    // Reading from another origin is answered (the browser hides the answer
    // from the page; the Host check is what protects reads).
    let seen = curl(&[
        "-H",
        "Origin: http://evil.test",
        &url(&server, "/api/v1/faults"),
    ])
    .await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    server.shutdown().await;
}

#[tokio::test]
async fn with_a_token_every_request_needs_it() {
    let token = "t0k-3n_for.tests";
    let server = start(|b| b.http_token(token)).await;
    send_mail(&server, "anna@kanzlei.test").await;
    for p in [
        "/api/v1/health",
        "/api/v1/mailboxes/anna@kanzlei.test/messages/1/raw",
        "/",
        "/metrics",
        "/api/v1/nothing",
    ] {
        let seen = curl(&[&url(&server, p)]).await;
        seen.refused(
            401,
            &[
                "token is required",
                "no Authorization header",
                "--http-token",
                "MAILRIG_HTTP_TOKEN",
            ],
        );
        let challenges = seen.header("www-authenticate");
        assert!(
            challenges.iter().any(|c| c.starts_with("Bearer")),
            "{}",
            seen.headers
        );
        assert!(
            challenges.iter().any(|c| c.starts_with("Basic")),
            "{}",
            seen.headers
        );
        assert!(!seen.body.contains("confidential"));
    }
    let raw = url(
        &server,
        "/api/v1/mailboxes/anna@kanzlei.test/messages/1/raw",
    );
    curl(&["-H", "Authorization: Bearer wrong", &raw])
        .await
        .refused(401, &["the token is wrong"]);
    curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        RULE,
        &url(&server, "/api/v1/faults"),
    ])
    .await
    .refused(401, &["token"]);
    assert!(server.faults().is_empty());

    // curl's own --oauth2-bearer, a header, and a browser's Basic prompt.
    let seen = curl(&["--oauth2-bearer", token, &raw]).await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert!(seen.body.contains("confidential"));
    let bearer = format!("Authorization: Bearer {token}");
    let seen = curl(&[
        "-H",
        &bearer,
        "-H",
        "Content-Type: application/json",
        "-d",
        RULE,
        &url(&server, "/api/v1/faults"),
    ])
    .await;
    assert_eq!(seen.status, 201, "{}", seen.body);
    let seen = curl(&["-u", &format!("trainer:{token}"), &url(&server, "/")]).await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert!(seen.body.contains("<html"), "{}", seen.body);
    // The token does not lift the Host check.
    let port = server.http_addr().port();
    let resolve = format!("evil.test:{port}:127.0.0.1");
    curl(&[
        "--resolve",
        &resolve,
        "-H",
        &bearer,
        &format!("http://evil.test:{port}/api/v1/health"),
    ])
    .await
    .refused(403, &["evil.test"]);
    server.shutdown().await;
}

#[tokio::test]
async fn bad_access_settings_fail_the_start_with_a_reason() {
    let e = MockServer::builder()
        .http_allow_host("http://mail.test:8025")
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("'http://mail.test:8025' is not a host name"),
        "{e}"
    );
    let e = MockServer::builder()
        .http_token("two words")
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("visible ASCII"), "{e}");
}
