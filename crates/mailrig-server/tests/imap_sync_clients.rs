//! Real IMAP sync clients against mailrig, each syncing a mailbox that
//! changes between runs, the local Maildir checked against the store:
//! mbsync (Debian `isync`) and offlineimap3. Round 1 syncs three messages;
//! then another IMAP session flags one and expunges one and a delivery adds
//! one; round 2's Maildir must hold exactly the store's messages with their
//! `\Flagged` state. A missing binary fails the test (run
//! scripts/install-test-deps.sh); nothing is skipped.

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
