//! Building the world's zones and looking names up in them.
//!
//! [`build_zones`] is a pure function of three inputs: the world's domain
//! names, the hosts that serve them ([`ZoneHost`]: a name, its addresses,
//! the domains it is MX for) and the scenario's `[dns]` table. It generates
//! an MX for every domain at each host serving it (preference 10, 20, … in
//! host order), A/AAAA records for every host, a PTR for every host address
//! (the first host with an address wins) and an SOA for every zone; an
//! explicit record replaces the generated ones of its name and type (an
//! explicit CNAME replaces everything generated at its name). The result is
//! checked: every record lies in a zone, no CNAME shares its name with other
//! data, and every MX inside the world points at a name with an address.
//!
//! Today's single-server world has no host list; [`implicit_hosts`] makes one
//! host `mx.<domain>` per domain at the SMTP listener's address.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use super::name::{is_in_zone, normalize, reverse_name};
use super::record::{DnsRecord, RecordData, RecordType};
use super::spec::DnsSpec;

/// A host of the world as the DNS sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneHost {
    /// Its name (`mx.example.test`); gets A/AAAA records when inside a zone.
    pub name: String,
    /// Its addresses: A/AAAA records, and PTR records pointing back.
    pub addrs: Vec<IpAddr>,
    /// The world's domains it is MX for.
    pub mx_for: Vec<String>,
}

/// One host `mx.<domain>` per domain, at `addr` (the SMTP listener's
/// address): the DNS of a world served by one server. An unspecified
/// address (`0.0.0.0`) is published as loopback.
pub fn implicit_hosts<'a>(
    domains: impl IntoIterator<Item = &'a str>,
    addr: IpAddr,
) -> Vec<ZoneHost> {
    let addr = if addr.is_unspecified() {
        match addr {
            IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        }
    } else {
        addr
    };
    domains
        .into_iter()
        .map(|d| ZoneHost {
            name: format!("mx.{}", d.to_ascii_lowercase()),
            addrs: vec![addr],
            mx_for: vec![d.to_ascii_lowercase()],
        })
        .collect()
}

/// A record written in the scenario. `at` is where it was written (a byte
/// offset the scenario turns into `file:line:column`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExplicitRecord {
    pub name: String,
    pub ttl: Option<u32>,
    pub data: RecordData,
    /// Where the record's table begins in the scenario text.
    pub at: usize,
    /// Where its `value` is written (errors about what it points at).
    pub value_at: usize,
}

/// A zone set that cannot be built; `at` is the offset of the culprit when
/// it was written in the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ZoneError {
    pub at: Option<usize>,
    pub message: String,
}

fn err(at: Option<usize>, message: impl Into<String>) -> ZoneError {
    ZoneError {
        at,
        message: message.into(),
    }
}

/// What a query type asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryType {
    Of(RecordType),
    /// `ANY`: every record at the name.
    Any,
    /// A type the world holds none of (NS, SRV, ...).
    Other,
}

/// The answer to a query, before it becomes a DNS message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// Records, in order (a CNAME chain first).
    Answer(Vec<&'a DnsRecord>),
    /// The name exists, but has no record of this type: the zone's SOA for
    /// the authority section.
    NoData { soa: &'a DnsRecord },
    /// The name does not exist in a zone of the world.
    NxDomain { soa: &'a DnsRecord },
    /// Not a name of the world: the server is not authoritative.
    Refused,
}

impl Lookup<'_> {
    pub fn rcode_name(&self) -> &'static str {
        match self {
            Lookup::Answer(_) | Lookup::NoData { .. } => "NOERROR",
            Lookup::NxDomain { .. } => "NXDOMAIN",
            Lookup::Refused => "REFUSED",
        }
    }
}

/// The zones of a world, ready for lookups.
#[derive(Debug, Clone, Default)]
pub struct Zones {
    /// Zone apexes, longest first (so the first match is the closest zone).
    zones: Vec<String>,
    by_name: HashMap<String, Vec<DnsRecord>>,
    /// Every owner name and every ancestor of one inside its zone (empty
    /// non-terminals such as `_domainkey.example.test` exist: NODATA, not
    /// NXDOMAIN, as RFC 8020 says).
    existing: HashSet<String>,
}

