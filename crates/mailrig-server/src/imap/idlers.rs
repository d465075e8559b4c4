//! IDLE's direct fan-out: `* n EXISTS` written straight onto the sockets of
//! the sessions idling on a mailbox, without waking their tasks.
//!
//! Waking a task per idling session at every delivery costs a scheduler
//! round, a poll of the session and its catch-up with the store, each on
//! cold memory: with 10,000 sessions on one mailbox that is most of the
//! delay between the `250` and the last `EXISTS`. Instead the mailbox's
//! [`Board`] (one task, woken by the mailbox's change event) runs one pass
//! per change: it reads the folder once ([`FolderSnap`]), then for each
//! registered [`Idler`] whose
//! client has been told everything but the new messages it writes the
//! `* n EXISTS` and `* r RECENT` lines itself, on the plain-TCP socket the
//! driver lent it ([`Borrower`]), spread over the runtime's workers. Anything
//! else wakes that one session, which catches up as it always did: a flag
//! change or an expunge in its folder, new messages with keywords its client
//! must first hear of in `* FLAGS`, new messages to claim as `\Recent` (one
//! session per pass is woken for that), a TLS connection, a socket whose
//! buffer is full. The session learns what its client was told the next
//! time it runs ([`Idler::disarm`], then `View::learn_told`).
//!
//! A board lives while sessions idle on its mailbox (a store of 100,000
//! mailboxes carries nothing for it otherwise).
//!
//! Locks: a pass takes the mailbox's data lock for the snapshot only, then
//! one shard of idlers at a time, and under it each idler's own lock; a
//! session takes its idler's lock to arm and disarm it and a shard's lock
//! to register and leave. Nothing takes them the other way round.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use event_listener::{Event, EventListener};
use mailrig_core::store::{MailboxStore, Store};
use mailrig_core::world::MailboxId;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::wire;
use crate::cpus::Claims;
use crate::driver::{Borrower, Reclaimed};
use crate::net::Lent;

/// Idlers are kept in this many lists, so that a pass holds a lock over a
/// few hundred of 10,000 sessions, not over all of them.
const SHARDS: usize = 32;

/// How many idlers registered one after another go to the same shard.
const RUN: usize = 64;

/// From this many idlers on, each task of a pass holds a CPU of its own
/// while the pass runs ([`crate::cpus`]): a pass to 1,000 sessions takes
/// some 3 ms of CPU, long enough for a bad placement to matter and for two
/// `sched_setaffinity` calls per task (and perhaps a move) not to. (At
/// 1,000 sessions the p99 went from 3.3-3.7 to 2.8 ms, at 3,000 from
/// 11.7-13.0 to 9.0-9.3 ms.)
const SPREAD_FROM: usize = 1000;

/// How many of a folder's newest messages a pass looks at for keywords: an
/// idler further behind than that is woken instead of told.
const SCAN: usize = 64;

/// What a session's client has been told of its folder: everything below
/// `uid_next` as of `modseq`, `exists` messages, `recent` of them `\Recent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Told {
    /// The stored folder's UIDVALIDITY.
    pub validity: u32,
    pub uid_next: u32,
    pub modseq: u64,
    pub exists: u32,
    pub recent: u32,
}

/// One idling session, as the fan-out sees it. A pass reads the first 64
/// bytes only (the lock, the state and the folder's pointer): with 10,000
/// idlers each is a cache miss, so they share one line.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct Idler {
    state: Mutex<IdlerState>,
    /// The board's copy of the folder name (compared by pointer).
    folder: Arc<str>,
    /// The rest of a line a pass could only partly write (rare).
    residue: Mutex<Vec<u8>>,
    /// Wakes the session's task.
    wake: Event,
}

#[derive(Debug)]
#[repr(C)]
struct IdlerState {
    /// The session waits and `at` is what its client knows: a pass may tell
    /// it more. Cleared when the pass wakes it and when the session runs.
    armed: bool,
    /// A pass wrote to the client since the session armed.
    told: bool,
    /// The session may claim `\Recent` (not EXAMINE).
    claims: bool,
    socket: Option<Lent>,
    at: Told,
}

