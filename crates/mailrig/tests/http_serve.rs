//! The HTTP API of a real `mailrig serve`, as a user meets it: its access
//! flags (`--http-allow-host`, `--http-token`, `MAILRIG_HTTP_TOKEN`) driven
//! with curl. The server runs on free loopback ports (`--listen
//! 127.0.0.1:0`) and is stopped with SIGTERM. A missing curl fails the test
//! with a hint; it never skips.

mod support;

use std::process::{Command, Stdio};

use support::BIN;
use support::serve::Serve;

/// curl `args`: (status, body).
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("this test needs `curl` on PATH ({e}): run `bash scripts/install-test-deps.sh`")
        });
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').expect("status");
    (code.trim().parse().expect("status"), body.to_string())
}

#[test]
fn serve_http_token_from_the_flag_or_the_environment() {
    for (args, env) in [
        (&["--http-token", "flag-token"][..], &[][..]),
        (&[][..], &[("MAILRIG_HTTP_TOKEN", "flag-token")][..]),
    ] {
        let s = Serve::start_env(&[], args, env);
        assert!(s.banner.contains("token required"), "{}", s.banner);
        assert!(
            !s.banner.contains("flag-token"),
            "the banner shows the token"
        );
        let (code, body) = curl(&[&s.url("/api/v1/health")]);
        assert_eq!(code, 401, "{body}");
        assert!(body.contains("MAILRIG_HTTP_TOKEN"), "{body}");
        let (code, body) = curl(&["--oauth2-bearer", "flag-token", &s.url("/api/v1/health")]);
        assert_eq!(code, 200, "{body}");
    }
    let s = Serve::start_env(&[], &[], &[]);
    assert!(!s.banner.contains("token required"), "{}", s.banner);
    assert_eq!(curl(&[&s.url("/api/v1/health")]).0, 200);
}

/// With a token, a browser logs in once with HTTP Basic (any user name, the
/// token as password): the page, its script and stylesheet, the event stream
/// and a same-origin state change all work with those credentials.
#[test]
fn the_page_works_with_a_token_through_basic_auth() {
    let s = Serve::start_env(&[], &["--http-token", "t0ken"], &[]);
    let (code, _) = curl(&["-o", "/dev/null", &s.url("/")]);
    assert_eq!(code, 401);
    for path in ["/", "/ui/app.js", "/ui/app.css", "/api/v1/grid"] {
        let (code, body) = curl(&["-u", "me:t0ken", &s.url(path)]);
        assert_eq!(code, 200, "{path}: {body}");
    }
    // The stream stays open: curl ends at its --max-time with what it read.
    let out = Command::new("curl")
        .args([
            "-sSN",
            "--max-time",
            "2",
            "-u",
            "me:t0ken",
            &s.url("/api/v1/events"),
        ])
        .output()
        .expect("curl");
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(body.starts_with("event: hello\n"), "{body}");
    let origin = format!("Origin: {}", s.url("").trim_end_matches('/'));
    let (code, body) = curl(&[
        "-u",
        "me:t0ken",
        "-X",
        "DELETE",
        "-H",
        &origin,
        &s.url("/api/v1/journal"),
    ]);
    assert_eq!(code, 200, "{body}");
    let (code, body) = curl(&["-u", "me:wrong", &s.url("/ui/app.js")]);
    assert_eq!(code, 401, "{body}");
}

#[test]
fn serve_http_allow_host_is_repeatable_and_checked() {
    let s = Serve::start_env(
        &[],
        &[
            "--http-allow-host",
            "mail.test",
            "--http-allow-host",
            "Other.Test",
        ],
        &[],
    );
    let port = s.http.port();
    for (name, want) in [("mail.test", 200), ("other.test", 200), ("evil.test", 403)] {
        let resolve = format!("{name}:{port}:127.0.0.1");
        let (code, body) = curl(&[
            "--resolve",
            &resolve,
            &format!("http://{name}:{port}/api/v1/health"),
        ]);
        assert_eq!(code, want, "{name}: {body}");
    }
    drop(s);

    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-allow-host",
            "http://mail.test",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mailrig: error:") && err.contains("'http://mail.test' is not a host name"),
        "{err}"
    );
}

