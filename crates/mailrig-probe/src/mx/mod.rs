//! Every MX (`--each-mx`, `[smtp] mx = true`): one probe per mailbox through
//! every MX host of its domain, so a backup MX that accepts and never
//! forwards is seen (`missing via mx2.patente.test`).
//!
//! The hosts come from DNS — the system resolver, or one server named with
//! `--resolver ADDR` (the world's fake DNS, a test's own) — or, without DNS,
//! from the target's `[smtp] mx_hosts`. All MX hosts share one run
//! ([`crate::run`]): one run id and a token per probe, the sends through all
//! hosts at once, one reader per mailbox finding all its probes in the same
//! scans; the report's rows name the MX each probe went through. MX hosts
//! are sent to the way the internet does: plain SMTP, no login, on port 25
//! (or the target's `mx_port`, or `--mx-port`).
//!
//! Resolving is I/O; what to probe through which host ([`plan`]) is pure and
//! tested on its own.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

use crate::report::Report;
use crate::run::{ProbeError, ProbeOptions};
use crate::target::Target;

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

/// Probes every mailbox through every MX host of its domain: one run (one
/// run id, one send phase through all hosts at once, one read phase), whose
/// rows name the MX each probe went through.
pub(crate) async fn probe_each_mx(
    target: &Target,
    opts: &ProbeOptions,
) -> Result<Report, ProbeError> {
    if target.mailboxes.is_empty() {
        return Err(ProbeError::NoMailboxes);
    }
    let port = opts.mx_port.unwrap_or(target.smtp.mx_port);
    let records = resolve(target, opts.resolver, port).await?;
    let routes = plan(target, &records);
    let mut report = crate::run::probe_through(target, opts, Some(&routes)).await?;
    report.notes.insert(0, route_note(&routes));
    Ok(report)
}

/// The report's note on which MX hosts were probed, for how many mailboxes.
pub(crate) fn route_note(routes: &[MxRoute]) -> String {
    let hosts: Vec<String> = routes
        .iter()
        .map(|r| format!("{} ({}, {} mailbox(es))", r.name, r.addr, r.mailboxes.len()))
        .collect();
    format!(
        "each MX: one probe per mailbox through {}",
        hosts.join(", ")
    )
}

#[cfg(test)]
mod tests;
