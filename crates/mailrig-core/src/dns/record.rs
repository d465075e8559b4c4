//! DNS record types and data, written as in a zone file: an MX is
//! `"10 mx.example.test"`, an A record `"127.0.0.2"`, a TXT record its text.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::name;

/// The record types a world's zones hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RecordType {
    A,
    #[serde(rename = "AAAA")]
    Aaaa,
    #[serde(rename = "MX")]
    Mx,
    #[serde(rename = "TXT")]
    Txt,
    #[serde(rename = "PTR")]
    Ptr,
    #[serde(rename = "CNAME")]
    Cname,
    #[serde(rename = "SOA")]
    Soa,
}

impl RecordType {
    /// The types a scenario can write (SOA is generated per zone).
    pub const WRITABLE: [RecordType; 6] = [
        RecordType::A,
        RecordType::Aaaa,
        RecordType::Mx,
        RecordType::Txt,
        RecordType::Ptr,
        RecordType::Cname,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Mx => "MX",
            RecordType::Txt => "TXT",
            RecordType::Ptr => "PTR",
            RecordType::Cname => "CNAME",
            RecordType::Soa => "SOA",
        }
    }

    /// Parses a type name (any case).
    pub fn parse(s: &str) -> Option<RecordType> {
        let up = s.trim().to_ascii_uppercase();
        [
            RecordType::A,
            RecordType::Aaaa,
            RecordType::Mx,
            RecordType::Txt,
            RecordType::Ptr,
            RecordType::Cname,
            RecordType::Soa,
        ]
        .into_iter()
        .find(|t| t.name() == up)
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The data of one record; names are in normal form ([`name::normalize`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "type", content = "value")]
pub enum RecordData {
    A(Ipv4Addr),
    #[serde(rename = "AAAA")]
    Aaaa(Ipv6Addr),
    #[serde(rename = "MX")]
    Mx {
        preference: u16,
        exchange: String,
    },
    #[serde(rename = "TXT")]
    Txt(String),
    #[serde(rename = "PTR")]
    Ptr(String),
    #[serde(rename = "CNAME")]
    Cname(String),
    /// Generated for every zone: primary name server, responsible mailbox, serial.
    #[serde(rename = "SOA")]
    Soa {
        mname: String,
        rname: String,
        serial: u32,
        minimum: u32,
    },
}

impl RecordData {
    pub fn record_type(&self) -> RecordType {
        match self {
            RecordData::A(_) => RecordType::A,
            RecordData::Aaaa(_) => RecordType::Aaaa,
            RecordData::Mx { .. } => RecordType::Mx,
            RecordData::Txt(_) => RecordType::Txt,
            RecordData::Ptr(_) => RecordType::Ptr,
            RecordData::Cname(_) => RecordType::Cname,
            RecordData::Soa { .. } => RecordType::Soa,
        }
    }

    /// Parses zone-file-style text for a record of this type.
    pub fn parse(rtype: RecordType, value: &str) -> Result<RecordData, String> {
        let v = value.trim();
        match rtype {
            RecordType::A => v.parse::<Ipv4Addr>().map(RecordData::A).map_err(|_| {
                format!(
                    "'{value}' is not an IPv4 address (an A record holds one, e.g. \"127.0.0.2\")"
                )
            }),
            RecordType::Aaaa => v.parse::<Ipv6Addr>().map(RecordData::Aaaa).map_err(|_| {
                format!("'{value}' is not an IPv6 address (an AAAA record holds one, e.g. \"::1\")")
            }),
            RecordType::Mx => {
                let mut parts = v.split_whitespace();
                let (Some(pref), Some(host), None) = (parts.next(), parts.next(), parts.next())
                else {
                    return Err(format!(
                        "MX value '{value}' must be \"PREFERENCE HOST\", e.g. \"10 mx.example.test\""
                    ));
                };
                let preference = pref.parse::<u16>().map_err(|_| {
                    format!("MX preference '{pref}' is not a number from 0 to 65535")
                })?;
                Ok(RecordData::Mx {
                    preference,
                    exchange: name::normalize(host)?,
                })
            }
            RecordType::Txt => {
                if value.len() > 4000 {
                    return Err(
                        "a TXT value longer than 4000 bytes does not fit a DNS answer".into(),
                    );
                }
                if !value.is_ascii() {
                    return Err(format!("TXT value '{value}' must be ASCII"));
                }
                Ok(RecordData::Txt(value.to_string()))
            }
            RecordType::Ptr => Ok(RecordData::Ptr(name::normalize(v)?)),
            RecordType::Cname => Ok(RecordData::Cname(name::normalize(v)?)),
            RecordType::Soa => {
                Err("SOA records are generated for every zone; write the others".into())
            }
        }
    }

    /// The name this record points at (MX exchange, CNAME or PTR target).
    pub fn target(&self) -> Option<&str> {
        match self {
            RecordData::Mx { exchange, .. } => Some(exchange),
            RecordData::Cname(t) | RecordData::Ptr(t) => Some(t),
            _ => None,
        }
    }
}

impl fmt::Display for RecordData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordData::A(a) => write!(f, "{a}"),
            RecordData::Aaaa(a) => write!(f, "{a}"),
            RecordData::Mx {
                preference,
                exchange,
            } => write!(f, "{preference} {exchange}"),
            RecordData::Txt(t) => write!(f, "\"{t}\""),
            RecordData::Ptr(n) | RecordData::Cname(n) => write!(f, "{n}"),
            RecordData::Soa {
                mname,
                rname,
                serial,
                minimum,
            } => write!(f, "{mname} {rname} {serial} {minimum}"),
        }
    }
}

