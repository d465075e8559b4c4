//! Tests of the store: IMAP semantics, concurrency, and Maildir round trips.

use super::*;
use crate::scenario::Scenario;

fn world() -> World {
    let s = Scenario::parse(
        "[[domain]]\nname='d.test'\npassword='p'\nmailboxes=['a','b']\n",
        "t",
    );
    std::sync::Arc::unwrap_or_clone(s.unwrap().world)
}

fn msg(text: &str) -> NewMessage {
    NewMessage {
        raw: Bytes::from(text.to_string()),
        envelope: None,
        flags: Flags::default(),
        internal_date: Utc::now(),
    }
}

#[test]
fn uids_grow_and_survive_expunge() {
    let w = world();
    let s = Store::memory(&w);
    let a = s.mailbox(MailboxId(0));
    assert_eq!(s.deliver(MailboxId(0), msg("1")).unwrap(), 1);
    assert_eq!(s.deliver(MailboxId(0), msg("2")).unwrap(), 2);
    let deleted = Flags::default().with(SystemFlag::Deleted);
    a.store_flags(INBOX, &[2], FlagOp::Add, &deleted).unwrap();
    assert_eq!(a.expunge(INBOX, None).unwrap(), vec![2]);
    assert_eq!(s.deliver(MailboxId(0), msg("3")).unwrap(), 3);
    let info = &a.folders()[0];
    assert_eq!((info.exists, info.uid_next), (2, 4));
    assert_eq!(s.mailbox(MailboxId(1)).folders()[0].exists, 0);
}

#[test]
fn flags_recent_and_copy() {
    let s = Store::memory(&world());
    let a = s.mailbox(MailboxId(0));
    s.deliver(MailboxId(0), msg("x")).unwrap();
    assert_eq!(a.claim_recent(INBOX).unwrap(), vec![1]);
    assert!(a.claim_recent(INBOX).unwrap().is_empty());
    let seen = Flags::default().with(SystemFlag::Seen);
    let changed = a.store_flags(INBOX, &[1, 99], FlagOp::Add, &seen).unwrap();
    assert_eq!(changed.len(), 1);
    assert!(
        a.store_flags(INBOX, &[1], FlagOp::Add, &seen)
            .unwrap()
            .is_empty()
    );
    a.create_folder("Archive.2026").unwrap();
    assert_eq!(a.folders().len(), 3, "parent created too");
    let (_, pairs) = a.copy(INBOX, &[1], "Archive.2026").unwrap();
    assert_eq!(pairs, vec![(1, 1)]);
    let copied = a.messages("Archive.2026").unwrap();
    assert!(copied[0].flags.has(SystemFlag::Seen));
}

#[test]
fn folder_names_cannot_escape() {
    let s = Store::memory(&world());
    let a = s.mailbox(MailboxId(0));
    for bad in ["../x", "a/b", "", ".hidden", "a..b", "x.", "a\\b", "we*rd"] {
        assert!(a.create_folder(bad).is_err(), "{bad} accepted");
    }
    assert_eq!(a.delete_folder("inbox"), Err(StoreError::CannotDeleteInbox));
    a.create_folder("Sent").unwrap();
    assert_eq!(
        a.create_folder("Sent"),
        Err(StoreError::FolderExists("Sent".into()))
    );
    a.rename_folder("Sent", "Gesendet").unwrap();
    assert!(a.with_folder("Gesendet", |_| ()).is_ok());
}

#[test]
fn concurrent_deliveries_lose_nothing() {
    let s = std::sync::Arc::new(Store::memory(&world()));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    s.deliver(MailboxId(i % 2), msg(&format!("{t}-{i}")))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for id in [MailboxId(0), MailboxId(1)] {
        let msgs = s.mailbox(id).messages(INBOX).unwrap();
        assert_eq!(msgs.len(), 2000);
        let uids: Vec<u32> = msgs.iter().map(|m| m.uid).collect();
        assert_eq!(uids, (1..=2000).collect::<Vec<u32>>());
        let mut bodies: Vec<&[u8]> = msgs.iter().map(|m| &m.raw[..]).collect();
        bodies.sort();
        bodies.dedup();
        assert_eq!(bodies.len(), 2000, "no duplicates");
    }
}

