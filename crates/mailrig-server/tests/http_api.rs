//! The HTTP control API through third-party clients: `curl` for every
//! endpoint, status code and JSON error, and Python's `urllib` for a second
//! opinion. Mail goes in over a raw SMTP socket. A missing curl or python3
//! fails the test with a clear message; it never passes silently.

mod support;

use mailrig_core::fault::Stage;
use mailrig_core::journal::{JournalEvent, JournalRecord};
use mailrig_server::MockServer;
use serde_json::{Value, json};
use support::KANZLEI;
use support::smtp::Raw;
use tokio::process::Command;

const SUBJECT: &str = "Frist <b>heute</b> & morgen";

async fn kanzlei() -> MockServer {
    MockServer::builder()
        .scenario_file(KANZLEI)
        .unwrap()
        .start()
        .await
        .unwrap()
}

/// Two messages to anna, one to bernd, and one recipient refused (journaled).
async fn fill(server: &MockServer) {
    let mut c = Raw::greeted(server.smtp_addr()).await;
    c.cmd("EHLO client.test", 250).await;
    let first = format!(
        "From: Sender <sender@extern.test>\r\nTo: anna@kanzlei.test\r\nSubject: {SUBJECT}\r\nMessage-ID: <m1@extern.test>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nHallo.\r\n"
    );
    c.send_mail(
        "sender@extern.test",
        &["anna@kanzlei.test", "bernd@kanzlei.test"],
        &first,
    )
    .await;
    c.send_mail(
        "other@extern.test",
        &["anna@kanzlei.test"],
        "Subject: zwei\r\n\r\nx\r\n",
    )
    .await;
    c.cmd("MAIL FROM:<sender@extern.test>", 250).await;
    c.cmd("RCPT TO:<nobody@kanzlei.test>", 550).await;
    c.cmd("QUIT", 221).await;
}

/// The outcome of one curl call.
struct Http {
    status: u16,
    content_type: String,
    body: String,
}

impl Http {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// Asserts a JSON error with this status whose text contains `needle`.
    fn error(&self, status: u16, needle: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(
            self.content_type.starts_with("application/json"),
            "{}",
            self.content_type
        );
        let msg = self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error field: {}", self.body))
            .to_string();
        assert!(msg.contains(needle), "{msg:?} does not contain {needle:?}");
    }
}

async fn curl(server: &MockServer, method: &str, path: &str) -> Http {
    curl_with(server, method, path, &[]).await
}

