//! The search index: every stored message of every mailbox and folder,
//! newest first, with what the list and search filters look at extracted
//! once (see [`entry`]) — so that `GET /api/v1/messages` and
//! `GET /api/v1/messages/wait` answer from memory without parsing a
//! message, with 100,000 messages stored.
//!
//! The index is a view of the [`Store`], not a second store: it holds the
//! same raw bytes (shared `Bytes`), and it follows the store by comparing,
//! per mailbox, the store's change counter with the one it last saw. A
//! mailbox that changed is diffed by UID (both sides are ascending): new
//! messages are extracted, expunged, deleted or reset ones dropped, a folder
//! renamed or re-created (new UIDVALIDITY) is taken as gone and new. Every
//! query calls [`SearchIndex::sync`] first, so it sees every delivery that
//! finished before it, and [`follow`] runs the same sync in the background
//! as mail arrives, so a query seldom has more than a few messages to add.
//!
//! A query with text to look for (body, subject, sender, recipient, a
//! header value, free text) or a mailbox or domain first asks the
//! [`trigram`] posting lists (and the mailbox of each message) which
//! messages can match at all, and checks only those with the same
//! [`Filter::matches`] a scan would use; so the results are the scan's, a
//! scan is what is left for a query that narrows nothing (a date window,
//! a one- or two-letter word). The matches are ordered newest first by
//! selecting the page, not sorting them all.
//!
//! The index costs nothing until it is first used: [`follow`] starts
//! following only after the first query. Extracting a message's text is
//! most of a delivery's CPU time for large messages (100 KiB: 1.07 of 1.50
//! million instructions per message, measured with
//! `scripts/bench-callgrind.sh --size 102400 --top`, before the trigram
//! lists, which cost more), and a server under a throughput benchmark, or
//! one that only speaks SMTP and IMAP to the test, never asks the HTTP API
//! for a list.
//!
//! Why here and not in `mailrig-core`: the store's job is IMAP semantics and
//! persistence; what a search shows (decoded subject, text of the body,
//! HTML as text) needs mail-parser, which only the server's views use, and
//! the core stays free of it. No store code knows the index exists.

pub mod entry;
pub mod filter;
pub mod trigram;

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use mailrig_core::Store;
use mailrig_core::store::StoredMessage;
use mailrig_core::world::MailboxId;
use parking_lot::Mutex;

pub use entry::Entry;
use filter::Requirement;
pub use filter::{BadHeaderFilter, Filter};
use trigram::{DocId, Space, Trigrams};

/// Where a message is in the order: newest first, then by mailbox, folder
/// and newest UID (unique: a UID is unique within a folder).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    newest: Reverse<i64>,
    mailbox: u32,
    folder: u32,
    uid: Reverse<u32>,
}

/// One indexed message, numbered by its [`DocId`].
#[derive(Debug)]
struct Indexed {
    key: Key,
    date: DateTime<Utc>,
    entry: Entry,
}

/// One folder as the index last saw it.
#[derive(Debug)]
struct SeenFolder {
    folder: u32,
    uid_validity: u32,
    /// (UID, date key), ascending by UID.
    messages: Vec<(u32, i64)>,
}

/// One mailbox as the index last saw it.
#[derive(Debug, Default)]
struct SeenMailbox {
    /// The store's change counter then; `None` before the first look.
    version: Option<u64>,
    folders: Vec<SeenFolder>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Every message, newest first: its number.
    order: BTreeMap<Key, DocId>,
    /// The messages by number; `None`: removed since the last compaction.
    docs: Vec<Option<Indexed>>,
    /// The mailbox of each number (its index), for the mailbox filters.
    doc_mailbox: Vec<u32>,
    /// The `Some` entries of `docs`.
    live: usize,
    trigrams: Trigrams,
    /// Per mailbox of the store: its lowercased address and what was seen.
    mailboxes: Vec<(String, SeenMailbox)>,
    /// Folder names by id, and ids by name.
    folder_names: Vec<Arc<str>>,
    folder_ids: HashMap<Arc<str>, u32>,
}

