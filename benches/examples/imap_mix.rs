//! The IMAP mix of issue 11 ("Performance") as a fast driver: the same sessions as
//! `scripts/bench-imap-mix.py`, written as raw IMAP lines from tokio tasks, so that the driver
//! costs a few microseconds a command and the benchmark measures the server, not Python.
//! `scripts/bench-imap-mix.sh` runs it against `mailrig serve` and a private Dovecot in one run.
//!
//! ```text
//! cargo run --release -p mailrig-benches --example imap_mix -- \
//!     NAME HOST PORT PIDS USERS PASSWORD CLIENTS SECONDS
//! ```
//!
//! - `PIDS`: comma-separated server pids; each one's CPU (utime+stime, plus cutime+cstime of
//!   reaped children: Dovecot's per-session `imap` processes) and that of its live descendants
//!   is counted, read from `/proc` before and after the timed part.
//! - `USERS`: comma-separated logins; client `i` uses `USERS[i % len]`.
//!
//! Each client loops sessions: LOGIN, SELECT INBOX, 10 × (FETCH of 1 to 3 random fields of a
//! random message, FETCH BODY.PEEK[] of a random message, STORE +FLAGS/-FLAGS), APPEND, STORE
//! \Deleted + EXPUNGE of message 1, LOGOUT: 36 commands, the message count stays at 20. Before
//! the clock starts every INBOX gets 20 messages (not counted). A session is counted when it
//! ends; a session that fails (connection lost) counts one error. Prints one line:
//!
//! ```text
//! NAME clients=N seconds=S commands=C cmd/s=R cpu_s=T cpu_us/cmd=U errors=E driver_cpu_s=D
//! ```
//!
//! The driver runs on one thread by default (`IMAP_MIX_THREADS=N` for more) so that it leaves
//! the other core to the server; `driver_cpu_s` is its own CPU in the timed part.

use std::collections::HashMap;
use std::io;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

const FIELDS: [&str; 7] = [
    "FLAGS",
    "UID",
    "RFC822.SIZE",
    "ENVELOPE",
    "BODYSTRUCTURE",
    "INTERNALDATE",
    "BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)]",
];

/// The appended message, as in the Python driver: headers and 150 body lines.
fn message(a: u64, b: u64) -> Vec<u8> {
    let mut m = format!(
        "From: Bench <bench@bench.test>\r\nTo: <u@bench.test>\r\nSubject: mix {a}\r\n\
         Date: Mon, 4 Mar 2024 10:00:00 +0000\r\nMessage-ID: <mix{b}@bench.test>\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..150 {
        m.extend_from_slice(b"body line\r\n");
    }
    m
}

/// xorshift64*: enough randomness for a command mix, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: &str) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in seed.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Rng(h | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// One IMAP connection: tagged commands, responses read up to their tagged line.
struct Conn {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
    n: u64,
    line: Vec<u8>,
    out: Vec<u8>,
}

impl Conn {
    async fn connect(host: &str, port: u16) -> io::Result<Conn> {
        let s = TcpStream::connect((host, port)).await?;
        s.set_nodelay(true)?;
        let (r, w) = s.into_split();
        let mut c = Conn {
            r: BufReader::with_capacity(64 * 1024, r),
            w,
            n: 0,
            line: Vec::with_capacity(1024),
            out: Vec::with_capacity(4096),
        };
        c.read_line().await?; // greeting
        Ok(c)
    }

    async fn read_line(&mut self) -> io::Result<()> {
        self.line.clear();
        if self.r.read_until(b'\n', &mut self.line).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        Ok(())
    }

