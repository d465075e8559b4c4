//! The index against the oracle (the filter that parses every message per
//! check), over random mail and random changes of the store; and the index
//! following deliveries, deletions, expunges, folder renames and a reset.

use std::collections::BTreeSet;

use mailrig_core::Store;
use mailrig_core::store::{FlagOp, Flags, SystemFlag};

use super::filter::oracle;
use super::testing::{deliver, store};
use super::*;

const MAILBOXES: [&str; 5] = [
    "anna@kanzlei.test",
    "bernd@kanzlei.test",
    "clara@kanzlei.test",
    "user01@patente.test",
    "user02@patente.test",
];
const WORDS: [&str; 10] = [
    "Vertrag",
    "zitronenfalter",
    "Grüße",
    "PATENT",
    "frist",
    "Ärger",
    "invoice",
    "4711",
    "kanzlei",
    "ok",
];
const SENDERS: [&str; 4] = [
    "erika@extern.test",
    "Bernd@Kanzlei.test",
    "bot@mailrig.test",
    "",
];

fn pick<'a>(rng: &mut fastrand::Rng, xs: &[&'a str]) -> &'a str {
    xs[rng.usize(..xs.len())]
}

/// A message of random shape: plain, encoded subject, base64 or
/// quoted-printable body, multipart/alternative with HTML, HTML only.
fn random_message(rng: &mut fastrand::Rng) -> (String, &'static str) {
    let w = |rng: &mut fastrand::Rng| pick(rng, &WORDS);
    let from = pick(rng, &SENDERS);
    let to = pick(rng, &MAILBOXES);
    let subject = match rng.u8(..3) {
        0 => format!("{} {}", w(rng), w(rng)),
        1 => format!("=?utf-8?q?Gr=C3=BC=C3=9Fe_{}?=", w(rng)),
        _ => format!("=?utf-8?b?{}?=", base64(&format!("{} Ärger", w(rng)))),
    };
    let mut m = format!(
        "From: \"{} Person\" <{}>\nTo: {to}\nCc: clara@kanzlei.test\nSubject: {subject}\nX-Case: {}-{}\n",
        w(rng),
        if from.is_empty() {
            "anon@extern.test"
        } else {
            from
        },
        w(rng),
        rng.u16(..)
    );
    let body = format!("{} {} {}.\n", w(rng), w(rng), w(rng));
    match rng.u8(..5) {
        0 => m.push_str(&format!("\n{body}")),
        1 => m.push_str(&format!(
            "Content-Transfer-Encoding: base64\n\n{}\n",
            base64(&body)
        )),
        2 => m.push_str(&format!(
            "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n{}=\n{}\n",
            body.replace('ü', "=C3=BC").replace('Ä', "=C3=84").replace('ß', "=C3=9F"),
            w(rng)
        )),
        3 => m.push_str(&format!(
            "Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain; charset=utf-8\n\n{body}--b\nContent-Type: text/html; charset=utf-8\n\n<p>{} <b>{}</b></p>\n--b--\n",
            w(rng),
            w(rng)
        )),
        _ => m.push_str(&format!(
            "Content-Type: text/html; charset=utf-8\n\n<html><body><p>{}</p><p>{}</p></body></html>\n",
            w(rng),
            w(rng)
        )),
    }
    (m, from)
}

fn base64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A random query: one to three filters.
fn random_query(rng: &mut fastrand::Rng) -> oracle::Query {
    let mut q = oracle::Query::default();
    for _ in 0..rng.usize(1..=3) {
        let w = pick(rng, &WORDS).to_string();
        match rng.u8(..8) {
            0 => q.to = Some(pick(rng, &MAILBOXES).to_uppercase()),
            1 => q.from = Some(pick(rng, &SENDERS).to_string()),
            2 => q.subject = Some(w),
            3 => q.mailbox = Some(pick(rng, &MAILBOXES).to_string()),
            4 => q.domain = Some(pick(rng, &["kanzlei.test", "PATENTE.test", "x"]).to_string()),
            5 => q.text = Some(w.to_uppercase()),
            6 => q.header = Some(("x-case".into(), w)),
            _ => q.any = Some(w),
        }
    }
    q
}

