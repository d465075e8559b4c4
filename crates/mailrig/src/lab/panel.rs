//! The lab's panel: what a trainer projects — title, task, hints revealed, the last check and the
//! score — written as JSON to `DIR/.mailrig-lab/panel.json` after every command that changes one
//! of them. `mailrig serve --lab DIR` serves it as `GET /api/v1/lab` and shows it on its page;
//! `mailrig lab status --format json` prints it.

use std::path::Path;

use serde::Serialize;

use super::check::{CheckReport, Score};
use super::source::LabSource;
use super::state::{LabState, STATE_DIR};

/// The panel's place in a lab directory: the server's, which reads it.
use mailrig_server::http::lab::PANEL_FILE;

pub const SCHEMA: &str = "mailrig-lab-panel/1";

#[derive(Debug, Clone, Serialize)]
pub struct Panel {
    pub schema: &'static str,
    pub lab: String,
    pub title: String,
    pub kind: &'static str,
    pub level: &'static str,
    pub task: String,
    pub dir: String,
    pub running: bool,
    pub solved: bool,
    pub hints: Hints,
    pub score: Score,
    /// The last `lab check` (none since the start or the last reset).
    pub last_check: Option<serde_json::Value>,
    /// RFC 3339: when this panel was written.
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Hints {
    pub used: usize,
    pub total: usize,
    pub revealed: Vec<String>,
}

/// What the panel's last check becomes.
pub enum Last<'a> {
    /// The one already in the panel.
    Keep,
    /// None (a reset).
    Clear,
    /// This check's outcome.
    Set(&'a CheckReport),
}

/// The last-check part of the panel: each check's name, outcome, problems and a verdict summary.
fn last_check(r: &CheckReport) -> serde_json::Value {
    let checks: Vec<serde_json::Value> = r
        .checks
        .iter()
        .map(|c| {
            let mut counts = std::collections::BTreeMap::<&str, usize>::new();
            for v in c.verdicts.values() {
                *counts.entry(v.as_str()).or_default() += 1;
            }
            let summary = (!counts.is_empty()).then(|| {
                counts
                    .iter()
                    .map(|(v, n)| format!("{n} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            serde_json::json!({
                "name": c.name, "kind": c.kind, "required": c.required, "passed": c.passed,
                "problems": c.problems, "summary": summary,
            })
        })
        .collect();
    serde_json::json!({
        "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "solved": r.solved,
        "duration_ms": r.duration_ms,
        "checks": checks,
    })
}

pub fn path(dir: &Path) -> std::path::PathBuf {
    dir.join(PANEL_FILE)
}

/// The panel of the lab as it stands.
pub fn build(source: &LabSource, st: &LabState, last: Last<'_>) -> Panel {
    let last_check = match last {
        Last::Clear => None,
        Last::Set(r) => Some(last_check(r)),
        Last::Keep => std::fs::read_to_string(path(&st.dir))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("last_check").cloned())
            .filter(|v| !v.is_null()),
    };
    let score = super::check::score(source, st);
    Panel {
        schema: SCHEMA,
        lab: st.lab.clone(),
        title: source.spec.title.clone(),
        kind: source.spec.kind.as_str(),
        level: source.spec.level.as_str(),
        task: source.spec.task.trim().to_string(),
        dir: st.dir.display().to_string(),
        running: st.running,
        solved: score.solved,
        hints: Hints {
            used: st.hints_used,
            total: source.spec.hint.len(),
            revealed: source
                .spec
                .hint
                .iter()
                .take(st.hints_used)
                .map(|h| h.text.clone())
                .collect(),
        },
        score,
        last_check,
        updated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}

/// Writes the panel atomically (a temporary file renamed: the server never reads half of it).
pub fn write(source: &LabSource, st: &LabState, last: Last<'_>) -> anyhow::Result<Panel> {
    let panel = build(source, st, last);
    let path = path(&st.dir);
    let tmp = path.with_extension("json.tmp");
    std::fs::create_dir_all(st.dir.join(STATE_DIR))?;
    std::fs::write(&tmp, serde_json::to_string_pretty(&panel)? + "\n")?;
    std::fs::rename(&tmp, &path)?;
    Ok(panel)
}