impl Idler {
    /// An idler for a session on `folder` (as [`Board::folder_name`] gave it).
    pub fn new(folder: Arc<str>, claims: bool) -> Idler {
        Idler {
            state: Mutex::new(IdlerState {
                armed: false,
                told: false,
                claims,
                socket: None,
                at: Told {
                    validity: 0,
                    uid_next: 0,
                    modseq: 0,
                    exists: 0,
                    recent: 0,
                },
            }),
            folder,
            residue: Mutex::new(Vec::new()),
            wake: Event::new(),
        }
    }

    /// The session is about to wait and its client knows `at`: from now on
    /// a pass tells it of new messages or wakes it through the listener
    /// returned (made before arming, so no wake-up is missed).
    pub fn arm(&self, at: Told) -> EventListener {
        let listener = self.wake.listen();
        let mut s = self.state.lock();
        s.armed = true;
        s.at = at;
        s.told = false;
        listener
    }

    /// The session runs again: no pass tells it anything from now on.
    /// Returns what its client was told, if a pass wrote since it armed.
    pub fn disarm(&self) -> Option<Told> {
        let mut s = self.state.lock();
        s.armed = false;
        std::mem::take(&mut s.told).then_some(s.at)
    }

    /// One pass's look at this idler: tells its client of new messages,
    /// wakes the session, or leaves it be.
    fn tell(
        &self,
        snaps: &[(Arc<str>, Option<FolderSnap>)],
        claimer: &AtomicBool,
        buf: &mut Vec<u8>,
    ) {
        let mut s = self.state.lock();
        if !s.armed {
            return;
        }
        let snap = snaps
            .iter()
            .find(|(name, _)| Arc::ptr_eq(name, &self.folder))
            .and_then(|(_, snap)| snap.as_ref());
        let decision = match snap {
            None => Decision::Wake,
            Some(snap) => snap.decide(&s.at, s.claims, claimer),
        };
        let snap = match decision {
            Decision::Nothing => return,
            Decision::Wake => return self.wake_up(&mut s),
            Decision::Tell => snap.expect("a snapshot to tell from"),
        };
        let Some(socket) = &s.socket else {
            return self.wake_up(&mut s);
        };
        buf.clear();
        wire::untagged_number(buf, snap.count as usize, b"EXISTS");
        wire::untagged_number(buf, s.at.recent as usize, b"RECENT");
        let written = match socket.try_write(buf) {
            Ok(n) if n > 0 => n,
            // Full (or gone): the session writes, with back-pressure, or
            // finds out.
            _ => return self.wake_up(&mut s),
        };
        s.at.exists = snap.count;
        s.at.uid_next = snap.uid_next;
        s.at.modseq = snap.highest_modseq;
        s.told = true;
        if written < buf.len() {
            *self.residue.lock() = buf[written..].to_vec();
            self.wake_up(&mut s);
        }
    }

    fn wake_up(&self, s: &mut IdlerState) {
        s.armed = false;
        self.wake.notify(1);
    }
}

impl Borrower for Idler {
    fn lend(&self, socket: Lent) {
        self.state.lock().socket = Some(socket);
    }

    fn reclaim(&self) -> Reclaimed {
        let mut s = self.state.lock();
        let socket = s.socket.take();
        let residue = std::mem::take(&mut *self.residue.lock());
        Reclaimed { socket, residue }
    }
}

/// What a pass does for one idler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Nothing,
    Tell,
    Wake,
}

/// A folder as one pass found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderSnap {
    pub validity: u32,
    /// Messages in the folder.
    pub count: u32,
    pub uid_next: u32,
    pub highest_modseq: u64,
    /// The modseq of the latest change that was not an arrival.
    pub changed_modseq: u64,
    /// Some messages are `\Recent` and no session has claimed them.
    pub unclaimed: bool,
    /// The messages at or above this UID were looked at for keywords.
    pub scanned_from: u32,
    /// The highest UID among them with a keyword (0: none).
    pub keyword_uid: u32,
}