fn filter_of(q: &oracle::Query) -> Filter {
    Filter::new(
        q.to.clone(),
        q.from.clone(),
        q.subject.clone(),
        q.mailbox.clone(),
        q.domain.clone(),
        q.text.clone(),
        q.header.as_ref().map(|(n, v)| format!("{n}: {v}")),
        q.any.clone(),
        None,
        None,
    )
    .unwrap()
}

/// Every message of the store the oracle lets through.
fn oracle_hits(store: &Store, q: &oracle::Query) -> BTreeSet<(u32, String, u32)> {
    let mut out = BTreeSet::new();
    for (id, b) in store.mailboxes() {
        for f in b.folders() {
            for m in b.messages(&f.name).unwrap() {
                if oracle::matches(q, &b.address, &m) {
                    out.insert((id.0, f.name.clone(), m.uid));
                }
            }
        }
    }
    out
}

/// Every message of the store that [`Filter::matches`] lets through when
/// each is extracted and checked on its own: the plain scan that the
/// trigram lists narrow.
fn scan_hits(store: &Store, f: &Filter) -> BTreeSet<(u32, String, u32)> {
    let mut out = BTreeSet::new();
    for (id, b) in store.mailboxes() {
        let address = b.address.to_lowercase();
        for folder in b.folders() {
            for m in b.messages(&folder.name).unwrap() {
                if f.matches(&address, m.internal_date, &Entry::extract(&m)) {
                    out.insert((id.0, folder.name.clone(), m.uid));
                }
            }
        }
    }
    out
}

/// A random change of the store: deliver, delete, expunge, copy, rename.
fn random_change(rng: &mut fastrand::Rng, store: &Store) {
    let to = pick(rng, &MAILBOXES);
    let (id, b) = store.mailboxes().find(|(_, b)| *b.address == *to).unwrap();
    let _ = id;
    let uids: Vec<u32> = b.messages("INBOX").unwrap().iter().map(|m| m.uid).collect();
    match rng.u8(..10) {
        0 if !uids.is_empty() => {
            b.delete_messages("INBOX", &[uids[rng.usize(..uids.len())]])
                .unwrap();
        }
        1 if !uids.is_empty() => {
            let flag = Flags::default().with(SystemFlag::Deleted);
            b.store_flags("INBOX", &uids[..uids.len() / 2], FlagOp::Add, &flag)
                .unwrap();
            b.expunge("INBOX", None).unwrap();
        }
        2 if !uids.is_empty() => {
            let _ = b.create_folder("Archiv");
            b.copy("INBOX", &uids[..1], "Archiv").unwrap();
        }
        3 => {
            if b.rename_folder("Archiv", "Alt").is_err() {
                let _ = b.delete_folder("Alt");
            }
        }
        _ => {
            let (raw, from) = random_message(rng);
            deliver(store, to, &raw, from);
        }
    }
}

#[test]
fn the_index_finds_what_the_oracle_finds_after_random_changes() {
    let mut rng = fastrand::Rng::with_seed(14);
    let store = store();
    let index = SearchIndex::new();
    for round in 0..300 {
        random_change(&mut rng, &store);
        if round % 3 != 0 {
            continue;
        }
        let q = random_query(&mut rng);
        let found = index.search(&store, &filter_of(&q), 0, usize::MAX);
        let got: BTreeSet<(u32, String, u32)> = found
            .hits
            .iter()
            .map(|h| (h.mailbox.0, h.folder.to_string(), h.uid))
            .collect();
        assert_eq!(got.len(), found.hits.len(), "a message listed twice");
        assert_eq!(found.total, got.len());
        assert_eq!(got, oracle_hits(&store, &q), "round {round}, {q:?}");
    }
    // Everything, newest first.
    let all = index.search(&store, &Filter::default(), 0, usize::MAX);
    assert_eq!(all.total, store.total_messages());
    let dates: Vec<_> = all
        .hits
        .iter()
        .map(|h| h.fetch(&store).unwrap().internal_date)
        .collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]), "not newest first");
}

/// Part of a random pair of words, in random case: substrings that start
/// and end inside words and span the blank, one to a dozen characters.
fn random_needle(rng: &mut fastrand::Rng) -> String {
    let pair: Vec<char> = format!("{} {}", pick(rng, &WORDS), pick(rng, &WORDS))
        .chars()
        .collect();
    let start = rng.usize(..pair.len());
    let end = rng.usize(start + 1..=pair.len().min(start + 12));
    let s: String = pair[start..end].iter().collect();
    if rng.bool() { s.to_uppercase() } else { s }
}

