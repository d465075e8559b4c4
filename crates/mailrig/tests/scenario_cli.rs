//! `mailrig scenario list | explain | check`, run as the built binary: the
//! catalog is listed and explained from any directory, every catalog file
//! checks clean, and broken files are refused with `file:line:col` naming
//! what is wrong and exit status 2.

use std::path::{Path, PathBuf};

mod support;

use support::{mailrig, stderr, stdout};

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/mailrig-core/catalog")
}

/// Every scenario file of the folder (name without .toml, path).
fn catalog_files() -> Vec<(String, PathBuf)> {
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(scenarios_dir())
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            let name = p.file_name()?.to_str()?.strip_suffix(".toml")?.to_string();
            Some((name, p))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn catalog_has_at_least_15_scenarios_besides_the_seed() {
    let names: Vec<String> = catalog_files().into_iter().map(|(n, _)| n).collect();
    let faulty = names
        .iter()
        .filter(|n| !["default", "kanzlei", "kanzlei-2-of-25"].contains(&n.as_str()))
        .count();
    assert!(faulty >= 15, "{names:?}");
}

#[test]
fn list_shows_every_catalog_file_with_its_first_sentence() {
    let o = mailrig(&["scenario", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let files = catalog_files();
    assert_eq!(out.lines().count(), files.len(), "{out}");
    for (name, _) in &files {
        let line = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} missing from list:\n{out}"));
        assert!(line.len() > name.len() + 10, "no description: {line}");
    }
    assert!(out.contains("misrouted-alias"), "{out}");
    assert!(
        out.contains("Mail for bernd@kanzlei.test lands in clara's mailbox."),
        "{out}"
    );
}

#[test]
fn list_dir_reads_a_folder_and_flags_invalid_files() {
    let o = mailrig(&[
        "scenario",
        "list",
        "--dir",
        scenarios_dir().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), catalog_files().len());

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("good.toml"),
        "# A good one.\n[[domain]]\nname = 'd.test'\nmailboxes = ['a']\npassword = 'p'\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "[[domain]]\nname = 'd.test'\nbogus = 1\n",
    )
    .unwrap();
    let o = mailrig(&["scenario", "list", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let out = stdout(&o);
    assert!(out.contains("good  A good one."), "{out}");
    assert!(out.contains("bad   INVALID:"), "{out}");
    assert!(out.contains("bad.toml:3:1: unknown field `bogus`"), "{out}");
}

#[test]
fn explain_prints_description_summary_and_rules_in_words() {
    let o = mailrig(&["scenario", "explain", "kanzlei-2-of-25"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for want in [
        "The seed incident: after a server migration",
        "How users see it: nothing bounces.",
        "2 domain(s), 28 mailbox(es), 1 fault rule(s)",
        "patente.test: user01, user02, ... user25",
        "patente-only-2-of-25 (drop)",
        "when an accepted recipient is routed to its mailbox",
        "recipient domain patente.test; except mailbox user01, user02",
        "answer 250 as usual and store nothing",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    // Every catalog entry explains itself: its full description and one block per rule.
    for (name, path) in catalog_files() {
        let o = mailrig(&["scenario", "explain", &name]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let out = stdout(&o);
        let text = std::fs::read_to_string(&path).unwrap();
        let last_comment = text
            .lines()
            .take_while(|l| l.starts_with('#'))
            .filter(|l| l.len() > 2)
            .last()
            .unwrap();
        assert!(out.contains(&last_comment[2..]), "{name}:\n{out}");
        let rules = text.matches("[[fault]]").count();
        assert_eq!(out.matches("     does:  ").count(), rules, "{name}:\n{out}");
    }
    // A file path works as well as a name, and the words follow the parameters.
    let path = scenarios_dir().join("greylisting.toml");
    let out = stdout(&mailrig(&["scenario", "explain", path.to_str().unwrap()]));
    assert!(
        out.contains("with 450 4.2.0 until 300 s have passed"),
        "{out}"
    );
    let out = stdout(&mailrig(&["scenario", "explain", "flaky-firewall"]));
    assert!(out.contains("with probability 0.3 (seed 20240611"), "{out}");
    assert!(
        out.contains("close the connection instead of replying"),
        "{out}"
    );
}

#[test]
fn explain_unknown_name_exits_2() {
    let o = mailrig(&["scenario", "explain", "no-such-scenario"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("'no-such-scenario' is neither a scenario file nor a catalog name")
    );
}

#[test]
fn check_every_catalog_file_ok_without_warnings() {
    for (name, path) in catalog_files() {
        let o = mailrig(&["scenario", "check", path.to_str().unwrap()]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let out = stdout(&o);
        assert!(out.ends_with("ok\n"), "{name}: {out}");
        assert!(!out.contains("warning"), "{name}: {out}");
    }
}

const WORLD: &str = "# broken on purpose\n[[domain]]\nname = \"kanzlei.test\"\nmailboxes = [\"anna\"]\npassword = \"secret\"\n\n[[fault]]\nname = \"x\"\n";

fn check_broken(rest: &str) -> (String, Option<i32>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, format!("{WORLD}{rest}")).unwrap();
    let o = mailrig(&["scenario", "check", path.to_str().unwrap()]);
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    let err = stderr(&o).replace(&path.display().to_string(), "broken.toml");
    (err, o.status.code())
}

#[test]
fn check_broken_files_names_line_column_and_culprit() {
    let (e, code) = check_broken("stage = \"rcpd\"\naction = \"reject\"\n");
    assert_eq!(code, Some(2));
    assert!(
        e.contains("broken.toml:9:9: unknown variant `rcpd`, expected one of `connect`"),
        "{e}"
    );

    let (e, code) = check_broken("stage = \"rcpt\"\naction = \"rejekt\"\n");
    assert_eq!(code, Some(2));
    assert!(
        e.contains("broken.toml:10:10: unknown variant `rejekt`, expected one of `reject`"),
        "{e}"
    );

    let (e, code) = check_broken("stage = \"rcpt\"\naction = \"reject\"\nrecipient = \"anna\"\n");
    assert_eq!(code, Some(2));
    assert!(
        e.contains("broken.toml:11:1: unknown field `recipient`, expected one of"),
        "{e}"
    );

    // An action at a stage where it cannot act names both.
    let (e, code) = check_broken("stage = \"greeting\"\naction = \"drop\"\n");
    assert_eq!(code, Some(2));
    assert!(
        e.contains("broken.toml:7:1: [[fault]] #1: action 'drop' cannot act at stage 'greeting'"),
        "{e}"
    );
}

#[test]
fn check_takes_a_catalog_name_and_strict_fails_on_warnings() {
    let o = mailrig(&["scenario", "check", "kanzlei-2-of-25"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).ends_with("ok\n"), "{}", stdout(&o));

    // A rule whose mailbox pattern matches nobody: valid, with a warning.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("warns.toml");
    std::fs::write(
        &file,
        "[[domain]]\nname = \"a.test\"\nmailboxes = [\"anna\"]\npassword = \"x\"\n[[fault]]\nname = \"never\"\nstage = \"rcpt\"\naction = \"reject\"\nmailbox = \"zed*\"\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let o = mailrig(&["scenario", "check", path]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("warning:"), "{}", stdout(&o));
    let o = mailrig(&["scenario", "check", "--strict", path]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).starts_with("mailrig: error: ") && stderr(&o).contains("--strict"),
        "{}",
        stderr(&o)
    );
    // --strict on a clean scenario passes.
    let o = mailrig(&["scenario", "check", "--strict", "kanzlei"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn every_error_has_one_prefix_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[[domain]]\nnam = \"x\"\n").unwrap();
    let missing = dir.path().join("missing.toml");
    let cases: Vec<Vec<String>> = vec![
        vec![
            "scenario".into(),
            "check".into(),
            broken.display().to_string(),
        ],
        vec![
            "scenario".into(),
            "check".into(),
            missing.display().to_string(),
        ],
        vec![
            "scenario".into(),
            "explain".into(),
            "no-such-scenario".into(),
        ],
        vec![
            "serve".into(),
            "--scenario".into(),
            broken.display().to_string(),
        ],
        vec![
            "probe".into(),
            "--target".into(),
            missing.display().to_string(),
        ],
        vec![
            "load".into(),
            "smtp://127.0.0.1:1".into(),
            "--to".into(),
            "a@b".into(),
            "--rate".into(),
            "-1".into(),
        ],
        vec!["load".into(), "merge".into(), missing.display().to_string()],
        // Usage errors found by the argument parser get the same prefix.
        vec![
            "load".into(),
            "--sessions".into(),
            "many".into(),
            "x:25".into(),
        ],
        vec!["frobnicate".into()],
        vec!["probe".into()],
    ];
    for args in cases {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = mailrig(&refs);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).starts_with("mailrig: error: "),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    let o = mailrig(&["--help"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("Exit codes:"), "{}", stdout(&o));
}
