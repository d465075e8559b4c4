//! `mailrig probe`: send a tagged message to every mailbox of a target file,
//! read each back, print the verdicts. Exit 0 all delivered, 1 any not,
//! 2 the probe could not run.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use mailrig_probe::{Phase, ProbeOptions, Progress, ProgressFn, Report, Target, TlsTrust};

#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 every mailbox delivered, 1 any mailbox not delivered, \
                        2 the probe could not run (bad target file, an SMTP, IMAP or POP3 server \
                        unreachable; nothing is sent then)."
)]
pub struct ProbeArgs {
    /// Target file (TOML): SMTP server, how to read mailboxes, the mailboxes.
    #[arg(long, value_name = "FILE")]
    target: PathBuf,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Seconds to wait for every verdict (overrides the target's timeout).
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,
    /// Write the report to FILE instead of standard output (`-`: standard output). Written also when the
    /// probe cannot run: JSON with `error` set, JUnit with one error case.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Leave the probe messages in the mailboxes.
    #[arg(long)]
    keep: bool,
    /// PEM file with CA certificate(s) to trust for TLS besides the system's trust store (instead of
    /// the target's `[tls] ca_file`); the same flag as `mailrig load --tls-ca`.
    #[arg(long, value_name = "FILE", conflicts_with = "tls_insecure")]
    tls_ca: Option<PathBuf>,
    /// Accept any TLS certificate (test certificates only; instead of the target's `[tls] insecure`);
    /// the same flag as `mailrig load --tls-insecure`.
    #[arg(long)]
    tls_insecure: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
    Junit,
    /// A self-contained HTML page: the mailbox grid and the verdicts.
    Html,
}

pub fn run(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let timeout = match args.timeout {
        None => None,
        Some(t) if t > 0.0 && t.is_finite() && t < 86_400.0 => Some(Duration::from_secs_f64(t)),
        Some(t) => {
            anyhow::bail!("--timeout {t}: give a number of seconds above 0 and below one day")
        }
    };
    let report = match Target::load(&args.target)
        .map_err(|e| e.to_string())
        .and_then(|mut t| {
            trust_flags(&args, &mut t)?;
            Ok(t)
        }) {
        Ok(target) => {
            let progress_on = std::io::stderr().is_terminal();
            let opts = ProbeOptions {
                timeout,
                keep: args.keep,
                run_id: None,
                progress: progress_on.then(|| Arc::new(show_progress) as ProgressFn),
            };
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            let result = runtime.block_on(mailrig_probe::probe(&target, &opts));
            if progress_on {
                eprint!("\r\x1b[2K");
            }
            result.map_err(|e| e.to_string())
        }
        Err(e) => Err(e),
    };
    let report = report.unwrap_or_else(|e| {
        crate::output::error(format_args!("probe: cannot run: {e}"));
        Report::could_not_run(&args.target.display().to_string(), &e)
    });
    // A probe that could not run still writes its JSON or JUnit report (one error case), so that CI
    // collectors see the failure; the table has nothing to add to the error line.
    if report.error.is_some() && args.format == Format::Table {
        return Ok(ExitCode::from(report.exit_code()));
    }
    let to_stdout = args.output.as_deref().is_none_or(crate::output::is_stdout);
    let colour = to_stdout && crate::output::colour_stdout();
    let text = render(&report, args.format, colour);
    match &args.output {
        Some(path) if !to_stdout => {
            crate::output::write_to(path, &text)
                .with_context(|| format!("cannot write the report to {}", path.display()))?;
            // Keep a one-line summary on the terminal.
            for d in &report.domains {
                eprintln!("{}  {}", d.domain, Report::domain_line(d));
            }
        }
        _ => crate::output::write_to(std::path::Path::new("-"), &text)?,
    }
    Ok(ExitCode::from(report.exit_code()))
}

/// `--tls-ca` and `--tls-insecure` replace the target file's `[tls]` table.
fn trust_flags(args: &ProbeArgs, target: &mut Target) -> Result<(), String> {
    if let Some(path) = &args.tls_ca {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| format!("--tls-ca {}: {e}", path.display()))?;
        target.trust = TlsTrust {
            ca_pem: Some(pem),
            insecure: false,
        };
    } else if args.tls_insecure {
        target.trust = TlsTrust {
            ca_pem: None,
            insecure: true,
        };
    }
    Ok(())
}

fn render(report: &Report, format: Format, colour: bool) -> String {
    match format {
        Format::Table => report.to_table(colour),
        Format::Json => {
            let mut s = report.to_json();
            s.push('\n');
            s
        }
        Format::Junit => report.to_junit(),
        Format::Html => report.to_html(),
    }
}

fn show_progress(p: &Progress) {
    let line = match p.phase {
        Phase::Connecting => format!("logging in {}/{}", p.done, p.total),
        Phase::Sending => format!("sending {}/{}", p.done, p.total),
        Phase::Waiting => format!("waiting: {}/{} verdicts known", p.known, p.total),
        Phase::Finishing => "cleaning up".to_string(),
    };
    eprint!(
        "\r\x1b[2Kmailrig probe: {line}  {:.1} s",
        p.elapsed.as_secs_f64()
    );
    let _ = std::io::stderr().flush();
}
