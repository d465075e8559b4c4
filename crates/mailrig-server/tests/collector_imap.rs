//! IMAP collectors (`protocol = "imap"`) between hosts: swaks delivers to the
//! provider, the collector fetches over IMAP into the firm's host, and
//! Python's imaplib looks at what the provider still holds. `keep`
//! remembers `UIDVALIDITY.UID` and never sets `\Seen`; without it the
//! fetched messages are flagged `\Deleted` and expunged; the failure
//! options work as with POP3: a wrong password for one account, a session
//! dropped before the delete (duplicates), lost UID state, multidrop; with
//! `--maildir` the collected mail is files in the firm's own tree, loaded
//! again at restart.

mod support;

use mailrig_core::JournalEvent;
use mailrig_server::MockServer;
use support::faults::python;
use support::hosts::*;
use support::start_toml as start;

/// imaplib: the message count of INBOX and how many are `\Seen` / `\Deleted`.
const IMAPLIB: &str = r#"
import imaplib, sys
host, port, user = sys.argv[1], int(sys.argv[2]), sys.argv[3]
m = imaplib.IMAP4(host, port, timeout=10)
m.login(user, "secret")
typ, data = m.select("INBOX", readonly=True)
count = int(data[0])
seen = deleted = 0
if count:
    typ, flags = m.fetch("1:*", "(FLAGS)")
    for f in flags:
        seen += b"\\Seen" in f
        deleted += b"\\Deleted" in f
m.logout()
print(count, seen, deleted)
"#;

fn world(collector: &str) -> String {
    let a = addresses(2);
    format!(
        "{DOMAINS}[[host]]\nname = 'provider'\naddress = '{}'\ndomains = ['kanzlei.test', 'patente.test']\nimap = true\n\n\
         [[host]]\nname = 'firm'\naddress = '{}'\ndomains = ['kanzlei.test', 'patente.test']\n\n\
         [[collector]]\nname = 'c'\nfrom = 'provider'\nto = 'firm'\nprotocol = 'imap'\ninterval_secs = 3600\n{collector}\n",
        a[0], a[1]
    )
}

fn inbox(server: &MockServer, host: &str, address: &str) -> usize {
    server.host(host).unwrap().inbox(address).unwrap().len()
}

/// `(count, seen, deleted)` of a provider mailbox, read by imaplib.
async fn at_provider(server: &MockServer, user: &str) -> (usize, usize, usize) {
    let imap = server.host("provider").unwrap().imap_addr();
    let out = python(
        IMAPLIB,
        &[&imap.ip().to_string(), &imap.port().to_string(), user],
    )
    .await;
    let n: Vec<usize> = out.split_whitespace().map(|w| w.parse().unwrap()).collect();
    (n[0], n[1], n[2])
}

async fn send(server: &MockServer, to: &str, id: &str) {
    swaks_ok(server.host("provider").unwrap().smtp_addr(), to, id).await;
}

