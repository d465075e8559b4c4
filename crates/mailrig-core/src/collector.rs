//! Collectors: `[[collector]]` tables of a scenario, the seed incident's
//! mechanism. A collector fetches mail over POP3 or IMAP from accounts on a host of
//! the world (or an outside server) and delivers it into mailboxes of another
//! host, at an interval, leaving it on the server (`keep`, remembering UIDLs)
//! or deleting it after the fetch; per account, or multidrop (one account
//! whose mail is distributed by its `Delivered-To`/`To`/`Cc` headers).
//!
//! The failures it reproduces are options: only some accounts configured (the
//! seed: 2 of 25), a wrong password for one account, a stopped collector
//! (`enabled = false`), duplicates when the UIDL state is lost
//! (`forget_uidls`) or the session drops before QUIT (`drop_before_quit`),
//! and multidrop's own loss: a Bcc recipient is in no header, so its copy
//! has nowhere to go.
//!
//! This module is the pure part: the tables, their checks, and the decisions
//! (which messages are new, where a multidrop message goes). The fetching
//! itself lives in `mailrig-server`'s `collector` module.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::host::Host;
use crate::located::LocatedError;
use crate::range;

/// How a collector fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectProtocol {
    /// UIDL for `keep`, DELE committed by QUIT.
    Pop3,
    /// `UIDVALIDITY.UID` for `keep`; otherwise `\Deleted` and EXPUNGE at the
    /// end of the session (after every message was fetched).
    Imap,
}

impl CollectProtocol {
    pub fn name(self) -> &'static str {
        match self {
            CollectProtocol::Pop3 => "pop3",
            CollectProtocol::Imap => "imap",
        }
    }
}

/// Where a collector fetches from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CollectSource {
    /// A host of the world, by name (its POP3 or IMAP listener).
    Host(String),
    /// A server outside the world, by address.
    Server(SocketAddr),
}

/// Where the mail of one account goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Into this mailbox of the target host.
    Mailbox(String),
    /// Into the target host's mailboxes named in `Delivered-To`, `To` and
    /// `Cc`, for addresses in these domains.
    Multidrop { domains: Vec<String> },
}

/// One account a collector logs in to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectAccount {
    pub login: String,
    pub password: String,
    pub delivery: Delivery,
}

/// One collector.
#[derive(Debug, Clone, PartialEq)]
pub struct Collector {
    pub name: String,
    pub source: CollectSource,
    /// The host it delivers into.
    pub target: String,
    pub protocol: CollectProtocol,
    pub interval: Duration,
    /// Leave fetched mail on the server and remember its UIDLs (true), or DELE it.
    pub keep: bool,
    /// `false`: the collector is stopped and fetches nothing.
    pub enabled: bool,
    /// Fault: the UIDL memory is lost before every round (with `keep`: every
    /// message fetched again each round).
    pub forget_uidls: bool,
    /// Fault: the session is cut before QUIT (POP3: the server never commits
    /// the DELEs) or before the `\Deleted` flags and EXPUNGE (IMAP); without
    /// `keep` the same messages come again next round.
    pub drop_before_quit: bool,
    pub accounts: Vec<CollectAccount>,
}

// ---- the file's shape -------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CollectorSection {
    name: Spanned<String>,
    /// A host of the world to fetch from.
    from: Option<Spanned<String>>,
    /// Or an outside POP3 server, `IP:PORT`.
    server: Option<Spanned<String>>,
    to: Spanned<String>,
    #[serde(default = "pop3")]
    protocol: Spanned<String>,
    interval_secs: Option<Spanned<f64>>,
    #[serde(default = "yes")]
    keep: bool,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    forget_uidls: bool,
    #[serde(default)]
    drop_before_quit: bool,
    /// Domains (all their mailboxes on the source host) and addresses
    /// (local parts may be ranges).
    #[serde(default)]
    accounts: Vec<Spanned<String>>,
    /// Accounts with their own settings.
    #[serde(default)]
    account: Vec<AccountSection>,
    #[serde(default)]
    multidrop: Vec<MultidropSection>,
}

