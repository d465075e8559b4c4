//! IDLE's direct fan-out as clients see it (`imap::idlers`): deliveries to
//! many idling sessions are told once each and the sessions know afterwards
//! what their clients were told; what the fan-out cannot tell by itself (a
//! message gone before the session ran, keywords, TLS, `\Recent`) comes out
//! as it would without it.

mod support;

use std::time::Duration;

use mailrig_core::store::{FlagOp, Flags, NewMessage, SystemFlag};
use support::imap::*;

/// A session logged in as alice, idling on INBOX.
async fn idling(server: &mailrig_server::MockServer) -> Client {
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    c.cmd("s SELECT INBOX").await;
    c.send(b"i IDLE\r\n").await;
    assert_eq!(c.line().await, "+ idling\r\n");
    c
}

/// The next untagged `* n EXISTS` and `* r RECENT` pair.
async fn exists_recent(c: &mut Client) -> (u32, u32) {
    let exists = c.line().await;
    let recent = c.line().await;
    let n = |l: &str, what: &str| -> u32 {
        l.strip_prefix("* ")
            .and_then(|l| l.strip_suffix(&format!(" {what}\r\n")))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("expected `* n {what}`, got {l:?}"))
    };
    (n(&exists, "EXISTS"), n(&recent, "RECENT"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_idling_session_is_told_each_delivery_once_and_knows_it_after() {
    const SESSIONS: usize = 40;
    let server = start().await;
    let mut clients = Vec::new();
    for _ in 0..SESSIONS {
        clients.push(idling(&server).await);
    }
    let mut recent = vec![0; SESSIONS];
    for n in 1..=3 {
        deliver(
            &server,
            ALICE,
            &message("b@example.test", &format!("m{n}"), "x"),
        );
        for (c, r) in clients.iter_mut().zip(recent.iter_mut()) {
            let (exists, rec) = exists_recent(c).await;
            assert_eq!(exists, n);
            *r = rec;
        }
    }
    // Each message is \Recent for exactly one session.
    assert_eq!(recent.iter().sum::<u32>(), 3, "{recent:?}");
    for c in &mut clients {
        c.send(b"DONE\r\n").await;
        // Told once: DONE brings no second EXISTS.
        assert_eq!(c.until_tag("i").await, "i OK Idle completed\r\n");
        let fetched = c
            .cmd("f FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            .await;
        for n in 1..=3 {
            assert!(
                fetched.contains(&format!("* {n} FETCH (UID {n} ")),
                "{fetched}"
            );
            assert!(fetched.contains(&format!("Subject: m{n}")), "{fetched}");
        }
        assert!(fetched.ends_with("f OK Fetch completed\r\n"), "{fetched}");
    }
}

#[tokio::test]
async fn a_message_gone_before_the_session_ran_is_expunged_for_its_client() {
    let server = start().await;
    // The first idling session a pass meets is woken to claim \Recent; the
    // second is told directly.
    let _claimer = idling(&server).await;
    let mut a = idling(&server).await;
    deliver(&server, ALICE, &message("b@example.test", "soon gone", "x"));
    assert_eq!(exists_recent(&mut a).await, (1, 0));
    // Flagged and expunged with no await between: the session's task cannot
    // run before the message is gone from the store.
    let id = server.world().mailbox_by_address(ALICE).unwrap();
    let mb = server.store().mailbox(id);
    let deleted = Flags::default().with(SystemFlag::Deleted);
    mb.store_flags("INBOX", &[1], FlagOp::Add, &deleted)
        .unwrap();
    assert_eq!(mb.expunge("INBOX", None).unwrap(), vec![1]);
    assert_eq!(a.line().await, "* 1 EXPUNGE\r\n");
    a.send(b"DONE\r\n").await;
    assert_eq!(a.until_tag("i").await, "i OK Idle completed\r\n");
    assert_eq!(a.cmd("n NOOP").await, "n OK NOOP completed\r\n");
    assert_eq!(
        a.cmd("s SEARCH ALL").await,
        "* SEARCH\r\ns OK Search completed\r\n"
    );
    // The next delivery is message 1 again for this client.
    a.send(b"i IDLE\r\n").await;
    assert_eq!(a.line().await, "+ idling\r\n");
    deliver(&server, ALICE, &message("b@example.test", "next", "x"));
    assert_eq!(exists_recent(&mut a).await, (1, 0));
    a.send(b"DONE\r\n").await;
    assert_eq!(a.until_tag("i").await, "i OK Idle completed\r\n");
    let fetched = a.cmd("f FETCH 1 (UID)").await;
    assert_eq!(fetched, "* 1 FETCH (UID 2)\r\nf OK Fetch completed\r\n");
}

#[tokio::test]
async fn a_new_keyword_is_announced_before_the_message() {
    let server = start().await;
    let mut a = idling(&server).await;
    let id = server.world().mailbox_by_address(ALICE).unwrap();
    let mut flags = Flags::default();
    flags.add_keyword("$Label1");
    let msg = NewMessage {
        raw: message("b@example.test", "labelled", "x").into(),
        envelope: None,
        flags,
        internal_date: chrono::Utc::now(),
    };
    server.store().mailbox(id).append("INBOX", msg).unwrap();
    assert!(a.line().await.starts_with("* FLAGS ("), "FLAGS first");
    assert!(a.line().await.starts_with("* OK [PERMANENTFLAGS ("));
    assert_eq!(exists_recent(&mut a).await, (1, 1));
    a.send(b"DONE\r\n").await;
    assert_eq!(a.until_tag("i").await, "i OK Idle completed\r\n");
}

#[tokio::test]
async fn a_session_over_starttls_is_told_through_its_own_task() {
    let server = start().await;
    let tcp = tokio::net::TcpStream::connect(server.imap_addr())
        .await
        .unwrap();
    let mut plain = Client::over(Box::new(tcp));
    plain.line().await;
    assert!(plain.cmd("t STARTTLS").await.contains("t OK"));
    let tls = tls_connector(&server)
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            plain.into_inner(),
        )
        .await
        .expect("TLS handshake");
    let mut a = Client::over(Box::new(tls));
    assert!(
        a.cmd(&format!("l LOGIN {ALICE} {PASSWORD}"))
            .await
            .contains("l OK")
    );
    a.cmd("s SELECT INBOX").await;
    a.send(b"i IDLE\r\n").await;
    assert_eq!(a.line().await, "+ idling\r\n");
    // A plain-TCP session idling beside it is told directly.
    let mut b = idling(&server).await;
    for n in 1..=2 {
        deliver(
            &server,
            ALICE,
            &message("b@example.test", &format!("m{n}"), "x"),
        );
        assert_eq!(exists_recent(&mut a).await.0, n);
        assert_eq!(exists_recent(&mut b).await.0, n);
    }
    for c in [&mut a, &mut b] {
        c.send(b"DONE\r\n").await;
        assert_eq!(c.until_tag("i").await, "i OK Idle completed\r\n");
    }
}

#[tokio::test]
async fn a_client_that_reads_late_gets_every_exists_once_in_order() {
    let server = start().await;
    let _claimer = idling(&server).await;
    let mut a = idling(&server).await;
    // Many deliveries while the client reads nothing, some told by the
    // fan-out, some (claims, passes that found nothing new) not: each
    // EXISTS comes once and in order.
    const N: u32 = 300;
    for n in 1..=N {
        deliver(
            &server,
            ALICE,
            &message("b@example.test", &format!("m{n}"), "x"),
        );
        if n % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut last = 0;
    while last < N {
        let (exists, _) = exists_recent(&mut a).await;
        assert!(exists > last, "EXISTS went from {last} to {exists}");
        last = exists;
    }
    a.send(b"DONE\r\n").await;
    assert_eq!(a.until_tag("i").await, "i OK Idle completed\r\n");
    let r = a.cmd(&format!("f FETCH {N} (UID)")).await;
    assert_eq!(
        r,
        format!("* {N} FETCH (UID {N})\r\nf OK Fetch completed\r\n")
    );
}
