//! NOTIFY (RFC 5465) over raw bytes: another session's changes reach a
//! session that asked for them without it sending a command, and bad
//! NOTIFY commands are refused while the session goes on.

mod support;

use support::imap::*;

#[tokio::test]
async fn another_sessions_changes_reach_a_notify_session_unasked() {
    let server = start().await;
    let mut a = Client::login(server.imap_addr(), ALICE).await;
    let mut b = Client::login(server.imap_addr(), ALICE).await;
    assert!(
        a.cmd("c1 CREATE Lists")
            .await
            .ends_with("c1 OK Create completed\r\n")
    );
    assert!(a.cmd("s1 SELECT INBOX").await.contains("s1 OK"));
    let set = a
        .cmd("n1 NOTIFY SET STATUS (selected (MessageNew MessageExpunge FlagChange)) (mailboxes Lists (MessageNew MessageExpunge))")
        .await;
    assert!(
        set.starts_with("* STATUS Lists (MESSAGES 0 UIDNEXT 1 UIDVALIDITY "),
        "{set}"
    );
    assert!(set.ends_with("n1 OK NOTIFY completed\r\n"), "{set}");

    // A folder not selected: a STATUS, with nothing asked.
    let msg = message("Bob <bob@example.test>", "list mail", "hello");
    let append = format!("b1 APPEND Lists {{{}+}}\r\n", msg.len());
    b.send(append.as_bytes()).await;
    b.send(&msg).await;
    b.send(b"\r\n").await;
    assert!(b.until_tag("b1").await.contains("b1 OK"));
    let status = a.line().await;
    assert!(
        status.starts_with("* STATUS Lists (MESSAGES 1 UIDNEXT 2 UIDVALIDITY "),
        "{status}"
    );

    // The selected folder: new mail, a flag change, an expunge.
    deliver(
        &server,
        ALICE,
        &message("Carol <carol@example.test>", "one", "x"),
    );
    let exists = a.line().await;
    assert_eq!(exists, "* 1 EXISTS\r\n");
    assert_eq!(a.line().await, "* 1 RECENT\r\n");
    assert!(b.cmd("b2 SELECT INBOX").await.contains("b2 OK"));
    assert!(
        b.cmd("b3 STORE 1 +FLAGS (\\Deleted)")
            .await
            .contains("b3 OK")
    );
    let fetch = a.line().await;
    assert!(
        fetch.starts_with("* 1 FETCH (FLAGS (") && fetch.contains("\\Deleted"),
        "{fetch}"
    );
    assert!(b.cmd("b4 EXPUNGE").await.contains("b4 OK"));
    assert_eq!(a.line().await, "* 1 EXPUNGE\r\n");

    // After NOTIFY NONE nothing comes unasked: a change to Lists is not
    // told, and the next command's answer is only its own.
    assert_eq!(a.cmd("n2 NOTIFY NONE").await, "n2 OK NOTIFY completed\r\n");
    assert!(b.cmd("b5 STATUS Lists (MESSAGES)").await.contains("b5 OK"));
    b.send(append.replace("b1", "b6").as_bytes()).await;
    b.send(&msg).await;
    b.send(b"\r\n").await;
    assert!(b.until_tag("b6").await.contains("b6 OK"));
    assert_eq!(a.cmd("a9 NOOP").await, "a9 OK NOOP completed\r\n");
    server.shutdown().await;
}

#[tokio::test]
async fn notify_status_neither_fires_nor_journals_imap_select_faults() {
    let server = start().await;
    server
        .add_fault_toml(
            "name = \"hide\"\nstage = \"imap-select\"\naction = \"hide-messages\"\nmailbox = \"alice\"",
        )
        .unwrap();
    let mut a = Client::login(server.imap_addr(), ALICE).await;
    let mut b = Client::login(server.imap_addr(), ALICE).await;
    assert!(a.cmd("c1 CREATE Lists").await.contains("c1 OK"));
    let select = a.cmd("s1 SELECT INBOX").await;
    assert!(
        select.contains("* 0 EXISTS") && select.contains("s1 OK"),
        "{select}"
    );
    // The one firing of this test: the client's own SELECT.
    assert_eq!(server.fault("hide").unwrap().fired, 1);

    let set = a
        .cmd("n1 NOTIFY SET STATUS (mailboxes Lists (MessageNew MessageExpunge))")
        .await;
    assert!(
        set.starts_with("* STATUS Lists (MESSAGES 0 UIDNEXT 1 "),
        "{set}"
    );
    for i in 0..3 {
        let msg = message("Bob <bob@example.test>", &format!("list mail {i}"), "hello");
        b.send(format!("b{i} APPEND Lists {{{}+}}\r\n", msg.len()).as_bytes())
            .await;
        b.send(&msg).await;
        b.send(b"\r\n").await;
        assert!(b.until_tag(&format!("b{i}")).await.contains("OK"));
        // Told unasked, and the rule is still applied: the folder looks
        // empty, as a SELECT of it would show it, only UIDNEXT moves.
        let status = a.line().await;
        let want = format!("* STATUS Lists (MESSAGES 0 UIDNEXT {} ", i + 2);
        assert!(status.starts_with(&want), "{status}");
        assert!(
            a.cmd(&format!("a{i} NOOP"))
                .await
                .ends_with("OK NOOP completed\r\n")
        );
    }
    assert_eq!(
        server.fault("hide").unwrap().fired,
        1,
        "NOTIFY's STATUS lines fired the imap-select rule"
    );
    let journalled = server
        .journal_for(ALICE)
        .iter()
        .filter(|e| e.rule.as_deref() == Some("hide"))
        .count();
    assert_eq!(
        journalled, 1,
        "NOTIFY's STATUS lines were journalled as faults"
    );
    // A STATUS the client asks for still fires the rule.
    let status = a.cmd("s2 STATUS Lists (MESSAGES)").await;
    assert!(status.contains("* STATUS Lists (MESSAGES 0)"), "{status}");
    assert_eq!(server.fault("hide").unwrap().fired, 2);
    server.shutdown().await;
}