/// curl with extra arguments (headers, a body) before the URL.
async fn curl_with(server: &MockServer, method: &str, path: &str, extra: &[&str]) -> Http {
    let url = format!("http://{}{path}", server.http_addr());
    let marker = "\n--mailrig-curl--\n";
    let write_out = format!("{marker}%{{http_code}} %{{content_type}}");
    let out = match Command::new("curl")
        .args(["-sS", "--max-time", "10", "-X", method, "-w", &write_out])
        .args(extra)
        .arg(&url)
        .output()
        .await
    {
        Ok(o) => o,
        Err(e) => panic!(
            "this test needs `curl` on PATH ({e}); install it (e.g. `apt-get install curl`) — the test does not skip"
        ),
    };
    assert!(
        out.status.success(),
        "curl {method} {url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let (body, meta) = text.rsplit_once(marker).expect("curl write-out");
    let (status, content_type) = meta.split_once(' ').unwrap_or((meta, ""));
    Http {
        status: status.parse().expect("status"),
        content_type: content_type.to_string(),
        body: body.to_string(),
    }
}

async fn get(server: &MockServer, path: &str) -> Value {
    let r = curl(server, "GET", path).await;
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    assert!(
        r.content_type.starts_with("application/json"),
        "{}",
        r.content_type
    );
    r.json()
}

#[tokio::test]
async fn every_endpoint_over_curl() {
    let server = kanzlei().await;
    assert!(server.http_addr().ip().is_loopback());
    fill(&server).await;

    let health = get(&server, "/api/v1/health").await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["hostname"], "mx.kanzlei.test");
    assert_eq!(health["mailboxes"], 28);
    assert_eq!(health["messages"], 3);

    let domains = get(&server, "/api/v1/domains").await;
    let kanzlei = &domains[0];
    assert_eq!(kanzlei["name"], "kanzlei.test");
    assert_eq!(kanzlei["messages"], 3);
    assert_eq!(kanzlei["mailboxes"][0]["address"], "anna@kanzlei.test");
    assert_eq!(kanzlei["mailboxes"][0]["messages"], 2);
    assert_eq!(kanzlei["mailboxes"][1]["messages"], 1);
    assert_eq!(domains[1]["name"], "patente.test");
    assert_eq!(domains[1]["mailboxes"].as_array().unwrap().len(), 25);

    let all = get(&server, "/api/v1/mailboxes").await;
    assert_eq!(all.as_array().unwrap().len(), 28);
    let patente = get(&server, "/api/v1/mailboxes?domain=PATENTE.test").await;
    assert_eq!(patente.as_array().unwrap().len(), 25);
    assert_eq!(patente[6]["address"], "user07@patente.test");
    curl(&server, "GET", "/api/v1/mailboxes?domain=nowhere.test")
        .await
        .error(404, "unknown domain 'nowhere.test'");

    let anna = get(&server, "/api/v1/mailboxes/Anna@kanzlei.test").await;
    assert_eq!(anna["address"], "anna@kanzlei.test");
    assert_eq!(anna["folders"][0]["name"], "INBOX");
    assert_eq!(anna["folders"][0]["messages"], 2);
    assert_eq!(anna["folders"][0]["uid_next"], 3);

    // Message list with header fields and the SMTP envelope.
    let list = get(&server, "/api/v1/mailboxes/anna@kanzlei.test/messages").await;
    assert_eq!(list["mailbox"], "anna@kanzlei.test");
    assert_eq!(list["folder"], "INBOX");
    assert_eq!(list["total"], 2);
    let m1 = &list["messages"][0];
    assert_eq!(m1["uid"], 1);
    assert_eq!(m1["from"], "sender@extern.test");
    assert_eq!(m1["to"], json!(["anna@kanzlei.test"]));
    assert_eq!(m1["subject"], SUBJECT);
    assert_eq!(m1["message_id"], "m1@extern.test");
    assert_eq!(m1["date"], "2024-01-01T10:00:00Z");
    assert_eq!(m1["flags"], json!([]));
    assert_eq!(m1["envelope"]["mail_from"], "sender@extern.test");
    assert_eq!(
        m1["envelope"]["rcpt_to"],
        json!(["anna@kanzlei.test", "bernd@kanzlei.test"])
    );
    assert_eq!(m1["envelope"]["helo"], "client.test");
    let stored = server.inbox("anna@kanzlei.test").unwrap();
    assert_eq!(m1["size"], stored[0].size());
    let m2 = &list["messages"][1];
    assert_eq!(
        (
            m2["uid"].clone(),
            m2["subject"].clone(),
            m2["message_id"].clone()
        ),
        (json!(2), json!("zwei"), Value::Null)
    );

    let one = get(&server, "/api/v1/mailboxes/anna@kanzlei.test/messages/2").await;
    assert_eq!(one["envelope"]["mail_from"], "other@extern.test");

    // Raw message, byte for byte, as message/rfc822.
    let raw = curl(
        &server,
        "GET",
        "/api/v1/mailboxes/anna@kanzlei.test/messages/1/raw",
    )
    .await;
    assert_eq!(raw.status, 200);
    assert_eq!(raw.content_type, "message/rfc822");
    assert_eq!(raw.body.as_bytes(), &stored[0].raw[..]);

    // Errors name the problem.
    curl(
        &server,
        "GET",
        "/api/v1/mailboxes/zed@kanzlei.test/messages",
    )
    .await
    .error(404, "unknown mailbox 'zed@kanzlei.test'");
    curl(
        &server,
        "GET",
        "/api/v1/mailboxes/anna@kanzlei.test/messages/abc",
    )
    .await
    .error(400, "bad uid 'abc'");
    curl(
        &server,
        "GET",
        "/api/v1/mailboxes/anna@kanzlei.test/messages/0/raw",
    )
    .await
    .error(400, "bad uid '0'");
    curl(
        &server,
        "GET",
        "/api/v1/mailboxes/anna@kanzlei.test/messages/-1",
    )
    .await
    .error(400, "bad uid '-1'");
    curl(
        &server,
        "GET",
        "/api/v1/mailboxes/anna@kanzlei.test/messages/99",
    )
    .await
    .error(404, "no message with UID 99 in anna@kanzlei.test INBOX");
    curl(
        &server,
        "GET",
        "/api/v1/mailboxes/anna@kanzlei.test/messages?folder=Archiv",
    )
    .await
    .error(
        404,
        "unknown folder 'Archiv' in mailbox 'anna@kanzlei.test'",
    );
    curl(&server, "GET", "/api/v1/nothing")
        .await
        .error(404, "no such endpoint: /api/v1/nothing");
    curl(&server, "POST", "/api/v1/health")
        .await
        .error(405, "method not allowed");
    curl(&server, "DELETE", "/api/v1/messages?journal=perhaps")
        .await
        .error(400, "journal");
    curl(&server, "GET", "/api/v1/faults/nope")
        .await
        .error(404, "no fault rule named 'nope'");

    // Journal: the refused recipient, and filtering by Message-ID.
    let j = get(&server, "/api/v1/journal?mailbox=nobody@kanzlei.test").await;
    assert_eq!(j["dropped"], 0);
    let entries = j["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{j}");
    assert_eq!(entries[0]["event"]["kind"], "rejected");
    assert_eq!(entries[0]["event"]["code"], 550);
    assert_eq!(entries[0]["rcpt"], "nobody@kanzlei.test");
    server.journal().record(JournalRecord {
        stage: Stage::Deliver,
        rule: Some("test-rule".into()),
        message_id: Some("<m9@extern.test>".into()),
        mail_from: None,
        rcpt: Some("clara@kanzlei.test".into()),
        peer: None,
        event: JournalEvent::Dropped,
    });
    let j = get(&server, "/api/v1/journal?message_id=%3Cm9@extern.test%3E").await;
    assert_eq!(j["entries"].as_array().unwrap().len(), 1, "{j}");
    assert_eq!(j["entries"][0]["rule"], "test-rule");
    assert_eq!(
        get(
            &server,
            "/api/v1/journal?message_id=m9@extern.test&mailbox=anna@kanzlei.test"
        )
        .await["entries"],
        json!([])
    );
    // Besides those two, every stored copy (three) is journaled.
    let all = get(&server, "/api/v1/journal").await;
    let kinds: Vec<&str> = all["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["delivered", "delivered", "delivered", "rejected", "dropped"],
        "{all}"
    );

    // Prometheus text.
    let m = curl(&server, "GET", "/metrics").await;
    assert_eq!(m.status, 200);
    assert!(
        m.content_type.starts_with("text/plain; version=0.0.4"),
        "{}",
        m.content_type
    );
    for line in [
        "# TYPE mailrig_connections_total counter",
        "mailrig_messages_accepted_total 2",
        "mailrig_messages_delivered_total 3",
        "mailrig_recipients_rejected_total 1",
        "mailrig_stored_messages{domain=\"kanzlei.test\"} 3",
        "mailrig_stored_messages{domain=\"patente.test\"} 0",
    ] {
        assert!(
            m.body.lines().any(|l| l == line),
            "{line} missing in\n{}",
            m.body
        );
    }

    // The web page: the shell, its script and stylesheet from the binary.
    let page = curl(&server, "GET", "/").await;
    assert_eq!(page.status, 200);
    assert!(
        page.content_type.starts_with("text/html"),
        "{}",
        page.content_type
    );
    assert!(
        page.body
            .contains("<title>mailrig — mx.kanzlei.test</title>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<script src=\"/ui/app.js\" defer>"),
        "{}",
        page.body
    );
    let js = curl(&server, "GET", "/ui/app.js").await;
    assert_eq!(js.status, 200);
    assert!(
        js.content_type.starts_with("text/javascript"),
        "{}",
        js.content_type
    );
    assert!(js.body.contains("new EventSource"));
    let css = curl(&server, "GET", "/ui/app.css").await;
    assert!(
        css.content_type.starts_with("text/css"),
        "{}",
        css.content_type
    );
    // The grid's data: the refused recipient is no mailbox; counts are there.
    let grid = get(&server, "/api/v1/grid").await;
    let anna = &grid["domains"][0]["mailboxes"][0];
    assert_eq!(anna["address"], "anna@kanzlei.test");
    assert_eq!(anna["messages"], 2, "{grid}");
    assert_eq!(anna["delivered"], 2, "{grid}");
    let clara = &grid["domains"][0]["mailboxes"][2];
    assert_eq!(clara["problems"], 1, "{grid}");
    assert_eq!(clara["last_problem"]["rule"], "test-rule", "{grid}");
    assert_eq!(clara["last_problem"]["kind"], "dropped", "{grid}");
    assert_eq!(grid["domains"][0]["problem_mailboxes"], 1, "{grid}");

    // Deleting: one message, then a mailbox, then everything.
    assert_eq!(
        curl(
            &server,
            "DELETE",
            "/api/v1/mailboxes/anna@kanzlei.test/messages/1"
        )
        .await
        .json(),
        json!({"deleted": 1})
    );
    curl(
        &server,
        "DELETE",
        "/api/v1/mailboxes/anna@kanzlei.test/messages/1",
    )
    .await
    .error(404, "no message with UID 1");
    assert_eq!(server.inbox("anna@kanzlei.test").unwrap().len(), 1);
    assert_eq!(
        curl(
            &server,
            "DELETE",
            "/api/v1/mailboxes/anna@kanzlei.test/messages"
        )
        .await
        .json(),
        json!({"deleted": 1})
    );
    assert!(server.inbox("anna@kanzlei.test").unwrap().is_empty());
    curl(
        &server,
        "DELETE",
        "/api/v1/mailboxes/zed@kanzlei.test/messages",
    )
    .await
    .error(404, "unknown mailbox");
    assert_eq!(
        curl(&server, "DELETE", "/api/v1/messages?journal=true")
            .await
            .json(),
        json!({"deleted": 1})
    );
    assert_eq!(get(&server, "/api/v1/health").await["messages"], 0);
    assert_eq!(get(&server, "/api/v1/journal").await["entries"], json!([]));
    assert_eq!(
        curl(&server, "DELETE", "/api/v1/messages").await.json(),
        json!({"deleted": 0})
    );
    server.shutdown().await;
}