fn pop3() -> Spanned<String> {
    Spanned::new(0..0, "pop3".to_string())
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountSection {
    /// The mailbox on the source host (its login and password are used).
    address: Option<Spanned<String>>,
    login: Option<Spanned<String>>,
    password: Option<String>,
    /// The target host's mailbox (default: the same address).
    deliver_to: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MultidropSection {
    login: Spanned<String>,
    password: Option<String>,
    /// Domains whose addresses in the headers are delivered (default: the
    /// target host's domains).
    domains: Option<Vec<String>>,
}

/// Builds the collectors of a scenario, checked against its hosts.
pub(crate) fn build_collectors(
    sections: &[Spanned<CollectorSection>],
    hosts: &[Host],
    file: &str,
    src: &str,
) -> Result<Vec<Collector>, LocatedError> {
    let err = |at: usize, m: String| LocatedError::at(file, src, at, m);
    let host = |n: &str| hosts.iter().find(|h| h.name == n);
    let mut out: Vec<Collector> = Vec::new();
    for section in sections {
        let c = section.get_ref();
        let name = c.name.get_ref().trim().to_string();
        if out.iter().any(|o| o.name == name) {
            return Err(err(
                c.name.span().start,
                format!("collector '{name}' is defined twice"),
            ));
        }
        if hosts.is_empty() {
            return Err(err(
                section.span().start,
                format!("collector '{name}' needs [[host]] tables: it delivers into a host"),
            ));
        }
        let protocol = match c.protocol.get_ref().as_str() {
            "pop3" => CollectProtocol::Pop3,
            "imap" => CollectProtocol::Imap,
            other => {
                return Err(err(
                    c.protocol.span().start,
                    format!(
                        "collector '{name}': protocol '{other}' is not supported; use \"pop3\" or \"imap\""
                    ),
                ));
            }
        };
        let to = c.to.get_ref().trim();
        let target = host(to).ok_or_else(|| {
            err(
                c.to.span().start,
                format!("collector '{name}': to = '{to}' is not a [[host]] of this scenario"),
            )
        })?;
        let (source, source_host) = match (&c.from, &c.server) {
            (Some(f), None) => {
                let n = f.get_ref().trim();
                let h = host(n).ok_or_else(|| {
                    err(
                        f.span().start,
                        format!(
                            "collector '{name}': from = '{n}' is not a [[host]] of this scenario"
                        ),
                    )
                })?;
                let listens = match protocol {
                    CollectProtocol::Pop3 => h.listeners.pop3.is_some(),
                    CollectProtocol::Imap => h.listeners.imap.is_some(),
                };
                if !listens && !h.down {
                    let p = protocol.name();
                    return Err(err(
                        f.span().start,
                        format!(
                            "collector '{name}': host '{n}' runs no {} listener; set {p} = true on it",
                            p.to_ascii_uppercase()
                        ),
                    ));
                }
                (CollectSource::Host(n.to_string()), Some(h))
            }
            (None, Some(s)) => {
                let a: SocketAddr = s.get_ref().trim().parse().map_err(|_| {
                    err(
                        s.span().start,
                        format!(
                            "collector '{name}': server '{}' is not IP:PORT",
                            s.get_ref()
                        ),
                    )
                })?;
                (CollectSource::Server(a), None)
            }
            _ => {
                return Err(err(
                    c.name.span().start,
                    format!(
                        "collector '{name}': give exactly one of from = \"HOST\" or server = \"IP:PORT\""
                    ),
                ));
            }
        };
        let interval = match &c.interval_secs {
            None => Duration::from_secs(60),
            Some(v) if *v.get_ref() > 0.0 && *v.get_ref() <= 86_400.0 => {
                Duration::from_secs_f64(*v.get_ref())
            }
            Some(v) => {
                return Err(err(
                    v.span().start,
                    format!("collector '{name}': interval_secs must be above 0 and at most 86400"),
                ));
            }
        };
        let deliverable = |addr: &str, at: usize| -> Result<String, LocatedError> {
            let id = target.world.mailbox_by_address(addr).ok_or_else(|| {
                err(
                    at,
                    format!(
                        "collector '{name}': '{addr}' is not a mailbox of host '{}', where it delivers",
                        target.name
                    ),
                )
            })?;
            Ok(target.world.mailbox(id).address.to_string())
        };
        let mut accounts: Vec<CollectAccount> = Vec::new();
        let mut push = |a: CollectAccount, at: usize| -> Result<(), LocatedError> {
            if accounts
                .iter()
                .any(|o| o.login.eq_ignore_ascii_case(&a.login))
            {
                return Err(err(
                    at,
                    format!("collector '{name}': account '{}' is listed twice", a.login),
                ));
            }
            accounts.push(a);
            Ok(())
        };
        for entry in &c.accounts {
            let at = entry.span().start;
            let text = entry.get_ref().trim();
            let Some(h) = source_host else {
                return Err(err(
                    at,
                    format!(
                        "collector '{name}': with server = \"...\" list accounts as [[collector.account]] with login and password"
                    ),
                ));
            };
            let ids = if let Some((local, domain)) = text.rsplit_once('@') {
                let mut ids = Vec::new();
                for l in range::expand(local).map_err(|e| err(at, e.to_string()))? {
                    let a = format!("{l}@{domain}");
                    ids.push(h.world.mailbox_by_address(&a).ok_or_else(|| {
                        err(
                            at,
                            format!(
                                "collector '{name}': '{a}' is not a mailbox of host '{}'",
                                h.name
                            ),
                        )
                    })?);
                }
                ids
            } else {
                h.world
                    .domain(text)
                    .ok_or_else(|| {
                        err(
                            at,
                            format!("collector '{name}': '{text}' is neither an address nor a domain of host '{}'", h.name),
                        )
                    })?
                    .mailboxes
                    .clone()
            };
            for id in ids {
                let m = h.world.mailbox(id);
                let addr = m.address.to_string();
                push(
                    CollectAccount {
                        login: m.login.to_string(),
                        password: m.password.to_string(),
                        delivery: Delivery::Mailbox(deliverable(&addr, at)?),
                    },
                    at,
                )?;
            }
        }
        for a in &c.account {
            let (at, login, password, default_to) = match (&a.address, &a.login, source_host) {
                (Some(addr), None, Some(h)) => {
                    let at = addr.span().start;
                    let id = h
                        .world
                        .mailbox_by_address(addr.get_ref().trim())
                        .ok_or_else(|| {
                            err(
                                at,
                                format!(
                                    "collector '{name}': '{}' is not a mailbox of host '{}'",
                                    addr.get_ref(),
                                    h.name
                                ),
                            )
                        })?;
                    let m = h.world.mailbox(id);
                    (
                        at,
                        m.login.to_string(),
                        m.password.to_string(),
                        Some(m.address.to_string()),
                    )
                }
                (None, Some(l), _) => {
                    let at = l.span().start;
                    let known = source_host.and_then(|h| {
                        h.world
                            .mailbox_by_login(l.get_ref())
                            .map(|id| h.world.mailbox(id).clone())
                    });
                    let password = match (&a.password, &known) {
                        (Some(_), _) => String::new(),
                        (None, Some(m)) => m.password.to_string(),
                        (None, None) => {
                            return Err(err(
                                at,
                                format!(
                                    "collector '{name}': account '{}' needs a password",
                                    l.get_ref()
                                ),
                            ));
                        }
                    };
                    (
                        at,
                        l.get_ref().clone(),
                        password,
                        known.map(|m| m.address.to_string()),
                    )
                }
                _ => {
                    return Err(err(
                        section.span().start,
                        format!(
                            "collector '{name}': a [[collector.account]] needs address = \"...\" (a mailbox of the source host) or login = \"...\""
                        ),
                    ));
                }
            };
            let to = match (&a.deliver_to, default_to) {
                (Some(d), _) => deliverable(d.get_ref().trim(), d.span().start)?,
                (None, Some(d)) => deliverable(&d, at)?,
                (None, None) => {
                    return Err(err(
                        at,
                        format!(
                            "collector '{name}': account '{login}' needs deliver_to = \"ADDRESS\""
                        ),
                    ));
                }
            };
            push(
                CollectAccount {
                    login,
                    password: a.password.clone().unwrap_or(password),
                    delivery: Delivery::Mailbox(to),
                },
                at,
            )?;
        }
        for m in &c.multidrop {
            let at = m.login.span().start;
            let known = source_host.and_then(|h| {
                h.world
                    .mailbox_by_login(m.login.get_ref())
                    .map(|id| h.world.mailbox(id).password.to_string())
            });
            let password = m.password.clone().or(known).ok_or_else(|| {
                err(
                    at,
                    format!(
                        "collector '{name}': multidrop account '{}' needs a password",
                        m.login.get_ref()
                    ),
                )
            })?;
            let domains = m
                .domains
                .clone()
                .unwrap_or_else(|| target.mx_for.clone())
                .into_iter()
                .map(|d| d.to_lowercase())
                .collect();
            push(
                CollectAccount {
                    login: m.login.get_ref().clone(),
                    password,
                    delivery: Delivery::Multidrop { domains },
                },
                at,
            )?;
        }
        if accounts.is_empty() {
            return Err(err(
                c.name.span().start,
                format!(
                    "collector '{name}' has no account: set accounts = [...], [[collector.account]] or [[collector.multidrop]]"
                ),
            ));
        }
        out.push(Collector {
            name,
            source,
            target: target.name.clone(),
            protocol,
            interval,
            keep: c.keep,
            enabled: c.enabled,
            forget_uidls: c.forget_uidls,
            drop_before_quit: c.drop_before_quit,
            accounts,
        });
    }
    Ok(out)
}

// ---- decisions --------------------------------------------------------------

/// The UIDLs a collector has fetched, per account: what `keep` remembers.
#[derive(Debug, Default, Clone)]
pub struct UidlMemory {
    seen: std::collections::HashMap<String, HashSet<String>>,
}

impl UidlMemory {
    /// Of a listing `(number, uidl)`, the messages not fetched before.
    pub fn new_messages<'a>(
        &self,
        account: &str,
        listing: &'a [(u32, String)],
    ) -> Vec<&'a (u32, String)> {
        let seen = self.seen.get(account);
        listing
            .iter()
            .filter(|(_, u)| seen.is_none_or(|s| !s.contains(u)))
            .collect()
    }

    pub fn remember(&mut self, account: &str, uidl: &str) {
        self.seen
            .entry(account.to_string())
            .or_default()
            .insert(uidl.to_string());
    }

    /// Forgets everything (the `forget_uidls` fault).
    pub fn forget(&mut self) {
        self.seen.clear();
    }

    /// Forgets one account's UIDLs (a `forget-uidls` fault rule).
    pub fn forget_account(&mut self, account: &str) {
        self.seen.remove(account);
    }
}