#[test]
fn maildir_round_trip_keeps_uids_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let w = world();
    {
        let s = Store::open_maildir(&w, dir.path()).unwrap();
        for i in 0..5 {
            s.deliver(
                MailboxId(0),
                msg(&format!("Subject: {i}\r\n\r\nbody {i}\r\n")),
            )
            .unwrap();
        }
        let a = s.mailbox(MailboxId(0));
        a.store_flags(
            INBOX,
            &[2],
            FlagOp::Add,
            &Flags::default().with(SystemFlag::Seen),
        )
        .unwrap();
        a.store_flags(
            INBOX,
            &[5],
            FlagOp::Add,
            &Flags::default().with(SystemFlag::Deleted),
        )
        .unwrap();
        a.expunge(INBOX, None).unwrap();
        a.create_folder("Archive").unwrap();
        a.copy(INBOX, &[3], "Archive").unwrap();
    }
    let inbox = dir.path().join("d.test/a");
    assert_eq!(std::fs::read_dir(inbox.join("new")).unwrap().count(), 3);
    assert_eq!(std::fs::read_dir(inbox.join("cur")).unwrap().count(), 1);
    assert!(inbox.join(".Archive/maildirfolder").exists());

    let s = Store::open_maildir(&w, dir.path()).unwrap();
    let a = s.mailbox(MailboxId(0));
    let msgs = a.messages(INBOX).unwrap();
    assert_eq!(
        msgs.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert!(msgs[1].flags.has(SystemFlag::Seen));
    assert_eq!(&msgs[2].raw[..], b"Subject: 2\r\n\r\nbody 2\r\n");
    // UID 5 was expunged: it is never handed out again.
    assert_eq!(s.deliver(MailboxId(0), msg("new")).unwrap(), 6);
    assert_eq!(a.messages("Archive").unwrap().len(), 1);
}

#[test]
fn maildir_adopts_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let w = world();
    drop(Store::open_maildir(&w, dir.path()).unwrap());
    let cur = dir.path().join("d.test/b/cur");
    std::fs::write(cur.join("12345.foreign:2,S"), b"Subject: hi\r\n\r\n").unwrap();
    std::fs::write(dir.path().join("d.test/b/tmp/half"), b"partial").unwrap();
    let s = Store::open_maildir(&w, dir.path()).unwrap();
    let msgs = s.mailbox(MailboxId(1)).messages(INBOX).unwrap();
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0].flags.has(SystemFlag::Seen));
    let uid = msgs[0].uid;
    drop(s);
    let s = Store::open_maildir(&w, dir.path()).unwrap();
    assert_eq!(s.mailbox(MailboxId(1)).messages(INBOX).unwrap()[0].uid, uid);
    assert!(!dir.path().join("d.test/b/tmp/half").exists());
}

#[test]
fn folder_names_cutting_a_character_at_the_inbox_prefix_do_not_panic() {
    // Issue 9: "INBOé" is six bytes; byte 5 is inside the 'é'.
    let s = Store::memory(&world());
    let a = s.mailbox(MailboxId(0));
    for name in ["INBOé", "inboé", "INBé", "INBOXé", "INBOX.é", "Ä", "INBO€x"] {
        assert_eq!(
            a.with_folder(name, |_| ()),
            Err(StoreError::NoSuchFolder(canonical_name(name))),
            "{name}"
        );
    }
    assert_eq!(canonical_name("INBOé"), "INBOé");
    assert_eq!(canonical_name("inbox.Ä"), "INBOX.Ä");
    // Names already canonical are looked up without a copy.
    for (name, canonical, copied) in [
        ("INBOX", "INBOX", false),
        ("inbox", "INBOX", false),
        ("INBOX.Sub", "INBOX.Sub", false),
        ("inbox.Sub", "INBOX.Sub", true),
        ("Inbox/Sub", "Inbox/Sub", false),
        ("inboxes", "inboxes", false),
        ("INBOé", "INBOé", false),
        ("Junk", "Junk", false),
        ("", "", false),
    ] {
        let key = canonical_key(name);
        assert_eq!(key, canonical, "{name}");
        assert_eq!(matches!(key, std::borrow::Cow::Owned(_)), copied, "{name}");
    }
    a.create_folder("INBOé").unwrap();
    assert!(a.with_folder("INBOé", |_| ()).is_ok());
    assert!(a.with_folder("INBOX", |_| ()).is_ok());
}