#[tokio::test]
async fn keep_fetches_each_message_once_by_uid_and_leaves_it_unread() {
    let server = start(&world(
        "accounts = ['anna@kanzlei.test', 'bernd@kanzlei.test']",
    ))
    .await;
    send(&server, "anna@kanzlei.test", "i1").await;
    send(&server, "anna@kanzlei.test", "i2").await;
    send(&server, "bernd@kanzlei.test", "i3").await;
    let round = server.collect_now("c").await.unwrap();
    assert_eq!(
        (round.fetched, round.delivered, round.lost),
        (3, 3, 0),
        "{round:?}"
    );
    assert!(round.failed.is_empty(), "{round:?}");
    assert_eq!(inbox(&server, "firm", "anna@kanzlei.test"), 2);
    assert_eq!(inbox(&server, "firm", "bernd@kanzlei.test"), 1);
    // Still at the provider, and not marked read (BODY.PEEK).
    assert_eq!(at_provider(&server, "anna@kanzlei.test").await, (2, 0, 0));
    // Nothing new: nothing fetched; one more message: only it.
    let round = server.collect_now("c").await.unwrap();
    assert_eq!(round.fetched, 0, "{round:?}");
    send(&server, "anna@kanzlei.test", "i4").await;
    let round = server.collect_now("c").await.unwrap();
    assert_eq!(round.fetched, 1, "{round:?}");
    assert_eq!(inbox(&server, "firm", "anna@kanzlei.test"), 3);
    // The journal names the UID with its UIDVALIDITY.
    let j = server.journal_for_message("<i4@extern.test>");
    let uidl = j
        .iter()
        .find_map(|e| match &e.event {
            JournalEvent::Collected(c) if c.account == "anna@kanzlei.test" => Some(c.uidl.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{j:#?}"));
    let (validity, uid) = uidl.split_once('.').unwrap();
    assert!(validity.parse::<u32>().unwrap() > 0, "{uidl}");
    assert_eq!(uid, "3", "{uidl}");
    server.shutdown().await;
}

#[tokio::test]
async fn without_keep_the_fetched_messages_are_deleted_and_expunged() {
    let server = start(&world("accounts = ['anna@kanzlei.test']\nkeep = false")).await;
    send(&server, "anna@kanzlei.test", "d1").await;
    send(&server, "anna@kanzlei.test", "d2").await;
    let round = server.collect_now("c").await.unwrap();
    assert_eq!(round.fetched, 2, "{round:?}");
    assert_eq!(at_provider(&server, "anna@kanzlei.test").await, (0, 0, 0));
    assert_eq!(inbox(&server, "firm", "anna@kanzlei.test"), 2);
    let round = server.collect_now("c").await.unwrap();
    assert_eq!(round.fetched, 0, "{round:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_session_dropped_before_the_delete_brings_duplicates() {
    let server = start(&world(
        "accounts = ['anna@kanzlei.test']\nkeep = false\ndrop_before_quit = true",
    ))
    .await;
    send(&server, "anna@kanzlei.test", "x1").await;
    send(&server, "anna@kanzlei.test", "x2").await;
    assert_eq!(server.collect_now("c").await.unwrap().fetched, 2);
    // Never flagged, never expunged: all still there.
    assert_eq!(at_provider(&server, "anna@kanzlei.test").await, (2, 0, 0));
    assert_eq!(server.collect_now("c").await.unwrap().fetched, 2);
    assert_eq!(inbox(&server, "firm", "anna@kanzlei.test"), 4, "duplicates");
    server.shutdown().await;
}

#[tokio::test]
async fn lost_uid_state_fetches_everything_again() {
    let server = start(&world(
        "accounts = ['anna@kanzlei.test']\nforget_uidls = true",
    ))
    .await;
    send(&server, "anna@kanzlei.test", "f1").await;
    assert_eq!(server.collect_now("c").await.unwrap().fetched, 1);
    assert_eq!(server.collect_now("c").await.unwrap().fetched, 1);
    assert_eq!(inbox(&server, "firm", "anna@kanzlei.test"), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn a_wrong_password_fails_one_account_and_is_journaled() {
    let server = start(&world(
        "accounts = ['anna@kanzlei.test']\n[[collector.account]]\naddress = 'bernd@kanzlei.test'\npassword = 'wrong'",
    ))
    .await;
    send(&server, "anna@kanzlei.test", "w1").await;
    send(&server, "bernd@kanzlei.test", "w2").await;
    let round = server.collect_now("c").await.unwrap();
    assert_eq!(round.fetched, 1, "{round:?}");
    assert_eq!(round.failed.len(), 1, "{round:?}");
    assert_eq!(round.failed[0].0, "bernd@kanzlei.test");
    assert!(round.failed[0].1.contains("LOGIN refused"), "{round:?}");
    assert_eq!(inbox(&server, "firm", "bernd@kanzlei.test"), 0);
    assert_eq!(at_provider(&server, "bernd@kanzlei.test").await, (1, 0, 0));
    let j = server.journal_for("bernd@kanzlei.test");
    assert!(
        j.iter().any(|e| e.host.as_deref() == Some("firm")
            && matches!(&e.event, JournalEvent::CollectFailed(c) if c.reason.contains("LOGIN"))),
        "{j:#?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn imap_multidrop_distributes_by_headers_and_loses_the_bcc_recipient() {
    let a = addresses(2);
    let text = format!(
        "[[domain]]\nname = 'kanzlei.test'\nmailboxes = ['anna', 'bernd', 'clara', 'sammel']\npassword = 'secret'\ncatch_all = 'sammel'\nunknown_recipient = 'catch-all'\n\n\
         [[host]]\nname = 'provider'\naddress = '{}'\ndomains = ['kanzlei.test']\nmailboxes = ['sammel@kanzlei.test']\nimap = true\n\n\
         [[host]]\nname = 'firm'\naddress = '{}'\ndomains = ['kanzlei.test']\n\n\
         [[collector]]\nname = 'sbs'\nfrom = 'provider'\nto = 'firm'\nprotocol = 'imap'\ninterval_secs = 3600\n[[collector.multidrop]]\nlogin = 'sammel@kanzlei.test'\n",
        a[0], a[1]
    );
    let server = start(&text).await;
    let out = swaks(
        server.host("provider").unwrap().smtp_addr(),
        "anna@kanzlei.test,bernd@kanzlei.test,clara@kanzlei.test",
        "m1",
        &[
            "--header",
            "To: anna@kanzlei.test",
            "--header",
            "Cc: bernd@kanzlei.test",
        ],
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let round = server.collect_now("sbs").await.unwrap();
    assert_eq!(
        (round.fetched, round.delivered, round.lost),
        (1, 2, 0),
        "{round:?}"
    );
    assert_eq!(inbox(&server, "firm", "anna@kanzlei.test"), 1);
    assert_eq!(inbox(&server, "firm", "bernd@kanzlei.test"), 1);
    assert_eq!(
        inbox(&server, "firm", "clara@kanzlei.test"),
        0,
        "Bcc: in no header"
    );
    server.shutdown().await;
}

/// The files of a Maildir folder's `new/` and `cur/`.
fn maildir_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(entries) = std::fs::read_dir(dir.join(sub)) {
            files.extend(entries.map(|e| e.unwrap().path()));
        }
    }
    files.sort();
    files
}

#[tokio::test]
async fn with_a_maildir_collected_mail_is_written_as_files_and_loaded_again_at_restart() {
    let dir = tempfile::tempdir().unwrap();
    let text = world("accounts = ['anna@kanzlei.test']\nkeep = false");
    let start = || {
        MockServer::builder()
            .scenario(mailrig_core::Scenario::parse(&text, "<test>").unwrap())
            .maildir(dir.path())
            .start()
    };
    let server = start().await.unwrap();
    send(&server, "anna@kanzlei.test", "m1").await;
    send(&server, "anna@kanzlei.test", "m2").await;
    let round = server.collect_now("c").await.unwrap();
    assert_eq!((round.fetched, round.delivered), (2, 2), "{round:?}");
    // Each host has its own tree: the firm's holds the two collected
    // messages, the provider's none (fetched without keep: expunged).
    let firm = dir.path().join("firm/kanzlei.test/anna");
    let files = maildir_files(&firm);
    assert_eq!(files.len(), 2, "{files:?}");
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    for id in ["<m1@extern.test>", "<m2@extern.test>"] {
        assert!(texts.iter().any(|t| t.contains(id)), "{id} in {texts:?}");
    }
    assert!(maildir_files(&dir.path().join("provider/kanzlei.test/anna")).is_empty());
    assert_eq!(at_provider(&server, "anna@kanzlei.test").await, (0, 0, 0));
    server.shutdown().await;

    // A new server on the same folder has them again, in the firm's INBOX only.
    let server = start().await.unwrap();
    assert_eq!(inbox(&server, "firm", "anna@kanzlei.test"), 2);
    assert_eq!(inbox(&server, "provider", "anna@kanzlei.test"), 0);
    server.shutdown().await;
}
