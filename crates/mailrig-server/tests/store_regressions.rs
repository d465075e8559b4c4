//! Regression tests of the message store met the way a peer meets it: over a
//! raw IMAP socket, and across a restart of a Maildir-backed server.

mod support;

use support::imap::*;

/// Issue 9: `SELECT {6}` + `INBO\xc3\xa9` panicked in the store ("end byte
/// index 5 is not a char boundary") and the connection died. Now the folder
/// does not exist, and the same session goes on.
#[tokio::test]
async fn select_of_a_name_cutting_a_character_is_no_and_the_session_lives() {
    let server = start().await;
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    c.send(b"a1 SELECT {6}\r\n").await;
    assert_eq!(c.line().await, "+ OK\r\n");
    c.send(b"INBO\xc3\xa9\r\n").await;
    let reply = c.until_tag("a1").await;
    assert!(reply.starts_with("a1 NO "), "{reply:?}");
    // Non-synchronising literal, and EXAMINE and STATUS too.
    for (tag, cmd) in [("a2", "EXAMINE"), ("a3", "STATUS")] {
        let items = if cmd == "STATUS" { " (MESSAGES)" } else { "" };
        let mut line = format!("{tag} {cmd} {{7+}}\r\n").into_bytes();
        line.extend_from_slice(b"inbo\xe2\x82\xac");
        line.extend_from_slice(format!("{items}\r\n").as_bytes());
        c.send(&line).await;
        let reply = c.until_tag(tag).await;
        assert!(reply.starts_with(&format!("{tag} NO ")), "{reply:?}");
    }
    let ok = c.cmd("a4 SELECT INBOX").await;
    assert!(ok.contains("a4 OK"), "{ok:?}");
    server.shutdown().await;
}

async fn start_maildir(dir: &std::path::Path) -> mailrig_server::MockServer {
    mailrig_server::MockServer::builder()
        .pop3(None)
        .maildir(dir)
        .start()
        .await
        .expect("start mock server")
}

/// Issue 9: IMAP keywords were lost when a `--maildir` server restarted.
#[tokio::test]
async fn keywords_stored_over_imap_survive_a_maildir_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_maildir(dir.path()).await;
    deliver(&server, ALICE, &message("a@x.test", "one", "1"));
    deliver(&server, ALICE, &message("a@x.test", "two", "2"));
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    assert!(c.cmd("a1 SELECT INBOX").await.contains("a1 OK"));
    let r = c.cmd("a2 STORE 1 +FLAGS (\\Seen $Forwarded Projekt)").await;
    assert!(r.contains("a2 OK"), "{r}");
    let r = c.cmd("a3 STORE 2 +FLAGS (projekt)").await;
    assert!(r.contains("a3 OK"), "{r}");
    c.cmd("a5 LOGOUT").await;
    server.shutdown().await;

    let server = start_maildir(dir.path()).await;
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    let r = c.cmd("b1 SELECT INBOX").await;
    assert!(r.contains("$Forwarded") && r.contains("Projekt"), "{r}");
    let r = c.cmd("b2 FETCH 1:2 (UID FLAGS)").await;
    assert_eq!(
        lines(&r)[..2],
        [
            "* 1 FETCH (UID 1 FLAGS (\\Seen $Forwarded Projekt))",
            "* 2 FETCH (UID 2 FLAGS (Projekt))",
        ],
        "{r}"
    );
    server.shutdown().await;
}