/// Issue 9: a crash between the unlink of an expunged message and the write of
/// UIDNEXT gave the next message the expunged UID. The crash is stood in for
/// by a counters write that fails (a directory where its temporary file goes):
/// what is on disk then is what a kill -9 at that point leaves.
#[test]
fn maildir_expunge_never_reuses_a_uid_when_the_counters_write_fails() {
    let dir = tempfile::tempdir().unwrap();
    let w = world();
    let blocker = dir.path().join("d.test/a/mailrig-uidlist.tmp");
    {
        let s = Store::open_maildir(&w, dir.path()).unwrap();
        for i in 1..=3 {
            assert_eq!(s.deliver(MailboxId(0), msg(&format!("m{i}"))).unwrap(), i);
        }
        let a = s.mailbox(MailboxId(0));
        let deleted = Flags::default().with(SystemFlag::Deleted);
        a.store_flags(INBOX, &[3], FlagOp::Add, &deleted).unwrap();
        std::fs::create_dir(&blocker).unwrap();
        assert!(matches!(a.expunge(INBOX, None), Err(StoreError::Io { .. })));
    }
    std::fs::remove_dir(&blocker).unwrap();
    let s = Store::open_maildir(&w, dir.path()).unwrap();
    let uid = s.deliver(MailboxId(0), msg("after the crash")).unwrap();
    assert_eq!(uid, 4, "UID 3 was handed out before: it must not come back");
    let uids: Vec<u32> = s
        .mailbox(MailboxId(0))
        .messages(INBOX)
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(uids, vec![1, 2, 3, 4], "the unexpunged message stays");
}