const URLLIB_SCRIPT: &str = r#"
import json, sys, urllib.request, urllib.error
base = sys.argv[1]
def call(method, path):
    req = urllib.request.Request(base + path, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()
out = {}
out["health"] = call("GET", "/api/v1/health")
out["list"] = call("GET", "/api/v1/mailboxes/bernd@kanzlei.test/messages")
out["raw"] = call("GET", "/api/v1/mailboxes/bernd@kanzlei.test/messages/1/raw")
out["missing"] = call("GET", "/api/v1/mailboxes/bernd@kanzlei.test/messages/7")
out["delete"] = call("DELETE", "/api/v1/mailboxes/bernd@kanzlei.test/messages/1")
out["after"] = call("GET", "/api/v1/mailboxes/bernd@kanzlei.test")
print(json.dumps(out))
"#;

#[tokio::test]
async fn python_urllib_reads_and_deletes() {
    let server = kanzlei().await;
    fill(&server).await;
    let stored = server.inbox("bernd@kanzlei.test").unwrap();
    let base = format!("http://{}", server.http_addr());
    let out = match Command::new("python3")
        .args(["-c", URLLIB_SCRIPT, &base])
        .output()
        .await
    {
        Ok(o) => o,
        Err(e) => {
            panic!("this test needs `python3` on PATH ({e}); install it — the test does not skip")
        }
    };
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).expect("JSON from the script");
    let parse = |v: &Value| -> Value { serde_json::from_str(v[2].as_str().unwrap()).unwrap() };
    assert_eq!(r["health"][0], 200);
    assert_eq!(r["health"][1], "application/json");
    assert_eq!(parse(&r["health"])["messages"], 3);
    assert_eq!(parse(&r["list"])["messages"][0]["subject"], SUBJECT);
    assert_eq!(r["raw"][0], 200);
    assert_eq!(r["raw"][1], "message/rfc822");
    assert_eq!(r["raw"][2].as_str().unwrap().as_bytes(), &stored[0].raw[..]);
    assert_eq!(r["missing"][0], 404);
    assert_eq!(
        parse(&r["missing"])["error"],
        "no message with UID 7 in bernd@kanzlei.test INBOX"
    );
    assert_eq!(r["delete"][0], 200);
    assert_eq!(parse(&r["delete"]), json!({"deleted": 1}));
    assert_eq!(parse(&r["after"])["messages"], 0);
    assert!(server.inbox("bernd@kanzlei.test").unwrap().is_empty());
    server.shutdown().await;
}

