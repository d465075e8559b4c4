//! Maildir persistence for the store.
//!
//! Layout: `ROOT/<domain>/<localpart>/{tmp,new,cur}` is a user's INBOX and
//! `ROOT/<domain>/<localpart>/.<Folder>/{tmp,new,cur}` the other folders
//! (Maildir++, `.` as hierarchy delimiter), which Dovecot and mutt read as they
//! are. A message is written to `tmp/`, fsynced, and renamed into `new/` (or
//! `cur/` when it carries flags), and both directories are fsynced, before the
//! store call returns, so nothing acknowledged with 250 is lost on a crash.
//!
//! UIDs survive restarts because each file name carries its UID (`,U=<uid>`, a
//! field Maildir readers ignore); a small `mailrig-uidlist` file per folder
//! keeps UIDVALIDITY and UIDNEXT so UIDs are never reused after an expunge. It
//! is written (and fsynced) before an expunged message's file is unlinked, so
//! a crash between the two cannot hand the expunged UID out again.
//!
//! IMAP keywords are kept the way Dovecot keeps them: each folder's
//! `dovecot-keywords` file maps up to 26 keywords to the letters `a`..`z`
//! (a line `N name` gives `name` the letter `a`+N), and a message's letters
//! follow its system flags in the file name (`:2,Sab`). A letter no message
//! uses any more is given to the next new keyword when all 26 are taken.
//! Messages are stored byte for byte as received (CRLF line ends).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::{
    DELIMITER, Flags, Folder, INBOX, MailboxData, StoreError, StoredMessage, validate_name,
};

const COUNTERS: &str = "mailrig-uidlist";
const KEYWORDS: &str = "dovecot-keywords";

/// Keywords a folder can carry in file names: the letters `a`..`z`.
pub const MAX_KEYWORDS: usize = 26;

/// One folder's keyword letters (the contents of `dovecot-keywords`):
/// index N is the keyword of letter `a`+N.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeywordLetters(Vec<Option<Box<str>>>);

impl KeywordLetters {
    /// Reads `N name` lines; lines that are not of that form are ignored.
    fn parse(text: &str) -> KeywordLetters {
        let mut t = KeywordLetters::default();
        for line in text.lines() {
            let Some((n, name)) = line.split_once(' ') else {
                continue;
            };
            let Ok(n) = n.parse::<usize>() else { continue };
            if n >= MAX_KEYWORDS || name.is_empty() || name.contains(char::is_whitespace) {
                continue;
            }
            if t.0.len() <= n {
                t.0.resize(n + 1, None);
            }
            t.0[n] = Some(name.into());
        }
        t
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for (i, k) in self.0.iter().enumerate() {
            if let Some(k) = k {
                out.push_str(&format!("{i} {k}\n"));
            }
        }
        out
    }

    fn letter(&self, keyword: &str) -> Option<char> {
        self.0
            .iter()
            .position(|k| {
                k.as_deref()
                    .is_some_and(|k| k.eq_ignore_ascii_case(keyword))
            })
            .map(letter)
    }

    fn keyword(&self, letter: char) -> Option<&str> {
        let i = (letter as usize).checked_sub('a' as usize)?;
        self.0.get(i)?.as_deref()
    }
}

fn letter(index: usize) -> char {
    char::from(b'a' + index as u8)
}

/// The root of a Maildir tree.
#[derive(Debug)]
pub struct Maildir {
    root: PathBuf,
    namer: Arc<Namer>,
}

#[derive(Debug)]
struct Namer {
    counter: AtomicU64,
    pid: u32,
}

impl Namer {
    fn unique(&self) -> String {
        let now = Utc::now();
        let q = self.counter.fetch_add(1, Ordering::Relaxed);
        format!(
            "{}.M{}P{}Q{}.mailrig",
            now.timestamp(),
            now.timestamp_subsec_micros(),
            self.pid,
            q
        )
    }
}

