//! The message store: per mailbox, folders of messages with IMAP semantics
//! (UID, UIDVALIDITY, UIDNEXT, flags, internal date, size), the raw bytes exactly
//! as received, and the SMTP envelope they came with.
//!
//! Each mailbox has its own lock, so deliveries to different mailboxes never
//! wait for each other, and its own change counter and wake-up event, so an
//! IMAP session in IDLE learns of a delivery the moment it lands. Messages are
//! always held in memory; with [`Store::open_maildir`] every change is also
//! written to a Maildir tree (see [`maildir`]) before the call returns, and the
//! tree is read back, with the same UIDs, on the next start.

pub mod expunged;
mod folders;
pub mod maildir;

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering, fence};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use parking_lot::{Mutex, MutexGuard};

use crate::signal::ChangeSignal;
use crate::world::{MailboxId, World};

pub use expunged::{Expunged, VanishedSince};
pub use folders::{Folders, Subscriptions, special_use};
pub use maildir::Maildir;

/// The name of the folder every mailbox has.
pub const INBOX: &str = "INBOX";

/// The hierarchy delimiter of folder names (as in Maildir++).
pub const DELIMITER: char = '.';

/// The SMTP envelope a message arrived with. Shared by every copy of one
/// transaction (one per target mailbox); its texts are shared further, with
/// the session (peer, HELO name) and the journal (sender, peer), since a big
/// store keeps one envelope per message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Envelope {
    /// `MAIL FROM` address; empty for the null sender `<>`.
    pub mail_from: crate::journal::Text,
    /// `RCPT TO` addresses as the client wrote them (a boxed slice: exactly
    /// as long as the list, and small, since the store keeps one envelope
    /// per message).
    pub rcpt_to: Box<[String]>,
    /// The client's address, `ip:port`.
    pub peer: crate::journal::Text,
    /// The EHLO/HELO name.
    pub helo: crate::journal::Text,
    /// The authenticated SMTP user, if any.
    pub auth_user: Option<crate::journal::Text>,
    /// Whether the transaction ran over TLS.
    pub tls: bool,
    pub received_at: DateTime<Utc>,
    /// The sender authentication results, when the receiving host checks
    /// (`sender_auth` of the scenario or host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<std::sync::Arc<crate::sender_auth::AuthResults>>,
}

/// IMAP system flags and keywords.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Flags {
    bits: u8,
    keywords: Vec<Box<str>>,
}

/// One IMAP system flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SystemFlag {
    Seen,
    Answered,
    Flagged,
    Deleted,
    Draft,
}

impl SystemFlag {
    pub const ALL: [SystemFlag; 5] = [
        SystemFlag::Answered,
        SystemFlag::Flagged,
        SystemFlag::Deleted,
        SystemFlag::Seen,
        SystemFlag::Draft,
    ];

    fn bit(self) -> u8 {
        match self {
            SystemFlag::Seen => 1,
            SystemFlag::Answered => 2,
            SystemFlag::Flagged => 4,
            SystemFlag::Deleted => 8,
            SystemFlag::Draft => 16,
        }
    }

    /// The IMAP spelling, e.g. `\Seen`.
    pub fn imap_name(self) -> &'static str {
        match self {
            SystemFlag::Seen => "\\Seen",
            SystemFlag::Answered => "\\Answered",
            SystemFlag::Flagged => "\\Flagged",
            SystemFlag::Deleted => "\\Deleted",
            SystemFlag::Draft => "\\Draft",
        }
    }

    /// The Maildir info letter.
    pub fn maildir_letter(self) -> char {
        match self {
            SystemFlag::Seen => 'S',
            SystemFlag::Answered => 'R',
            SystemFlag::Flagged => 'F',
            SystemFlag::Deleted => 'T',
            SystemFlag::Draft => 'D',
        }
    }
}

impl Flags {
    pub fn has(&self, f: SystemFlag) -> bool {
        self.bits & f.bit() != 0
    }

    pub fn set(&mut self, f: SystemFlag, on: bool) {
        if on {
            self.bits |= f.bit();
        } else {
            self.bits &= !f.bit();
        }
    }

    pub fn with(mut self, f: SystemFlag) -> Self {
        self.set(f, true);
        self
    }