const MAX_CNAME_CHAIN: usize = 8;

impl Zones {
    /// The zone apexes, sorted.
    pub fn zone_names(&self) -> Vec<&str> {
        let mut z: Vec<&str> = self.zones.iter().map(String::as_str).collect();
        z.sort_unstable();
        z
    }

    /// The closest zone a (normal-form) name lies in.
    pub fn zone_of(&self, name: &str) -> Option<&str> {
        self.zones
            .iter()
            .find(|z| is_in_zone(name, z))
            .map(String::as_str)
    }

    /// Every record, sorted by name and type.
    pub fn records(&self) -> Vec<&DnsRecord> {
        let mut all: Vec<&DnsRecord> = self.by_name.values().flatten().collect();
        all.sort_by(|a, b| (&a.name, a.data.record_type()).cmp(&(&b.name, b.data.record_type())));
        all
    }

    /// The records of a name and type (normal-form name).
    pub fn get(&self, name: &str, rtype: RecordType) -> Vec<&DnsRecord> {
        self.by_name
            .get(name)
            .map(|v| v.iter().filter(|r| r.data.record_type() == rtype).collect())
            .unwrap_or_default()
    }

    fn soa(&self, zone: &str) -> &DnsRecord {
        self.by_name
            .get(zone)
            .and_then(|v| v.iter().find(|r| r.data.record_type() == RecordType::Soa))
            .expect("every zone has a generated SOA")
    }

    /// Answers a query for a name (any case, trailing dot allowed).
    pub fn lookup(&self, qname: &str, qtype: QueryType) -> Lookup<'_> {
        let lower;
        let name = if qname.bytes().any(|b| b.is_ascii_uppercase()) || qname.ends_with('.') {
            lower = qname.trim_end_matches('.').to_ascii_lowercase();
            lower.as_str()
        } else {
            qname
        };
        let Some(zone) = self.zone_of(name) else {
            return Lookup::Refused;
        };
        let mut answer = Vec::new();
        let mut current = name.to_string();
        for _ in 0..MAX_CNAME_CHAIN {
            let records = self.by_name.get(&current).map(Vec::as_slice).unwrap_or(&[]);
            let cname = records
                .iter()
                .find(|r| r.data.record_type() == RecordType::Cname);
            match (cname, qtype) {
                (Some(c), q) if q != QueryType::Of(RecordType::Cname) && q != QueryType::Any => {
                    answer.push(c);
                    let target = c.data.target().unwrap_or_default().to_string();
                    if self.zone_of(&target).is_none() {
                        return Lookup::Answer(answer);
                    }
                    current = target;
                }
                _ => {
                    answer.extend(records.iter().filter(|r| match qtype {
                        QueryType::Any => true,
                        QueryType::Of(t) => r.data.record_type() == t,
                        QueryType::Other => false,
                    }));
                    break;
                }
            }
        }
        if !answer.is_empty() {
            return Lookup::Answer(answer);
        }
        if self.existing.contains(name) {
            Lookup::NoData {
                soa: self.soa(zone),
            }
        } else {
            Lookup::NxDomain {
                soa: self.soa(zone),
            }
        }
    }
}

