//! The world's hosts: `[[host]]` tables of a scenario, each one mail server of
//! a small internet of mail on its own loopback address.
//!
//! A host has a name, an address in 127.0.0.0/8, the listeners it runs (SMTP
//! on 25 by default), the domains it is MX for and the mailboxes it stores,
//! its own fault rules (the whole fault language) and two host-level faults:
//! `down` (nothing listens: connections are refused) and `blackhole` (every
//! message accepted and thrown away, journaled). Its role says what it does
//! with mail: a `mailbox` host stores it, a `backup-mx` or `relay` queues it
//! and forwards it over SMTP to another host.
//!
//! Each host gets its own [`World`]: the scenario's world cut down to the
//! host's domains and mailboxes (mailbox ids renumbered), so every session,
//! store and fault rule of a host works exactly as in a one-server world. A
//! scenario without `[[host]]` has no hosts here and behaves as it always did.
//!
//! Another part of the world (fake DNS) derives its MX and A records from
//! [`Host::name`], [`Host::hostname`], [`Host::address`] and [`Host::mx_for`].

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::fault::{FaultPlan, FaultRuleSpec};
use crate::located::LocatedError;
use crate::range;
use crate::world::{Domain, Mailbox, MailboxId, UnknownRecipient, World, WorldParts};

/// What a host does with the mail it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRole {
    /// Stores mail in its mailboxes (the default).
    Mailbox,
    /// Accepts mail for its domains, queues it, and forwards it over SMTP to
    /// `forward_to` (the primary), retrying every `retry` until it is taken.
    BackupMx { forward_to: String, retry: Duration },
    /// Like a backup MX, for any domain it is configured for: a smarthost.
    Relay { forward_to: String, retry: Duration },
}

impl HostRole {
    pub fn name(&self) -> &'static str {
        match self {
            HostRole::Mailbox => "mailbox",
            HostRole::BackupMx { .. } => "backup-mx",
            HostRole::Relay { .. } => "relay",
        }
    }

    /// The host mail is forwarded to, for a forwarding role.
    pub fn forward_to(&self) -> Option<(&str, Duration)> {
        match self {
            HostRole::Mailbox => None,
            HostRole::BackupMx { forward_to, retry } | HostRole::Relay { forward_to, retry } => {
                Some((forward_to, *retry))
            }
        }
    }
}

/// The ports a host listens on; `None` is off. Port 0 asks for a free port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostListeners {
    pub smtp: Option<u16>,
    pub smtps: Option<u16>,
    /// SMTP on the submission port (587): the same server as `smtp`.
    pub submission: Option<u16>,
    pub imap: Option<u16>,
    pub pop3: Option<u16>,
}

impl HostListeners {
    /// `(listener name, port)` of every listener that is on.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u16)> {
        [
            ("smtp", self.smtp),
            ("smtps", self.smtps),
            ("submission", self.submission),
            ("imap", self.imap),
            ("pop3", self.pop3),
        ]
        .into_iter()
        .filter_map(|(n, p)| p.map(|p| (n, p)))
    }

    /// Every listener that is on moved to port 0 (a free port each), for tests.
    pub fn on_free_ports(self) -> HostListeners {
        let zero = |p: Option<u16>| p.map(|_| 0);
        HostListeners {
            smtp: zero(self.smtp),
            smtps: zero(self.smtps),
            submission: zero(self.submission),
            imap: zero(self.imap),
            pop3: zero(self.pop3),
        }
    }
}

/// One host of the world.
#[derive(Debug, Clone)]
pub struct Host {
    /// The name other tables use (`forward_to`, a collector's `from`).
    pub name: String,
    /// Its DNS name: EHLO, greeting, certificate (default `NAME.mailrig.test`).
    pub hostname: String,
    pub address: Ipv4Addr,
    pub listeners: HostListeners,
    /// The domains this host is MX for (lower case).
    pub mx_for: Vec<String>,
    pub role: HostRole,
    /// Host-level fault: nothing listens, every connection is refused.
    pub down: bool,
    /// Host-level fault: every message accepted with 250 and stored nowhere.
    pub blackhole: bool,
    /// The host's own world: its domains and the mailboxes it stores.
    pub world: Arc<World>,
    /// The scenario's `[[fault]]` rules followed by the host's own `[[host.fault]]`.
    pub faults: FaultPlan,
}