impl Inner {
    /// Numbers and indexes a new message.
    fn insert(&mut self, key: Key, date: DateTime<Utc>, entry: Entry) {
        let id = self.docs.len() as DocId;
        let headers: Vec<Vec<u8>> = entry.header_values().collect();
        self.trigrams.add(
            id,
            std::iter::once((Space::Text, entry.text().as_bytes()))
                .chain(headers.iter().map(|h| (Space::Header, &h[..]))),
        );
        self.docs.push(Some(Indexed { key, date, entry }));
        self.doc_mailbox.push(key.mailbox);
        self.live += 1;
        if let Some(old) = self.order.insert(key, id) {
            self.remove_doc(old);
        }
    }

    fn remove(&mut self, key: &Key) {
        if let Some(id) = self.order.remove(key) {
            self.remove_doc(id);
        }
    }

    fn remove_doc(&mut self, id: DocId) {
        if self.docs[id as usize].take().is_some() {
            self.live -= 1;
        }
    }

    /// Renumbers the messages once more were removed than are left, so
    /// the posting lists of removed ones do not pile up (each compaction
    /// follows as many removals as it keeps messages).
    fn compact_if_sparse(&mut self) {
        if self.docs.len() - self.live <= self.live {
            return;
        }
        let mut new_id = Vec::with_capacity(self.docs.len());
        let mut docs = Vec::with_capacity(self.live);
        let mut doc_mailbox = Vec::with_capacity(self.live);
        for d in std::mem::take(&mut self.docs) {
            new_id.push(d.map(|d| {
                doc_mailbox.push(d.key.mailbox);
                docs.push(Some(d));
                (docs.len() - 1) as DocId
            }));
        }
        for id in self.order.values_mut() {
            *id = new_id[*id as usize].expect("an ordered message is live");
        }
        self.trigrams.compact(&new_id);
        self.docs = docs;
        self.doc_mailbox = doc_mailbox;
    }

    /// The numbers of the live messages stored in a mailbox for which
    /// `ok` (by mailbox index) holds, ascending.
    fn docs_in(&self, ok: &[bool]) -> Vec<DocId> {
        self.doc_mailbox
            .iter()
            .enumerate()
            .filter(|&(id, &m)| ok[m as usize] && self.docs[id].is_some())
            .map(|(id, _)| id as DocId)
            .collect()
    }

    /// The messages that can match, ascending (every one checked with
    /// [`Filter::matches`] after); `None`: the filter narrows nothing.
    fn candidates(&self, filter: &Filter) -> Option<Vec<DocId>> {
        let mut out: Option<Vec<DocId>> = None;
        let boxes = |t: &filter::MailboxTest| -> Vec<bool> {
            self.mailboxes.iter().map(|(a, _)| t.passes(a)).collect()
        };
        for r in filter.requirements() {
            let found = match r {
                Requirement::Text(n) => self.trigrams.candidates(Space::Text, n),
                Requirement::Header(n) => self.trigrams.candidates(Space::Header, n),
                Requirement::Mailbox(t) => Some(self.docs_in(&boxes(&t))),
                Requirement::TextOrMailbox(n, t) => {
                    self.trigrams.candidates(Space::Text, n).map(|text| {
                        let ok = boxes(&t);
                        if ok.contains(&true) {
                            trigram::union(&text, &self.docs_in(&ok))
                        } else {
                            text
                        }
                    })
                }
            };
            if let Some(found) = found {
                out = Some(match out {
                    None => found,
                    Some(before) => trigram::intersect(&before, found.into_iter()),
                });
            }
        }
        out
    }

    fn folder_id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.folder_ids.get(name) {
            return id;
        }
        let id = self.folder_names.len() as u32;
        let name: Arc<str> = name.into();
        self.folder_names.push(name.clone());
        self.folder_ids.insert(name, id);
        id
    }
}

/// A message a query found: where to fetch it from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub mailbox: MailboxId,
    pub folder: Arc<str>,
    pub uid: u32,
}

impl Hit {
    /// The stored message, if it is still there.
    pub fn fetch(&self, store: &Store) -> Option<StoredMessage> {
        store
            .mailbox(self.mailbox)
            .with_folder(&self.folder, |f| {
                f.position(self.uid).map(|p| f.messages[p].clone())
            })
            .ok()
            .flatten()
    }
}

