//! One probe run, start to finish, in one direction:
//!
//! 1. build a tagged message per mailbox (one run id, a token each; with
//!    `--each-mx` one per mailbox and MX host, all in the same run);
//! 2. check the SMTP server answers (else: the probe cannot run; an MX host
//!    that does not answer defers the probes meant to go through it);
//! 3. log in to every mailbox, in parallel, bounded;
//! 4. send, over a few SMTP connections (a mailbox that cannot be read gets
//!    only MAIL/RCPT/RSET, so a rejection is still seen but nothing is left
//!    where it can be neither judged nor cleaned up);
//! 5. read back until every verdict is known or the timeout passes — IDLE
//!    where the server offers it and connections are not rationed, polling
//!    with backoff elsewhere; each scan wakes the judge;
//! 6. one last scan per mailbox, delete this run's messages (unless kept),
//!    judge, report.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, oneshot};
use tokio_util::sync::CancellationToken;

use crate::message::{BuildError, ProbeMessage, RunId};
use crate::read::{FoundMessage, ReadError, ScanCache, Session};
use crate::report::{Cleanup, Report, RunInfo};
use crate::target::{MailboxTarget, Target, TargetError};
use crate::tls::{TlsContext, TrustError};
use crate::verdict::{
    self, Expected, MailboxResult, Observation, ReadState, SendOutcome, Sighting, UpstreamView,
    Verdict,
};

/// First and longest pause between polls of a mailbox without IDLE.
const POLL_MIN: Duration = Duration::from_millis(50);
const POLL_MAX: Duration = Duration::from_millis(1000);
/// Longest IDLE before re-checking (servers may drop silent IDLEs).
const IDLE_MAX: Duration = Duration::from_secs(25);

/// A progress callback.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// How to run a probe (what the command line adds to a target).
#[derive(Clone, Default)]
pub struct ProbeOptions {
    /// Overrides the target's timeout (how long to wait, after the last
    /// probe is sent, for verdicts still open).
    pub timeout: Option<Duration>,
    /// Leave the probe messages in the mailboxes.
    pub keep: bool,
    /// Use this run id instead of a random one.
    pub run_id: Option<RunId>,
    /// Called as the run progresses (for a progress display).
    pub progress: Option<ProgressFn>,
    /// Warn about a TLS certificate that expires within this many days (`--warn-cert-days`).
    pub warn_cert_days: Option<u32>,
    /// Probe through every MX host of each domain (`--each-mx`; the
    /// target's `[smtp] mx = true` does the same).
    pub each_mx: bool,
    /// The DNS server for MX lookups (`--resolver`); `None`: the system's.
    pub resolver: Option<std::net::SocketAddr>,
    /// The port MX hosts are sent to (`--mx-port`); `None`: the target's (25).
    pub mx_port: Option<u16>,
}

impl std::fmt::Debug for ProbeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeOptions")
            .field("timeout", &self.timeout)
            .field("keep", &self.keep)
            .field("run_id", &self.run_id)
            .field("progress", &self.progress.is_some())
            .field("each_mx", &self.each_mx)
            .field("resolver", &self.resolver)
            .field("mx_port", &self.mx_port)
            .finish()
    }
}

/// Where a run is (in the order a run goes through them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Logging in to the mailboxes.
    Connecting,
    Sending,
    /// Reading back.
    Waiting,
    /// Last scan and deleting probe messages.
    Finishing,
}

/// A progress update.
#[derive(Debug, Clone)]
pub struct Progress {
    pub phase: Phase,
    pub total: usize,
    /// Mailboxes logged in to (Connecting), probes sent (Sending).
    pub done: usize,
    /// Verdicts known so far (Waiting).
    pub known: usize,
    pub elapsed: Duration,
}

/// Why a probe could not run at all (exit code 2).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(
        "cannot find the MX hosts{}: {reason}; nothing was sent",
        if domain.is_empty() { String::new() } else { format!(" of {domain}") }
    )]
    MxLookup { domain: String, reason: String },
    #[error("the target lists no mailboxes")]
    NoMailboxes,
    #[error("cannot reach the SMTP server {host}:{port}: {reason}")]
    SmtpUnreachable {
        host: String,
        port: u16,
        reason: String,
    },
    #[error(
        "the master user {user} was refused for all {mailboxes} mailbox(es) it reads ({reason}); check [read] master_user, master_password and master_login; nothing was sent"
    )]
    MasterRefused {
        user: String,
        mailboxes: usize,
        reason: String,
    },
    #[error(
        "cannot reach {endpoint} (where {mailboxes} mailbox(es) are read): {reason}; nothing was sent"
    )]
    ReadUnreachable {
        endpoint: String,
        mailboxes: usize,
        reason: String,
    },
}

