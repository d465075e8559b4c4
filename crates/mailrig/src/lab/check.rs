//! `lab check`: runs a lab's checks (the prober first), says for each failing one what is wrong
//! without giving the fix away, and keeps the score.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mailrig_probe::{ProbeOptions, Report, Target, Verdict};
use serde::Serialize;

use super::journal;
use super::source::LabSource;
use super::spec::CheckKind;
use super::state::LabState;

pub const SCHEMA: &str = "mailrig-lab-check/1";

/// The outcome of one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub kind: &'static str,
    pub required: bool,
    pub passed: bool,
    /// What is wrong, one sentence each.
    pub problems: Vec<String>,
    /// Mailbox → verdict (probe checks).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub verdicts: BTreeMap<String, String>,
    #[serde(skip)]
    pub report: Option<Report>,
}

/// The score, as graders read it.
#[derive(Debug, Clone, Serialize)]
pub struct Score {
    pub points: u32,
    pub hints_used: usize,
    pub hint_cost: u32,
    /// Points now: `points - hint_cost` until solved; the recorded score once solved.
    pub score: u32,
    pub solved: bool,
    /// `trainee` or `reference`.
    pub solved_by: Option<String>,
    pub started_at: String,
    pub solved_at: Option<String>,
    /// Seconds from `lab start` to the solving check (or to now).
    pub seconds: u64,
}

/// The whole `lab check --format json` document.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub schema: &'static str,
    pub lab: String,
    pub title: String,
    pub kind: &'static str,
    pub dir: String,
    pub solved: bool,
    pub checks: Vec<CheckResult>,
    /// The probe report of the first probe check.
    pub probe: Option<Report>,
    pub score: Score,
    pub duration_ms: u64,
}

/// Runs every check of the lab in order.
pub fn run_checks(source: &LabSource, state: &LabState) -> Vec<CheckResult> {
    source
        .spec
        .check
        .iter()
        .map(|c| {
            let c = c.get_ref();
            let mut result = match c.kind() {
                CheckKind::Probe { target, expect } => probe_check(&state.dir, target, expect),
                CheckKind::Command { argv, fail } => command_check(source, state, argv, fail),
                CheckKind::Answer { journal_port } => answer_check(state, journal_port),
            };
            result.name = c.name.clone();
            result.required = c.required;
            result
        })
        .collect()
}

fn blank(kind: &'static str) -> CheckResult {
    CheckResult {
        name: String::new(),
        kind,
        required: true,
        passed: false,
        problems: Vec::new(),
        verdicts: BTreeMap::new(),
        report: None,
    }
}

fn probe_check(dir: &Path, target: &str, expect: &str) -> CheckResult {
    let mut r = blank("probe");
    let target = match Target::load(&dir.join(target)) {
        Ok(t) => t,
        Err(e) => {
            r.problems
                .push(format!("the probe target cannot be used: {e}"));
            return r;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            r.problems.push(format!("cannot start the prober: {e}"));
            return r;
        }
    };
    let report = match runtime.block_on(mailrig_probe::probe(&target, &ProbeOptions::default())) {
        Ok(report) => report,
        Err(e) => {
            r.problems.push(format!("the probe could not run: {e}"));
            return r;
        }
    };
    let mut off: BTreeMap<Verdict, Vec<&mailrig_probe::MailboxResult>> = BTreeMap::new();
    for m in &report.mailboxes {
        r.verdicts
            .insert(m.address.clone(), m.verdict.as_str().to_string());
        if m.verdict.as_str() != expect {
            off.entry(m.verdict).or_default().push(m);
        }
    }
    for (verdict, boxes) in &off {
        r.problems.push(verdict_problem(*verdict, boxes));
    }
    r.passed = off.is_empty() && !report.mailboxes.is_empty();
    r.report = Some(report);
    r
}

/// One sentence per verdict: how many, which, and what the users see. Never how to fix it.
fn verdict_problem(verdict: Verdict, boxes: &[&mailrig_probe::MailboxResult]) -> String {
    let n = boxes.len();
    let what = match verdict {
        Verdict::Missing => "accepted with 250 and never arrived in the mailbox read",
        Verdict::Rejected => "refused at sending",
        Verdict::Deferred => "put off at sending (4xx or a broken connection)",
        Verdict::Misrouted => "arrived in someone else's mailbox",
        Verdict::Misfiled => "arrived, but in another folder than the inbox",
        Verdict::StuckUpstream => "reached the provider and was never collected",
        Verdict::DeliveredUnauthenticated => "arrived, but failed sender authentication",
        Verdict::Duplicated => "arrived more than once",
        Verdict::Altered => "arrived changed",
        Verdict::Unreadable => "could not be read (connect, TLS or login failed)",
        Verdict::Delivered => "arrived, which this check does not expect",
    };
    // The refusing reply is shown once, with the first mailbox: the others usually repeat it.
    // Mailboxes shown with a detail come first; the plain ones follow, runs written as ranges
    // (`user03..user25@patente.test`, which `lab answer` takes as it is).
    let mut names: Vec<String> = Vec::new();
    let mut plain: Vec<&str> = Vec::new();
    for (i, m) in boxes.iter().enumerate() {
        let detailed = match verdict {
            Verdict::Rejected | Verdict::Deferred | Verdict::Unreadable if i > 0 => None,
            Verdict::Unreadable if !m.reason.is_empty() => {
                Some(format!("{} ({})", m.address, m.reason))
            }
            Verdict::Misfiled if !m.folders.is_empty() => {
                Some(format!("{} (in {})", m.address, m.folders.join(", ")))
            }
            Verdict::Misrouted if !m.found_in.is_empty() => Some(format!(
                "{} (found in {})",
                m.address,
                m.found_in.join(", ")
            )),
            Verdict::Rejected | Verdict::Deferred => m
                .smtp
                .as_ref()
                .map(|reply| format!("{} ({} {})", m.address, reply.code, reply.text)),
            _ => None,
        };
        match detailed {
            Some(d) => names.push(d),
            None => plain.push(&m.address),
        }
    }
    names.extend(mailrig_core::range::compress(&plain));
    format!(
        "{n} mailbox{} {verdict}: {what}: {}",
        if n == 1 { "" } else { "es" },
        names.join(", ")
    )
}