/// One record of a zone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct DnsRecord {
    /// Owner name, normal form.
    pub name: String,
    pub ttl: u32,
    #[serde(flatten)]
    pub data: RecordData,
}

impl fmt::Display for DnsRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.name,
            self.ttl,
            self.data.record_type(),
            self.data
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_type() {
        assert_eq!(
            RecordData::parse(RecordType::Mx, "10 MX.Example.test.").unwrap(),
            RecordData::Mx {
                preference: 10,
                exchange: "mx.example.test".into()
            }
        );
        assert_eq!(
            RecordData::parse(RecordType::A, "127.0.0.2").unwrap(),
            RecordData::A(Ipv4Addr::new(127, 0, 0, 2))
        );
        assert!(RecordData::parse(RecordType::Aaaa, "::1").is_ok());
        assert_eq!(
            RecordData::parse(RecordType::Txt, "v=spf1 -all").unwrap(),
            RecordData::Txt("v=spf1 -all".into())
        );
        assert_eq!(
            RecordData::parse(RecordType::Cname, "mx.example.test")
                .unwrap()
                .target(),
            Some("mx.example.test")
        );
    }

    #[test]
    fn bad_values_say_what_is_expected() {
        let e = RecordData::parse(RecordType::A, "127.0.0.300").unwrap_err();
        assert!(e.contains("not an IPv4 address"), "{e}");
        assert!(RecordData::parse(RecordType::A, "::1").is_err());
        let e = RecordData::parse(RecordType::Mx, "mx.example.test").unwrap_err();
        assert!(e.contains("PREFERENCE HOST"), "{e}");
        let e = RecordData::parse(RecordType::Mx, "99999 mx.example.test").unwrap_err();
        assert!(e.contains("0 to 65535"), "{e}");
        assert!(RecordData::parse(RecordType::Soa, "x").is_err());
        assert!(RecordData::parse(RecordType::Txt, "größe").is_err());
    }

    #[test]
    fn type_names_round_trip() {
        for t in RecordType::WRITABLE {
            assert_eq!(RecordType::parse(&t.name().to_lowercase()), Some(t));
        }
        assert_eq!(RecordType::parse("SRV"), None);
    }
}
