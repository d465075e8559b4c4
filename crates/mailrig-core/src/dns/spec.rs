//! The `[dns]` table of a scenario file: the default TTL, whether defaults
//! are generated, extra zones, and explicit `[[dns.record]]`s.
//!
//! ```toml
//! [dns]
//! ttl = 60                      # default TTL of every record
//! generate = true               # MX/A/PTR from the hosts (default true)
//! zones = ["isp.test"]          # zones besides the world's domains
//! [[dns.record]]
//! name = "example.test"
//! type = "MX"                   # A AAAA MX TXT PTR CNAME
//! value = "20 backup.example.test"
//! ttl = 300                     # optional
//! ```

use serde::Deserialize;
use toml::Spanned;

use super::name::normalize;
use super::record::{RecordData, RecordType};
use super::zone::ExplicitRecord;

/// The `[dns]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSection {
    ttl: Option<Spanned<u32>>,
    generate: Option<bool>,
    #[serde(default)]
    zones: Vec<Spanned<String>>,
    #[serde(default)]
    record: Vec<Spanned<RecordSection>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordSection {
    name: Spanned<String>,
    #[serde(rename = "type")]
    rtype: Spanned<String>,
    value: Spanned<String>,
    ttl: Option<u32>,
}

/// The `[dns]` table, checked record by record (the zone-level checks are
/// [`super::build_zones`]'s). Offsets point into the scenario text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSpec {
    pub ttl: u32,
    pub generate: bool,
    /// Extra zone apexes and where they were written.
    pub zones: Vec<(String, usize)>,
    pub records: Vec<ExplicitRecord>,
}

impl Default for DnsSpec {
    fn default() -> Self {
        DnsSpec {
            ttl: 60,
            generate: true,
            zones: Vec::new(),
            records: Vec::new(),
        }
    }
}

impl DnsSection {
    /// Checks names, types and values; an error is `(offset, message)`.
    pub fn to_spec(&self) -> Result<DnsSpec, (usize, String)> {
        let mut spec = DnsSpec::default();
        if let Some(t) = &self.ttl {
            spec.ttl = *t.get_ref();
        }
        spec.generate = self.generate.unwrap_or(true);
        for z in &self.zones {
            let name = normalize(z.get_ref()).map_err(|e| (z.span().start, e))?;
            spec.zones.push((name, z.span().start));
        }
        for r in &self.record {
            let at = r.span().start;
            let r = r.get_ref();
            let name = normalize(r.name.get_ref()).map_err(|e| (r.name.span().start, e))?;
            let rtype = RecordType::parse(r.rtype.get_ref())
                .filter(|t| RecordType::WRITABLE.contains(t))
                .ok_or_else(|| {
                    (
                        r.rtype.span().start,
                        format!(
                            "unknown record type '{}'; write one of A, AAAA, MX, TXT, PTR, CNAME",
                            r.rtype.get_ref()
                        ),
                    )
                })?;
            let data = RecordData::parse(rtype, r.value.get_ref())
                .map_err(|e| (r.value.span().start, e))?;
            spec.records.push(ExplicitRecord {
                name,
                ttl: r.ttl,
                data,
                at,
                value_at: r.value.span().start,
            });
        }
        Ok(spec)
    }
}