#[test]
fn the_trigram_narrowed_search_finds_what_the_oracle_finds_for_any_substring() {
    let mut rng = fastrand::Rng::with_seed(1414);
    let store = store();
    let index = SearchIndex::new();
    for round in 0..400 {
        random_change(&mut rng, &store);
        if round == 200 {
            // Every message removed: the index renumbers what is left.
            store.clear().unwrap();
        }
        let needle = random_needle(&mut rng);
        // The oracle joins fields with blanks where the index has line and
        // section breaks: a needle with a blank (which may span two fields
        // there) is compared with the plain scan only.
        let one_word = !needle.contains(char::is_whitespace);
        let mut q = oracle::Query::default();
        match rng.u8(..6) {
            0 => q.subject = Some(needle),
            1 => q.text = Some(needle),
            // The filter trims a header value, as the oracle does not.
            2 => {
                let name = pick(&mut rng, &["x-case", "from", "subject"]);
                q.header = Some((name.into(), needle.trim().to_string()));
            }
            3 => q.to = Some(pick(&mut rng, &MAILBOXES).to_string()),
            4 => q.from = Some(pick(&mut rng, &SENDERS).to_string()),
            _ => q.any = Some(needle),
        }
        if rng.u8(..4) == 0 {
            q.domain = Some("kanzlei.test".into());
        }
        let filter = filter_of(&q);
        let found = index.search(&store, &filter, 0, usize::MAX);
        let got: BTreeSet<(u32, String, u32)> = found
            .hits
            .iter()
            .map(|h| (h.mailbox.0, h.folder.to_string(), h.uid))
            .collect();
        assert_eq!(found.total, found.hits.len());
        assert_eq!(got, scan_hits(&store, &filter), "round {round}, {q:?}");
        if one_word {
            assert_eq!(got, oracle_hits(&store, &q), "round {round}, {q:?}");
        }
    }
    assert_eq!(index.size().messages, store.total_messages());
}

#[test]
fn a_page_is_the_newest_first_slice_of_every_match() {
    let store = store();
    for i in 0..40 {
        deliver(
            &store,
            MAILBOXES[i % 5],
            &format!("Subject: vertrag {i}\n\nfrist\n"),
            "a@b.test",
        );
    }
    let index = SearchIndex::new();
    let f = filter_of(&oracle::Query {
        text: Some("frist".into()),
        ..Default::default()
    });
    let all = index.search(&store, &f, 0, usize::MAX);
    assert_eq!(all.total, 40);
    for (offset, limit) in [(0, 7), (5, 10), (33, 10), (39, 1), (40, 5)] {
        let page = index.search(&store, &f, offset, limit);
        let end = (offset + limit).min(40);
        assert_eq!(page.total, 40);
        assert_eq!(
            page.hits,
            all.hits[offset..end],
            "offset {offset}, limit {limit}"
        );
    }
}

#[test]
fn pages_are_slices_of_the_whole_list() {
    let store = store();
    for i in 0..25 {
        deliver(
            &store,
            MAILBOXES[i % 5],
            &format!("Subject: n{i}\n\nx\n"),
            "a@b.test",
        );
    }
    let index = SearchIndex::new();
    let all = index.search(&store, &Filter::default(), 0, 100).hits;
    assert_eq!(all.len(), 25);
    let page = index.search(&store, &Filter::default(), 10, 5);
    assert_eq!((page.total, &page.hits[..]), (25, &all[10..15]));
    let only = Filter::new(
        None,
        None,
        None,
        Some("ANNA@kanzlei.test".into()),
        None,
        None,
        None,
        None,
        None,
        None,
    )
    .unwrap();
    let anna = index.search(&store, &only, 1, 2);
    assert_eq!(anna.total, 5);
    assert_eq!(anna.hits.len(), 2);
    let newest_first: Vec<u32> = index
        .search(&store, &only, 0, 10)
        .hits
        .iter()
        .map(|h| h.uid)
        .collect();
    assert_eq!(newest_first, [5, 4, 3, 2, 1]);
    assert_eq!(index.search(&store, &Filter::default(), 30, 5).hits, []);
}

