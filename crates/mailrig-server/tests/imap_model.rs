//! A model test of concurrent IMAP sessions: many clients on the same
//! folders doing random STORE, EXPUNGE, COPY, MOVE, APPEND, FETCH and SEARCH,
//! each checking every response against a model of what it has been told.
//!
//! Each session's model holds the sequence-number → UID map it has been told
//! (SELECT's `EXISTS`, later `EXISTS` and `EXPUNGE`) and the keywords of the
//! last `* FLAGS` and `PERMANENTFLAGS`. A response breaks the model when:
//!
//! * a FETCH shows a keyword no `* FLAGS` (or no `PERMANENTFLAGS` with it or
//!   `\*`) announced first (RFC 3501 §7.2.6);
//! * a sequence number's UID changes without an `EXPUNGE`, UIDs stop rising
//!   with sequence numbers, `EXISTS` shrinks, an `EXPUNGE` names a number
//!   that does not exist, or comes during a sequence-number FETCH, STORE or
//!   SEARCH (RFC 3501 §7.4.1);
//! * a FETCH or STORE of `a:b` leaves out a number of the range, or SEARCH ALL
//!   leaves out a message, with a plain OK: a message expunged elsewhere
//!   keeps its number until this session is told (RFC 2180 §4.1.2), or the
//!   command fails visibly with `[EXPUNGEISSUED]` (RFC 5530);
//! * a message's content is not the one its UID was given to.
//!
//! Sessions also IDLE for a few milliseconds now and then, while the others
//! work: what the server says during IDLE (the direct fan-out's `EXISTS`
//! included) is checked as every other update.
//!
//! A shared ledger records every message an APPEND or COPY created (from
//! APPENDUID and COPYUID) and every one a session flagged `\Deleted` or
//! moved; at the end each folder must hold exactly the created ones that
//! were not removed: no message lost, none duplicated.
//!
//! The operations are drawn from a seeded generator (`IMAP_MODEL_SEED`,
//! printed on failure; `IMAP_MODEL_OPS` sets the operations per session).
//! The seed fixes each session's operations, not how the sessions interleave.

mod support;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::imap::{ALICE, Client, start};

const SESSIONS: usize = 8;
const DEFAULT_OPS: usize = 250;
const FOLDERS: [&str; 2] = ["INBOX", "Box2"];
/// The whole run, setup and final check included.
const RUN_LIMIT: Duration = Duration::from_secs(240);
/// Flags the sessions set and clear: system flags and a growing set of keywords.
const KEYWORDS: usize = 24;

/// A message: its folder and UID.
type Key = (String, u32);

/// Where a message came from.
#[derive(Debug, Clone)]
enum Origin {
    /// An APPEND with this mark (its `X-Mark:` header).
    Mark(String),
    /// A COPY or MOVE of another message.
    CopyOf(Key),
}

/// What every session contributed: which messages exist by design. Sessions
/// record what they did after the server answered, so another session may
/// see a message before it is here: such sightings are checked at the end.
#[derive(Default)]
struct Ledger {
    created: HashMap<Key, Origin>,
    /// Messages some session flagged `\Deleted` (and may have expunged).
    deleted: HashSet<Key>,
    /// Messages a MOVE took out of their folder.
    moved: HashSet<Key>,
    /// Messages some session was told are expunged.
    expunged: HashSet<Key>,
    /// (message, mark seen, session) for checking at the end.
    seen: Vec<(Key, String, usize)>,
}

impl Ledger {
    /// Whether a message may have been flagged `\Deleted`: a session
    /// flagged it, or one of the messages it is a copy of (COPY keeps flags).
    fn maybe_deleted(&self, key: &Key) -> bool {
        let mut k = key;
        for _ in 0..10_000 {
            if self.deleted.contains(k) {
                return true;
            }
            match self.created.get(k) {
                Some(Origin::CopyOf(src)) => k = src,
                _ => return false,
            }
        }
        false
    }

    /// The mark a message was created with, following copies.
    fn mark(&self, key: &Key) -> Option<&str> {
        let mut k = key;
        for _ in 0..10_000 {
            match self.created.get(k)? {
                Origin::Mark(m) => return Some(m),
                Origin::CopyOf(src) => k = src,
            }
        }
        None
    }
}

