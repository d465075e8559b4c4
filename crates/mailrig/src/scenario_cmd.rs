//! `mailrig scenario ...`: validate scenario files, list the catalog, and
//! explain one scenario in words (its description, its world, its fault rules).
//!
//! The catalog (`crates/mailrig-core/catalog/`) is embedded in the program, so `list`
//! and `explain NAME` work from any directory; `--dir` lists another folder
//! and `explain` takes a file path as well.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use mailrig_core::Scenario;
use mailrig_core::catalog::{self, CATALOG};
use mailrig_core::fault::spec::{FaultRuleSpec, OneOrMany};
use mailrig_core::fault::{FaultRule, Stage};

#[derive(Debug, Subcommand)]
pub enum ScenarioCommand {
    /// Validate a scenario and print a summary (domains, mailbox counts, warnings).
    #[command(
        after_help = "Exit codes: 0 valid, 1 valid but with warnings under --strict, 2 invalid \
                            (FILE:LINE:COLUMN: what is wrong) or not found."
    )]
    Check {
        /// A scenario file (TOML) or a catalog name (see `mailrig scenario list`).
        #[arg(value_name = "FILE|NAME")]
        scenario: String,
        /// Fail (exit 1) when the scenario has warnings, e.g. a fault rule that can never fire.
        #[arg(long)]
        strict: bool,
    },
    /// List the scenario catalog: name and first sentence of each description.
    #[command(after_help = "Exit codes: 0 listed, 2 a file of --dir is invalid (marked INVALID).")]
    List {
        /// List the scenario files of this folder instead of the built-in catalog.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Explain a scenario: its description, its world and each fault rule in words.
    #[command(
        after_help = "Exit codes: 0 explained, 2 not a scenario file or catalog name, or invalid."
    )]
    Explain {
        /// A catalog name (see `mailrig scenario list`) or a scenario file.
        scenario: String,
    },
}

pub fn run(cmd: ScenarioCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ScenarioCommand::Check { scenario, strict } => match resolve(&scenario) {
            Ok(s) if strict && !s.warnings.is_empty() => {
                print!("{}", s.summary());
                crate::output::error(format_args!(
                    "{scenario}: {} warning(s), and --strict makes warnings fail the check",
                    s.warnings.len()
                ));
                Ok(ExitCode::from(1))
            }
            Ok(s) => {
                print!("{}", s.summary());
                println!("ok");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                crate::output::error(format_args!("invalid scenario: {e}"));
                Ok(ExitCode::from(2))
            }
        },
        ScenarioCommand::List { dir } => list(dir.as_deref()),
        ScenarioCommand::Explain { scenario } => match resolve(&scenario) {
            Ok(s) => {
                print!("{}", explain(&s));
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                crate::output::error(&e);
                Ok(ExitCode::from(2))
            }
        },
    }
}

/// A scenario named on the command line: an existing file, else a catalog name.
pub fn resolve(arg: &str) -> anyhow::Result<Scenario> {
    let path = Path::new(arg);
    if path.is_file() {
        return Ok(Scenario::load(path)?);
    }
    match catalog::find(arg) {
        Some(entry) => Ok(entry.load()?),
        // Meant as a file: say why it cannot be read.
        None if arg.contains(std::path::MAIN_SEPARATOR) || arg.ends_with(".toml") => {
            Ok(Scenario::load(path)?)
        }
        None => anyhow::bail!(
            "'{arg}' is neither a scenario file nor a catalog name; `mailrig scenario list` shows the catalog"
        ),
    }
}

/// The first sentence of a description's first paragraph, on one line.
fn first_line(description: &str) -> String {
    let paragraph: Vec<&str> = description
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let text = paragraph.join(" ");
    match text.find(". ") {
        Some(i) => text[..=i].to_string(),
        None => text,
    }
}

