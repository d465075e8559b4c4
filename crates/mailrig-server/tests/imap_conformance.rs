//! Dovecot imaptest's scripted conformance tests (`../shared/imaptest-tests`
//! beside the repository; see its README and `tests/imaptest/` for the
//! format), run against our IMAP server.
//!
//! Every script in the folder is listed either in [`EXPECTED_PASS`], and
//! must run and pass (a script there whose capability we do not advertise
//! fails the run: it was skipped), or in [`NOT_APPLICABLE`] with the reason.
//! A script is only allowed there when its `capabilities:` header names an
//! extension our server does not advertise, so the table cannot hide a
//! failure of the base protocol or of an extension we claim; a script in
//! neither list fails the run too. [`KNOWN_FAILING`] names the scripts of
//! an advertised extension that do not pass yet, with what is open; they
//! run, and one that starts passing fails the run until it is moved. The run prints, per script, how many expectations
//! it checked (tagged replies, `*` and `!` lines), how many were optional
//! (`?` lines: may come, cannot fail) and how many lines it skipped
//! (`!output`, and lines an `!ifenv` leaves out); the runner has no other way
//! to pass over an expectation: one it cannot read fails the script.
//! [`runner_reports_wrong_expectations`] shows that each kind of check fails
//! when the script is wrong.

mod imaptest;
mod support;

use std::path::{Path, PathBuf};

use imaptest::exec::{self, Account};
use imaptest::mbox::Mbox;
use imaptest::script::Script;
use support::imap::{ALICE, PASSWORD, start};

/// The scripts' folder: `$IMAPTEST_DIR`, else `shared/imaptest-tests/tests` in
/// the nearest folder above the crate that has it (beside the repository, or
/// beside the folder of a git worktree).
fn scripts_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("IMAPTEST_DIR") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared/imaptest-tests/tests"))
        .find(|p| p.is_dir())
        .expect("imaptest scripts not found: no shared/imaptest-tests/tests above the crate (set IMAPTEST_DIR)")
}
const MAILBOX: &str = "testbox";

/// Scripts that must run and pass.
const EXPECTED_PASS: &[&str] = &[
    "append",
    "append-binary",
    "atoms",
    "catenate",
    "catenate-multiappend",
    "close",
    "copy",
    "esearch",
    "esearch-condstore",
    "esort",
    "expunge",
    "expunge2",
    "fetch",
    "fetch-body",
    "fetch-body-message-rfc822",
    "fetch-body-message-rfc822-mime",
    "fetch-body-message-rfc822-x2",
    "fetch-binary-mime",
    "fetch-binary-mime-base64",
    "fetch-binary-mime-qp",
    "fetch-body-mime",
    "fetch-bodystructure",
    "fetch-envelope",
    "id",
    "list",
    "listext",
    "logout",
    "move",
    "multiappend",
    "mutf7",
    "nil",
    "notify",
    "pipeline",
    "search-addresses",
    "search-body",
    "search-context-update",
    "search-context-update2",
    "search-context-update3",
    "search-date",
    "search-flags",
    "search-header",
    "search-partial",
    "search-sets",
    "search-size",
    "select",
    "sort-addresses",
    "sort-arrival",
    "sort-date",
    "sort-display-from",
    "sort-display-to",
    "sort-size",
    "sort-subject",
    "store",
    "subscribe",
    "thread",
    "thread-orderedsubject",
    "thread-orderedsubject2",
    "thread2",
    "thread3",
    "thread4",
    "thread5",
    "thread6",
    "thread7",
    "thread8",
    "uidplus",
    "uidvalidity",
    "uidvalidity-rename",
];

/// Scripts of an extension we advertise that do not pass yet, with what is
/// open. They run; the run fails if one passes (move it to EXPECTED_PASS).
const KNOWN_FAILING: &[(&str, &str)] = &[];