/// The exit code for a probe result: 0 all delivered, 1 some not, 2 the probe
/// could not run.
pub fn exit_code(result: &Result<Report, ProbeError>) -> u8 {
    match result {
        Ok(r) => r.exit_code(),
        Err(_) => 2,
    }
}

/// What the readers have seen, shared with the judge.
struct Board {
    observed: Mutex<Vec<Observation>>,
    changed: Notify,
    /// Per slot: the mailbox's verdict is known, so its reader need not
    /// look again before the last scan.
    settled: Vec<std::sync::atomic::AtomicBool>,
}

impl Board {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Observation>> {
        // A reader that panicked while holding the lock leaves consistent
        // data (plain assignments), so poisoning is ignored.
        self.observed.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, i: usize, found: Vec<FoundMessage>) {
        let now = Instant::now();
        {
            let mut all = self.lock();
            let o = &mut all[i];
            let seen = found
                .into_iter()
                .map(|f| Sighting {
                    first_seen: o
                        .seen
                        .iter()
                        .find(|s| s.key == f.key && s.folder == f.folder)
                        .map_or(now, |s| s.first_seen),
                    folder: f.folder,
                    key: f.key,
                    token: f.token,
                    headers: f.headers,
                    body_hash: f.body_hash,
                })
                .collect();
            o.seen = seen;
            o.read = ReadState::Read { last_error: None };
        }
        self.changed.notify_waiters();
    }

    fn settle(&self, i: usize) {
        if let Some(s) = self.settled.get(i) {
            s.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn is_settled(&self, i: usize) -> bool {
        self.settled
            .get(i)
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed))
    }

    fn read_failed(&self, i: usize, e: &ReadError) {
        let mut all = self.lock();
        all[i].read = match &all[i].read {
            ReadState::Failed(_) | ReadState::Pending => ReadState::Failed(e.to_string()),
            ReadState::Read { .. } => ReadState::Read {
                last_error: Some(e.to_string()),
            },
        };
    }
}

/// What a reader did at the end.
#[derive(Debug, Default)]
struct ReaderEnd {
    deleted: usize,
    left: usize,
    note: Option<String>,
}

/// Sends a probe to every mailbox of `target` and judges each one; with
/// [`ProbeOptions::each_mx`] (or `[smtp] mx = true`) through every MX host
/// of each mailbox's domain ([`crate::mx`]).
pub async fn probe(target: &Target, opts: &ProbeOptions) -> Result<Report, ProbeError> {
    let each_mx = opts.each_mx || target.smtp.mx;
    let mut report = if each_mx {
        crate::mx::probe_each_mx(target, opts).await?
    } else {
        probe_once(target, opts).await?
    };
    report.tls = crate::endpoint_tls::inspect_all(target, each_mx, opts.warn_cert_days).await;
    Ok(report)
}

/// One run through the target's one SMTP server.
pub(crate) async fn probe_once(target: &Target, opts: &ProbeOptions) -> Result<Report, ProbeError> {
    probe_through(target, opts, None).await
}

