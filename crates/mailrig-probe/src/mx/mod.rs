//! Every MX (`--each-mx`, `[smtp] mx = true`): one probe per mailbox through
//! every MX host of its domain, so a backup MX that accepts and never
//! forwards is seen (`missing via mx2.patente.test`).
//!
//! The hosts come from DNS — the system resolver, or one server named with
//! `--resolver ADDR` (the world's fake DNS, a test's own) — or, without DNS,
//! from the target's `[smtp] mx_hosts`. Each MX host gets its own probe run
//! (its own run id, so the runs never see each other's messages) over the
//! mailboxes it is MX for; the runs go at the same time and their results are
//! merged into one report whose rows name the MX they went through. MX hosts
//! are sent to the way the internet does: plain SMTP, no login, on port 25
//! (or the target's `mx_port`, or `--mx-port`).
//!
//! Resolving is I/O; what to probe through which host ([`plan`]) and how the
//! runs' reports become one ([`merge`]) are pure and tested on their own.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

use crate::report::{Cleanup, Report, RunInfo};
use crate::run::{Phase, ProbeError, ProbeOptions, Progress, ProgressFn};
use crate::target::{Target, TlsMode, domain_of};
use crate::verdict::{MailboxResult, SmtpReply, Verdict};

/// The standard SMTP port MX hosts listen on.
pub const MX_PORT: u16 = 25;

/// One MX host as DNS (or the target file) names it, for some domains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MxRecord {
    /// The domain whose MX it is; `None`: every domain (`mx_hosts`).
    pub domain: Option<String>,
    pub preference: u16,
    /// The host name (`mx2.patente.test`), or the address when none is known.
    pub name: String,
    pub addr: SocketAddr,
}

/// One MX host and the mailboxes (indices into the target) probed through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MxRoute {
    pub name: String,
    pub addr: SocketAddr,
    pub mailboxes: Vec<usize>,
}

/// Which mailbox goes through which MX: every mailbox through every MX of
/// its domain, hosts in preference order (then name). A host that is MX for
/// several domains is one route.
pub(crate) fn plan(target: &Target, records: &[MxRecord]) -> Vec<MxRoute> {
    let mut sorted: Vec<&MxRecord> = records.iter().collect();
    sorted.sort_by(|a, b| (a.preference, &a.name).cmp(&(b.preference, &b.name)));
    let mut routes: Vec<MxRoute> = Vec::new();
    for r in sorted {
        let members: Vec<usize> = target
            .mailboxes
            .iter()
            .enumerate()
            .filter(|(_, m)| r.domain.as_ref().is_none_or(|d| *d == m.domain()))
            .map(|(i, _)| i)
            .collect();
        match routes
            .iter_mut()
            .find(|x| x.name == r.name && x.addr == r.addr)
        {
            Some(x) => {
                x.mailboxes.extend(members);
                x.mailboxes.sort_unstable();
                x.mailboxes.dedup();
            }
            None => routes.push(MxRoute {
                name: r.name.clone(),
                addr: r.addr,
                mailboxes: members,
            }),
        }
    }
    routes.retain(|r| !r.mailboxes.is_empty());
    routes
}

/// A resolver: the system's, or one server at `addr` (UDP, then TCP).
fn resolver(addr: Option<SocketAddr>, limit: Duration) -> Result<TokioResolver, ProbeError> {
    let mut builder = match addr {
        None => TokioResolver::builder_tokio().map_err(|e| ProbeError::MxLookup {
            domain: String::new(),
            reason: format!("cannot read the system resolver configuration: {e}"),
        })?,
        Some(addr) => {
            let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
            for c in &mut ns.connections {
                c.port = addr.port();
            }
            TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, Vec::new(), vec![ns]),
                TokioRuntimeProvider::default(),
            )
            .with_options(ResolverOpts::default())
        }
    };
    let opts = builder.options_mut();
    opts.timeout = limit.min(Duration::from_secs(5));
    opts.attempts = 2;
    builder.build().map_err(|e| ProbeError::MxLookup {
        domain: String::new(),
        reason: format!("cannot set up the resolver: {e}"),
    })
}

/// The first address of `name` (IPv4 first), through `r`.
async fn address_of(r: &TokioResolver, name: &str) -> Result<IpAddr, String> {
    let fqdn = fqdn(name);
    let found = r
        .lookup_ip(fqdn.as_str())
        .await
        .map_err(|e| e.to_string())?;
    let all: Vec<IpAddr> = found.iter().collect();
    all.iter()
        .find(|a| a.is_ipv4())
        .or(all.first())
        .copied()
        .ok_or_else(|| "no A or AAAA record".to_string())
}

fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