impl FolderSnap {
    fn of(f: &mailrig_core::store::Folder) -> FolderSnap {
        let mut scanned_from = 0;
        let mut keyword_uid = 0;
        if f.messages.len() > SCAN {
            scanned_from = f.messages[f.messages.len() - SCAN].uid;
        }
        for m in f.messages.iter().rev().take(SCAN) {
            if m.flags.keywords().next().is_some() {
                keyword_uid = m.uid;
                break;
            }
        }
        FolderSnap {
            validity: f.uid_validity,
            count: u32::try_from(f.messages.len()).unwrap_or(u32::MAX),
            uid_next: f.uid_next,
            highest_modseq: f.highest_modseq,
            changed_modseq: f.changed_modseq,
            unclaimed: f.first_recent_uid < f.uid_next,
            scanned_from,
            keyword_uid,
        }
    }

    /// Whether a client that knows `at` can simply be told `* count EXISTS`.
    fn decide(&self, at: &Told, claims: bool, claimer: &AtomicBool) -> Decision {
        if self.validity != at.validity || self.changed_modseq > at.modseq || self.count < at.exists
        {
            return Decision::Wake;
        }
        if self.uid_next <= at.uid_next {
            return Decision::Nothing;
        }
        // UIDs are handed out one by one: every UID from what the client
        // knows up to UIDNEXT is a new message (else it cannot be told by
        // count alone).
        if self.count - at.exists != self.uid_next - at.uid_next {
            return Decision::Wake;
        }
        if at.uid_next < self.scanned_from || self.keyword_uid >= at.uid_next {
            return Decision::Wake;
        }
        if self.unclaimed && claims && !claimer.swap(true, Ordering::AcqRel) {
            return Decision::Wake;
        }
        Decision::Tell
    }
}

/// The boards of the mailboxes idled on now, by mailbox (one per server,
/// in its state). A board lives while sessions idle on its mailbox.
#[derive(Debug, Default)]
pub struct Boards(Mutex<HashMap<MailboxId, Weak<Board>>>);

impl Boards {
    /// The board of a mailbox, made when a session first idles there.
    /// `None` outside a tokio runtime: the fan-out runs as tasks.
    pub fn of(
        self: &Arc<Boards>,
        store: &Arc<Store>,
        mailbox: MailboxId,
        shutdown: &CancellationToken,
    ) -> Option<Arc<Board>> {
        let rt = tokio::runtime::Handle::try_current().ok()?;
        let mut boards = self.0.lock();
        if let Some(board) = boards.get(&mailbox).and_then(Weak::upgrade) {
            return Some(board);
        }
        let board = Arc::new(Board {
            boards: Arc::downgrade(self),
            store: Arc::clone(store),
            mailbox,
            rt,
            shutdown: shutdown.clone(),
            shards: std::array::from_fn(|_| Mutex::new(Vec::new())),
            folders: Mutex::new(Vec::new()),
            idlers: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
            watching: AtomicBool::new(false),
            emptied: Notify::new(),
            spread_from: AtomicUsize::new(SPREAD_FROM),
            last_spread: AtomicU64::new(0),
        });
        boards.insert(mailbox, Arc::downgrade(&board));
        Some(board)
    }
}

/// The idling sessions of one mailbox, and the task that tells them: it
/// waits on the mailbox's change event and runs a pass per change (changes
/// that come during a pass make one more pass), for as long as sessions
/// idle there.
#[derive(Debug)]
pub struct Board {
    boards: Weak<Boards>,
    store: Arc<Store>,
    mailbox: MailboxId,
    rt: tokio::runtime::Handle,
    shutdown: CancellationToken,
    shards: [Mutex<Vec<Arc<Idler>>>; SHARDS],
    /// The folders idled on, with how many idlers each.
    folders: Mutex<Vec<(Arc<str>, usize)>>,
    idlers: AtomicUsize,
    /// For spreading registrations over the shards.
    next: AtomicUsize,
    /// The board's task runs.
    watching: AtomicBool,
    /// The last idler left: the task may end.
    emptied: Notify,
    /// [`SPREAD_FROM`] (tests lower it).
    spread_from: AtomicUsize,
    /// The CPUs the tasks of the last spread pass held (a bit per CPU).
    last_spread: AtomicU64,
}