fn command_check(
    source: &LabSource,
    state: &LabState,
    argv: &[String],
    fail: Option<&str>,
) -> CheckResult {
    let mut r = blank("command");
    let vars = super::engine::vars(state);
    let argv: Result<Vec<String>, _> = argv
        .iter()
        .map(|a| source.render_str("check command", a, &vars))
        .collect();
    let argv = match argv {
        Ok(a) if !a.is_empty() => a,
        Ok(_) => {
            r.problems.push("the check's command is empty".into());
            return r;
        }
        Err(e) => {
            r.problems.push(e.to_string());
            return r;
        }
    };
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(&state.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            r.problems.push(format!("cannot run {}: {e}", argv[0]));
            return r;
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    match status {
        Some(s) if s.success() => r.passed = true,
        Some(s) => r.problems.push(format!(
            "{} ({})",
            fail.unwrap_or("the command failed"),
            s.code()
                .map_or("killed by a signal".into(), |c| format!("exit {c}"))
        )),
        None => r.problems.push(format!(
            "{} (no answer in 30 s)",
            fail.unwrap_or("the command hung")
        )),
    }
    r
}

fn answer_check(state: &LabState, port_name: &str) -> CheckResult {
    let mut r = blank("answer");
    let Some(answer) = &state.answer else {
        r.problems.push(
            "no answer yet: `mailrig lab answer [--delayed] --stage STAGE MAILBOX...` (ranges like user03..user09@patente.test work)"
                .into(),
        );
        return r;
    };
    let Some(port) = state.ports.get(port_name) else {
        r.problems
            .push(format!("the lab has no port '{port_name}'"));
        return r;
    };
    let truth = match journal::read(*port) {
        Ok(t) => t,
        Err(e) => {
            r.problems.push(format!("cannot read the journal: {e:#}"));
            return r;
        }
    };
    let named: BTreeSet<String> = answer
        .mailboxes
        .iter()
        .map(|a| a.to_ascii_lowercase())
        .collect();
    r.problems = journal::judge(&truth, answer.outcome, &named, answer.stage.as_deref());
    r.passed = r.problems.is_empty();
    r
}

/// The check document for `state`, with the score as it now stands.
pub fn report(
    source: &LabSource,
    state: &LabState,
    checks: Vec<CheckResult>,
    started: Instant,
) -> CheckReport {
    let solved = checks.iter().filter(|c| c.required).all(|c| c.passed);
    let probe = checks.iter().find_map(|c| c.report.clone());
    CheckReport {
        schema: SCHEMA,
        lab: state.lab.clone(),
        title: source.spec.title.clone(),
        kind: source.spec.kind.as_str(),
        dir: state.dir.display().to_string(),
        solved,
        checks,
        probe,
        score: score(source, state),
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

/// Points minus the hints revealed; the recorded score once solved.
pub fn score(source: &LabSource, state: &LabState) -> Score {
    let hint_cost: u32 = source
        .spec
        .hint
        .iter()
        .take(state.hints_used)
        .map(|h| h.cost)
        .sum();
    let seconds = state
        .solved
        .as_ref()
        .map_or_else(|| seconds_since(&state.started_at), |s| s.seconds);
    Score {
        points: source.spec.points,
        hints_used: state.hints_used,
        hint_cost,
        score: state.solved.as_ref().map_or(
            if state.revealed {
                0
            } else {
                source.spec.points.saturating_sub(hint_cost)
            },
            |s| s.score,
        ),
        solved: state.solved.is_some(),
        solved_by: state.solved.as_ref().map(|s| s.by.clone()),
        started_at: state.started_at.clone(),
        solved_at: state.solved.as_ref().map(|s| s.at.clone()),
        seconds,
    }
}

pub fn seconds_since(rfc3339: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            u64::try_from((chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds())
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// The table form: the probe's table, then each check and its problems, then the score.
pub fn to_table(r: &CheckReport, colour: bool) -> String {
    let mut out = String::new();
    if let Some(p) = &r.probe {
        out.push_str(&p.to_table(colour));
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str(&format!("lab {}: {}\n", r.lab, r.title));
    for c in &r.checks {
        let mark = match (c.passed, c.required) {
            (true, _) => "PASS",
            (false, true) => "FAIL",
            (false, false) => "info",
        };
        out.push_str(&format!("  {mark}  {}\n", c.name));
        if c.required || !c.passed {
            for p in &c.problems {
                out.push_str(&format!("        {p}\n"));
            }
        }
    }
    let s = &r.score;
    out.push_str(&format!(
        "{}: score {} of {} ({} hint{} used, -{}), {} since the start\n",
        if r.solved { "SOLVED" } else { "not solved yet" },
        s.score,
        s.points,
        s.hints_used,
        if s.hints_used == 1 { "" } else { "s" },
        s.hint_cost,
        human_duration(s.seconds)
    ));
    out
}

pub fn human_duration(seconds: u64) -> String {
    if seconds >= 3600 {
        format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60)
    } else if seconds >= 60 {
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{seconds}s")
    }
}
