//! Trigram posting lists: for every three-byte sequence, the ascending
//! numbers of the documents whose text holds it. A substring search asks
//! for the documents that hold every trigram of its needle — a superset of
//! the documents that hold the needle, which the caller then checks — and
//! so looks at a few hundred messages instead of scanning all of them.
//!
//! Lists are delta-encoded varints (one to three bytes a posting), appended
//! in order because document numbers only grow. A removed document stays in
//! the lists until [`Trigrams::compact`] renumbers the survivors; callers
//! skip the numbers of removed documents. Pure data structure, no I/O.

use std::collections::HashMap;

/// A document's number: assigned ascending, renumbered only by
/// [`Trigrams::compact`].
pub type DocId = u32;

/// Which text of a document a trigram comes from: the message's searchable
/// text or its header values. Each has its own lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    Text = 0,
    Header = 1,
}

/// At most this many bytes of one space of a document are broken into
/// trigrams; a document with more is a candidate of every search
/// ([`Trigrams::candidates`]), so the memory a huge message costs stays
/// bounded and searches still find it.
pub const MAX_INDEXED: usize = 1 << 20;

/// A list in which a trigram is found in at least this share (per mille)
/// of the documents narrows nothing worth decoding it for.
const COMMON_PER_MILLE: u64 = 900;

/// Once the candidates are this few, checking them is cheaper than
/// decoding more lists.
const FEW: usize = 16;

#[derive(Debug, Default)]
struct Postings {
    last: DocId,
    count: u32,
    bytes: Vec<u8>,
}

impl Postings {
    /// Appends `id`, which is larger than every id in the list.
    fn push(&mut self, id: DocId) {
        debug_assert!(self.count == 0 || id > self.last);
        let mut delta = id - self.last;
        loop {
            let b = (delta & 0x7f) as u8;
            delta >>= 7;
            if delta == 0 {
                self.bytes.push(b);
                break;
            }
            self.bytes.push(b | 0x80);
        }
        self.last = id;
        self.count += 1;
    }

    fn iter(&self) -> Decode<'_> {
        Decode {
            bytes: &self.bytes,
            at: 0,
            acc: 0,
        }
    }
}

/// The ids of one list, ascending.
struct Decode<'a> {
    bytes: &'a [u8],
    at: usize,
    acc: DocId,
}

impl Iterator for Decode<'_> {
    type Item = DocId;

    fn next(&mut self) -> Option<DocId> {
        let mut delta: u32 = 0;
        let mut shift = 0;
        loop {
            let b = *self.bytes.get(self.at)?;
            self.at += 1;
            delta |= u32::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        self.acc += delta;
        Some(self.acc)
    }
}

fn key(space: Space, t: &[u8]) -> u32 {
    ((space as u32) << 24) | (u32::from(t[0]) << 16) | (u32::from(t[1]) << 8) | u32::from(t[2])
}

/// Appends the trigram keys of `text` in `space` to `out` (with repeats).
fn push_keys(space: Space, text: &[u8], out: &mut Vec<u32>) {
    out.extend(text.windows(3).map(|t| key(space, t)));
}

/// The ids in both ascending lists, ascending.
pub fn intersect(a: &[DocId], b: impl Iterator<Item = DocId>) -> Vec<DocId> {
    let mut out = Vec::with_capacity(a.len());
    let mut a = a.iter().copied().peekable();
    for y in b {
        while a.next_if(|&x| x < y).is_some() {}
        match a.peek() {
            None => break,
            Some(&x) if x == y => {
                out.push(x);
                a.next();
            }
            Some(_) => {}
        }
    }
    out
}

/// The ids in either ascending list, ascending, once each.
pub fn union(a: &[DocId], b: &[DocId]) -> Vec<DocId> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        out.push(x.min(y));
        i += usize::from(x <= y);
        j += usize::from(y <= x);
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// The posting lists of every document added; see the module documentation.
#[derive(Debug, Default)]
pub struct Trigrams {
    lists: HashMap<u32, Postings>,
    /// Documents with a space longer than [`MAX_INDEXED`], ascending.
    always: Vec<DocId>,
    /// One more than the largest id added (0: none).
    end: DocId,
    scratch: Vec<u32>,
}

