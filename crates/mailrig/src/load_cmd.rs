//! `mailrig load`: drive SMTP load at a server and report throughput, latency and errors; `mailrig load
//! merge` adds up the JSON reports of several runs (e.g. one per machine).
//!
//! This module only wires flags to `mailrig-load`: the flags themselves are [`mailrig_load::LoadArgs`],
//! plus `--scenario`, which needs the scenario reader of `mailrig-core` (the load library knows nothing of
//! scenarios). A run prints its table on stdout even when it was stopped with Ctrl-C. `--verify-imap`
//! adds a delivery check after the run ([`crate::load_verify`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use mailrig_load::{LoadArgs, Report, ThresholdArgs, Thresholds};

use crate::load_verify::{Verifier, VerifyFlags, VerifyPlan};
use crate::output;

/// Exit code after Ctrl-C or SIGTERM (the report is still printed and written): 128 + SIGINT.
const EXIT_CANCELLED: u8 = 130;
/// Exit code when the run ended but the server accepted no message at all.
const EXIT_NOTHING_ACCEPTED: u8 = 1;
/// Exit code when a `--max-error-rate` or `--max-p99` threshold was crossed.
const EXIT_THRESHOLD: u8 = 1;
/// Exit code when `--verify-imap` found accepted messages missing (or could not check some mailboxes).
const EXIT_NOT_DELIVERED: u8 = 1;

/// Flags of `mailrig load`.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Exit codes: 0 the run ended and passed its thresholds, 1 the server accepted no \
                  message, a --max-error-rate or --max-p99 threshold was crossed, or --verify-imap \
                  found accepted mail missing, 2 could not run (bad flags or files, target unresolvable \
                  or unreachable), 130 stopped by Ctrl-C or SIGTERM (the report is still printed). \
                  --json - writes the JSON to standard output and the table to standard error."
)]
pub struct LoadCommand {
    #[command(subcommand)]
    command: Option<LoadSubcommand>,

    #[command(flatten)]
    args: Option<LoadArgs>,

    /// Also send to every mailbox address of this scenario (a file or a catalog name, see `mailrig
    /// scenario list`), added after --to/--to-file.
    #[arg(long, value_name = "FILE|NAME")]
    scenario: Option<String>,

    #[command(flatten)]
    thresholds: ThresholdArgs,

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

    /// Write the merged report as JSON to this file (`-`: standard output, the table then goes to
    /// standard error).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,

    #[command(flatten)]
    thresholds: ThresholdArgs,
}

pub fn run(cmd: LoadCommand) -> anyhow::Result<ExitCode> {
    match (cmd.command, cmd.args) {
        (Some(LoadSubcommand::Merge(merge)), _) => run_merge(merge),
        (None, Some(args)) => run_load(args, cmd.scenario, &cmd.thresholds, cmd.verify),
        (None, None) => anyhow::bail!(
            "TARGET is required: mailrig load smtp://HOST:PORT --to ADDR ... (see mailrig load --help)"
        ),
    }
}

fn run_load(
    args: LoadArgs,
    scenario_arg: Option<String>,
    thresholds: &ThresholdArgs,
    verify: VerifyFlags,
) -> anyhow::Result<ExitCode> {
    let thresholds = thresholds.parse()?;
    let scenario = scenario_arg
        .as_deref()
        .map(|arg| crate::scenario_cmd::resolve(arg).context("--scenario"))
        .transpose()?;
    let extra = match (&scenario_arg, &scenario) {
        (Some(path), Some(scenario)) => {
            let addresses: Vec<String> = scenario
                .world
                .mailboxes
                .iter()
                .map(|m| m.address.to_string())
                .collect();
            anyhow::ensure!(
                !addresses.is_empty(),
                "--scenario {path}: the scenario has no mailboxes to send to"
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
    write_report(&report, json_out.as_deref(), "mailrig load")?;
    if check_cancelled {
        return Ok(ExitCode::from(EXIT_CANCELLED));
    }
    Ok(exit_code(&report, &thresholds))
}

/// The table on standard output and the JSON to `--json FILE`; with `--json -` the JSON goes to standard
/// output and the table to standard error, so a pipe gets JSON only.
fn write_report(report: &Report, json: Option<&Path>, who: &str) -> anyhow::Result<()> {
    let json_to_stdout = json.is_some_and(output::is_stdout);
    if json_to_stdout {
        eprint!("{}", report.to_table());
    } else {
        print!("{}", report.to_table());
    }
    if let Some(path) = json {
        let mut text = report.to_json()?;
        text.push('\n');
        output::write_to(path, &text)?;
        if !json_to_stdout {
            eprintln!("{who}: report written to {}", path.display());
        }
    }
    Ok(())
}

/// 130 after Ctrl-C, 1 when nothing was accepted (the target refuses everything), when a threshold is
/// crossed, or when the delivery check found accepted messages missing or could not read a mailbox, else
/// 0: without thresholds, a run that measured some SMTP failures did its job.
fn exit_code(report: &Report, thresholds: &Thresholds) -> ExitCode {
    let breaches = thresholds.breaches(report);
    if report.runs.iter().any(|r| r.cancelled) {
        ExitCode::from(EXIT_CANCELLED)
    } else if !breaches.is_empty() {
        for b in &breaches {
            eprintln!("mailrig load: threshold crossed: {b}");
        }
        ExitCode::from(EXIT_THRESHOLD)
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
    let thresholds = args.thresholds.parse()?;
    let reports = args
        .reports
        .iter()
        .map(|p| Report::read_json(p))
        .collect::<Result<Vec<_>, _>>()?;
    let merged = mailrig_load::merge(&reports)?;
    write_report(&merged, args.json.as_deref(), "mailrig load merge")?;
    let breaches = thresholds.breaches(&merged);
    for b in &breaches {
        eprintln!("mailrig load merge: threshold crossed: {b}");
    }
    Ok(if breaches.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_THRESHOLD)
    })
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
