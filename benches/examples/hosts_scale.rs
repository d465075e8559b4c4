//! Scale of a world of hosts (issue 12's performance figures), printed, never asserted:
//! a world of 50 hosts and 10,000 mailboxes parsed and started, then a collector moving
//! 10,000 messages (100 accounts x 100) from one host to another over POP3 and again over
//! IMAP, beside the SMTP path's rate for the same 10,000 messages into the destination
//! host: 100 sessions in parallel (one per collector account), each sending its account's
//! 100 messages over one lettre connection on a `TCP_NODELAY` socket (lettre's own sockets
//! have Nagle on and stall ~40 ms a message, see `lettre_stall.rs`), and, for reference, as
//! before: `AsyncSmtpTransport::send_raw`, 8 senders, a connection a message. All in one run;
//! the ratios are printed last. Addresses are in 127.0.3.x (the world2 range).
//!
//! `cargo run -p mailrig-benches --example hosts_scale` (add `--release` for figures
//! worth quoting).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use lettre::address::Envelope;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Quit, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use mailrig_core::{NewMessage, Scenario};
use mailrig_server::MockServer;

fn message(i: usize) -> Vec<u8> {
    format!(
        "From: s@extern.test\r\nTo: x@p.test\r\nSubject: m{i}\r\nMessage-ID: <m{i}@extern.test>\r\n\r\n{}\r\n",
        "Hallo. ".repeat(120)
    )
    .into_bytes()
}

#[tokio::main]
async fn main() {
    // 50 domains of 200 mailboxes, one host each.
    let mut text = String::new();
    for d in 0..50 {
        text.push_str(&format!(
            "[[domain]]\nname = 'd{d:02}.test'\nmailboxes = ['u001..u200']\npassword = 'p'\n"
        ));
    }
    for d in 0..50 {
        text.push_str(&format!(
            "[[host]]\nname = 'h{d:02}'\naddress = '127.0.3.{}'\ndomains = ['d{d:02}.test']\npop3 = true\n",
            d + 2
        ));
    }
    let t = Instant::now();
    let scenario = Scenario::parse(&text, "scale").unwrap();
    let parsed = t.elapsed();
    let server = MockServer::builder()
        .scenario(scenario)
        .start()
        .await
        .unwrap();
    println!(
        "50 hosts, 10,000 mailboxes: parsed in {:.3} s, parsed and started in {:.3} s",
        parsed.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
    server.shutdown().await;

    // A provider and a firm with 100 mailboxes each, a collector for all of them.
    let text = "[[domain]]\nname = 'p.test'\nmailboxes = ['u001..u100']\npassword = 'p'\n\
        [[host]]\nname = 'provider'\naddress = '127.0.3.60'\ndomains = ['p.test']\npop3 = true\nimap = true\n\
        [[host]]\nname = 'firm'\naddress = '127.0.3.61'\ndomains = ['p.test']\n\
        [[collector]]\nname = 'c'\nfrom = 'provider'\nto = 'firm'\ninterval_secs = 86400\naccounts = ['p.test']\n\
        [[collector]]\nname = 'ci'\nfrom = 'provider'\nto = 'firm'\nprotocol = 'imap'\ninterval_secs = 86400\naccounts = ['p.test']\n";
    let server = MockServer::builder()
        .scenario(Scenario::parse(text, "collector").unwrap())
        .start()
        .await
        .unwrap();
    let provider = server.host("provider").unwrap();
    let ids: Vec<_> = provider.world().mailboxes.iter().map(|m| m.id).collect();
    for i in 0..10_000 {
        let env = Arc::new(mailrig_core::Envelope {
            mail_from: "s@extern.test".into(),
            rcpt_to: Box::default(),
            peer: "bench".into(),
            helo: "bench".into(),
            auth_user: None,
            tls: false,
            received_at: chrono::Utc::now(),
            auth: None,
        });
        provider
            .store()
            .deliver(
                ids[i % ids.len()],
                NewMessage::received(Bytes::from(message(i)), env),
            )
            .unwrap();
    }
    let mut rates = Vec::new();
    for (name, protocol) in [("c", "POP3"), ("ci", "IMAP")] {
        let t = Instant::now();
        let round = server.collect_now(name).await.unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(round.delivered, 10_000, "{round:?}");
        println!(
            "collector ({protocol}): 10,000 messages from 100 accounts in {secs:.2} s = {:.0} msg/s",
            10_000.0 / secs
        );
        rates.push((protocol, 10_000.0 / secs));
    }

    // The SMTP path into the destination host: 100 sessions in parallel, one per account,
    // each sending its account's 100 messages over one connection with TCP_NODELAY.
    let firm = server.host("firm").unwrap().smtp_addr();
    let t = Instant::now();
    let mut tasks = Vec::new();
    for a in 0..100 {
        tasks.push(tokio::spawn(async move {
            let tcp = tokio::net::TcpStream::connect(firm).await.unwrap();
            tcp.set_nodelay(true).unwrap();
            let mut conn =
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &ClientId::default())
                    .await
                    .unwrap();
            let from: lettre::Address = "s@extern.test".parse().unwrap();
            let to: lettre::Address = format!("u{:03}@p.test", a + 1).parse().unwrap();
            for i in (a..10_000).step_by(100) {
                conn.command(Mail::new(Some(from.clone()), vec![]))
                    .await
                    .unwrap();
                conn.command(Rcpt::new(to.clone(), vec![])).await.unwrap();
                conn.command(Data).await.unwrap();
                conn.message(&message(i)).await.unwrap();
            }
            conn.command(Quit).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    let smtp_rate = 10_000.0 / secs;
    println!(
        "SMTP path into the firm: 10,000 messages (100 sessions in parallel, one per account, 100 messages each, TCP_NODELAY) in {secs:.2} s = {smtp_rate:.0} msg/s"
    );

    // For reference, the earlier baseline: lettre's transport as is, 8 senders, to the provider.
    let smtp = provider.smtp_addr();
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..8 {
        tasks.push(tokio::spawn(async move {
            let mailer =
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.ip().to_string())
                    .port(smtp.port())
                    .build();
            for i in (w..10_000).step_by(8) {
                let to = format!("u{:03}@p.test", i % 100 + 1);
                let env = Envelope::new(
                    Some("s@extern.test".parse().unwrap()),
                    vec![to.parse().unwrap()],
                )
                .unwrap();
                mailer.send_raw(&env, &message(i)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "for reference, lettre's transport as is: 10,000 messages (8 senders, a connection each message, Nagle on) in {secs:.2} s = {:.0} msg/s",
        10_000.0 / secs
    );
    for (protocol, rate) in rates {
        println!(
            "ratio collector ({protocol}) / SMTP path: {:.2}",
            rate / smtp_rate
        );
    }
    server.shutdown().await;
}
