//! mail-auth's resolver caches, answered from the world's zones: every
//! lookup the checks make (TXT for SPF, DKIM keys and DMARC, MX, A, AAAA,
//! PTR for SPF mechanisms) is looked up in [`Zones`] in the process, with
//! the DNS fault rules (stage `dns`, `qname`/`qtype`) applied as the DNS
//! server applies them, so a rotated key or a broken SPF record is one rule
//! for both. Nothing leaves the process: a name outside the world does not
//! exist (`NXDOMAIN`); `servfail` and `timeout` faults are temporary errors.
//!
//! Known gaps: SPF's `exists:` mechanism treats any cached answer as "the
//! name exists", and an absent name here is an empty answer, so `exists:`
//! always matches; a fault's `answer` at a name the world does not have is
//! not seen here (only the DNS server makes up names); reverse names are
//! IPv4 only.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::dmarc::Dmarc;
use mail_auth::hickory_resolver::proto::op::ResponseCode;
use mail_auth::spf::Spf;
use mail_auth::{DnsError, DnssecStatus, Error, MX, RecordSet, ResolverCache, Txt};
use mailrig_core::dns::zone::QueryType;
use mailrig_core::dns::{Lookup, RecordData, RecordType, Zones};
use mailrig_core::fault::{Action, DnsFault, Facts, FaultPlan, Stage};
use parking_lot::RwLock;

/// What a lookup found, before it takes mail-auth's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Records(Vec<RecordData>),
    NotFound,
    /// SERVFAIL or no answer: a temporary error.
    Failed,
}

/// The world's zones and fault plan, as one resolver cache for every type.
pub struct WorldLookup<'a> {
    pub zones: &'a Zones,
    pub names: &'a Names,
    /// `None`: no DNS faults apply.
    pub faults: Option<&'a RwLock<FaultPlan>>,
    /// The client whose message is checked (a fault's `client` selector).
    pub client: Option<IpAddr>,
}