impl Host {
    /// The socket address of a listener, when it is on.
    pub fn listener(&self, name: &str) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| SocketAddr::from((self.address, p)))
    }
}

// ---- the file's shape -------------------------------------------------------

/// A port, or `true` (the standard port) / `false` (off).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
pub(crate) enum PortFile {
    Port(u16),
    Switch(bool),
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RoleFile {
    Mailbox,
    BackupMx,
    Relay,
}

/// One `[[host]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HostSection {
    name: Spanned<String>,
    address: Spanned<String>,
    hostname: Option<String>,
    banner: Option<String>,
    /// The domains it is MX for.
    #[serde(default)]
    domains: Vec<Spanned<String>>,
    /// Which of those domains' mailboxes it stores (default: all of them);
    /// addresses, local parts may be ranges (`user01..user02@patente.test`).
    mailboxes: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    role: Option<Spanned<RoleFile>>,
    forward_to: Option<Spanned<String>>,
    /// Seconds between forwarding attempts of a backup MX or relay.
    retry_secs: Option<f64>,
    smtp: Option<PortFile>,
    smtps: Option<PortFile>,
    submission: Option<PortFile>,
    imap: Option<PortFile>,
    pop3: Option<PortFile>,
    #[serde(default)]
    down: bool,
    #[serde(default)]
    blackhole: bool,
    /// `off`, `record` or `enforce` (default: the scenario's `[security]`).
    sender_auth: Option<crate::sender_auth::SenderAuthPolicy>,
    #[serde(default)]
    fault: Vec<Spanned<FaultRuleSpec>>,
}

fn port(p: Option<PortFile>, standard: u16, default_on: bool) -> Option<u16> {
    match p {
        None => default_on.then_some(standard),
        Some(PortFile::Switch(true)) => Some(standard),
        Some(PortFile::Switch(false)) => None,
        Some(PortFile::Port(n)) => Some(n),
    }
}