/// Builds the zones of a world: generated defaults from `hosts`, explicit
/// records of `spec` winning, checked. Returns warnings (valid, but probably
/// not meant).
pub fn build_zones<'a>(
    domains: impl IntoIterator<Item = &'a str>,
    hosts: &[ZoneHost],
    spec: &DnsSpec,
) -> Result<(Zones, Vec<String>), ZoneError> {
    let mut warnings = Vec::new();
    let mut zone_set: BTreeSet<String> = BTreeSet::new();
    for d in domains {
        zone_set.insert(normalize(d).map_err(|e| err(None, e))?);
    }
    for (z, at) in &spec.zones {
        zone_set.insert(normalize(z).map_err(|e| err(Some(*at), e))?);
    }
    let mut hosts_n = Vec::with_capacity(hosts.len());
    for h in hosts {
        let name = normalize(&h.name).map_err(|e| err(None, format!("host '{}': {e}", h.name)))?;
        for a in &h.addrs {
            if spec.generate {
                zone_set.insert(match a {
                    IpAddr::V4(v4) => format!("{}.in-addr.arpa", v4.octets()[0]),
                    IpAddr::V6(_) => "ip6.arpa".to_string(),
                });
            }
        }
        hosts_n.push(name);
    }
    // A host named outside the world's domains (`provider.mailrig.test`)
    // gets its parent as a zone, so that its A record exists and an MX
    // pointing at it can be followed.
    if spec.generate {
        for name in &hosts_n {
            let inside = zone_set
                .iter()
                .any(|z| name == z || name.ends_with(&format!(".{z}")));
            if !inside && let Some((_, parent)) = name.split_once('.') {
                zone_set.insert(parent.to_string());
            }
        }
    }
    let mut zones_sorted: Vec<String> = zone_set.into_iter().collect();
    zones_sorted.sort_by_key(|z| std::cmp::Reverse(z.len()));
    let mut zones = Zones {
        zones: zones_sorted,
        ..Zones::default()
    };
    let ttl = spec.ttl;

    // ---- generated ----
    let mut generated: Vec<DnsRecord> = Vec::new();
    if spec.generate {
        let mut preference: HashMap<String, u16> = HashMap::new();
        let mut ptr_done: HashSet<String> = HashSet::new();
        for (h, name) in hosts.iter().zip(&hosts_n) {
            if zones.zone_of(name).is_some() {
                for a in &h.addrs {
                    generated.push(DnsRecord {
                        name: name.clone(),
                        ttl,
                        data: match a {
                            IpAddr::V4(v4) => RecordData::A(*v4),
                            IpAddr::V6(v6) => RecordData::Aaaa(*v6),
                        },
                    });
                }
            }
            for a in &h.addrs {
                let rev = reverse_name(*a);
                if ptr_done.insert(rev.clone()) {
                    generated.push(DnsRecord {
                        name: rev,
                        ttl,
                        data: RecordData::Ptr(name.clone()),
                    });
                }
            }
            for d in &h.mx_for {
                let d = normalize(d).map_err(|e| err(None, format!("host '{name}': {e}")))?;
                if zones.zone_of(&d) != Some(d.as_str()) {
                    return Err(err(
                        None,
                        format!("host '{name}' is MX for '{d}', which is no domain of this world"),
                    ));
                }
                let p = preference.entry(d.clone()).or_insert(0);
                *p += 10;
                generated.push(DnsRecord {
                    name: d,
                    ttl,
                    data: RecordData::Mx {
                        preference: *p,
                        exchange: name.clone(),
                    },
                });
            }
        }
    }

    // ---- explicit, winning ----
    let mut explicit_keys: HashSet<(String, RecordType)> = HashSet::new();
    let mut explicit_cname: HashMap<String, usize> = HashMap::new();
    let mut seen: Vec<&ExplicitRecord> = Vec::new();
    for r in &spec.records {
        if zones.zone_of(&r.name).is_none() {
            return Err(err(
                Some(r.at),
                format!(
                    "'{}' is in no zone of this world; add its domain as a [[domain]] or list the zone in [dns] zones",
                    r.name
                ),
            ));
        }
        if seen.iter().any(|s| s.name == r.name && s.data == r.data) {
            return Err(err(
                Some(r.at),
                format!(
                    "record '{} {}' is written twice",
                    r.name,
                    r.data.record_type()
                ),
            ));
        }
        seen.push(r);
        if r.data.record_type() == RecordType::Cname {
            if zones.zones.contains(&r.name) {
                return Err(err(
                    Some(r.at),
                    format!(
                        "'{}' is a zone apex; it cannot be a CNAME (it holds the SOA)",
                        r.name
                    ),
                ));
            }
            explicit_cname.insert(r.name.clone(), r.at);
        }
        explicit_keys.insert((r.name.clone(), r.data.record_type()));
    }
    for r in &spec.records {
        if r.data.record_type() != RecordType::Cname && explicit_cname.contains_key(&r.name) {
            return Err(err(
                Some(r.at),
                format!(
                    "'{}' has a CNAME, so it cannot hold a {} record as well",
                    r.name,
                    r.data.record_type()
                ),
            ));
        }
    }
    for g in generated {
        let key = (g.name.clone(), g.data.record_type());
        if explicit_keys.contains(&key) || explicit_cname.contains_key(&g.name) {
            continue;
        }
        zones.by_name.entry(g.name.clone()).or_default().push(g);
    }
    for r in &spec.records {
        zones
            .by_name
            .entry(r.name.clone())
            .or_default()
            .push(DnsRecord {
                name: r.name.clone(),
                ttl: r.ttl.unwrap_or(ttl),
                data: r.data.clone(),
            });
    }
    // Two CNAMEs at one name.
    for (name, at) in &explicit_cname {
        if zones.get(name, RecordType::Cname).len() > 1 {
            return Err(err(Some(*at), format!("'{name}' has more than one CNAME")));
        }
    }

    // ---- SOA per zone ----
    for z in zones.zones.clone() {
        let mname = zones
            .get(&z, RecordType::Mx)
            .iter()
            .filter_map(|r| match &r.data {
                RecordData::Mx {
                    preference,
                    exchange,
                } => Some((*preference, exchange.clone())),
                _ => None,
            })
            .min()
            .map(|(_, e)| e)
            .unwrap_or_else(|| format!("ns.{z}"));
        zones.by_name.entry(z.clone()).or_default().push(DnsRecord {
            name: z.clone(),
            ttl,
            data: RecordData::Soa {
                mname,
                rname: format!("hostmaster.{z}"),
                serial: 1,
                minimum: ttl,
            },
        });
    }

    // ---- checks ----
    let has_address = |zones: &Zones, n: &str| {
        !zones.get(n, RecordType::A).is_empty() || !zones.get(n, RecordType::Aaaa).is_empty()
    };
    let explicit_at = |name: &str, data: &RecordData| {
        spec.records
            .iter()
            .find(|r| r.name == name && &r.data == data)
            .map(|r| r.value_at)
    };
    for rec in zones.records() {
        if let RecordData::Mx { exchange, .. } = &rec.data {
            if zones.zone_of(exchange).is_some() {
                if !has_address(&zones, exchange) {
                    let at = explicit_at(&rec.name, &rec.data);
                    let what = if zones.get(exchange, RecordType::Cname).is_empty() {
                        "which has no A or AAAA record"
                    } else {
                        "which is a CNAME (an MX must name a host with an address, RFC 2181 10.3)"
                    };
                    return Err(err(
                        at,
                        format!("MX of '{}' points at '{exchange}', {what}", rec.name),
                    ));
                }
            } else {
                warnings.push(format!(
                    "MX of '{}' points at '{exchange}', outside the world's zones: mail for it leaves the world",
                    rec.name
                ));
            }
        }
        if let RecordData::Cname(t) = &rec.data
            && zones.zone_of(t).is_some()
            && !zones.by_name.contains_key(t.as_str())
        {
            warnings.push(format!(
                "CNAME '{}' points at '{t}', which has no records",
                rec.name
            ));
        }
    }

    // ---- names that exist ----
    let owners: Vec<String> = zones.by_name.keys().cloned().collect();
    for owner in owners {
        let zone = zones.zone_of(&owner).unwrap_or_default().to_string();
        let mut n = owner.as_str();
        loop {
            zones.existing.insert(n.to_string());
            if n == zone {
                break;
            }
            match n.split_once('.') {
                Some((_, rest)) if is_in_zone(rest, &zone) => n = rest,
                _ => break,
            }
        }
    }
    Ok((zones, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn lo(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
    }

    fn rec(name: &str, t: RecordType, v: &str, at: usize) -> ExplicitRecord {
        ExplicitRecord {
            name: name.into(),
            ttl: None,
            data: RecordData::parse(t, v).unwrap(),
            at,
            value_at: at,
        }
    }

    fn spec(records: Vec<ExplicitRecord>) -> DnsSpec {
        DnsSpec {
            records,
            ..DnsSpec::default()
        }
    }

    fn values(z: &Zones, name: &str, t: RecordType) -> Vec<String> {
        z.get(name, t).iter().map(|r| r.data.to_string()).collect()
    }

    #[test]
    fn implicit_hosts_generate_mx_a_ptr_and_soa() {
        let hosts = implicit_hosts(["example.test", "shop.test"], lo(1));
        let (z, w) =
            build_zones(["example.test", "shop.test"], &hosts, &DnsSpec::default()).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            values(&z, "example.test", RecordType::Mx),
            ["10 mx.example.test"]
        );
        assert_eq!(values(&z, "mx.shop.test", RecordType::A), ["127.0.0.1"]);
        // The first host with an address owns its PTR.
        assert_eq!(
            values(&z, "1.0.0.127.in-addr.arpa", RecordType::Ptr),
            ["mx.example.test"]
        );
        assert_eq!(z.get("shop.test", RecordType::Soa).len(), 1);
        assert_eq!(
            z.zone_names(),
            ["127.in-addr.arpa", "example.test", "shop.test"]
        );
    }

    #[test]
    fn an_unspecified_listen_address_is_published_as_loopback() {
        let h = implicit_hosts(["a.test"], "0.0.0.0".parse().unwrap());
        assert_eq!(h[0].addrs, [lo(1)]);
    }

    #[test]
    fn hosts_list_gives_preferences_in_order() {
        let hosts = vec![
            ZoneHost {
                name: "mx1.example.test".into(),
                addrs: vec![lo(2)],
                mx_for: vec!["example.test".into()],
            },
            ZoneHost {
                name: "backup.example.test".into(),
                addrs: vec![lo(3), "::1".parse().unwrap()],
                mx_for: vec!["example.test".into()],
            },
        ];
        let (z, _) = build_zones(["example.test"], &hosts, &DnsSpec::default()).unwrap();
        let mut mx = values(&z, "example.test", RecordType::Mx);
        mx.sort();
        assert_eq!(mx, ["10 mx1.example.test", "20 backup.example.test"]);
        assert_eq!(values(&z, "backup.example.test", RecordType::Aaaa), ["::1"]);
        assert_eq!(
            values(&z, "3.0.0.127.in-addr.arpa", RecordType::Ptr),
            ["backup.example.test"]
        );
        // The SOA names the preferred MX.
        assert!(values(&z, "example.test", RecordType::Soa)[0].starts_with("mx1.example.test "));
    }

    #[test]
    fn explicit_records_win_over_generated_ones_of_their_name_and_type() {
        let hosts = implicit_hosts(["example.test"], lo(1));
        let s = spec(vec![
            rec("example.test", RecordType::Mx, "5 mx2.example.test", 1),
            rec("mx2.example.test", RecordType::A, "127.0.0.9", 2),
            rec(
                "example.test",
                RecordType::Txt,
                "v=spf1 ip4:127.0.0.1 -all",
                3,
            ),
            rec(
                "_dmarc.example.test",
                RecordType::Txt,
                "v=DMARC1; p=reject",
                4,
            ),
            rec(
                "sel._domainkey.example.test",
                RecordType::Txt,
                "v=DKIM1; k=rsa; p=AAAA",
                5,
            ),
            rec("mx.example.test", RecordType::A, "127.0.0.7", 6),
        ]);
        let (z, _) = build_zones(["example.test"], &hosts, &s).unwrap();
        assert_eq!(
            values(&z, "example.test", RecordType::Mx),
            ["5 mx2.example.test"]
        );
        assert_eq!(values(&z, "mx.example.test", RecordType::A), ["127.0.0.7"]);
        assert_eq!(
            values(&z, "_dmarc.example.test", RecordType::Txt),
            ["\"v=DMARC1; p=reject\""]
        );
    }

    #[test]
    fn lookups_answer_nodata_nxdomain_refused() {
        let hosts = implicit_hosts(["example.test"], lo(1));
        let s = spec(vec![
            rec(
                "sel._domainkey.example.test",
                RecordType::Txt,
                "v=DKIM1; p=X",
                1,
            ),
            rec("www.example.test", RecordType::Cname, "mx.example.test", 2),
        ]);
        let (z, _) = build_zones(["example.test"], &hosts, &s).unwrap();
        let Lookup::Answer(a) = z.lookup("EXAMPLE.test.", QueryType::Of(RecordType::Mx)) else {
            panic!("no MX answer")
        };
        assert_eq!(a.len(), 1);
        assert!(matches!(
            z.lookup("example.test", QueryType::Of(RecordType::Aaaa)),
            Lookup::NoData { .. }
        ));
        // An empty non-terminal exists.
        assert!(matches!(
            z.lookup("_domainkey.example.test", QueryType::Of(RecordType::Txt)),
            Lookup::NoData { .. }
        ));
        assert!(matches!(
            z.lookup("nope.example.test", QueryType::Of(RecordType::A)),
            Lookup::NxDomain { .. }
        ));
        assert_eq!(z.lookup("example.org", QueryType::Any), Lookup::Refused);
        // A CNAME is followed inside the world.
        let Lookup::Answer(a) = z.lookup("www.example.test", QueryType::Of(RecordType::A)) else {
            panic!("no CNAME answer")
        };
        let types: Vec<_> = a.iter().map(|r| r.data.record_type()).collect();
        assert_eq!(types, [RecordType::Cname, RecordType::A]);
        let Lookup::Answer(any) = z.lookup("example.test", QueryType::Any) else {
            panic!()
        };
        assert_eq!(any.len(), 2, "MX and SOA");
    }

    #[test]
    fn bad_input_names_the_record() {
        let hosts = implicit_hosts(["example.test"], lo(1));
        let e = build_zones(
            ["example.test"],
            &hosts,
            &spec(vec![rec("other.org", RecordType::A, "127.0.0.1", 42)]),
        )
        .unwrap_err();
        assert_eq!(e.at, Some(42));
        assert!(e.message.contains("in no zone"), "{e}");

        let e = build_zones(
            ["example.test"],
            &hosts,
            &spec(vec![rec(
                "example.test",
                RecordType::Mx,
                "10 ghost.example.test",
                7,
            )]),
        )
        .unwrap_err();
        assert_eq!(e.at, Some(7));
        assert!(e.message.contains("no A or AAAA"), "{e}");

        let e = build_zones(
            ["example.test"],
            &hosts,
            &spec(vec![
                rec("w.example.test", RecordType::Cname, "mx.example.test", 1),
                rec("w.example.test", RecordType::Txt, "x", 2),
            ]),
        )
        .unwrap_err();
        assert_eq!(e.at, Some(2));

        let e = build_zones(
            ["example.test"],
            &hosts,
            &spec(vec![rec(
                "example.test",
                RecordType::Cname,
                "x.example.test",
                3,
            )]),
        )
        .unwrap_err();
        assert!(e.message.contains("apex"), "{e}");

        let bad_host = vec![ZoneHost {
            name: "mx.example.test".into(),
            addrs: vec![lo(2)],
            mx_for: vec!["elsewhere.test".into()],
        }];
        let e = build_zones(["example.test"], &bad_host, &DnsSpec::default()).unwrap_err();
        assert!(e.message.contains("no domain of this world"), "{e}");
    }

    #[test]
    fn an_mx_leaving_the_world_is_a_warning() {
        let hosts = implicit_hosts(["example.test"], lo(1));
        let (_, w) = build_zones(
            ["example.test"],
            &hosts,
            &spec(vec![rec(
                "example.test",
                RecordType::Mx,
                "10 mx.provider.example",
                1,
            )]),
        )
        .unwrap();
        assert!(w[0].contains("outside the world"), "{w:?}");
    }

    #[test]
    fn extra_zones_hold_records_of_names_outside_the_domains() {
        let hosts = implicit_hosts(["example.test"], lo(1));
        let mut s = spec(vec![rec("relay.isp.test", RecordType::A, "127.0.0.5", 1)]);
        s.zones = vec![("isp.test".into(), 0)];
        let (z, _) = build_zones(["example.test"], &hosts, &s).unwrap();
        assert_eq!(values(&z, "relay.isp.test", RecordType::A), ["127.0.0.5"]);
    }
}