impl Trigrams {
    /// Adds document `id`, larger than every id added before, with the
    /// texts of each space (several texts of a space: trigrams do not span
    /// from one to the next).
    pub fn add<'a>(&mut self, id: DocId, texts: impl IntoIterator<Item = (Space, &'a [u8])>) {
        debug_assert!(id >= self.end);
        let mut keys = std::mem::take(&mut self.scratch);
        keys.clear();
        let mut sizes = [0usize; 2];
        let mut too_big = false;
        for (space, text) in texts {
            sizes[space as usize] += text.len();
            if sizes[space as usize] > MAX_INDEXED {
                too_big = true;
                break;
            }
            push_keys(space, text, &mut keys);
        }
        if too_big {
            self.always.push(id);
        } else {
            keys.sort_unstable();
            keys.dedup();
            for &k in &keys {
                self.lists.entry(k).or_default().push(id);
            }
        }
        self.end = id + 1;
        self.scratch = keys;
    }

    /// The documents that may hold `needle` in `space`, ascending: every
    /// one that holds all its trigrams (and every one too big to index).
    /// `None` when the needle cannot narrow the search: shorter than three
    /// bytes, or made of trigrams nearly every document has.
    pub fn candidates(&self, space: Space, needle: &[u8]) -> Option<Vec<DocId>> {
        if needle.len() < 3 {
            return None;
        }
        let mut keys = Vec::new();
        push_keys(space, needle, &mut keys);
        keys.sort_unstable();
        keys.dedup();
        let mut lists = Vec::with_capacity(keys.len());
        for k in keys {
            match self.lists.get(&k) {
                Some(p) => lists.push(p),
                None => return Some(self.always.clone()),
            }
        }
        lists.sort_by_key(|p| p.count);
        let common =
            |p: &Postings| u64::from(p.count) * 1000 >= u64::from(self.end) * COMMON_PER_MILLE;
        if common(lists[0]) {
            return None;
        }
        let mut found: Vec<DocId> = lists[0].iter().collect();
        for &p in &lists[1..] {
            if found.len() <= FEW || common(p) {
                break;
            }
            found = intersect(&found, p.iter());
        }
        Some(if self.always.is_empty() {
            found
        } else {
            union(&found, &self.always)
        })
    }

    /// Renumbers the documents: `new_id[old]` is a kept document's new id
    /// (ascending in the old order), `None` one removed.
    pub fn compact(&mut self, new_id: &[Option<DocId>]) {
        let renumber = |id: DocId| new_id.get(id as usize).copied().flatten();
        let old = std::mem::take(&mut self.lists);
        for (k, p) in old {
            let mut q = Postings::default();
            for id in p.iter().filter_map(renumber) {
                q.push(id);
            }
            if q.count > 0 {
                q.bytes.shrink_to_fit();
                self.lists.insert(k, q);
            }
        }
        self.lists.shrink_to_fit();
        self.always = self.always.iter().filter_map(|&id| renumber(id)).collect();
        self.end = new_id.iter().flatten().max().map_or(0, |&m| m + 1);
        self.scratch = Vec::new();
    }

    /// Bytes the lists take (their encoded postings and the table).
    pub fn heap_size(&self) -> usize {
        self.lists
            .values()
            .map(|p| p.bytes.capacity())
            .sum::<usize>()
            + self.lists.capacity() * (std::mem::size_of::<(u32, Postings)>() + 1)
            + self.always.capacity() * std::mem::size_of::<DocId>()
            + self.scratch.capacity() * std::mem::size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(t: &mut Trigrams, id: DocId, text: &str) {
        t.add(id, [(Space::Text, text.as_bytes())]);
    }

    #[test]
    fn postings_round_trip_through_the_varint_encoding() {
        let mut p = Postings::default();
        let ids = [0, 1, 127, 128, 300, 16_383, 16_384, 2_000_000, u32::MAX - 1];
        for id in ids {
            p.push(id);
        }
        assert_eq!(p.iter().collect::<Vec<_>>(), ids);
    }

    #[test]
    fn candidates_hold_every_trigram_of_the_needle() {
        let mut t = Trigrams::default();
        for (i, text) in [
            "vertrag frist",
            "frist termin",
            "der vertrag",
            "grüße",
            "xy",
        ]
        .iter()
        .enumerate()
        {
            add(&mut t, i as DocId, text);
        }
        for _ in 0..100 {
            let id = t.end;
            add(&mut t, id, "filler text without the words");
        }
        assert_eq!(t.candidates(Space::Text, b"vertrag"), Some(vec![0, 2]));
        assert_eq!(t.candidates(Space::Text, b"frist"), Some(vec![0, 1]));
        assert_eq!(t.candidates(Space::Text, "grüß".as_bytes()), Some(vec![3]));
        assert_eq!(t.candidates(Space::Text, b"zitrone"), Some(vec![]));
        assert_eq!(t.candidates(Space::Text, b"xy"), None, "too short");
        assert_eq!(t.candidates(Space::Header, b"vertrag"), Some(vec![]));
        // Every trigram of "filler" is in nearly every document.
        assert_eq!(t.candidates(Space::Text, b"filler"), None);
    }

    #[test]
    fn texts_of_one_document_do_not_join() {
        let mut t = Trigrams::default();
        t.add(
            0,
            [(Space::Header, &b"ab"[..]), (Space::Header, &b"cd"[..])],
        );
        add(&mut t, 1, "bcd");
        assert_eq!(t.candidates(Space::Header, b"abc"), Some(vec![]));
        assert_eq!(t.candidates(Space::Header, b"bcd"), Some(vec![]));
    }

    #[test]
    fn a_document_too_big_to_index_is_always_a_candidate() {
        let mut t = Trigrams::default();
        add(&mut t, 0, "small");
        let big = "x".repeat(MAX_INDEXED + 1);
        add(&mut t, 1, &big);
        add(&mut t, 2, "small again");
        assert_eq!(t.candidates(Space::Text, b"small"), Some(vec![0, 1, 2]));
        assert_eq!(t.candidates(Space::Text, b"nowhere"), Some(vec![1]));
    }

    #[test]
    fn compaction_renumbers_and_drops_removed_documents() {
        let mut t = Trigrams::default();
        for i in 0..10 {
            add(&mut t, i, if i % 2 == 0 { "even one" } else { "odd one" });
        }
        let before = t.heap_size();
        let new_id: Vec<Option<DocId>> = (0..10).map(|i| (i >= 6).then(|| i - 6)).collect();
        t.compact(&new_id);
        assert_eq!(t.candidates(Space::Text, b"even"), Some(vec![0, 2]));
        assert_eq!(t.candidates(Space::Text, b"odd"), Some(vec![1, 3]));
        assert_eq!(t.end, 4);
        add(&mut t, 4, "even more");
        assert_eq!(t.candidates(Space::Text, b"even"), Some(vec![0, 2, 4]));
        t.compact(&[None; 5]);
        assert!(t.lists.is_empty() && t.heap_size() < before);
    }

    #[test]
    fn intersect_and_union_of_sorted_lists() {
        assert_eq!(
            intersect(&[1, 3, 5, 7], [0, 3, 4, 7, 9].into_iter()),
            [3, 7]
        );
        assert_eq!(intersect(&[], [1].into_iter()), Vec::<DocId>::new());
        assert_eq!(union(&[1, 3, 5], &[2, 3, 9]), [1, 2, 3, 5, 9]);
        assert_eq!(union(&[], &[4]), [4]);
    }
}
