//! The `mailrig` command-line program.
//!
//! Each subcommand lives in its own module and only wires flags to the library
//! crates: `demo` (the seed incident, caught), `serve` (the fake mail world),
//! `scenario` (check and explain scenario files), `probe` (the delivery
//! prober), `load` (the SMTP load driver and its report merger).

mod demo_cmd;
mod load_cmd;
mod load_verify;
mod probe_cmd;
mod scenario_cmd;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mailrig: a toolkit for testing mail delivery.
#[derive(Debug, Parser)]
#[command(name = "mailrig", version, about, long_about = None)]
struct Cli {
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mailrig: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