/// One run: every mailbox once through the target's SMTP server, or (with
/// `routes`) once through every MX route it is on. Either way there is one
/// send phase and one read phase: one run id, a token per probe, one reader
/// per mailbox finding all of that mailbox's probes in the same scans.
pub(crate) async fn probe_through(
    target: &Target,
    opts: &ProbeOptions,
    routes: Option<&[crate::mx::MxRoute]>,
) -> Result<Report, ProbeError> {
    let started = Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let run = opts.run_id.clone().unwrap_or_else(RunId::random);
    let timeout = opts.timeout.unwrap_or(target.timeout);
    let limit = target.connect_timeout;
    let n = target.mailboxes.len();
    if n == 0 {
        return Err(ProbeError::NoMailboxes);
    }
    let tls = TlsContext::new(&target.trust)?;
    // The probes: (mailbox, route), in mailbox order, then route order.
    let probes: Vec<(usize, usize)> = match routes {
        None => (0..n).map(|i| (i, 0)).collect(),
        Some(routes) => {
            let mut v: Vec<(usize, usize)> = routes
                .iter()
                .enumerate()
                .flat_map(|(k, r)| r.mailboxes.iter().map(move |&i| (i, k)))
                .collect();
            v.sort_unstable();
            v
        }
    };
    let pn = probes.len();
    let endpoints: Vec<crate::target::SmtpTarget> = match routes {
        None => vec![target.smtp.clone()],
        Some(routes) => routes
            .iter()
            .map(|r| {
                let mut smtp = target.smtp.clone();
                smtp.host = r.addr.ip().to_string();
                smtp.port = r.addr.port();
                smtp.tls = crate::target::TlsMode::None;
                smtp.auth = None;
                smtp.mx = false;
                smtp.mx_hosts.clear();
                smtp
            })
            .collect(),
    };
    let report_progress = |phase: Phase, done: usize, known: usize| {
        if let Some(p) = &opts.progress {
            p(&Progress {
                phase,
                total: if phase == Phase::Connecting { n } else { pn },
                done,
                known,
                elapsed: started.elapsed(),
            });
        }
    };

    // 1. messages
    let messages: Vec<ProbeMessage> = probes
        .iter()
        .enumerate()
        .map(|(p, &(i, _))| {
            ProbeMessage::build_signed(
                &run,
                p,
                &target.smtp.from,
                &target.mailboxes[i].address,
                target.smtp.dkim.as_ref(),
            )
        })
        .collect::<Result<_, _>>()?;
    let require: Arc<[crate::auth::Requirement]> = Arc::from(target.require.clone());
    let expected: Vec<Expected> = messages
        .iter()
        .map(|m| Expected {
            address: m.recipient.clone(),
            token: m.token.clone(),
            message_id: m.message_id.clone(),
            subject: m.subject.clone(),
            body_hash: m.body_hash.clone(),
            require: Arc::clone(&require),
        })
        .collect();

    // 2. SMTP answers? One server: else the probe cannot run. MX routes:
    //    one that does not answer defers its probes, nothing goes through it.
    let mut checks = tokio::task::JoinSet::new();
    for (k, smtp) in endpoints.iter().enumerate() {
        let (smtp, tls) = (smtp.clone(), tls.clone());
        checks.spawn(async move {
            let r = match crate::send::connect(&smtp, &tls, limit).await {
                Ok(mut c) => {
                    let _ = c.quit().await;
                    None
                }
                Err(reason) => Some(reason),
            };
            (k, r)
        });
    }
    let mut unreachable: Vec<Option<String>> = vec![None; endpoints.len()];
    while let Some(done) = checks.join_next().await {
        if let Ok((k, r)) = done {
            unreachable[k] = r;
        }
    }
    if let (None, Some(reason)) = (routes, unreachable[0].clone()) {
        return Err(ProbeError::SmtpUnreachable {
            host: target.smtp.host.clone(),
            port: target.smtp.port,
            reason,
        });
    }

    // 3. readers log in: one per mailbox (board slots 0..n), then one per
    //    upstream (slots n.., `upstream_of` maps a mailbox to its slot).
    report_progress(Phase::Connecting, 0, 0);
    let upstreams: Vec<(usize, MailboxTarget)> = target
        .mailboxes
        .iter()
        .enumerate()
        .filter_map(|(i, mb)| mb.at_upstream().map(|u| (i, u)))
        .collect();
    let mut upstream_of: Vec<Option<usize>> = vec![None; n];
    for (k, (i, _)) in upstreams.iter().enumerate() {
        upstream_of[*i] = Some(n + k);
    }
    let slots = n + upstreams.len();
    let board = Arc::new(Board {
        observed: Mutex::new(vec![Observation::default(); slots]),
        changed: Notify::new(),
        settled: (0..slots)
            .map(|_| std::sync::atomic::AtomicBool::new(false))
            .collect(),
    });
    let go = CancellationToken::new();
    let stop = CancellationToken::new();
    let sem = Arc::new(Semaphore::new(target.concurrency.max(1)));
    let hold = slots <= target.concurrency;
    let mut readers = tokio::task::JoinSet::new();
    let mut logins = Vec::with_capacity(slots);
    let all_readers = target
        .mailboxes
        .iter()
        .chain(upstreams.iter().map(|(_, u)| u));
    for (i, mb) in all_readers.enumerate() {
        let (tx, rx) = oneshot::channel();
        logins.push(rx);
        let reader = Reader {
            i,
            mb: mb.clone(),
            run: run.clone(),
            tls: tls.clone(),
            limit,
            board: Arc::clone(&board),
            sem: Arc::clone(&sem),
            hold,
            keep: opts.keep,
        };
        let (go, stop) = (go.clone(), stop.clone());
        readers.spawn(async move { (i, reader.run(tx, go, stop).await) });
    }
    let mut login_results: Vec<Result<(), ReadError>> = Vec::with_capacity(slots);
    for (done, rx) in logins.into_iter().enumerate() {
        login_results.push(
            rx.await
                .unwrap_or_else(|_| Err(ReadError::Protocol("reader ended early".into()))),
        );
        report_progress(Phase::Connecting, (done + 1).min(n), 0);
    }
    let upstream_logins = login_results.split_off(n);
    let upstream_targets: Vec<MailboxTarget> = upstreams.iter().map(|(_, u)| u.clone()).collect();
    if let Some(err) = unreachable_endpoint(&target.mailboxes, &login_results)
        .or_else(|| master_refused(&target.mailboxes, &login_results))
        .or_else(|| {
            unreachable_endpoint(&upstream_targets, &upstream_logins).map(|e| match e {
                ProbeError::ReadUnreachable {
                    endpoint,
                    mailboxes,
                    reason,
                } => ProbeError::ReadUnreachable {
                    endpoint: format!("the upstream {endpoint}"),
                    mailboxes,
                    reason,
                },
                other => other,
            })
        })
        .or_else(|| master_refused(&upstream_targets, &upstream_logins))
    {
        stop.cancel();
        go.cancel();
        while readers.join_next().await.is_some() {}
        return Err(err);
    }
    for (i, r) in login_results.iter().chain(&upstream_logins).enumerate() {
        match r {
            Ok(()) => board.lock()[i].read = ReadState::Read { last_error: None },
            Err(e) => board.read_failed(i, e),
        }
    }

    // 4. send: through each endpoint at the same time.
    let mut sent: Vec<SendOutcome> = vec![SendOutcome::NotSent; pn];
    let mut to_send: Vec<Vec<crate::send::Job>> = endpoints.iter().map(|_| Vec::new()).collect();
    for (index, message) in messages.into_iter().enumerate() {
        let (i, k) = probes[index];
        if let (Some(reason), Some(routes)) = (&unreachable[k], routes) {
            let r = &routes[k];
            sent[index] = SendOutcome::Failed {
                reply: None,
                reason: format!(
                    "the MX {} ({}) could not be reached, nothing was sent through it: {reason}",
                    r.name, r.addr
                ),
            };
            continue;
        }
        to_send[k].push(crate::send::Job {
            index,
            message,
            rcpt_only: login_results[i].is_err(),
        });
    }
    let sent_count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let on_sent: Arc<dyn Fn() + Send + Sync> = {
        let sent_count = Arc::clone(&sent_count);
        let progress = opts.progress.clone();
        Arc::new(move || {
            let done = sent_count.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if let Some(p) = &progress {
                p(&Progress {
                    phase: Phase::Sending,
                    total: n,
                    done,
                    known: 0,
                    elapsed: started.elapsed(),
                });
            }
        })
    };
    report_progress(Phase::Sending, 0, 0);
    let mut sends = tokio::task::JoinSet::new();
    for (smtp, jobs) in endpoints.iter().zip(to_send) {
        if jobs.is_empty() {
            continue;
        }
        let (smtp, tls, on_sent) = (smtp.clone(), tls.clone(), Arc::clone(&on_sent));
        sends.spawn(async move { crate::send::send_all(&smtp, &tls, limit, jobs, on_sent).await });
    }
    while let Some(done) = sends.join_next().await {
        for (i, outcome) in done.unwrap_or_default() {
            sent[i] = outcome;
        }
    }
    go.cancel();

    // 5. wait for verdicts: the timeout counts from the last send, so slow
    //    logins (servers delay failed ones by seconds) do not eat into it.
    let deadline = tokio::time::Instant::now() + timeout;
    let mut timed_out = false;
    // Judging every mailbox costs in proportion to their number: with many,
    // let more scans land between rounds (10 ms, +20 ms per 1,000 mailboxes).
    let judge_pause = Duration::from_millis(10) + Duration::from_micros(20 * n as u64);
    loop {
        let notified = board.changed.notified();
        let (results, known) = judge_all(target, &probes, &expected, &sent, &board, &upstream_of);
        // A mailbox is settled when the verdicts of all its probes are.
        let mut open = vec![false; n];
        for (&(i, _), r) in probes.iter().zip(&results) {
            open[i] |= matches!(r.verdict, Verdict::Missing | Verdict::StuckUpstream);
        }
        for (i, open) in open.into_iter().enumerate() {
            if !open {
                board.settle(i);
                if let Some(slot) = upstream_of[i] {
                    board.settle(slot);
                }
            }
        }
        report_progress(Phase::Waiting, pn, known);
        if known == pn {
            break;
        }
        tokio::select! {
            _ = notified => {
                // Let a burst of scans land before judging again.
                tokio::time::sleep(judge_pause).await;
            }
            _ = tokio::time::sleep_until(deadline) => {
                timed_out = true;
                break;
            }
        }
    }

    // 6. finish
    report_progress(Phase::Finishing, pn, pn);
    stop.cancel();
    let mut cleanup = Cleanup {
        kept: opts.keep,
        ..Cleanup::default()
    };
    let mut notes = Vec::new();
    while let Some(r) = readers.join_next().await {
        if let Ok((i, end)) = r {
            cleanup.deleted += end.deleted;
            cleanup.left += end.left;
            if let Some(note) = end.note {
                notes.push((i, note));
            }
        }
    }
    notes.sort();
    cleanup.notes = notes
        .into_iter()
        .map(|(i, note)| match i.checked_sub(n) {
            None => format!("{}: {note}", target.mailboxes[i].address),
            Some(k) => format!(
                "{} (upstream {}): {note}",
                upstreams[k].1.address, upstreams[k].1.read
            ),
        })
        .collect();
    let (mut results, _) = judge_all(target, &probes, &expected, &sent, &board, &upstream_of);
    if let Some(routes) = routes {
        for (r, &(_, k)) in results.iter_mut().zip(&probes) {
            r.via = Some(routes[k].name.clone());
        }
    }
    let timed_out = timed_out
        && results
            .iter()
            .any(|r| matches!(r.verdict, Verdict::Missing | Verdict::StuckUpstream));
    let pop3 = target
        .mailboxes
        .iter()
        .filter(|m| m.read.protocol == crate::target::ReadProtocol::Pop3)
        .count();
    let mut report = Report::new(
        RunInfo {
            run_id: run.to_string(),
            target: target.source.clone(),
            started_at,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            timed_out,
        },
        results,
        cleanup,
    );
    if pop3 > 0 {
        report.notes.push(format!(
            "{pop3} mailbox(es) read over POP3: only INBOX was searched (POP3 has no folders), so mail filed into Junk or another folder shows as missing"
        ));
    }
    Ok(report)
}

