//! Throughput of mailrig-load next to Postfix's `smtp-source`, both against one `smtp-sink` on loopback.
//!
//! ```text
//! cargo run --release -p mailrig-load --example vs_smtp_source [MESSAGES] [SESSIONS] [SIZE]
//! ```
//!
//! Defaults: 20000 messages, 20 sessions, 4096 bytes. Runs, in order: smtp-source keeping connections
//! (`-d`: "don't disconnect after sending a message"), mailrig-load keeping connections, smtp-source with a
//! connection per message (no `-d`), mailrig-load with a connection per message; prints messages/s and the
//! ratios. Note that smtp-source's `-l` is the payload without headers, mailrig's size includes them.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mailrig_load::{LoadConfig, RecipientPool, SizeMix, Target};

struct Sink(Child);

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

fn start_sink() -> Result<(Sink, u16), String> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let mut cmd = Command::new("/usr/sbin/smtp-sink");
    if is_root() {
        cmd.args(["-u", "nobody"]);
    }
    let child = cmd
        .arg(format!("127.0.0.1:{port}"))
        .arg("256")
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start /usr/sbin/smtp-sink (install Debian's postfix): {e}"))?;
    let sink = Sink(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err("smtp-sink did not start listening".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((sink, port))
}

fn smtp_source(
    port: u16,
    messages: u64,
    sessions: u32,
    size: usize,
    keep: bool,
) -> Result<f64, String> {
    let mut cmd = Command::new("/usr/sbin/smtp-source");
    cmd.args([
        "-l",
        &size.to_string(),
        "-m",
        &messages.to_string(),
        "-s",
        &sessions.to_string(),
    ]);
    if keep {
        cmd.arg("-d");
    }
    cmd.arg(format!("127.0.0.1:{port}"));
    eprintln!("  $ {cmd:?}");
    let t = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .status()
        .map_err(|e| e.to_string())?;
    let secs = t.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("smtp-source failed: {status}"));
    }
    Ok(messages as f64 / secs)
}

async fn mailrig(
    port: u16,
    messages: u64,
    sessions: u32,
    size: usize,
    keep: bool,
) -> Result<f64, String> {
    let target = Target::parse(&format!("smtp://127.0.0.1:{port}")).map_err(|e| e.to_string())?;
    let pool =
        RecipientPool::from_patterns(&["user{01..25}@patente.test"]).map_err(|e| e.to_string())?;
    let mut c = LoadConfig::new(target, pool);
    c.messages = Some(messages);
    c.sessions = sessions;
    c.sizes = SizeMix::fixed(size);
    c.messages_per_connection = if keep { 0 } else { 1 };
    eprintln!(
        "  mailrig-load smtp://127.0.0.1:{port} -n {messages} -c {sessions} -s {size} --messages-per-connection {}",
        c.messages_per_connection
    );
    let r = mailrig_load::run(c, std::future::pending::<()>())
        .await
        .map_err(|e| e.to_string())?;
    if r.counts.accepted != messages {
        return Err(format!("not all accepted:\n{}", r.to_table()));
    }
    eprintln!("{}", r.to_table());
    Ok(r.messages_per_sec)
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let messages: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let sessions: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4096);
    let (_sink, port) = start_sink()?;
    let mut rows = vec![];
    for keep in [true, false] {
        let label = if keep {
            "many messages per connection"
        } else {
            "one connection per message"
        };
        eprintln!("== {label}");
        let theirs = smtp_source(port, messages, sessions, size, keep)?;
        let ours = mailrig(port, messages, sessions, size, keep).await?;
        rows.push((label, theirs, ours));
    }
    println!(
        "\n{:<32}{:>16}{:>16}{:>8}",
        "mode", "smtp-source/s", "mailrig-load/s", "ratio"
    );
    for (label, theirs, ours) in rows {
        println!(
            "{label:<32}{theirs:>16.0}{ours:>16.0}{:>8.2}",
            ours / theirs
        );
    }
    Ok(())
}
