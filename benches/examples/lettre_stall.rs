//! Where lettre's time goes when it sends to mailrig, one connection a message (the SMTP
//! baseline of `hosts_scale`): each step of a session timed on its own (connect, greeting
//! and EHLO; MAIL, RCPT and DATA; the message and its end; QUIT), once over a socket as
//! lettre opens it (Nagle on) and once over the same socket with `TCP_NODELAY`, then the
//! whole `AsyncSmtpTransport::send_raw` as the benchmark calls it. Printed, never asserted.
//!
//! The finding (README, "Several hosts and a collector"): lettre writes the message and
//! then `\r\n.\r\n` in two writes on a socket without `TCP_NODELAY`, so Nagle holds the
//! five bytes of the end of data until the server acknowledges the message; the server,
//! waiting for those five bytes before it replies, acknowledges only when the delayed-ACK
//! timer fires (40 ms on Linux). mailrig's own sockets have `TCP_NODELAY` and each reply
//! leaves in one write, so nothing of this is the server's.
//!
//! `cargo run --release -p mailrig-benches --example lettre_stall [MESSAGES]`

use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Quit, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use mailrig_core::Scenario;
use mailrig_server::MockServer;

fn message(i: usize) -> Vec<u8> {
    format!(
        "From: s@extern.test\r\nTo: u1@p.test\r\nSubject: m{i}\r\nMessage-ID: <m{i}@extern.test>\r\n\r\n{}\r\n",
        "Hallo. ".repeat(120)
    )
    .into_bytes()
}

/// Milliseconds, the median of `v`.
fn median(v: &mut [Duration]) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(40);
    let text = "[[domain]]\nname = 'p.test'\nmailboxes = ['u1']\npassword = 'p'\n";
    let server = MockServer::builder()
        .scenario(Scenario::parse(text, "lettre-stall").unwrap())
        .start()
        .await
        .unwrap();
    let smtp = server.smtp_addr();
    let from: lettre::Address = "s@extern.test".parse().unwrap();
    let to: lettre::Address = "u1@p.test".parse().unwrap();

    for nodelay in [false, true] {
        let (mut hello, mut envelope, mut body, mut quit) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for i in 0..n {
            let t = Instant::now();
            let tcp = tokio::net::TcpStream::connect(smtp).await.unwrap();
            tcp.set_nodelay(nodelay).unwrap();
            let mut conn =
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &ClientId::default())
                    .await
                    .unwrap();
            hello.push(t.elapsed());
            let t = Instant::now();
            conn.command(Mail::new(Some(from.clone()), vec![]))
                .await
                .unwrap();
            conn.command(Rcpt::new(to.clone(), vec![])).await.unwrap();
            conn.command(Data).await.unwrap();
            envelope.push(t.elapsed());
            let t = Instant::now();
            conn.message(&message(i)).await.unwrap();
            body.push(t.elapsed());
            let t = Instant::now();
            conn.command(Quit).await.unwrap();
            quit.push(t.elapsed());
        }
        println!(
            "TCP_NODELAY {}: median ms per step over {n} sessions: connect+greeting+EHLO {:.2}, MAIL+RCPT+DATA {:.2}, message+end of data {:.2}, QUIT {:.2}",
            if nodelay { "on " } else { "off" },
            median(&mut hello),
            median(&mut envelope),
            median(&mut body),
            median(&mut quit)
        );
    }

    let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.ip().to_string())
        .port(smtp.port())
        .build();
    let env = Envelope::new(Some(from), vec![to]).unwrap();
    let mut whole = Vec::new();
    for i in 0..n {
        let t = Instant::now();
        mailer.send_raw(&env, &message(i)).await.unwrap();
        whole.push(t.elapsed());
    }
    println!(
        "AsyncSmtpTransport::send_raw (as hosts_scale sends): median {:.2} ms a message",
        median(&mut whole)
    );
    server.shutdown().await;
}
