//! End-to-end speed against the fake server's memory store: 1,000 mailboxes
//! sent, read back and cleaned up. Goal: under 5 seconds (release build).
//! `cargo test --release -p mailrig-probe --test perf -- --ignored --nocapture`

use std::time::{Duration, Instant};

use mailrig_probe::{ProbeOptions, ReadEndpoint, ReadProtocol, Target, probe};
use mailrig_server::MockServer;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "measurement; run in release with --ignored"]
async fn thousand_mailboxes() {
    let n = std::env::var("MAILRIG_PERF_MAILBOXES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000usize);
    let server = MockServer::builder()
        .scenario_toml(&format!(
            "[[domain]]\nname = \"load.test\"\nmailboxes = [\"u1..u{n}\"]\npassword = \"secret\"\n"
        ))
        .unwrap()
        .start()
        .await
        .unwrap();
    for protocol in [ReadProtocol::Imap, ReadProtocol::Pop3] {
        let addr = if protocol == ReadProtocol::Imap {
            server.imap_addr()
        } else {
            server.pop3_addr()
        };
        let mut t = Target::from_credentials(
            server.smtp_addr(),
            ReadEndpoint::plain(protocol, addr),
            (1..=n).map(|i| {
                (
                    format!("u{i}@load.test"),
                    format!("u{i}@load.test"),
                    "secret",
                )
            }),
        );
        t.timeout = Duration::from_secs(30);
        for (concurrency, connections) in [(64, 4), (256, 8)] {
            t.concurrency = concurrency;
            t.smtp.connections = connections;
            let start = Instant::now();
            let last = std::sync::Arc::new(std::sync::Mutex::new(None));
            let progress: mailrig_probe::ProgressFn = {
                let last = last.clone();
                std::sync::Arc::new(move |p: &mailrig_probe::Progress| {
                    let mut l = last.lock().unwrap();
                    if *l != Some(p.phase) {
                        println!("  {:?} at {:.2} s", p.phase, p.elapsed.as_secs_f64());
                        *l = Some(p.phase);
                    }
                })
            };
            let opts = ProbeOptions {
                progress: Some(progress),
                ..ProbeOptions::default()
            };
            let report = probe(&t, &opts).await.unwrap();
            let took = start.elapsed();
            assert!(report.all_delivered(), "{}", report.to_table(false));
            let mut lat: Vec<u64> = report
                .mailboxes
                .iter()
                .filter_map(|m| m.latency_ms)
                .collect();
            lat.sort_unstable();
            println!(
                "{protocol} {n} mailboxes, concurrency {concurrency}, {connections} SMTP connections: {:.2} s (latency p50 {} ms, max {} ms)",
                took.as_secs_f64(),
                lat[lat.len() / 2],
                lat[lat.len() - 1]
            );
        }
    }
    server.shutdown().await;
}