#[tokio::test]
async fn selected_delayed_keeps_expunges_for_the_next_command() {
    let server = start().await;
    deliver(
        &server,
        ALICE,
        &message("Carol <carol@example.test>", "one", "x"),
    );
    deliver(
        &server,
        ALICE,
        &message("Carol <carol@example.test>", "two", "y"),
    );
    let mut a = Client::login(server.imap_addr(), ALICE).await;
    let mut b = Client::login(server.imap_addr(), ALICE).await;
    assert!(a.cmd("s1 SELECT INBOX").await.contains("s1 OK"));
    assert_eq!(
        a.cmd("n1 NOTIFY SET (selected-delayed (MessageNew MessageExpunge))")
            .await,
        "n1 OK NOTIFY completed\r\n"
    );
    assert!(b.cmd("b1 SELECT INBOX").await.contains("b1 OK"));
    assert!(
        b.cmd("b2 STORE 1 +FLAGS.SILENT (\\Deleted)")
            .await
            .contains("b2 OK")
    );
    assert!(b.cmd("b3 EXPUNGE").await.contains("b3 OK"));
    // The flag change is told at once (see the notify module: with or
    // without FlagChange), new mail too; the expunge waits for a command.
    let fetch = a.line().await;
    assert!(fetch.starts_with("* 1 FETCH (FLAGS (\\Deleted"), "{fetch}");
    deliver(
        &server,
        ALICE,
        &message("Carol <carol@example.test>", "three", "z"),
    );
    assert_eq!(a.line().await, "* 3 EXISTS\r\n");
    let noop = a.cmd("a2 NOOP").await;
    assert!(noop.contains("* 1 EXPUNGE\r\n"), "{noop}");
    assert!(noop.ends_with("a2 OK NOOP completed\r\n"), "{noop}");
    server.shutdown().await;
}

#[tokio::test]
async fn bad_notify_commands_are_refused_and_the_session_goes_on() {
    let server = start().await;
    let mut c = Client::connect(server.imap_addr()).await;
    assert_eq!(
        c.cmd("p1 NOTIFY NONE").await,
        "p1 BAD Not authenticated: NOTIFY not allowed in this state\r\n"
    );
    assert!(
        c.cmd("l1 LOGIN alice@example.test secret")
            .await
            .contains("l1 OK")
    );
    for (i, bad) in [
        "NOTIFY",
        "NOTIFY SET",
        "NOTIFY BOGUS",
        "NOTIFY NONE (selected)",
        "NOTIFY SET (selected",
        "NOTIFY SET (selected (MessageNew))",
        "NOTIFY SET (selected (FlagChange MessageNew))",
        "NOTIFY SET (everything (MessageNew MessageExpunge))",
        "NOTIFY SET (mailboxes (MessageNew MessageExpunge))",
        "NOTIFY SET (inboxes (MessageNew (UID FLAGS) MessageExpunge))",
        "NOTIFY SET STATUS (personal (MessageNew MessageExpunge)) (personal none)",
    ]
    .iter()
    .enumerate()
    {
        let tag = format!("b{i}");
        let got = c.cmd(&format!("{tag} {bad}")).await;
        assert!(
            got.starts_with(&format!("{tag} BAD Error in NOTIFY")),
            "{bad}: {got}"
        );
        assert_eq!(got.lines().count(), 1, "{bad}: {got}");
    }
    let got = c
        .cmd("e1 NOTIFY SET (personal (MessageNew MessageExpunge MailboxMetadataChange))")
        .await;
    assert!(got.starts_with("e1 NO [BADEVENT ("), "{got}");
    // Refused requests leave no request in force; the session still works.
    assert!(c.cmd("s1 SELECT INBOX").await.contains("s1 OK"));
    assert_eq!(c.cmd("a1 NOOP").await, "a1 OK NOOP completed\r\n");
    assert_eq!(
        c.cmd("n1 NOTIFY SET (inboxes (MessageNew MessageExpunge))")
            .await,
        "n1 OK NOTIFY completed\r\n"
    );
    server.shutdown().await;
}