/// Builds the hosts of a scenario, checked against its world. `global` are
/// the scenario's own `[[fault]]` rules, which every host applies before its own.
pub(crate) fn build_hosts(
    sections: &[Spanned<HostSection>],
    world: &World,
    global: &[FaultRuleSpec],
    file: &str,
    src: &str,
) -> Result<(Vec<Host>, Vec<String>), LocatedError> {
    let err = |at: usize, m: String| LocatedError::at(file, src, at, m);
    let mut hosts = Vec::new();
    let mut warnings = Vec::new();
    let mut names = HashSet::new();
    let mut sockets: HashMap<(Ipv4Addr, u16), String> = HashMap::new();
    for section in sections {
        let h = section.get_ref();
        let name = h.name.get_ref().trim().to_string();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(err(
                h.name.span().start,
                format!("'{name}' is not a host name (no spaces)"),
            ));
        }
        if !names.insert(name.clone()) {
            return Err(err(
                h.name.span().start,
                format!("host '{name}' is defined twice"),
            ));
        }
        let at = h.address.span().start;
        let address: Ipv4Addr = match h.address.get_ref().trim().parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => a,
            Ok(IpAddr::V6(_)) | Err(_) => {
                return Err(err(
                    at,
                    format!(
                        "host '{name}': address '{}' is not an IPv4 address; give one of 127.0.0.0/8, e.g. 127.0.0.2",
                        h.address.get_ref()
                    ),
                ));
            }
        };
        if !address.is_loopback() {
            return Err(err(
                at,
                format!(
                    "host '{name}': address {address} is not a loopback address; a host of the world lives in 127.0.0.0/8 (e.g. 127.0.0.2) so it never reaches the real network"
                ),
            ));
        }
        if address == Ipv4Addr::LOCALHOST {
            return Err(err(
                at,
                format!(
                    "host '{name}': 127.0.0.1 is taken (mailrig's control API and first server listen there, and so does the machine's own mail software); give the host another address of 127.0.0.0/8, e.g. 127.0.0.2"
                ),
            ));
        }
        let listeners = HostListeners {
            smtp: port(h.smtp, 25, true),
            smtps: port(h.smtps, 465, false),
            submission: port(h.submission, 587, false),
            imap: port(h.imap, 143, false),
            pop3: port(h.pop3, 110, false),
        };
        if !h.down {
            for (what, p) in listeners.iter() {
                if p == 0 {
                    continue;
                }
                if let Some(other) = sockets.insert((address, p), format!("{name} {what}")) {
                    return Err(err(
                        at,
                        format!(
                            "host '{name}': {what} on {address}:{p} is already taken by {other}; give each host its own address or port"
                        ),
                    ));
                }
            }
        }
        if h.domains.is_empty() {
            return Err(err(
                h.name.span().start,
                format!("host '{name}' serves no domain: set `domains = [...]`"),
            ));
        }
        let mut mx_for = Vec::new();
        for d in &h.domains {
            let dn = d.get_ref().trim().to_lowercase();
            if world.domain(&dn).is_none() {
                return Err(err(
                    d.span().start,
                    format!("host '{name}': domain '{dn}' is not a [[domain]] of this scenario"),
                ));
            }
            if !mx_for.contains(&dn) {
                mx_for.push(dn);
            }
        }
        let stored = match &h.mailboxes {
            None => None,
            Some(entries) => {
                let mut set = HashSet::new();
                for e in entries {
                    let text = e.get_ref().trim();
                    let Some((local, domain)) = text.rsplit_once('@') else {
                        return Err(err(
                            e.span().start,
                            format!("host '{name}': '{text}' is not an address (local@domain)"),
                        ));
                    };
                    let domain = domain.to_lowercase();
                    if !mx_for.contains(&domain) {
                        return Err(err(
                            e.span().start,
                            format!(
                                "host '{name}': '{text}' is not in one of its domains ({})",
                                mx_for.join(", ")
                            ),
                        ));
                    }
                    let locals =
                        range::expand(local).map_err(|x| err(e.span().start, x.to_string()))?;
                    for l in locals {
                        let id = world
                            .mailbox_by_address(&format!("{l}@{domain}"))
                            .ok_or_else(|| {
                                err(
                                    e.span().start,
                                    format!(
                                        "host '{name}': '{l}@{domain}' is not a mailbox of this scenario"
                                    ),
                                )
                            })?;
                        set.insert(id);
                    }
                }
                Some(set)
            }
        };
        let role_at = h
            .role
            .as_ref()
            .map_or(h.name.span().start, |r| r.span().start);
        let role = match h.role.as_ref().map(|r| *r.get_ref()) {
            None | Some(RoleFile::Mailbox) => {
                if let Some(f) = &h.forward_to {
                    return Err(err(
                        f.span().start,
                        format!(
                            "host '{name}': forward_to needs role = \"backup-mx\" or \"relay\""
                        ),
                    ));
                }
                HostRole::Mailbox
            }
            Some(kind) => {
                let retry =
                    Duration::from_secs_f64(h.retry_secs.unwrap_or(1.0).clamp(0.01, 86_400.0));
                let forward_to = match &h.forward_to {
                    Some(f) => f.get_ref().trim().to_string(),
                    None => {
                        // The first mailbox host that serves one of its domains.
                        let found = sections.iter().find(|o| {
                            let o = o.get_ref();
                            o.name.get_ref().trim() != name
                                && o.role
                                    .as_ref()
                                    .is_none_or(|r| *r.get_ref() == RoleFile::Mailbox)
                                && o.domains
                                    .iter()
                                    .any(|d| mx_for.contains(&d.get_ref().trim().to_lowercase()))
                        });
                        match found {
                            Some(o) => o.get_ref().name.get_ref().trim().to_string(),
                            None => {
                                return Err(err(
                                    role_at,
                                    format!(
                                        "host '{name}' forwards mail but no mailbox host serves its domains: set forward_to = \"HOST\""
                                    ),
                                ));
                            }
                        }
                    }
                };
                if forward_to == name {
                    return Err(err(role_at, format!("host '{name}' forwards to itself")));
                }
                if !sections
                    .iter()
                    .any(|o| o.get_ref().name.get_ref().trim() == forward_to)
                {
                    let at = h.forward_to.as_ref().map_or(role_at, |f| f.span().start);
                    return Err(err(
                        at,
                        format!(
                            "host '{name}': forward_to '{forward_to}' is not a [[host]] of this scenario"
                        ),
                    ));
                }
                if kind == RoleFile::BackupMx {
                    HostRole::BackupMx { forward_to, retry }
                } else {
                    HostRole::Relay { forward_to, retry }
                }
            }
        };
        let hostname = h
            .hostname
            .clone()
            .unwrap_or_else(|| format!("{name}.mailrig.test"));
        let banner = h
            .banner
            .clone()
            .unwrap_or_else(|| format!("{hostname} ESMTP mailrig"));
        let mut host_world = sub_world(world, &mx_for, stored.as_ref(), hostname.clone(), banner);
        if let Some(p) = h.sender_auth {
            host_world.security.sender_auth = p;
        }
        let mut specs: Vec<FaultRuleSpec> = global.to_vec();
        specs.extend(h.fault.iter().map(|f| f.get_ref().clone()));
        let (faults, w) = FaultPlan::from_specs(&specs, &host_world).map_err(|e| {
            let local = e.index.checked_sub(global.len());
            let offset = local
                .and_then(|l| h.fault.get(l))
                .map_or(section.span().start, |f| f.span().start);
            err(
                offset,
                format!(
                    "host '{name}': {}: {}",
                    match local {
                        Some(l) => format!("[[host.fault]] #{}", l + 1),
                        None => format!("[[fault]] #{}", e.index + 1),
                    },
                    e.message
                ),
            )
        })?;
        warnings.extend(w.into_iter().map(|w| format!("host '{name}': {w}")));
        hosts.push(Host {
            name,
            hostname,
            address,
            listeners,
            mx_for,
            role,
            down: h.down,
            blackhole: h.blackhole,
            world: Arc::new(host_world),
            faults,
        });
    }
    Ok((hosts, warnings))
}

