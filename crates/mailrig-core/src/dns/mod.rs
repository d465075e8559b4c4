//! The world's DNS as pure data: the records of every zone (MX, A, AAAA, TXT,
//! PTR, CNAME, SOA), the defaults generated from the hosts that serve the
//! world's domains, and the lookup a DNS server answers from.
//!
//! * [`record`] — record types and their data, parsed from zone-file-style
//!   text (`"10 mx.example.test"`, `"127.0.0.2"`);
//! * [`name`] — domain-name checks and the one normal form (lower case, no
//!   trailing dot) every lookup compares;
//! * [`zone`] — [`ZoneHost`] (the input the generated defaults are a pure
//!   function of), [`build_zones`] (defaults + explicit records, explicit
//!   winning, validated) and [`Zones::lookup`];
//! * [`spec`] — the `[dns]` table of a scenario file.
//!
//! The server (`mailrig-server`'s `dns` module) turns a [`Lookup`] into a
//! DNS message; faults at stage `dns` are rules of the ordinary fault plan.

pub mod name;
pub mod record;
pub mod spec;
pub mod zone;

pub use record::{DnsRecord, RecordData, RecordType};
pub use spec::DnsSpec;
pub use zone::{ExplicitRecord, Lookup, ZoneError, ZoneHost, Zones, build_zones, implicit_hosts};
