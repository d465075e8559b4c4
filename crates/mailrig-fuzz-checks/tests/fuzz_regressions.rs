//! Replays, on stable and in `make test`, every input that ever made a fuzz
//! target fail (`fuzz/regressions/<target>/`) and the seed corpus
//! (`fuzz/corpus/<target>/`) through the same checks the fuzz targets run.
//!
//! An input of a bug that is known and being fixed elsewhere is listed in
//! [`KNOWN_BUGS`] and replayed by its own `#[ignore]`d test, so it is neither
//! hidden nor failing the build until the fix lands.

use std::path::{Path, PathBuf};

use mailrig_fuzz_checks::TARGETS;

/// (target, file name in fuzz/regressions/<target>/).
/// Empty now: the one bug listed here (with `bare_lf = "reject"`, a long line
/// ending in a bare LF got 550 5.6.2 or 500 5.5.2 depending on the read split;
/// `fuzz/regressions/smtp_data/*bare-lf-reject-long-line*`) is fixed, and its
/// inputs replay with all the others.
const KNOWN_BUGS: &[(&str, &str)] = &[];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep"))
        .collect();
    v.sort();
    v
}

fn check_of(target: &str) -> fn(&[u8]) {
    TARGETS
        .iter()
        .find(|(n, _)| *n == target)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("no fuzz target named {target}"))
}

/// Runs one input; the panic message if a check fails.
fn replay(target: &str, path: &Path) -> Result<(), String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let check = check_of(target);
    std::panic::catch_unwind(|| check(&data)).map_err(|e| {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        format!("{}: {msg}", path.display())
    })
}

fn replay_all(kind: &str) -> usize {
    let mut failures = Vec::new();
    let mut n = 0;
    for (target, _) in TARGETS {
        for path in inputs(kind, target) {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if KNOWN_BUGS.contains(&(*target, name)) {
                continue;
            }
            n += 1;
            if let Err(e) = replay(target, &path) {
                failures.push(e);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} input(s) fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
    n
}

#[test]
fn every_input_that_ever_failed_passes_now() {
    replay_all("regressions");
}

#[test]
fn the_seed_corpus_passes() {
    let n = replay_all("corpus");
    assert!(
        n >= TARGETS.len(),
        "only {n} corpus inputs found under {}",
        fuzz_dir().display()
    );
}

#[test]
fn every_folder_belongs_to_a_target() {
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                TARGETS.iter().any(|(t, _)| *t == name),
                "fuzz/{kind}/{name} names no fuzz target; its inputs would never be replayed"
            );
        }
    }
}