fn io_err(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Makes a directory's entries (a rename into it, a new file) durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

/// Replaces `path` with `text` so that a crash leaves the old or the new
/// contents, never a mix, and the new contents are on disk when it returns.
fn write_durably(path: &Path, text: &str) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
    f.write_all(text.as_bytes()).map_err(|e| io_err(&tmp, e))?;
    f.sync_all().map_err(|e| io_err(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io_err(path, e))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

impl Maildir {
    pub fn new(root: &Path) -> Maildir {
        Maildir {
            root: root.to_path_buf(),
            namer: Arc::new(Namer {
                counter: AtomicU64::new(0),
                pid: std::process::id(),
            }),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of one user's mailbox (created when missing).
    pub fn mailbox(&self, domain: &str, local: &str) -> Result<MailboxDir, StoreError> {
        // Domain and local part were validated by the scenario (no '/', no leading '.').
        let path = self.root.join(domain).join(local);
        let dir = MailboxDir {
            path,
            namer: Arc::clone(&self.namer),
        };
        dir.ensure_folder_dirs(INBOX)?;
        Ok(dir)
    }
}

/// A message written to `tmp/` and fsynced, waiting for its UID.
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    base: String,
    size: usize,
}

impl Staged {
    /// Removes the staged file of a delivery that failed.
    pub(crate) fn discard(self) {
        let _ = fs::remove_file(&self.tmp);
    }
}

/// One user's mailbox on disk.
#[derive(Debug)]
pub struct MailboxDir {
    path: PathBuf,
    namer: Arc<Namer>,
}

impl MailboxDir {
    fn folder_path(&self, folder: &str) -> PathBuf {
        if folder == INBOX {
            self.path.clone()
        } else {
            self.path.join(format!("{DELIMITER}{folder}"))
        }
    }

    fn ensure_folder_dirs(&self, folder: &str) -> Result<PathBuf, StoreError> {
        let p = self.folder_path(folder);
        for sub in ["tmp", "new", "cur"] {
            let d = p.join(sub);
            fs::create_dir_all(&d).map_err(|e| io_err(&d, e))?;
        }
        if folder != INBOX {
            let marker = p.join("maildirfolder");
            if !marker.exists() {
                fs::write(&marker, b"").map_err(|e| io_err(&marker, e))?;
            }
        }
        Ok(p)
    }

    /// Writes a message to `tmp/` and fsyncs it (outside any lock).
    pub(crate) fn stage(&self, raw: &Bytes) -> Result<Staged, StoreError> {
        let base = self.namer.unique();
        let tmp = self.path.join("tmp").join(&base);
        let mut file = fs::File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        file.write_all(raw).map_err(|e| io_err(&tmp, e))?;
        file.sync_all().map_err(|e| io_err(&tmp, e))?;
        Ok(Staged {
            tmp,
            base,
            size: raw.len(),
        })
    }

    /// Moves a staged message into the folder under its UID; returns its
    /// path relative to the folder (`new/...` or `cur/...`).
    pub(crate) fn commit(
        &self,
        folder: &str,
        s: Staged,
        uid: u32,
        info: &str,
    ) -> Result<Box<str>, StoreError> {
        let name = file_name(&s.base, s.size, uid, info);
        let dest = self.folder_path(folder).join(&name);
        if let Err(e) = fs::rename(&s.tmp, &dest) {
            s.discard();
            return Err(io_err(&dest, e));
        }
        Ok(name.into())
    }

    /// Makes a committed message's rename durable: fsyncs the directory it
    /// went into and `tmp/`. Without this a power cut after the 250 could
    /// lose the new entry. Called after the mailbox lock is let go, so that
    /// deliveries to one mailbox share the wait instead of queueing for it.
    pub(crate) fn sync_commit(&self, folder: &str, file: &str) -> Result<(), StoreError> {
        let dest = self.folder_path(folder).join(file);
        sync_dir(dest.parent().unwrap_or(Path::new(".")))?;
        sync_dir(&self.path.join("tmp"))
    }

    /// The file-name flags of `flags` in a folder (`FSab`), giving new
    /// keywords letters (and writing `dovecot-keywords`) first. When all 26
    /// letters are taken, letters no message of `messages` uses are freed.
    pub(crate) fn info(
        &self,
        folder: &str,
        letters: &mut KeywordLetters,
        flags: &Flags,
        messages: &[StoredMessage],
    ) -> Result<String, StoreError> {
        let mut info = flags.maildir_info();
        let mut changed = false;
        let mut mine = Vec::new();
        for k in flags.keywords() {
            let c = match letters.letter(k) {
                Some(c) => c,
                None => {
                    let free = match letters.0.iter().position(Option::is_none) {
                        Some(i) => Some(i),
                        None if letters.0.len() < MAX_KEYWORDS => {
                            letters.0.push(None);
                            Some(letters.0.len() - 1)
                        }
                        None => reclaim(letters, flags, messages),
                    };
                    let Some(i) = free else {
                        let path = self.folder_path(folder).join(KEYWORDS);
                        return Err(io_err(
                            &path,
                            std::io::Error::other(format!(
                                "folder '{folder}' already uses {MAX_KEYWORDS} keywords, the most \
                                 Maildir file names can carry (letters a-z); keyword '{k}' was \
                                 not stored: remove a keyword from every message of the folder first"
                            )),
                        ));
                    };
                    letters.0[i] = Some(k.into());
                    changed = true;
                    letter(i)
                }
            };
            mine.push(c);
        }
        if changed {
            let path = self.folder_path(folder).join(KEYWORDS);
            write_durably(&path, &letters.render())?;
        }
        mine.sort_unstable();
        info.extend(mine);
        Ok(info)
    }

    /// Renames a message's file to carry new flags; returns the new relative path.
    pub(crate) fn set_flags(
        &self,
        folder: &str,
        file: &str,
        info: &str,
    ) -> Result<Box<str>, StoreError> {
        let (base, size, uid) = parse_file_name(file).ok_or_else(|| {
            io_err(
                Path::new(file),
                std::io::Error::other("unexpected file name"),
            )
        })?;
        let name = format!("cur/{base},S={size},U={uid}:2,{info}");
        let dir = self.folder_path(folder);
        let (from, to) = (dir.join(file), dir.join(&name));
        fs::rename(&from, &to).map_err(|e| io_err(&from, e))?;
        Ok(name.into())
    }

    pub(crate) fn remove(&self, folder: &str, file: &str) -> Result<(), StoreError> {
        let p = self.folder_path(folder).join(file);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&p, e)),
        }
    }

    pub(crate) fn save_counters(
        &self,
        folder: &str,
        validity: u32,
        uid_next: u32,
    ) -> Result<(), StoreError> {
        let p = self.folder_path(folder).join(COUNTERS);
        write_durably(&p, &format!("V{validity} N{uid_next}\n"))
    }

    pub(crate) fn create_folder(&self, folder: &str, validity: u32) -> Result<(), StoreError> {
        validate_name(folder)?;
        self.ensure_folder_dirs(folder)?;
        self.save_counters(folder, validity, 1)
    }

    pub(crate) fn delete_folder(&self, folder: &str) -> Result<(), StoreError> {
        validate_name(folder)?;
        let p = self.folder_path(folder);
        match fs::remove_dir_all(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&p, e)),
        }
    }

    pub(crate) fn rename_folder(&self, from: &str, to: &str) -> Result<(), StoreError> {
        validate_name(from)?;
        validate_name(to)?;
        let (a, b) = (self.folder_path(from), self.folder_path(to));
        fs::rename(&a, &b).map_err(|e| io_err(&a, e))
    }

    /// Reads the whole mailbox back: every folder, every message, same UIDs.
    /// Leftovers in `tmp/` (deliveries that were never acknowledged) are removed.
    pub(crate) fn load(&self, default_validity: u32) -> Result<MailboxData, StoreError> {
        let mut data = MailboxData::new(default_validity);
        let mut names = vec![INBOX.to_string()];
        let entries = fs::read_dir(&self.path).map_err(|e| io_err(&self.path, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_err(&self.path, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(folder) = name.strip_prefix(DELIMITER)
                && validate_name(folder).is_ok()
                && entry.path().is_dir()
            {
                names.push(folder.to_string());
            }
        }
        let mut next_validity = default_validity;
        for name in names {
            let folder = self.load_folder(&name, next_validity)?;
            next_validity = next_validity.max(folder.uid_validity) + 1;
            data.subscribed.insert(name.clone());
            data.folders.insert(folder);
        }
        data.next_uid_validity = next_validity;
        Ok(data)
    }

    fn load_folder(&self, name: &str, default_validity: u32) -> Result<Folder, StoreError> {
        let dir = self.ensure_folder_dirs(name)?;
        let counters = fs::read_to_string(dir.join(COUNTERS)).ok();
        let (mut validity, mut uid_next) = (default_validity, 1u32);
        if let Some(text) = counters {
            for field in text.split_whitespace() {
                if let Some(v) = field.strip_prefix('V').and_then(|v| v.parse().ok()) {
                    validity = v;
                }
                if let Some(n) = field.strip_prefix('N').and_then(|n| n.parse().ok()) {
                    uid_next = n;
                }
            }
        }
        let letters = fs::read_to_string(dir.join(KEYWORDS))
            .map(|t| KeywordLetters::parse(&t))
            .unwrap_or_default();
        let tmp = dir.join("tmp");
        if let Ok(rd) = fs::read_dir(&tmp) {
            for e in rd.flatten() {
                let _ = fs::remove_file(e.path());
            }
        }
        let mut found: Vec<(Option<u32>, String)> = Vec::new();
        for sub in ["new", "cur"] {
            let d = dir.join(sub);
            for entry in fs::read_dir(&d).map_err(|e| io_err(&d, e))? {
                let entry = entry.map_err(|e| io_err(&d, e))?;
                let base = entry.file_name().to_string_lossy().into_owned();
                if base.starts_with('.') {
                    continue;
                }
                let file = format!("{sub}/{base}");
                found.push((parse_file_name(&file).map(|(_, _, uid)| uid), file));
            }
        }
        // Files with our UID first, in UID order; files dropped in by others get new UIDs.
        found.sort_by(|a, b| match (a.0, b.0) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.1.cmp(&b.1),
        });
        let mut messages: Vec<StoredMessage> = Vec::with_capacity(found.len());
        for (uid, file) in found {
            let path = dir.join(&file);
            let raw = fs::read(&path).map_err(|e| io_err(&path, e))?;
            let internal_date: DateTime<Utc> = fs::metadata(&path)
                .and_then(|m| m.modified())
                .map(DateTime::<Utc>::from)
                .unwrap_or_else(|_| Utc::now());
            let mut flags = Flags::default();
            if let Some((_, info)) = file.split_once(":2,") {
                flags = Flags::from_maildir_info(info);
                for c in info.chars() {
                    if let Some(k) = letters.keyword(c) {
                        flags.add_keyword(k);
                    }
                }
            }
            let info = info_letters(&flags, &letters);
            let uid = match uid {
                Some(u) if messages.last().is_none_or(|m| m.uid < u) => u,
                _ => messages
                    .last()
                    .map_or(uid_next, |m| m.uid + 1)
                    .max(uid_next),
            };
            // Give foreign or clashing files our name so their UID sticks.
            let file: Box<str> = if parse_file_name(&file).map(|p| p.2) == Some(uid) {
                file.into()
            } else {
                let base = file
                    .get(4..)
                    .and_then(|b| b.split([':', ',']).next())
                    .unwrap_or("msg")
                    .to_string();
                let new = if info.is_empty() && file.starts_with("new/") {
                    file_name(&base, raw.len(), uid, &info)
                } else {
                    format!("cur/{base},S={},U={uid}:2,{info}", raw.len())
                };
                let to = dir.join(&new);
                fs::rename(&path, &to).map_err(|e| io_err(&path, e))?;
                new.into()
            };
            uid_next = uid_next.max(uid + 1);
            messages.push(StoredMessage {
                uid,
                flags,
                internal_date,
                raw: Bytes::from(raw),
                envelope: None,
                modseq: restart_modseq(),
                file: Some(file),
            });
        }
        self.save_counters(name, validity, uid_next)?;
        Ok(Folder {
            name: super::folder_name(name),
            uid_validity: validity,
            uid_next,
            highest_modseq: restart_modseq(),
            changed_modseq: 0,
            first_recent_uid: uid_next,
            messages,
            keyword_letters: letters,
            // Expunges of earlier runs are not on disk: below the restart
            // modseq, a QRESYNC client is answered conservatively.
            expunged: Some(Box::new(super::Expunged::with_floor(restart_modseq()))),
        })
    }
}

