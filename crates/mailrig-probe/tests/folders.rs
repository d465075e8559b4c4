//! Every folder, and the prober's safety, against our fake world: a mailbox
//! whose mail is moved into `Junk` as it arrives (a stand-in for a spam
//! filter, done through the store) is `misfiled (Junk)`; the prober deletes
//! its own messages there too, and never a message that only quotes its
//! token in the subject or body, in any folder.

mod common;

use std::time::Duration;

use common::{result, root, seed_addresses, with_verdict};
use mailrig_core::store::MailboxStore;
use mailrig_core::{Flags, NewMessage};
use mailrig_probe::{
    ProbeOptions, ReadEndpoint, ReadProtocol, RunId, Target, Verdict, exit_code, probe,
};
use mailrig_server::MockServer;

async fn seed_server() -> MockServer {
    MockServer::builder()
        .scenario_file(root().join("crates/mailrig-core/catalog/kanzlei.toml"))
        .expect("scenario loads")
        .start()
        .await
        .expect("mock starts")
}

fn target(server: &MockServer, protocol: ReadProtocol) -> Target {
    let addr = match protocol {
        ReadProtocol::Imap => server.imap_addr(),
        ReadProtocol::Pop3 => server.pop3_addr(),
    };
    let mut t = Target::from_credentials(
        server.smtp_addr(),
        ReadEndpoint::plain(protocol, addr),
        seed_addresses()
            .into_iter()
            .map(|a| (a.clone(), a, "secret".to_string())),
    );
    t.timeout = Duration::from_secs(2);
    t
}

fn store_of<'a>(server: &'a MockServer, address: &str) -> &'a MailboxStore {
    let id = server
        .world()
        .mailbox_by_address(address)
        .expect("mailbox in world");
    server.store().mailbox(id)
}