    pub fn keywords(&self) -> impl Iterator<Item = &str> {
        self.keywords.iter().map(|k| &**k)
    }

    pub fn has_keyword(&self, k: &str) -> bool {
        self.keywords.iter().any(|x| x.eq_ignore_ascii_case(k))
    }

    pub fn add_keyword(&mut self, k: &str) {
        if !self.has_keyword(k) {
            self.keywords.push(k.into());
        }
    }

    pub fn remove_keyword(&mut self, k: &str) {
        self.keywords.retain(|x| !x.eq_ignore_ascii_case(k));
    }

    /// System flags set, in a fixed order.
    pub fn system(&self) -> impl Iterator<Item = SystemFlag> + '_ {
        SystemFlag::ALL.into_iter().filter(|f| self.has(*f))
    }

    /// Applies a STORE-style change.
    pub fn apply(&mut self, op: FlagOp, other: &Flags) {
        match op {
            FlagOp::Replace => *self = other.clone(),
            FlagOp::Add => {
                self.bits |= other.bits;
                for k in &other.keywords {
                    self.add_keyword(k);
                }
            }
            FlagOp::Remove => {
                self.bits &= !other.bits;
                for k in &other.keywords {
                    self.remove_keyword(k);
                }
            }
        }
    }

    /// Maildir info letters (sorted), e.g. `FS`.
    pub fn maildir_info(&self) -> String {
        let mut letters: Vec<char> = self.system().map(SystemFlag::maildir_letter).collect();
        letters.sort_unstable();
        letters.into_iter().collect()
    }

    /// Parses Maildir info letters; unknown letters are ignored.
    pub fn from_maildir_info(info: &str) -> Flags {
        let mut f = Flags::default();
        for c in info.chars() {
            if let Some(flag) = SystemFlag::ALL
                .into_iter()
                .find(|s| s.maildir_letter() == c)
            {
                f.set(flag, true);
            }
        }
        f
    }
}

/// The UIDs a flag change changed, each with its new flags.
pub type Changed = Vec<(u32, Flags)>;

/// How STORE combines flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Replace,
    Add,
    Remove,
}

/// One stored message.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub uid: u32,
    pub flags: Flags,
    pub internal_date: DateTime<Utc>,
    /// The bytes exactly as stored (with our `Return-Path:` and `Received:` on top).
    pub raw: Bytes,
    /// The SMTP envelope; `None` for messages added by IMAP APPEND or found on disk.
    pub envelope: Option<Arc<Envelope>>,
    /// Bumped on every flag change (compare with [`Folder::highest_modseq`]).
    pub modseq: u64,
    /// Base file name in the Maildir, when persisted.
    pub(crate) file: Option<Box<str>>,
}

impl StoredMessage {
    pub fn size(&self) -> usize {
        self.raw.len()
    }

    /// A message known only by its UID, without flags or bytes: one that
    /// was expunged before a session could read it, though its client had
    /// been told it exists (an IDLE session told by the server's direct
    /// fan-out); the session reports its EXPUNGE.
    pub fn expunged(uid: u32) -> StoredMessage {
        StoredMessage {
            uid,
            flags: Flags::default(),
            internal_date: DateTime::<Utc>::UNIX_EPOCH,
            raw: Bytes::new(),
            envelope: None,
            modseq: 0,
            file: None,
        }
    }
}

/// A message handed to the store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub raw: Bytes,
    pub envelope: Option<Arc<Envelope>>,
    pub flags: Flags,
    pub internal_date: DateTime<Utc>,
}

impl NewMessage {
    /// A message just received over SMTP: no flags, dated now.
    pub fn received(raw: Bytes, envelope: Arc<Envelope>) -> Self {
        NewMessage {
            raw,
            internal_date: envelope.received_at,
            envelope: Some(envelope),
            flags: Flags::default(),
        }
    }
}

