//! Faults on the read side, seen by third-party clients: IMAP `fail-login`,
//! `hide-messages` and `change-uidvalidity` through Python's `imaplib`, POP3
//! `fail-login` through `poplib` and `hide-messages` through `curl pop3://`.
//! Each test also checks that mailboxes the rule does not select are
//! untouched, and that the journal names the rule. A missing python3 or curl
//! fails the test with a clear message (`scripts/install-test-deps.sh`).

mod support;

use mailrig_core::fault::Stage;
use mailrig_server::MockServer;
use serde_json::Value;
use support::pop3::{put, uid_validity};
use support::{KANZLEI, run_tool};

const MSG: &str =
    "From: a@extern.test\r\nSubject: hidden?\r\nMessage-ID: <rs-1@extern.test>\r\n\r\nbody\r\n";

async fn kanzlei() -> MockServer {
    MockServer::builder()
        .scenario_file(KANZLEI)
        .unwrap()
        .start()
        .await
        .unwrap()
}

/// Runs a Python script with arguments and parses the JSON it prints.
async fn python(script: &str, args: &[&str]) -> Value {
    let mut all = vec!["-c", script];
    all.extend_from_slice(args);
    let out = run_tool("python3", &all).await;
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Logs in as each user given and reports, per user, "ok" or the error text;
/// for users that got in, SELECT INBOX's EXISTS, UIDVALIDITY, SEARCH ALL,
/// FETCH 1:* FLAGS and STATUS INBOX.
const IMAPLIB: &str = r#"
import imaplib, json, sys
port = int(sys.argv[1])
out = {}
for user in sys.argv[2:]:
    m = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    r = {}
    try:
        m.login(user, "secret")
        r["login"] = "ok"
    except imaplib.IMAP4.error as e:
        r["login"] = str(e)
        out[user] = r
        m.shutdown()
        continue
    typ, data = m.select("INBOX")
    r["exists"] = int(data[0])
    r["uidvalidity"] = int(m.response("UIDVALIDITY")[1][0])
    typ, data = m.search(None, "ALL")
    r["search"] = data[0].decode().split()
    typ, data = m.fetch("1:*", "(FLAGS)")
    r["fetch"] = [d.decode() for d in data if d]
    typ, data = m.status("INBOX", "(MESSAGES UIDVALIDITY)")
    r["status"] = data[0].decode()
    m.logout()
    out[user] = r
print(json.dumps(out))
"#;

async fn imaplib(server: &MockServer, users: &[&str]) -> Value {
    let port = server.imap_addr().port().to_string();
    let mut args = vec![port.as_str()];
    args.extend_from_slice(users);
    python(IMAPLIB, &args).await
}

const ANNA: &str = "anna@kanzlei.test";
const BERND: &str = "bernd@kanzlei.test";

#[tokio::test]
async fn imap_fail_login_refuses_the_selected_mailbox_only() {
    let server = kanzlei().await;
    let warnings = server
        .add_fault_toml(
            "name = \"locked\"\nstage = \"imap-login\"\naction = \"fail-login\"\nmailbox = \"anna\"",
        )
        .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let r = imaplib(&server, &[ANNA, BERND]).await;
    let anna = r[ANNA]["login"].as_str().unwrap();
    assert!(anna.contains("AUTHENTICATIONFAILED"), "{r}");
    assert_eq!(r[BERND]["login"], "ok", "{r}");

    let journal = server.journal_for(ANNA);
    assert_eq!(journal.len(), 1, "{journal:?}");
    assert_eq!(journal[0].stage, Stage::ImapLogin);
    assert_eq!(journal[0].rule.as_deref(), Some("locked"));
    assert!(server.journal_for(BERND).is_empty());
    assert_eq!(server.fault("locked").unwrap().fired, 1);

    // Switched off, the right password works again.
    assert!(server.set_fault_enabled("locked", false));
    let r = imaplib(&server, &[ANNA]).await;
    assert_eq!(r[ANNA]["login"], "ok", "{r}");
    server.shutdown().await;
}

#[tokio::test]
async fn imap_select_hide_messages_shows_an_empty_folder() {
    let server = kanzlei().await;
    put(&server, ANNA, MSG);
    put(&server, BERND, MSG);
    server
        .add_fault_toml(
            "name = \"hide\"\nstage = \"imap-select\"\naction = \"hide-messages\"\nmailbox = \"anna\"",
        )
        .unwrap();
    let r = imaplib(&server, &[ANNA, BERND]).await;
    assert_eq!(r[ANNA]["exists"], 0, "{r}");
    assert_eq!(r[ANNA]["search"], serde_json::json!([]), "{r}");
    assert_eq!(r[ANNA]["fetch"], serde_json::json!([]), "{r}");
    assert!(
        r[ANNA]["status"].as_str().unwrap().contains("MESSAGES 0"),
        "{r}"
    );
    // The message is stored all the same.
    assert_eq!(server.inbox(ANNA).unwrap().len(), 1);
    // Other mailboxes see their mail.
    assert_eq!(r[BERND]["exists"], 1, "{r}");
    assert_eq!(r[BERND]["search"], serde_json::json!(["1"]), "{r}");
    assert!(
        r[BERND]["status"].as_str().unwrap().contains("MESSAGES 1"),
        "{r}"
    );
    // SELECT and STATUS both asked the rule.
    assert_eq!(server.fault("hide").unwrap().fired, 2);
    assert!(
        server
            .journal_for(ANNA)
            .iter()
            .all(|e| e.stage == Stage::ImapSelect && e.rule.as_deref() == Some("hide"))
    );

    server.remove_fault("hide");
    let r = imaplib(&server, &[ANNA]).await;
    assert_eq!(r[ANNA]["exists"], 1, "{r}");
    server.shutdown().await;
}

#[tokio::test]
async fn imap_fetch_hide_messages_hides_from_fetch_and_search_only() {
    let server = kanzlei().await;
    put(&server, ANNA, MSG);
    server
        .add_fault_toml("stage = \"imap-fetch\"\naction = \"hide-messages\"\nuser = \"anna@*\"")
        .unwrap();
    let r = imaplib(&server, &[ANNA, BERND]).await;
    // SELECT tells the truth, FETCH and SEARCH find nothing.
    assert_eq!(r[ANNA]["exists"], 1, "{r}");
    assert_eq!(r[ANNA]["search"], serde_json::json!([]), "{r}");
    assert_eq!(r[ANNA]["fetch"], serde_json::json!([]), "{r}");
    assert!(
        r[ANNA]["status"].as_str().unwrap().contains("MESSAGES 1"),
        "{r}"
    );
    // One evaluation per command (SEARCH, FETCH), not per message.
    assert_eq!(server.faults()[0].fired, 2);
    server.shutdown().await;
}

#[tokio::test]
async fn imap_change_uidvalidity_is_new_per_session_and_stable_within_one() {
    let server = kanzlei().await;
    put(&server, ANNA, MSG);
    let stored = uid_validity(&server, ANNA);
    server
        .add_fault_toml(
            "name = \"migrated\"\nstage = \"imap-select\"\naction = \"change-uidvalidity\"\ndomain = \"kanzlei.test\"\nexcept = \"bernd\"",
        )
        .unwrap();
    let first = imaplib(&server, &[ANNA, BERND]).await;
    let v1 = first[ANNA]["uidvalidity"].as_u64().unwrap();
    assert_ne!(v1, u64::from(stored), "{first}");
    assert_eq!(v1, u64::from(stored) + 1, "{first}");
    // STATUS in the same session agrees with SELECT.
    assert!(
        first[ANNA]["status"]
            .as_str()
            .unwrap()
            .contains(&format!("UIDVALIDITY {v1}")),
        "{first}"
    );
    let bernd_stored = uid_validity(&server, BERND);
    assert_eq!(
        first[BERND]["uidvalidity"].as_u64().unwrap(),
        u64::from(bernd_stored),
        "{first}"
    );
    // A new session: a new value again; the store itself is unchanged.
    let second = imaplib(&server, &[ANNA]).await;
    let v2 = second[ANNA]["uidvalidity"].as_u64().unwrap();
    assert!(v2 != v1 && v2 != u64::from(stored), "{v1} {v2} {stored}");
    assert_eq!(uid_validity(&server, ANNA), stored);
    assert_eq!(second[ANNA]["exists"], 1);
    server.shutdown().await;
}

const POPLIB: &str = r#"
import json, poplib, sys
port = int(sys.argv[1])
out = {}
for user in sys.argv[2:]:
    p = poplib.POP3("127.0.0.1", port, timeout=10)
    p.user(user)
    try:
        r = p.pass_("secret").decode()
        out[user] = {"pass": r, "stat": list(p.stat())}
        p.quit()
    except poplib.error_proto as e:
        out[user] = {"pass": e.args[0].decode() if isinstance(e.args[0], bytes) else str(e)}
        p.close()
print(json.dumps(out))
"#;

#[tokio::test]
async fn pop3_fail_login_with_poplib() {
    let server = kanzlei().await;
    put(&server, BERND, MSG);
    server
        .add_fault_toml(
            "name = \"pop-locked\"\nstage = \"pop3\"\naction = \"fail-login\"\nmailbox = \"anna\"",
        )
        .unwrap();
    let port = server.pop3_addr().port().to_string();
    let r = python(POPLIB, &[&port, ANNA, BERND]).await;
    assert_eq!(r[ANNA]["pass"], "-ERR [AUTH] authentication failed", "{r}");
    assert!(r[BERND]["pass"].as_str().unwrap().starts_with("+OK"), "{r}");
    assert_eq!(r[BERND]["stat"][0], 1, "{r}");
    let j = server.journal_for(ANNA);
    assert_eq!(j.len(), 1, "{j:?}");
    assert_eq!(j[0].stage, Stage::Pop3);
    server.shutdown().await;
}

#[tokio::test]
async fn pop3_hide_messages_with_curl_and_poplib() {
    let server = kanzlei().await;
    put(&server, ANNA, MSG);
    put(&server, ANNA, MSG);
    put(&server, BERND, MSG);
    server
        .add_fault_toml("stage = \"pop3\"\naction = \"hide-messages\"\nmailbox = \"anna\"")
        .unwrap();
    let url = format!("pop3://127.0.0.1:{}/", server.pop3_addr().port());
    let list = |user: &str| {
        let userpass = format!("{user}:secret");
        let url = url.clone();
        async move { run_tool("curl", &["-sS", "--max-time", "10", "-u", &userpass, &url]).await }
    };
    // curl prints the LIST lines: none for anna, one for bernd.
    assert_eq!(list(ANNA).await.trim(), "", "anna's list must look empty");
    let bernd = list(BERND).await;
    assert_eq!(bernd.lines().count(), 1, "{bernd}");
    assert!(bernd.starts_with("1 "), "{bernd}");
    assert_eq!(server.inbox(ANNA).unwrap().len(), 2);

    let port = server.pop3_addr().port().to_string();
    let r = python(POPLIB, &[&port, ANNA]).await;
    assert_eq!(r[ANNA]["stat"], serde_json::json!([0, 0]), "{r}");
    // QUIT on a hidden maildrop deletes nothing.
    assert_eq!(server.inbox(ANNA).unwrap().len(), 2);
    server.shutdown().await;
}

// ---- the read-side scenarios of the catalog (crates/mailrig-core/catalog) ----------

fn catalog(name: &str) -> String {
    format!(
        "{}/../../crates/mailrig-core/catalog/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    )
}

async fn catalog_server(name: &str) -> MockServer {
    MockServer::builder()
        .scenario_file(catalog(name))
        .unwrap()
        .start()
        .await
        .unwrap()
}

#[tokio::test]
async fn catalog_imap_login_broken_for_user10_to_user25() {
    let server = catalog_server("imap-login-broken").await;
    for who in [
        "user09@patente.test",
        "user10@patente.test",
        "user25@patente.test",
    ] {
        put(&server, who, MSG);
    }
    let r = imaplib(
        &server,
        &[
            "user09@patente.test",
            "user10@patente.test",
            "user25@patente.test",
            ANNA,
        ],
    )
    .await;
    assert_eq!(r["user09@patente.test"]["login"], "ok", "{r}");
    assert_eq!(r["user09@patente.test"]["exists"], 1, "{r}");
    assert_eq!(r[ANNA]["login"], "ok", "{r}");
    for broken in ["user10@patente.test", "user25@patente.test"] {
        let text = r[broken]["login"].as_str().unwrap();
        assert!(text.contains("AUTHENTICATIONFAILED"), "{broken}: {r}");
        // The mail is there; only reading it is broken.
        assert_eq!(server.inbox(broken).unwrap().len(), 1);
        let j = server.journal_for(broken);
        assert_eq!(j.len(), 1, "{j:?}");
        assert_eq!(j[0].stage, Stage::ImapLogin);
        assert_eq!(j[0].rule.as_deref(), Some("imap-userdb-incomplete"));
    }
    // POP3 is broken for the same users.
    let port = server.pop3_addr().port().to_string();
    let r = python(
        POPLIB,
        &[&port, "user11@patente.test", "user01@patente.test"],
    )
    .await;
    assert_eq!(
        r["user11@patente.test"]["pass"], "-ERR [AUTH] authentication failed",
        "{r}"
    );
    assert!(
        r["user01@patente.test"]["pass"]
            .as_str()
            .unwrap()
            .starts_with("+OK"),
        "{r}"
    );
    let j = server.journal_for("user11@patente.test");
    assert_eq!(j[0].rule.as_deref(), Some("pop3-userdb-incomplete"));
    server.shutdown().await;
}

#[tokio::test]
async fn catalog_hidden_messages_in_annas_inbox() {
    let server = catalog_server("hidden-messages").await;
    put(&server, ANNA, MSG);
    put(&server, BERND, MSG);
    let r = imaplib(&server, &[ANNA, BERND]).await;
    assert_eq!(r[ANNA]["exists"], 0, "anna's INBOX looks empty: {r}");
    assert_eq!(r[BERND]["exists"], 1, "{r}");
    assert_eq!(
        server.inbox(ANNA).unwrap().len(),
        1,
        "although the message is stored"
    );
    let port = server.pop3_addr().port().to_string();
    let r = python(POPLIB, &[&port, ANNA]).await;
    assert_eq!(r[ANNA]["stat"], serde_json::json!([0, 0]), "{r}");
    let rules: Vec<_> = server
        .journal_for(ANNA)
        .into_iter()
        .filter_map(|e| e.rule)
        .collect();
    assert!(
        rules.iter().any(|r| &**r == "anna-index-corrupt-imap"),
        "{rules:?}"
    );
    assert!(
        rules.iter().any(|r| &**r == "anna-index-corrupt-pop3"),
        "{rules:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn catalog_uidvalidity_reset_on_every_session() {
    let server = catalog_server("uidvalidity-reset").await;
    put(&server, ANNA, MSG);
    let stored = uid_validity(&server, ANNA);
    let first = imaplib(&server, &[ANNA]).await;
    let second = imaplib(&server, &[ANNA]).await;
    let a = first[ANNA]["uidvalidity"].as_u64().unwrap();
    let b = second[ANNA]["uidvalidity"].as_u64().unwrap();
    assert_ne!(
        a,
        u64::from(stored),
        "the client sees a changed UIDVALIDITY"
    );
    assert_ne!(
        a, b,
        "and a new one in the next session, so it must resync each time"
    );
    assert!(
        server
            .journal_for(ANNA)
            .iter()
            .any(|e| e.rule.as_deref() == Some("uidvalidity-changes")),
        "journaled"
    );
    server.shutdown().await;
}
