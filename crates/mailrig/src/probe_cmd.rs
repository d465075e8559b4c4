//! `mailrig probe`: send a tagged message to every mailbox of a target file,
//! read each back, print the verdicts. Exit 0 all delivered, 1 any not,
//! 2 the probe could not run (`--format nagios`: 0/1/2/3 as the Monitoring
//! Plugins guidelines say). With `--every` it keeps running as a monitor:
//! one round per interval, each appended to `--history`, metrics served on
//! `--metrics` (the pieces live in `mailrig_probe::monitor`).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use mailrig_probe::monitor::{Metrics, nagios, run_rounds};
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
    /// Table: list only the mailboxes that were not delivered (the counts stay complete).
    #[arg(long)]
    only_failures: bool,
    /// Keep running: one probe round every INTERVAL (`5m`, `30s`, `1h`, `500ms`; at least 100 ms).
    #[arg(long, value_name = "INTERVAL", value_parser = parse_every)]
    every: Option<Duration>,
    /// With --every: stop after N rounds (the exit code is the last round's).
    #[arg(long, value_name = "N", requires = "every", value_parser = clap::value_parser!(u64).range(1..))]
    rounds: Option<u64>,
    /// Append each round's JSON report as one line to FILE (JSON Lines).
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    /// With --every: serve Prometheus metrics on ADDR (`127.0.0.1:9464`; port 0 picks one, printed
    /// on standard error) at /metrics.
    #[arg(long, value_name = "ADDR", requires = "every")]
    metrics: Option<std::net::SocketAddr>,
    /// Send one probe per mailbox through every MX host of its domain (DNS MX records, or the
    /// target's `[smtp] mx_hosts`); verdicts name the MX (`missing via mx2.patente.test`).
    #[arg(long)]
    each_mx: bool,
    /// With --each-mx: ask this DNS server (`127.0.0.1:5353`) instead of the system resolver.
    #[arg(long, value_name = "ADDR")]
    resolver: Option<std::net::SocketAddr>,
    /// With --each-mx: the port MX hosts are sent to (default: the target's `mx_port`, 25).
    #[arg(long, value_name = "PORT")]
    mx_port: Option<u16>,
    /// Warn (table, JSON `tls`, a JUnit case, Nagios WARNING) when a TLS endpoint's certificate expires
    /// within N days; an expired one always warns.
    #[arg(long, value_name = "N")]
    warn_cert_days: Option<u32>,
    /// What a delivered copy's Authentication-Results must show, e.g. `dkim=pass,dmarc=pass` (methods
    /// spf, dkim, dmarc; instead of the target's `[probe] require`); a copy that fails one is
    /// `delivered-unauthenticated`, not delivered for the exit code.
    #[arg(long, value_name = "LIST", value_parser = parse_require)]
    require: Option<RequireList>,
}

/// `--require`'s list (one value; clap would take a bare `Vec` as repeated values).
#[derive(Debug, Clone)]
struct RequireList(Vec<mailrig_probe::Requirement>);

fn parse_require(s: &str) -> Result<RequireList, String> {
    mailrig_probe::parse_requirements(s)
        .map(RequireList)
        .map_err(|e| e.to_string())
}

fn parse_every(s: &str) -> Result<Duration, String> {
    mailrig_probe::monitor::parse_every(s)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
    Junit,
    /// A self-contained HTML page: the mailbox grid and the verdicts.
    Html,
    /// One status line with performance data, exit 0 OK / 1 WARNING / 2 CRITICAL / 3 UNKNOWN.
    Nagios,
}

pub fn run(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let nagios = args.format == Format::Nagios;
    let target = args.target.display().to_string();
    match run_probe(args) {
        // Nagios reads stdout and the exit code: anything that stops the
        // plugin is UNKNOWN (3), as the guidelines say, not CRITICAL (2).
        Err(e) if nagios => Ok(nagios_unknown(&target, &format!("{e:#}"))),
        other => other,
    }
}

/// Prints the UNKNOWN status line for a probe that could not run (the error
/// also on standard error) and returns exit code 3.
fn nagios_unknown(target: &str, why: &str) -> ExitCode {
    crate::output::error(format_args!("probe: cannot run: {why}"));
    let (line, code) = nagios::status_line(&Report::could_not_run(target, why));
    print!("{line}");
    let _ = std::io::stdout().flush();
    ExitCode::from(code)
}

/// A usage error (bad flag or value) of `mailrig probe ... --format nagios`:
/// UNKNOWN (exit 3) with one status line on stdout, as the Monitoring Plugins
/// guidelines ask for invalid arguments; `None` for any other command line.
pub fn nagios_usage_error(args: &[String], error: &str) -> Option<ExitCode> {
    if !args.iter().skip(1).any(|a| a == "probe") {
        return None;
    }
    let nagios = args
        .windows(2)
        .any(|w| w[0] == "--format" && w[1] == "nagios")
        || args.iter().any(|a| a == "--format=nagios");
    if !nagios {
        return None;
    }
    let target = args
        .windows(2)
        .find(|w| w[0] == "--target")
        .map_or("?", |w| w[1].as_str());
    let first = error.lines().next().unwrap_or(error);
    Some(nagios_unknown(target, &format!("usage: {first}")))
}