/// One page of what a query found.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// Matching messages in all.
    pub total: usize,
    /// From `offset`, at most `limit`, newest first.
    pub hits: Vec<Hit>,
}

/// How much the index holds, for the memory figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexSize {
    pub messages: usize,
    /// Bytes of the entries beyond the raw messages they share with the store.
    pub entry_bytes: usize,
    /// Bytes of the trigram posting lists.
    pub posting_bytes: usize,
}

/// The index over one store; see the module documentation.
#[derive(Debug, Default)]
pub struct SearchIndex {
    inner: Mutex<Inner>,
    /// Set by the first query; [`follow`] waits for it.
    used: std::sync::atomic::AtomicBool,
    first_use: tokio::sync::Notify,
}

fn date_key(d: DateTime<Utc>) -> i64 {
    d.timestamp_micros()
}

impl SearchIndex {
    pub fn new() -> SearchIndex {
        SearchIndex::default()
    }

    /// Brings the index up to date with every change the store finished
    /// before this call. Returns the number of messages added.
    pub fn sync(&self, store: &Store) -> usize {
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        if inner.mailboxes.is_empty() {
            inner.mailboxes = store
                .mailboxes()
                .map(|(_, b)| (b.address.to_lowercase(), SeenMailbox::default()))
                .collect();
        }
        let mut added = 0;
        for (id, b) in store.mailboxes() {
            // Read before the lock: a change after it makes the next sync look again.
            let version = b.version();
            if inner.mailboxes[id.index()].1.version == Some(version) {
                continue;
            }
            let mut old = std::mem::take(&mut inner.mailboxes[id.index()].1.folders);
            let mut seen = Vec::new();
            let mut fresh: Vec<(u32, StoredMessage)> = Vec::new();
            let mut gone: Vec<Key> = Vec::new();
            {
                let data = b.lock();
                for f in data.folders.values() {
                    let folder = inner.folder_id(&f.name);
                    let before = old
                        .iter()
                        .position(|s| s.folder == folder && s.uid_validity == f.uid_validity)
                        .map(|i| old.swap_remove(i).messages)
                        .unwrap_or_default();
                    let mut now = Vec::with_capacity(f.messages.len());
                    let mut before = before.into_iter().peekable();
                    for m in &f.messages {
                        while let Some(&(uid, date)) = before.peek() {
                            if uid >= m.uid {
                                break;
                            }
                            gone.push(key(id, folder, uid, date));
                            before.next();
                        }
                        match before.peek() {
                            Some(&(uid, date)) if uid == m.uid => {
                                now.push((uid, date));
                                before.next();
                            }
                            _ => {
                                now.push((m.uid, date_key(m.internal_date)));
                                fresh.push((folder, m.clone()));
                            }
                        }
                    }
                    gone.extend(before.map(|(uid, date)| key(id, folder, uid, date)));
                    seen.push(SeenFolder {
                        folder,
                        uid_validity: f.uid_validity,
                        messages: now,
                    });
                }
            }
            for f in old {
                gone.extend(
                    f.messages
                        .iter()
                        .map(|&(uid, date)| key(id, f.folder, uid, date)),
                );
            }
            for k in gone {
                inner.remove(&k);
            }
            added += fresh.len();
            for (folder, m) in fresh {
                inner.insert(
                    key(id, folder, m.uid, date_key(m.internal_date)),
                    m.internal_date,
                    Entry::extract(&m),
                );
            }
            inner.mailboxes[id.index()].1 = SeenMailbox {
                version: Some(version),
                folders: seen,
            };
        }
        inner.compact_if_sparse();
        added
    }

