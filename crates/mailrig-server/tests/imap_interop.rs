//! Third-party IMAP clients against our server: Python's imaplib, the
//! `imapclient` package (IDLE during an SMTP delivery, CONDSTORE, SORT and
//! THREAD) and curl (plain,
//! STARTTLS and IMAPS). A missing client fails the test with a message
//! saying what to install; nothing passes silently.

mod support;

use std::path::PathBuf;
use std::process::Output;

use support::imap::*;

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(name)
}

async fn run(program: &str, args: &[String]) -> Output {
    tokio::process::Command::new(program)
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!("cannot run {program}: {e}; install it (scripts/install-test-deps.sh)")
        })
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn require_python_module(module: &str) {
    let o = run("python3", &["-c".into(), format!("import {module}")]).await;
    assert!(
        o.status.success(),
        "the Python module '{module}' is missing: run scripts/install-test-deps.sh or `pip install {module}`\n{}",
        text(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_imaplib() {
    let server = start().await;
    deliver(
        &server,
        ALICE,
        &message("Bob <bob@example.test>", "hello from bob", "first"),
    );
    deliver(
        &server,
        ALICE,
        &message("Carol <carol@example.test>", "second", "second"),
    );
    deliver(
        &server,
        ALICE,
        &message("Dan <dan@example.test>", "Grüße aus Köln", "dritte"),
    );
    let o = run(
        "python3",
        &[
            script("imap_imaplib.py").display().to_string(),
            server.imap_addr().port().to_string(),
        ],
    )
    .await;
    assert!(o.status.success(), "imaplib script failed:\n{}", text(&o));
    assert!(text(&o).contains("imaplib OK"), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_imapclient_idle_sees_smtp_delivery() {
    require_python_module("imapclient").await;
    let server = start().await;
    let o = run(
        "python3",
        &[
            script("imap_imapclient_idle.py").display().to_string(),
            server.imap_addr().port().to_string(),
            server.smtp_addr().port().to_string(),
        ],
    )
    .await;
    assert!(
        o.status.success(),
        "imapclient IDLE script failed:\n{}",
        text(&o)
    );
    println!("{}", text(&o));
    assert!(text(&o).contains("imapclient IDLE OK"), "{}", text(&o));
}

/// CONDSTORE through imapclient: what it enabled, the HIGHESTMODSEQ it was
/// told, and that `CHANGEDSINCE` returns exactly the message another
/// session flagged, with a modseq above the one SELECT reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_imapclient_condstore_changedsince() {
    require_python_module("imapclient").await;
    let server = start().await;
    for i in 0..3 {
        deliver(
            &server,
            ALICE,
            &message("b@x.test", &format!("m{i}"), "body"),
        );
    }
    let o = run(
        "python3",
        &[
            script("imap_imapclient_condstore.py").display().to_string(),
            server.imap_addr().ip().to_string(),
            server.imap_addr().port().to_string(),
            ALICE.to_string(),
            PASSWORD.to_string(),
        ],
    )
    .await;
    assert!(
        o.status.success(),
        "imapclient CONDSTORE script failed:\n{}",
        text(&o)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON line");
    assert_eq!(v["enabled"], serde_json::json!(["CONDSTORE"]), "{v}");
    let highest = v["highest"].as_u64().unwrap();
    let second = v["uids"][1].as_u64().unwrap().to_string();
    let changed = v["changed"].as_object().unwrap();
    assert_eq!(
        changed.keys().collect::<Vec<_>>(),
        [&second],
        "only the flagged message: {v}"
    );
    // \Recent too: this session selected the folder first.
    assert_eq!(
        changed[&second],
        serde_json::json!(["\\Flagged", "\\Recent"]),
        "{v}"
    );
    let modseq = v["changed_modseq"][&second].as_u64().unwrap();
    assert!(modseq > highest, "{v}");
    assert_eq!(v["status_highest"].as_u64(), Some(modseq), "{v}");
    assert!(
        v["before"]
            .as_object()
            .unwrap()
            .values()
            .all(|m| m.as_u64().unwrap() <= highest),
        "{v}"
    );
}

/// SORT and THREAD through imapclient: a thread of three replies and one
/// other message, sorted by subject, date and display name, and threaded
/// both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_imapclient_sort_and_thread() {
    use serde_json::json;
    require_python_module("imapclient").await;
    let server = start().await;
    let mail = |from: &str, subject: &str, id: &str, refs: &str, hour: u32| {
        let refs = if refs.is_empty() {
            String::new()
        } else {
            let last = refs.split(' ').next_back().unwrap_or(refs);
            format!("References: {refs}\r\nIn-Reply-To: {last}\r\n")
        };
        format!(
            "From: {from}\r\nTo: {ALICE}\r\nSubject: {subject}\r\nMessage-ID: {id}\r\n{refs}\
             Date: Mon, 01 Jun 2026 {hour:02}:00:00 +0000\r\n\r\nbody\r\n"
        )
    };
    let plan = deliver(
        &server,
        ALICE,
        mail("Zed <z@x.test>", "Plan", "<p1@x>", "", 10).as_bytes(),
    );
    let reply = deliver(
        &server,
        ALICE,
        mail("Amy <a@x.test>", "Re: Plan", "<p2@x>", "<p1@x>", 11).as_bytes(),
    );
    let budget = deliver(
        &server,
        ALICE,
        mail("bob@x.test", "Budget", "<b1@x>", "", 9).as_bytes(),
    );
    let again = deliver(
        &server,
        ALICE,
        mail(
            "Carl <c@x.test>",
            "Re: Re: Plan",
            "<p3@x>",
            "<p1@x> <p2@x>",
            12,
        )
        .as_bytes(),
    );
    let o = run(
        "python3",
        &[
            script("imap_imapclient_sort_thread.py")
                .display()
                .to_string(),
            server.imap_addr().ip().to_string(),
            server.imap_addr().port().to_string(),
            ALICE.to_string(),
            PASSWORD.to_string(),
            budget.to_string(),
        ],
    )
    .await;
    assert!(
        o.status.success(),
        "imapclient SORT/THREAD script failed:\n{}",
        text(&o)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON line");
    let caps = v["caps"].as_array().unwrap();
    for cap in [
        "SORT",
        "SORT=DISPLAY",
        "THREAD=REFERENCES",
        "THREAD=ORDEREDSUBJECT",
    ] {
        assert!(caps.contains(&json!(cap)), "{cap} not advertised: {v}");
    }
    assert_eq!(v["subject"], json!([budget, plan, reply, again]), "{v}");
    assert_eq!(
        v["reverse_date"],
        json!([again, reply, plan, budget]),
        "{v}"
    );
    assert_eq!(
        v["display_from"],
        json!([reply, budget, again, plan]),
        "{v}"
    );
    assert_eq!(v["subject_unseen"], json!([plan, reply, again]), "{v}");
    assert_eq!(
        v["references"],
        json!([[budget], [plan, reply, again]]),
        "{v}"
    );
    assert_eq!(
        v["orderedsubject"],
        json!([[budget], [plan, [reply], [again]]]),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_lists_and_fetches() {
    let server = start().await;
    deliver(
        &server,
        ALICE,
        &message("Bob <bob@example.test>", "for curl", "curl body text"),
    );
    let port = server.imap_addr().port();
    let user = "alice@example.test:secret".to_string();
    let list = run(
        "curl",
        &[
            "-sS".into(),
            "-u".into(),
            user.clone(),
            format!("imap://127.0.0.1:{port}/"),
        ],
    )
    .await;
    assert!(list.status.success(), "curl list: {}", text(&list));
    assert_eq!(
        String::from_utf8_lossy(&list.stdout),
        "* LIST (\\HasNoChildren) \".\" INBOX\r\n"
    );

    let fetch = run(
        "curl",
        &[
            "-sS".into(),
            "-u".into(),
            user.clone(),
            format!("imap://127.0.0.1:{port}/INBOX;UID=1"),
        ],
    )
    .await;
    assert!(fetch.status.success(), "curl fetch: {}", text(&fetch));
    let body = String::from_utf8_lossy(&fetch.stdout);
    assert!(
        body.contains("Subject: for curl\r\n") && body.contains("curl body text"),
        "{body}"
    );

    // STARTTLS required, then IMAPS, both trusting our CA.
    let ca = server.ca_path().display().to_string();
    let starttls = run(
        "curl",
        &[
            "-sS".into(),
            "--ssl-reqd".into(),
            "--cacert".into(),
            ca.clone(),
            "-u".into(),
            user.clone(),
            format!("imap://localhost:{port}/INBOX;UID=1;SECTION=HEADER.FIELDS%20(SUBJECT)"),
        ],
    )
    .await;
    assert!(
        starttls.status.success(),
        "curl STARTTLS: {}",
        text(&starttls)
    );
    assert_eq!(
        String::from_utf8_lossy(&starttls.stdout),
        "Subject: for curl\r\n\r\n"
    );
    let imaps = run(
        "curl",
        &[
            "-sS".into(),
            "--cacert".into(),
            ca,
            "-u".into(),
            user,
            format!(
                "imaps://localhost:{}/INBOX?SUBJECT%20curl",
                server.imaps_addr().port()
            ),
        ],
    )
    .await;
    assert!(
        imaps.status.success(),
        "curl IMAPS search: {}",
        text(&imaps)
    );
    assert_eq!(String::from_utf8_lossy(&imaps.stdout), "* SEARCH 1\r\n");
}

/// The two state bugs of issue 11, met by Python's imaplib with two sessions:
/// a new keyword is announced (`* FLAGS`, `PERMANENTFLAGS`) before a FETCH
/// shows it, and a message expunged by the other session stays under its
/// sequence number, readable, until the EXPUNGE is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_imaplib_two_sessions_keywords_and_expunges() {
    let server = start().await;
    let o = run(
        "python3",
        &[
            script("imap_two_sessions.py").display().to_string(),
            server.imap_addr().port().to_string(),
        ],
    )
    .await;
    assert!(
        o.status.success(),
        "two-session script failed:\n{}",
        text(&o)
    );
    assert!(text(&o).contains("imaplib two sessions OK"), "{}", text(&o));
}