fn run_probe(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let timeout = match args.timeout {
        None => None,
        Some(t) if t > 0.0 && t.is_finite() && t < 86_400.0 => Some(Duration::from_secs_f64(t)),
        Some(t) => {
            anyhow::bail!("--timeout {t}: give a number of seconds above 0 and below one day")
        }
    };
    let target = Target::load(&args.target)
        .map_err(|e| e.to_string())
        .and_then(|mut t| {
            trust_flags(&args, &mut t)?;
            if let Some(r) = &args.require {
                t.require = r.0.clone();
            }
            Ok(t)
        });
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let Some(every) = args.every else {
        let result = match target {
            Ok(target) => {
                let progress_on = std::io::stderr().is_terminal() && args.format != Format::Nagios;
                let opts = ProbeOptions {
                    timeout,
                    keep: args.keep,
                    run_id: None,
                    progress: progress_on.then(|| Arc::new(show_progress) as ProgressFn),
                    each_mx: args.each_mx,
                    resolver: args.resolver,
                    mx_port: args.mx_port,
                    warn_cert_days: args.warn_cert_days,
                };
                let result = runtime.block_on(mailrig_probe::probe(&target, &opts));
                if progress_on {
                    eprint!("\r\x1b[2K");
                }
                result.map_err(|e| e.to_string())
            }
            Err(e) => Err(e),
        };
        return finish_round(&args, result).map(ExitCode::from);
    };
    // The monitor: a bad target file is an error at once, not a failing round.
    let target = target.map_err(|e| anyhow::anyhow!(e))?;
    let opts = ProbeOptions {
        timeout,
        keep: args.keep,
        run_id: None,
        progress: None,
        each_mx: args.each_mx,
        resolver: args.resolver,
        mx_port: args.mx_port,
        warn_cert_days: args.warn_cert_days,
    };
    runtime.block_on(async {
        let metrics = Arc::new(std::sync::Mutex::new(Metrics::new()));
        if let Some(addr) = args.metrics {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("--metrics {addr}: cannot listen"))?;
            let local = listener.local_addr()?;
            eprintln!("mailrig probe: metrics on http://{local}/metrics");
            tokio::spawn(serve_metrics(listener, Arc::clone(&metrics)));
        }
        let mut last = 0u8;
        let mut failure = None;
        run_rounds(&target, &opts, every, args.rounds, |_, result| {
            metrics
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .record(result);
            match finish_round(&args, result.clone().map_err(|e| e.to_string())) {
                Ok(code) => {
                    last = code;
                    true
                }
                Err(e) => {
                    failure = Some(e);
                    false
                }
            }
        })
        .await;
        match failure {
            Some(e) => Err(e),
            None => Ok(ExitCode::from(last)),
        }
    })
}

/// Writes one round's report (and history line); returns its exit code.
fn finish_round(args: &ProbeArgs, result: Result<Report, String>) -> anyhow::Result<u8> {
    let report = result.unwrap_or_else(|e| {
        crate::output::error(format_args!("probe: cannot run: {e}"));
        Report::could_not_run(&args.target.display().to_string(), &e)
    });
    if let Some(path) = &args.history {
        mailrig_probe::monitor::append_history(path, &report)
            .with_context(|| format!("--history {}: cannot append", path.display()))?;
    }
    let code = if args.format == Format::Nagios {
        nagios::status_line(&report).1
    } else {
        report.exit_code()
    };
    // A probe that could not run still writes its JSON or JUnit report (one error case), so that CI
    // collectors see the failure; the table has nothing to add to the error line.
    if report.error.is_some() && args.format == Format::Table {
        return Ok(code);
    }
    let to_stdout = args.output.as_deref().is_none_or(crate::output::is_stdout);
    let colour = to_stdout && crate::output::colour_stdout();
    let shown = if args.only_failures {
        report.failures_only()
    } else {
        report.clone()
    };
    let text = render(&shown, args.format, colour);
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
    Ok(code)
}

/// Serves the metrics text to every `GET /metrics` (a minimal HTTP/1.0
/// responder: one request per connection, headers read up to 8 KiB).
async fn serve_metrics(listener: tokio::net::TcpListener, metrics: Arc<std::sync::Mutex<Metrics>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            continue;
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(1024);
            let mut chunk = [0u8; 1024];
            let read = async {
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            };
            if tokio::time::timeout(Duration::from_secs(5), read)
                .await
                .is_err()
            {
                return;
            }
            let request = String::from_utf8_lossy(&buf);
            let path = request.split_whitespace().nth(1).unwrap_or("");
            let response = if request.starts_with("GET ") && (path == "/metrics" || path == "/") {
                let body = metrics.lock().unwrap_or_else(|p| p.into_inner()).render();
                format!(
                    "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n\r\nonly /metrics here\r\n".to_string()
            };
            let _ = conn.write_all(response.as_bytes()).await;
            let _ = conn.shutdown().await;
        });
    }
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
        Format::Nagios => nagios::status_line(report).0,
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