/// Where a registered idler is; leaves the board when dropped.
#[derive(Debug)]
pub struct Registration {
    board: Arc<Board>,
    idler: Arc<Idler>,
    shard: usize,
}

impl Registration {
    pub fn idler(&self) -> &Arc<Idler> {
        &self.idler
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.board.leave(self.shard, &self.idler);
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        if let Some(boards) = self.boards.upgrade() {
            let mut boards = boards.0.lock();
            // Only if no new board took the place meanwhile.
            if boards
                .get(&self.mailbox)
                .is_some_and(|w| w.strong_count() == 0)
            {
                boards.remove(&self.mailbox);
            }
        }
    }
}

impl Board {
    /// The board's copy of a folder name, for [`Idler::new`]: a pass finds
    /// an idler's folder by pointer.
    pub fn folder_name(&self, folder: &str) -> Arc<str> {
        let folders = self.folders.lock();
        match folders.iter().find(|(f, _)| &**f == folder) {
            Some((f, _)) => Arc::clone(f),
            None => Arc::from(folder),
        }
    }

    /// Adds an idler; it is told or woken by every pass until the
    /// registration is dropped (and only while it is armed).
    pub fn register(self: &Arc<Board>, idler: Arc<Idler>) -> Registration {
        {
            let mut folders = self.folders.lock();
            match folders
                .iter_mut()
                .find(|(f, _)| Arc::ptr_eq(f, &idler.folder))
            {
                Some((_, n)) => *n += 1,
                None => folders.push((Arc::clone(&idler.folder), 1)),
            }
        }
        // Runs of sessions that came one after the other share a shard:
        // their sockets were made one after the other too, and the kernel
        // finds those (descriptors, socket structures) faster in that order.
        let shard = self.next.fetch_add(1, Ordering::Relaxed) / RUN % SHARDS;
        self.shards[shard].lock().push(Arc::clone(&idler));
        self.idlers.fetch_add(1, Ordering::SeqCst);
        if !self.watching.swap(true, Ordering::SeqCst) {
            self.rt.spawn(Arc::clone(self).watch());
        }
        Registration {
            board: Arc::clone(self),
            idler,
            shard,
        }
    }

