//! `mailrig lab`: training labs — broken mail systems to diagnose and fix, checked by the prober.
//!
//! A lab is data ([`spec`]: `lab.toml`, templates, the reference fix), built into the binary from
//! the repository's `labs/` folder or read from a trainer's folder ([`source`]). [`engine`] builds
//! a lab directory and runs its [`services`] privately on 127.0.0.1; [`check`] judges it with the
//! prober (and, for find-it labs, the fake world's [`journal`]); [`state`] keeps it all in the lab
//! directory, so every command finds the lab from the current directory.
//!
//! The engine lives here, in the command-line crate, because it is orchestration of programs
//! (`mailrig serve`, Dovecot, fetchmail) and of the prober library, with no protocol of its own.

/// `println!` for the lab commands: when stdout is a closed pipe (`mailrig lab check | head`) the
/// program ends quietly with 141 (as if killed by SIGPIPE, as `head`'s users expect) instead of
/// panicking with "failed printing to stdout".
macro_rules! outln {
    () => { out!("\n") };
    ($($t:tt)*) => { out!("{}\n", format_args!($($t)*)) };
}

/// `print!` with the same care as [`outln!`].
macro_rules! out {
    ($($t:tt)*) => { write_out(format_args!($($t)*)) };
}

fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        panic!("cannot write to stdout: {e}");
    }
}

mod check;
mod engine;
mod journal;
mod panel;
mod render;
mod services;
mod source;
mod spec;
mod state;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};

use crate::output;
use source::LabSource;
use state::LabState;

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Every built-in lab with its kind, level and the skills it trains.
    List(ListArgs),
    /// Check a lab folder (lab.toml, templates, fix) without starting it.
    Validate {
        /// The lab folder (holding lab.toml), or a built-in lab's name.
        dir: String,
    },
    /// Build a lab's broken environment in DIR and start it on 127.0.0.1.
    Start(StartArgs),
    /// The running lab: story, task, ports, services, hints used, score so far (`--format json`:
    /// the panel a trainer projects, as `mailrig serve --lab DIR` serves it).
    Status(CheckArgs),
    /// Reveal the next hint (each costs points).
    Hint(DirArg),
    /// Run the lab's checks. Exit 0 solved, 1 not yet, 2 no lab running.
    Check(CheckArgs),
    /// Back to the broken start (files, mail, services); hints used and the clock are kept.
    Reset(DirArg),
    /// For instructors: apply the reference fix (or answer); the score becomes 0.
    Solve(DirArg),
    /// Stop every process the lab started and free its ports.
    Stop(DirArg),
    /// Answer a find-it lab: which mailboxes lose mail (or get it late), and at which stage.
    Answer(AnswerArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// A built-in lab (`mailrig lab list`) or a lab folder.
    name: String,
    /// The lab directory [default: ./mailrig-lab-NAME].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Ports are N + the lab's offsets (give each trainee on one machine their own, e.g. 20000,
    /// 20100, ...) [default: the first free range from 20000 in steps of 100].
    #[arg(long, value_name = "N")]
    port_base: Option<u16>,
}

#[derive(Debug, Args)]
pub struct DirArg {
    /// The lab directory [default: the current directory or the nearest parent holding a lab].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    dir: DirArg,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Args)]
pub struct AnswerArgs {
    #[command(flatten)]
    dir: DirArg,
    /// The stage where the mail is lost or put off (as the journal names stages: rcpt, route,
    /// deliver, ...).
    #[arg(long, value_name = "STAGE")]
    stage: Option<String>,
    /// The mailboxes named do not lose their mail, they get it late (put off with 4xx, stored late).
    #[arg(long)]
    delayed: bool,
    /// The mailboxes that lose mail (or, with --delayed, get it late); ranges like
    /// user03..user25@patente.test work.
    #[arg(required = true, value_name = "MAILBOX")]
    mailboxes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
}

/// Exit code of `lab check` when no lab runs.
const EXIT_NOT_RUNNING: u8 = 2;

pub fn run(cmd: LabCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        LabCommand::List(a) => list(a.format),
        LabCommand::Validate { dir } => validate(&dir),
        LabCommand::Start(a) => start(a),
        LabCommand::Status(a) => status(&a),
        LabCommand::Hint(a) => hint(&a),
        LabCommand::Check(a) => check_cmd(a),
        LabCommand::Reset(a) => reset(&a),
        LabCommand::Solve(a) => solve(&a),
        LabCommand::Stop(a) => stop(&a),
        LabCommand::Answer(a) => answer(a),
    }
}

