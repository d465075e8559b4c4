//! `mailrig scenario ...`: validate a scenario file and print its summary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use mailrig_core::Scenario;

#[derive(Debug, Subcommand)]
pub enum ScenarioCommand {
    /// Validate a scenario file and print a summary (domains, mailbox counts).
    Check {
        /// The scenario file (TOML).
        file: PathBuf,
    },
}

pub fn run(cmd: ScenarioCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ScenarioCommand::Check { file } => match Scenario::load(&file) {
            Ok(s) => {
                print!("{}", s.summary());
                println!("ok");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("mailrig: invalid scenario: {e}");
                Ok(ExitCode::from(2))
            }
        },
    }
}
