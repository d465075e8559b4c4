//! A running lab's state, kept in its directory (`DIR/.mailrig-lab/state.json`): which lab, its
//! ports, the processes started, hints revealed, the answer given, the score.
//!
//! Every `mailrig lab` command after `start` reads it, from the current directory upwards or from
//! `--dir`, so a trainee's shell inside the lab directory needs no flags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const STATE_DIR: &str = ".mailrig-lab";
const STATE_FILE: &str = "state.json";
pub const SCHEMA: &str = "mailrig-lab-state/1";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabState {
    pub schema: String,
    /// The lab's name.
    pub lab: String,
    /// `builtin` or the lab folder's path.
    pub source: String,
    /// The lab directory, absolute.
    pub dir: PathBuf,
    /// The short directory for sockets, removed by `stop`.
    pub run_dir: PathBuf,
    pub port_base: u16,
    pub ports: BTreeMap<String, u16>,
    /// RFC 3339.
    pub started_at: String,
    pub hints_used: usize,
    /// What `lab stop` left: false once stopped.
    pub running: bool,
    /// The reference fix or answer was shown (`lab solve`): the score is 0 from then on.
    #[serde(default)]
    pub revealed: bool,
    pub services: Vec<ServiceState>,
    pub answer: Option<Answer>,
    pub solved: Option<Solved>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceState {
    pub name: String,
    /// Also the process group id: every service leads its own group.
    pub pid: u32,
    /// The process's start time (`/proc/PID/stat` field 22), so a reused pid is not taken for it.
    pub start_ticks: u64,
    /// The daemon's pid file, when it leaves the process group (rendered `pidfile`).
    #[serde(default)]
    pub pidfile: Option<std::path::PathBuf>,
    /// Hashes of its `restart_when_changed` files when it started.
    pub watched: BTreeMap<String, String>,
}

/// A find-it lab's answer, as given with `lab answer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The mailboxes named (state files of earlier versions call them `lost`).
    #[serde(alias = "lost")]
    pub mailboxes: Vec<String>,
    /// What the answer says happens to their mail: lost (the default), or delayed (`--delayed`).
    #[serde(default)]
    pub outcome: super::journal::Outcome,
    pub stage: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Solved {
    /// RFC 3339.
    pub at: String,
    /// `trainee` (a check passed) or `reference` (`lab solve`).
    pub by: String,
    pub seconds: u64,
    pub score: u32,
}

impl LabState {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(STATE_DIR).join(STATE_FILE)
    }

    pub fn load(dir: &Path) -> anyhow::Result<LabState> {
        let path = Self::path(dir);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read the lab state: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: not a lab state file: {e}", path.display()))
    }

    /// Writes atomically (a temporary file renamed), so a crash never leaves half a state.
    pub fn save(&self) -> anyhow::Result<()> {
        let path = Self::path(&self.dir);
        let tmp = path.with_extension("json.tmp");
        std::fs::create_dir_all(self.dir.join(STATE_DIR))?;
        std::fs::write(&tmp, serde_json::to_string_pretty(self)? + "\n")?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }
}

/// The lab directory: `--dir`, else the nearest directory from the current one upwards that holds a
/// lab state.
pub fn locate(dir: Option<&Path>) -> Option<PathBuf> {
    if let Some(d) = dir {
        return LabState::path(d).is_file().then(|| absolute(d));
    }
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors()
        .find(|d| LabState::path(d).is_file())
        .map(Path::to_path_buf)
}

pub fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|c| c.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    })
}
