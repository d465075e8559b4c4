//! Maildir persistence for the store.
//!
//! Layout: `ROOT/<domain>/<localpart>/{tmp,new,cur}` is a user's INBOX and
//! `ROOT/<domain>/<localpart>/.<Folder>/{tmp,new,cur}` the other folders
//! (Maildir++, `.` as hierarchy delimiter), which Dovecot and mutt read as they
//! are. A message is written to `tmp/`, fsynced, and renamed into `new/` (or
//! `cur/` when it carries flags) before the store call returns, so nothing
//! acknowledged with 250 is lost on a crash.
//!
//! UIDs survive restarts because each file name carries its UID (`,U=<uid>`, a
//! field Maildir readers ignore); a small `mailrig-uidlist` file per folder
//! keeps UIDVALIDITY and UIDNEXT so UIDs are never reused after an expunge.
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
        flags: &Flags,
    ) -> Result<Box<str>, StoreError> {
        let name = file_name(&s.base, s.size, uid, flags);
        let dest = self.folder_path(folder).join(&name);
        fs::rename(&s.tmp, &dest).map_err(|e| io_err(&dest, e))?;
        Ok(name.into())
    }

    /// Renames a message's file to carry new flags; returns the new relative path.
    pub(crate) fn set_flags(
        &self,
        folder: &str,
        file: &str,
        flags: &Flags,
    ) -> Result<Box<str>, StoreError> {
        let (base, size, uid) = parse_file_name(file).ok_or_else(|| {
            io_err(
                Path::new(file),
                std::io::Error::other("unexpected file name"),
            )
        })?;
        let name = format!("cur/{base},S={size},U={uid}:2,{}", flags.maildir_info());
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
        let tmp = p.with_extension("tmp");
        fs::write(&tmp, format!("V{validity} N{uid_next}\n")).map_err(|e| io_err(&tmp, e))?;
        fs::rename(&tmp, &p).map_err(|e| io_err(&p, e))
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
            data.folders.insert(name, folder);
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
                let file = format!("{sub}/{}", entry.file_name().to_string_lossy());
                if file[4..].starts_with('.') {
                    continue;
                }
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
            let flags = file
                .split_once(":2,")
                .map(|(_, i)| Flags::from_maildir_info(i))
                .unwrap_or_default();
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
                let base = file[4..]
                    .split([':', ','])
                    .next()
                    .unwrap_or("msg")
                    .to_string();
                let new = if flags == Flags::default() && file.starts_with("new/") {
                    file_name(&base, raw.len(), uid, &flags)
                } else {
                    format!(
                        "cur/{base},S={},U={uid}:2,{}",
                        raw.len(),
                        flags.maildir_info()
                    )
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
                modseq: 1,
                file: Some(file),
            });
        }
        self.save_counters(name, validity, uid_next)?;
        Ok(Folder {
            name: name.to_string(),
            uid_validity: validity,
            uid_next,
            highest_modseq: 1,
            first_recent_uid: uid_next,
            messages,
        })
    }
}

fn file_name(base: &str, size: usize, uid: u32, flags: &Flags) -> String {
    if *flags == Flags::default() {
        format!("new/{base},S={size},U={uid}")
    } else {
        format!("cur/{base},S={size},U={uid}:2,{}", flags.maildir_info())
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
