//! A whole load run: check the configuration, resolve the target, start the sessions, stop them at the
//! count, the deadline or the cancellation, and turn the tally into a [`Report`].

use std::future::Future;
use std::io::IsTerminal as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::{LoadConfig, splitmix64};
use crate::errors::LoadError;
use crate::message::MessageFactory;
use crate::pacing::Schedule;
use crate::report::{Report, RunInfo, Tally};
use crate::session::{Live, Shared, run_session};
use crate::tls::TlsSetup;

/// How long sessions get past the deadline (on top of the reply timeout) before they are cut off.
const DEADLINE_GRACE: Duration = Duration::from_secs(2);

/// Runs a load and returns its report.
///
/// The run ends by itself when `config.messages` have been started and answered or `config.duration` has
/// passed (messages in flight are finished, each bounded by `config.timeout`). When `cancel` completes
/// first (e.g. `tokio::signal::ctrl_c()`), sessions stop at once and the report covers what was done;
/// messages cut off are counted as `interrupted`. Must be called inside a tokio runtime.
pub async fn run(config: LoadConfig, cancel: impl Future) -> Result<Report, LoadError> {
    config.validate()?;
    let authority = config.target.authority();
    let lookup =
        tokio::time::timeout(config.timeout, tokio::net::lookup_host(authority.clone())).await;
    let addrs: Vec<_> = match lookup {
        Err(_) => {
            return Err(LoadError::Resolve {
                target: authority,
                reason: "timed out".into(),
            });
        }
        Ok(Err(e)) => {
            return Err(LoadError::Resolve {
                target: authority,
                reason: e.to_string(),
            });
        }
        Ok(Ok(a)) => a.collect(),
    };
    if addrs.is_empty() {
        return Err(LoadError::Resolve {
            target: authority,
            reason: "no addresses".into(),
        });
    }
    // One connection first: a target where nothing listens is "could not run", not a measurement of
    // thousands of refused connects. It becomes session 0's first connection, so the server sees no
    // extra connection.
    let t0 = Instant::now();
    let first = match tokio::time::timeout(config.timeout, TcpStream::connect(addrs[0])).await {
        Err(_) => {
            return Err(LoadError::Unreachable {
                target: authority,
                reason: format!("no answer within {:?}", config.timeout),
            });
        }
        Ok(Err(e)) => {
            return Err(LoadError::Unreachable {
                target: authority,
                reason: e.to_string(),
            });
        }
        Ok(Ok(tcp)) => (tcp, t0.elapsed()),
    };
    let tls = if config.target.implicit_tls || config.starttls {
        Some(TlsSetup::new(&config.tls, &config.target)?)
    } else {
        None
    };
    let wall_start = SystemTime::now();
    let unix = wall_start.duration_since(UNIX_EPOCH).unwrap_or_default();
    let run_id = config.run_id.clone().unwrap_or_else(|| random_run_id(unix));
    let factory = MessageFactory::new(&run_id, &config.from, config.sizes.clone(), unix.as_secs());
    let start = Instant::now();
    let schedule = Schedule::new(start, config.pacing, config.messages, config.duration);
    let hard_stop = schedule
        .deadline()
        .map(|d| d + config.timeout + DEADLINE_GRACE);
    let shared = Arc::new(Shared {
        config,
        addrs,
        tls,
        schedule,
        factory,
        live: Arc::new(Live::default()),
        tally: Mutex::new(Tally::default()),
    });

    let mut sessions = JoinSet::new();
    let mut first = Some(first);
    for i in 0..shared.config.sessions {
        sessions.spawn(run_session(shared.clone(), i, first.take()));
    }
    // The progress line gets the live counters only, never `shared`: the tally is taken out of `shared`
    // below, and an aborted task is dropped by the runtime some time after `abort()` returns.
    let progress = (shared.config.progress && std::io::stderr().is_terminal())
        .then(|| tokio::spawn(show_progress(shared.live.clone(), start)));

    tokio::pin!(cancel);
    let mut cancelled = false;
    loop {
        tokio::select! {
            joined = sessions.join_next() => match joined {
                None => break,
                Some(Err(e)) if e.is_panic() => tracing::error!("a load session panicked: {e}"),
                Some(_) => {}
            },
            _ = &mut cancel => {
                cancelled = true;
                break;
            }
            _ = sleep_until_opt(hard_stop) => {
                tracing::warn!("sessions still busy past the deadline; cutting them off");
                break;
            }
        }
    }
    shared.schedule.stop();
    sessions.abort_all();
    while sessions.join_next().await.is_some() {}
    let end = Instant::now();
    if let Some(p) = progress {
        p.abort();
        // Wait until the task is gone, so its last line cannot land after the report's first.
        let _ = p.await;
        eprintln!();
    }

    // Take the tally out rather than unwrapping the `Arc`: a task still holding `shared` (none should)
    // must never cost the user the report of a whole run.
    let mut tally = std::mem::take(&mut *shared.tally());
    let c = &mut tally.counts;
    // Messages cut off by a cancellation never reached `record`; the live counter saw them start.
    c.attempted = c
        .attempted
        .max(shared.live.attempted.load(Ordering::Relaxed));
    c.interrupted = c.attempted.saturating_sub(c.accepted + c.failed);
    c.unsent = shared
        .schedule
        .due_before(end)
        .unwrap_or(0)
        .saturating_sub(c.attempted);
    let cfg = &shared.config;
    let info = RunInfo {
        run_id,
        target: cfg.target.url(),
        pacing: cfg.pacing,
        sessions: cfg.sessions,
        messages: cfg.messages,
        duration_secs: cfg.duration.map(|d| d.as_secs_f64()),
        sizes: cfg.sizes.clone(),
        recipients_per_message: cfg.recipients_per_message,
        messages_per_connection: cfg.messages_per_connection,
        pipelining: cfg.pipelining,
        starttls: cfg.starttls,
        started_unix_ms: u64::try_from(unix.as_millis()).unwrap_or(u64::MAX),
        elapsed_secs: (end - start).as_secs_f64(),
        cancelled,
    };
    tally.into_report(info, cfg.recipients.addresses().to_vec())
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Prints `attempted / accepted / failed / rate` on one stderr line, once a second.
async fn show_progress(live: Arc<Live>, start: Instant) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut last = 0u64;
    loop {
        tick.tick().await;
        let accepted = live.accepted.load(Ordering::Relaxed);
        eprint!(
            "\r{:>6.0}s  attempted {:>9}  accepted {:>9}  failed {:>7}  {:>8} msg/s \x1b[K",
            start.elapsed().as_secs_f64(),
            live.attempted.load(Ordering::Relaxed),
            accepted,
            live.failed.load(Ordering::Relaxed),
            accepted - last,
        );
        last = accepted;
    }
}

/// A fresh run id, as a run without `--run-id` makes itself: for callers that need the id before the run
/// starts (e.g. a verifier watching mailboxes for the run's messages while it goes).
pub fn new_run_id() -> String {
    random_run_id(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
    )
}

/// 12 hex digits from the clock and the process id.
fn random_run_id(unix: Duration) -> String {
    let seed = splitmix64(unix.as_nanos() as u64 ^ (u64::from(std::process::id()) << 32));
    format!("{:012x}", seed & 0xffff_ffff_ffff)
}