    /// Skips `n` bytes of a literal.
    async fn skip(&mut self, mut n: usize) -> io::Result<()> {
        while n > 0 {
            let buf = self.r.fill_buf().await?;
            if buf.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed in a literal",
                ));
            }
            let k = buf.len().min(n);
            self.r.consume(k);
            n -= k;
        }
        Ok(())
    }

    /// Sends `text` (and `literal` as a non-synchronising literal after it); true if tagged OK.
    async fn cmd(&mut self, text: &[u8], literal: Option<&[u8]>) -> io::Result<bool> {
        self.n += 1;
        let tag = format!("t{} ", self.n);
        self.out.clear();
        self.out.extend_from_slice(tag.as_bytes());
        self.out.extend_from_slice(text);
        if let Some(lit) = literal {
            self.out
                .extend_from_slice(format!(" {{{}+}}\r\n", lit.len()).as_bytes());
            self.out.extend_from_slice(lit);
        }
        self.out.extend_from_slice(b"\r\n");
        self.w.write_all(&self.out).await?;
        loop {
            self.read_line().await?;
            while let Some(n) = literal_len(&self.line) {
                self.skip(n).await?;
                self.read_line().await?;
            }
            if self.line.starts_with(tag.as_bytes()) {
                return Ok(self.line[tag.len()..].starts_with(b"OK"));
            }
        }
    }
}

/// The length of the literal a line announces at its end (`{123}\r\n`).
fn literal_len(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}\r\n")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&body[open + 1..]).ok()?.parse().ok()
}

async fn preload(host: &str, port: u16, user: &str, password: &str) -> io::Result<()> {
    let mut c = Conn::connect(host, port).await?;
    c.cmd(format!("LOGIN \"{user}\" \"{password}\"").as_bytes(), None)
        .await?;
    for i in 0..20 {
        c.cmd(b"APPEND INBOX", Some(&message(i, i))).await?;
    }
    c.cmd(b"LOGOUT", None).await?;
    Ok(())
}

/// One session of the mix; its commands and failed (not OK) commands.
async fn session(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    rnd: &mut Rng,
) -> io::Result<(u64, u64)> {
    let mut c = Conn::connect(host, port).await?;
    let mut ok = Vec::with_capacity(40);
    ok.push(
        c.cmd(format!("LOGIN \"{user}\" \"{password}\"").as_bytes(), None)
            .await?,
    );
    ok.push(c.cmd(b"SELECT INBOX", None).await?);
    for _ in 0..10 {
        let n = rnd.range(1, 15);
        let mut pick = FIELDS;
        let k = rnd.range(1, 3) as usize;
        for i in 0..k {
            let j = rnd.range(i as u64, FIELDS.len() as u64 - 1) as usize;
            pick.swap(i, j);
        }
        let f = pick[..k].join(" ");
        ok.push(c.cmd(format!("FETCH {n} ({f})").as_bytes(), None).await?);
        ok.push(
            c.cmd(
                format!("FETCH {} BODY.PEEK[]", rnd.range(1, 15)).as_bytes(),
                None,
            )
            .await?,
        );
        let sign = if rnd.next() & 1 == 0 { '+' } else { '-' };
        ok.push(
            c.cmd(
                format!("STORE {n} {sign}FLAGS (\\Seen \\Flagged)").as_bytes(),
                None,
            )
            .await?,
        );
    }
    let m = message(rnd.range(0, 1 << 30), c.n);
    ok.push(c.cmd(b"APPEND INBOX", Some(&m)).await?);
    ok.push(c.cmd(b"STORE 1 +FLAGS.SILENT (\\Deleted)", None).await?);
    ok.push(c.cmd(b"EXPUNGE", None).await?);
    ok.push(c.cmd(b"LOGOUT", None).await?);
    Ok((ok.len() as u64, ok.iter().filter(|&&o| !o).count() as u64))
}

