//! `mailrig load --verify-imap`: after a load run, look into every recipient mailbox over IMAP and check
//! that each message the server accepted with 250 arrived — the seed incident's silent loss shows up as
//! `missing` — and measure delivery latency, from the 250 to the first time the message was seen.
//!
//! Why here, in the binary, and not in `mailrig-load`: the load library is an SMTP driver that knows no
//! mailbox protocol, no scenario file and no prober target file; reading mailboxes is `mailrig-probe`'s
//! job (its IMAP client, exposed as [`mailrig_probe::imap_reader`]), and credentials come from
//! `mailrig-core` scenarios or prober target files. The binary already depends on all three, so the check
//! is wired here and only its result type ([`mailrig_load::Verification`]) lives in the load report, where
//! the table and the JSON show it.
//!
//! How a mailbox is checked: the [`Verifier`] starts before the run, with the run id and the recipient
//! list, so that latency is not inflated by the rest of the run. Each watcher logs in, `UID SEARCH HEADER
//! X-Mailrig-Load <run id>` (or every UID when the server cannot search headers), fetches the headers of
//! UIDs not seen before, reads the sequence number from `X-Mailrig-Load: RUNID SEQ` (or the
//! `Message-ID <load-RUNID-SEQ@mailrig>`) and notes when it first saw it. It polls with backoff (50 ms
//! doubling to 1 s, back to 50 ms whenever something new shows up) during the run, and after it until every
//! accepted message of its mailbox was seen or `--verify-timeout` (counted from the end of the run, for all
//! mailboxes together) has passed; each one not seen is then `missing`. A latency is taken when the search
//! that found the message returned, so it is accurate to the polling interval. Watching costs the server
//! some IMAP work during the run (NOOP + SEARCH per mailbox per poll).
//!
//! Up to the concurrency (32 with a scenario, `[probe] concurrency` of a target file) mailboxes are watched
//! during the run; the others are checked once a watcher is done, after the run, and their latency then
//! includes that wait. Accept times come from [`mailrig_load::AcceptTimes`] (kept in memory for
//! verification runs only, bounded; past the bound latency covers the first messages only and the report
//! says so).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use mailrig_core::Scenario;
use mailrig_load::histogram::{micros, new_histogram};
use mailrig_load::{LatencySummary, MailboxVerification, Report, Verification};
use mailrig_probe::imap_reader::{ImapReader, ReaderTls};
use mailrig_probe::{
    MailboxTarget, ReadEndpoint, ReadError, ReadProtocol, Target, TlsMode, TlsTrust,
};
use tokio::sync::{Semaphore, watch};

/// The header every load message carries: `X-Mailrig-Load: RUNID SEQ`.
const LOAD_HEADER: &str = "X-Mailrig-Load";
/// Mailboxes checked at once when the credentials come from a scenario.
const SCENARIO_CONCURRENCY: usize = 32;
/// Limit for one connect and one IMAP command, with scenario credentials.
const SCENARIO_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Flags of the delivery check.
#[derive(Debug, Args)]
pub struct VerifyFlags {
    /// After the run, check over IMAP that every accepted message arrived in its mailbox: reports
    /// delivered and missing messages per recipient and the delivery latency (250 to visible); exit code 1
    /// when any is missing or a mailbox could not be checked. Credentials come from --scenario (IMAP at --imap) or --verify-target.
    #[arg(long)]
    pub verify_imap: bool,

    /// IMAP server (HOST:PORT, plain text) for --verify-imap with --scenario credentials.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:1143")]
    pub imap: String,

    /// Prober target file (as for `mailrig probe`) whose mailboxes give the IMAP endpoints, TLS settings
    /// and credentials for --verify-imap.
    #[arg(long, value_name = "FILE", requires = "verify_imap")]
    pub verify_target: Option<PathBuf>,

    /// Seconds to wait, after the run, for accepted messages to become visible.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub verify_timeout: f64,
}

/// Who can be read, and how: built from the flags before the run so that a bad file fails early.
pub struct VerifyPlan {
    /// By lower-cased address.
    mailboxes: HashMap<String, MailboxTarget>,
    tls: ReaderTls,
    timeout: Duration,
    connect_timeout: Duration,
    concurrency: usize,
    method: String,
}

