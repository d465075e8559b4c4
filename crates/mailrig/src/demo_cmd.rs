//! `mailrig demo`: the seed incident, caught. Starts the fake world of
//! `kanzlei-2-of-25.toml` in-process (mail for 23 of the 25 patente.test
//! mailboxes accepted with 250 and silently dropped), probes all 28 mailboxes
//! over SMTP and IMAP, prints the report and the journal lines that explain
//! it, and exits 1 because not every mailbox received its mail.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use mailrig_core::{JournalEvent, Scenario};
use mailrig_probe::{ProbeOptions, ReadEndpoint, ReadProtocol, Target, Verdict};
use mailrig_server::MockServer;

/// The seed incident's scenario, built into the binary.
const SEED: &str = include_str!("../../../crates/mailrig-core/catalog/kanzlei-2-of-25.toml");

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seconds to wait for mail after the last probe is sent.
    #[arg(long, value_name = "SECS", default_value_t = 3.0)]
    timeout: f64,
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if !(args.timeout > 0.0 && args.timeout < 3600.0) {
        anyhow::bail!(
            "--timeout {}: give a number of seconds above 0 and below 3600",
            args.timeout
        );
    }
    let scenario = Scenario::parse(SEED, "kanzlei-2-of-25.toml")?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(demo(scenario, Duration::from_secs_f64(args.timeout)))
}

async fn demo(scenario: Scenario, timeout: Duration) -> anyhow::Result<ExitCode> {
    println!("mailrig demo: the seed incident\n");
    for line in scenario.description.lines() {
        println!("  {line}");
    }
    let server = MockServer::builder()
        .scenario(scenario)
        .smtps(None)
        .imaps(None)
        .pop3(None)
        .http(None)
        .start()
        .await?;
    println!(
        "\nStarted that world in-process: SMTP {}, IMAP {}.",
        server.smtp_addr(),
        server.imap_addr()
    );
    let mailboxes: Vec<(String, String, String)> = server
        .world()
        .mailboxes
        .iter()
        .map(|m| (m.address.to_string(), m.login.clone(), m.password.clone()))
        .collect();
    println!(
        "Probing all {} mailboxes: one tagged message each over SMTP, read back over IMAP...\n",
        mailboxes.len()
    );
    let target = Target::from_credentials(
        server.smtp_addr(),
        ReadEndpoint::plain(ReadProtocol::Imap, server.imap_addr()),
        mailboxes,
    );
    let opts = ProbeOptions {
        timeout: Some(timeout),
        ..ProbeOptions::default()
    };
    let report = mailrig_probe::probe(&target, &opts).await?;
    print!("{}", report.to_table(crate::output::colour_stdout()));

    let journal = server.journal().entries();
    let mut drops: Vec<_> = journal
        .iter()
        .filter(|e| e.event == JournalEvent::Dropped)
        .collect();
    // Sends run in parallel; list the losses in mailbox order.
    drops.sort_by(|a, b| a.rcpt.cmp(&b.rcpt));
    if !drops.is_empty() {
        println!("\nWhat the server's journal says happened to them:");
        for e in &drops {
            println!(
                "  {}  {:<11} rule {:<22} {} -> {}  accepted with 250, dropped",
                e.time.format("%H:%M:%S%.3f"),
                e.stage.name(),
                e.rule.as_deref().unwrap_or("-"),
                e.message_id.as_deref().unwrap_or("<no Message-ID>"),
                e.rcpt.as_deref().unwrap_or("?"),
            );
        }
    }
    server.shutdown().await;

    let missing = report
        .mailboxes
        .iter()
        .filter(|m| m.verdict == Verdict::Missing)
        .count();
    let code = report.exit_code();
    if code == 0 {
        println!("\nEvery mailbox received its message.");
    } else {
        println!(
            "\nThis is the seed incident, caught: every message was accepted with 250, yet {missing} of {} mailboxes never received theirs. \
             A check like this after the migration would have found it before a deadline was missed.",
            report.mailboxes.len()
        );
    }
    Ok(ExitCode::from(code))
}