#[test]
fn deletions_expunges_renames_and_a_reset_leave_the_index() {
    let store = store();
    let index = SearchIndex::new();
    let text = |w: &str| {
        Filter::new(
            None,
            None,
            None,
            None,
            None,
            Some(w.into()),
            None,
            None,
            None,
            None,
        )
        .unwrap()
    };
    let id = deliver(
        &store,
        "anna@kanzlei.test",
        "Subject: a\n\nzitronenfalter\n",
        "x@y.test",
    );
    deliver(
        &store,
        "anna@kanzlei.test",
        "Subject: b\n\nkohlweissling\n",
        "x@y.test",
    );
    assert_eq!(index.search(&store, &text("zitronenfalter"), 0, 9).total, 1);
    let b = store.mailbox(id);
    b.create_folder("Archiv").unwrap();
    b.copy("INBOX", &[1], "Archiv").unwrap();
    b.delete_messages("INBOX", &[1]).unwrap();
    let found = index.search(&store, &text("zitronenfalter"), 0, 9);
    assert_eq!(
        found.hits.iter().map(|h| &*h.folder).collect::<Vec<_>>(),
        ["Archiv"]
    );
    b.rename_folder("Archiv", "Alt").unwrap();
    let found = index.search(&store, &text("zitronenfalter"), 0, 9);
    assert_eq!(
        found.hits.iter().map(|h| &*h.folder).collect::<Vec<_>>(),
        ["Alt"]
    );
    b.delete_folder("Alt").unwrap();
    assert_eq!(index.search(&store, &text("zitronenfalter"), 0, 9).total, 0);
    let flag = Flags::default().with(SystemFlag::Deleted);
    b.store_flags("INBOX", &[2], FlagOp::Add, &flag).unwrap();
    assert_eq!(
        index.search(&store, &text("kohlweissling"), 0, 9).total,
        1,
        "flagged, not expunged"
    );
    b.expunge("INBOX", None).unwrap();
    assert_eq!(index.search(&store, &text("kohlweissling"), 0, 9).total, 0);
    deliver(
        &store,
        "bernd@kanzlei.test",
        "Subject: c\n\nx\n",
        "x@y.test",
    );
    index.sync(&store);
    assert_eq!(index.size().messages, 1);
    store.clear().unwrap();
    assert_eq!(index.search(&store, &Filter::default(), 0, 9).total, 0);
    assert_eq!(index.size(), IndexSize::default());
}

#[test]
fn a_sync_with_nothing_changed_adds_nothing() {
    let store = store();
    let index = SearchIndex::new();
    deliver(&store, "anna@kanzlei.test", "Subject: a\n\nx\n", "x@y.test");
    assert_eq!(index.sync(&store), 1);
    assert_eq!(index.sync(&store), 0);
    let flag = Flags::default().with(SystemFlag::Seen);
    store
        .mailbox(MailboxId(0))
        .store_flags("INBOX", &[1], FlagOp::Add, &flag)
        .unwrap();
    assert_eq!(index.sync(&store), 0, "a flag change is no new message");
    assert_eq!(index.size().messages, 1);
}

/// Deliveries cost the index nothing until its first query: [`follow`]
/// indexes nothing before it, and everything (also what came before) after.
#[tokio::test]
async fn follow_starts_with_the_first_query() {
    let store = std::sync::Arc::new(store());
    let index = std::sync::Arc::new(SearchIndex::new());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(follow(index.clone(), store.clone(), shutdown.clone()));
    deliver(
        &store,
        "anna@kanzlei.test",
        "Subject: one\r\n\r\nx\r\n",
        "e@x.test",
    );
    // Long enough for a following index (5 ms batching) to have synced.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(index.size().messages, 0, "indexed before any query");
    let found = index.search(&store, &Filter::default(), 0, 10);
    assert_eq!(found.total, 1);
    deliver(
        &store,
        "bernd@kanzlei.test",
        "Subject: two\r\n\r\ny\r\n",
        "e@x.test",
    );
    let mut followed = false;
    for _ in 0..200 {
        if index.size().messages == 2 {
            followed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(followed, "the index does not follow after its first query");
    shutdown.cancel();
    task.await.unwrap();
}