/// Issue 9: a folder name whose fifth byte is inside a UTF-8 character
/// (`INBOé`) panicked in the store and killed the connection; now it is an
/// unknown folder, and the server goes on answering.
#[tokio::test]
async fn folder_name_cutting_a_character_is_an_unknown_folder() {
    let server = kanzlei().await;
    for (query, shown) in [("INBO%C3%A9", "INBOé"), ("inbo%E2%82%AC", "inbo€")] {
        curl(
            &server,
            "GET",
            &format!("/api/v1/mailboxes/anna@kanzlei.test/messages?folder={query}"),
        )
        .await
        .error(
            404,
            &format!("unknown folder '{shown}' in mailbox 'anna@kanzlei.test'"),
        );
    }
    assert_eq!(get(&server, "/api/v1/health").await["status"], "ok");
    server.shutdown().await;
}

/// Every operation of `docs/openapi.yaml`: (method, path template), read
/// from the file's own layout (paths at two spaces, methods at four).
fn documented_operations() -> Vec<(String, String)> {
    let spec = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/openapi.yaml"
    ))
    .expect("docs/openapi.yaml");
    let mut ops = Vec::new();
    let mut in_paths = false;
    let mut path = None;
    for line in spec.lines() {
        if !line.starts_with(' ') {
            in_paths = line == "paths:";
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(p) = line.strip_prefix("  /") {
            path = Some(format!("/{}", p.trim_end_matches(':')));
        } else if let Some(m) = line.strip_prefix("    ") {
            let m = m.trim_end_matches(':');
            if ["get", "post", "put", "patch", "delete"].contains(&m) {
                ops.push((m.to_uppercase(), path.clone().expect("a path")));
            }
        }
    }
    ops
}

