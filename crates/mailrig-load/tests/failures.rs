//! Runs against servers that misbehave on purpose (tiny in-test servers on loopback): failures are counted
//! by kind and code, and every run stops by itself or on cancellation.

use std::time::Duration;

use mailrig_load::{ErrorKind, LoadConfig, RecipientPool, Stage, Target};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

fn config(port: u16) -> LoadConfig {
    let target = Target::parse(&format!("smtp://127.0.0.1:{port}")).unwrap();
    let pool = RecipientPool::from_patterns(&["ok{1..3}@x.test", "bad@x.test"]).unwrap();
    let mut c = LoadConfig::new(target, pool);
    c.messages = Some(20);
    c.sessions = 2;
    c.timeout = Duration::from_secs(10);
    c
}

/// A minimal SMTP server: PIPELINING, refuses RCPT to bad@..., closes after `close_after` messages.
async fn scripted_server(listener: TcpListener) {
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let (r, mut w) = sock.into_split();
            let mut lines = BufReader::new(r).lines();
            let _ = w.write_all(b"220 test ESMTP\r\n").await;
            let mut in_data = false;
            let mut good_rcpt = false;
            while let Ok(Some(line)) = lines.next_line().await {
                let reply: &[u8] = if in_data {
                    if line == "." {
                        in_data = false;
                        b"250 2.0.0 queued\r\n"
                    } else {
                        continue;
                    }
                } else if line.starts_with("EHLO") {
                    b"250-test\r\n250-PIPELINING\r\n250 SIZE 100000\r\n"
                } else if line.starts_with("MAIL") {
                    good_rcpt = false;
                    b"250 2.1.0 ok\r\n"
                } else if line.starts_with("RCPT") {
                    if line.contains("bad@") {
                        b"550 5.1.1 no such user\r\n"
                    } else {
                        good_rcpt = true;
                        b"250 2.1.5 ok\r\n"
                    }
                } else if line == "DATA" {
                    if good_rcpt {
                        in_data = true;
                        b"354 go ahead\r\n"
                    } else {
                        b"554 5.5.1 no valid recipients\r\n"
                    }
                } else if line == "RSET" {
                    b"250 2.0.0 ok\r\n"
                } else if line == "QUIT" {
                    let _ = w.write_all(b"221 bye\r\n").await;
                    return;
                } else {
                    b"502 5.5.2 what\r\n"
                };
                if w.write_all(reply).await.is_err() {
                    return;
                }
            }
        });
    }
}

#[tokio::test]
async fn refused_recipients_are_counted_by_code_and_the_rest_delivered() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(scripted_server(listener));
    let mut c = config(port);
    c.messages = Some(40);
    let r = mailrig_load::run(c, std::future::pending::<()>())
        .await
        .unwrap();
    // pool of 4, one recipient each: every 4th message goes to bad@ and fails at RCPT.
    assert_eq!(r.counts.attempted, 40, "{}", r.to_table());
    assert_eq!(r.counts.accepted, 30, "{}", r.to_table());
    assert_eq!(r.counts.failed, 10);
    assert_eq!(r.errors.by_kind[&ErrorKind::Rejected], 10);
    assert_eq!(r.errors.by_code[&550], 10);
    assert_eq!(r.errors.by_stage_code["rcpt 550"], 10);
    assert_eq!(r.accepted[0].count(), 30);
    assert!(!r.accepted[0].per_recipient.contains_key("bad@x.test"));
    assert_eq!(r.counts.connections, 2, "RSET keeps the connections usable");
}

#[tokio::test]
async fn partial_refusal_in_a_multi_recipient_message() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(scripted_server(listener));
    let mut c = config(port);
    c.recipients_per_message = 4; // every message includes bad@x.test
    let r = mailrig_load::run(c, std::future::pending::<()>())
        .await
        .unwrap();
    assert_eq!(r.counts.accepted, 20, "{}", r.to_table());
    assert_eq!(r.counts.recipients_accepted, 60);
    assert_eq!(r.counts.recipients_refused, 20);
    assert_eq!(r.errors.by_code[&550], 20);
    assert_eq!(r.accepted[0].refused_recipients.len(), 20);
    let deliveries = r.accepted[0].deliveries().count();
    assert_eq!(deliveries, 60);
}

#[tokio::test]
async fn nothing_listening_is_unreachable_before_any_message() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = mailrig_load::run(config(port), std::future::pending::<()>())
        .await
        .unwrap_err();
    assert!(
        matches!(e, mailrig_load::LoadError::Unreachable { .. }),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with(&format!("cannot connect to 127.0.0.1:{port}: ")),
        "{e}"
    );
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _server = tokio::spawn(async move {
        let mut held = vec![];
        while let Ok((s, _)) = listener.accept().await {
            held.push(s); // never greet
        }
    });
    let mut c = config(port);
    c.messages = Some(2);
    c.timeout = Duration::from_millis(200);
    let r = mailrig_load::run(c, std::future::pending::<()>())
        .await
        .unwrap();
    assert_eq!(r.errors.by_kind[&ErrorKind::Timeout], 2, "{}", r.to_table());
}

#[tokio::test]
async fn garbage_is_a_protocol_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let r = mailrig_load::run(config(port), std::future::pending::<()>())
        .await
        .unwrap();
    assert_eq!(
        r.errors.by_kind[&ErrorKind::Protocol],
        20,
        "{}",
        r.to_table()
    );
}

#[tokio::test]
async fn cancellation_returns_what_was_done() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _server = tokio::spawn(async move {
        let mut held = vec![];
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let mut c = config(port);
    c.messages = None;
    c.duration = Some(Duration::from_secs(3600));
    c.timeout = Duration::from_secs(3600);
    let r = mailrig_load::run(c, tokio::time::sleep(Duration::from_millis(300)))
        .await
        .unwrap();
    assert!(r.runs[0].cancelled);
    assert_eq!(r.counts.attempted, 2, "{}", r.to_table());
    assert_eq!(r.counts.interrupted, 2);
    assert_eq!(r.counts.accepted, 0);
    assert!(!r.latency.contains_key(&Stage::Message));
}

#[tokio::test]
async fn duration_bounds_an_open_loop_run() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(scripted_server(listener));
    let mut c = config(port);
    c.messages = None;
    c.duration = Some(Duration::from_millis(300));
    c.pacing = mailrig_load::Pacing::Open { rate: 100.0 };
    let pool = RecipientPool::from_addresses(vec!["ok@x.test".into()]).unwrap();
    c.recipients = pool;
    let r = mailrig_load::run(c, std::future::pending::<()>())
        .await
        .unwrap();
    // 30 arrivals are due in 300 ms at 100/s; all are started (the server is fast).
    assert_eq!(r.counts.attempted + r.counts.unsent, 30, "{}", r.to_table());
    assert_eq!(r.counts.failed, 0);
}