#[test]
fn maildir_keeps_keywords_across_a_restart_as_dovecot_does() {
    let dir = tempfile::tempdir().unwrap();
    let w = world();
    let mut tagged = Flags::default().with(SystemFlag::Seen);
    tagged.add_keyword("$Forwarded");
    tagged.add_keyword("Projekt-X");
    {
        let s = Store::open_maildir(&w, dir.path()).unwrap();
        s.deliver(MailboxId(0), msg("one")).unwrap();
        s.deliver(MailboxId(0), msg("two")).unwrap();
        let a = s.mailbox(MailboxId(0));
        a.store_flags(INBOX, &[1], FlagOp::Add, &tagged).unwrap();
        let mut only = Flags::default();
        only.add_keyword("projekt-x");
        a.store_flags(INBOX, &[2], FlagOp::Add, &only).unwrap();
        a.create_folder("Archive").unwrap();
        a.copy(INBOX, &[1], "Archive").unwrap();
    }
    let inbox = dir.path().join("d.test/a");
    assert_eq!(
        std::fs::read_to_string(inbox.join("dovecot-keywords")).unwrap(),
        "0 $Forwarded\n1 Projekt-X\n"
    );
    let mut cur: Vec<String> = std::fs::read_dir(inbox.join("cur"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    cur.sort();
    assert!(cur[0].ends_with(",U=1:2,Sab"), "{cur:?}");
    assert!(cur[1].ends_with(",U=2:2,b"), "{cur:?}");
    // A file Dovecot wrote, with its own keyword table.
    std::fs::write(
        inbox.join("cur/1700000000.dovecot:2,Fc"),
        b"Subject: from dovecot\r\n\r\n",
    )
    .unwrap();
    std::fs::write(
        inbox.join("dovecot-keywords"),
        "0 $Forwarded\n1 Projekt-X\n2 Important\n",
    )
    .unwrap();

    let s = Store::open_maildir(&w, dir.path()).unwrap();
    let a = s.mailbox(MailboxId(0));
    let msgs = a.messages(INBOX).unwrap();
    let kw = |m: &StoredMessage| m.flags.keywords().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(kw(&msgs[0]), ["$Forwarded", "Projekt-X"]);
    assert!(msgs[0].flags.has(SystemFlag::Seen));
    assert_eq!(kw(&msgs[1]), ["Projekt-X"]);
    assert_eq!(kw(&msgs[2]), ["Important"]);
    assert!(msgs[2].flags.has(SystemFlag::Flagged));
    assert_eq!(
        kw(&a.messages("Archive").unwrap()[0]),
        ["$Forwarded", "Projekt-X"]
    );
    // Removing a keyword renames the file; a restart sees it gone.
    let mut fwd = Flags::default();
    fwd.add_keyword("$forwarded");
    a.store_flags(INBOX, &[1], FlagOp::Remove, &fwd).unwrap();
    drop(s);
    let s = Store::open_maildir(&w, dir.path()).unwrap();
    let msgs = s.mailbox(MailboxId(0)).messages(INBOX).unwrap();
    assert_eq!(kw(&msgs[0]), ["Projekt-X"]);
}

#[test]
fn maildir_frees_unused_keyword_letters_and_names_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_maildir(&world(), dir.path()).unwrap();
    s.deliver(MailboxId(0), msg("one")).unwrap();
    let a = s.mailbox(MailboxId(0));
    let one = |k: &str| {
        let mut f = Flags::default();
        f.add_keyword(k);
        f
    };
    // 40 keywords one after another on one message: letters are reused.
    for i in 0..40 {
        a.store_flags(INBOX, &[1], FlagOp::Replace, &one(&format!("k{i}")))
            .unwrap();
    }
    // 27 at once cannot be carried by a file name.
    let mut many = Flags::default();
    for i in 0..27 {
        many.add_keyword(&format!("m{i}"));
    }
    let err = a
        .store_flags(INBOX, &[1], FlagOp::Replace, &many)
        .unwrap_err();
    assert!(err.to_string().contains("26 keywords"), "{err}");
    drop(s);
    let s = Store::open_maildir(&world(), dir.path()).unwrap();
    let msgs = s.mailbox(MailboxId(0)).messages(INBOX).unwrap();
    assert_eq!(msgs[0].flags.keywords().collect::<Vec<_>>(), ["k39"]);
}

#[test]
fn expunges_are_remembered_with_their_modseq() {
    let w = world();
    let s = Store::memory(&w);
    let a = s.mailbox(MailboxId(0));
    for t in ["1", "2", "3"] {
        s.deliver(MailboxId(0), msg(t)).unwrap();
    }
    let highest = |a: &MailboxStore| a.with_folder(INBOX, |f| f.highest_modseq).unwrap();
    let before = highest(a);
    assert_eq!(
        a.with_folder(INBOX, |f| f.vanished_since(1)).unwrap(),
        VanishedSince::Known(vec![])
    );
    a.delete_messages(INBOX, &[3, 1]).unwrap();
    let since = |m| a.with_folder(INBOX, |f| f.vanished_since(m)).unwrap();
    assert_eq!(since(before), VanishedSince::Known(vec![1, 3]));
    assert_eq!(since(highest(a)), VanishedSince::Known(vec![]));
}

#[test]
fn delivery_into_a_folder_creates_and_subscribes_it() {
    let w = world();
    let s = Store::memory(&w);
    let uid = s.deliver_into(MailboxId(0), "Junk", msg("spam")).unwrap();
    assert_eq!(uid, 1);
    assert_eq!(
        s.deliver_into(MailboxId(0), "Junk", msg("more")).unwrap(),
        2
    );
    let info: Vec<_> = s.mailbox(MailboxId(0)).folders();
    let junk = info.iter().find(|f| f.name == "Junk").unwrap();
    assert_eq!((junk.exists, junk.subscribed), (2, true));
    assert_eq!(special_use("Junk"), Some("\\Junk"));
    assert_eq!(info.iter().find(|f| f.name == INBOX).unwrap().exists, 0);
}

#[test]
fn a_maildir_folder_knows_nothing_of_earlier_expunges() {
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Store::open_maildir(&w, dir.path()).unwrap();
        s.deliver(MailboxId(0), msg("1")).unwrap();
        s.deliver(MailboxId(0), msg("2")).unwrap();
        s.mailbox(MailboxId(0))
            .delete_messages(INBOX, &[1])
            .unwrap();
    }
    let s = Store::open_maildir(&w, dir.path()).unwrap();
    let a = s.mailbox(MailboxId(0));
    let (highest, early) = a
        .with_folder(INBOX, |f| (f.highest_modseq, f.vanished_since(1)))
        .unwrap();
    assert_eq!(
        early,
        VanishedSince::Unknown,
        "an old modseq: anything may be gone"
    );
    assert_eq!(
        a.with_folder(INBOX, |f| f.vanished_since(highest)).unwrap(),
        VanishedSince::Known(vec![])
    );
}