/// The recipients a multidrop collector finds for a message: the addresses of
/// its `Delivered-To`, `X-Original-To`, `To` and `Cc` headers in `domains`,
/// lower-cased, each once, in header order. A Bcc recipient is in none of
/// them: that is multidrop's loss.
pub fn multidrop_recipients(raw: &[u8], domains: &[String]) -> Vec<String> {
    let head_end = find(raw, b"\r\n\r\n")
        .or_else(|| find(raw, b"\n\n"))
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..head_end]);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            fields.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let mut out: Vec<String> = Vec::new();
    for (k, v) in fields {
        if !matches!(k.as_str(), "delivered-to" | "x-original-to" | "to" | "cc") {
            continue;
        }
        for addr in addresses(&v) {
            let in_domain = addr
                .rsplit_once('@')
                .is_some_and(|(_, d)| domains.iter().any(|x| x.eq_ignore_ascii_case(d)));
            if in_domain && !out.contains(&addr) {
                out.push(addr);
            }
        }
    }
    out
}

/// The addresses of an address-list header value (`"A" <a@x>, b@y`).
fn addresses(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut part = String::new();
    let mut parts = Vec::new();
    for ch in value.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                part.push(ch);
            }
            ',' if !quoted => parts.push(std::mem::take(&mut part)),
            _ => part.push(ch),
        }
    }
    parts.push(part);
    for p in parts {
        let candidate = match (p.rfind('<'), p.rfind('>')) {
            (Some(a), Some(b)) if a < b => p[a + 1..b].to_string(),
            _ => p
                .split_whitespace()
                .find(|t| t.contains('@'))
                .unwrap_or("")
                .to_string(),
        };
        let c = candidate.trim().trim_matches(['<', '>']).to_lowercase();
        if c.contains('@') {
            out.push(c);
        }
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    const WORLD: &str = "[[domain]]\nname='k.test'\npassword='secret'\nmailboxes=['anna','bernd']\n\
        [[domain]]\nname='p.test'\npassword='secret'\nmailboxes=['user01..user05']\n\
        [[host]]\nname='provider'\naddress='127.0.0.2'\ndomains=['k.test','p.test']\npop3=true\n\
        [[host]]\nname='firm'\naddress='127.0.0.3'\ndomains=['k.test','p.test']\n";

    fn parse(c: &str) -> Result<Scenario, String> {
        Scenario::parse(&format!("{WORLD}{c}"), "s.toml").map_err(|e| e.to_string())
    }

    #[test]
    fn accounts_from_domains_addresses_and_tables() {
        let s = parse(
            "[[collector]]\nname='c'\nfrom='provider'\nto='firm'\ninterval_secs=0.5\naccounts=['k.test','user{01..02}@p.test']\n\
             [[collector.account]]\naddress='user03@p.test'\npassword='wrong'\n\
             [[collector.multidrop]]\nlogin='user04@p.test'\ndomains=['p.test']\n",
        )
        .unwrap();
        let c = &s.collectors[0];
        let logins: Vec<&str> = c.accounts.iter().map(|a| a.login.as_str()).collect();
        assert_eq!(
            logins,
            [
                "anna@k.test",
                "bernd@k.test",
                "user01@p.test",
                "user02@p.test",
                "user03@p.test",
                "user04@p.test"
            ]
        );
        assert_eq!(c.accounts[4].password, "wrong");
        assert_eq!(c.accounts[0].password, "secret");
        assert_eq!(
            c.accounts[0].delivery,
            Delivery::Mailbox("anna@k.test".into())
        );
        assert_eq!(
            c.accounts[5].delivery,
            Delivery::Multidrop {
                domains: vec!["p.test".into()]
            }
        );
        assert_eq!(c.interval, Duration::from_millis(500));
        assert!(c.keep && c.enabled && !c.forget_uidls);
        assert_eq!(c.source, CollectSource::Host("provider".into()));
        assert_eq!(c.protocol, CollectProtocol::Pop3);
    }

    #[test]
    fn bad_collectors_are_located_errors() {
        let e = parse(
            "[[collector]]\nname='c'\nfrom='provider'\nto='firm'\naccounts=['nobody@k.test']\n",
        )
        .unwrap_err();
        assert_eq!(
            e,
            "s.toml:22:11: collector 'c': 'nobody@k.test' is not a mailbox of host 'provider'"
        );
        let e = parse("[[collector]]\nname='c'\nfrom='firm'\nto='provider'\naccounts=['k.test']\n")
            .unwrap_err();
        assert!(e.contains("host 'firm' runs no POP3 listener"), "{e}");
        let e =
            parse("[[collector]]\nname='c'\nfrom='provider'\nto='nowhere'\naccounts=['k.test']\n")
                .unwrap_err();
        assert!(
            e.starts_with("s.toml:21:4: collector 'c': to = 'nowhere'"),
            "{e}"
        );
        let e = parse("[[collector]]\nname='c'\nfrom='provider'\nto='firm'\nprotocol='imap'\naccounts=['k.test']\n")
            .unwrap_err();
        assert!(
            e.starts_with("s.toml:20:6: collector 'c': host 'provider' runs no IMAP listener; set imap = true on it"),
            "{e}"
        );
        let e = parse("[[collector]]\nname='c'\nfrom='provider'\nto='firm'\nprotocol='imap4'\naccounts=['k.test']\n")
            .unwrap_err();
        assert!(e.starts_with("s.toml:22:10: collector 'c': protocol 'imap4' is not supported; use \"pop3\" or \"imap\""), "{e}");
        let e = parse("[[collector]]\nname='c'\nfrom='provider'\nto='firm'\n").unwrap_err();
        assert!(e.contains("has no account"), "{e}");
        let e = parse(
            "[[collector]]\nname='c'\nfrom='provider'\nto='firm'\naccounts=['k.test']\nspeed=3\n",
        )
        .unwrap_err();
        assert!(e.starts_with("s.toml:23:1: unknown field `speed`"), "{e}");
        let e = parse("[[collector]]\nname='c'\nserver='127.0.0.1:110'\nto='firm'\n[[collector.account]]\nlogin='x'\npassword='y'\n").unwrap_err();
        assert!(e.contains("needs deliver_to"), "{e}");
        let s = parse("[[collector]]\nname='c'\nserver='127.0.0.1:110'\nto='firm'\n[[collector.account]]\nlogin='x'\npassword='y'\ndeliver_to='anna@k.test'\n").unwrap();
        assert_eq!(
            s.collectors[0].source,
            CollectSource::Server("127.0.0.1:110".parse().unwrap())
        );
        let e = Scenario::parse("[[domain]]\nname='d'\npassword='p'\nmailboxes=['a']\n[[collector]]\nname='c'\nfrom='x'\nto='y'\n", "s.toml").unwrap_err();
        assert!(e.to_string().contains("needs [[host]] tables"), "{e}");
    }

    #[test]
    fn uidl_memory_finds_new_messages() {
        let mut m = UidlMemory::default();
        let listing = vec![(1, "a".to_string()), (2, "b".to_string())];
        assert_eq!(m.new_messages("x", &listing).len(), 2);
        m.remember("x", "a");
        assert_eq!(m.new_messages("x", &listing), vec![&(2, "b".to_string())]);
        assert_eq!(m.new_messages("y", &listing).len(), 2);
        m.remember("y", "a");
        m.forget_account("x");
        assert_eq!(m.new_messages("x", &listing).len(), 2);
        assert_eq!(m.new_messages("y", &listing).len(), 1);
        m.forget();
        assert_eq!(m.new_messages("x", &listing).len(), 2);
    }

    #[test]
    fn multidrop_reads_headers_and_loses_bcc() {
        let raw = b"Delivered-To: catchall@k.test\r\nTo: \"Anna, A.\" <Anna@k.test>, bob@else.test\r\nCc: bernd@k.test,\r\n  clara@k.test\r\nSubject: x\r\n\r\nTo: body@k.test\r\n";
        let d = vec!["k.test".to_string()];
        assert_eq!(
            multidrop_recipients(raw, &d),
            [
                "catchall@k.test",
                "anna@k.test",
                "bernd@k.test",
                "clara@k.test"
            ]
        );
        // A Bcc recipient appears in no header: nothing to deliver to.
        let bcc_only = b"To: someone@else.test\r\nSubject: x\r\n\r\nbody\r\n";
        assert!(multidrop_recipients(bcc_only, &d).is_empty());
    }
}