/// How often the interesting things happened (printed, so a run that never
/// met a ghost is visible).
#[derive(Default, Debug, Clone, Copy)]
struct Counts {
    ops: usize,
    /// Messages a sequence-number FETCH returned although another session
    /// had already been told of their EXPUNGE (a lower bound of the ghosts read).
    ghost_reads: usize,
    /// Commands refused with `[EXPUNGEISSUED]`.
    expunge_issued: usize,
    /// `* FLAGS` responses (SELECT's included).
    flag_lists: usize,
    expunges_told: usize,
    idles: usize,
}

type Shared = Arc<Mutex<Ledger>>;

/// One FETCH response.
#[derive(Debug, Default)]
struct Fetch {
    seq: usize,
    uid: Option<u32>,
    flags: Option<Vec<String>>,
    mark: Option<String>,
}

/// The tagged reply of a command and what came with it.
#[derive(Debug, Default)]
struct Reply {
    status: String,
    text: String,
    fetches: Vec<Fetch>,
    search: Option<Vec<u32>>,
    /// How many messages the session knew when the SEARCH response came.
    search_len: usize,
    /// `[COPYUID v src dst]` from an untagged OK (MOVE) or the tagged reply.
    copyuid: Option<(Vec<u32>, Vec<u32>)>,
    /// Sequence numbers in `EXPUNGE` responses, in order.
    expunged: Vec<usize>,
}

/// What the command allows the server to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Sequence-number FETCH, STORE, SEARCH: no EXPUNGE (RFC 3501 §7.4.1).
    NoExpunge,
    Any,
}

struct Model {
    id: usize,
    folder: String,
    /// Index + 1 = sequence number; `None` until a FETCH tells the UID.
    seqs: Vec<Option<u32>>,
    /// UIDs this session has been told are expunged, in this folder.
    told_expunged: HashSet<u32>,
    /// Keywords (lower case) of the last `* FLAGS`.
    flags: HashSet<String>,
    /// Keywords (lower case) of the last PERMANENTFLAGS, and whether it had `\*`.
    permanent: HashSet<String>,
    any_keyword: bool,
    /// The last exchanges, for the failure report.
    log: VecDeque<String>,
    ledger: Shared,
    counts: Counts,
    tag: usize,
    marks: usize,
}

fn parse_list(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

/// The text between `open` (just after `start`) and the matching `)`.
fn paren_after<'a>(s: &'a str, start: &str) -> Option<&'a str> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(')')?;
    Some(&s[i..i + j])
}

fn number_after(s: &str, start: &str) -> Option<u32> {
    let i = s.find(start)? + start.len();
    let digits: String = s[i..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// `1:3,5` → [1, 2, 3, 5], in the order written.
fn uid_set(s: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in s.split(',') {
        match part.split_once(':') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().unwrap_or(0), b.parse().unwrap_or(0));
                if a <= b {
                    out.extend(a..=b);
                } else {
                    out.extend((b..=a).rev());
                }
            }
            None => out.extend(part.parse::<u32>().ok()),
        }
    }
    out
}

fn copyuid(s: &str) -> Option<(Vec<u32>, Vec<u32>)> {
    let i = s.find("[COPYUID ")? + "[COPYUID ".len();
    let j = s[i..].find(']')?;
    let parts: Vec<&str> = s[i..i + j].split_whitespace().collect();
    match parts.as_slice() {
        [_, src, dst] => Some((uid_set(src), uid_set(dst))),
        _ => None,
    }
}

fn is_keyword(f: &str) -> bool {
    !f.starts_with('\\')
}

impl Model {
    fn fail(&self, what: String) -> String {
        let log: Vec<&str> = self.log.iter().map(String::as_str).collect();
        format!(
            "session {} in {}: {what}\nthe session's last exchanges:\n{}",
            self.id,
            self.folder,
            log.join("\n")
        )
    }

    fn note(&mut self, s: String) {
        if self.log.len() >= 12 {
            self.log.pop_front();
        }
        self.log.push_back(s);
    }

    fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("s{}t{}", self.id, self.tag)
    }

    /// Sends one command and checks every response against the model as it
    /// arrives.
    async fn run(&mut self, c: &mut Client, cmd: &str, kind: Kind) -> Result<Reply, String> {
        let tag = self.next_tag();
        let wire = format!("{tag} {cmd}\r\n");
        self.run_bytes(c, &tag, wire.as_bytes(), kind).await
    }

    async fn run_bytes(
        &mut self,
        c: &mut Client,
        tag: &str,
        wire: &[u8],
        kind: Kind,
    ) -> Result<Reply, String> {
        c.send(wire).await;
        let mut transcript = format!("C: {}", String::from_utf8_lossy(wire).trim_end());
        let mut reply = Reply::default();
        let prefix = format!("{tag} ");
        loop {
            let line = c.line().await;
            if line.is_empty() {
                self.note(transcript);
                return Err(self.fail("the server closed the connection".into()));
            }
            transcript.push_str("\nS: ");
            transcript.push_str(line.trim_end());
            if let Some(rest) = line.strip_prefix(&prefix) {
                let (status, text) = rest.trim_end().split_once(' ').unwrap_or((rest, ""));
                reply.status = status.to_string();
                reply.text = text.to_string();
                if let Some(cu) = copyuid(text) {
                    reply.copyuid = Some(cu);
                }
                if text.starts_with("[EXPUNGEISSUED]") {
                    self.counts.expunge_issued += 1;
                }
                self.note(transcript);
                return Ok(reply);
            }
            if let Err(e) = self.untagged(&line, kind, &mut reply) {
                self.note(transcript);
                return Err(self.fail(e));
            }
        }
    }

    /// Applies one untagged response to the model.
    fn untagged(&mut self, line: &str, kind: Kind, reply: &mut Reply) -> Result<(), String> {
        let Some(rest) = line.strip_prefix("* ") else {
            return Err(format!("not a response: {line:?}"));
        };
        let head = rest.trim_end();
        let mut words = head.splitn(3, ' ');
        let first = words.next().unwrap_or("");
        let second = words.next().unwrap_or("");
        if let Ok(n) = first.parse::<usize>() {
            match second.to_ascii_uppercase().as_str() {
                "EXISTS" => {
                    if n < self.seqs.len() {
                        return Err(format!(
                            "EXISTS {n} shrinks the folder from {} without EXPUNGE",
                            self.seqs.len()
                        ));
                    }
                    self.seqs.resize(n, None);
                }
                "RECENT" => {}
                "EXPUNGE" => {
                    if kind == Kind::NoExpunge {
                        return Err(format!(
                            "EXPUNGE {n} during a sequence-number FETCH, STORE or SEARCH"
                        ));
                    }
                    if n == 0 || n > self.seqs.len() {
                        return Err(format!("EXPUNGE {n} with {} messages", self.seqs.len()));
                    }
                    if let Some(uid) = self.seqs.remove(n - 1) {
                        self.told_expunged.insert(uid);
                        let key = (self.folder.clone(), uid);
                        self.ledger.lock().expect("ledger").expunged.insert(key);
                    }
                    self.counts.expunges_told += 1;
                    reply.expunged.push(n);
                }
                "FETCH" => {
                    let f = self.fetch(n, rest)?;
                    reply.fetches.push(f);
                }
                other => return Err(format!("unknown response {other:?}: {line:?}")),
            }
            return Ok(());
        }
        match first.to_ascii_uppercase().as_str() {
            "FLAGS" => {
                let list = paren_after(head, "FLAGS (").ok_or("FLAGS without a list")?;
                self.flags = parse_list(list)
                    .into_iter()
                    .filter(|f| is_keyword(f))
                    .map(|f| f.to_ascii_lowercase())
                    .collect();
                self.counts.flag_lists += 1;
            }
            "SEARCH" => {
                let nums: Result<Vec<u32>, _> =
                    head[6..].split_whitespace().map(str::parse).collect();
                reply.search = Some(nums.map_err(|_| format!("bad SEARCH: {line:?}"))?);
                reply.search_len = self.seqs.len();
            }
            "OK" => {
                if let Some(list) = paren_after(head, "[PERMANENTFLAGS (") {
                    let list = parse_list(list);
                    self.any_keyword = list.iter().any(|f| f == "\\*");
                    self.permanent = list
                        .into_iter()
                        .filter(|f| is_keyword(f))
                        .map(|f| f.to_ascii_lowercase())
                        .collect();
                }
                if let Some(cu) = copyuid(head) {
                    reply.copyuid = Some(cu);
                }
            }
            "BYE" | "BAD" | "NO" => return Err(format!("unexpected {line:?}")),
            _ => return Err(format!("unknown response {line:?}")),
        }
        Ok(())
    }

    fn fetch(&mut self, n: usize, rest: &str) -> Result<Fetch, String> {
        if n == 0 || n > self.seqs.len() {
            return Err(format!("FETCH of {n} with {} messages", self.seqs.len()));
        }
        let mut f = Fetch {
            seq: n,
            ..Fetch::default()
        };
        // The mark is in a literal at the end; look for items before it.
        let (items, literal) = match rest.find("{") {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        f.uid = number_after(items, "UID ");
        f.flags = paren_after(items, "FLAGS (").map(parse_list);
        if let Some(i) = literal.find("X-Mark: ") {
            let m = &literal[i + 8..];
            f.mark = m.split("\r\n").next().map(str::to_string);
        }
        if let Some(uid) = f.uid {
            match self.seqs[n - 1] {
                Some(known) if known != uid => {
                    return Err(format!(
                        "sequence number {n} was UID {known}, now the server says UID {uid}"
                    ));
                }
                _ => self.seqs[n - 1] = Some(uid),
            }
            let below = self.seqs[..n - 1].iter().rev().flatten().next();
            let above = self.seqs[n..].iter().flatten().next();
            if below.is_some_and(|&b| b >= uid) || above.is_some_and(|&a| a <= uid) {
                return Err(format!(
                    "UID {uid} at {n} is out of order with its neighbours {below:?} {above:?}"
                ));
            }
            if self.told_expunged.contains(&uid) {
                return Err(format!("FETCH of UID {uid}, which was expunged"));
            }
        }
        if let Some(flags) = &f.flags {
            for k in flags.iter().filter(|k| is_keyword(k)) {
                let lower = k.to_ascii_lowercase();
                if !self.flags.contains(&lower) {
                    return Err(format!(
                        "FETCH shows keyword {k} before any * FLAGS announced it (told: {:?})",
                        self.flags
                    ));
                }
                if !self.permanent.contains(&lower) && !self.any_keyword {
                    return Err(format!(
                        "FETCH shows keyword {k}, which PERMANENTFLAGS does not allow"
                    ));
                }
            }
        }
        if let (Some(uid), Some(mark)) = (f.uid, &f.mark) {
            let key = (self.folder.clone(), uid);
            let mut ledger = self.ledger.lock().expect("ledger");
            match ledger.mark(&key) {
                Some(m) if m != mark => {
                    return Err(format!(
                        "UID {uid} shows the content of {mark}, but was created as {m}"
                    ));
                }
                Some(_) => {}
                None => ledger.seen.push((key.clone(), mark.clone(), self.id)),
            }
            if ledger.expunged.contains(&key) {
                self.counts.ghost_reads += 1;
            }
        }
        Ok(f)
    }

    fn len(&self) -> usize {
        self.seqs.len()
    }

    /// A random range `a:b` of existing sequence numbers.
    fn range(&self, rng: &mut fastrand::Rng) -> Option<(usize, usize)> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        let a = rng.usize(1..=n);
        let b = (a + rng.usize(0..6)).min(n);
        Some((a, b))
    }

    /// The solicited FETCH responses (those with the item only they carry)
    /// must cover `a..=b` exactly, once each, unless the command failed
    /// visibly.
    fn check_covered(
        &mut self,
        what: &str,
        r: &Reply,
        a: usize,
        b: usize,
        solicited: impl Fn(&Fetch) -> bool,
    ) -> Result<(), String> {
        if r.status != "OK" {
            if r.status == "NO" && r.text.starts_with("[EXPUNGEISSUED]") {
                return Ok(());
            }
            return Err(self.fail(format!("{what} failed: {} {}", r.status, r.text)));
        }
        let mut seen = BTreeSet::new();
        for f in r.fetches.iter().filter(|f| solicited(f)) {
            if !seen.insert(f.seq) {
                return Err(self.fail(format!("{what}: {} answered twice", f.seq)));
            }
        }
        let want: BTreeSet<usize> = (a..=b).collect();
        if seen != want {
            return Err(self.fail(format!(
                "{what} {a}:{b} answered for {seen:?} with a plain OK: a message left out"
            )));
        }
        Ok(())
    }

    async fn select(&mut self, c: &mut Client, folder: &str) -> Result<(), String> {
        self.folder = folder.to_string();
        self.seqs.clear();
        self.told_expunged.clear();
        let r = self.run(c, &format!("SELECT {folder}"), Kind::Any).await?;
        if r.status != "OK" {
            return Err(self.fail(format!("SELECT: {} {}", r.status, r.text)));
        }
        Ok(())
    }

    /// One random operation.
    async fn step(&mut self, c: &mut Client, rng: &mut fastrand::Rng) -> Result<(), String> {
        self.counts.ops += 1;
        let other = if self.folder == FOLDERS[0] {
            FOLDERS[1]
        } else {
            FOLDERS[0]
        };
        match rng.u32(0..100) {
            // FETCH a:b: every number answered (a ghost too).
            0..=24 => {
                let Some((a, b)) = self.range(rng) else {
                    return Ok(());
                };
                let r = self
                    .run(
                        c,
                        &format!("FETCH {a}:{b} (UID FLAGS BODY.PEEK[HEADER.FIELDS (X-MARK)])"),
                        Kind::NoExpunge,
                    )
                    .await?;
                self.check_covered("FETCH", &r, a, b, |f| f.mark.is_some())?;
            }
            // UID FETCH of everything: may carry EXPUNGE.
            25..=29 => {
                let r = self.run(c, "UID FETCH 1:* (UID FLAGS)", Kind::Any).await?;
                if r.status != "OK" {
                    return Err(self.fail(format!("UID FETCH: {} {}", r.status, r.text)));
                }
            }
            // SEARCH ALL: every message the session knows.
            30..=37 => {
                let r = self.run(c, "SEARCH ALL", Kind::NoExpunge).await?;
                let n = r.search_len as u32;
                let hits = r.search.clone().unwrap_or_default();
                if r.status != "OK" || hits != (1..=n).collect::<Vec<_>>() {
                    return Err(self.fail(format!(
                        "SEARCH ALL with {n} messages: {hits:?}, {} {}",
                        r.status, r.text
                    )));
                }
            }
            // SEARCH a:b.
            38..=41 => {
                let Some((a, b)) = self.range(rng) else {
                    return Ok(());
                };
                let r = self
                    .run(c, &format!("SEARCH {a}:{b}"), Kind::NoExpunge)
                    .await?;
                let hits = r.search.clone().unwrap_or_default();
                let want: Vec<u32> = (a as u32..=b as u32).collect();
                if r.status != "OK" || hits != want {
                    return Err(
                        self.fail(format!("SEARCH {a}:{b}: {hits:?}, {} {}", r.status, r.text))
                    );
                }
            }
            // STORE a:b ±FLAGS: one FETCH per number.
            42..=61 => {
                let Some((a, b)) = self.range(rng) else {
                    return Ok(());
                };
                let flag = match rng.u32(0..4) {
                    0 => "\\Flagged".to_string(),
                    1 => "\\Seen".to_string(),
                    _ => format!("$Kw{}", rng.usize(0..KEYWORDS)),
                };
                let sign = if rng.u32(0..3) == 0 { '-' } else { '+' };
                let r = self
                    .run(
                        c,
                        &format!("STORE {a}:{b} {sign}FLAGS ({flag})"),
                        Kind::NoExpunge,
                    )
                    .await?;
                // A STORE's own FETCHes carry FLAGS; so may others' updates,
                // but then the numbers are still in the folder.
                self.check_store(&r, a, b)?;
            }
            // Flag one known message \Deleted and expunge.
            62..=71 => {
                let known: Vec<u32> = self.seqs.iter().flatten().copied().collect();
                if known.is_empty() {
                    return Ok(());
                }
                let uid = known[rng.usize(0..known.len())];
                // Recorded first: a STORE that fails with EXPUNGEISSUED may
                // still have flagged it before it went.
                let key = (self.folder.clone(), uid);
                self.ledger.lock().expect("ledger").deleted.insert(key);
                let r = self
                    .run(
                        c,
                        &format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"),
                        Kind::Any,
                    )
                    .await?;
                if r.status != "OK" && !r.text.starts_with("[EXPUNGEISSUED]") {
                    return Err(self.fail(format!("UID STORE: {} {}", r.status, r.text)));
                }
                let cmd = if rng.bool() {
                    "EXPUNGE".to_string()
                } else {
                    format!("UID EXPUNGE {uid}")
                };
                let r = self.run(c, &cmd, Kind::Any).await?;
                if r.status != "OK" {
                    return Err(self.fail(format!("{cmd}: {} {}", r.status, r.text)));
                }
            }
            // COPY (72..=79) or MOVE (80..=82) a:b to the other folder.
            n @ 72..=82 => {
                let Some((a, b)) = self.range(rng) else {
                    return Ok(());
                };
                let verb = if n < 80 { "COPY" } else { "MOVE" };
                let r = self
                    .run(c, &format!("{verb} {a}:{b} {other}"), Kind::Any)
                    .await?;
                self.copied(&r, other, verb == "MOVE", verb)?;
            }
            // APPEND a new message, sometimes with a new keyword.
            83..=94 => {
                let folder = if rng.bool() {
                    self.folder.clone()
                } else {
                    other.into()
                };
                let flags = match rng.u32(0..3) {
                    0 => String::new(),
                    1 => "\\Seen".into(),
                    _ => format!("$Kw{}", rng.usize(0..KEYWORDS)),
                };
                self.append(c, &folder, &flags).await?;
            }
            95 => {
                let r = self.run(c, "NOOP", Kind::Any).await?;
                if r.status != "OK" {
                    return Err(self.fail(format!("NOOP: {} {}", r.status, r.text)));
                }
            }
            // IDLE a little while the others work, then DONE: what the
            // server said unasked (written by the IDLE fan-out or by the
            // session) must fit the model as any other update.
            96..=97 => {
                let tag = self.next_tag();
                c.send(format!("{tag} IDLE\r\n").as_bytes()).await;
                let first = c.line().await;
                if first != "+ idling\r\n" {
                    return Err(self.fail(format!("IDLE answered {first:?}")));
                }
                tokio::time::sleep(Duration::from_millis(rng.u64(0..15))).await;
                let r = self.run_bytes(c, &tag, b"DONE\r\n", Kind::Any).await?;
                if r.status != "OK" {
                    return Err(self.fail(format!("IDLE: {} {}", r.status, r.text)));
                }
                self.counts.idles += 1;
            }
            _ => {
                let folder = if rng.bool() { FOLDERS[0] } else { FOLDERS[1] };
                self.select(c, folder).await?;
            }
        }
        Ok(())
    }

    fn check_store(&mut self, r: &Reply, a: usize, b: usize) -> Result<(), String> {
        if r.status != "OK" {
            if r.status == "NO" && r.text.starts_with("[EXPUNGEISSUED]") {
                return Ok(());
            }
            return Err(self.fail(format!("STORE failed: {} {}", r.status, r.text)));
        }
        let answered: BTreeSet<usize> = r
            .fetches
            .iter()
            .filter(|f| f.flags.is_some())
            .map(|f| f.seq)
            .collect();
        let missing: Vec<usize> = (a..=b).filter(|s| !answered.contains(s)).collect();
        if !missing.is_empty() {
            return Err(self.fail(format!(
                "STORE {a}:{b} sent no FETCH for {missing:?} with a plain OK"
            )));
        }
        Ok(())
    }

    fn copied(&mut self, r: &Reply, dest: &str, is_move: bool, what: &str) -> Result<(), String> {
        if r.status != "OK" {
            if r.status == "NO" && r.text.starts_with("[EXPUNGEISSUED]") {
                return Ok(());
            }
            return Err(self.fail(format!("{what}: {} {}", r.status, r.text)));
        }
        let Some((src, dst)) = &r.copyuid else {
            // UIDPLUS: a COPY or MOVE of existing messages says where they went.
            return Err(self.fail(format!("{what} OK without COPYUID")));
        };
        if src.len() != dst.len() {
            return Err(self.fail(format!("{what}: COPYUID {src:?} {dst:?} differ in length")));
        }
        let mut ledger = self.ledger.lock().expect("ledger");
        for (s, d) in src.iter().zip(dst) {
            let origin = Origin::CopyOf((self.folder.clone(), *s));
            if ledger
                .created
                .insert((dest.to_string(), *d), origin)
                .is_some()
            {
                drop(ledger);
                return Err(self.fail(format!("{what}: UID {d} of {dest} handed out twice")));
            }
            if is_move {
                ledger.moved.insert((self.folder.clone(), *s));
            }
        }
        Ok(())
    }

    async fn append(&mut self, c: &mut Client, folder: &str, flags: &str) -> Result<(), String> {
        self.marks += 1;
        let mark = format!("s{}-{}", self.id, self.marks);
        let body = format!("X-Mark: {mark}\r\nSubject: {mark}\r\n\r\nbody of {mark}\r\n");
        let tag = self.next_tag();
        let wire = format!(
            "{tag} APPEND {folder} ({flags}) {{{}+}}\r\n{body}\r\n",
            body.len()
        );
        // The mark is in the ledger before any session can FETCH the message.
        let r = self.run_bytes(c, &tag, wire.as_bytes(), Kind::Any).await;
        let r = r?;
        let uid = number_after(&r.text, "[APPENDUID ")
            .and_then(|_| r.text.split_whitespace().nth(2))
            .and_then(|u| u.trim_end_matches(']').parse::<u32>().ok());
        match (r.status.as_str(), uid) {
            ("OK", Some(uid)) => {
                let mut ledger = self.ledger.lock().expect("ledger");
                let origin = Origin::Mark(mark);
                if ledger
                    .created
                    .insert((folder.to_string(), uid), origin)
                    .is_some()
                {
                    drop(ledger);
                    return Err(self.fail(format!("APPEND: UID {uid} handed out twice")));
                }
                Ok(())
            }
            _ => Err(self.fail(format!("APPEND: {} {}", r.status, r.text))),
        }
    }
}