/// Moves everything that arrives in `address`'s INBOX into `Junk`, the way a
/// Sieve rule or a spam filter would, until the returned guard is dropped.
fn file_into_junk(server: &MockServer, address: &str) -> tokio::task::JoinHandle<()> {
    let id = server.world().mailbox_by_address(address).unwrap();
    let store = std::sync::Arc::clone(&server.state().store);
    let _ = store.mailbox(id).create_folder("Junk");
    tokio::spawn(async move {
        // Bounded: the probe ends within seconds.
        for _ in 0..2000 {
            let mb = store.mailbox(id);
            let uids: Vec<u32> = mb
                .messages("INBOX")
                .unwrap_or_default()
                .iter()
                .map(|m| m.uid)
                .collect();
            if !uids.is_empty() {
                mb.copy("INBOX", &uids, "Junk").expect("copy to Junk");
                mb.delete_messages("INBOX", &uids)
                    .expect("remove from INBOX");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
}

fn put(server: &MockServer, address: &str, folder: &str, raw: String) {
    let mb = store_of(server, address);
    let _ = mb.create_folder(folder);
    mb.append(
        folder,
        NewMessage {
            raw: raw.into_bytes().into(),
            envelope: None,
            flags: Flags::default(),
            internal_date: chrono::Utc::now(),
        },
    )
    .expect("append");
}

fn count(server: &MockServer, address: &str, folder: &str) -> usize {
    store_of(server, address)
        .messages(folder)
        .map_or(0, |m| m.len())
}

#[tokio::test(flavor = "multi_thread")]
async fn mail_filed_into_junk_is_misfiled_and_cleaned_up_there() {
    let server = seed_server().await;
    let mover = file_into_junk(&server, "user07@patente.test");
    let report = probe(
        &target(&server, ReadProtocol::Imap),
        &ProbeOptions::default(),
    )
    .await
    .unwrap();
    mover.abort();
    let table = report.to_table(false);
    assert_eq!(
        with_verdict(&report, Verdict::Misfiled),
        ["user07@patente.test"],
        "{table}"
    );
    assert_eq!(
        with_verdict(&report, Verdict::Delivered).len(),
        27,
        "{table}"
    );
    let m = result(&report, "user07@patente.test");
    assert_eq!(m.folders, ["Junk"]);
    assert!(
        table.contains("user07@patente.test  misfiled (Junk)"),
        "{table}"
    );
    assert_eq!(
        exit_code(&Ok(report.clone())),
        1,
        "misfiled is not delivered"
    );
    // Its probe was deleted from Junk, everyone else's from INBOX.
    assert_eq!(report.cleanup.deleted, 28, "{table}");
    assert_eq!(count(&server, "user07@patente.test", "Junk"), 0);
    for a in seed_addresses() {
        assert_eq!(count(&server, &a, "INBOX"), 0, "{a}");
    }
    assert!(report.notes.is_empty(), "{:?}", report.notes);
}

/// POP3 cannot see folders: the misfiled probe is `missing`, the report says
/// why, and the probe in Junk is left alone (POP3 never saw it).
#[tokio::test(flavor = "multi_thread")]
async fn pop3_says_it_searched_only_inbox() {
    let server = seed_server().await;
    let mover = file_into_junk(&server, "user07@patente.test");
    let report = probe(
        &target(&server, ReadProtocol::Pop3),
        &ProbeOptions::default(),
    )
    .await
    .unwrap();
    mover.abort();
    assert_eq!(
        with_verdict(&report, Verdict::Missing),
        ["user07@patente.test"]
    );
    assert_eq!(report.notes.len(), 1, "{:?}", report.notes);
    assert!(
        report.notes[0].contains("28 mailbox(es) read over POP3: only INBOX was searched"),
        "{}",
        report.notes[0]
    );
    assert!(
        report
            .to_table(false)
            .contains("note: 28 mailbox(es) read over POP3")
    );
}

/// Mail that carries the probe's subject and the token in its body, in INBOX
/// and in Junk, survives a probe run: only messages whose X-Mailrig-Probe
/// header carries this run's token are deleted.
#[tokio::test(flavor = "multi_thread")]
async fn other_mail_with_the_same_words_is_never_touched() {
    let server = seed_server().await;
    let run = RunId::from_string("mrpsafety0001");
    let target = target(&server, ReadProtocol::Imap);
    // The token of user01 (index 3 in seed order) and of anna (index 0).
    let look_alike = |token: &str| {
        format!(
            "From: colleague@kanzlei.test\r\nTo: x@patente.test\r\nSubject: Re: mailrig probe {token}\r\nMessage-ID: <reply-{token}@kanzlei.test>\r\n\r\nYour mailrig probe {token} arrived, X-Mailrig-Probe: {token}.\r\n"
        )
    };
    put(
        &server,
        "user01@patente.test",
        "INBOX",
        look_alike(&run.token(3)),
    );
    put(
        &server,
        "user01@patente.test",
        "Junk",
        look_alike(&run.token(3)),
    );
    put(
        &server,
        "anna@kanzlei.test",
        "Archive",
        look_alike(&run.token(0)),
    );
    // And plain mail with the run id in the subject, for good measure.
    put(
        &server,
        "user02@patente.test",
        "INBOX",
        format!("From: a@b.test\r\nSubject: about {run}\r\n\r\nmailrig probe {run}\r\n"),
    );
    let report = probe(
        &target,
        &ProbeOptions {
            run_id: Some(run.clone()),
            ..ProbeOptions::default()
        },
    )
    .await
    .unwrap();
    let table = report.to_table(false);
    // The look-alikes are reported (a second copy naming the token) ...
    assert_eq!(
        result(&report, "user01@patente.test").verdict,
        Verdict::Duplicated,
        "{table}"
    );
    // ... but none of them is deleted.
    assert_eq!(count(&server, "user01@patente.test", "INBOX"), 1, "{table}");
    assert_eq!(count(&server, "user01@patente.test", "Junk"), 1, "{table}");
    assert_eq!(count(&server, "anna@kanzlei.test", "Archive"), 1, "{table}");
    assert_eq!(count(&server, "user02@patente.test", "INBOX"), 1, "{table}");
    for m in store_of(&server, "user01@patente.test")
        .messages("INBOX")
        .unwrap()
    {
        assert!(String::from_utf8_lossy(&m.raw).contains("Subject: Re: mailrig probe"));
    }
    // The prober's own 28 messages are gone.
    assert_eq!(report.cleanup.deleted, 28, "{table}");
    assert!(
        report
            .cleanup
            .notes
            .iter()
            .any(|n| n.starts_with("user01@patente.test: 2 message(s) name this run's token without its X-Mailrig-Probe header")),
        "{:?}",
        report.cleanup.notes
    );
}

/// `--keep` leaves everything, in every folder.
#[tokio::test(flavor = "multi_thread")]
async fn keep_leaves_every_folder_as_it_was() {
    let server = seed_server().await;
    let mover = file_into_junk(&server, "user07@patente.test");
    let report = probe(
        &target(&server, ReadProtocol::Imap),
        &ProbeOptions {
            keep: true,
            ..ProbeOptions::default()
        },
    )
    .await
    .unwrap();
    mover.abort();
    assert_eq!(
        with_verdict(&report, Verdict::Misfiled),
        ["user07@patente.test"]
    );
    assert!(report.cleanup.kept);
    assert_eq!(report.cleanup.deleted, 0);
    assert_eq!(report.cleanup.left, 28);
    assert_eq!(count(&server, "user07@patente.test", "Junk"), 1);
    assert_eq!(count(&server, "user01@patente.test", "INBOX"), 1);
}