/// Judges every probe (`probes[p]`: its mailbox and route) from what the
/// readers saw; returns the results and how many are final.
fn judge_all(
    target: &Target,
    probes: &[(usize, usize)],
    expected: &[Expected],
    sent: &[SendOutcome],
    board: &Board,
    upstream_of: &[Option<usize>],
) -> (Vec<MailboxResult>, usize) {
    let all = board.lock().clone();
    let n = target.mailboxes.len();
    // Only the mailboxes themselves count for misrouting, not upstreams.
    // With several probes per mailbox, each sees its mailbox's observation.
    let observed: std::borrow::Cow<'_, [Observation]> = if probes.len() == n {
        std::borrow::Cow::Borrowed(&all[..n])
    } else {
        std::borrow::Cow::Owned(probes.iter().map(|&(i, _)| all[i].clone()).collect())
    };
    let index = verdict::seen_index(&observed);
    let upstream_via: Vec<Option<String>> = target
        .mailboxes
        .iter()
        .map(|m| m.upstream.as_ref().map(|u| u.read.to_string()))
        .collect();
    let mut known = 0;
    let results = probes
        .iter()
        .enumerate()
        .map(|(p, &(i, _))| {
            let upstream = match (upstream_of[i], &upstream_via[i]) {
                (Some(slot), Some(via)) => Some(UpstreamView {
                    observed: &all[slot],
                    read_via: via,
                }),
                _ => None,
            };
            let (r, final_) = verdict::judge(
                p,
                expected,
                &sent[p],
                &observed,
                &index,
                target.mailboxes[i].read.to_string(),
                upstream,
            );
            known += usize::from(final_);
            r
        })
        .collect();
    (results, known)
}