/// One session's whole run.
async fn session(
    addr: std::net::SocketAddr,
    id: usize,
    seed: u64,
    ops: usize,
    ledger: Shared,
) -> Result<Counts, String> {
    let mut rng = fastrand::Rng::with_seed(seed ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut c = Client::login(addr, ALICE).await;
    let mut m = Model {
        id,
        folder: String::new(),
        seqs: Vec::new(),
        told_expunged: HashSet::new(),
        flags: HashSet::new(),
        permanent: HashSet::new(),
        any_keyword: false,
        log: VecDeque::new(),
        ledger,
        counts: Counts::default(),
        tag: 0,
        marks: 0,
    };
    m.select(&mut c, FOLDERS[id % FOLDERS.len()]).await?;
    for _ in 0..ops {
        m.step(&mut c, &mut rng).await?;
    }
    let r = m.run(&mut c, "NOOP", Kind::Any).await?;
    if r.status != "OK" {
        return Err(m.fail("final NOOP".into()));
    }
    c.cmd("z LOGOUT").await;
    Ok(m.counts)
}

/// Every folder holds exactly the messages created and not removed.
async fn final_check(addr: std::net::SocketAddr, ledger: &Ledger) -> Result<usize, String> {
    let mut c = Client::login(addr, ALICE).await;
    let mut total = 0;
    for folder in FOLDERS {
        let r = c.cmd(&format!("s EXAMINE {folder}")).await;
        if !r.contains("s OK") {
            return Err(format!("EXAMINE {folder}: {r}"));
        }
        let r = c
            .cmd("f UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (X-MARK)])")
            .await;
        let mut present: HashMap<u32, String> = HashMap::new();
        for resp in r.split("* ").filter(|l| l.contains(" FETCH (")) {
            let uid = number_after(resp, "UID ").ok_or(format!("no UID in {resp:?}"))?;
            let mark = resp
                .split("X-Mark: ")
                .nth(1)
                .and_then(|m| m.split("\r\n").next())
                .ok_or(format!("no mark in {resp:?}"))?;
            if present.insert(uid, mark.to_string()).is_some() {
                return Err(format!("{folder}: UID {uid} listed twice"));
            }
        }
        for (uid, mark) in &present {
            match ledger.mark(&(folder.to_string(), *uid)) {
                Some(m) if m == mark => {}
                Some(m) => {
                    return Err(format!(
                        "{folder} UID {uid}: content {mark}, created as {m}"
                    ));
                }
                None => {
                    return Err(format!(
                        "{folder} UID {uid} ({mark}) was never created (a COPY that failed, or a duplicate)"
                    ));
                }
            }
        }
        for (f, uid) in ledger.created.keys() {
            let key = (f.clone(), *uid);
            let mark = ledger.mark(&key).unwrap_or("?");
            if f == folder
                && !present.contains_key(uid)
                && !ledger.maybe_deleted(&key)
                && !ledger.moved.contains(&key)
            {
                return Err(format!(
                    "{folder} UID {uid} ({mark}) was lost: never deleted nor moved"
                ));
            }
        }
        total += present.len();
    }
    for (key, mark, id) in &ledger.seen {
        match ledger.mark(key) {
            Some(m) if m == mark => {}
            other => {
                return Err(format!(
                    "session {id} saw {key:?} with content {mark}, created as {other:?}"
                ));
            }
        }
    }
    Ok(total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sessions_agree_with_their_models() {
    let seed: u64 = std::env::var("IMAP_MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let ops: usize = std::env::var("IMAP_MODEL_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_OPS);
    println!("IMAP_MODEL_SEED={seed} IMAP_MODEL_OPS={ops}");
    let server = start().await;
    let addr = server.imap_addr();
    let ledger: Shared = Arc::default();
    let run = async {
        // A few messages in each folder to start from.
        let mut c = Client::login(addr, ALICE).await;
        let r = c.cmd("c CREATE Box2").await;
        assert!(r.contains("c OK"), "{r}");
        let mut setup = Model {
            id: 99,
            folder: String::new(),
            seqs: Vec::new(),
            told_expunged: HashSet::new(),
            flags: HashSet::new(),
            permanent: HashSet::new(),
            any_keyword: false,
            log: VecDeque::new(),
            ledger: Arc::clone(&ledger),
            counts: Counts::default(),
            tag: 0,
            marks: 0,
        };
        for folder in FOLDERS {
            for _ in 0..10 {
                setup.append(&mut c, folder, "").await?;
            }
        }
        let tasks: Vec<_> = (0..SESSIONS)
            .map(|id| tokio::spawn(session(addr, id, seed, ops, Arc::clone(&ledger))))
            .collect();
        let mut total = Counts::default();
        let mut failures = Vec::new();
        for t in tasks {
            match t.await {
                Ok(Ok(c)) => {
                    total.ops += c.ops;
                    total.ghost_reads += c.ghost_reads;
                    total.expunge_issued += c.expunge_issued;
                    total.flag_lists += c.flag_lists;
                    total.expunges_told += c.expunges_told;
                    total.idles += c.idles;
                }
                Ok(Err(e)) => failures.push(e),
                Err(e) => failures.push(format!("a session panicked: {e}")),
            }
        }
        if !failures.is_empty() {
            return Err(failures.join("\n\n"));
        }
        // Every session is done: nothing else holds the ledger now.
        let ledger = std::mem::take(&mut *ledger.lock().expect("ledger"));
        let left = final_check(addr, &ledger).await?;
        Ok::<_, String>((total, left, ledger.created.len()))
    };
    match tokio::time::timeout(RUN_LIMIT, run).await {
        Ok(Ok((counts, left, created))) => {
            println!("{counts:?}; {created} messages created, {left} left at the end");
        }
        Ok(Err(e)) => panic!("IMAP_MODEL_SEED={seed}: {e}"),
        Err(_) => panic!("IMAP_MODEL_SEED={seed}: the run took over {RUN_LIMIT:?}"),
    }
    server.shutdown().await;
}