/// A folder (IMAP mailbox) of one user's mailbox.
#[derive(Debug, Clone)]
pub struct Folder {
    /// Shared by every INBOX of the store (see [`folder_name`]).
    pub name: crate::journal::Text,
    pub uid_validity: u32,
    pub uid_next: u32,
    pub highest_modseq: u64,
    /// The `highest_modseq` of the latest change that was not an arrival (a
    /// flag change or an expunge): a view that caught up when the folder was
    /// at that modseq or later has only new messages to learn, and need not
    /// look at the ones it knows (an IDLE fan-out to many sessions).
    pub changed_modseq: u64,
    /// Ascending by UID.
    pub messages: Vec<StoredMessage>,
    /// Messages with a UID at or above this are `\Recent` and not yet claimed
    /// by a session (see [`MailboxStore::claim_recent`]).
    pub first_recent_uid: u32,
    /// With Maildir: the letters its file names give keywords.
    pub(crate) keyword_letters: maildir::KeywordLetters,
    /// The UIDs expunged so far with their modseqs (QRESYNC); `None` until
    /// the first expunge of a folder that started empty (boxed: most
    /// folders of a big world never expunge).
    pub(crate) expunged: Option<Box<Expunged>>,
}

impl Folder {
    fn new(name: &str, uid_validity: u32) -> Folder {
        Folder {
            name: folder_name(name),
            uid_validity,
            uid_next: 1,
            highest_modseq: 1,
            changed_modseq: 0,
            messages: Vec::new(),
            first_recent_uid: 1,
            keyword_letters: maildir::KeywordLetters::default(),
            expunged: None,
        }
    }

    /// The UIDs expunged after `modseq` (RFC 7162 §3.2.5), as far as the
    /// folder remembers.
    pub fn vanished_since(&self, modseq: u64) -> VanishedSince {
        match &self.expunged {
            Some(e) => e.since(modseq),
            None => VanishedSince::Known(Vec::new()),
        }
    }

    /// Position of a UID in `messages`.
    pub fn position(&self, uid: u32) -> Option<usize> {
        self.messages.binary_search_by_key(&uid, |m| m.uid).ok()
    }

    pub fn unseen(&self) -> usize {
        self.messages
            .iter()
            .filter(|m| !m.flags.has(SystemFlag::Seen))
            .count()
    }

    pub fn recent(&self) -> usize {
        self.messages
            .iter()
            .filter(|m| m.uid >= self.first_recent_uid)
            .count()
    }
}

/// A folder's counters, as STATUS and LIST report them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderInfo {
    pub name: String,
    pub subscribed: bool,
    pub exists: usize,
    pub recent: usize,
    pub unseen: usize,
    pub uid_validity: u32,
    pub uid_next: u32,
}

/// Errors of the store, each a sentence a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("folder '{0}' does not exist")]
    NoSuchFolder(String),
    #[error("folder '{0}' already exists")]
    FolderExists(String),
    #[error("'{name}' is not a valid folder name: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("INBOX cannot be deleted")]
    CannotDeleteInbox,
    #[error("message UID {0} does not exist")]
    NoSuchMessage(u32),
    #[error("message store I/O error at {path}: {reason}")]
    Io { path: String, reason: String },
}

/// The data of one user's mailbox, behind its lock.
#[derive(Debug, Clone)]
pub struct MailboxData {
    pub folders: Folders,
    pub subscribed: Subscriptions,
    next_uid_validity: u32,
}

impl MailboxData {
    fn new(uid_validity: u32) -> MailboxData {
        MailboxData {
            folders: Folders::one(Folder::new(INBOX, uid_validity)),
            subscribed: Subscriptions::inbox(),
            next_uid_validity: uid_validity + 1,
        }
    }

    pub fn folder(&self, name: &str) -> Result<&Folder, StoreError> {
        let key = canonical_key(name);
        self.folders
            .get(&key)
            .ok_or_else(|| StoreError::NoSuchFolder(key.into_owned()))
    }

    fn folder_mut(&mut self, name: &str) -> Result<&mut Folder, StoreError> {
        let key = canonical_key(name);
        self.folders
            .get_mut(&key)
            .ok_or_else(|| StoreError::NoSuchFolder(key.into_owned()))
    }
}

/// `INBOX` is case-insensitive; every other name is kept as given.
///
/// Peers choose these names, so the prefix is compared as bytes: a name whose
/// fifth byte is inside a multi-byte character (`INBOé`) is simply not INBOX.
pub fn canonical_name(name: &str) -> String {
    canonical_key(name).into_owned()
}

