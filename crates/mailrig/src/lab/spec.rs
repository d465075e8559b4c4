//! The `lab.toml` format: what a lab is, as data, and the checks that it is well formed.
//!
//! A lab folder holds `lab.toml`, `files/` (the templates of its broken start, copied into the lab
//! directory with `{{...}}` placeholders filled in) and, for fix-it labs, `fix/` (the reference fix:
//! files laid over the trainee's copy). Every mistake in `lab.toml` is reported as
//! `file:line:column: what is wrong` ([`LocatedError`]), so a trainer fixes a lab like a scenario.

use std::collections::BTreeMap;

use mailrig_core::located::LocatedError;
use serde::Deserialize;
use toml::Spanned;

/// A parsed, checked `lab.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabSpec {
    /// One line: what the users see.
    pub title: String,
    /// `fix-it` (real software, the trainee edits files) or `find-it` (the fake world, the trainee
    /// answers which mailboxes lose mail and where).
    pub kind: LabKind,
    /// `beginner`, `intermediate` or `advanced`.
    pub level: Level,
    /// What the lab trains, for `lab list`.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Points for solving, before hints are subtracted.
    #[serde(default = "default_points")]
    pub points: u32,
    /// What happened, told as the users tell it. Never names the fix.
    pub story: String,
    /// What the trainee must achieve.
    pub task: String,
    /// Files (relative to the lab directory) the trainee may edit.
    #[serde(default)]
    pub editable: Vec<Spanned<String>>,
    /// For the instructor: what is broken (printed by `lab solve`, never by `start` or `check`).
    #[serde(default)]
    pub cause: String,
    /// Commands run (in order) after the files are written and before the services start.
    #[serde(default)]
    pub setup: Vec<Vec<String>>,
    /// Commands that help, printed by `lab start` and `lab status`.
    #[serde(default)]
    pub helpful: Vec<String>,
    /// Port name → offset from the port base.
    #[serde(default)]
    pub ports: BTreeMap<String, Spanned<u16>>,
    #[serde(default)]
    pub hint: Vec<Hint>,
    #[serde(default)]
    pub service: Vec<Spanned<ServiceSpec>>,
    #[serde(default)]
    pub check: Vec<Spanned<CheckSpec>>,
    /// The reference answer of a find-it lab (`lab solve` gives it).
    pub solution: Option<Spanned<Solution>>,
}

fn default_points() -> u32 {
    100
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabKind {
    FixIt,
    FindIt,
}

impl LabKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LabKind::FixIt => "fix-it",
            LabKind::FindIt => "find-it",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    Beginner,
    Intermediate,
    Advanced,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Beginner => "beginner",
            Level::Intermediate => "intermediate",
            Level::Advanced => "advanced",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hint {
    pub text: String,
    /// Points subtracted when the hint is revealed.
    pub cost: u32,
}

/// One process of the lab's environment, started in its own process group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub name: String,
    /// The command and its arguments (placeholders allowed).
    pub run: Vec<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Ports (names from `[ports]`) that accept connections once the service is ready.
    #[serde(default)]
    pub ready: Vec<Spanned<String>>,
    /// A file where the service writes the pid of a daemon that leaves its process group
    /// (Postfix's master calls setsid): that daemon's group is stopped too.
    pub pidfile: Option<String>,
    /// Files (relative to the lab directory) whose change makes `lab check` restart this service.
    #[serde(default)]
    pub restart_when_changed: Vec<String>,
}

/// One check; exactly one of `probe`, `command` and `answer` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    pub name: String,
    /// A probe target file (relative to the lab directory): every mailbox must get `expect`.
    pub probe: Option<String>,
    /// The verdict every mailbox must get (default `delivered`).
    pub expect: Option<Spanned<String>>,
    /// What the untouched lab gives: verdict → mailboxes (ranges allowed). Tests and instructors
    /// rely on it; `lab validate` checks it names only the probe's mailboxes.
    #[serde(default)]
    pub broken: BTreeMap<String, Vec<String>>,
    /// A command that must exit 0.
    pub command: Option<Vec<String>>,
    /// For a failing command: what is wrong, without the fix.
    pub fail: Option<String>,
    /// The trainee's answer is judged against the journal of this port's `mailrig serve` HTTP API.
    pub answer: Option<AnswerCheck>,
    /// A check that is shown but does not decide (the traffic of a find-it lab).
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerCheck {
    /// The port name of the HTTP API whose `/api/v1/journal` is the truth.
    pub journal: Spanned<String>,
}

/// A find-it lab's reference answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Solution {
    /// The mailboxes that lose mail (ranges allowed).
    #[serde(default)]
    pub lost: Vec<String>,
    /// Or: the mailboxes that get their mail late (ranges allowed); exactly one of the two.
    #[serde(default)]
    pub delayed: Vec<String>,
    /// The stage where it is lost.
    pub stage: String,
}