#[tokio::test]
async fn unknown_query_parameters_are_refused_on_every_endpoint() {
    let server = kanzlei().await;
    fill(&server).await;
    server
        .add_fault_toml("name = \"r\"\nstage = \"rcpt\"\naction = \"reject\"\nmailbox = \"user03\"")
        .unwrap();
    let ops = documented_operations();
    assert!(ops.len() >= 20, "{ops:?}");
    let messages = server.store().total_messages();
    for (method, template) in &ops {
        let path = template
            .replace("{address}", "anna@kanzlei.test")
            .replace("{uid}", "1")
            .replace("{name}", "r");
        let mut extra: Vec<&str> = Vec::new();
        if path == "/login" && method == "POST" {
            // The sign-in form's own body type.
            extra.extend([
                "-H",
                "Content-Type: application/x-www-form-urlencoded",
                "-d",
                "token=x",
            ]);
        } else if method == "POST" || method == "PATCH" {
            extra.extend([
                "-H",
                "Content-Type: application/json",
                "-d",
                "{\"enabled\": false}",
            ]);
        }
        let seen = curl_with(
            &server,
            method,
            &format!("{path}?recipient=anna@kanzlei.test"),
            &extra,
        )
        .await;
        seen.error(400, "unknown query parameter 'recipient'");
        let msg = seen.json()["error"].as_str().unwrap().to_string();
        assert!(
            msg.contains("this endpoint accepts") || msg.contains("takes no query parameters"),
            "{method} {path}: {msg}"
        );
    }
    // Nothing was deleted or switched by the refused requests.
    assert_eq!(server.store().total_messages(), messages);
    assert_eq!(server.faults().len(), 1);
    assert!(server.faults()[0].enabled);
    // The page and the metrics too.
    for path in ["/", "/metrics"] {
        curl(&server, "GET", &format!("{path}?limit=5"))
            .await
            .error(
                400,
                "unknown query parameter 'limit': this endpoint takes no query parameters",
            );
    }

    // The journal's filters are named as its JSON fields; a misspelt one
    // is named instead of answering every entry.
    curl(
        &server,
        "GET",
        "/api/v1/journal?rcpt_to=nobody@kanzlei.test",
    )
    .await
    .error(
        400,
        "unknown query parameter 'rcpt_to': this endpoint accepts since, before, limit, mailbox, rcpt,",
    );
    let j = get(&server, "/api/v1/journal?rcpt=nobody@kanzlei.test").await;
    assert_eq!(j["entries"].as_array().unwrap().len(), 1, "{j}");
    curl(&server, "GET", "/api/v1/journal?kind=bounced")
        .await
        .error(
            400,
            "bad value 'bounced' for query parameter 'kind': give one of delivered,",
        );
    curl(
        &server,
        "GET",
        "/api/v1/mailboxes/anna@kanzlei.test/messages?limit=1",
    )
    .await
    .error(
        400,
        "unknown query parameter 'limit': this endpoint accepts folder",
    );
    // Repeated and badly typed values are named too.
    curl(&server, "GET", "/api/v1/journal?mailbox=a&mailbox=b")
        .await
        .error(400, "query parameter 'mailbox' is given more than once");
    curl(&server, "DELETE", "/api/v1/messages?journal=perhaps")
        .await
        .error(400, "bad value 'perhaps' for query parameter 'journal'");
    assert_eq!(server.store().total_messages(), messages);
    // Known parameters still work.
    let j = get(&server, "/api/v1/journal?mailbox=nobody@kanzlei.test").await;
    assert_eq!(j["entries"].as_array().unwrap().len(), 1, "{j}");
    server.shutdown().await;
}