fn list(format: Format) -> anyhow::Result<ExitCode> {
    let labs: Vec<LabSource> = source::builtin_names()
        .iter()
        .map(|n| source::find(n))
        .collect::<Result<_, _>>()?;
    if format == Format::Json {
        let v: Vec<_> = labs
            .iter()
            .map(|l| {
                serde_json::json!({
                    "name": l.name, "title": l.spec.title, "kind": l.spec.kind,
                    "level": l.spec.level, "skills": l.spec.skills, "points": l.spec.points,
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let width = labs.iter().map(|l| l.name.len()).max().unwrap_or(4).max(4);
    outln!(
        "{:width$}  {:7}  {:12}  TITLE / SKILLS",
        "NAME",
        "KIND",
        "LEVEL"
    );
    for l in &labs {
        outln!(
            "{:width$}  {:7}  {:12}  {}",
            l.name,
            l.spec.kind.as_str(),
            l.spec.level.as_str(),
            l.spec.title
        );
        outln!(
            "{:width$}  {:7}  {:12}  {}",
            "",
            "",
            "",
            l.spec.skills.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn validate(dir: &str) -> anyhow::Result<ExitCode> {
    let lab = source::find(dir)?;
    lab.validate()?;
    outln!(
        "{}: ok ({} lab, {} hint{}, {} check{}, {} service{})",
        lab.toml_name,
        lab.spec.kind.as_str(),
        lab.spec.hint.len(),
        plural(lab.spec.hint.len()),
        lab.spec.check.len(),
        plural(lab.spec.check.len()),
        lab.spec.service.len(),
        plural(lab.spec.service.len())
    );
    Ok(ExitCode::SUCCESS)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn start(a: StartArgs) -> anyhow::Result<ExitCode> {
    let lab = source::find(&a.name)?;
    lab.validate()?;
    let dir = a
        .dir
        .unwrap_or_else(|| PathBuf::from(format!("mailrig-lab-{}", lab.name)));
    let began = Instant::now();
    let st = engine::start(&lab, &dir, a.port_base)?;
    panel::write(&lab, &st, panel::Last::Clear)?;
    let took = began.elapsed();
    print_intro(&lab, &st)?;
    outln!(
        "\nReady in {:.1} s. Check your work with `mailrig lab check` (inside {}), stop with `mailrig lab stop`.",
        took.as_secs_f64(),
        st.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn print_intro(lab: &LabSource, st: &LabState) -> anyhow::Result<()> {
    let vars = engine::vars(st);
    outln!(
        "lab {} ({}, {}): {}\n",
        lab.name,
        lab.spec.kind.as_str(),
        lab.spec.level.as_str(),
        lab.spec.title
    );
    outln!("{}\n", lab.spec.story.trim());
    outln!("Your task: {}\n", lab.spec.task.trim());
    if !lab.spec.editable.is_empty() {
        outln!("You may edit:");
        for e in &lab.spec.editable {
            outln!("  {}", st.dir.join(e.get_ref()).display());
        }
        outln!();
    }
    outln!("Running on 127.0.0.1 (port base {}):", st.port_base);
    let mut ports: Vec<_> = st.ports.iter().collect();
    ports.sort_by_key(|(_, p)| **p);
    for (name, port) in ports {
        outln!("  {name:16} {port}");
    }
    if !lab.spec.helpful.is_empty() {
        outln!("\nCommands that help:");
        for h in &lab.spec.helpful {
            outln!("  {}", lab.render_str("helpful command", h, &vars)?);
        }
    }
    if !lab.spec.hint.is_empty() {
        outln!(
            "\n{} hint{} available: `mailrig lab hint` (each costs points; solving is worth {}).",
            lab.spec.hint.len(),
            plural(lab.spec.hint.len()),
            lab.spec.points
        );
    }
    Ok(())
}

/// The running lab's directory, state and source.
fn open(dir: &DirArg) -> anyhow::Result<(LabState, LabSource)> {
    let Some(found) = state::locate(dir.dir.as_deref()) else {
        match &dir.dir {
            Some(d) => bail!(
                "no lab in {}: start one with `mailrig lab start NAME --dir {}`",
                d.display(),
                d.display()
            ),
            None => bail!(
                "no lab here: run this inside a lab directory, give --dir DIR, or start one with `mailrig lab start NAME`"
            ),
        }
    };
    let st = LabState::load(&found)?;
    let lab = if st.source == "builtin" {
        source::find(&st.lab)?
    } else {
        source::from_folder(Path::new(&st.source))?
    };
    Ok((st, lab))
}

fn status(a: &CheckArgs) -> anyhow::Result<ExitCode> {
    let (st, lab) = open(&a.dir)?;
    if a.format == Format::Json {
        let panel = panel::build(&lab, &st, panel::Last::Keep);
        outln!("{}", serde_json::to_string_pretty(&panel)?);
        return Ok(ExitCode::SUCCESS);
    }
    print_intro(&lab, &st)?;
    outln!("\nServices:");
    for s in &st.services {
        outln!(
            "  {:16} pid {:7} {}",
            s.name,
            s.pid,
            if services::alive(s) {
                "running"
            } else {
                "NOT RUNNING"
            }
        );
    }
    if !st.running {
        outln!("  (stopped: `mailrig lab reset` starts it again)");
    }
    for (i, h) in lab.spec.hint.iter().take(st.hints_used).enumerate() {
        outln!("\nHint {} (-{}): {}", i + 1, h.cost, h.text);
    }
    let score = check::score(&lab, &st);
    outln!(
        "\n{}: score {} of {}, {} hint{} used, {} since the start",
        if score.solved {
            "SOLVED"
        } else {
            "not solved yet"
        },
        score.score,
        score.points,
        score.hints_used,
        plural(score.hints_used),
        check::human_duration(score.seconds)
    );
    Ok(ExitCode::SUCCESS)
}

fn hint(dir: &DirArg) -> anyhow::Result<ExitCode> {
    let (mut st, lab) = open(dir)?;
    let Some(h) = lab.spec.hint.get(st.hints_used) else {
        outln!(
            "No more hints: all {} are revealed (`mailrig lab status` shows them).",
            lab.spec.hint.len()
        );
        return Ok(ExitCode::SUCCESS);
    };
    if st.solved.is_none() {
        st.hints_used += 1;
        st.save()?;
        panel::write(&lab, &st, panel::Last::Keep)?;
    }
    outln!(
        "Hint {} of {} (-{} points): {}",
        st.hints_used.max(1),
        lab.spec.hint.len(),
        h.cost,
        h.text
    );
    Ok(ExitCode::SUCCESS)
}

fn check_cmd(a: CheckArgs) -> anyhow::Result<ExitCode> {
    let (mut st, lab) = match open(&a.dir) {
        Ok(x) => x,
        Err(e) => {
            output::error(format_args!("{e:#}"));
            return Ok(ExitCode::from(EXIT_NOT_RUNNING));
        }
    };
    if !engine::is_running(&st) {
        output::error(format_args!(
            "the lab in {} is stopped: `mailrig lab reset` starts it again",
            st.dir.display()
        ));
        return Ok(ExitCode::from(EXIT_NOT_RUNNING));
    }
    let began = Instant::now();
    let mut checks = Vec::new();
    let refreshed = engine::refresh(&lab, &mut st);
    if let Err(e) = &refreshed {
        checks.push(check::CheckResult {
            name: "the lab's services run".into(),
            kind: "service",
            required: true,
            passed: false,
            problems: vec![format!("{e:#}")],
            verdicts: Default::default(),
            report: None,
        });
    }
    checks.extend(check::run_checks(&lab, &st));
    let mut report = check::report(&lab, &st, checks, began);
    if report.solved && st.solved.is_none() {
        let seconds = check::seconds_since(&st.started_at);
        st.solved = Some(state::Solved {
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            by: if st.revealed { "reference" } else { "trainee" }.into(),
            seconds,
            score: if st.revealed {
                0
            } else {
                report.score.points.saturating_sub(report.score.hint_cost)
            },
        });
        st.save()?;
        report.score = check::score(&lab, &st);
    }
    panel::write(&lab, &st, panel::Last::Set(&report))?;
    match a.format {
        Format::Json => outln!("{}", serde_json::to_string_pretty(&report)?),
        Format::Table => {
            if let Ok(restarted) = &refreshed
                && !restarted.is_empty()
            {
                outln!("(restarted after your changes: {})\n", restarted.join(", "));
            }
            out!("{}", check::to_table(&report, output::colour_stdout()));
        }
    }
    Ok(ExitCode::from(if report.solved { 0 } else { 1 }))
}

fn reset(dir: &DirArg) -> anyhow::Result<ExitCode> {
    let (mut st, lab) = open(dir)?;
    engine::reset(&lab, &mut st)?;
    panel::write(&lab, &st, panel::Last::Clear)?;
    outln!(
        "lab {} is back at its broken start in {} (hints used and the clock are kept).",
        st.lab,
        st.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn solve(dir: &DirArg) -> anyhow::Result<ExitCode> {
    let (mut st, lab) = open(dir)?;
    engine::apply_fix(&lab, &mut st)?;
    panel::write(&lab, &st, panel::Last::Keep)?;
    outln!("What was broken:\n{}\n", lab.spec.cause.trim());
    if !lab.fix.is_empty() {
        outln!("The reference fix is now in place:");
        for rel in lab.fix.keys() {
            outln!("  {}", st.dir.join(rel).display());
        }
    }
    if let Some(a) = &st.answer {
        outln!(
            "The reference answer is recorded: {} mailboxes {}, stage {}.",
            a.mailboxes.len(),
            outcome_words(a.outcome),
            a.stage.as_deref().unwrap_or("-")
        );
    }
    outln!("`mailrig lab check` proves it; the score of this run is 0.");
    Ok(ExitCode::SUCCESS)
}

fn stop(dir: &DirArg) -> anyhow::Result<ExitCode> {
    let (mut st, lab) = open(dir)?;
    let taken = engine::stop(&mut st);
    panel::write(&lab, &st, panel::Last::Keep)?;
    if !taken.is_empty() {
        bail!("stopped the lab's processes, but ports {taken:?} are still taken on 127.0.0.1");
    }
    outln!(
        "lab {} stopped: no process left, ports {}..{} free. The directory {} stays (delete it, or `mailrig lab reset` to start again).",
        st.lab,
        st.ports.values().min().copied().unwrap_or(0),
        st.ports.values().max().copied().unwrap_or(0),
        st.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn answer(a: AnswerArgs) -> anyhow::Result<ExitCode> {
    let (mut st, lab) = open(&a.dir)?;
    if lab.spec.kind != spec::LabKind::FindIt {
        bail!(
            "lab {} is a fix-it lab: there is nothing to answer, fix it and run `mailrig lab check`",
            st.lab
        );
    }
    if let Some(stage) = &a.stage
        && !spec::STAGES.contains(&stage.as_str())
    {
        bail!(
            "unknown stage '{stage}' (one of {})",
            spec::STAGES.join(", ")
        );
    }
    let mut lost = BTreeSet::new();
    for m in &a.mailboxes {
        let expanded = mailrig_core::range::expand(m).with_context(|| format!("'{m}'"))?;
        for addr in expanded {
            if !addr.contains('@') {
                bail!(
                    "'{addr}' is not a mail address (write user03@patente.test, or a range of them)"
                );
            }
            lost.insert(addr.to_ascii_lowercase());
        }
    }
    let outcome = if a.delayed {
        journal::Outcome::Delayed
    } else {
        journal::Outcome::Lost
    };
    let n = lost.len();
    st.answer = Some(state::Answer {
        mailboxes: lost.into_iter().collect(),
        outcome,
        stage: a.stage.clone(),
    });
    st.save()?;
    outln!(
        "Answer recorded: {n} mailbox{} {}{}. `mailrig lab check` judges it.",
        if n == 1 { "" } else { "es" },
        outcome_words(outcome),
        a.stage
            .as_ref()
            .map_or(String::new(), |s| format!(" at stage {s}"))
    );
    Ok(ExitCode::SUCCESS)
}

fn outcome_words(outcome: journal::Outcome) -> &'static str {
    match outcome {
        journal::Outcome::Lost => "losing mail",
        journal::Outcome::Delayed => "getting mail late",
    }
}
