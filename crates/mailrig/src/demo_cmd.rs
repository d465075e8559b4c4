//! `mailrig demo`: the seed incident, caught. Starts the fake world of
//! `kanzlei-2-of-25.toml` in-process (mail for 23 of the 25 patente.test
//! mailboxes accepted with 250 and silently dropped), probes all 28 mailboxes
//! over SMTP and IMAP, prints the report and the journal lines that explain
//! it, and exits 1 because not every mailbox received its mail.
//!
//! `--scenario NAME` runs another catalog world the same way. In a world of
//! hosts the probe sends to the first host (the MX) and reads back from the
//! host the first collector delivers into, with the host it collects from as
//! every mailbox's upstream, so `kanzlei-pop3-collector` shows the seed as it
//! really happened: the 23 mailboxes no collector fetches, `stuck-upstream`.

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
    /// A catalog scenario to run instead of the seed (`mailrig scenario list`),
    /// e.g. kanzlei-pop3-collector.
    #[arg(long, value_name = "NAME")]
    scenario: Option<String>,
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if !(args.timeout > 0.0 && args.timeout < 3600.0) {
        anyhow::bail!(
            "--timeout {}: give a number of seconds above 0 and below 3600",
            args.timeout
        );
    }
    let scenario = match &args.scenario {
        None => Scenario::parse(SEED, "kanzlei-2-of-25.toml")?,
        Some(name) => mailrig_core::catalog::find(name)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--scenario {name}: not a catalog scenario (see `mailrig scenario list`)"
                )
            })?
            .load()?,
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(demo(scenario, Duration::from_secs_f64(args.timeout)))
}