impl WorldLookup<'_> {
    /// The records of `rtype` at `name` (any case, trailing dot allowed).
    pub fn find(&self, name: &str, rtype: RecordType) -> Found {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(fault) = self.fault(&name, rtype) {
            return match fault {
                DnsFault::ServFail | DnsFault::Timeout => Found::Failed,
                // In the process there is no UDP size limit to retry past.
                DnsFault::Truncate => self.zone_records(&name, rtype),
                DnsFault::Answer(data) => {
                    let data: Vec<RecordData> = data
                        .into_iter()
                        .filter(|d| d.record_type() == rtype)
                        .collect();
                    if data.is_empty() {
                        Found::NotFound
                    } else {
                        Found::Records(data)
                    }
                }
            };
        }
        self.zone_records(&name, rtype)
    }

    fn zone_records(&self, name: &str, rtype: RecordType) -> Found {
        match self.zones.lookup(name, QueryType::Of(rtype)) {
            Lookup::Answer(records) => {
                let data: Vec<RecordData> = records
                    .into_iter()
                    .filter(|r| r.data.record_type() == rtype)
                    .map(|r| r.data.clone())
                    .collect();
                if data.is_empty() {
                    Found::NotFound
                } else {
                    Found::Records(data)
                }
            }
            Lookup::NoData { .. } | Lookup::NxDomain { .. } | Lookup::Refused => Found::NotFound,
        }
    }

    fn fault(&self, qname: &str, rtype: RecordType) -> Option<DnsFault> {
        let plan = self.faults?.read();
        if !plan.has_stage(Stage::Dns) {
            return None;
        }
        let facts = Facts {
            client: self.client,
            qname: Some(qname),
            qtype: Some(rtype.name()),
            ..Facts::default()
        };
        plan.decide(Stage::Dns, &facts)
            .into_iter()
            .find_map(|f| match f.action {
                Action::Dns(d) => Some(d),
                _ => None,
            })
    }

    fn txt(&self, name: &str) -> Txt {
        let texts = match self.find(name, RecordType::Txt) {
            Found::Records(r) => r
                .into_iter()
                .filter_map(|d| match d {
                    RecordData::Txt(t) => Some(t),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            Found::NotFound => return not_found(),
            Found::Failed => return failed(),
        };
        // The record type is known from where it lives, as mail-auth asks
        // for each at its own place.
        let lower = name.to_ascii_lowercase();
        if lower.contains("._domainkey.") {
            first_parsed::<DomainKey>(&texts)
        } else if lower.starts_with("_dmarc.") {
            first_parsed::<Dmarc>(&texts)
        } else {
            first_parsed::<Spf>(&texts)
        }
    }

    /// The records of `rtype` at `name` as a set (empty for `""`, a name
    /// outside the world).
    fn set<T>(
        &self,
        name: &str,
        rtype: RecordType,
        f: impl Fn(RecordData) -> Option<T>,
    ) -> RecordSet<T> {
        let found = if name.is_empty() {
            Found::NotFound
        } else {
            self.find(name, rtype)
        };
        let items: Vec<T> = match found {
            Found::Records(r) => r.into_iter().filter_map(f).collect(),
            Found::NotFound | Found::Failed => Vec::new(),
        };
        RecordSet {
            rrset: Arc::from(items),
            dnssec_status: DnssecStatus::Indeterminate,
        }
    }
}

fn not_found() -> Txt {
    Txt::Error(Error::Dns(DnsError::RecordNotFound(ResponseCode::NXDomain)))
}

fn failed() -> Txt {
    Txt::Error(Error::Dns(DnsError::Resolver(
        "SERVFAIL from the world's DNS".into(),
    )))
}

/// The first text that parses as `T` (as mail-auth's own lookup does), or
/// the error of the last.
fn first_parsed<T: TxtRecordParser + Into<Txt>>(texts: &[String]) -> Txt {
    let mut result = Err(Error::Dns(DnsError::InvalidRecordType));
    for t in texts {
        result = T::parse(t.as_bytes());
        if result.is_ok() {
            break;
        }
    }
    result.into()
}

/// The names and reverse names the caches can be asked for, collected once
/// from the zones: mail-auth asks a cache with a key borrowed from its own
/// (a lowercase FQDN, or an address), and only a stored key gives the
/// name back. A name not here does not exist in the world.
#[derive(Debug, Default)]
pub struct Names {
    /// Every owner name, lowercase with the trailing dot.
    fqdns: HashSet<Box<str>>,
    /// Address → its reverse name, for every PTR of the world.
    reverse: HashMap<IpAddr, String>,
}

impl Names {
    pub fn of(zones: &Zones) -> Names {
        let mut n = Names::default();
        for r in zones.records() {
            n.fqdns.insert(format!("{}.", r.name).into_boxed_str());
            if let (RecordData::Ptr(_), Some(ip)) = (&r.data, reverse_v4(&r.name)) {
                n.reverse.insert(ip, r.name.clone());
            }
        }
        n
    }
}

/// `4.3.2.1.in-addr.arpa` → 1.2.3.4.
fn reverse_v4(name: &str) -> Option<IpAddr> {
    let rest = name.strip_suffix(".in-addr.arpa")?;
    let mut octets = [0u8; 4];
    let mut parts = rest.split('.');
    for o in octets.iter_mut().rev() {
        *o = parts.next()?.parse().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(IpAddr::V4(Ipv4Addr::from(octets)))
}

macro_rules! never_stores {
    ($k:ty, $v:ty) => {
        fn remove<Q>(&self, _: &Q) -> Option<$v>
        where
            $k: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            None
        }
        fn insert(&self, _: $k, _: $v, _: std::time::Instant) {}
    };
}

impl ResolverCache<Box<str>, Txt> for WorldLookup<'_> {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        Some(match self.names.fqdns.get(name) {
            Some(n) => self.txt(n),
            None => not_found(),
        })
    }
    never_stores!(Box<str>, Txt);
}

impl ResolverCache<Box<str>, RecordSet<MX>> for WorldLookup<'_> {
    fn get<Q>(&self, name: &Q) -> Option<RecordSet<MX>>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Some(n) = self.names.fqdns.get(name) else {
            return Some(self.set::<MX>("", RecordType::Mx, |_| None));
        };
        let mut by_pref: Vec<(u16, Vec<Box<str>>)> = Vec::new();
        if let Found::Records(r) = self.find(n, RecordType::Mx) {
            for d in r {
                if let RecordData::Mx {
                    preference,
                    exchange,
                } = d
                {
                    let exchange = format!("{exchange}.").into_boxed_str();
                    match by_pref.iter_mut().find(|(p, _)| *p == preference) {
                        Some((_, v)) => v.push(exchange),
                        None => by_pref.push((preference, vec![exchange])),
                    }
                }
            }
        }
        by_pref.sort_unstable_by_key(|(p, _)| *p);
        Some(RecordSet {
            rrset: by_pref
                .into_iter()
                .map(|(preference, e)| MX {
                    preference,
                    exchanges: e.into_boxed_slice(),
                })
                .collect(),
            dnssec_status: DnssecStatus::Indeterminate,
        })
    }
    never_stores!(Box<str>, RecordSet<MX>);
}

impl ResolverCache<Box<str>, RecordSet<Ipv4Addr>> for WorldLookup<'_> {
    fn get<Q>(&self, name: &Q) -> Option<RecordSet<Ipv4Addr>>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let n = self.names.fqdns.get(name).map_or("", |n| &**n);
        Some(self.set(n, RecordType::A, |d| match d {
            RecordData::A(a) => Some(a),
            _ => None,
        }))
    }
    never_stores!(Box<str>, RecordSet<Ipv4Addr>);
}

