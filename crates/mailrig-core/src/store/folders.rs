//! A mailbox's folder table and subscription list: small sorted vectors with
//! the map and set methods the store and the protocol views use.
//!
//! A mailbox has a handful of folders, most of them one (INBOX), and a world
//! may have 100,000 mailboxes. A `BTreeMap`'s first node holds room for eleven
//! entries (over a kilobyte for `String` keys and [`Folder`] values) and a
//! `BTreeSet<String>`'s another 280 bytes; a sorted `Vec` holds exactly what
//! is there, and a binary search over a few names is as fast as a tree walk.
//! The methods keep the names and signatures of the maps they replace
//! (`get`, `contains_key`, `keys`, `values`, `iter`, ...), in name order.

use std::sync::LazyLock;

use super::{Folder, INBOX};

/// The special-use attribute (RFC 6154) a folder has by its name, as
/// Dovecot's default configuration and the common clients name them: `Sent`,
/// `Drafts`, `Junk`, `Trash`, `Archive` and the usual variants, top-level,
/// any case. Mail a fault files into `Junk` is found there by attribute, not
/// by guessing names.
pub fn special_use(name: &str) -> Option<&'static str> {
    const NAMES: &[(&str, &str)] = &[
        ("sent", "\\Sent"),
        ("sent items", "\\Sent"),
        ("sent messages", "\\Sent"),
        ("drafts", "\\Drafts"),
        ("junk", "\\Junk"),
        ("junk e-mail", "\\Junk"),
        ("spam", "\\Junk"),
        ("trash", "\\Trash"),
        ("deleted items", "\\Trash"),
        ("deleted messages", "\\Trash"),
        ("archive", "\\Archive"),
        ("archives", "\\Archive"),
    ];
    let lower = name.to_lowercase();
    NAMES.iter().find(|(n, _)| *n == lower).map(|(_, a)| *a)
}

/// The folders of one mailbox, in name order (byte order, as a `BTreeMap<String, _>` keeps them).
#[derive(Debug, Clone, Default)]
pub struct Folders(Vec<Folder>);

impl Folders {
    /// A table with one folder.
    pub(crate) fn one(folder: Folder) -> Folders {
        Folders(vec![folder])
    }

    fn search(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|f| (*f.name).cmp(name))
    }

    /// The folder called exactly `name`.
    pub fn get(&self, name: &str) -> Option<&Folder> {
        self.search(name).ok().map(|i| &self.0[i])
    }

    /// The folder called exactly `name`, to change.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Folder> {
        self.search(name).ok().map(|i| &mut self.0[i])
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.search(name).is_ok()
    }

    /// Adds a folder under its own name; returns the one it replaced.
    pub(crate) fn insert(&mut self, folder: Folder) -> Option<Folder> {
        match self.search(&folder.name) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i], folder)),
            Err(i) => {
                self.0.reserve_exact(1);
                self.0.insert(i, folder);
                None
            }
        }
    }

    /// Takes the folder called `name` out of the table.
    pub(crate) fn remove(&mut self, name: &str) -> Option<Folder> {
        self.search(name).ok().map(|i| self.0.remove(i))
    }

    /// Folder names, in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator {
        self.0.iter().map(|f| &*f.name)
    }

    /// Folders, in name order.
    pub fn values(&self) -> std::slice::Iter<'_, Folder> {
        self.0.iter()
    }

    /// (name, folder) pairs, in name order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&str, &Folder)> + ExactSizeIterator {
        self.0.iter().map(|f| (&*f.name, f))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a Folders {
    type Item = (&'a str, &'a Folder);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, Folder>, fn(&Folder) -> (&str, &Folder)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|f| (&*f.name, f))
    }
}

/// The folder names a user subscribed to (LSUB), in byte order, each once.
///
/// INBOX, which every mailbox starts subscribed to, is a flag rather than a
/// string of its own: 64 bytes a mailbox in a world of 100,000.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscriptions {
    inbox: bool,
    /// Every other name, sorted.
    others: Vec<String>,
}

/// The name [`Subscriptions::iter`] yields for INBOX.
static INBOX_NAME: LazyLock<String> = LazyLock::new(|| INBOX.to_string());