/// The MX records of every domain of the target (or its `mx_hosts`), with
/// addresses. Any lookup that fails stops the probe before anything is sent.
pub(crate) async fn resolve(
    target: &Target,
    resolver_addr: Option<SocketAddr>,
    port: u16,
) -> Result<Vec<MxRecord>, ProbeError> {
    let limit = target.connect_timeout;
    if !target.smtp.mx_hosts.is_empty() {
        let mut out = Vec::new();
        let mut r = None;
        for (preference, h) in (0u16..).zip(&target.smtp.mx_hosts) {
            let ip = match h.ip {
                Some(ip) => ip,
                None => {
                    if r.is_none() {
                        r = Some(resolver(resolver_addr, limit)?);
                    }
                    let Some(r) = r.as_ref() else { continue };
                    address_of(r, &h.name)
                        .await
                        .map_err(|reason| ProbeError::MxLookup {
                            domain: h.name.clone(),
                            reason: format!("[smtp] mx_hosts: cannot resolve {}: {reason}", h.name),
                        })?
                }
            };
            out.push(MxRecord {
                domain: None,
                preference,
                name: h.name.clone(),
                addr: SocketAddr::new(ip, h.port.unwrap_or(port)),
            });
        }
        return Ok(out);
    }
    let r = resolver(resolver_addr, limit)?;
    let mut domains: Vec<String> = target.mailboxes.iter().map(|m| m.domain()).collect();
    domains.sort();
    domains.dedup();
    let via = resolver_addr.map_or("the system resolver".to_string(), |a| a.to_string());
    let mut out = Vec::new();
    for domain in domains {
        let lookup =
            r.mx_lookup(fqdn(&domain).as_str())
                .await
                .map_err(|e| ProbeError::MxLookup {
                    domain: domain.clone(),
                    reason: format!("MX lookup through {via} failed: {e}"),
                })?;
        let mut mxs: Vec<(u16, String)> = lookup
            .answers()
            .iter()
            .filter_map(|rec| match &rec.data {
                RData::MX(mx) => Some((
                    mx.preference,
                    mx.exchange.to_string().trim_end_matches('.').to_string(),
                )),
                _ => None,
            })
            .collect();
        if mxs.is_empty() {
            return Err(ProbeError::MxLookup {
                domain,
                reason: format!("{via} returned no MX records"),
            });
        }
        mxs.sort();
        for (preference, name) in mxs {
            let ip = address_of(&r, &name)
                .await
                .map_err(|reason| ProbeError::MxLookup {
                    domain: domain.clone(),
                    reason: format!("its MX {name} has no address through {via}: {reason}"),
                })?;
            out.push(MxRecord {
                domain: Some(domain.clone()),
                preference,
                name,
                addr: SocketAddr::new(ip, port),
            });
        }
    }
    Ok(out)
}

/// Probes every mailbox through every MX host of its domain.
pub(crate) async fn probe_each_mx(
    target: &Target,
    opts: &ProbeOptions,
) -> Result<Report, ProbeError> {
    let started = Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    if target.mailboxes.is_empty() {
        return Err(ProbeError::NoMailboxes);
    }
    let port = opts.mx_port.unwrap_or(target.smtp.mx_port);
    let records = resolve(target, opts.resolver, port).await?;
    let routes = plan(target, &records);
    let progress = opts
        .progress
        .clone()
        .map(|show| std::sync::Arc::new(CombinedProgress::new(show, routes.len())));
    let mut runs = tokio::task::JoinSet::new();
    for (k, route) in routes.iter().enumerate() {
        let mut sub = target.clone();
        sub.smtp.host = route.addr.ip().to_string();
        sub.smtp.port = route.addr.port();
        sub.smtp.tls = TlsMode::None;
        sub.smtp.auth = None;
        sub.smtp.mx = false;
        sub.smtp.mx_hosts.clear();
        sub.mailboxes = route
            .mailboxes
            .iter()
            .map(|&i| target.mailboxes[i].clone())
            .collect();
        let mut sub_opts = opts.clone();
        sub_opts.each_mx = false;
        sub_opts.run_id = opts
            .run_id
            .as_ref()
            .map(|id| crate::message::RunId::from_string(format!("{id}mx{k:02}")));
        sub_opts.progress = progress.as_ref().map(|p| p.part(k));
        runs.spawn(async move { (k, crate::run::probe_once(&sub, &sub_opts).await) });
    }
    let mut outcomes: Vec<Option<Result<Report, ProbeError>>> = vec![None; routes.len()];
    while let Some(done) = runs.join_next().await {
        if let Ok((k, r)) = done {
            outcomes[k] = Some(r);
        }
    }
    let mut reports = Vec::with_capacity(routes.len());
    for (route, outcome) in routes.iter().zip(outcomes) {
        let outcome = outcome.unwrap_or(Err(ProbeError::SmtpUnreachable {
            host: route.addr.ip().to_string(),
            port: route.addr.port(),
            reason: "the probe through this MX ended early".into(),
        }));
        reports.push(match outcome {
            Ok(r) => RouteOutcome::Probed(Box::new(r)),
            Err(ProbeError::SmtpUnreachable { reason, .. }) => RouteOutcome::Unreachable(reason),
            Err(e) => return Err(e),
        });
    }
    let mut report = merge(target, &routes, reports, started_at);
    report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(report)
}

/// The runs through every MX shown as one: each run's updates are kept, and
/// every update shows the sum over the runs ([`combine`]).
struct CombinedProgress {
    show: ProgressFn,
    parts: Mutex<Vec<Option<Progress>>>,
}

