//! The soak test: about a minute of mixed traffic from real clients (Python's
//! smtplib, imaplib and poplib, `tests/py/soak_clients.py`) against one
//! `mailrig serve` whose fault rules drop, defer, slow down and disconnect.
//!
//! Afterwards: every message acknowledged with 250 is in the store (read back
//! over IMAP), except where the journal says a fault dropped it — an
//! acknowledged message is never lost otherwise; the server's memory (VmRSS
//! from `/proc`) has plateaued, judged by comparing the last third of the run
//! with the middle third by a generous factor (not a timing assert); the
//! readers never saw an error; and a clean client is still served at the end.

mod support;

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::serve::Serve;

/// How long the mixed traffic runs.
const TRAFFIC_SECS: u64 = 45;

/// The seed's world, with faults on every message from a `soak*` sender (so
/// the clean client at the end, `clean@extern.test`, is never selected).
const SCENARIO: &str = r#"# The soak test's world: kanzlei.test and patente.test, with faults for soak senders.
[[domain]]
name = "kanzlei.test"
mailboxes = ["anna", "bernd", "clara"]
password = "secret"

[[domain]]
name = "patente.test"
mailboxes = ["user01..user25"]
password = "secret"

[[fault]]
name = "soak-drop"
stage = "route"
action = "drop"
sender = "soak*@extern.test"
probability = 0.1
seed = 1

[[fault]]
name = "soak-defer"
stage = "rcpt"
action = "defer"
sender = "soak*@extern.test"
probability = 0.1
seed = 2

[[fault]]
name = "soak-slow"
stage = "data"
action = "delay"
ms = 40
sender = "soak*@extern.test"
probability = 0.3
seed = 3

[[fault]]
name = "soak-disconnect"
stage = "mail"
action = "disconnect"
sender = "soak*@extern.test"
probability = 0.05
seed = 4

[[fault]]
name = "soak-cut-after-data"
stage = "end-of-data"
action = "disconnect"
sender = "soak*@extern.test"
probability = 0.03
seed = 5
"#;