async fn demo(scenario: Scenario, timeout: Duration) -> anyhow::Result<ExitCode> {
    println!("mailrig demo: the seed incident\n");
    for line in scenario.description.lines() {
        println!("  {line}");
    }
    let collector_target = scenario.collectors.first().map(|c| c.target.clone());
    let collector_source = scenario.collectors.first().and_then(|c| match &c.source {
        mailrig_core::collector::CollectSource::Host(h) => Some(h.clone()),
        mailrig_core::collector::CollectSource::Server(_) => None,
    });
    let server = MockServer::builder()
        .scenario(scenario)
        .smtps(None)
        .imaps(None)
        .pop3(None)
        .http(None)
        .start()
        .await?;
    let read_host = collector_target.as_deref().and_then(|n| server.host(n));
    let read_name = read_host.map(|h| h.name().to_string());
    let imap_addr = match read_host {
        Some(h) => h.addresses().imap.with_context(|| {
            format!(
                "host '{}' runs no IMAP listener to read back from",
                h.name()
            )
        })?,
        None => server.imap_addr(),
    };
    match (server.hosts().first(), read_host) {
        (Some(first), Some(read)) => println!(
            "\nStarted that world in-process: {} hosts. Sending to host '{}' (SMTP {}), reading back from host '{}' (IMAP {}).",
            server.hosts().len(),
            first.name(),
            server.smtp_addr(),
            read.name(),
            imap_addr
        ),
        _ => println!(
            "\nStarted that world in-process: SMTP {}, IMAP {}.",
            server.smtp_addr(),
            imap_addr
        ),
    }
    let mailboxes: Vec<(String, String, String)> = server
        .world()
        .mailboxes
        .iter()
        .map(|m| {
            (
                m.address.to_string(),
                m.login.to_string(),
                m.password.to_string(),
            )
        })
        .collect();
    println!(
        "Probing all {} mailboxes: one tagged message each over SMTP, read back over IMAP...\n",
        mailboxes.len()
    );
    let mut target = Target::from_credentials(
        server.smtp_addr(),
        ReadEndpoint::plain(ReadProtocol::Imap, imap_addr),
        mailboxes,
    );
    // The collector's source (the provider) is each mailbox's upstream: mail
    // found there and never collected is `stuck-upstream`, not `missing`.
    let provider = collector_source
        .as_deref()
        .and_then(|n| server.host(n))
        .filter(|h| Some(h.name()) != read_name.as_deref());
    if let Some((provider, imap)) = provider.and_then(|h| h.addresses().imap.map(|a| (h, a))) {
        let logins: std::collections::HashMap<String, (String, String)> = provider
            .world()
            .mailboxes
            .iter()
            .map(|m| {
                (
                    m.address.to_string().to_ascii_lowercase(),
                    (m.login.to_string(), m.password.to_string()),
                )
            })
            .collect();
        for mb in &mut target.mailboxes {
            if let Some((user, password)) = logins.get(&mb.address.to_ascii_lowercase()) {
                mb.upstream = Some(mailrig_probe::Upstream {
                    read: ReadEndpoint::plain(ReadProtocol::Imap, imap),
                    user: user.clone(),
                    password: password.clone(),
                    master: None,
                });
            }
        }
        println!(
            "Each mailbox's upstream: host '{}' (IMAP {imap}), where the collector fetches from.\n",
            provider.name()
        );
    }
    // With an upstream the probes stay (the world is thrown away at the
    // end anyway), so the collectors' story below still finds them at the
    // provider.
    let opts = ProbeOptions {
        timeout: Some(timeout),
        keep: target.mailboxes.iter().any(|m| m.upstream.is_some()),
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
    if let Some(read) = &read_name {
        explain_collectors(&server, read);
    }
    server.shutdown().await;

    let missing = report
        .mailboxes
        .iter()
        .filter(|m| matches!(m.verdict, Verdict::Missing | Verdict::StuckUpstream))
        .count();
    let code = report.exit_code();
    if code == 0 {
        println!("\nEvery mailbox received its message.");
    } else if read_name.is_some() {
        println!(
            "\nThis is the seed incident as it really happened, caught: the provider accepted every message with 250, \
             yet {missing} of {} mailboxes on the firm's server never received theirs (stuck-upstream: at the provider, never collected), because no collector fetches them.",
            report.mailboxes.len()
        );
    } else {
        println!(
            "\nThis is the seed incident, caught: every message was accepted with 250, yet {missing} of {} mailboxes never received theirs. \
             A check like this after the migration would have found it before a deadline was missed.",
            report.mailboxes.len()
        );
    }
    Ok(ExitCode::from(code))
}

/// In a world of hosts and collectors: which mailboxes of the provider hold
/// mail that no collector fetched, and what the collectors did.
fn explain_collectors(server: &MockServer, read_host: &str) {
    let collected: std::collections::HashSet<String> = server
        .journal()
        .entries()
        .iter()
        .filter_map(|e| match &e.event {
            JournalEvent::Collected(c) => Some(c.account.to_ascii_lowercase()),
            _ => None,
        })
        .collect();
    let failed: Vec<_> = server
        .journal()
        .entries()
        .into_iter()
        .filter(|e| matches!(e.event, JournalEvent::CollectFailed(_)))
        .collect();
    for h in server.hosts().iter().filter(|h| h.name() != read_host) {
        let waiting: Vec<(String, usize)> = h
            .world()
            .mailboxes
            .iter()
            .filter_map(|m| {
                let n = h.inbox(&m.address.to_string()).map_or(0, |i| i.len());
                (n > 0 && !collected.contains(&m.login.to_ascii_lowercase()))
                    .then(|| (m.address.to_string(), n))
            })
            .collect();
        if waiting.is_empty() {
            continue;
        }
        println!(
            "\nWhat the hosts say happened to them: {} mailboxes at host '{}' hold mail no collector fetched:",
            waiting.len(),
            h.name()
        );
        for (address, n) in &waiting {
            println!(
                "  {address:<28} {n} message(s) waiting at {}, never collected",
                h.name()
            );
        }
    }
    for e in failed {
        if let JournalEvent::CollectFailed(c) = &e.event {
            println!(
                "  collector {}: {} failed: {}",
                c.collector, c.account, c.reason
            );
        }
    }
}
