//! hickory-server's `RequestHandler` for the world: one query in, the fault
//! plan asked at stage `dns`, the [`super::answer`] sent (or not), the
//! query journaled (`kind = "dns"`) and counted.

use std::sync::Arc;

use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use mailrig_core::dns::Zones;
use mailrig_core::fault::{Action, DnsFault, Facts, Stage};
use mailrig_core::journal::{DnsQuery, JournalEvent, JournalRecord};

use super::answer::{Reply, rcode_name, reply};
use crate::state::ServerState;

/// The largest UDP answer we send, whatever the client offers (the DNS
/// flag day 2020 size, which avoids IP fragmentation).
const MAX_UDP_PAYLOAD: u16 = 1232;

/// Answers queries from the world's zones.
#[derive(Debug)]
pub struct DnsHandler {
    zones: Arc<Zones>,
    state: Arc<ServerState>,
}

impl DnsHandler {
    pub fn new(zones: Arc<Zones>, state: Arc<ServerState>) -> DnsHandler {
        DnsHandler { zones, state }
    }

    /// The first DNS fault that fires for this query, with its rule's name.
    fn fault(
        &self,
        qname: &str,
        qtype: &str,
        client: std::net::IpAddr,
    ) -> Option<(String, DnsFault)> {
        let plan = self.state.faults.read();
        if !plan.has_stage(Stage::Dns) {
            return None;
        }
        let facts = Facts {
            client: Some(client),
            qname: Some(qname),
            qtype: Some(qtype),
            ..Facts::default()
        };
        plan.decide(Stage::Dns, &facts)
            .into_iter()
            .find_map(|f| match f.action {
                Action::Dns(d) => Some((f.rule, d)),
                _ => None,
            })
    }

    #[allow(clippy::too_many_arguments)]
    fn journal(
        &self,
        request: &Request,
        qname: String,
        qtype: String,
        rule: Option<String>,
        rcode: &str,
        answers: usize,
        truncated: bool,
    ) {
        let tcp = request.protocol() != Protocol::Udp;
        self.state.dns.count(rcode, tcp, truncated);
        self.state.journal.record(JournalRecord {
            stage: Stage::Dns,
            rule: rule.map(Into::into),
            message_id: None,
            mail_from: None,
            rcpt: None,
            peer: Some(request.src().to_string().into()),
            event: JournalEvent::Dns(Box::new(DnsQuery {
                qname,
                qtype,
                rcode: rcode.to_string(),
                answers,
                transport: if tcp { "tcp" } else { "udp" }.to_string(),
                truncated,
            })),
        });
    }
}

fn header(request: &Request, rcode: ResponseCode) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = rcode;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}

#[async_trait::async_trait]
impl RequestHandler for DnsHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let edns = request.edns.as_ref().map(|client| {
            let mut e = Edns::new();
            e.set_max_payload(client.max_payload().clamp(512, MAX_UDP_PAYLOAD));
            e
        });
        let builder = MessageResponseBuilder::new(&request.queries, edns.as_ref());
        let query = match request.request_info() {
            Ok(info) if request.metadata.op_code == OpCode::Query => info.query.clone(),
            Ok(_) | Err(_) => {
                let rcode = if request.metadata.op_code == OpCode::Query {
                    ResponseCode::FormErr
                } else {
                    ResponseCode::NotImp
                };
                let response = builder.error_msg(&request.metadata, rcode);
                self.journal(
                    request,
                    String::new(),
                    String::new(),
                    None,
                    "FORMERR",
                    0,
                    false,
                );
                return response_handle
                    .send_response(response)
                    .await
                    .unwrap_or_else(|_| header(request, rcode));
            }
        };
        let name = query.original().name().clone();
        let qtype = query.query_type();
        let qname = name.to_lowercase().to_ascii();
        let qname = qname.trim_end_matches('.').to_string();
        let qtype_s = qtype.to_string();
        let fired = self.fault(&qname, &qtype_s, request.src().ip());
        let (rule, fault) = match fired {
            Some((r, f)) => (Some(r), Some(f)),
            None => (None, None),
        };
        let udp = request.protocol() == Protocol::Udp;
        match reply(&self.zones, &name, qtype, fault.as_ref(), udp) {
            Reply::Nothing => {
                self.journal(request, qname, qtype_s, rule, "none", 0, false);
                header(request, ResponseCode::ServFail)
            }
            Reply::Message {
                rcode,
                authoritative,
                truncated,
                answers,
                soa,
            } => {
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.response_code = rcode;
                metadata.authoritative = authoritative;
                metadata.truncation = truncated;
                metadata.recursion_available = false;
                let response = builder.build(
                    metadata,
                    answers.iter(),
                    std::iter::empty(),
                    soa.iter(),
                    std::iter::empty(),
                );
                let info = match response_handle.send_response(response).await {
                    Ok(info) => info,
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot send a DNS answer");
                        header(request, ResponseCode::ServFail)
                    }
                };
                let sent = info.counts().answers as usize;
                self.journal(
                    request,
                    qname,
                    qtype_s,
                    rule,
                    rcode_name(rcode),
                    sent,
                    info.truncation,
                );
                info
            }
        }
    }
}
