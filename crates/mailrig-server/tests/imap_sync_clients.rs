//! Real IMAP sync clients against mailrig, each syncing a mailbox that
//! changes between runs, the local Maildir checked against the store:
//! mbsync (Debian `isync`), offlineimap3 and neomutt with a header cache.
//! Round 1 syncs three messages; then another IMAP session flags one and
//! expunges one and a delivery adds one; round 2's Maildir must hold exactly
//! the store's messages with their `\Flagged` state. A missing binary fails
//! the test (run scripts/install-test-deps.sh); nothing is skipped.
//!
//! neomutt is a terminal program: it runs under a pty (`script`, util-linux)
//! with nothing typed; a `folder-hook` pushes the keys that, once INBOX is
//! open, tag every message, copy them into a local Maildir (neomutt writes
//! each message's flags into the file name, so the same check applies) and
//! quit. Its header cache must be written in round 1 and used in round 2
//! (its debug log shows which headers it fetched).

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use mailrig_core::store::{INBOX, SystemFlag};
use mailrig_server::MockServer;
use support::imap::*;

/// (subject, flagged) of every message of a Maildir folder.
fn local_state(folder: &Path) -> BTreeSet<(String, bool)> {
    let mut out = BTreeSet::new();
    for sub in ["cur", "new"] {
        let Ok(dir) = std::fs::read_dir(folder.join(sub)) else {
            continue;
        };
        for e in dir.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            let flags = name
                .rsplit_once(":2,")
                .map(|(_, f)| f.to_string())
                .unwrap_or_default();
            let raw = std::fs::read(e.path()).expect("read maildir file");
            out.insert((subject(&raw), flags.contains('F')));
        }
    }
    out
}

fn subject(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .lines()
        .find_map(|l| l.strip_prefix("Subject: ").map(|s| s.trim().to_string()))
        .unwrap_or_default()
}

/// (subject, flagged) of alice's INBOX in the store.
fn store_state(server: &MockServer) -> BTreeSet<(String, bool)> {
    let id = server.world().mailbox_by_address(ALICE).expect("alice");
    server
        .store()
        .mailbox(id)
        .messages(INBOX)
        .expect("INBOX")
        .iter()
        .map(|m| (subject(&m.raw), m.flags.has(SystemFlag::Flagged)))
        .collect()
}

fn require(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{program} is missing: run scripts/install-test-deps.sh (Debian package {package})"
    );
}

