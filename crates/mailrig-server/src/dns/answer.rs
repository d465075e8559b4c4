//! What the DNS server answers: a pure function of the world's zones, the
//! query and the DNS fault that fired, ready to be written by hickory.
//!
//! Names of the world: answers with the AA bit; a name with no record of
//! the type: NOERROR with the zone's SOA (NODATA); an unknown name inside a
//! zone: NXDOMAIN with the SOA; a name outside every zone: REFUSED (this is
//! not a resolver). Faults: `servfail`, `timeout` (nothing is sent),
//! `truncate` (UDP only: TC and no records, so the client asks again over
//! TCP), `answer` (other records of the query's type at the query's name).

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, MX, PTR, SOA, TXT};
use hickory_server::proto::rr::{Name, RData, Record, RecordType as HType};
use mailrig_core::dns::zone::QueryType;
use mailrig_core::dns::{DnsRecord, Lookup, RecordData, RecordType, Zones};
use mailrig_core::fault::DnsFault;

/// TTL of the records an `answer` fault makes up.
const FAULT_TTL: u32 = 60;

/// What to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Nothing at all (a `timeout` fault).
    Nothing,
    Message {
        rcode: ResponseCode,
        authoritative: bool,
        truncated: bool,
        answers: Vec<Record>,
        /// The zone's SOA of a negative answer.
        soa: Vec<Record>,
    },
}

impl Reply {
    fn error(rcode: ResponseCode, authoritative: bool) -> Reply {
        Reply::Message {
            rcode,
            authoritative,
            truncated: false,
            answers: Vec::new(),
            soa: Vec::new(),
        }
    }
}

/// The world's record type a query type asks for.
pub fn query_type(t: HType) -> QueryType {
    match t {
        HType::A => QueryType::Of(RecordType::A),
        HType::AAAA => QueryType::Of(RecordType::Aaaa),
        HType::MX => QueryType::Of(RecordType::Mx),
        HType::TXT => QueryType::Of(RecordType::Txt),
        HType::PTR => QueryType::Of(RecordType::Ptr),
        HType::CNAME => QueryType::Of(RecordType::Cname),
        HType::SOA => QueryType::Of(RecordType::Soa),
        HType::ANY => QueryType::Any,
        _ => QueryType::Other,
    }
}

/// The answer to one query. `qname` is the query's name as asked (its case
/// is kept in made-up answers); `udp` says whether TC may be set.
pub fn reply(
    zones: &Zones,
    qname: &Name,
    qtype: HType,
    fault: Option<&DnsFault>,
    udp: bool,
) -> Reply {
    let lower = qname.to_lowercase().to_ascii();
    let lower = lower.trim_end_matches('.');
    match fault {
        Some(DnsFault::Timeout) => return Reply::Nothing,
        Some(DnsFault::ServFail) => return Reply::error(ResponseCode::ServFail, false),
        Some(DnsFault::Truncate) if udp => {
            return Reply::Message {
                rcode: ResponseCode::NoError,
                authoritative: true,
                truncated: true,
                answers: Vec::new(),
                soa: Vec::new(),
            };
        }
        Some(DnsFault::Answer(data)) => {
            let answers: Option<Vec<Record>> = data
                .iter()
                .map(|d| {
                    record(&DnsRecord {
                        name: lower.to_string(),
                        ttl: FAULT_TTL,
                        data: d.clone(),
                    })
                })
                .collect();
            return match answers {
                Some(answers) => Reply::Message {
                    rcode: ResponseCode::NoError,
                    authoritative: true,
                    truncated: false,
                    answers,
                    soa: Vec::new(),
                },
                None => Reply::error(ResponseCode::ServFail, false),
            };
        }
        _ => {}
    }
    let negative = |soa: &DnsRecord, rcode| match record(soa) {
        Some(soa) => Reply::Message {
            rcode,
            authoritative: true,
            truncated: false,
            answers: Vec::new(),
            soa: vec![soa],
        },
        None => Reply::error(ResponseCode::ServFail, false),
    };
    match zones.lookup(lower, query_type(qtype)) {
        Lookup::Refused => Reply::error(ResponseCode::Refused, false),
        Lookup::NxDomain { soa } => negative(soa, ResponseCode::NXDomain),
        Lookup::NoData { soa } => negative(soa, ResponseCode::NoError),
        Lookup::Answer(records) => match records.iter().map(|r| record(r)).collect() {
            Some(answers) => Reply::Message {
                rcode: ResponseCode::NoError,
                authoritative: true,
                truncated: false,
                answers,
                soa: Vec::new(),
            },
            None => Reply::error(ResponseCode::ServFail, false),
        },
    }
}

fn fqdn(name: &str) -> Option<Name> {
    Name::from_ascii(format!("{name}.")).ok()
}

