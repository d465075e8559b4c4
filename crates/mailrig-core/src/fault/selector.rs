//! To whom and how often a fault rule applies: recipient domains and
//! mailboxes (names, addresses, globs, ranges, with exceptions), senders,
//! client addresses, authenticated users, match counters, a time window and a
//! seeded probability.
//!
//! Mailbox patterns are resolved against the world once, when the rule is
//! built, into a set of mailbox ids: matching is then one hash probe, and a
//! pattern that matches nothing is reported as a warning.

use std::collections::HashSet;
use std::time::Duration;

use super::Facts;
use super::spec::{FaultRuleSpec, OneOrMany};
use crate::range;
use crate::world::{MailboxId, World};

#[derive(Debug, Clone)]
pub struct Selector {
    domains: Option<Vec<glob::Pattern>>,
    mailboxes: Option<HashSet<MailboxId>>,
    except: HashSet<MailboxId>,
    senders: Option<Vec<glob::Pattern>>,
    clients: Option<Vec<glob::Pattern>>,
    users: Option<Vec<glob::Pattern>>,
    qnames: Option<Vec<glob::Pattern>>,
    /// Upper-case type names.
    qtypes: Option<Vec<String>>,
    nth: Option<u64>,
    first: Option<u64>,
    every: Option<u64>,
    after: Option<u64>,
    from: Option<Duration>,
    until: Option<Duration>,
    probability: Option<(f64, u64)>,
}