async fn client(
    host: String,
    port: u16,
    user: String,
    password: String,
    stop: Instant,
) -> (u64, u64) {
    let mut rnd = Rng::new(&user);
    let (mut cmds, mut errors) = (0, 0);
    while Instant::now() < stop {
        match session(&host, port, &user, &password, &mut rnd).await {
            Ok((c, e)) => {
                cmds += c;
                errors += e;
            }
            Err(_) => {
                errors += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    (cmds, errors)
}

fn clock_ticks() -> f64 {
    // SC_CLK_TCK is 100 on every Linux this runs on; getconf says so without libc.
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// `/proc/PID/stat` fields after the command name: state, ppid, ... (index 0 = field 3).
fn stat(pid: u32) -> Option<Vec<u64>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    Some(
        rest.split_whitespace()
            .skip(1)
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

/// CPU ticks of `pids`, their reaped children and all their live descendants.
fn cpu_ticks(pids: &[u32]) -> u64 {
    let mut kids: HashMap<u64, Vec<(u32, Vec<u64>)>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok())
                && let Some(st) = stat(pid)
            {
                kids.entry(st[0]).or_default().push((pid, st));
            }
        }
    }
    // With the state field skipped: [0] ppid, [10] utime, [11] stime, [12] cutime, [13] cstime.
    fn walk(
        pid: u32,
        st: &[u64],
        top: bool,
        kids: &HashMap<u64, Vec<(u32, Vec<u64>)>>,
        seen: &mut Vec<u32>,
    ) -> u64 {
        if seen.contains(&pid) {
            return 0;
        }
        seen.push(pid);
        let mut t = st[10] + st[11];
        if top {
            t += st[12] + st[13];
        }
        for (k, kst) in kids.get(&u64::from(pid)).map(Vec::as_slice).unwrap_or(&[]) {
            t += walk(*k, kst, false, kids, seen);
        }
        t
    }
    let mut seen = Vec::new();
    pids.iter()
        .filter_map(|&p| Some(walk(p, &stat(p)?, true, &kids, &mut seen)))
        .sum()
}

/// This process's own CPU seconds (utime+stime).
fn self_cpu(tck: f64) -> f64 {
    stat(std::process::id())
        .map(|s| (s[10] + s[11]) as f64 / tck)
        .unwrap_or(0.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 8 {
        eprintln!("usage: imap_mix NAME HOST PORT PIDS USERS PASSWORD CLIENTS SECONDS");
        std::process::exit(2);
    }
    let (name, host, password) = (args[0].clone(), args[1].clone(), args[5].clone());
    let port: u16 = args[2].parse()?;
    let pids: Vec<u32> = args[3]
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let users: Vec<String> = args[4].split(',').map(String::from).collect();
    let clients: usize = args[6].parse()?;
    let seconds: f64 = args[7].parse()?;
    let threads: usize = std::env::var("IMAP_MIX_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    let tck = clock_ticks();
    rt.block_on(async move {
        let mut pre = Vec::new();
        for u in users.iter().take(clients) {
            let (h, u, p) = (host.clone(), u.clone(), password.clone());
            pre.push(tokio::spawn(async move { preload(&h, port, &u, &p).await }));
        }
        for p in pre {
            p.await??;
        }
        let (c0, d0, t0) = (cpu_ticks(&pids), self_cpu(tck), Instant::now());
        let stop = t0 + Duration::from_secs_f64(seconds);
        let mut tasks = Vec::new();
        for i in 0..clients {
            let (h, u, p) = (
                host.clone(),
                users[i % users.len()].clone(),
                password.clone(),
            );
            tasks.push(tokio::spawn(client(h, port, u, p, stop)));
        }
        let (mut cmds, mut errors) = (0u64, 0u64);
        for t in tasks {
            let (c, e) = t.await?;
            cmds += c;
            errors += e;
        }
        let (c1, d1, el) = (cpu_ticks(&pids), self_cpu(tck), t0.elapsed().as_secs_f64());
        let used = (c1 - c0) as f64 / tck;
        println!(
            "{name} clients={clients} seconds={el:.1} commands={cmds} cmd/s={:.0} cpu_s={used:.2} \
             cpu_us/cmd={:.1} errors={errors} driver_cpu_s={:.2}",
            cmds as f64 / el,
            1e6 * used / cmds.max(1) as f64,
            d1 - d0
        );
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    })
    .map_err(|e| e as Box<dyn std::error::Error>)
}