/// Scripts that need an extension we do not implement (their `capabilities:`
/// header says which), with the reason.
const NOT_APPLICABLE: &[(&str, &str)] = &[
    (
        "sort-partial",
        "CONTEXT=SORT (RFC 5267): SORT RETURN (UPDATE) is not implemented, so CONTEXT=SORT is not advertised",
    ),
    ("urlauth", "URLAUTH (RFC 4467)"),
    ("urlauth-binary", "URLAUTH=BINARY (RFC 5524)"),
    ("urlauth2", "URLAUTH (RFC 4467)"),
];

/// The script names of the folder, sorted; `.mbox` files and folders (imaptest
/// skips `broken/`, which needs a server in the EET time zone) left out.
fn script_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("imaptest scripts not readable at {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.ends_with(".mbox") && !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

fn mbox_path(dir: &Path, name: &str) -> PathBuf {
    let own = dir.join(format!("{name}.mbox"));
    if own.exists() {
        own
    } else {
        dir.join("default.mbox")
    }
}

fn account() -> Account {
    Account {
        user: ALICE.into(),
        password: PASSWORD.into(),
        mailbox: MAILBOX.into(),
    }
}

/// The capabilities a script needs that the server does not advertise.
fn missing(script: &Script, caps: &[String]) -> Vec<String> {
    script
        .capabilities
        .iter()
        .filter(|c| !caps.iter().any(|have| have.eq_ignore_ascii_case(c)))
        .cloned()
        .collect()
}

/// Runs one script on a fresh server.
async fn run_script(dir: &Path, name: &str, script: &Script) -> Result<exec::Outcome, String> {
    let server = start().await;
    let mbox = Mbox::open(&mbox_path(dir, name))?;
    let out = exec::run(script, mbox, server.imap_addr(), &account()).await;
    server.shutdown().await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imaptest_scripts() {
    let caps = {
        let server = start().await;
        let caps = exec::capabilities(server.imap_addr(), &account()).await;
        server.shutdown().await;
        caps.expect("CAPABILITY")
    };
    let mut report = Vec::new();
    let mut failed = Vec::new();
    let (mut passed, mut checked, mut optional, mut skipped) = (0, 0, 0, 0);
    let dir = scripts_dir();
    for name in script_names(&dir) {
        let text = std::fs::read(dir.join(&name)).expect("read script");
        let script = match Script::parse(&text) {
            Ok(s) => s,
            Err(e) => {
                report.push(format!("FAIL {name}: cannot read the script: {e}"));
                failed.push(name);
                continue;
            }
        };
        let missing = missing(&script, &caps);
        if let Some((_, why)) = KNOWN_FAILING.iter().find(|(n, _)| *n == name) {
            match run_script(&dir, &name, &script).await {
                Ok(_) => {
                    report.push(format!("FAIL {name}: listed as known failing, but passes"));
                    failed.push(name);
                }
                Err(e) => report.push(format!("KNOWN-FAIL {name}: {why}: {e}")),
            }
            continue;
        }
        let expected = EXPECTED_PASS.contains(&name.as_str());
        let listed = NOT_APPLICABLE.iter().find(|(n, _)| *n == name);
        match (expected, listed, missing.is_empty()) {
            (false, Some((_, why)), false) => {
                report.push(format!("n/a  {name}: needs {why}"));
                continue;
            }
            (false, Some(_), true) => {
                report.push(format!(
                    "FAIL {name}: listed as not applicable, but it needs only capabilities we advertise"
                ));
                failed.push(name);
                continue;
            }
            (true, Some(_), _) => {
                report.push(format!(
                    "FAIL {name}: in both EXPECTED_PASS and NOT_APPLICABLE"
                ));
                failed.push(name);
                continue;
            }
            (true, None, false) => {
                report.push(format!(
                    "FAIL {name}: expected to pass, but skipped: needs {missing:?}, which we do not advertise"
                ));
                failed.push(name);
                continue;
            }
            (false, None, _) => {
                report.push(format!(
                    "FAIL {name}: in neither EXPECTED_PASS nor NOT_APPLICABLE"
                ));
                failed.push(name);
                continue;
            }
            (true, None, true) => {}
        }
        match run_script(&dir, &name, &script).await {
            Ok(out) => {
                passed += 1;
                checked += out.checked;
                optional += out.optional;
                skipped += script.skipped;
                report.push(format!(
                    "PASS {name}: {} checked, {} optional, {} skipped",
                    out.checked, out.optional, script.skipped
                ));
            }
            Err(e) => {
                report.push(format!("FAIL {name}: {e}"));
                failed.push(name);
            }
        }
    }
    report.push(format!(
        "{passed} scripts passed ({checked} checks, {optional} optional, {skipped} skipped), {} known failing, {} not applicable, {} failed",
        KNOWN_FAILING.len(),
        NOT_APPLICABLE.len(),
        failed.len()
    ));
    // Every listed script exists: a renamed script cannot drop out unseen.
    for name in EXPECTED_PASS {
        if !dir.join(name).is_file() {
            failed.push(format!(
                "{name} (listed in EXPECTED_PASS, not in {})",
                dir.display()
            ));
        }
    }
    println!("{}", report.join("\n"));
    assert!(passed > 0, "no imaptest script ran");
    assert!(
        failed.is_empty(),
        "imaptest scripts failed: {failed:?}\n{}",
        report.join("\n")
    );
}

/// Runs an inline script (over `default.mbox`) on a fresh server.
async fn run_inline(text: &str) -> Result<exec::Outcome, String> {
    let script = Script::parse(text.as_bytes())?;
    run_script(&scripts_dir(), "default", &script).await
}

/// The runner must be able to fail: each script here is wrong about our
/// server in one way, and must be reported, while the control passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_reports_wrong_expectations() {
    let control = "\nok fetch 1 (uid flags)\n* 1 fetch (uid $uid flags ())\n\
                   uid fetch $uid (flags)\n* 1 fetch (flags ())\nok\n";
    let out = run_inline(control)
        .await
        .expect("the control script passes");
    assert_eq!(out.checked, 5, "{out:?}");
    // (what is wrong, script, what the report must say)
    let wrong = [
        (
            "a missing reply",
            "\nok select $mailbox\n* 7 exists\n",
            "missing untagged reply",
        ),
        (
            "a tagged status",
            "\nno noop\n",
            "expected tagged reply `no`",
        ),
        (
            "a tagged prefix",
            "\nexamine $mailbox\nok [read-write]\n",
            "READ-ONLY",
        ),
        (
            "a forbidden reply",
            "\nok select $mailbox\n! 6 exists\n",
            "forbidden untagged reply",
        ),
        (
            "an extra flag",
            "\nok store 1 +flags (\\seen)\n* 1 fetch (flags ())\n",
            "missing",
        ),
        (
            "a STATUS value",
            "\nok status $mailbox (messages)\n* status $mailbox (messages 5)\n",
            "missing",
        ),
        (
            "a variable's value",
            "\nok fetch 1 uid\n* 1 fetch (uid $u)\nok fetch 2 uid\n* 2 fetch (uid $u)\n",
            "script line 5",
        ),
        (
            "a literal's bytes",
            "\nok fetch 1 (body.peek[text])\n* 1 fetch (body[text] {{{\nnot the body\n}}})\n",
            "missing",
        ),
        (
            "a banned LIST flag",
            "\nok list \"\" $mailbox\n* list ($!unordered $!ban=\\hasnochildren) \".\" $mailbox\n",
            "missing",
        ),
        (
            "an unbound variable",
            "\nok fetch $nothing flags\n",
            "uninitialized variable $nothing",
        ),
    ];
    for (what, text, says) in wrong {
        match run_inline(text).await {
            Ok(_) => panic!("the runner missed {what}:\n{text}"),
            Err(e) => assert!(
                e.contains(says),
                "{what}: the report should say `{says}`: {e}"
            ),
        }
    }
}
