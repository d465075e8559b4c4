//! Third-party IMAP clients against our server: Python's imaplib, the
//! `imapclient` package (IDLE during an SMTP delivery, CONDSTORE, SORT and
//! THREAD), imapflow (npm; a QRESYNC sync across two connects) and curl
//! (plain, STARTTLS and IMAPS). A missing client fails the test with a message
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

/// The imapflow script's folder (`npm install` there: scripts/install-test-deps.sh).
fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

/// Runs `imapflow_qresync.cjs` against the server (with the state of an
/// earlier run, if any) and returns its JSON line.
async fn imapflow_sync(
    server: &mailrig_server::MockServer,
    state: Option<&str>,
) -> serde_json::Value {
    let mut args = vec![
        js_dir().join("imapflow_qresync.cjs").display().to_string(),
        server.imap_addr().ip().to_string(),
        server.imap_addr().port().to_string(),
        ALICE.to_string(),
        PASSWORD.to_string(),
    ];
    args.extend(state.map(str::to_string));
    let o = run("node", &args).await;
    assert!(o.status.success(), "imapflow script failed:\n{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)))
}

/// The store's INBOX as the script prints it: UID -> sorted flag names.
fn store_view(server: &mailrig_server::MockServer) -> serde_json::Value {
    let id = server.world().mailbox_by_address(ALICE).expect("alice");
    let msgs = server
        .store()
        .mailbox(id)
        .messages(mailrig_core::store::INBOX)
        .expect("INBOX");
    let mut map = serde_json::Map::new();
    for m in msgs {
        let mut flags: Vec<String> = m
            .flags
            .system()
            .map(|f| f.imap_name().to_string())
            .collect();
        flags.extend(m.flags.keywords().map(str::to_string));
        flags.sort();
        map.insert(m.uid.to_string(), serde_json::json!(flags));
    }
    serde_json::Value::Object(map)
}

/// QRESYNC through imapflow (`qresync: true`): a full sync, then, after
/// another session flagged one message and expunged another and new mail
/// arrived, a second connect that SELECTs with the cached UIDVALIDITY and
/// HIGHESTMODSEQ. imapflow hears of the expunge as `VANISHED (EARLIER)` and
/// of the flag change as a FETCH during SELECT, fetches only the new UID,
/// and ends with exactly the store's view. Its LIST finds the SPECIAL-USE
/// folders (Sent, Drafts, Trash, Junk, Archive, created beforehand) by their
/// attributes ("extension"; INBOX is `\Inbox` by its name: RFC 6154 has
/// no such attribute).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imapflow_qresync_resyncs_after_changes_elsewhere() {
    use serde_json::json;
    assert!(
        js_dir().join("node_modules/imapflow/package.json").exists(),
        "imapflow is missing in {}: run scripts/install-test-deps.sh (npm install there)",
        js_dir().display()
    );
    let server = start().await;
    for i in 0..4 {
        deliver(&server, ALICE, &message("b@x.test", &format!("m{i}"), "x"));
    }
    // The folders a mail client creates; their names give the attributes.
    let mut a = Client::login(server.imap_addr(), ALICE).await;
    for (i, f) in ["Sent", "Drafts", "Trash", "Junk", "Archive"]
        .iter()
        .enumerate()
    {
        let r = a.cmd(&format!("c{i} CREATE {f}")).await;
        assert!(r.contains(" OK "), "CREATE {f}: {r}");
    }
    let first = imapflow_sync(&server, None).await;
    assert_eq!(first["mode"], "full", "{first}");
    assert!(
        first["enabled"]
            .as_array()
            .unwrap()
            .contains(&json!("QRESYNC")),
        "imapflow enabled QRESYNC: {first}"
    );
    assert_eq!(first["messages"], store_view(&server), "{first}");
    // imapflow finds every SPECIAL-USE folder by its attribute.
    assert_eq!(
        first["specialUse"],
        json!({"\\Inbox": "INBOX (name)", "\\Sent": "Sent (extension)",
               "\\Drafts": "Drafts (extension)", "\\Trash": "Trash (extension)",
               "\\Junk": "Junk (extension)", "\\Archive": "Archive (extension)"}),
        "{first}"
    );

    // Another session changes the folder; new mail arrives.
    let mut b = Client::login(server.imap_addr(), ALICE).await;
    for cmd in [
        "b1 SELECT INBOX",
        "b2 UID STORE 2 +FLAGS (\\Flagged)",
        "b3 UID STORE 3 +FLAGS (\\Deleted)",
        "b4 EXPUNGE",
        "b5 LOGOUT",
    ] {
        let r = b.cmd(cmd).await;
        assert!(r.contains(" OK "), "{cmd}: {r}");
    }
    let new_uid = deliver(&server, ALICE, &message("c@x.test", "new", "y"));

    let second = imapflow_sync(&server, Some(&first.to_string())).await;
    assert_eq!(
        second["mode"], "qresync",
        "SELECT (QRESYNC ...) applied: {second}"
    );
    assert_eq!(
        second["vanished"],
        json!([{"uid": 3, "vanished": true, "earlier": true}]),
        "{second}"
    );
    // The flag change, and the new message (changed since, too).
    assert_eq!(
        second["flagEvents"],
        json!([{"uid": 2, "flags": ["\\Flagged"]}, {"uid": new_uid, "flags": []}]),
        "{second}"
    );
    let view = store_view(&server);
    assert_eq!(second["messages"], view, "{second}");
    assert!(
        view.get(new_uid.to_string()).is_some() && view.get("3").is_none(),
        "{view}"
    );
}

/// `forget-modseq`: with the rule added between two connects, SELECT says
/// `NOMODSEQ`, imapflow drops its QRESYNC state and syncs in full, and
/// still ends with the store's view (a flag change made meanwhile included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imapflow_falls_back_to_a_full_sync_when_modseqs_are_forgotten() {
    assert!(
        js_dir().join("node_modules/imapflow/package.json").exists(),
        "imapflow is missing in {}: run scripts/install-test-deps.sh (npm install there)",
        js_dir().display()
    );
    let server = start().await;
    for i in 0..3 {
        deliver(&server, ALICE, &message("b@x.test", &format!("m{i}"), "x"));
    }
    let first = imapflow_sync(&server, None).await;
    assert_eq!(first["mode"], "full", "{first}");
    server
        .add_fault_toml(
            "name = \"lost-modseqs\"\nstage = \"imap-select\"\naction = \"forget-modseq\"\nmailbox = \"alice\"",
        )
        .expect("rule");
    let mut b = Client::login(server.imap_addr(), ALICE).await;
    for cmd in [
        "b1 SELECT INBOX",
        "b2 UID STORE 1 +FLAGS (\\Answered)",
        "b3 LOGOUT",
    ] {
        let r = b.cmd(cmd).await;
        assert!(r.contains(" OK "), "{cmd}: {r}");
    }
    let second = imapflow_sync(&server, Some(&first.to_string())).await;
    assert_eq!(second["noModseq"], true, "imapflow read NOMODSEQ: {second}");
    assert_eq!(
        second["mode"], "full",
        "QRESYNC refused, full resync: {second}"
    );
    assert_eq!(second["vanished"], serde_json::json!([]), "{second}");
    assert_eq!(second["messages"], store_view(&server), "{second}");
    assert_eq!(
        second["messages"]["1"],
        serde_json::json!(["\\Answered"]),
        "{second}"
    );
}