/// A master credential refused for every mailbox it reads: the credential,
/// not the mailboxes, is wrong, and the probe cannot run.
fn master_refused(
    mailboxes: &[MailboxTarget],
    logins: &[Result<(), ReadError>],
) -> Option<ProbeError> {
    let with_master: Vec<(&MailboxTarget, &Result<(), ReadError>)> = mailboxes
        .iter()
        .zip(logins)
        .filter(|(m, _)| m.master.is_some())
        .collect();
    let (first, _) = with_master.first()?;
    let reason = with_master.iter().find_map(|(_, r)| match r {
        Err(ReadError::Login { reason, .. }) => Some(reason.clone()),
        _ => None,
    })?;
    with_master
        .iter()
        .all(|(_, r)| matches!(r, Err(ReadError::Login { .. })))
        .then(|| ProbeError::MasterRefused {
            user: first
                .master
                .as_ref()
                .map(|m| m.user.clone())
                .unwrap_or_default(),
            mailboxes: with_master.len(),
            reason,
        })
}

/// An endpoint where every login failed at TCP connect: the probe cannot run.
fn unreachable_endpoint(
    mailboxes: &[MailboxTarget],
    logins: &[Result<(), ReadError>],
) -> Option<ProbeError> {
    let mut endpoints: Vec<String> = mailboxes.iter().map(|m| m.read.to_string()).collect();
    endpoints.dedup();
    endpoints.sort();
    endpoints.dedup();
    for endpoint in endpoints {
        let results: Vec<&Result<(), ReadError>> = mailboxes
            .iter()
            .zip(logins)
            .filter(|(m, _)| m.read.to_string() == endpoint)
            .map(|(_, r)| r)
            .collect();
        let first_reason = results.iter().find_map(|r| match r {
            Err(ReadError::Connect { reason, .. }) => Some(reason.clone()),
            _ => None,
        });
        let all_failed = results
            .iter()
            .all(|r| matches!(r, Err(ReadError::Connect { .. })));
        if let (true, Some(reason)) = (all_failed, first_reason) {
            return Some(ProbeError::ReadUnreachable {
                endpoint,
                mailboxes: results.len(),
                reason,
            });
        }
    }
    None
}