impl Solution {
    /// What the reference answer says happens, and to which mailboxes (ranges unexpanded).
    pub fn answer(&self) -> (super::journal::Outcome, &[String]) {
        if self.delayed.is_empty() {
            (super::journal::Outcome::Lost, &self.lost)
        } else {
            (super::journal::Outcome::Delayed, &self.delayed)
        }
    }
}

/// The kinds of check, as `lab check` runs them.
pub enum CheckKind<'a> {
    Probe {
        target: &'a str,
        expect: &'a str,
    },
    Command {
        argv: &'a [String],
        fail: Option<&'a str>,
    },
    Answer {
        journal_port: &'a str,
    },
}

impl CheckSpec {
    pub fn kind(&self) -> CheckKind<'_> {
        if let Some(target) = &self.probe {
            CheckKind::Probe {
                target,
                expect: self.expect.as_ref().map_or("delivered", |e| e.get_ref()),
            }
        } else if let Some(argv) = &self.command {
            CheckKind::Command {
                argv,
                fail: self.fail.as_deref(),
            }
        } else {
            // `parse` guarantees one of the three.
            let answer = self.answer.as_ref().expect("checked by parse");
            CheckKind::Answer {
                journal_port: answer.journal.get_ref(),
            }
        }
    }
}

/// The verdict names a probe check may expect: the prober's own.
fn verdicts() -> Vec<&'static str> {
    mailrig_probe::Verdict::ALL
        .iter()
        .map(|v| v.as_str())
        .collect()
}

/// The journal stages a find-it answer may name.
pub const STAGES: [&str; 15] = [
    "connect",
    "greeting",
    "tls",
    "ehlo",
    "auth",
    "mail",
    "rcpt",
    "data",
    "end-of-data",
    "route",
    "deliver",
    "imap-login",
    "imap-select",
    "imap-fetch",
    "pop3",
];

/// Parses `lab.toml` text (named `file` in errors) and checks what serde cannot: port names used
/// exist, each check is of exactly one kind, verdicts and ranges are valid.
pub fn parse(file: &str, src: &str) -> Result<LabSpec, LocatedError> {
    let spec: LabSpec = toml::from_str(src).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        LocatedError::at(file, src, offset, e.message().trim_end())
    })?;
    let at = |offset: usize, msg: String| LocatedError::at(file, src, offset, msg);
    for (name, offset) in &spec.ports {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(at(
                offset.span().start,
                format!("port name '{name}' must be letters, digits and '_'"),
            ));
        }
    }
    let mut seen_offsets = BTreeMap::new();
    for (name, offset) in &spec.ports {
        if let Some(other) = seen_offsets.insert(*offset.get_ref(), name) {
            return Err(at(
                offset.span().start,
                format!(
                    "port '{name}' has the same offset {} as '{other}'",
                    offset.get_ref()
                ),
            ));
        }
    }
    for service in &spec.service {
        let s = service.get_ref();
        if s.run.is_empty() {
            return Err(at(
                service.span().start,
                format!("service '{}': `run` is empty", s.name),
            ));
        }
        for port in &s.ready {
            if !spec.ports.contains_key(port.get_ref()) {
                return Err(at(
                    port.span().start,
                    format!(
                        "service '{}': unknown port '{}' (the [ports] table names {})",
                        s.name,
                        port.get_ref(),
                        names(spec.ports.keys())
                    ),
                ));
            }
        }
    }
    for path in &spec.editable {
        if !is_relative_inside(path.get_ref()) {
            return Err(at(
                path.span().start,
                format!(
                    "editable file '{}' must be a relative path inside the lab directory",
                    path.get_ref()
                ),
            ));
        }
    }
    if spec.check.is_empty() {
        return Err(at(
            0,
            "a lab needs at least one [[check]] (how else is it solved?)".into(),
        ));
    }
    for check in &spec.check {
        let c = check.get_ref();
        let kinds = [c.probe.is_some(), c.command.is_some(), c.answer.is_some()]
            .iter()
            .filter(|k| **k)
            .count();
        if kinds != 1 {
            return Err(at(
                check.span().start,
                format!(
                    "check '{}' must have exactly one of `probe`, `command` and `answer` (it has {kinds})",
                    c.name
                ),
            ));
        }
        if let Some(expect) = &c.expect
            && !verdicts().contains(&expect.get_ref().as_str())
        {
            return Err(at(
                expect.span().start,
                format!(
                    "unknown verdict '{}' (one of {})",
                    expect.get_ref(),
                    verdicts().join(", ")
                ),
            ));
        }
        for (verdict, boxes) in &c.broken {
            if !verdicts().contains(&verdict.as_str()) {
                return Err(at(
                    check.span().start,
                    format!(
                        "check '{}': [check.broken] names unknown verdict '{verdict}' (one of {})",
                        c.name,
                        verdicts().join(", ")
                    ),
                ));
            }
            for b in boxes {
                mailrig_core::range::expand(b)
                    .map_err(|e| at(check.span().start, format!("check '{}': {e}", c.name)))?;
            }
        }
        if let Some(answer) = &c.answer
            && !spec.ports.contains_key(answer.journal.get_ref())
        {
            return Err(at(
                answer.journal.span().start,
                format!(
                    "unknown port '{}' (the [ports] table names {})",
                    answer.journal.get_ref(),
                    names(spec.ports.keys())
                ),
            ));
        }
        if c.answer.is_some() && spec.solution.is_none() {
            return Err(at(
                check.span().start,
                "an `answer` check needs a [solution] table (the reference answer)".into(),
            ));
        }
    }
    if let Some(solution) = &spec.solution {
        let s = solution.get_ref();
        if !STAGES.contains(&s.stage.as_str()) {
            return Err(at(
                solution.span().start,
                format!(
                    "[solution] stage '{}' is not a stage (one of {})",
                    s.stage,
                    STAGES.join(", ")
                ),
            ));
        }
        if s.lost.is_empty() == s.delayed.is_empty() {
            return Err(at(
                solution.span().start,
                "[solution] needs exactly one of `lost` and `delayed` (the mailboxes that lose mail, or that get it late)".into(),
            ));
        }
        for (key, boxes) in [("lost", &s.lost), ("delayed", &s.delayed)] {
            for b in boxes {
                mailrig_core::range::expand(b)
                    .map_err(|e| at(solution.span().start, format!("[solution] {key}: {e}")))?;
            }
        }
    }
    Ok(spec)
}

