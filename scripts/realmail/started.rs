//! Real Postfix, Dovecot and OpenDKIM for tests, started by the scripts in
//! this directory: one guard that runs a start script in a fresh state
//! directory, reads the `KEY=VALUE` lines it prints (ports, log paths,
//! mailboxes) and runs the matching stop script when dropped, also when a
//! test fails. Test files of several crates include it with
//! `#[path = ".../scripts/realmail/started.rs"] mod started;`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root, from a crate under `crates/`.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Running servers; stopped on drop.
pub struct Started {
    dir: tempfile::TempDir,
    env: HashMap<String, String>,
    /// The stop command: program and the arguments before the state directory.
    stop: (PathBuf, Vec<String>),
}

impl Started {
    /// `scripts/realmail/start.sh DIR ARGS`: Postfix delivering into
    /// Dovecot (`stop.sh DIR` stops them).
    pub fn realmail(prefix: &str, args: &[String]) -> Started {
        let start = repo_root().join("scripts/realmail/start.sh");
        let stop = (repo_root().join("scripts/realmail/stop.sh"), Vec::new());
        Started::run(prefix, (start, Vec::new()), args, stop)
    }

    /// `scripts/realmail/outbound.py start DIR ARGS`: an outbound Postfix
    /// with OpenDKIM (`outbound.py stop DIR` stops them).
    pub fn outbound(prefix: &str, args: &[String]) -> Started {
        let script = repo_root().join("scripts/realmail/outbound.py");
        let script = script.display().to_string();
        let python = PathBuf::from("/usr/bin/python3");
        let start = (python.clone(), vec![script.clone(), "start".into()]);
        let stop = (python, vec![script, "stop".into()]);
        Started::run(prefix, start, args, stop)
    }

    fn run(
        prefix: &str,
        (program, before): (PathBuf, Vec<String>),
        args: &[String],
        stop: (PathBuf, Vec<String>),
    ) -> Started {
        // Postfix and Dovecot drop root: the state directory's parents must
        // be searchable by their users; /tmp is.
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in("/tmp")
            .expect("temp dir");
        let out = Command::new(&program)
            .args(&before)
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {} {before:?}: {e}", program.display()));
        // From here on the guard exists, so a failed start is still stopped.
        let mut started = Started {
            dir,
            env: HashMap::new(),
            stop,
        };
        assert!(
            out.status.success(),
            "{} {before:?} failed ({}); run scripts/install-test-deps.sh if Postfix, Dovecot or OpenDKIM is missing\n{}\n{}",
            program.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((k, v)) = line.split_once('=') {
                started
                    .env
                    .insert(k.trim().to_string(), v.trim().to_string());
            }
        }
        started
    }

    /// A value the start script printed.
    pub fn get(&self, key: &str) -> &str {
        self.env
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("the start script printed no {key}"))
    }

    /// A log file the start script named (empty if it is not there yet).
    pub fn read(&self, key: &str) -> String {
        std::fs::read_to_string(self.get(key)).unwrap_or_default()
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = Command::new(&self.stop.0)
            .args(&self.stop.1)
            .arg(self.dir.path())
            .output();
    }
}
