//! The prober as a monitor against our fake world: three short rounds, the
//! server's fault switched on for round two only. The JSON Lines history,
//! the Prometheus metrics and the Nagios line all show the change.

mod common;

use std::time::Duration;

use common::{root, seed_addresses};
use mailrig_probe::monitor::{Metrics, append_history, nagios, run_rounds};
use mailrig_probe::{ProbeOptions, ReadEndpoint, ReadProtocol, Report, Target};
use mailrig_server::MockServer;

#[tokio::test(flavor = "multi_thread")]
async fn three_rounds_show_the_fault_of_round_two() {
    let server = MockServer::builder()
        .scenario_file(root().join("crates/mailrig-core/catalog/kanzlei.toml"))
        .expect("scenario loads")
        .start()
        .await
        .expect("mock starts");
    let mut target = Target::from_credentials(
        server.smtp_addr(),
        ReadEndpoint::plain(ReadProtocol::Imap, server.imap_addr()),
        seed_addresses()
            .into_iter()
            .map(|a| (a.clone(), a, "secret".to_string())),
    );
    target.timeout = Duration::from_secs(1);
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history.jsonl");
    let mut metrics = Metrics::new();
    let mut lines = Vec::new();
    run_rounds(
        &target,
        &ProbeOptions::default(),
        Duration::from_millis(200),
        Some(3),
        |round, result| {
            let report = result.as_ref().expect("the probe runs");
            append_history(&history, report).unwrap();
            metrics.record(result);
            lines.push(nagios::status_line(report));
            match round {
                1 => {
                    server
                        .add_fault_toml(
                            "name = \"lose-user05\"\nstage = \"route\"\naction = \"drop\"\nmailbox = \"user05\"",
                        )
                        .unwrap();
                }
                2 => assert!(server.set_fault_enabled("lose-user05", false)),
                _ => {}
            }
            true
        },
    )
    .await;

    let text = std::fs::read_to_string(&history).unwrap();
    let rounds: Vec<Report> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one report per line"))
        .collect();
    assert_eq!(rounds.len(), 3, "{text}");
    let user05: Vec<String> = rounds
        .iter()
        .map(|r| {
            r.mailboxes
                .iter()
                .find(|m| m.address == "user05@patente.test")
                .unwrap()
                .verdict
                .to_string()
        })
        .collect();
    assert_eq!(user05, ["delivered", "missing", "delivered"]);
    assert_eq!(rounds[1].summary.counts.delivered, 27);
    assert!(rounds[0].run_id != rounds[1].run_id);

    let m = metrics.render();
    let lbl = "mailbox=\"user05@patente.test\",domain=\"patente.test\"";
    assert!(m.contains("mailrig_probe_rounds_total 3\n"), "{m}");
    assert!(
        m.contains(&format!(
            "mailrig_probe_mailbox_rounds_total{{{lbl},verdict=\"delivered\"}} 2\n"
        )),
        "{m}"
    );
    assert!(
        m.contains(&format!(
            "mailrig_probe_mailbox_rounds_total{{{lbl},verdict=\"missing\"}} 1\n"
        )),
        "{m}"
    );
    assert!(
        m.contains(&format!(
            "mailrig_probe_mailbox_verdict{{{lbl},verdict=\"delivered\"}} 1\n"
        )),
        "{m}"
    );
    assert!(
        m.contains(&format!("mailrig_probe_mailbox_latency_seconds{{{lbl}}} ")),
        "{m}"
    );

    let codes: Vec<u8> = lines.iter().map(|(_, c)| *c).collect();
    assert_eq!(codes, [0, 2, 0]);
    assert!(
        lines[0]
            .0
            .starts_with("MAILRIG PROBE OK - 28/28 delivered|delivered=28;;;0;28 "),
        "{}",
        lines[0].0
    );
    assert!(
        lines[1].0.starts_with(
            "MAILRIG PROBE CRITICAL - 27/28 delivered, 1 missing (user05@patente.test missing)|"
        ),
        "{}",
        lines[1].0
    );
    server.shutdown().await;
}