impl CombinedProgress {
    fn new(show: ProgressFn, runs: usize) -> CombinedProgress {
        CombinedProgress {
            show,
            parts: Mutex::new(vec![None; runs]),
        }
    }

    /// The progress callback of run `k`.
    fn part(self: &Arc<Self>, k: usize) -> ProgressFn {
        let me = Arc::clone(self);
        Arc::new(move |p: &Progress| {
            let combined = {
                let Ok(mut parts) = me.parts.lock() else {
                    return;
                };
                if let Some(slot) = parts.get_mut(k) {
                    *slot = Some(p.clone());
                }
                combine(&parts)
            };
            if let Some(c) = combined {
                (me.show)(&c);
            }
        })
    }
}

/// One progress line for several runs: the phase of the run furthest
/// behind, counts summed (a run not heard from yet counts as not started).
pub(crate) fn combine(parts: &[Option<Progress>]) -> Option<Progress> {
    let seen: Vec<&Progress> = parts.iter().flatten().collect();
    let first = seen.first()?;
    let phase = if seen.len() < parts.len() {
        Phase::Connecting
    } else {
        seen.iter().map(|p| p.phase).min().unwrap_or(first.phase)
    };
    let sum = |f: fn(&Progress) -> usize| seen.iter().map(|p| f(p)).sum::<usize>();
    Some(Progress {
        phase,
        total: sum(|p| p.total),
        done: seen
            .iter()
            .map(|p| if p.phase == phase { p.done } else { p.total })
            .sum(),
        known: sum(|p| p.known),
        elapsed: seen.iter().map(|p| p.elapsed).max().unwrap_or_default(),
    })
}

/// What came of the run through one MX.
#[derive(Debug)]
pub(crate) enum RouteOutcome {
    Probed(Box<Report>),
    /// The MX did not answer: its mailboxes are `deferred via` it.
    Unreachable(String),
}

/// One report from the runs through every MX: rows in target order, each
/// mailbox once per MX it was probed through (`via` set), counts over them.
pub(crate) fn merge(
    target: &Target,
    routes: &[MxRoute],
    outcomes: Vec<RouteOutcome>,
    started_at: String,
) -> Report {
    let mut rows: BTreeMap<(usize, usize), MailboxResult> = BTreeMap::new();
    let mut cleanup = Cleanup::default();
    let mut notes: Vec<String> = Vec::new();
    let (mut run_ids, mut timeout_ms, mut timed_out) = (Vec::new(), 0, false);
    for (k, (route, outcome)) in routes.iter().zip(outcomes).enumerate() {
        match outcome {
            RouteOutcome::Probed(r) => {
                let r = *r;
                run_ids.push(r.run_id.clone());
                timeout_ms = timeout_ms.max(r.timeout_ms);
                timed_out |= r.timed_out;
                cleanup.kept |= r.cleanup.kept;
                cleanup.deleted += r.cleanup.deleted;
                cleanup.left += r.cleanup.left;
                cleanup.notes.extend(
                    r.cleanup
                        .notes
                        .iter()
                        .map(|n| format!("via {}: {n}", route.name)),
                );
                for n in r.notes {
                    if !notes.contains(&n) {
                        notes.push(n);
                    }
                }
                for (&i, mut m) in route.mailboxes.iter().zip(r.mailboxes) {
                    m.via = Some(route.name.clone());
                    rows.insert((i, k), m);
                }
            }
            RouteOutcome::Unreachable(reason) => {
                for &i in &route.mailboxes {
                    let mb = &target.mailboxes[i];
                    rows.insert(
                        (i, k),
                        MailboxResult {
                            address: mb.address.clone(),
                            domain: domain_of(&mb.address),
                            verdict: Verdict::Deferred,
                            token: String::new(),
                            latency_ms: None,
                            smtp: None::<SmtpReply>,
                            found_in: Vec::new(),
                            copies: 0,
                            differences: Vec::new(),
                            reason: format!(
                                "the MX {} ({}) could not be reached, nothing was sent through it: {reason}",
                                route.name, route.addr
                            ),
                            read_via: mb.read.to_string(),
                            folders: Vec::new(),
                            via: Some(route.name.clone()),
                            hops: Vec::new(),
                            auth: None,
                        },
                    );
                }
            }
        }
    }
    let hosts: Vec<String> = routes
        .iter()
        .map(|r| format!("{} ({}, {} mailbox(es))", r.name, r.addr, r.mailboxes.len()))
        .collect();
    notes.insert(
        0,
        format!(
            "each MX: one probe per mailbox through {}",
            hosts.join(", ")
        ),
    );
    let mut report = Report::new(
        RunInfo {
            run_id: run_ids.join("+"),
            target: target.source.clone(),
            started_at,
            duration_ms: 0,
            timeout_ms,
            timed_out,
        },
        rows.into_values().collect(),
        cleanup,
    );
    report.notes = notes;
    report
}

#[cfg(test)]
mod tests;
