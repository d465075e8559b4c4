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
//! How a mailbox is checked: log in, `UID SEARCH HEADER X-Mailrig-Load <run id>` (or every UID when the
//! server cannot search headers), fetch the headers of UIDs not seen before, and read the sequence number
//! from `X-Mailrig-Load: RUNID SEQ` (or the `Message-ID <load-RUNID-SEQ@mailrig>`). Repeat with backoff
//! (50 ms doubling to 1 s) until every message expected there was seen or `--verify-timeout` (counted from
//! the end of the run, for all mailboxes together) has passed; then each one not seen is `missing`. A
//! message's latency is taken when the search that found it returned, so it is accurate to the polling
//! interval. Accept times come from [`mailrig_load::AcceptTimes`] (kept in memory for verification runs
//! only, bounded; past the bound latency covers the first messages only and the report says so).

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
use tokio::sync::Semaphore;

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
                        user: m.login.clone(),
                        password: m.password.clone(),
                        read: read.clone(),
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

/// Checks every recipient mailbox of the report's (single) run. Call right after the run ended.
pub async fn verify(report: &Report, plan: &VerifyPlan) -> Verification {
    let deadline = Instant::now() + plan.timeout;
    let mut v = Verification {
        method: plan.method.clone(),
        timeout_secs: plan.timeout.as_secs_f64(),
        ..Verification::default()
    };
    let Some(accepted) = report.accepted.first() else {
        return v;
    };
    let run_id: Arc<str> = accepted.run_id.as_str().into();
    let mut expected: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (rcpt, seq) in accepted.deliveries() {
        expected.entry(rcpt).or_default().push(seq);
    }
    let limit = Arc::new(Semaphore::new(plan.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for (rcpt, seqs) in expected {
        let n = seqs.len() as u64;
        let Some(mb) = plan.mailboxes.get(&rcpt.to_ascii_lowercase()).cloned() else {
            v.per_recipient.insert(
                rcpt.to_string(),
                MailboxVerification {
                    accepted: n,
                    error: Some("no credentials for this address".into()),
                    ..Default::default()
                },
            );
            continue;
        };
        let (limit, run_id, tls) = (limit.clone(), run_id.clone(), plan.tls.clone());
        let connect_timeout = plan.connect_timeout;
        let rcpt = rcpt.to_string();
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let seen = check_mailbox(&mb, &tls, connect_timeout, &run_id, &seqs, deadline).await;
            (rcpt, n, seen)
        });
    }
    let mut hist = new_histogram();
    while let Some(joined) = tasks.join_next().await {
        let Ok((rcpt, n, seen)) = joined else {
            continue; // a panicked task: its mailbox is left out rather than guessed
        };
        let entry = match seen {
            Ok(seen) => {
                for (seq, at) in &seen {
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
                    delivered: seen.len() as u64,
                    missing: n - seen.len() as u64,
                    error: None,
                }
            }
            Err(e) => MailboxVerification {
                accepted: n,
                error: Some(e.to_string()),
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

/// Polls one mailbox until every expected message was seen or the deadline passed; returns the
/// `(seq, first seen)` of those seen.
async fn check_mailbox(
    mb: &MailboxTarget,
    tls: &ReaderTls,
    connect_timeout: Duration,
    run_id: &str,
    expected: &[u64],
    deadline: Instant,
) -> Result<Vec<(u64, Instant)>, ReadError> {
    let mut reader = ImapReader::open(mb, tls, connect_timeout).await?;
    let mut pending: HashSet<u64> = expected.iter().copied().collect();
    let mut known_uids: HashSet<u32> = HashSet::new();
    let mut seen = Vec::new();
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
        if !new.is_empty() {
            for (_, header) in reader.fetch_headers(&new).await? {
                if let Some(seq) = load_seq(&header, run_id)
                    && pending.remove(&seq)
                {
                    seen.push((seq, found_at));
                }
            }
            known_uids.extend(new);
        }
        let now = Instant::now();
        if pending.is_empty() || now >= deadline {
            break;
        }
        tokio::time::sleep(backoff.min(deadline - now)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
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