    /// The messages that match, newest first: the total and the page from
    /// `offset` of at most `limit`. Syncs first.
    pub fn search(&self, store: &Store, filter: &Filter, offset: usize, limit: usize) -> Found {
        if !self.used.swap(true, std::sync::atomic::Ordering::AcqRel) {
            self.first_use.notify_one();
        }
        self.sync(store);
        let inner = self.inner.lock();
        let hit = |k: &Key| Hit {
            mailbox: MailboxId(k.mailbox),
            folder: inner.folder_names[k.folder as usize].clone(),
            uid: k.uid.0,
        };
        if filter.is_empty() {
            return Found {
                total: inner.order.len(),
                hits: inner
                    .order
                    .keys()
                    .skip(offset)
                    .take(limit)
                    .map(hit)
                    .collect(),
            };
        }
        let mut keys = Vec::new();
        let mut check = |d: &Indexed| {
            let mailbox = &inner.mailboxes[d.key.mailbox as usize].0;
            if filter.matches(mailbox, d.date, &d.entry) {
                keys.push(d.key);
            }
        };
        match inner.candidates(filter) {
            Some(ids) => ids
                .iter()
                .filter_map(|&id| inner.docs[id as usize].as_ref())
                .for_each(&mut check),
            None => inner.docs.iter().flatten().for_each(&mut check),
        }
        let total = keys.len();
        // Only the messages up to the page's end need their order.
        let end = offset.saturating_add(limit).min(total);
        if end < total {
            keys.select_nth_unstable(end);
        }
        keys.truncate(end);
        keys.sort_unstable();
        Found {
            total,
            hits: keys.iter().skip(offset).map(hit).collect(),
        }
    }

    /// How many messages the index holds and the bytes of their entries.
    pub fn size(&self) -> IndexSize {
        let inner = self.inner.lock();
        IndexSize {
            messages: inner.order.len(),
            entry_bytes: inner
                .docs
                .iter()
                .flatten()
                .map(|d| d.entry.heap_size())
                .sum(),
            posting_bytes: inner.trigrams.heap_size(),
        }
    }
}

fn key(mailbox: MailboxId, folder: u32, uid: u32, date: i64) -> Key {
    Key {
        newest: Reverse(date),
        mailbox: mailbox.0,
        folder,
        uid: Reverse(uid),
    }
}

/// Keeps `index` in step with `store` in the background until `shutdown`,
/// from the first query on (see the module documentation):
/// after each change of the store (gathered for a few milliseconds, so a
/// burst of deliveries is one sync), the sync runs on the blocking pool.
pub async fn follow(
    index: Arc<SearchIndex>,
    store: Arc<Store>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    // Until the first query, deliveries cost the index nothing.
    if !index.used.load(std::sync::atomic::Ordering::Acquire) {
        tokio::select! {
            _ = index.first_use.notified() => {}
            _ = shutdown.cancelled() => return,
        }
    }
    let mut seen = None;
    loop {
        let changed = store.changes().listen();
        let version = store.changes().version();
        if seen != Some(version) {
            seen = Some(version);
            let (index, store) = (index.clone(), store.clone());
            if tokio::task::spawn_blocking(move || index.sync(&store))
                .await
                .is_err()
            {
                return;
            }
            continue;
        }
        tokio::select! {
            _ = changed => {}
            _ = shutdown.cancelled() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(5)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A small world to index in unit tests.
    use std::sync::Arc;

    use bytes::Bytes;
    use chrono::Utc;
    use mailrig_core::store::NewMessage;
    use mailrig_core::world::MailboxId;
    use mailrig_core::{Envelope, Scenario, Store};

    pub fn store() -> Store {
        let s = Scenario::parse(
            include_str!("../../../mailrig-core/catalog/kanzlei.toml"),
            "kanzlei",
        )
        .unwrap();
        Store::memory(&s.world)
    }

    /// Delivers `raw` (`\n` line ends) to a mailbox of `store` from `from`.
    pub fn deliver(store: &Store, to: &str, raw: &str, from: &str) -> MailboxId {
        let (id, _) = store
            .mailboxes()
            .find(|(_, b)| *b.address == *to)
            .expect("a mailbox of the kanzlei world");
        let envelope = Envelope {
            mail_from: from.into(),
            rcpt_to: vec![format!("<{to}>")].into(),
            peer: "127.0.0.1:1".into(),
            helo: "client".into(),
            auth_user: None,
            tls: false,
            received_at: Utc::now(),
            auth: None,
        };
        let msg = NewMessage::received(Bytes::from(raw.replace('\n', "\r\n")), Arc::new(envelope));
        store.deliver(id, msg).unwrap();
        id
    }
}

#[cfg(test)]
mod tests;