/// [`canonical_name`] without a copy when the name is canonical already
/// (every lookup of a selected folder, thousands of them in an IDLE fan-out).
fn canonical_key(name: &str) -> Cow<'_, str> {
    let (head, tail) = name.as_bytes().split_at(name.len().min(INBOX.len()));
    if head == INBOX.as_bytes() || !head.eq_ignore_ascii_case(INBOX.as_bytes()) {
        return Cow::Borrowed(name);
    }
    match tail.first() {
        // `head` is five ASCII bytes, so the rest starts on a char boundary.
        None => Cow::Borrowed(INBOX),
        Some(&b) if b == DELIMITER as u8 => Cow::Owned(format!("{INBOX}{}", &name[INBOX.len()..])),
        Some(_) => Cow::Borrowed(name),
    }
}

/// Checks a folder name so it can never reach outside its mailbox on disk.
pub fn validate_name(name: &str) -> Result<(), StoreError> {
    let bad = |reason| {
        Err(StoreError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 255 {
        return bad("it is longer than 255 bytes");
    }
    if name
        .chars()
        .any(|c| c == '/' || c == '\\' || c.is_control())
    {
        return bad("it contains '/', '\\' or a control character");
    }
    if name.split(DELIMITER).any(|part| part.is_empty()) {
        return bad("a hierarchy level is empty (leading, trailing or doubled '.')");
    }
    if name.contains('*') || name.contains('%') {
        return bad("it contains a wildcard '*' or '%'");
    }
    Ok(())
}

/// One user's mailbox: its data, lock and change notification.
#[derive(Debug)]
pub struct MailboxStore {
    /// Shared with the journal entries of the copies delivered here.
    pub address: crate::journal::Text,
    data: Mutex<MailboxData>,
    version: AtomicU64,
    changed: event_listener::Event,
    /// The store's signal, bumped with this mailbox's own.
    store_changed: Arc<ChangeSignal>,
    /// Boxed: a memory store's mailboxes need not carry its room.
    disk: Option<Box<maildir::MailboxDir>>,
}

impl MailboxStore {
    /// Read access to the whole mailbox. Hold it briefly: deliveries wait.
    pub fn lock(&self) -> MutexGuard<'_, MailboxData> {
        self.data.lock()
    }

    /// Runs `f` on one folder.
    pub fn with_folder<R>(
        &self,
        folder: &str,
        f: impl FnOnce(&Folder) -> R,
    ) -> Result<R, StoreError> {
        let data = self.data.lock();
        Ok(f(data.folder(folder)?))
    }

    /// A counter bumped by every change (delivery, flags, expunge, folders).
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// A future that completes at the next change. Create it, check
    /// [`version`](Self::version), then await it, so no change is missed.
    pub fn listen(&self) -> event_listener::EventListener {
        let listener = self.changed.listen();
        // Pairs with the fence in `bump` (see there).
        fence(Ordering::SeqCst);
        listener
    }

    fn bump(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
        // `notify` on an event nobody ever listened to would allocate its
        // listener list (about 100 bytes a mailbox, kept for good). The fence
        // pairs with the one `listen` emits after registering: either this
        // load sees the new listener, or the listener's next `version` sees
        // this change.
        fence(Ordering::SeqCst);
        if self.changed.total_listeners() > 0 {
            self.changed.notify(usize::MAX);
        }
        self.store_changed.bump();
    }

    /// Adds a message to a folder; returns (UIDVALIDITY, UID).
    pub fn append(&self, folder: &str, msg: NewMessage) -> Result<(u32, u32), StoreError> {
        let staged = match &self.disk {
            Some(d) => Some(d.stage(&msg.raw)?),
            None => None,
        };
        let mut data = self.data.lock();
        let f = data.folder_mut(folder)?;
        let uid = f.uid_next;
        let file = match (&self.disk, staged) {
            (Some(d), Some(s)) => {
                let info = match d.info(&f.name, &mut f.keyword_letters, &msg.flags, &f.messages) {
                    Ok(info) => info,
                    Err(e) => {
                        s.discard();
                        return Err(e);
                    }
                };
                Some(d.commit(&f.name, s, uid, &info)?)
            }
            _ => None,
        };
        f.uid_next += 1;
        f.highest_modseq += 1;
        let validity = f.uid_validity;
        let modseq = f.highest_modseq;
        grow_by_half(&mut f.messages);
        f.messages.push(StoredMessage {
            uid,
            flags: msg.flags,
            internal_date: msg.internal_date,
            raw: msg.raw,
            envelope: msg.envelope,
            modseq,
            file: file.clone(),
        });
        let synced = match (&self.disk, &file) {
            (Some(d), Some(file)) => Some((d, f.name.clone(), file.clone())),
            _ => None,
        };
        drop(data);
        self.bump();
        if let Some((d, folder, file)) = synced {
            d.sync_commit(&folder, &file)?;
        }
        Ok((validity, uid))
    }

    /// Changes flags of the given UIDs; returns the UIDs changed with their new flags.
    pub fn store_flags(
        &self,
        folder: &str,
        uids: &[u32],
        op: FlagOp,
        flags: &Flags,
    ) -> Result<Vec<(u32, Flags)>, StoreError> {
        self.store_flags_unchanged_since(folder, uids, op, flags, None)
            .map(|(changed, _)| changed)
    }

    /// [`MailboxStore::store_flags`] as CONDSTORE's `STORE (UNCHANGEDSINCE n)`
    /// does it (RFC 7162 §3.1.3): a message whose modseq is above `n` is left
    /// alone and returned in the second list; the check and the change are
    /// one step under the lock, so no other session can slip in between.
    pub fn store_flags_unchanged_since(
        &self,
        folder: &str,
        uids: &[u32],
        op: FlagOp,
        flags: &Flags,
        unchanged_since: Option<u64>,
    ) -> Result<(Changed, Vec<u32>), StoreError> {
        let mut data = self.data.lock();
        let f = data.folder_mut(folder)?;
        let mut out = Vec::new();
        let mut modified = Vec::new();
        for &uid in uids {
            let Some(pos) = f.position(uid) else { continue };
            if unchanged_since.is_some_and(|n| f.messages[pos].modseq > n) {
                modified.push(uid);
                continue;
            }
            let mut new = f.messages[pos].flags.clone();
            new.apply(op, flags);
            if new != f.messages[pos].flags {
                if let (Some(d), Some(file)) = (&self.disk, &f.messages[pos].file) {
                    let info = d.info(&f.name, &mut f.keyword_letters, &new, &f.messages)?;
                    let renamed = d.set_flags(&f.name, file, &info)?;
                    f.messages[pos].file = Some(renamed);
                }
                f.highest_modseq += 1;
                f.changed_modseq = f.highest_modseq;
                f.messages[pos].modseq = f.highest_modseq;
                f.messages[pos].flags = new.clone();
                out.push((uid, new));
            }
        }
        drop(data);
        if !out.is_empty() {
            self.bump();
        }
        Ok((out, modified))
    }

    /// Removes messages flagged `\Deleted` (only those in `only`, when given);
    /// returns the removed UIDs, ascending.
    pub fn expunge(&self, folder: &str, only: Option<&[u32]>) -> Result<Vec<u32>, StoreError> {
        let mut data = self.data.lock();
        let f = data.folder_mut(folder)?;
        let mut gone = Vec::new();
        let mut err = None;
        let disk = &self.disk;
        let name = f.name.clone();
        let chosen = |m: &StoredMessage| {
            m.flags.has(SystemFlag::Deleted) && only.is_none_or(|o| o.contains(&m.uid))
        };
        // UIDNEXT is on disk before any file goes, so that a crash between the
        // two cannot make the next start hand an expunged UID out again.
        if let Some(d) = disk
            && f.messages.iter().any(chosen)
        {
            d.save_counters(&name, f.uid_validity, f.uid_next)?;
        }
        f.messages.retain(|m| {
            let chosen = chosen(m);
            if chosen {
                if let (Some(d), Some(file)) = (disk, &m.file)
                    && let Err(e) = d.remove(&name, file)
                {
                    err.get_or_insert(e);
                    return true;
                }
                gone.push(m.uid);
            }
            !chosen
        });
        if !gone.is_empty() {
            f.highest_modseq += 1;
            f.changed_modseq = f.highest_modseq;
            let modseq = f.highest_modseq;
            f.expunged
                .get_or_insert_with(Default::default)
                .record(&gone, modseq);
        }
        drop(data);
        if !gone.is_empty() {
            self.bump();
        }
        match err {
            Some(e) => Err(e),
            None => Ok(gone),
        }
    }

    /// Removes the given messages regardless of flags (control API, prober clean-up).
    pub fn delete_messages(&self, folder: &str, uids: &[u32]) -> Result<Vec<u32>, StoreError> {
        self.store_flags(
            folder,
            uids,
            FlagOp::Add,
            &Flags::default().with(SystemFlag::Deleted),
        )?;
        self.expunge(folder, Some(uids))
    }

    /// Copies messages to another folder; returns (destination UIDVALIDITY, [(source UID, new UID)]).
    pub fn copy(
        &self,
        from: &str,
        uids: &[u32],
        to: &str,
    ) -> Result<(u32, Vec<(u32, u32)>), StoreError> {
        let copies: Vec<StoredMessage> = {
            let data = self.data.lock();
            let src = data.folder(from)?;
            data.folder(to)?;
            uids.iter()
                .filter_map(|u| src.position(*u).map(|p| src.messages[p].clone()))
                .collect()
        };
        let mut pairs = Vec::with_capacity(copies.len());
        let mut validity = 0;
        for m in copies {
            let (v, new_uid) = self.append(
                to,
                NewMessage {
                    raw: m.raw,
                    envelope: m.envelope,
                    flags: m.flags,
                    internal_date: m.internal_date,
                },
            )?;
            validity = v;
            pairs.push((m.uid, new_uid));
        }
        if validity == 0 {
            validity = self.data.lock().folder(to)?.uid_validity;
        }
        Ok((validity, pairs))
    }

    /// Claims the `\Recent` messages of a folder for one session: returns their
    /// UIDs; later claims do not see them again.
    pub fn claim_recent(&self, folder: &str) -> Result<Vec<u32>, StoreError> {
        let mut data = self.data.lock();
        let f = data.folder_mut(folder)?;
        let first = f.first_recent_uid;
        f.first_recent_uid = f.uid_next;
        Ok(f.messages
            .iter()
            .filter(|m| m.uid >= first)
            .map(|m| m.uid)
            .collect())
    }

    /// Creates a folder (and its missing parents, as IMAP CREATE does).
    pub fn create_folder(&self, name: &str) -> Result<(), StoreError> {
        let name = canonical_name(name);
        validate_name(&name)?;
        let mut data = self.data.lock();
        if data.folders.contains_key(&name) {
            return Err(StoreError::FolderExists(name));
        }
        let mut path = String::new();
        for part in name.split(DELIMITER) {
            if !path.is_empty() {
                path.push(DELIMITER);
            }
            path.push_str(part);
            if !data.folders.contains_key(&path) {
                let validity = data.next_uid_validity;
                data.next_uid_validity += 1;
                if let Some(d) = &self.disk {
                    d.create_folder(&path, validity)?;
                }
                data.folders.insert(Folder::new(&path, validity));
            }
        }
        drop(data);
        self.bump();
        Ok(())
    }

    pub fn delete_folder(&self, name: &str) -> Result<(), StoreError> {
        let name = canonical_name(name);
        if name == INBOX {
            return Err(StoreError::CannotDeleteInbox);
        }
        let mut data = self.data.lock();
        if !data.folders.contains_key(&name) {
            return Err(StoreError::NoSuchFolder(name));
        }
        if let Some(d) = &self.disk {
            d.delete_folder(&name)?;
        }
        data.folders.remove(&name);
        // The subscription stays: "a server MUST NOT unilaterally remove an
        // existing mailbox name from the subscription list" (RFC 3501 §6.3.6);
        // LIST (SUBSCRIBED) shows it as \NonExistent.
        drop(data);
        self.bump();
        Ok(())
    }

    /// Renames a folder and its children. Renaming INBOX moves its messages
    /// into the new folder and leaves INBOX empty (RFC 3501).
    pub fn rename_folder(&self, from: &str, to: &str) -> Result<(), StoreError> {
        let from = canonical_name(from);
        let to = canonical_name(to);
        validate_name(&to)?;
        if from == INBOX {
            self.create_folder(&to)?;
            let uids: Vec<u32> =
                self.with_folder(INBOX, |f| f.messages.iter().map(|m| m.uid).collect())?;
            self.copy(INBOX, &uids, &to)?;
            self.delete_messages(INBOX, &uids)?;
            return Ok(());
        }
        let mut data = self.data.lock();
        if !data.folders.contains_key(&from) {
            return Err(StoreError::NoSuchFolder(from));
        }
        if data.folders.contains_key(&to) {
            return Err(StoreError::FolderExists(to));
        }
        let prefix = format!("{from}{DELIMITER}");
        let moving: Vec<String> = data
            .folders
            .keys()
            .filter(|k| *k == from || k.starts_with(&prefix))
            .map(str::to_string)
            .collect();
        for old in moving {
            let new = format!("{to}{}", &old[from.len()..]);
            if let Some(d) = &self.disk {
                d.rename_folder(&old, &new)?;
            }
            if let Some(mut f) = data.folders.remove(&old) {
                f.name = folder_name(&new);
                data.folders.insert(f);
            }
            if data.subscribed.remove(&old) {
                data.subscribed.insert(new);
            }
        }
        drop(data);
        self.bump();
        Ok(())
    }

    pub fn subscribe(&self, name: &str, on: bool) -> Result<(), StoreError> {
        let name = canonical_name(name);
        let mut data = self.data.lock();
        if on {
            validate_name(&name)?;
            data.subscribed.insert(name);
        } else {
            data.subscribed.remove(&name);
        }
        Ok(())
    }

    /// What the mailbox holds over all its folders (its quota usage).
    pub fn usage(&self) -> crate::world::Usage {
        let data = self.data.lock();
        let mut u = crate::world::Usage::default();
        for f in data.folders.values() {
            u.messages += f.messages.len() as u64;
            u.bytes += f.messages.iter().map(|m| m.size() as u64).sum::<u64>();
        }
        u
    }

    /// Every folder with its counters, in name order.
    pub fn folders(&self) -> Vec<FolderInfo> {
        let data = self.data.lock();
        data.folders
            .values()
            .map(|f| FolderInfo {
                name: f.name.to_string(),
                subscribed: data.subscribed.contains(&f.name),
                exists: f.messages.len(),
                recent: f.recent(),
                unseen: f.unseen(),
                uid_validity: f.uid_validity,
                uid_next: f.uid_next,
            })
            .collect()
    }

    /// A copy of every message in a folder (raw bytes are shared, not copied).
    pub fn messages(&self, folder: &str) -> Result<Vec<StoredMessage>, StoreError> {
        self.with_folder(folder, |f| f.messages.clone())
    }

    /// Deletes every message of every folder; UIDs keep counting up.
    pub fn clear(&self) -> Result<usize, StoreError> {
        let names: Vec<String> = self
            .data
            .lock()
            .folders
            .keys()
            .map(str::to_string)
            .collect();
        let mut n = 0;
        for name in names {
            let uids: Vec<u32> =
                self.with_folder(&name, |f| f.messages.iter().map(|m| m.uid).collect())?;
            n += self.delete_messages(&name, &uids)?.len();
        }
        Ok(n)
    }
}

/// All mailboxes of a world.
#[derive(Debug)]
pub struct Store {
    boxes: Vec<MailboxStore>,
    maildir: Option<Maildir>,
    /// Bumped by every change of any mailbox.
    changed: Arc<ChangeSignal>,
}

impl Store {
    /// An in-memory store with an empty INBOX per mailbox of the world.
    pub fn memory(world: &World) -> Store {
        let validity = initial_uid_validity();
        let changed = Arc::new(ChangeSignal::new());
        Store {
            boxes: world
                .mailboxes
                .iter()
                .map(|m| MailboxStore {
                    address: m.address_text(),
                    data: Mutex::new(MailboxData::new(validity)),
                    version: AtomicU64::new(0),
                    changed: event_listener::Event::new(),
                    store_changed: changed.clone(),
                    disk: None,
                })
                .collect(),
            maildir: None,
            changed,
        }
    }

    /// A store persisted under `dir` as `dir/<domain>/<local>/{tmp,new,cur}`;
    /// messages already there are loaded with their UIDs.
    pub fn open_maildir(world: &World, dir: &Path) -> Result<Store, StoreError> {
        let maildir = Maildir::new(dir);
        let mut boxes = Vec::with_capacity(world.mailboxes.len());
        let changed = Arc::new(ChangeSignal::new());
        for m in &world.mailboxes {
            let disk = maildir.mailbox(m.address.domain(), m.address.local())?;
            let data = disk.load(initial_uid_validity())?;
            boxes.push(MailboxStore {
                address: m.address_text(),
                data: Mutex::new(data),
                version: AtomicU64::new(0),
                changed: event_listener::Event::new(),
                store_changed: changed.clone(),
                disk: Some(Box::new(disk)),
            });
        }
        Ok(Store {
            boxes,
            maildir: Some(maildir),
            changed,
        })
    }

    /// The change counter of the whole store: bumped by every change of any
    /// mailbox (delivery, flags, expunge, folders). Wait on it as on
    /// [`MailboxStore::listen`].
    pub fn changes(&self) -> &ChangeSignal {
        &self.changed
    }

    pub fn maildir_root(&self) -> Option<&Path> {
        self.maildir.as_ref().map(|m| m.root())
    }

    pub fn mailbox(&self, id: MailboxId) -> &MailboxStore {
        &self.boxes[id.index()]
    }

    pub fn mailboxes(&self) -> impl Iterator<Item = (MailboxId, &MailboxStore)> {
        self.boxes
            .iter()
            .enumerate()
            .map(|(i, b)| (MailboxId(i as u32), b))
    }

    /// Stores a received message into a mailbox's INBOX; returns its UID.
    pub fn deliver(&self, id: MailboxId, msg: NewMessage) -> Result<u32, StoreError> {
        self.mailbox(id).append(INBOX, msg).map(|(_, uid)| uid)
    }

    /// Stores a received message into another folder of a mailbox (a
    /// `misfile` fault: what a spam filter or a Sieve rule does), creating
    /// and subscribing the folder first if it is missing (its special-use
    /// attribute follows from its name: `Junk` is `\Junk`); returns its UID.
    pub fn deliver_into(
        &self,
        id: MailboxId,
        folder: &str,
        msg: NewMessage,
    ) -> Result<u32, StoreError> {
        let mb = self.mailbox(id);
        if mb.with_folder(folder, |_| ()).is_err() {
            match mb.create_folder(folder) {
                Ok(()) | Err(StoreError::FolderExists(_)) => {}
                Err(e) => return Err(e),
            }
            mb.subscribe(folder, true)?;
        }
        mb.append(folder, msg).map(|(_, uid)| uid)
    }

    /// Number of messages in all folders of all mailboxes.
    pub fn total_messages(&self) -> usize {
        self.boxes
            .iter()
            .map(|b| {
                b.lock()
                    .folders
                    .values()
                    .map(|f| f.messages.len())
                    .sum::<usize>()
            })
            .sum()
    }

    /// Empties every mailbox.
    pub fn clear(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        for b in &self.boxes {
            n += b.clear()?;
        }
        Ok(n)
    }
}

/// Makes room for one more message, growing a full folder by half (at least
/// one) instead of `Vec`'s doubling from four: most folders of a big world hold
/// one or two messages, and the three empty slots `push` would add to a folder
/// of one cost over 300 bytes.
fn grow_by_half(messages: &mut Vec<StoredMessage>) {
    if messages.len() == messages.capacity() {
        messages.reserve_exact((messages.len() / 2).max(1));
    }
}

/// A folder's name as the store keeps it: every mailbox has an INBOX, and
/// a big world's 100,000 of them share one copy of the name.
pub(crate) fn folder_name(name: &str) -> crate::journal::Text {
    static INBOX_NAME: std::sync::LazyLock<crate::journal::Text> =
        std::sync::LazyLock::new(|| INBOX.into());
    if name == INBOX {
        INBOX_NAME.clone()
    } else {
        name.into()
    }
}

/// UIDVALIDITY for new folders: seconds since the epoch, as Dovecot does, so a
/// re-created store never reuses an old value.
fn initial_uid_validity() -> u32 {
    let secs = Utc::now().timestamp();
    u32::try_from(secs).unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests;
