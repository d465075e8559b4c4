//! `mailrig lab` end to end: every built-in lab started for real (the seed with Dovecot and fetchmail
//! from Debian, the find-it labs on `mailrig serve`), checked, solved, reset and stopped, with no
//! process and no listening port left behind; a different correct fix passes, a partial one names
//! what is still missing; two labs side by side; bad input. Needs root and
//! `scripts/install-test-deps.sh` (fetchmail, dovecot-imapd, dovecot-lmtpd).

mod support;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::pty::Pty;

const BIN: &str = env!("CARGO_BIN_EXE_mailrig");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn mailrig(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run mailrig")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A lab started in a fresh directory; stopped when dropped, even when the test fails.
struct Lab {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Lab {
    fn start(name: &str, port_base: u16) -> Lab {
        let tmp = tempfile::tempdir().unwrap();
        // The lab's servers drop root: the directory's parents must be searchable.
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let dir = tmp.path().join("lab");
        let out = mailrig(&[
            "lab",
            "start",
            name,
            "--dir",
            dir.to_str().unwrap(),
            "--port-base",
            &port_base.to_string(),
        ]);
        assert!(
            out.status.success(),
            "lab start {name} failed (install the test dependencies: scripts/install-test-deps.sh):\n{}",
            text(&out)
        );
        Lab { _tmp: tmp, dir }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("run mailrig")
    }

    /// `lab check --format json`: exit code and document.
    fn check(&self) -> (i32, serde_json::Value) {
        let out = self.run(&["lab", "check", "--format", "json"]);
        let code = out.status.code().unwrap_or(-1);
        let doc = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("check printed no JSON ({e}):\n{}", text(&out)));
        (code, doc)
    }

    fn state(&self) -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(self.dir.join(".mailrig-lab/state.json")).unwrap(),
        )
        .unwrap()
    }

    /// Stops the lab and proves nothing is left: no process of its groups, none mentioning its
    /// directory, every port bindable.
    fn stop_and_prove_empty(&self) {
        let st = self.state();
        let mut pgids: Vec<u64> = st["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["pid"].as_u64().unwrap())
            .collect();
        // Daemons that leave their group (Postfix's master) lead a group of their own.
        for s in st["services"].as_array().unwrap() {
            if let Some(pid) = s["pidfile"]
                .as_str()
                .and_then(|p| std::fs::read_to_string(p).ok())
                .and_then(|p| p.trim().parse().ok())
            {
                pgids.push(pid);
            }
        }
        assert!(!pgids.is_empty(), "no services recorded: {st}");
        let out = self.run(&["lab", "stop"]);
        assert!(out.status.success(), "{}", text(&out));
        let left = processes_of(&pgids, &self.dir);
        assert!(left.is_empty(), "processes left after lab stop: {left:?}");
        for (name, port) in st["ports"].as_object().unwrap() {
            let port = u16::try_from(port.as_u64().unwrap()).unwrap();
            assert!(
                TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok(),
                "port {name} ({port}) still taken after lab stop"
            );
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.run(&["lab", "stop"]);
    }
}

/// Live processes (not zombies) in one of the groups, or whose command line names `dir`.
fn processes_of(pgids: &[u64], dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u64>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        if f.first() == Some(&"Z") {
            continue;
        }
        let pgrp: u64 = f.get(2).and_then(|p| p.parse().ok()).unwrap_or(0);
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        if pgids.contains(&pgrp) || cmdline.contains(&dir) {
            found.push(format!("{pid} (group {pgrp}): {cmdline}"));
        }
    }
    found
}

/// The `[check.broken]` verdicts a lab.toml promises for its untouched start, ranges expanded.
fn broken_verdicts(lab: &str) -> BTreeMap<String, String> {
    let spec: toml::Value = toml::from_str(
        &std::fs::read_to_string(repo().join("labs").join(lab).join("lab.toml")).unwrap(),
    )
    .unwrap();
    let mut out = BTreeMap::new();
    for check in spec["check"].as_array().unwrap() {
        let Some(broken) = check.get("broken").and_then(|b| b.as_table()) else {
            continue;
        };
        for (verdict, boxes) in broken {
            for b in boxes.as_array().unwrap() {
                for addr in mailrig_core::range::expand(b.as_str().unwrap()).unwrap() {
                    out.insert(addr, verdict.clone());
                }
            }
        }
    }
    assert!(!out.is_empty(), "{lab}: no [check.broken] verdicts");
    out
}

