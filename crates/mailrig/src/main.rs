//! The `mailrig` command-line program.
//!
//! Each subcommand lives in its own module and only wires flags to the library
//! crates: `demo` (the seed incident, caught), `serve` (the fake mail world),
//! `scenario` (check and explain scenario files), `probe` (the delivery
//! prober), `load` (the SMTP load driver and its report merger), `lab` (training labs).

mod demo_cmd;
mod lab;
mod load_cmd;
mod load_verify;
mod output;
mod probe_cmd;
mod scenario_cmd;
mod serve;

use std::process::ExitCode;

use clap::{FromArgMatches, Parser, Subcommand};

/// mailrig: a toolkit for testing mail delivery.
#[derive(Debug, Parser)]
#[command(
    name = "mailrig",
    version,
    about,
    long_about = None,
    after_help = "Exit codes: 0 success, 1 the check failed (mail missing, thresholds crossed, \
                  warnings under --strict), 2 could not run (bad flags or files, target unreachable), \
                  130 interrupted. Each subcommand's --help says what 1 means for it."
)]
struct Cli {
    /// Colour the output: auto (a terminal, unless NO_COLOR is set), always or never.
    #[arg(long, global = true, value_enum, default_value_t = output::ColorChoice::Auto, value_name = "WHEN")]
    color: output::ColorChoice,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The seed incident, caught: a fake world that loses 23 of 25 mailboxes' mail, probed.
    Demo(demo_cmd::DemoArgs),
    /// Run a fake multi-domain mail server (SMTP in; IMAP and POP3 out).
    Serve(Box<serve::ServeArgs>),
    /// Send a tagged message to every mailbox of a target and prove it arrived.
    Probe(probe_cmd::ProbeArgs),
    /// Check and explain scenario files.
    #[command(subcommand)]
    Scenario(scenario_cmd::ScenarioCommand),
    /// Drive SMTP load at a server: throughput, latency per stage, errors by code.
    /// `mailrig load merge A.json B.json` adds up the reports of several runs.
    Load(Box<load_cmd::LoadCommand>),
    /// Training labs: broken mail systems to diagnose and fix, checked by the prober.
    #[command(subcommand)]
    Lab(lab::LabCommand),
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    output::set_color(cli.color);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MAILRIG_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Demo(args) => demo_cmd::run(args),
        Command::Serve(args) => serve::run(*args),
        Command::Scenario(cmd) => scenario_cmd::run(cmd),
        Command::Probe(args) => probe_cmd::run(args),
        Command::Load(cmd) => load_cmd::run(*cmd),
        Command::Lab(cmd) => lab::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            output::error(format_args!("{e:#}"));
            ExitCode::from(output::EXIT_COULD_NOT_RUN)
        }
    }
}

/// Parses the command line; usage errors get the same `mailrig: error:` prefix and exit code 2 as every
/// other error, `--help` and `--version` print and exit 0.
fn parse() -> Result<Cli, ExitCode> {
    use clap::CommandFactory as _;
    use clap::error::ErrorKind;
    let mut command = Cli::command();
    if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        command = command.color(clap::ColorChoice::Never);
    }
    let result = command
        .try_get_matches()
        .and_then(|mut m| Cli::from_arg_matches_mut(&mut m));
    result.map_err(|e| match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(
                if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    output::EXIT_COULD_NOT_RUN
                } else {
                    0
                },
            )
        }
        _ => {
            let text = e.render().to_string();
            let text = text.trim_end();
            let text = text.strip_prefix("error: ").unwrap_or(text);
            let args: Vec<String> = std::env::args().collect();
            if let Some(code) = probe_cmd::nagios_usage_error(&args, text) {
                return code;
            }
            output::error(text);
            ExitCode::from(output::EXIT_COULD_NOT_RUN)
        }
    })
}