    fn leave(&self, shard: usize, idler: &Arc<Idler>) {
        {
            let mut list = self.shards[shard].lock();
            if let Some(i) = list.iter().position(|x| Arc::ptr_eq(x, idler)) {
                list.swap_remove(i);
            }
        }
        {
            let mut folders = self.folders.lock();
            if let Some(i) = folders
                .iter()
                .position(|(f, _)| Arc::ptr_eq(f, &idler.folder))
            {
                folders[i].1 -= 1;
                if folders[i].1 == 0 {
                    folders.swap_remove(i);
                }
            }
        }
        if self.idlers.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.emptied.notify_one();
        }
    }

    /// The board's task: a pass whenever the mailbox changed since the last
    /// one (and once at the start, for changes before it listened), until
    /// no session idles here or the server shuts down.
    async fn watch(self: Arc<Board>) {
        let mailbox = self.store.mailbox(self.mailbox);
        let mut seen = None;
        loop {
            // Listening first, then reading the version: no change is missed.
            let changed = mailbox.listen();
            let emptied = self.emptied.notified();
            if self.idlers.load(Ordering::SeqCst) == 0 {
                self.watching.store(false, Ordering::SeqCst);
                // A session that registered meanwhile either found the task
                // still running or starts a new one: one way or the other.
                if self.idlers.load(Ordering::SeqCst) == 0
                    || self.watching.swap(true, Ordering::SeqCst)
                {
                    return;
                }
                continue;
            }
            let version = mailbox.version();
            if seen != Some(version) {
                seen = Some(version);
                self.pass().await;
                continue;
            }
            tokio::select! {
                _ = changed => {}
                _ = emptied => {}
                _ = self.shutdown.cancelled() => {
                    self.watching.store(false, Ordering::SeqCst);
                    return;
                }
            }
        }
    }

    /// One pass: a task per worker, each taking shards until none is left,
    /// so that the writes spread over the cores. (Spawned from this task,
    /// the first goes to this worker's LIFO slot and is pushed out by the
    /// next into the run queue, where another worker may steal it.)
    async fn pass(self: &Arc<Board>) {
        let workers = self.rt.metrics().num_workers().max(1);
        let spread = workers > 1
            && self.idlers.load(Ordering::Relaxed) >= self.spread_from.load(Ordering::Relaxed);
        let pass = Arc::new(Pass {
            board: Arc::clone(self),
            snaps: self.snapshot(),
            next_shard: AtomicUsize::new(0),
            claimer: AtomicBool::new(false),
            cpus: spread.then(Claims::new),
        });
        let tasks: Vec<_> = (0..workers)
            .map(|_| {
                let pass = Arc::clone(&pass);
                self.rt.spawn(async move { pass.work() })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
        if let Some(cpus) = &pass.cpus {
            self.last_spread.store(cpus.held(), Ordering::Relaxed);
        }
    }

    /// The folders idled on, as they are now.
    fn snapshot(&self) -> Vec<(Arc<str>, Option<FolderSnap>)> {
        let names: Vec<Arc<str>> = self
            .folders
            .lock()
            .iter()
            .map(|(f, _)| Arc::clone(f))
            .collect();
        let mailbox: &MailboxStore = self.store.mailbox(self.mailbox);
        let data = mailbox.lock();
        names
            .into_iter()
            .map(|name| {
                let snap = data.folder(&name).ok().map(FolderSnap::of);
                (name, snap)
            })
            .collect()
    }
}

/// How many idlers ahead a pass asks for the memory of: each idler is a
/// cache miss (cold after a quiet while), and its lock, an atomic, waits
/// for it. With prefetching the CPU per session told fell from 5.6-5.7 to
/// 5.3-5.4 µs at 10,000 sessions; 2, 6 and 16 ahead measured the same.
const PREFETCH: usize = 4;

/// Asks the CPU to bring `p`'s cache line in (a hint, no effect elsewhere).
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch reads nothing the program sees and never
        // faults, whatever the address; SSE is part of every x86_64.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// One fan-out after a change.
#[derive(Debug)]
struct Pass {
    board: Arc<Board>,
    snaps: Vec<(Arc<str>, Option<FolderSnap>)>,
    next_shard: AtomicUsize,
    /// A session has been woken to claim the new `\Recent` messages.
    claimer: AtomicBool,
    /// A big pass: each task holds a CPU of its own while it runs.
    cpus: Option<Claims>,
}

impl Pass {
    fn work(&self) {
        let _held = self.cpus.as_ref().map(Claims::hold);
        let mut buf = Vec::with_capacity(48);
        loop {
            let i = self.next_shard.fetch_add(1, Ordering::Relaxed);
            if i >= SHARDS {
                break;
            }
            let list = self.board.shards[i].lock();
            for (k, idler) in list.iter().enumerate() {
                if let Some(ahead) = list.get(k + PREFETCH) {
                    prefetch(Arc::as_ptr(ahead));
                }
                idler.tell(&self.snaps, &self.claimer, &mut buf);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailrig_core::store::{FlagOp, Flags, NewMessage, SystemFlag};
    use std::time::Duration;
    use tokio::io::AsyncReadExt as _;

    /// A store of one mailbox with `n` messages in INBOX.
    fn store(n: usize) -> (Arc<Store>, MailboxId) {
        let s = mailrig_core::Scenario::parse(
            "[[domain]]\nname='d.test'\npassword='p'\nmailboxes=['a']\n",
            "t",
        )
        .unwrap();
        let store = Arc::new(Store::memory(&s.world));
        let (id, _) = store.mailboxes().next().unwrap();
        for _ in 0..n {
            append(&store, id, Flags::default());
        }
        (store, id)
    }

    fn append(store: &Store, id: MailboxId, flags: Flags) {
        let msg = NewMessage {
            raw: bytes::Bytes::from_static(b"Subject: x\r\n\r\nx\r\n"),
            envelope: None,
            flags,
            internal_date: chrono::Utc::now(),
        };
        store.mailbox(id).append("INBOX", msg).unwrap();
    }

    /// What a session that has seen the whole INBOX (and claimed its
    /// \Recent messages) knows.
    fn told_now(store: &Store, id: MailboxId) -> Told {
        let mb = store.mailbox(id);
        mb.claim_recent("INBOX").unwrap();
        mb.with_folder("INBOX", |f| Told {
            validity: f.uid_validity,
            uid_next: f.uid_next,
            modseq: f.highest_modseq,
            exists: f.messages.len() as u32,
            recent: 0,
        })
        .unwrap()
    }

    fn board(store: &Arc<Store>, id: MailboxId) -> Arc<Board> {
        Arc::new(Boards::default())
            .of(store, id, &CancellationToken::new())
            .unwrap()
    }

    /// A connected pair: the server end (lent to idlers) and the client's.
    async fn pair() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(l.local_addr().unwrap());
        let (client, server) = tokio::join!(client, l.accept());
        (server.unwrap().0, client.unwrap())
    }

    /// An armed idler on INBOX with `at`, its socket lent when `socket` is given.
    fn idler(
        board: &Arc<Board>,
        at: Told,
        socket: Option<&tokio::net::TcpStream>,
    ) -> (Registration, EventListener) {
        let idler = Arc::new(Idler::new(board.folder_name("INBOX"), true));
        let listener = idler.arm(at);
        if let Some(s) = socket {
            idler.lend(Lent::of(s));
        }
        (board.register(idler), listener)
    }

    async fn read_some(client: &mut tokio::net::TcpStream) -> String {
        let mut buf = [0u8; 256];
        let n = tokio::time::timeout(Duration::from_secs(10), client.read(&mut buf))
            .await
            .expect("nothing written to the client")
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    async fn woken(listener: EventListener) {
        tokio::time::timeout(Duration::from_secs(10), listener)
            .await
            .expect("the session was not woken");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_delivery_is_written_to_the_socket_without_the_session() {
        let (store, id) = store(2);
        let board = board(&store, id);
        let (server, mut client) = pair().await;
        // The first idler a pass meets claims the new message's \Recent
        // (woken), so the second is told.
        let (_claimer, claimer_woken) = idler(&board, told_now(&store, id), None);
        let (reg, listener) = idler(&board, told_now(&store, id), Some(&server));
        append(&store, id, Flags::default());
        assert_eq!(read_some(&mut client).await, "* 3 EXISTS\r\n* 0 RECENT\r\n");
        woken(claimer_woken).await;
        // The session learns what its client was told; it was not woken.
        let back = reg.idler().reclaim();
        assert!(back.socket.is_some() && back.residue.is_empty());
        let told = reg.idler().disarm().expect("told directly");
        assert_eq!((told.exists, told.uid_next), (3, 4));
        assert!(
            tokio::time::timeout(Duration::from_millis(50), listener)
                .await
                .is_err()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_big_pass_holds_a_cpu_per_task_and_lets_the_workers_go_after() {
        let all = crate::cpus::allowed();
        let (store, id) = store(1);
        let board = board(&store, id);
        let (server, mut client) = pair().await;
        for (spread_from, spread) in [(SPREAD_FROM, false), (1, true)] {
            board.spread_from.store(spread_from, Ordering::Relaxed);
            board.last_spread.store(0, Ordering::Relaxed);
            let (_claimer, claimer_woken) = idler(&board, told_now(&store, id), None);
            let (reg, _listener) = idler(&board, told_now(&store, id), Some(&server));
            append(&store, id, Flags::default());
            woken(claimer_woken).await;
            assert!(
                read_some(&mut client)
                    .await
                    .ends_with(" EXISTS\r\n* 0 RECENT\r\n")
            );
            reg.idler().reclaim();
            // Each of the two tasks held a CPU of its own (the pass is done
            // when the next one could start, so look after the read).
            let mut held = 0;
            for _ in 0..200 {
                held = board.last_spread.load(Ordering::Relaxed);
                if held != 0 || !spread {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let held: Vec<usize> = (0..64).filter(|c| held >> c & 1 == 1).collect();
            let expected = if spread { all.len().min(2) } else { 0 };
            assert_eq!(held.len(), expected, "{held:?} of {all:?}");
            assert!(held.iter().all(|c| all.contains(c)), "{held:?} of {all:?}");
        }
        // And the workers run anywhere again: ask both, each blocking its
        // worker until the other answered (10 s at most).
        let arrived = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let arrived = Arc::clone(&arrived);
                tokio::spawn(async move {
                    let mask = crate::cpus::allowed();
                    arrived.fetch_add(1, Ordering::SeqCst);
                    let start = std::time::Instant::now();
                    while arrived.load(Ordering::SeqCst) < 2 && start.elapsed().as_secs() < 10 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    (std::thread::current().id(), mask)
                })
            })
            .collect();
        let mut threads = Vec::new();
        for t in tasks {
            let (thread, mask) = t.await.unwrap();
            assert_eq!(mask, all, "a worker kept a CPU after the pass");
            threads.push(thread);
        }
        assert_ne!(threads[0], threads[1], "both workers answered");
    }

    #[tokio::test]
    async fn a_flag_change_a_keyword_or_no_socket_wakes_the_session_and_writes_nothing() {
        let (store, id) = store(2);
        let board = board(&store, id);
        let (server, mut client) = pair().await;
        // A flag change.
        let (reg, listener) = idler(&board, told_now(&store, id), Some(&server));
        let mut deleted = Flags::default();
        deleted.set(SystemFlag::Deleted, true);
        store
            .mailbox(id)
            .store_flags("INBOX", &[1], FlagOp::Add, &deleted)
            .unwrap();
        woken(listener).await;
        assert!(reg.idler().disarm().is_none());
        drop(reg);
        // A new message with a keyword.
        let (reg, listener) = idler(&board, told_now(&store, id), Some(&server));
        let mut kw = Flags::default();
        kw.add_keyword("$Label1");
        append(&store, id, kw);
        woken(listener).await;
        assert!(reg.idler().disarm().is_none());
        drop(reg);
        // No socket lent (TLS); the first idler claims \Recent.
        let (_claimer, claimer_woken) = idler(&board, told_now(&store, id), None);
        let (reg, listener) = idler(&board, told_now(&store, id), None);
        append(&store, id, Flags::default());
        woken(claimer_woken).await;
        woken(listener).await;
        assert!(reg.idler().disarm().is_none());
        drop(reg);
        drop(server);
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert_eq!(String::from_utf8_lossy(&rest), "", "nothing may be written");
    }

    #[tokio::test]
    async fn a_board_and_its_task_go_with_the_last_idler_and_come_back_with_the_next() {
        let (store, id) = store(1);
        let boards = Arc::new(Boards::default());
        let shutdown = CancellationToken::new();
        let (server, mut client) = pair().await;
        for round in 0..2 {
            let board = boards.of(&store, id, &shutdown).unwrap();
            let (_claimer, claimer_woken) = idler(&board, told_now(&store, id), None);
            let (reg, _listener) = idler(&board, told_now(&store, id), Some(&server));
            drop(board);
            append(&store, id, Flags::default());
            woken(claimer_woken).await;
            let exists = format!("* {} EXISTS\r\n* 0 RECENT\r\n", round + 2);
            assert_eq!(read_some(&mut client).await, exists);
            reg.idler().reclaim();
            drop(reg);
            drop(_claimer);
            // The task sees the board empty and ends; the board goes, and
            // with it the entry.
            for _ in 0..100 {
                if boards.0.lock().is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            assert!(
                boards.0.lock().is_empty(),
                "round {round}: the board stayed"
            );
        }
    }

    #[tokio::test]
    async fn a_socket_that_takes_nothing_wakes_the_session() {
        let (store, id) = store(0);
        let board = board(&store, id);
        let (server, _client) = pair().await;
        // Fill the socket: the client never reads.
        let chunk = vec![b'x'; 64 * 1024];
        while let Ok(n) = Lent::of(&server).try_write(&chunk) {
            assert!(n > 0);
        }
        let (_claimer, claimer_woken) = idler(&board, told_now(&store, id), None);
        let (reg, listener) = idler(&board, told_now(&store, id), Some(&server));
        append(&store, id, Flags::default());
        woken(claimer_woken).await;
        woken(listener).await;
        assert!(reg.idler().disarm().is_none(), "nothing was told");
    }

    #[tokio::test]
    async fn a_left_or_disarmed_idler_is_neither_told_nor_woken() {
        let (store, id) = store(1);
        let board = board(&store, id);
        let (server, mut client) = pair().await;
        let (reg, listener) = idler(&board, told_now(&store, id), Some(&server));
        assert!(reg.idler().disarm().is_none());
        append(&store, id, Flags::default());
        let (left, left_listener) = idler(&board, told_now(&store, id), Some(&server));
        drop(left);
        append(&store, id, Flags::default());
        tokio::task::yield_now().await;
        assert!(
            tokio::time::timeout(Duration::from_millis(50), listener)
                .await
                .is_err()
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(50), left_listener)
                .await
                .is_err()
        );
        drop(server);
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        assert_eq!(board.idlers.load(Ordering::Acquire), 1);
        drop(reg);
        assert_eq!(board.idlers.load(Ordering::Acquire), 0);
    }

    fn snap() -> FolderSnap {
        FolderSnap {
            validity: 7,
            count: 5,
            uid_next: 6,
            highest_modseq: 9,
            changed_modseq: 3,
            unclaimed: false,
            scanned_from: 0,
            keyword_uid: 0,
        }
    }

    fn at() -> Told {
        Told {
            validity: 7,
            modseq: 8,
            uid_next: 5,
            exists: 4,
            recent: 0,
        }
    }

    fn decide(s: FolderSnap, at: Told) -> Decision {
        s.decide(&at, true, &AtomicBool::new(false))
    }

    #[test]
    fn only_new_messages_are_told_and_anything_else_wakes() {
        let s = snap();
        let cases = [
            ("one new message", s, Decision::Tell),
            (
                "nothing new for it",
                FolderSnap {
                    uid_next: 5,
                    count: 4,
                    ..s
                },
                Decision::Nothing,
            ),
            (
                "a flag change or expunge after what it knows",
                FolderSnap {
                    changed_modseq: 9,
                    ..s
                },
                Decision::Wake,
            ),
            (
                "another UIDVALIDITY (the folder made anew)",
                FolderSnap { validity: 8, ..s },
                Decision::Wake,
            ),
            (
                "a new message with a keyword: `* FLAGS` first",
                FolderSnap {
                    keyword_uid: 5,
                    ..s
                },
                Decision::Wake,
            ),
            (
                "a keyword on a message it knows is no news",
                FolderSnap {
                    keyword_uid: 4,
                    ..s
                },
                Decision::Tell,
            ),
            (
                "further behind than the pass looked",
                FolderSnap {
                    scanned_from: 6,
                    ..s
                },
                Decision::Wake,
            ),
            (
                "new UIDs and new messages do not add up",
                FolderSnap { uid_next: 7, ..s },
                Decision::Wake,
            ),
        ];
        for (what, snap, want) in cases {
            assert_eq!(decide(snap, at()), want, "{what}");
        }
    }

    #[test]
    fn what_a_pass_reads_of_an_idler_is_one_cache_line() {
        assert_eq!(std::mem::align_of::<Idler>(), 64);
        assert!(std::mem::offset_of!(Idler, residue) <= 64);
    }

    #[test]
    fn one_session_per_pass_is_woken_to_claim_recent() {
        let claimer = AtomicBool::new(false);
        let s = FolderSnap {
            unclaimed: true,
            ..snap()
        };
        // EXAMINE cannot claim: told.
        assert_eq!(s.decide(&at(), false, &claimer), Decision::Tell);
        assert_eq!(s.decide(&at(), true, &claimer), Decision::Wake);
        assert_eq!(s.decide(&at(), true, &claimer), Decision::Tell);
    }
}