impl VerifyPlan {
    /// Credentials from the scenario (IMAP at `--imap`) and/or the target file (which wins for an address
    /// in both).
    pub fn new(flags: &VerifyFlags, scenario: Option<&Scenario>) -> anyhow::Result<VerifyPlan> {
        anyhow::ensure!(
            flags.verify_timeout.is_finite() && flags.verify_timeout >= 0.0,
            "--verify-timeout: give a number of seconds >= 0"
        );
        let timeout = Duration::from_secs_f64(flags.verify_timeout);
        let mut mailboxes = HashMap::new();
        let mut trust = TlsTrust::default();
        let mut connect_timeout = SCENARIO_CONNECT_TIMEOUT;
        let mut concurrency = SCENARIO_CONCURRENCY;
        let mut methods = Vec::new();
        if let Some(scenario) = scenario {
            let (host, port) = parse_host_port(&flags.imap).context("--imap")?;
            let read = ReadEndpoint {
                protocol: ReadProtocol::Imap,
                host,
                port,
                tls: TlsMode::None,
            };
            methods.push(format!("imap {}", flags.imap));
            for m in &scenario.world.mailboxes {
                let address = m.address.to_string();
                mailboxes.insert(
                    address.to_ascii_lowercase(),
                    MailboxTarget {
                        address,
                        user: m.login.to_string(),
                        password: m.password.to_string(),
                        read: read.clone(),
                        master: None,
                        upstream: None,
                    },
                );
            }
        }
        if let Some(path) = &flags.verify_target {
            let target = Target::load(path).context("--verify-target")?;
            methods.push(format!("imap per {}", path.display()));
            trust = target.trust.clone();
            connect_timeout = target.connect_timeout;
            concurrency = target.concurrency.max(1);
            for m in target.mailboxes {
                mailboxes.insert(m.address.to_ascii_lowercase(), m);
            }
        }
        anyhow::ensure!(
            !methods.is_empty(),
            "--verify-imap needs credentials: give --scenario FILE (mailboxes read at --imap) or --verify-target FILE"
        );
        let tls = ReaderTls::new(&trust).context("--verify-imap: TLS trust")?;
        Ok(VerifyPlan {
            mailboxes,
            tls,
            timeout,
            connect_timeout,
            concurrency,
            method: methods.join(", "),
        })
    }
}

impl VerifyPlan {
    /// How mailboxes are read, for messages.
    pub fn method(&self) -> &str {
        &self.method
    }
}