/// Reads one mailbox for the whole run.
struct Reader {
    i: usize,
    mb: MailboxTarget,
    run: RunId,
    tls: TlsContext,
    limit: Duration,
    board: Arc<Board>,
    sem: Arc<Semaphore>,
    /// Keep the connection open between scans (enough connections for all).
    hold: bool,
    keep: bool,
}

impl Reader {
    async fn run(
        self,
        login: oneshot::Sender<Result<(), ReadError>>,
        go: CancellationToken,
        stop: CancellationToken,
    ) -> ReaderEnd {
        let mut session = {
            let _permit = self.sem.acquire().await;
            match Session::open(&self.mb, &self.tls, self.limit).await {
                Ok(s) => {
                    let _ = login.send(Ok(()));
                    if self.hold && s.sees_new_mail() {
                        Some(s)
                    } else {
                        let _ = s.close().await;
                        None
                    }
                }
                Err(e) => {
                    let _ = login.send(Err(e));
                    return ReaderEnd::default();
                }
            }
        };
        tokio::select! {
            _ = go.cancelled() => {}
            _ = stop.cancelled() => {}
        }
        let mut cache = ScanCache::new();
        let mut folder_caches = std::collections::HashMap::new();
        let mut backoff = POLL_MIN;
        let mut sending = !go.is_cancelled();
        loop {
            let last = stop.is_cancelled();
            if sending && go.is_cancelled() {
                // Everything is sent: poll quickly again.
                sending = false;
                backoff = POLL_MIN;
            }
            let permit = if self.hold {
                None
            } else {
                self.sem.acquire().await.ok()
            };
            let mut s = match session.take() {
                Some(s) => s,
                None => match Session::open(&self.mb, &self.tls, self.limit).await {
                    Ok(s) => s,
                    Err(e) => {
                        self.board.read_failed(self.i, &e);
                        if last {
                            return ReaderEnd {
                                note: Some(format!(
                                    "final read failed, probe messages may be left: {e}"
                                )),
                                ..ReaderEnd::default()
                            };
                        }
                        drop(permit);
                        pause(backoff, &stop, &go).await;
                        backoff = (backoff * 2).min(POLL_MAX);
                        continue;
                    }
                },
            };
            let found = match s.scan(&self.run, &mut cache).await {
                Ok(found) => found,
                Err(e) => {
                    self.board.read_failed(self.i, &e);
                    if last {
                        return ReaderEnd {
                            note: Some(format!(
                                "final read failed, probe messages may be left: {e}"
                            )),
                            ..ReaderEnd::default()
                        };
                    }
                    drop(permit);
                    pause(backoff, &stop, &go).await;
                    backoff = (backoff * 2).min(POLL_MAX);
                    continue;
                }
            };
            if last {
                // The other folders, once: a probe there is misfiled.
                let mut found = found;
                let mut folder_note = None;
                match s.scan_other_folders(&self.run, &mut folder_caches).await {
                    Ok(more) => found.extend(more),
                    Err(e) => {
                        folder_note = Some(format!(
                            "other folders could not be searched, probe messages there may be left: {e}"
                        ))
                    }
                }
                self.board.record(self.i, found.clone());
                let mut end = self.finish(s, found).await;
                if let Some(n) = folder_note {
                    end.note = Some(match end.note {
                        Some(prev) => format!("{prev}; {n}"),
                        None => n,
                    });
                }
                return end;
            }
            self.board.record(self.i, found);
            if self.hold && s.sees_new_mail() && s.can_idle() {
                match s.wait_for_change(IDLE_MAX, &stop).await {
                    Ok(()) => session = Some(s),
                    Err(e) => self.board.read_failed(self.i, &e),
                }
            } else {
                if self.hold && s.sees_new_mail() {
                    session = Some(s);
                } else {
                    let _ = s.close().await;
                }
                drop(permit);
                if self.board.is_settled(self.i) && !stop.is_cancelled() {
                    // Its verdict is known: nothing to look for before the last scan.
                    stop.cancelled().await;
                } else {
                    pause(backoff, &stop, &go).await;
                    backoff = (backoff * 2).min(POLL_MAX);
                }
            }
        }
    }