fn verdicts(doc: &serde_json::Value) -> BTreeMap<String, String> {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "probe")
        .flat_map(|c| c["verdicts"].as_object().cloned().unwrap_or_default())
        .map(|(k, v)| (k, v.as_str().unwrap().to_string()))
        .collect()
}

fn problems(doc: &serde_json::Value) -> String {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["problems"].as_array().cloned().unwrap_or_default())
        .map(|p| p.as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The whole life of a lab: broken start as promised, solve, pass, reset, fail again, stop clean.
fn full_cycle(name: &str, port_base: u16) {
    let lab = Lab::start(name, port_base);
    let (code, doc) = lab.check();
    assert_eq!(code, 1, "{name}: the untouched lab must fail:\n{doc:#}");
    assert_eq!(doc["solved"], false);
    assert_eq!(verdicts(&doc), broken_verdicts(name), "{name}: {doc:#}");

    let out = lab.run(&["lab", "solve"]);
    assert!(out.status.success(), "{}", text(&out));
    let (code, doc) = lab.check();
    assert_eq!(code, 0, "{name}: the reference fix must pass:\n{doc:#}");
    assert_eq!(doc["score"]["solved_by"], "reference");
    assert_eq!(doc["score"]["score"], 0, "a revealed lab scores 0");

    let out = lab.run(&["lab", "reset"]);
    assert!(out.status.success(), "{}", text(&out));
    let (code, doc) = lab.check();
    assert_eq!(
        code, 1,
        "{name}: after reset the lab must fail again:\n{doc:#}"
    );
    assert_eq!(verdicts(&doc), broken_verdicts(name));

    lab.stop_and_prove_empty();
    let out = lab.run(&["lab", "check"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "check of a stopped lab:\n{}",
        text(&out)
    );
}

#[test]
fn the_seed_lab_fails_until_fixed_passes_with_the_reference_fix_and_stops_clean() {
    full_cycle("kanzlei-collector", 23000);
}

#[test]
fn the_seed_on_the_fake_world_is_judged_against_the_journal() {
    full_cycle("kanzlei-fake-world", 23100);
    let lab = Lab::start("kanzlei-fake-world", 23100);
    let (_, doc) = lab.check();
    assert!(problems(&doc).contains("no answer yet"), "{doc:#}");
    // A wrong answer is counted, never corrected by name.
    let out = lab.run(&[
        "lab",
        "answer",
        "--stage",
        "deliver",
        "user03..user22@patente.test",
        "anna@kanzlei.test",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let (code, doc) = lab.check();
    assert_eq!(code, 1);
    let p = problems(&doc);
    assert!(
        p.contains(
            "of the 21 mailboxes you named, 20 lose mail and 1 does not; 3 more mailboxes lose mail"
        ),
        "{p}"
    );
    assert!(p.contains("not lost at stage 'deliver'"), "{p}");
    // The right answer, typed differently (one range, one list), passes and scores full points.
    let out = lab.run(&[
        "lab",
        "answer",
        "--stage",
        "route",
        "user{03..24}@patente.test",
        "USER25@patente.test",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let (code, doc) = lab.check();
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["score"]["solved_by"], "trainee");
    assert_eq!(doc["score"]["score"], 100);
}

#[test]
fn the_postfix_transport_map_lab_cycles() {
    full_cycle("transport-discard", 23900);
}

#[test]
fn the_alias_typo_lab_cycles() {
    full_cycle("alias-typo", 24300);
}

#[test]
fn the_unimported_mailbox_table_lab_cycles() {
    full_cycle("mailbox-table-missing", 24400);
}

#[test]
fn the_quota_full_lab_cycles() {
    full_cycle("quota-full", 24600);
}

#[test]
fn the_wrong_imaps_certificate_lab_cycles() {
    full_cycle("imaps-wrong-certificate", 24800);
}

#[test]
fn the_sieve_junk_lab_cycles_and_deleting_the_filter_is_not_a_fix() {
    full_cycle("sieve-junk", 24900);
    let lab = Lab::start("sieve-junk", 24900);
    // Throwing the whole filter away brings the mail back, but newsletters too: the command
    // check (sieve-test) says so.
    std::fs::write(lab.dir.join("sieve/user07.sieve"), "keep;\n").unwrap();
    let (code, doc) = lab.check();
    assert_eq!(code, 1, "{doc:#}");
    assert!(verdicts(&doc).values().all(|v| v == "delivered"), "{doc:#}");
    let p = problems(&doc);
    assert!(
        p.contains(
            "a newsletter (a message with a List-Id header) for user07 would not be filed into Junk"
        ),
        "{p}"
    );
    lab.stop_and_prove_empty();
}

#[test]
fn the_submission_lab_cycles_and_dropping_the_restriction_is_not_a_fix() {
    full_cycle("submission-login-mismatch", 25400);
    let lab = Lab::start("submission-login-mismatch", 25400);
    let master = lab.dir.join("postfix/master.cf");
    let text = std::fs::read_to_string(&master).unwrap();
    let open = text.replace(
        "  -o smtpd_sender_restrictions=reject_sender_login_mismatch\n",
        "",
    );
    assert_ne!(open, text);
    std::fs::write(&master, open).unwrap();
    let (code, doc) = lab.check();
    assert_eq!(code, 1, "{doc:#}");
    assert!(verdicts(&doc).values().all(|v| v == "delivered"), "{doc:#}");
    assert!(
        problems(&doc).contains("anyone can now send as anyone"),
        "{doc:#}"
    );
    lab.stop_and_prove_empty();
}

#[test]
fn the_backup_mx_blackhole_lab_cycles() {
    full_cycle("backup-mx-blackhole", 23200);
}

#[test]
fn the_greylisting_lab_cycles_and_its_answer_is_judged_as_delayed_mail() {
    full_cycle("greylisting-deadline", 26100);
    let lab = Lab::start("greylisting-deadline", 26100);
    let (code, doc) = lab.check();
    assert_eq!(code, 1);
    assert!(problems(&doc).contains("no answer yet"), "{doc:#}");
    // The probe's 28 mailboxes are named short: runs as ranges `lab answer` takes as they are.
    assert!(
        problems(&doc)
            .contains("bernd@kanzlei.test, clara@kanzlei.test, user01..user25@patente.test"),
        "{doc:#}"
    );
    // Put-off mail answered as lost mail: the judge says the journal shows no loss, only delay.
    let out = lab.run(&["lab", "answer", "--stage", "rcpt", "bernd@kanzlei.test"]);
    assert!(out.status.success(), "{}", text(&out));
    let (code, doc) = lab.check();
    assert_eq!(code, 1);
    let p = problems(&doc);
    assert!(p.contains("the journal shows no lost mail"), "{p}");
    assert!(p.contains("--delayed"), "{p}");
    // Delayed, but too few mailboxes and the wrong stage: counted, never named.
    let out = lab.run(&[
        "lab",
        "answer",
        "--delayed",
        "--stage",
        "data",
        "anna@kanzlei.test",
        "bernd@kanzlei.test",
        "clara@kanzlei.test",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("3 mailboxes getting mail late at stage data"),
        "{}",
        text(&out)
    );
    let (code, doc) = lab.check();
    assert_eq!(code, 1);
    let p = problems(&doc);
    assert!(
        p.contains(
            "of the 3 mailboxes you named, 3 get mail late; 25 more mailboxes get mail late"
        ),
        "{p}"
    );
    assert!(p.contains("the mail is not put off at stage 'data'"), "{p}");
    let answer_problems = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "answer")
        .map(|c| c["problems"].to_string())
        .unwrap();
    assert!(
        !answer_problems.contains("user07"),
        "the judge must not name mailboxes: {answer_problems}"
    );
    // The right answer passes with full points.
    let out = lab.run(&[
        "lab",
        "answer",
        "--delayed",
        "--stage",
        "rcpt",
        "user{01..25}@patente.test",
        "anna@kanzlei.test",
        "Bernd@kanzlei.test",
        "clara@kanzlei.test",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let (code, doc) = lab.check();
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["score"]["solved_by"], "trainee");
    assert_eq!(doc["score"]["score"], 150);
    lab.stop_and_prove_empty();
}

#[test]
fn a_lab_command_piped_into_head_ends_quietly() {
    // A pipe whose reader is gone, as after `| head -1` exits: every write fails with EPIPE.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(BIN)
        .args(["lab", "list"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(141), "ends as SIGPIPE would: {err}");
}

#[test]
fn two_seed_labs_side_by_side_a_different_fix_passes_and_a_partial_fix_names_the_missing() {
    let a = Lab::start("kanzlei-collector", 23300);
    let b = Lab::start("kanzlei-collector", 23400);
    let rc_a = a.dir.join("firm/fetchmailrc");
    let rc_b = b.dir.join("firm/fetchmailrc");
    let pop3 = |lab: &Lab| lab.state()["ports"]["provider_pop3"].as_u64().unwrap();
    let lmtp = |lab: &Lab| lab.state()["ports"]["firm_lmtp"].as_u64().unwrap();

    // A: written by hand, one poll entry per account, patente.test first and in reverse order,
    // another layout than the reference (one `poll` per account, `password` before `is`).
    let mut users: Vec<String> = (1..=25)
        .rev()
        .map(|i| format!("user{i:02}@patente.test"))
        .collect();
    users.extend(["clara", "bernd", "anna"].map(|u| format!("{u}@kanzlei.test")));
    let mut rc = String::from("set no bouncemail\n");
    for u in &users {
        rc.push_str(&format!(
            "poll 127.0.0.1 service {} proto POP3\n    user '{u}' password 'secret' is '{u}' here\n    lmtp smtphost 127.0.0.1/{} sslproto ''\n",
            pop3(&a),
            lmtp(&a)
        ));
    }
    std::fs::write(&rc_a, rc).unwrap();

    // B: 20 of the 23 accounts added; user23, user24 and user25 forgotten.
    let mut text_b = std::fs::read_to_string(&rc_b).unwrap();
    let template = text_b
        .lines()
        .find(|l| l.contains("user01@patente.test"))
        .unwrap()
        .to_string();
    for i in 3..=22 {
        text_b.push_str(&template.replace("user01", &format!("user{i:02}")));
        text_b.push('\n');
    }
    std::fs::write(&rc_b, text_b).unwrap();

    let (code_a, doc_a) = a.check();
    let (code_b, doc_b) = b.check();
    assert_eq!(
        code_a, 0,
        "a correct fix in another order must pass:\n{doc_a:#}"
    );
    assert_eq!(doc_a["score"]["solved_by"], "trainee");
    assert_eq!(doc_a["score"]["score"], 100);
    assert_eq!(code_b, 1, "a partial fix must fail:\n{doc_b:#}");
    let missing: Vec<String> = verdicts(&doc_b)
        .into_iter()
        .filter(|(_, v)| v != "delivered")
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        missing,
        [
            "user23@patente.test",
            "user24@patente.test",
            "user25@patente.test"
        ],
        "{doc_b:#}"
    );
    let p = problems(&doc_b);
    assert!(
        p.starts_with("3 mailboxes missing:")
            && p.contains("user23@patente.test, user24@patente.test, user25@patente.test"),
        "{p}"
    );
    a.stop_and_prove_empty();
    b.stop_and_prove_empty();
}

#[test]
fn hints_cost_points_and_status_shows_them() {
    let lab = Lab::start("kanzlei-fake-world", 23500);
    let out = lab.run(&["lab", "hint"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Hint 1 of 2 (-10 points)"));
    lab.run(&["lab", "hint"]);
    let out = lab.run(&["lab", "hint"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("No more hints"));
    let out = lab.run(&["lab", "status"]);
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("Hint 2 (-25)"), "{s}");
    assert!(s.contains("score 65 of 100, 2 hints used"), "{s}");
    let (_, doc) = lab.check();
    assert_eq!(doc["score"]["hint_cost"], 35);
    assert_eq!(doc["score"]["hints_used"], 2);
    lab.stop_and_prove_empty();
}

#[test]
fn every_built_in_lab_validates() {
    let out = mailrig(&["lab", "list", "--format", "json"]);
    let labs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = labs
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"kanzlei-collector"), "{names:?}");
    assert!(names.len() >= 3, "{names:?}");
    for n in names {
        let out = mailrig(&[
            "lab",
            "validate",
            repo().join("labs").join(n).to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{n}: {}", text(&out));
    }
}

#[test]
fn bad_input_is_refused_with_an_actionable_message() {
    // An unknown lab.
    let out = mailrig(&[
        "lab",
        "start",
        "no-such-lab",
        "--dir",
        "/tmp/mailrig-lab-never",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("no lab named 'no-such-lab'"),
        "{}",
        text(&out)
    );
    assert!(!Path::new("/tmp/mailrig-lab-never").exists());

    // check with nothing started.
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["lab", "check"])
        .current_dir(empty.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no lab here"), "{}", text(&out));

    // A broken lab.toml: file:line:column.
    let folder = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(repo().join("labs/kanzlei-fake-world/lab.toml")).unwrap();
    let broken = src.replace(
        "answer = { journal = \"http\" }",
        "answer = { journal = \"htp\" }",
    );
    let line = broken.lines().position(|l| l.contains("\"htp\"")).unwrap() + 1;
    std::fs::write(folder.path().join("lab.toml"), broken).unwrap();
    let out = mailrig(&["lab", "validate", folder.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let want = format!(
        "{}:{line}:22: unknown port 'htp'",
        folder.path().join("lab.toml").display()
    );
    assert!(text(&out).contains(&want), "want {want}\n{}", text(&out));
    // A template with an unknown placeholder: located in its file.
    std::fs::write(folder.path().join("lab.toml"), &src).unwrap();
    std::fs::create_dir_all(folder.path().join("files")).unwrap();
    std::fs::write(
        folder.path().join("files/probe.toml"),
        "[smtp]\nport = {{port.smtpp}}\n",
    )
    .unwrap();
    let out = mailrig(&["lab", "validate", folder.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("files/probe.toml:2:8: unknown port 'smtpp'"),
        "{}",
        text(&out)
    );

    // Ports taken.
    let holder = TcpListener::bind((Ipv4Addr::LOCALHOST, 23602)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    let out = mailrig(&[
        "lab",
        "start",
        "kanzlei-fake-world",
        "--dir",
        dir.to_str().unwrap(),
        "--port-base",
        "23600",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("port 23602 (pop3, --port-base 23600 + 2) on 127.0.0.1 is in use"),
        "{}",
        text(&out)
    );
    drop(holder);
    assert!(processes_of(&[], &dir).is_empty());

    // An answer naming a stage that does not exist.
    let lab = Lab::start("kanzlei-fake-world", 23700);
    let out = lab.run(&["lab", "answer", "--stage", "routing", "anna@kanzlei.test"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("unknown stage 'routing'"),
        "{}",
        text(&out)
    );
    // A second start in a running lab's directory.
    let out = mailrig(&[
        "lab",
        "start",
        "kanzlei-fake-world",
        "--dir",
        lab.dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("is already running"), "{}", text(&out));
    lab.stop_and_prove_empty();
}

#[test]
fn the_lab_commands_on_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = tmp.path().join("lab");
    let dir = dir.to_str().unwrap();
    let run = Pty::mailrig(&["lab", "list"]).run();
    assert_eq!(run.code, 0, "{}", run.text());
    assert!(run.text().contains("kanzlei-collector"), "{}", run.text());
    let run = Pty::mailrig(&[
        "lab",
        "start",
        "kanzlei-fake-world",
        "--dir",
        dir,
        "--port-base",
        "23800",
    ])
    .run();
    assert_eq!(run.code, 0, "{}", run.text());
    assert!(run.text().contains("Your task:"), "{}", run.text());
    let run = Pty::mailrig(&["lab", "check", "--dir", dir]).run();
    assert_eq!(run.code, 1, "{}", run.text());
    assert!(
        run.text().contains("FAIL  the mailboxes that lose mail"),
        "{}",
        run.text()
    );
    assert!(run.text().contains("23 missing"), "{}", run.text());
    let run = Pty::mailrig(&["lab", "stop", "--dir", dir]).run();
    assert_eq!(run.code, 0, "{}", run.text());
    assert!(run.text().contains("no process left"), "{}", run.text());
}

#[test]
fn an_edit_that_breaks_a_service_is_a_failing_check_and_the_next_good_edit_recovers() {
    let lab = Lab::start("kanzlei-collector", 25000);
    let rc = lab.dir.join("firm/fetchmailrc");
    std::fs::write(&rc, "poll 127.0.0.1 service\n  user\n").unwrap();
    let (code, doc) = lab.check();
    assert_eq!(code, 1, "{doc:#}");
    let p = problems(&doc);
    assert!(
        p.contains("service 'fetchmail' does not start with the current files"),
        "{p}"
    );
    assert!(
        p.contains("syntax error"),
        "fetchmail's own complaint is shown: {p}"
    );
    // Still broken on the next check, without another edit.
    let (code, _) = lab.check();
    assert_eq!(code, 1);
    let out = lab.run(&["lab", "solve"]);
    assert!(out.status.success(), "{}", text(&out));
    let (code, doc) = lab.check();
    assert_eq!(code, 0, "{doc:#}");
    lab.stop_and_prove_empty();
}