fn globs(v: &Option<OneOrMany>, key: &str) -> Result<Option<Vec<glob::Pattern>>, String> {
    let Some(v) = v else { return Ok(None) };
    v.items()
        .into_iter()
        .map(|p| {
            glob::Pattern::new(&p.to_lowercase())
                .map_err(|e| format!("`{key}` pattern '{p}' is not a valid glob: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

const MATCH_CASE_INSENSITIVE: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: false,
    require_literal_separator: false,
    require_literal_leading_dot: false,
};

/// Mailboxes of the world named by one pattern.
fn resolve_mailboxes(world: &World, pattern: &str) -> Result<Vec<MailboxId>, String> {
    let p = pattern.trim().to_lowercase();
    // A range such as user03..user25 or user{03..25}@patente.test (crate::range).
    let names = range::expand(&p).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for name in names {
        if name.contains('@') {
            // A full address (possibly with globs): the one address check first.
            crate::address::Address::parse(&name)
                .map_err(|e| format!("mailbox pattern '{pattern}': {e}"))?;
        }
        let pat = glob::Pattern::new(&name)
            .map_err(|e| format!("mailbox pattern '{pattern}' is not a valid glob: {e}"))?;
        for m in &world.mailboxes {
            let subject = if name.contains('@') {
                m.address.key()
            } else {
                m.address.local().to_lowercase()
            };
            if pat.matches_with(&subject, MATCH_CASE_INSENSITIVE) {
                out.push(m.id);
            }
        }
    }
    Ok(out)
}

fn mailbox_set(
    world: &World,
    v: &Option<OneOrMany>,
    key: &str,
    warnings: &mut Vec<String>,
) -> Result<Option<HashSet<MailboxId>>, String> {
    let Some(v) = v else { return Ok(None) };
    let mut set = HashSet::new();
    for p in v.items() {
        let found = resolve_mailboxes(world, p)?;
        if found.is_empty() {
            warnings.push(format!(
                "`{key}` pattern '{p}' matches no mailbox of this world"
            ));
        }
        set.extend(found);
    }
    Ok(Some(set))
}

/// Deterministic 64-bit mix (splitmix64) of a seed and a counter.
fn mix(seed: u64, n: u64) -> u64 {
    let mut z = seed.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Selector {
    pub fn build(spec: &FaultRuleSpec, world: &World) -> Result<(Selector, Vec<String>), String> {
        let mut warnings = Vec::new();
        let domains = globs(&spec.domain, "domain")?;
        if let Some(ds) = &domains {
            for d in ds {
                if !world.domains.iter().any(|w| d.matches(&w.name)) {
                    warnings.push(format!(
                        "`domain` pattern '{d}' matches no domain of this world"
                    ));
                }
            }
        }
        let mailboxes = mailbox_set(world, &spec.mailbox, "mailbox", &mut warnings)?;
        let except = mailbox_set(world, &spec.except, "except", &mut warnings)?.unwrap_or_default();
        if let Some(m) = &mailboxes
            && !m.is_empty()
            && m.iter().all(|id| except.contains(id))
        {
            warnings.push("`except` removes every mailbox `mailbox` selects".to_string());
        }
        let sel = Selector {
            domains,
            mailboxes,
            except,
            senders: globs(&spec.sender, "sender")?,
            clients: globs(&spec.client, "client")?,
            users: globs(&spec.user, "user")?,
            qnames: globs(
                &spec.qname.as_ref().map(|q| {
                    OneOrMany::Many(
                        q.items()
                            .iter()
                            .map(|n| n.trim_end_matches('.').to_string())
                            .collect(),
                    )
                }),
                "qname",
            )?,
            qtypes: spec.qtype.as_ref().map(|q| {
                q.items()
                    .iter()
                    .map(|t| t.trim().to_ascii_uppercase())
                    .collect()
            }),
            nth: spec.nth,
            first: spec.first,
            every: spec.every,
            after: spec.after,
            from: spec.from_secs.map(Duration::from_secs),
            until: spec.until_secs.map(Duration::from_secs),
            probability: spec.probability.map(|p| (p, spec.seed.unwrap_or(0))),
        };
        Ok((sel, warnings))
    }

    /// Whether the rule needs to know the recipient to match.
    pub fn needs_recipient(&self) -> bool {
        self.domains.is_some() || self.mailboxes.is_some() || !self.except.is_empty()
    }

    /// Whether the facts and the time match (counters not included).
    pub fn matches(&self, f: &Facts<'_>, elapsed: Duration) -> bool {
        if self.from.is_some_and(|t| elapsed < t) || self.until.is_some_and(|t| elapsed >= t) {
            return false;
        }
        if let Some(ds) = &self.domains {
            let Some(d) = f.domain else { return false };
            if !ds.iter().any(|p| p.matches_with(d, MATCH_CASE_INSENSITIVE)) {
                return false;
            }
        }
        if let Some(ms) = &self.mailboxes {
            match f.mailbox {
                Some(id) if ms.contains(&id) => {}
                _ => return false,
            }
        }
        if let Some(id) = f.mailbox
            && self.except.contains(&id)
        {
            return false;
        }
        if let Some(ss) = &self.senders {
            let s = match f.sender {
                Some("") => "<>",
                Some(s) => s,
                None => return false,
            };
            if !ss.iter().any(|p| p.matches_with(s, MATCH_CASE_INSENSITIVE)) {
                return false;
            }
        }
        if let Some(cs) = &self.clients {
            let Some(ip) = f.client else { return false };
            let ip = ip.to_string();
            if !cs.iter().any(|p| p.matches(&ip)) {
                return false;
            }
        }
        if let Some(us) = &self.users {
            let Some(u) = f.user else { return false };
            if !us.iter().any(|p| p.matches_with(u, MATCH_CASE_INSENSITIVE)) {
                return false;
            }
        }
        if let Some(qs) = &self.qnames {
            let Some(q) = f.qname else { return false };
            if !qs.iter().any(|p| p.matches_with(q, MATCH_CASE_INSENSITIVE)) {
                return false;
            }
        }
        if let Some(ts) = &self.qtypes {
            let Some(t) = f.qtype else { return false };
            if !ts.iter().any(|x| x.eq_ignore_ascii_case(t)) {
                return false;
            }
        }
        true
    }

    /// Whether the n-th match (1-based) fires, given counters and probability.
    pub fn counts_allow(&self, n: u64) -> bool {
        if self.nth.is_some_and(|k| n != k)
            || self.first.is_some_and(|k| n > k)
            || self.every.is_some_and(|k| !n.is_multiple_of(k))
            || self.after.is_some_and(|k| n <= k)
        {
            return false;
        }
        match self.probability {
            None => true,
            Some((p, seed)) => (mix(seed, n) as f64) < p * (u64::MAX as f64),
        }
    }
}