/// `HOST:PORT`, `[v6]:PORT`.
fn parse_host_port(s: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = s
        .rsplit_once(':')
        .with_context(|| format!("{s:?} is not HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .with_context(|| format!("{s:?}: the port is not a number 0-65535"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    anyhow::ensure!(!host.is_empty(), "{s:?}: the host is empty");
    Ok((host.to_string(), port))
}

/// What the mailbox watchers learn when the run is over.
struct RunOver {
    /// Expected seqs per lower-cased recipient address.
    expected: HashMap<String, HashSet<u64>>,
    /// When waiting ends.
    deadline: Instant,
}

/// What a mailbox watcher returns: its lower-cased address, and when each message of the run was first
/// seen there, by seq.
type WatchResult = (String, Result<HashMap<u64, Instant>, ReadError>);

/// The mailbox watchers of one run: started before the run, told its outcome after it.
pub struct Verifier {
    tasks: tokio::task::JoinSet<WatchResult>,
    run_over: watch::Sender<Option<Arc<RunOver>>>,
    /// Recipients (lower-cased) with no credentials.
    uncredentialed: HashSet<String>,
    timeout: Duration,
    method: String,
}

impl Verifier {
    /// Starts watching the mailboxes of `recipients` for messages of run `run_id`. Up to the plan's
    /// concurrency mailboxes are watched during the run; the others start once a watcher is done (after
    /// the run), and their latency then includes that wait.
    pub fn start(plan: &VerifyPlan, run_id: &str, recipients: &[String]) -> Verifier {
        let (run_over, rx) = watch::channel(None);
        let limit = Arc::new(Semaphore::new(plan.concurrency));
        let run_id: Arc<str> = run_id.into();
        let mut tasks = tokio::task::JoinSet::new();
        let mut uncredentialed = HashSet::new();
        let mut started = HashSet::new();
        for rcpt in recipients {
            let key = rcpt.to_ascii_lowercase();
            if !started.insert(key.clone()) {
                continue;
            }
            let Some(mb) = plan.mailboxes.get(&key).cloned() else {
                uncredentialed.insert(key);
                continue;
            };
            let (limit, run_id, tls, rx) =
                (limit.clone(), run_id.clone(), plan.tls.clone(), rx.clone());
            let connect_timeout = plan.connect_timeout;
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let seen = watch_mailbox(&mb, &tls, connect_timeout, &run_id, &key, rx).await;
                (key, seen)
            });
        }
        Verifier {
            tasks,
            run_over,
            uncredentialed,
            timeout: plan.timeout,
            method: plan.method.clone(),
        }
    }

    /// The run is over (call right away): waits up to the timeout for its accepted messages to show up,
    /// then judges every recipient mailbox that had some.
    pub async fn finish(mut self, report: &Report) -> Verification {
        let mut v = Verification {
            method: self.method.clone(),
            timeout_secs: self.timeout.as_secs_f64(),
            ..Verification::default()
        };
        // Expected deliveries, by address as the report spells it.
        let mut expected: BTreeMap<String, HashSet<u64>> = BTreeMap::new();
        if let Some(accepted) = report.accepted.first() {
            for (rcpt, seq) in accepted.deliveries() {
                expected.entry(rcpt.to_string()).or_default().insert(seq);
            }
        }
        let _ = self.run_over.send(Some(Arc::new(RunOver {
            expected: expected
                .iter()
                .map(|(a, s)| (a.to_ascii_lowercase(), s.clone()))
                .collect(),
            deadline: Instant::now() + self.timeout,
        })));
        let mut seen_by_mailbox = HashMap::new();
        while let Some(joined) = self.tasks.join_next().await {
            // A panicked watcher leaves its mailbox out of `seen_by_mailbox`: reported below as not checked.
            if let Ok((key, seen)) = joined {
                seen_by_mailbox.insert(key, seen);
            }
        }
        let mut hist = new_histogram();
        for (rcpt, seqs) in expected {
            let n = seqs.len() as u64;
            let key = rcpt.to_ascii_lowercase();
            let entry = match seen_by_mailbox.get(&key) {
                Some(Ok(seen)) => {
                    let mut delivered = 0;
                    for seq in &seqs {
                        let Some(at) = seen.get(seq) else { continue };
                        delivered += 1;
                        match report.accept_times.as_ref().and_then(|t| t.get(*seq)) {
                            Some(accepted_at) => {
                                let us = micros(at.saturating_duration_since(accepted_at));
                                // `record` grows the auto-resizing histogram; `saturating_record` would clamp.
                                if hist.record(us).is_err() {
                                    hist.saturating_record(us);
                                }
                            }
                            None => v.latency_sampled = true,
                        }
                    }
                    MailboxVerification {
                        accepted: n,
                        delivered,
                        missing: n - delivered,
                        error: None,
                    }
                }
                Some(Err(e)) => MailboxVerification {
                    accepted: n,
                    error: Some(e.to_string()),
                    ..Default::default()
                },
                None => MailboxVerification {
                    accepted: n,
                    error: Some(if self.uncredentialed.contains(&key) {
                        "no credentials for this address".into()
                    } else {
                        "not checked (the mailbox check failed)".into()
                    }),
                    ..Default::default()
                },
            };
            v.per_recipient.insert(rcpt, entry);
        }
        if !hist.is_empty() {
            v.latency = LatencySummary::of(&hist).ok();
        }
        v.compute_totals();
        v
    }
}