/// The letters of flags whose keywords all have letters already (loading).
fn info_letters(flags: &Flags, letters: &KeywordLetters) -> String {
    let mut info = flags.maildir_info();
    let mut mine: Vec<char> = flags.keywords().filter_map(|k| letters.letter(k)).collect();
    mine.sort_unstable();
    info.extend(mine);
    info
}

/// Frees the letters of keywords that neither `flags` nor any message uses;
/// returns the first one freed.
fn reclaim(
    letters: &mut KeywordLetters,
    flags: &Flags,
    messages: &[StoredMessage],
) -> Option<usize> {
    let mut first = None;
    for (i, slot) in letters.0.iter_mut().enumerate() {
        let Some(k) = slot.as_deref() else { continue };
        let used = flags.has_keyword(k) || messages.iter().any(|m| m.flags.has_keyword(k));
        if !used {
            *slot = None;
            first.get_or_insert(i);
        }
    }
    first
}

fn file_name(base: &str, size: usize, uid: u32, info: &str) -> String {
    if info.is_empty() {
        format!("new/{base},S={size},U={uid}")
    } else {
        format!("cur/{base},S={size},U={uid}:2,{info}")
    }
}

/// Splits `new/BASE,S=size,U=uid[:2,FLAGS]` into (BASE, size, uid).
fn parse_file_name(file: &str) -> Option<(&str, usize, u32)> {
    let name = file.get(4..)?;
    let name = name.split_once(':').map_or(name, |(n, _)| n);
    let mut parts = name.split(',');
    let base = parts.next()?;
    let (mut size, mut uid) = (None, None);
    for p in parts {
        if let Some(s) = p.strip_prefix("S=") {
            size = s.parse().ok();
        } else if let Some(u) = p.strip_prefix("U=") {
            uid = u.parse().ok();
        }
    }
    Some((base, size?, uid?))
}

/// The modseq of every message of a folder read back from disk. Modseqs are
/// not stored in the Maildir, and CONDSTORE (RFC 7162 §3.1.1) forbids them to
/// go backwards while UIDVALIDITY stays: so a restart starts them above
/// anything handed out before, at the clock in microseconds. A client with a
/// cached HIGHESTMODSEQ then sees every message as changed, which is a full
/// resync, never a missed change.
fn restart_modseq() -> u64 {
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_micros() as u64)
            .max(1)
    })
}
