//! `mailrig load`: drive SMTP load at a server and report throughput, latency and errors; `mailrig load
//! merge` adds up the JSON reports of several runs (e.g. one per machine).
//!
//! This module only wires flags to `mailrig-load`: the flags themselves are [`mailrig_load::LoadArgs`],
//! plus `--scenario`, which needs the scenario reader of `mailrig-core` (the load library knows nothing of
//! scenarios). A run prints its table on stdout even when it was stopped with Ctrl-C. `--verify-imap`
//! adds a delivery check after the run ([`crate::load_verify`]).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use mailrig_core::Scenario;
use mailrig_load::{LoadArgs, Report};

use crate::load_verify::{Verifier, VerifyFlags, VerifyPlan};

/// Exit code after Ctrl-C or SIGTERM (the report is still printed and written): 128 + SIGINT.
const EXIT_CANCELLED: u8 = 130;
/// Exit code when the run ended but the server accepted no message at all.
const EXIT_NOTHING_ACCEPTED: u8 = 1;
/// Exit code when `--verify-imap` found accepted messages missing (or could not check some mailboxes).
const EXIT_NOT_DELIVERED: u8 = 1;

/// Flags of `mailrig load`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct LoadCommand {
    #[command(subcommand)]
    command: Option<LoadSubcommand>,

    #[command(flatten)]
    args: Option<LoadArgs>,

    /// Also send to every mailbox address of this scenario file (added after --to/--to-file).
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,

    #[command(flatten)]
    verify: VerifyFlags,
}

#[derive(Debug, Subcommand)]
enum LoadSubcommand {
    /// Merge JSON reports (written with --json) into one and print its table.
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
struct MergeArgs {
    /// Reports to merge, each written by `mailrig load --json`.
    #[arg(value_name = "REPORT.json", required = true)]
    reports: Vec<PathBuf>,

    /// Write the merged report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

pub fn run(cmd: LoadCommand) -> anyhow::Result<ExitCode> {
    match (cmd.command, cmd.args) {
        (Some(LoadSubcommand::Merge(merge)), _) => run_merge(merge),
        (None, Some(args)) => run_load(args, cmd.scenario, cmd.verify),
        (None, None) => anyhow::bail!(
            "TARGET is required: mailrig load smtp://HOST:PORT --to ADDR ... (see mailrig load --help)"
        ),
    }
}

fn run_load(
    args: LoadArgs,
    scenario_path: Option<PathBuf>,
    verify: VerifyFlags,
) -> anyhow::Result<ExitCode> {
    let scenario = scenario_path
        .as_ref()
        .map(|path| Scenario::load(path).context("--scenario"))
        .transpose()?;
    let extra = match (&scenario_path, &scenario) {
        (Some(path), Some(scenario)) => {
            let addresses: Vec<String> = scenario
                .world
                .mailboxes
                .iter()
                .map(|m| m.address.to_string())
                .collect();
            anyhow::ensure!(
                !addresses.is_empty(),
                "--scenario {}: the scenario has no mailboxes to send to",
                path.display()
            );
            addresses
        }
        _ => Vec::new(),
    };
    // Built before the run, so a bad target file or --imap fails before any mail is sent.
    let plan = verify
        .verify_imap
        .then(|| VerifyPlan::new(&verify, scenario.as_ref()))
        .transpose()?;
    let json_out = args.json.clone();
    let mut config = args.into_config(extra)?;
    config.record_accept_times = plan.is_some();
    if plan.is_some() && config.run_id.is_none() {
        // The mailbox watchers need the run id before the run starts.
        config.run_id = Some(mailrig_load::new_run_id());
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let (mut report, verification) = runtime.block_on(async {
        let verifier = plan.as_ref().map(|plan| {
            let run_id = config.run_id.clone().unwrap_or_default();
            Verifier::start(plan, &run_id, config.recipients.addresses())
        });
        let report = mailrig_load::run(config, stop_signal()).await?;
        let Some(verifier) = verifier else {
            return Ok::<_, anyhow::Error>((report, None));
        };
        if report.runs.iter().any(|r| r.cancelled) {
            eprintln!("mailrig load: cancelled, delivery check skipped");
            return Ok((report, None));
        }
        eprintln!(
            "mailrig load: checking delivery ({}), waiting up to {} s",
            plan.as_ref().map_or("", |p| p.method()),
            verify.verify_timeout
        );
        tokio::select! {
            v = verifier.finish(&report) => Ok((report, Some(v))),
            _ = stop_signal() => {
                eprintln!("mailrig load: delivery check cancelled");
                Ok((report, None))
            }
        }
    })?;
    let check_cancelled =
        plan.is_some() && verification.is_none() && !report.runs.iter().any(|r| r.cancelled);
    report.verification = verification;
    print!("{}", report.to_table());
    if let Some(path) = &json_out {
        report.write_json(path)?;
        eprintln!("mailrig load: report written to {}", path.display());
    }
    if check_cancelled {
        return Ok(ExitCode::from(EXIT_CANCELLED));
    }
    Ok(exit_code(&report))
}

/// 130 after Ctrl-C, 1 when nothing was accepted (the target is down or refuses everything) or when the
/// delivery check found accepted messages missing or could not read a mailbox, else 0: a run that
/// measured some SMTP failures did its job.
fn exit_code(report: &Report) -> ExitCode {
    if report.runs.iter().any(|r| r.cancelled) {
        ExitCode::from(EXIT_CANCELLED)
    } else if report.counts.accepted == 0 {
        eprintln!("mailrig load: the server accepted no message");
        ExitCode::from(EXIT_NOTHING_ACCEPTED)
    } else if let Some(v) = report.verification.as_ref().filter(|v| !v.all_delivered()) {
        eprintln!(
            "mailrig load: {} accepted message(s) missing, {} not checked",
            v.missing, v.unverified
        );
        ExitCode::from(EXIT_NOT_DELIVERED)
    } else {
        ExitCode::SUCCESS
    }
}

fn run_merge(args: MergeArgs) -> anyhow::Result<ExitCode> {
    let reports = args
        .reports
        .iter()
        .map(|p| Report::read_json(p))
        .collect::<Result<Vec<_>, _>>()?;
    let merged = mailrig_load::merge(&reports)?;
    print!("{}", merged.to_table());
    if let Some(path) = &args.json {
        merged.write_json(path)?;
        eprintln!("mailrig load merge: report written to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM, so `timeout` and container stops also get a report.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    if tokio::signal::ctrl_c().await.is_err() {
        // No signal handling available: never cancel.
        std::future::pending::<()>().await;
    }
}
