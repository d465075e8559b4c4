//! End to end against a real third-party SMTP server: Postfix's `smtp-sink`, on a free loopback port.
//!
//! If `smtp-sink` is missing the test tries to install Debian's `postfix` package, and fails with a clear
//! message if it cannot: it never passes without having talked to the real server. No timing asserts.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mailrig_load::{LoadConfig, Pacing, RecipientPool, Report, SizeMix, Target};

const SMTP_SINK: &str = "/usr/sbin/smtp-sink";

/// Kills smtp-sink when the test ends, however it ends.
struct Sink {
    child: Child,
    port: u16,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ensure_smtp_sink() {
    if Path::new(SMTP_SINK).exists() {
        return;
    }
    let script = "apt-get update -qq && \
        echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections && \
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix";
    let status = Command::new("sh")
        .args(["-c", script])
        .stdout(Stdio::null())
        .status();
    assert!(
        Path::new(SMTP_SINK).exists(),
        "{SMTP_SINK} is missing and installing Debian's postfix package failed ({status:?}); \
         install it with: apt-get update && echo 'postfix postfix/main_mailer_type select No configuration' \
         | debconf-set-selections && DEBIAN_FRONTEND=noninteractive apt-get install -y postfix"
    );
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

fn start_sink() -> Sink {
    ensure_smtp_sink();
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free port")
        .port();
    let mut cmd = Command::new(SMTP_SINK);
    if running_as_root() {
        // smtp-sink refuses to run as root without dropping privileges.
        cmd.args(["-u", "nobody"]);
    }
    let child = cmd
        .arg(format!("127.0.0.1:{port}"))
        .arg("100")
        .stdout(Stdio::null())
        .spawn()
        .expect("start smtp-sink");
    let sink = Sink { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "smtp-sink did not listen on 127.0.0.1:{port} within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    sink
}

fn config(sink: &Sink) -> LoadConfig {
    let target = Target::parse(&format!("smtp://127.0.0.1:{}", sink.port)).unwrap();
    let pool = RecipientPool::from_patterns(&["user{01..25}@patente.test"]).unwrap();
    let mut c = LoadConfig::new(target, pool);
    c.messages = Some(200);
    c.sessions = 4;
    c.timeout = Duration::from_secs(20);
    c
}

async fn run(c: LoadConfig) -> Report {
    mailrig_load::run(c, std::future::pending::<()>())
        .await
        .expect("run")
}

fn assert_all_accepted(r: &Report, n: u64) {
    assert_eq!(r.errors.by_kind, Default::default(), "{}", r.to_table());
    assert_eq!(r.counts.attempted, n, "{}", r.to_table());
    assert_eq!(r.counts.accepted, n, "{}", r.to_table());
    assert_eq!(r.counts.failed, 0);
    assert_eq!(r.counts.interrupted, 0);
    let acc = &r.accepted[0];
    assert_eq!(acc.count(), n);
    assert_eq!(acc.seq_ranges, [[0, n]]);
    assert!(!acc.truncated);
    assert_eq!(
        acc.per_recipient.values().sum::<u64>(),
        n * u64::from(acc.recipients_per_message)
    );
    assert_eq!(r.latency[&mailrig_load::Stage::Message].count, n);
    assert_eq!(r.latency[&mailrig_load::Stage::EndOfData].count, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_messages_per_connection_pipelined() {
    let sink = start_sink();
    let r = run(config(&sink)).await;
    assert_all_accepted(&r, 200);
    assert_eq!(r.counts.connections, 4);
    // 25 recipients round-robin over 200 messages: 8 each
    assert!(r.accepted[0].per_recipient.values().all(|&n| n == 8));
    assert_eq!(r.latency[&mailrig_load::Stage::Ehlo].count, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_per_message_pipelined() {
    let sink = start_sink();
    let mut c = config(&sink);
    c.messages_per_connection = 1;
    let r = run(c).await;
    assert_all_accepted(&r, 200);
    assert_eq!(r.counts.connections, 200);
    assert_eq!(r.latency[&mailrig_load::Stage::Greeting].count, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pipelining_with_several_recipients_and_a_size_mix() {
    let sink = start_sink();
    let mut c = config(&sink);
    c.pipelining = false;
    c.recipients_per_message = 3;
    c.messages_per_connection = 10;
    c.sizes = SizeMix::parse("1k:50,4k:40,100k:10").unwrap();
    let r = run(c).await;
    assert_all_accepted(&r, 200);
    // each session reconnects every 10 of its own messages; sessions get uneven shares of the 200
    assert!(
        (20..=24).contains(&r.counts.connections),
        "{}",
        r.counts.connections
    );
    assert_eq!(r.counts.recipients_accepted, 600);
    assert_eq!(r.latency[&mailrig_load::Stage::Rcpt].count, 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_and_merge() {
    let sink = start_sink();
    let mut c = config(&sink);
    c.pacing = Pacing::Open { rate: 1000.0 };
    c.messages = Some(100);
    c.run_id = Some("worker-0".into());
    let a = run(c.clone()).await;
    assert_all_accepted(&a, 100);
    assert_eq!(a.counts.unsent, 0);
    c.run_id = Some("worker-1".into());
    let b = run(c).await;
    let merged = mailrig_load::merge(&[a.clone(), b.clone()]).unwrap();
    assert_eq!(merged.counts.accepted, 200);
    assert_eq!(merged.accepted.len(), 2);
    let m = &merged.latency[&mailrig_load::Stage::Message];
    assert_eq!(m.count, 200);
    // JSON round trip of the merged report
    let back = Report::from_json(&merged.to_json().unwrap()).unwrap();
    assert_eq!(back, merged);
}