fn names<'a>(it: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<_> = it.map(|s| format!("'{s}'")).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// A relative path that stays inside its directory (no `..`, not absolute).
pub fn is_relative_inside(path: &str) -> bool {
    let p = std::path::Path::new(path);
    !path.is_empty()
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"title = "t"
kind = "find-it"
level = "beginner"
story = "s"
task = "t"

[ports]
http = 3

[[check]]
name = "answer"
answer = { journal = "http" }

[solution]
lost = ["user03..user05@patente.test"]
stage = "route"
"#;

    #[test]
    fn a_minimal_lab_parses() {
        let spec = parse("lab.toml", MINIMAL).unwrap();
        assert_eq!(spec.kind, LabKind::FindIt);
        assert_eq!(spec.points, 100);
        assert!(matches!(
            spec.check[0].get_ref().kind(),
            CheckKind::Answer {
                journal_port: "http"
            }
        ));
    }

    #[test]
    fn an_unknown_key_is_located() {
        let src = MINIMAL.replace("level = \"beginner\"", "level = \"beginner\"\nlevle = 1");
        let e = parse("lab.toml", &src).unwrap_err();
        assert_eq!(e.location(), Some((4, 1)), "{e}");
        assert!(e.to_string().contains("levle"), "{e}");
    }

    #[test]
    fn an_unknown_port_is_located_at_its_name() {
        let src = MINIMAL.replace("journal = \"http\"", "journal = \"htp\"");
        let e = parse("lab.toml", &src).unwrap_err();
        assert_eq!(e.location(), Some((12, 22)), "{e}");
        assert!(e.to_string().contains("unknown port 'htp'"), "{e}");
    }

    #[test]
    fn a_check_of_two_kinds_is_refused() {
        let src = MINIMAL.replace(
            "answer = { journal = \"http\" }",
            "answer = { journal = \"http\" }\ncommand = [\"true\"]",
        );
        let e = parse("lab.toml", &src).unwrap_err();
        assert!(e.to_string().contains("exactly one of"), "{e}");
        assert_eq!(e.location().map(|l| l.0), Some(10), "{e}"); // the [[check]] header
    }

    #[test]
    fn a_bad_verdict_and_a_bad_stage_are_refused() {
        let src = MINIMAL.replace(
            "answer = { journal = \"http\" }",
            "probe = \"p.toml\"\nexpect = \"arrived\"",
        );
        let e = parse("lab.toml", &src).unwrap_err();
        assert!(e.to_string().contains("unknown verdict 'arrived'"), "{e}");
        assert_eq!(e.location(), Some((13, 10)), "{e}");
        let src = MINIMAL.replace("stage = \"route\"", "stage = \"routing\"");
        let e = parse("lab.toml", &src).unwrap_err();
        assert!(e.to_string().contains("stage 'routing'"), "{e}");
    }

    #[test]
    fn paths_must_stay_inside() {
        assert!(is_relative_inside("firm/fetchmailrc"));
        assert!(!is_relative_inside("../etc/passwd"));
        assert!(!is_relative_inside("/etc/passwd"));
        assert!(!is_relative_inside(""));
    }
}