/// Watches one mailbox: polls with backoff while the run goes (back to the shortest interval whenever
/// something new shows up), then until every message expected there was seen or the deadline passed.
/// Returns when each message of the run was first seen, by seq.
async fn watch_mailbox(
    mb: &MailboxTarget,
    tls: &ReaderTls,
    connect_timeout: Duration,
    run_id: &str,
    key: &str,
    mut run_over: watch::Receiver<Option<Arc<RunOver>>>,
) -> Result<HashMap<u64, Instant>, ReadError> {
    let mut reader = ImapReader::open(mb, tls, connect_timeout).await?;
    let mut known_uids: HashSet<u32> = HashSet::new();
    let mut seen: HashMap<u64, Instant> = HashMap::new();
    let mut backoff = FIRST_BACKOFF;
    loop {
        reader.noop().await?;
        let uids = match reader.search_header(LOAD_HEADER, run_id).await? {
            Some(uids) => uids,
            None => reader.all_uids().await?,
        };
        let found_at = Instant::now();
        let new: Vec<u32> = uids
            .into_iter()
            .filter(|u| !known_uids.contains(u))
            .collect();
        let mut news = false;
        if !new.is_empty() {
            for (_, header) in reader.fetch_headers(&new).await? {
                if let Some(seq) = load_seq(&header, run_id) {
                    news |= seen.insert(seq, found_at).is_none();
                }
            }
            known_uids.extend(new);
        }
        backoff = if news {
            FIRST_BACKOFF
        } else {
            (backoff * 2).min(MAX_BACKOFF)
        };
        let over = run_over.borrow().clone();
        match over {
            Some(over) => {
                let now = Instant::now();
                let all_seen = over
                    .expected
                    .get(key)
                    .is_none_or(|want| want.iter().all(|s| seen.contains_key(s)));
                if all_seen || now >= over.deadline {
                    break;
                }
                tokio::time::sleep(backoff.min(over.deadline - now)).await;
            }
            None => {
                // The run goes on: wake at the next poll, or at once when it ends.
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = run_over.changed() => {}
                }
            }
        }
    }
    let _ = reader.logout().await;
    Ok(seen)
}

/// The sequence number of a load message of run `run_id`, from `X-Mailrig-Load: RUNID SEQ` or else the
/// `Message-ID: <load-RUNID-SEQ@mailrig>`; `None` for any other message.
fn load_seq(header: &[u8], run_id: &str) -> Option<u64> {
    let text = String::from_utf8_lossy(header);
    // Unfold continuation lines so a folded header is still found.
    let mut fields: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        match (line.starts_with([' ', '\t']), fields.last_mut()) {
            (true, Some(last)) => {
                last.push(' ');
                last.push_str(line.trim());
            }
            _ => fields.push(line.to_string()),
        }
    }
    let value = |name: &str| {
        fields.iter().find_map(|f| {
            let (n, v) = f.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    if let Some(v) = value(LOAD_HEADER) {
        let mut parts = v.split_whitespace();
        if parts.next() == Some(run_id)
            && let Some(Ok(seq)) = parts.next().map(str::parse)
        {
            return Some(seq);
        }
    }
    let id = value("Message-ID")?;
    id.strip_prefix(&format!("<load-{run_id}-"))?
        .strip_suffix("@mailrig>")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_seq_reads_the_header_then_the_message_id() {
        let h = b"From: <a@x>\r\nMessage-ID: <load-r1-7@mailrig>\r\nX-Mailrig-Load: r1 7\r\n\r\n";
        assert_eq!(load_seq(h, "r1"), Some(7));
        assert_eq!(load_seq(h, "r"), None);
        let folded = b"x-mailrig-load:\r\n r1 12\r\n";
        assert_eq!(load_seq(folded, "r1"), Some(12));
        let id_only = b"Message-Id: <load-r1-9@mailrig>\r\n";
        assert_eq!(load_seq(id_only, "r1"), Some(9));
        assert_eq!(load_seq(b"Subject: hi\r\n", "r1"), None);
    }

    #[test]
    fn host_port() {
        assert_eq!(
            parse_host_port("127.0.0.1:1143").unwrap(),
            ("127.0.0.1".to_string(), 1143)
        );
        assert_eq!(
            parse_host_port("[::1]:143").unwrap(),
            ("::1".to_string(), 143)
        );
        assert!(parse_host_port("localhost").is_err());
    }
}