async fn run(program: &str, args: &[&str]) {
    let o = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (scripts/install-test-deps.sh)"));
    assert!(
        o.status.success(),
        "{program} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The changes between the rounds: another session flags the first
/// message and expunges the second; a delivery adds a fourth.
async fn change(server: &MockServer) {
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    assert!(c.cmd("s1 SELECT INBOX").await.contains("s1 OK"));
    assert!(
        c.cmd("s2 STORE 1 +FLAGS (\\Flagged)")
            .await
            .contains("s2 OK")
    );
    assert!(
        c.cmd("s3 STORE 2 +FLAGS (\\Deleted)")
            .await
            .contains("s3 OK")
    );
    assert!(c.cmd("s4 EXPUNGE").await.contains("s4 OK"));
    assert!(c.cmd("s5 LOGOUT").await.contains("s5 OK"));
    deliver(
        server,
        ALICE,
        &message("Dan <dan@example.test>", "four", "4"),
    );
}

async fn three_messages() -> MockServer {
    let server = start().await;
    for s in ["one", "two", "three"] {
        deliver(&server, ALICE, &message("Bob <bob@example.test>", s, s));
    }
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mbsync_syncs_a_changing_mailbox() {
    require("mbsync", "isync");
    let server = three_messages().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mail = dir.path().join("mail");
    std::fs::create_dir_all(&mail).expect("mkdir");
    let conf = dir.path().join("mbsyncrc");
    std::fs::write(
        &conf,
        format!(
            "IMAPAccount a\nHost 127.0.0.1\nPort {port}\nUser {ALICE}\nPass {PASSWORD}\nSSLType None\nAuthMechs LOGIN\n\n\
             IMAPStore remote\nAccount a\n\n\
             MaildirStore local\nPath {m}/\nInbox {m}/INBOX\n\n\
             Channel c\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Near\nExpunge Both\nSync All\nSyncState *\n",
            port = server.imap_addr().port(),
            m = mail.display()
        ),
    )
    .expect("write mbsyncrc");
    let conf = conf.display().to_string();
    sync_twice(server, &mail.join("INBOX"), "mbsync", &["-c", &conf, "-a"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offlineimap_syncs_a_changing_mailbox() {
    require("offlineimap", "offlineimap3");
    let server = three_messages().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("offlineimaprc");
    std::fs::write(
        &conf,
        format!(
            "[general]\naccounts = a\nmetadata = {d}/meta\n\n\
             [Account a]\nlocalrepository = L\nremoterepository = R\n\n\
             [Repository L]\ntype = Maildir\nlocalfolders = {d}/mail\n\n\
             [Repository R]\ntype = IMAP\nremotehost = 127.0.0.1\nremoteport = {port}\n\
             remoteuser = {ALICE}\nremotepass = {PASSWORD}\nssl = no\nstarttls = no\n\
             folderfilter = lambda f: f == 'INBOX'\n",
            d = dir.path().display(),
            port = server.imap_addr().port(),
        ),
    )
    .expect("write offlineimaprc");
    let conf = conf.display().to_string();
    let args = ["-c", conf.as_str(), "-o", "-u", "basic"];
    sync_twice(server, &dir.path().join("mail/INBOX"), "offlineimap", &args).await;
}

/// The two rounds every client goes through: sync the three messages, let
/// another session and a delivery change the mailbox, sync again; after each
/// round the client's Maildir at `inbox` matches the store.
async fn sync_twice(server: MockServer, inbox: &Path, tool: &str, args: &[&str]) {
    run(tool, args).await;
    assert_eq!(local_state(inbox), store_state(&server));
    assert_eq!(local_state(inbox).len(), 3);
    change(&server).await;
    run(tool, args).await;
    let want: BTreeSet<(String, bool)> = [("one", true), ("three", false), ("four", false)]
        .iter()
        .map(|(s, f)| (s.to_string(), *f))
        .collect();
    assert_eq!(store_state(&server), want);
    assert_eq!(local_state(inbox), want);
    server.shutdown().await;
}

/// One neomutt run on alice's INBOX under a pty: the folder-hook of `muttrc`
/// copies every message into `out` (emptied first) and quits. Returns the
/// IMAP commands neomutt sent (from its debug log `log`).
async fn neomutt_round(
    server: &MockServer,
    dir: &Path,
    muttrc: &Path,
    out: &Path,
    log: &Path,
) -> Vec<String> {
    let _ = std::fs::remove_dir_all(out);
    for e in std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(Result::ok)
    {
        if e.file_name().to_string_lossy().starts_with("neomutt.log") {
            std::fs::remove_file(e.path()).expect("remove old log");
        }
    }
    let cmd = format!(
        "neomutt -n -F '{}' -d 2 -l '{}' -f imap://127.0.0.1:{}/INBOX",
        muttrc.display(),
        log.display(),
        server.imap_addr().port()
    );
    let child = tokio::process::Command::new("script")
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .env("HOME", dir)
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let o = tokio::time::timeout(std::time::Duration::from_secs(60), child)
        .await
        .expect("neomutt did not quit within 60 s (waiting at a prompt?)")
        .unwrap_or_else(|e| {
            panic!("cannot run script/neomutt: {e} (scripts/install-test-deps.sh)")
        });
    let screen = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "neomutt failed ({}):\n{screen}",
        o.status
    );
    assert!(
        out.join("cur").is_dir(),
        "neomutt copied nothing to {}:\n{screen}",
        out.display()
    );
    // neomutt numbers its log file: neomutt.log0.
    let mut sent = Vec::new();
    for e in std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(Result::ok)
    {
        if e.file_name().to_string_lossy().starts_with("neomutt.log") {
            let text = std::fs::read_to_string(e.path()).expect("read neomutt log");
            // A write of several commands is logged as one entry: the
            // later ones on lines of their own, without the log's prefix.
            let mut in_write = false;
            for l in text.lines() {
                if let Some((_, c)) = l.split_once("mutt_socket_write_d() ") {
                    sent.push(c.to_string());
                    in_write = true;
                } else if in_write && !l.starts_with('[') {
                    sent.push(l.to_string());
                } else {
                    in_write = false;
                }
            }
        }
    }
    assert!(
        !sent.is_empty(),
        "no IMAP commands in neomutt's log:\n{screen}"
    );
    sent
}

/// Every file of the header cache directory, with its size.
fn cache_files(dir: &Path) -> Vec<(std::path::PathBuf, u64)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
        {
            let m = e.metadata().expect("metadata");
            if m.is_dir() {
                todo.push(e.path());
            } else {
                out.push((e.path(), m.len()));
            }
        }
    }
    out
}

/// The message numbers or UIDs of the commands that fetched headers.
fn header_fetches(sent: &[String]) -> Vec<String> {
    sent.iter()
        .filter(|c| c.contains("BODY.PEEK[HEADER"))
        .map(|c| c.split_whitespace().nth(3).unwrap_or("").to_string())
        .collect()
}

async fn neomutt_syncs(extra: &str) -> (Vec<String>, Vec<String>) {
    require("neomutt", "neomutt");
    require("script", "bsdutils");
    let server = three_messages().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (hc, out, log) = (
        dir.path().join("hcache"),
        dir.path().join("out"),
        dir.path().join("neomutt.log"),
    );
    std::fs::create_dir_all(&hc).expect("mkdir");
    let muttrc = dir.path().join("muttrc");
    std::fs::write(
        &muttrc,
        format!(
            "set imap_user=\"{ALICE}\"\nset imap_pass=\"{PASSWORD}\"\n\
             set ssl_starttls=no\nset ssl_force_tls=no\nset imap_idle=no\n\
             set folder=\"{d}\"\nset record=\"\"\nset postponed=\"{d}/postponed\"\n\
             set header_cache=\"{hc}/\"\nset mbox_type=Maildir\n\
             set confirmcreate=no\nset confirmappend=no\nset quit=yes\nset move=no\n\
             set mail_check_stats=no\nset sort=date\n{extra}\n\
             folder-hook . 'push \"<tag-pattern>~A<enter><tag-prefix><copy-message>{out}<enter><quit>\"'\n",
            d = dir.path().display(),
            hc = hc.display(),
            out = out.display()
        ),
    )
    .expect("write muttrc");
    let round1 = neomutt_round(&server, dir.path(), &muttrc, &out, &log).await;
    assert_eq!(local_state(&out), store_state(&server));
    assert_eq!(local_state(&out).len(), 3);
    let cached = cache_files(&hc);
    assert!(
        cached
            .iter()
            .any(|(p, n)| *n > 0 && p.to_string_lossy().ends_with("INBOX.hcache")),
        "no header cache of INBOX written: {cached:?}"
    );
    change(&server).await;
    let round2 = neomutt_round(&server, dir.path(), &muttrc, &out, &log).await;
    let want: BTreeSet<(String, bool)> = [("one", true), ("three", false), ("four", false)]
        .iter()
        .map(|(s, f)| (s.to_string(), *f))
        .collect();
    assert_eq!(store_state(&server), want);
    assert_eq!(
        local_state(&out),
        want,
        "neomutt's second run:\n{round2:#?}"
    );
    server.shutdown().await;
    (round1, round2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neomutt_with_a_header_cache_syncs_a_changing_mailbox() {
    let (round1, round2) = neomutt_syncs("").await;
    assert_eq!(header_fetches(&round1), ["1:3"], "{round1:#?}");
    // Round 2 reads the flags of all (UID FETCH ... (UID FLAGS)) but the
    // headers of the new message only: the cache held the others.
    assert!(
        round2
            .iter()
            .any(|c| c.contains("UID FETCH 1:") && c.contains("(UID FLAGS)")),
        "{round2:#?}"
    );
    assert_eq!(header_fetches(&round2), ["3"], "{round2:#?}");
}

/// The same with `imap_qresync`: neomutt enables QRESYNC and resyncs with
/// `UID FETCH 1:n (FLAGS) (CHANGEDSINCE m VANISHED)`. (Seen by hand, not
/// asserted here: when a message vanished before a changed one, neomutt
/// 20220429 falls back to a full flag fetch, "QRESYNC failed. Reopening
/// mailbox" in its log: it applies the FETCH that follows `* VANISHED
/// (EARLIER)` to its cached message numbers before it removes the vanished
/// ones, so the renumbered message is "unknown" to it; the server's numbers
/// are RFC 7162's, the session's after SELECT. The result is right either way.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neomutt_with_a_header_cache_and_qresync_syncs_a_changing_mailbox() {
    let (round1, round2) = neomutt_syncs("set imap_qresync=yes").await;
    assert!(
        round1.iter().any(|c| c.contains("ENABLE QRESYNC")),
        "{round1:#?}"
    );
    assert!(
        round2
            .iter()
            .any(|c| c.contains("(CHANGEDSINCE ") && c.contains(" VANISHED)")),
        "{round2:#?}"
    );
}