impl ResolverCache<Box<str>, RecordSet<Ipv6Addr>> for WorldLookup<'_> {
    fn get<Q>(&self, name: &Q) -> Option<RecordSet<Ipv6Addr>>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let n = self.names.fqdns.get(name).map_or("", |n| &**n);
        Some(self.set(n, RecordType::Aaaa, |d| match d {
            RecordData::Aaaa(a) => Some(a),
            _ => None,
        }))
    }
    never_stores!(Box<str>, RecordSet<Ipv6Addr>);
}

impl ResolverCache<IpAddr, RecordSet<Box<str>>> for WorldLookup<'_> {
    fn get<Q>(&self, addr: &Q) -> Option<RecordSet<Box<str>>>
    where
        IpAddr: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let n = self.names.reverse.get(addr).map_or("", String::as_str);
        Some(self.set(n, RecordType::Ptr, |d| match d {
            RecordData::Ptr(p) => Some(format!("{p}.").into_boxed_str()),
            _ => None,
        }))
    }
    never_stores!(IpAddr, RecordSet<Box<str>>);
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailrig_core::dns::{DnsSpec, ExplicitRecord, ZoneHost, build_zones};

    fn zones() -> Zones {
        let txt = |name: &str, v: &str| ExplicitRecord {
            name: name.into(),
            ttl: None,
            data: RecordData::Txt(v.into()),
            at: 0,
            value_at: 0,
        };
        let spec = DnsSpec {
            records: vec![
                txt("a.test", "v=spf1 ip4:127.0.0.5 -all"),
                txt("_dmarc.a.test", "v=DMARC1; p=reject"),
                txt(
                    "s1._domainkey.a.test",
                    "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
                ),
            ],
            ..DnsSpec::default()
        };
        let hosts = [ZoneHost {
            name: "mx.a.test".into(),
            addrs: vec!["127.0.0.2".parse().unwrap()],
            mx_for: vec!["a.test".into()],
        }];
        build_zones(["a.test"], &hosts, &spec).unwrap().0
    }

    #[test]
    fn txt_records_take_the_type_of_their_place() {
        let z = zones();
        let names = Names::of(&z);
        let l = WorldLookup {
            zones: &z,
            names: &names,
            faults: None,
            client: None,
        };
        let get = |n: &str| ResolverCache::<Box<str>, Txt>::get(&l, n).unwrap();
        assert!(matches!(get("a.test."), Txt::Spf(_)));
        assert!(matches!(get("_dmarc.a.test."), Txt::Dmarc(_)));
        assert!(matches!(get("s1._domainkey.a.test."), Txt::DomainKey(_)));
        assert!(matches!(
            get("nowhere.example."),
            Txt::Error(Error::Dns(DnsError::RecordNotFound(_)))
        ));
    }

    #[test]
    fn mx_a_and_ptr_come_from_the_generated_records() {
        let z = zones();
        let names = Names::of(&z);
        let l = WorldLookup {
            zones: &z,
            names: &names,
            faults: None,
            client: None,
        };
        let mx = ResolverCache::<Box<str>, RecordSet<MX>>::get(&l, "a.test.").unwrap();
        assert_eq!(&*mx.rrset[0].exchanges[0], "mx.a.test.");
        let a = ResolverCache::<Box<str>, RecordSet<Ipv4Addr>>::get(&l, "mx.a.test.").unwrap();
        assert_eq!(&*a.rrset, &[Ipv4Addr::new(127, 0, 0, 2)]);
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        let ptr = ResolverCache::<IpAddr, RecordSet<Box<str>>>::get(&l, &ip).unwrap();
        assert_eq!(&*ptr.rrset[0], "mx.a.test.");
        let none = ResolverCache::<Box<str>, RecordSet<Ipv4Addr>>::get(&l, "x.example.").unwrap();
        assert!(none.rrset.is_empty());
    }

    #[test]
    fn a_dns_fault_changes_the_answer_in_the_process_too() {
        let z = zones();
        let names = Names::of(&z);
        let world = mailrig_core::Scenario::builtin_default().world;
        let spec: mailrig_core::fault::FaultRuleSpec = toml::from_str(
            "name = \"no-key\"\nstage = \"dns\"\naction = \"servfail\"\nqname = \"*._domainkey.*\"",
        )
        .unwrap();
        let (plan, _) = FaultPlan::from_specs(&[spec], &world).unwrap();
        let faults = RwLock::new(plan);
        let l = WorldLookup {
            zones: &z,
            names: &names,
            faults: Some(&faults),
            client: None,
        };
        let get = |n: &str| ResolverCache::<Box<str>, Txt>::get(&l, n).unwrap();
        assert!(matches!(
            get("s1._domainkey.a.test."),
            Txt::Error(Error::Dns(DnsError::Resolver(_)))
        ));
        assert!(matches!(get("a.test."), Txt::Spf(_)));
    }
}