/// Sends `n` messages to `to` with curl's SMTP client.
fn send_mail(smtp: &str, to: &str, n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.eml");
    for i in 0..n {
        std::fs::write(
            &file,
            format!("From: a@extern.test\r\nTo: {to}\r\nSubject: number {i}\r\nMessage-ID: <m{i}@extern.test>\r\n\r\nbody {i}\r\n"),
        )
        .unwrap();
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "10"])
            .arg(format!("smtp://{smtp}"))
            .args(["--mail-from", "a@extern.test", "--mail-rcpt", to, "-T"])
            .arg(&file)
            .output()
            .expect("curl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs schemathesis (every check, all phases) against `s`; panics with its
/// report unless every generated case passed.
fn schemathesis(s: &Serve, max_examples: &str, seed: &str, extra: &[&str]) {
    let here = repo().join("crates/mailrig/tests/schemathesis");
    let report = tempfile::tempdir().unwrap();
    // coreutils' timeout bounds the run; schemathesis's own --max-time would
    // instead repeat fuzzing until the time is spent.
    let mut c = Command::new("timeout");
    c.args(["300", "schemathesis"])
        .current_dir(report.path())
        .env("PYTHONPATH", &here)
        .env("SCHEMATHESIS_HOOKS", "mailrig_hooks")
        .arg("--config-file")
        .arg(here.join("schemathesis.toml"))
        .arg("run")
        .arg(repo().join("docs/openapi.yaml"))
        .args(["--url", &format!("http://{}", s.http)])
        .args(["--max-examples", max_examples, "--seed", seed])
        .args([
            "--workers",
            "2",
            "--generation-database",
            "none",
            "--no-color",
        ])
        .args(["--request-timeout", "10"])
        .args(extra)
        .stdin(Stdio::null());
    let found = Command::new("schemathesis").arg("--version").output();
    assert!(
        found.as_ref().is_ok_and(|o| o.status.success()),
        "this test needs schemathesis on PATH ({found:?}): run `bash scripts/install-test-deps.sh` (pip install schemathesis==4.32.5)"
    );
    let out = c.output().expect("run timeout(1)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis found responses that docs/openapi.yaml does not describe (exit {:?}):\n{text}",
        out.status.code()
    );
    // A run that tested nothing, or not every operation, must not pass.
    let line = |key: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key).map(str::trim))
            .unwrap_or_else(|| panic!("no '{key}' line in the report:\n{text}"))
    };
    let selected = line("Selected: ");
    let tested = line("Tested: ");
    assert!(
        selected
            .split_once('/')
            .is_some_and(|(a, b)| a == b && a == tested)
            && tested.parse::<u32>().unwrap_or(0) >= 24,
        "not every operation was tested (selected {selected}, tested {tested}):\n{text}"
    );
    assert!(text.contains(" passed"), "{text}");
}

/// docs/openapi.yaml is what the server does: schemathesis generates
/// requests for every operation (examples, coverage, fuzzing, stateful
/// sequences along the links) and fails on any 5xx, any status, content
/// type, header or body the document does not give, a schema-valid request
/// refused, a schema-invalid one accepted, or a method not answered 405.
#[test]
fn openapi_matches_the_server_under_schemathesis() {
    let kanzlei = repo().join("crates/mailrig-core/catalog/kanzlei.toml");
    let kanzlei = kanzlei.to_str().unwrap();
    let s = Serve::start_env(&[], &["--scenario", kanzlei], &[]);
    let smtp = s
        .banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("SMTP "))
        .map(|a| a.trim().to_string())
        .expect("SMTP address");
    send_mail(&smtp, "anna@kanzlei.test", 3);
    send_mail(&smtp, "bernd@kanzlei.test", 1);
    send_mail(&smtp, "nobody@kanzlei.test", 0);
    schemathesis(&s, "15", "1", &[]);
    drop(s);

    // With a token: every request carries it, and schemathesis's
    // ignored_auth check sends some without it and expects the 401.
    let s = Serve::start_env(&[], &["--scenario", kanzlei, "--http-token", "sch3ma"], &[]);
    schemathesis(&s, "5", "2", &["--header", "Authorization: Bearer sch3ma"]);
}