    /// Deletes this run's own messages from every folder searched (unless
    /// kept) and logs out. Only messages whose `X-Mailrig-Probe` header
    /// carries this run's token are deleted ([`FoundMessage::is_own_probe`]):
    /// a message that matched by subject or Message-ID alone stays.
    async fn finish(&self, mut s: Session, found: Vec<FoundMessage>) -> ReaderEnd {
        let mut end = ReaderEnd::default();
        let (own, others): (Vec<FoundMessage>, Vec<FoundMessage>) =
            found.into_iter().partition(FoundMessage::is_own_probe);
        if !others.is_empty() {
            end.note = Some(format!(
                "{} message(s) name this run's token without its {} header: not the prober's to delete, left in place",
                others.len(),
                crate::message::PROBE_HEADER
            ));
        }
        if self.keep || own.is_empty() {
            end.left = own.len();
            let _ = s.close().await;
            return end;
        }
        match s.delete(&own).await {
            Ok((deleted, note)) => {
                end.deleted = deleted;
                end.left = own.len().saturating_sub(deleted);
                if let Some(n) = note {
                    end.note = Some(match end.note.take() {
                        Some(prev) => format!("{prev}; {n}"),
                        None => n,
                    });
                }
            }
            Err(e) => {
                end.left = own.len();
                end.note = Some(format!("could not delete probe messages: {e}"));
            }
        }
        if let Err(e) = s.close().await {
            end.note
                .get_or_insert_with(|| format!("logout failed: {e}"));
        }
        end
    }
}

/// Sleeps `d`, cut short by the end of the run or by the end of sending.
async fn pause(d: Duration, stop: &CancellationToken, go: &CancellationToken) {
    let waiting_for_go = !go.is_cancelled();
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stop.cancelled() => {}
        _ = go.cancelled(), if waiting_for_go => {}
    }
}