impl Subscriptions {
    /// Subscribed to INBOX only.
    pub(crate) fn inbox() -> Subscriptions {
        Subscriptions {
            inbox: true,
            others: Vec::new(),
        }
    }

    fn search(&self, name: &str) -> Result<usize, usize> {
        self.others.binary_search_by(|n| n.as_str().cmp(name))
    }

    pub fn contains(&self, name: &str) -> bool {
        if name == INBOX {
            return self.inbox;
        }
        self.search(name).is_ok()
    }

    /// Adds a name; false if it was there already.
    pub fn insert(&mut self, name: String) -> bool {
        if name == INBOX {
            return !std::mem::replace(&mut self.inbox, true);
        }
        match self.search(&name) {
            Ok(_) => false,
            Err(i) => {
                self.others.reserve_exact(1);
                self.others.insert(i, name);
                true
            }
        }
    }

    /// Removes a name; false if it was not there.
    pub fn remove(&mut self, name: &str) -> bool {
        if name == INBOX {
            return std::mem::replace(&mut self.inbox, false);
        }
        match self.search(name) {
            Ok(i) => {
                self.others.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    /// The names, in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &String> + Clone {
        let split = self.others.partition_point(|n| n.as_str() < INBOX);
        let (before, after) = self.others.split_at(split);
        let inbox = self.inbox.then(|| &*INBOX_NAME);
        before.iter().chain(inbox).chain(after.iter())
    }

    pub fn len(&self) -> usize {
        self.others.len() + usize::from(self.inbox)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    #[test]
    fn special_use_by_name_any_case_top_level_only() {
        assert_eq!(special_use("Junk"), Some("\\Junk"));
        assert_eq!(special_use("SPAM"), Some("\\Junk"));
        assert_eq!(special_use("Sent Items"), Some("\\Sent"));
        assert_eq!(special_use("Deleted Items"), Some("\\Trash"));
        assert_eq!(special_use("INBOX"), None);
        assert_eq!(special_use("Projects.Junk"), None);
    }

    /// The oracle: the same operations on the maps these types replace give the same contents, in the
    /// same order.
    #[test]
    fn folders_and_subscriptions_behave_like_the_btree_maps_they_replace() {
        let names = [
            "INBOX",
            "Sent",
            "INBOX.a",
            "Archive",
            "b",
            "Archive.2026",
            "Ä",
            "INBOX.a",
            "Sent",
            "zz",
            "A",
            "a.b.c",
        ];
        let mut folders = Folders::default();
        let mut map: BTreeMap<String, u32> = BTreeMap::new();
        let mut subs = Subscriptions::default();
        let mut set: BTreeSet<String> = BTreeSet::new();
        for (i, name) in names.iter().enumerate() {
            let i = i as u32;
            let replaced = folders.insert(Folder::new(name, i)).map(|f| f.uid_validity);
            assert_eq!(replaced, map.insert(name.to_string(), i), "{name}");
            assert_eq!(subs.insert(name.to_string()), set.insert(name.to_string()));
            if i % 4 == 3 {
                let gone = names[(i as usize * 7) % names.len()];
                assert_eq!(
                    folders.remove(gone).map(|f| f.uid_validity),
                    map.remove(gone)
                );
                assert_eq!(subs.remove(gone), set.remove(gone));
            }
            let got: Vec<(&str, u32)> = folders.iter().map(|(k, f)| (k, f.uid_validity)).collect();
            let want: Vec<(&str, u32)> = map.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            assert_eq!(got, want);
            assert!(subs.iter().eq(set.iter()));
            for n in names {
                assert_eq!(folders.contains_key(n), map.contains_key(n));
                assert_eq!(folders.get(n).map(|f| f.uid_validity), map.get(n).copied());
                assert_eq!(subs.contains(n), set.contains(n));
            }
            assert_eq!(folders.len(), map.len());
            assert_eq!(subs.len(), set.len());
        }
        assert!(folders.keys().eq(map.keys()));
        assert!(
            folders
                .values()
                .map(|f| f.uid_validity)
                .eq(map.values().copied())
        );
    }
}