/// The world cut down to `domains` and, of their mailboxes, those in `only`
/// (all when `None`); ids are renumbered, aliases keep the targets that remain.
pub fn sub_world(
    world: &World,
    domains: &[String],
    only: Option<&HashSet<MailboxId>>,
    hostname: String,
    banner: String,
) -> World {
    let mut mailboxes: Vec<Mailbox> = Vec::new();
    let mut new_id: HashMap<MailboxId, MailboxId> = HashMap::new();
    let mut out_domains = Vec::new();
    let keep = |id: &MailboxId| only.is_none_or(|s| s.contains(id));
    for dn in domains {
        let Some(d) = world.domain(dn) else { continue };
        let mut ids = Vec::new();
        for old in d.mailboxes.iter().filter(|id| keep(id)) {
            let id = MailboxId(mailboxes.len() as u32);
            let mut m = world.mailbox(*old).clone();
            m.id = id;
            mailboxes.push(m);
            new_id.insert(*old, id);
            ids.push(id);
        }
        out_domains.push((d, ids));
    }
    let domains = out_domains
        .into_iter()
        .map(|(d, ids)| {
            let aliases = d
                .aliases
                .iter()
                .filter_map(|(k, targets)| {
                    let t: Vec<MailboxId> = targets
                        .iter()
                        .filter_map(|t| new_id.get(t).copied())
                        .collect();
                    (!t.is_empty()).then(|| (k.clone(), t))
                })
                .collect();
            let catch_all = d.catch_all.and_then(|c| new_id.get(&c).copied());
            let unknown = match (d.unknown, catch_all) {
                (UnknownRecipient::CatchAll(_), Some(c)) => UnknownRecipient::CatchAll(c),
                _ => UnknownRecipient::Reject,
            };
            Domain {
                name: d.name.clone(),
                mailboxes: ids,
                aliases,
                catch_all,
                unknown,
            }
        })
        .collect();
    let mut identity = world.identity.clone();
    identity.hostname = hostname;
    identity.banner = banner;
    // The parts come from a valid world: no duplicates can appear by removing some.
    match World::build(WorldParts {
        identity,
        security: world.security.clone(),
        limits: world.limits.clone(),
        domains,
        mailboxes,
    }) {
        Ok(w) => w,
        Err(e) => unreachable!("a part of a valid world is valid: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::Scenario;

    const DOMAINS: &str = "[[domain]]\nname='a.test'\npassword='p'\nmailboxes=['x','y']\n[[domain]]\nname='b.test'\npassword='p'\nmailboxes=['u01..u03']\n";

    fn parse(hosts: &str) -> Result<Scenario, String> {
        Scenario::parse(&format!("{DOMAINS}{hosts}"), "s.toml").map_err(|e| e.to_string())
    }

    fn err(hosts: &str) -> String {
        parse(hosts).unwrap_err()
    }

    fn line_of(hosts: &str, needle: &str) -> usize {
        format!("{DOMAINS}{hosts}")
            .lines()
            .position(|l| l.contains(needle))
            .unwrap()
            + 1
    }

    #[test]
    fn no_hosts_is_the_one_server_world() {
        let s = parse("").unwrap();
        assert!(s.hosts.is_empty());
    }

    #[test]
    fn a_host_gets_its_own_world_and_listeners() {
        let s = parse(
            "[[host]]\nname='prov'\naddress='127.0.0.2'\ndomains=['a.test','b.test']\npop3=true\n\
             [[host]]\nname='firm'\naddress='127.0.0.3'\nhostname='mx.firm.test'\ndomains=['b.test']\nmailboxes=['u01..u02@b.test']\nsmtp=2525\nimap=0\n",
        )
        .unwrap();
        let [prov, firm] = &s.hosts[..] else { panic!() };
        assert_eq!(prov.world.mailboxes.len(), 5);
        assert_eq!(prov.listener("smtp").unwrap().to_string(), "127.0.0.2:25");
        assert_eq!(prov.listener("pop3").unwrap().to_string(), "127.0.0.2:110");
        assert_eq!(prov.listener("imap"), None);
        assert_eq!(prov.hostname, "prov.mailrig.test");
        assert_eq!(firm.world.identity.hostname, "mx.firm.test");
        assert_eq!(firm.world.identity.banner, "mx.firm.test ESMTP mailrig");
        let names: Vec<String> = firm
            .world
            .mailboxes
            .iter()
            .map(|m| m.address.to_string())
            .collect();
        assert_eq!(names, ["u01@b.test", "u02@b.test"]);
        assert!(firm.world.domain("a.test").is_none());
        assert_eq!(firm.world.mailbox_by_address("u02@b.test").unwrap().0, 1);
        assert_eq!(firm.mx_for, ["b.test"]);
        assert_eq!(firm.listeners.imap, Some(0));
        assert_eq!(firm.listeners.on_free_ports().smtp, Some(0));
    }

    #[test]
    fn roles_and_forwarding() {
        let s = parse(
            "[[host]]\nname='mx1'\naddress='127.0.0.2'\ndomains=['a.test']\n\
             [[host]]\nname='mx2'\naddress='127.0.0.3'\ndomains=['a.test']\nrole='backup-mx'\n",
        )
        .unwrap();
        assert_eq!(s.hosts[1].role.forward_to().unwrap().0, "mx1");
        assert_eq!(s.hosts[1].role.name(), "backup-mx");
        let e =
            err("[[host]]\nname='mx2'\naddress='127.0.0.3'\ndomains=['a.test']\nrole='relay'\n");
        assert!(e.contains("no mailbox host serves its domains"), "{e}");
        let h = "[[host]]\nname='mx1'\naddress='127.0.0.2'\ndomains=['a.test']\nforward_to='mx1'\n";
        assert!(err(h).contains("forward_to needs role"), "{}", err(h));
        let h = "[[host]]\nname='mx2'\naddress='127.0.0.3'\ndomains=['a.test']\nrole='relay'\nforward_to='nowhere'\n";
        let e = err(h);
        assert_eq!(
            e,
            format!(
                "s.toml:{}:12: host 'mx2': forward_to 'nowhere' is not a [[host]] of this scenario",
                line_of(h, "nowhere")
            )
        );
    }

    #[test]
    fn host_faults_are_checked_against_the_host() {
        let s = parse(
            "[[fault]]\nstage='rcpt'\naction='reject'\nmailbox='x@a.test'\n\
             [[host]]\nname='h'\naddress='127.0.0.2'\ndomains=['a.test']\n[[host.fault]]\nname='slow'\nstage='greeting'\naction='delay'\nms=10\n",
        )
        .unwrap();
        assert_eq!(s.hosts[0].faults.len(), 2);
        let h = "[[host]]\nname='h'\naddress='127.0.0.2'\ndomains=['a.test']\n[[host.fault]]\nstage='rcpt'\naction='explode'\n";
        let e = err(h);
        assert!(
            e.starts_with(&format!("s.toml:{}:", line_of(h, "explode"))),
            "{e}"
        );
    }

    #[test]
    fn bad_hosts_are_located_errors() {
        let h = "[[host]]\nname='h'\naddress='127.0.0.2'\ndomains=['a.test', 'c.test']\n";
        assert_eq!(
            err(h),
            format!(
                "s.toml:{}:20: host 'h': domain 'c.test' is not a [[domain]] of this scenario",
                line_of(h, "c.test")
            )
        );
        let h = "[[host]]\nname='h'\naddress='10.0.0.2'\ndomains=['a.test']\n";
        let e = err(h);
        assert!(
            e.starts_with(&format!(
                "s.toml:{}:9: host 'h': address 10.0.0.2 is not a loopback",
                line_of(h, "10.0")
            )),
            "{e}"
        );
        let h = "[[host]]\nname='h'\naddress='nowhere'\ndomains=['a.test']\n";
        assert!(err(h).contains("is not an IPv4 address"));
        let h = "[[host]]\nname='h'\naddress='127.0.0.2'\ndomains=['a.test']\n[[host]]\nname='g'\naddress='127.0.0.2'\ndomains=['b.test']\n";
        let e = err(h);
        assert_eq!(
            e,
            "s.toml:15:9: host 'g': smtp on 127.0.0.2:25 is already taken by h smtp; give each host its own address or port"
        );
        // Same address, other ports: fine.
        parse("[[host]]\nname='h'\naddress='127.0.0.2'\ndomains=['a.test']\n[[host]]\nname='g'\naddress='127.0.0.2'\nsmtp=26\ndomains=['b.test']\n").unwrap();
        let h = "[[host]]\nname='h'\naddress='127.0.0.2'\ndomains=['a.test']\ncolour='red'\n";
        let e = err(h);
        assert!(
            e.starts_with(&format!(
                "s.toml:{}:1: unknown field `colour`",
                line_of(h, "colour")
            )),
            "{e}"
        );
        let h = "[[host]]\nname='h'\naddress='127.0.0.2'\ndomains=['a.test']\nmailboxes=['u01@b.test']\n";
        assert!(err(h).contains("is not in one of its domains"));
        let h =
            "[[host]]\nname='h'\naddress='127.0.0.2'\ndomains=['a.test']\nmailboxes=['z@a.test']\n";
        assert!(err(h).contains("'z@a.test' is not a mailbox"));
        let h = "[[host]]\nname='h'\naddress='127.0.0.2'\ndomains=['a.test']\n[[host]]\nname='h'\naddress='127.0.0.3'\ndomains=['a.test']\n";
        assert!(err(h).contains("host 'h' is defined twice"));
        let h = "[[host]]\nname='h'\naddress='127.0.0.2'\n";
        assert!(err(h).contains("serves no domain"));
    }
}