fn pop3_addr(banner: &str) -> u16 {
    banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("POP3 "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
        .map(|a| a.port())
        .unwrap_or_else(|| panic!("no POP3 address in the banner:\n{banner}"))
}

fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn mailboxes() -> Vec<String> {
    let mut v: Vec<String> = ["anna", "bernd", "clara"]
        .iter()
        .map(|n| format!("{n}@kanzlei.test"))
        .collect();
    v.extend((1..=25).map(|n| format!("user{n:02}@patente.test")));
    v
}

#[test]
fn soak_mixed_clients_with_faults_lose_no_acknowledged_message_and_memory_plateaus() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("soak.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let serve = Serve::start(&[], &["--scenario", scenario.to_str().unwrap()]);
    let pid = serve.pid();

    // Sample the server's resident memory while the mixed traffic runs.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            let end = Instant::now() + Duration::from_secs(TRAFFIC_SECS);
            while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                if let Some(kib) = vm_rss_kib(pid) {
                    samples.push(kib);
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            samples
        })
    };

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/soak_clients.py");
    let args = serde_json::json!({
        "smtp": serve.smtp.port(), "imap": serve.imap.port(), "pop3": pop3_addr(&serve.banner),
        "http": serve.http.port(), "secs": TRAFFIC_SECS, "senders": 6, "imap_readers": 3,
        "pop3_readers": 3, "mailboxes": mailboxes(), "password": "secret",
    });
    let mut child = Command::new("python3")
        .arg(script)
        .arg(args.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run python3 ({e}); scripts/install-test-deps.sh installs it")
        });
    let mut out = String::new();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let _ = stdout.read_to_string(&mut out);
        out
    });
    // Bounded: the traffic, the read-back and a generous margin for a loaded machine.
    let deadline = Instant::now() + Duration::from_secs(TRAFFIC_SECS + 240);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the soak clients did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap();
    let out = reader.join().unwrap();
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    assert!(status.success(), "soak clients failed: {status:?}\n{err}");
    let r: serde_json::Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("soak clients printed no JSON ({e}):\n{out}\n{err}"));
    let counts = &r["counts"];
    eprintln!("soak: {counts}");

    // The faults really fired, and there was real traffic: the checks below mean something.
    let journal = r["journal"]["entries"].as_array().unwrap();
    assert_eq!(
        r["journal"]["dropped"], 0,
        "the journal let entries go; the check would be blind"
    );
    let fired = |rule: &str| journal.iter().filter(|e| e["rule"] == rule).count();
    for rule in ["soak-drop", "soak-defer", "soak-slow", "soak-disconnect"] {
        assert!(fired(rule) > 0, "rule {rule} never fired: {counts}");
    }
    assert!(
        counts["smtp_acked"].as_u64().unwrap() >= 50,
        "too little traffic: {counts}"
    );
    assert!(counts["smtp_disconnects"].as_u64().unwrap() > 0, "{counts}");
    assert!(counts["smtp_refused"].as_u64().unwrap() > 0, "{counts}");

    // Every (message, recipient) acknowledged with 250 is stored, unless the
    // journal says the drop rule threw it away.
    let dropped: HashSet<(String, String)> = journal
        .iter()
        .filter(|e| e["event"]["kind"] == "dropped")
        .map(|e| {
            (
                e["message_id"].as_str().unwrap_or("").to_string(),
                e["rcpt"].as_str().unwrap_or("").to_lowercase(),
            )
        })
        .collect();
    let stored: HashMap<String, HashSet<String>> = r["stored"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let ids = v.as_array().unwrap().iter();
            (
                k.to_lowercase(),
                ids.map(|i| i.as_str().unwrap().to_string()).collect(),
            )
        })
        .collect();
    let (mut checked, mut excused, mut lost) = (0, 0, Vec::new());
    for m in r["acked"].as_array().unwrap() {
        let id = m["id"].as_str().unwrap();
        for rcpt in m["rcpts"].as_array().unwrap() {
            let rcpt = rcpt.as_str().unwrap().to_lowercase();
            if dropped.contains(&(id.to_string(), rcpt.clone())) {
                excused += 1;
            } else if stored.get(&rcpt).is_some_and(|ids| ids.contains(id)) {
                checked += 1;
            } else {
                lost.push(format!("{id} -> {rcpt}"));
            }
        }
    }
    eprintln!("soak: {checked} acknowledged deliveries found, {excused} dropped by the rule");
    assert!(
        excused > 0,
        "the drop rule never hit an acknowledged message"
    );
    assert!(
        lost.is_empty(),
        "{} acknowledged deliveries are not in the store: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );

    // The readers were served all along.
    assert!(counts["imap_sessions"].as_u64().unwrap() > 0, "{counts}");
    assert!(counts["pop3_sessions"].as_u64().unwrap() > 0, "{counts}");
    assert_eq!(counts["imap_errors"], 0, "{}", r["errors"]);
    assert_eq!(counts["pop3_errors"], 0, "{}", r["errors"]);

    // Memory has plateaued: the last third of the run stays within a generous
    // factor of the middle third (the store itself grows with every message).
    assert!(
        samples.len() >= 30,
        "too few RSS samples: {}",
        samples.len()
    );
    let third = samples.len() / 3;
    let middle = samples[third..2 * third].iter().max().copied().unwrap();
    let last = samples[2 * third..].iter().max().copied().unwrap();
    eprintln!(
        "soak: VmRSS first {} KiB, middle third max {middle} KiB, last third max {last} KiB",
        samples[0]
    );
    assert!(
        last <= middle * 2,
        "server memory keeps growing: {middle} KiB in the middle third, {last} KiB in the last"
    );

    // A clean client is still served at the end: 250, then read back over IMAP and POP3.
    let clean = &r["clean"];
    assert_eq!(clean["smtp"], "250", "{clean}");
    assert_eq!(clean["imap"], 1, "{clean}");
    assert_eq!(clean["pop3"], true, "{clean}");

    serve.stop();
}