/// A world record as a hickory record (`None` only for a name hickory
/// refuses, which the scenario's name checks rule out).
pub fn record(r: &DnsRecord) -> Option<Record> {
    let rdata = match &r.data {
        RecordData::A(a) => RData::A(A(*a)),
        RecordData::Aaaa(a) => RData::AAAA(AAAA(*a)),
        RecordData::Mx {
            preference,
            exchange,
        } => RData::MX(MX::new(*preference, fqdn(exchange)?)),
        RecordData::Txt(t) => RData::TXT(TXT::new(txt_strings(t))),
        RecordData::Ptr(n) => RData::PTR(PTR(fqdn(n)?)),
        RecordData::Cname(n) => RData::CNAME(CNAME(fqdn(n)?)),
        RecordData::Soa {
            mname,
            rname,
            serial,
            minimum,
        } => RData::SOA(SOA::new(
            fqdn(mname)?,
            fqdn(rname)?,
            *serial,
            3600,
            600,
            86400,
            *minimum,
        )),
    };
    Some(Record::from_rdata(fqdn(&r.name)?, r.ttl, rdata))
}

/// A TXT value as character-strings of at most 255 bytes (DKIM keys are longer).
fn txt_strings(t: &str) -> Vec<String> {
    if t.is_empty() {
        return vec![String::new()];
    }
    t.as_bytes()
        .chunks(255)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect()
}

/// The code's name as the journal and metrics write it.
pub fn rcode_name(rcode: ResponseCode) -> &'static str {
    match rcode {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NotImp => "NOTIMP",
        _ => "FORMERR",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailrig_core::dns::{DnsSpec, build_zones, implicit_hosts};

    fn zones() -> Zones {
        let hosts = implicit_hosts(["example.test"], "127.0.0.1".parse().unwrap());
        build_zones(["example.test"], &hosts, &DnsSpec::default())
            .unwrap()
            .0
    }

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn rcode(r: &Reply) -> ResponseCode {
        match r {
            Reply::Message { rcode, .. } => *rcode,
            Reply::Nothing => panic!("no reply"),
        }
    }

    #[test]
    fn authoritative_answers_and_negative_ones() {
        let z = zones();
        let Reply::Message {
            answers,
            authoritative,
            ..
        } = reply(&z, &n("Example.TEST."), HType::MX, None, true)
        else {
            panic!()
        };
        assert!(authoritative);
        assert_eq!(answers[0].data.to_string(), "10 mx.example.test.");
        let nx = reply(&z, &n("nope.example.test."), HType::A, None, true);
        assert_eq!(rcode(&nx), ResponseCode::NXDomain);
        let Reply::Message { soa, .. } = nx else {
            panic!()
        };
        assert_eq!(soa.len(), 1);
        let refused = reply(&z, &n("example.org."), HType::A, None, true);
        assert_eq!(rcode(&refused), ResponseCode::Refused);
        let nodata = reply(&z, &n("example.test."), HType::SRV, None, true);
        assert_eq!(rcode(&nodata), ResponseCode::NoError);
    }

    #[test]
    fn faults_change_the_answer() {
        let z = zones();
        let q = n("example.test.");
        assert_eq!(
            reply(&z, &q, HType::MX, Some(&DnsFault::Timeout), true),
            Reply::Nothing
        );
        assert_eq!(
            rcode(&reply(&z, &q, HType::MX, Some(&DnsFault::ServFail), true)),
            ResponseCode::ServFail
        );
        let Reply::Message {
            truncated, answers, ..
        } = reply(&z, &q, HType::MX, Some(&DnsFault::Truncate), true)
        else {
            panic!()
        };
        assert!(truncated && answers.is_empty());
        // Over TCP, truncate answers normally.
        let Reply::Message {
            truncated, answers, ..
        } = reply(&z, &q, HType::MX, Some(&DnsFault::Truncate), false)
        else {
            panic!()
        };
        assert!(!truncated && answers.len() == 1);
        let wrong = DnsFault::Answer(vec![
            RecordData::parse(RecordType::Mx, "10 mx.wrong.test").unwrap(),
        ]);
        let Reply::Message { answers, .. } = reply(&z, &q, HType::MX, Some(&wrong), true) else {
            panic!()
        };
        assert_eq!(answers[0].data.to_string(), "10 mx.wrong.test.");
    }

    #[test]
    fn long_txt_values_are_split_into_character_strings() {
        let v = "k".repeat(600);
        let parts = txt_strings(&v);
        assert_eq!(
            parts.iter().map(String::len).collect::<Vec<_>>(),
            [255, 255, 90]
        );
        assert_eq!(parts.concat(), v);
    }
}