fn list(dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut broken = false;
    match dir {
        None => {
            for e in CATALOG {
                let s = e.load()?;
                rows.push((e.name.to_string(), first_line(&s.description)));
            }
        }
        Some(dir) => {
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .with_context(|| format!("cannot read the folder {}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            files.sort();
            for p in files {
                let name = p
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                match Scenario::load(&p) {
                    Ok(s) => rows.push((name, first_line(&s.description))),
                    Err(e) => {
                        broken = true;
                        rows.push((name, format!("INVALID: {e}")));
                    }
                }
            }
        }
    }
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, line) in &rows {
        println!("{name:<width$}  {line}");
    }
    Ok(if broken {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// The full explanation of a scenario.
pub fn explain(s: &Scenario) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}\n", s.source);
    if s.description.is_empty() {
        out.push_str("(no description: the file has no leading comment block)\n\n");
    } else {
        for line in s.description.lines() {
            let _ = writeln!(out, "  {line}");
        }
        out.push('\n');
    }
    out.push_str(&s.summary());
    for d in &s.world.domains {
        let names: Vec<String> = d
            .mailboxes
            .iter()
            .map(|id| s.world.mailbox(*id).address.local().to_string())
            .collect();
        let shown = if names.len() > 8 {
            format!(
                "{}, {}, ... {}",
                names[0],
                names[1],
                names.last().map_or("", String::as_str)
            )
        } else {
            names.join(", ")
        };
        let _ = writeln!(out, "  {}: {shown}", d.name);
    }
    let rules = s.faults.rules();
    if rules.is_empty() {
        out.push_str("\nno fault rules: everything works normally.\n");
    } else {
        out.push_str("\nfault rules:\n");
        for (i, r) in rules.iter().enumerate() {
            out.push_str(&rule_in_words(i + 1, r));
        }
    }
    out
}

fn stage_in_words(stage: Stage) -> &'static str {
    match stage {
        Stage::Connect => "when a client connects (before anything is sent)",
        Stage::Greeting => "at the 220 greeting",
        Stage::Tls => "at the TLS handshake (STARTTLS and the SMTPS port)",
        Stage::Ehlo => "at EHLO/HELO",
        Stage::Auth => "at SMTP AUTH",
        Stage::Mail => "at MAIL FROM",
        Stage::Rcpt => "at RCPT TO",
        Stage::Data => "at the DATA command",
        Stage::EndOfData => "at the end of the message (the final '.')",
        Stage::Route => "when an accepted recipient is routed to its mailbox",
        Stage::Deliver => "when the message is stored into the mailbox",
        Stage::ImapLogin => "at IMAP LOGIN/AUTHENTICATE",
        Stage::ImapSelect => "at IMAP SELECT/EXAMINE/STATUS",
        Stage::ImapFetch => "at IMAP FETCH",
        Stage::Pop3 => "at the POP3 login (PASS)",
        Stage::Collect => "when a collector fetches from a host",
        Stage::Dns => "when the world's DNS server answers a query",
    }
}

fn items(v: &Option<OneOrMany>) -> Option<String> {
    v.as_ref().map(|v| v.items().join(", "))
}

/// To whom and how often, in words.
fn selectors_in_words(s: &FaultRuleSpec) -> (String, String) {
    let mut who = Vec::new();
    let keys = [
        (items(&s.domain), "recipient domain"),
        (items(&s.mailbox), "mailbox"),
        (items(&s.except), "except mailbox"),
        (items(&s.sender), "sender"),
        (items(&s.qname), "DNS query name"),
        (items(&s.qtype), "DNS query type"),
        (items(&s.client), "client address"),
        (items(&s.user), "user"),
    ];
    for (v, what) in keys {
        if let Some(v) = v {
            who.push(format!("{what} {v}"));
        }
    }
    let who = if who.is_empty() {
        "everyone".to_string()
    } else {
        who.join("; ")
    };
    let mut often = Vec::new();
    if let Some(n) = s.nth {
        often.push(format!("only the {n}. match"));
    }
    if let Some(n) = s.first {
        often.push(format!("the first {n} matches"));
    }
    if let Some(n) = s.every {
        often.push(format!("every {n}. match"));
    }
    if let Some(n) = s.after {
        often.push(format!("after {n} matches"));
    }
    if let Some(t) = s.from_secs {
        often.push(format!("from {t} s after start"));
    }
    if let Some(t) = s.until_secs {
        often.push(format!("until {t} s after start"));
    }
    if let Some(p) = s.probability {
        often.push(format!(
            "with probability {p} (seed {}, the same traffic fires the same way)",
            s.seed.unwrap_or(0)
        ));
    }
    if s.enabled == Some(false) {
        often.push("disabled at start".to_string());
    }
    let often = if often.is_empty() {
        "every time".to_string()
    } else {
        often.join("; ")
    };
    (who, often)
}

fn rule_in_words(n: usize, r: &FaultRule) -> String {
    let s = &r.spec;
    let mut out = String::new();
    let _ = write!(out, "  {n}. {} ({})", r.name, s.action.name());
    if let Some(d) = &s.description {
        let _ = write!(out, ": {d}");
    }
    out.push('\n');
    let (who, often) = selectors_in_words(s);
    let _ = writeln!(out, "     where: {}", stage_in_words(r.stage));
    let _ = writeln!(out, "     for:   {who}");
    let _ = writeln!(out, "     how often: {often}");
    let _ = writeln!(out, "     does:  {}", r.does());
    out
}
