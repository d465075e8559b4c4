//! What arrived where in a world of hosts: for every copy a host holds (a
//! mailbox host's stored mail, a backup MX's or relay's queue), the path it
//! took through the world, read from the `Received:` lines mailrig's hosts
//! wrote (`by HOST (mailrig) with ESMTPS`), whether each hop ran over TLS,
//! the `Authentication-Results:` each host wrote, and the sender
//! authentication results of the host that holds it. This is the report a
//! test of an MTA sending into the world asserts on:
//! `GET /api/v1/world/arrivals[?domain=D]`, grouped by domain.
//!
//! The trace-header reading is a pure function of the message bytes
//! ([`trace_path`]); [`report`] walks the hosts' stores. A world without
//! `[[host]]` is reported as one host named after the server's hostname.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use axum::Json;
use axum::extract::State;
use mailrig_core::sender_auth::AuthResults;
use mailrig_core::store::INBOX;
use serde::{Deserialize, Serialize};

use crate::http::error::ApiError;
use crate::http::extract::{ApiQuery, QueryParams};
use crate::state::ServerState;

/// One host of the world as the report names it.
#[derive(Debug, Clone)]
pub struct HostEntry {
    pub name: String,
    /// Its DNS name, which its `Received:` and `Authentication-Results:` carry.
    pub hostname: String,
    /// `mailbox`, `backup-mx` or `relay`.
    pub role: &'static str,
    pub state: Weak<ServerState>,
}

/// One hop of a message's way through the world: a `Received:` line one of
/// mailrig's hosts wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hop {
    /// The world's host that received it (`None`: a hostname no host has).
    pub host: Option<String>,
    /// The receiving host's name as the line says (`by ...`).
    pub by: String,
    /// The client's EHLO name and IP address (`from HELO (IP [IP])`).
    pub from_helo: String,
    pub from_ip: String,
    /// The protocol word: `SMTP`, `ESMTP`, `ESMTPS`, `ESMTPA`, `ESMTPSA`.
    pub with: String,
    /// The hop ran over TLS (`with ESMTPS`/`ESMTPSA`).
    pub tls: bool,
    /// The `Authentication-Results:` value this host wrote, if it checked.
    pub authentication_results: Option<String>,
}

/// One copy held by one host.
#[derive(Debug, Clone, Serialize)]
pub struct Arrival {
    /// The host holding it now.
    pub host: String,
    /// `stored` (in a mailbox host's mailbox) or `queued` (at a backup MX or
    /// relay, waiting to be forwarded).
    pub held: &'static str,
    pub mailbox: String,
    pub uid: u32,
    pub message_id: Option<String>,
    pub mail_from: Option<String>,
    /// The first host of the world on its way in (the one the sending MTA
    /// reached), and whether that hop ran over TLS.
    pub entered_at: Option<String>,
    pub tls: bool,
    /// The hosts it went through, in order (the holder last).
    pub path: Vec<Hop>,
    /// The checks of the host holding it (its envelope's results; absent
    /// when that host does not check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<Arc<AuthResults>>,
}

/// The copies of one domain's mailboxes, held by any host.
#[derive(Debug, Clone, Serialize)]
pub struct DomainArrivals {
    pub domain: String,
    pub copies: Vec<Arrival>,
}

/// The report: every domain with copies, sorted by name.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub domains: Vec<DomainArrivals>,
}

/// The hosts the report walks: the world's hosts, or the one server.
fn hosts_of(state: &Arc<ServerState>) -> Vec<(HostEntry, Arc<ServerState>)> {
    match state.world_directory.get() {
        Some(hosts) => hosts
            .iter()
            .filter_map(|h| Some((h.clone(), h.state.upgrade()?)))
            .collect(),
        None => vec![(
            HostEntry {
                name: state.world.identity.hostname.clone(),
                hostname: state.world.identity.hostname.clone(),
                role: "mailbox",
                state: Arc::downgrade(state),
            },
            Arc::clone(state),
        )],
    }
}

/// Every copy every host holds (of `domain` only, when given).
pub fn report(state: &Arc<ServerState>, domain: Option<&str>) -> Report {
    let hosts = hosts_of(state);
    let by_hostname: BTreeMap<String, String> = hosts
        .iter()
        .map(|(h, _)| (h.hostname.to_ascii_lowercase(), h.name.clone()))
        .collect();
    let mut domains: BTreeMap<String, Vec<Arrival>> = BTreeMap::new();
    for (entry, st) in &hosts {
        for (id, mailbox) in st.store.mailboxes() {
            let address = &st.world.mailbox(id).address;
            let d = address.domain().to_ascii_lowercase();
            if domain.is_some_and(|want| !want.eq_ignore_ascii_case(&d)) {
                continue;
            }
            let Ok(messages) = mailbox.messages(INBOX) else {
                continue;
            };
            for m in messages {
                let mut path = trace_path(&m.raw);
                for hop in &mut path {
                    hop.host = by_hostname.get(&hop.by.to_ascii_lowercase()).cloned();
                }
                let entered_at = path.first().and_then(|h| h.host.clone());
                let tls = path
                    .first()
                    .map_or_else(|| m.envelope.as_ref().is_some_and(|e| e.tls), |h| h.tls);
                domains.entry(d.clone()).or_default().push(Arrival {
                    host: entry.name.clone(),
                    held: if entry.role == "mailbox" {
                        "stored"
                    } else {
                        "queued"
                    },
                    mailbox: address.to_string(),
                    uid: m.uid,
                    message_id: crate::delivered::message_id(&m.raw),
                    mail_from: m.envelope.as_ref().map(|e| e.mail_from.to_string()),
                    entered_at,
                    tls,
                    path,
                    auth: m.envelope.as_ref().and_then(|e| e.auth.clone()),
                });
            }
        }
    }
    Report {
        domains: domains
            .into_iter()
            .map(|(domain, copies)| DomainArrivals { domain, copies })
            .collect(),
    }
}

/// The header fields of a message, unfolded (`name`, `value`), in order.
fn header_fields(raw: &[u8]) -> Vec<(String, String)> {
    let end = memchr::memmem::find(raw, b"\r\n\r\n")
        .map(|i| i + 2)
        .or_else(|| memchr::memmem::find(raw, b"\n\n").map(|i| i + 1))
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in head.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = fields.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    fields
}

/// The hops of a message through mailrig's hosts, oldest first: its
/// `Received:` lines written by mailrig (`by HOST (mailrig) with WORD`),
/// each with the `Authentication-Results:` whose authserv-id is that host.
/// Lines other servers wrote are left out; `host` is not filled in here.
pub fn trace_path(raw: &[u8]) -> Vec<Hop> {
    let fields = header_fields(raw);
    let results: Vec<(String, String)> = fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Authentication-Results"))
        .map(|(_, v)| {
            let id = v
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            (id, v.clone())
        })
        .collect();
    let mut hops: Vec<Hop> = fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Received"))
        .filter_map(|(_, v)| mailrig_hop(v))
        .collect();
    // Trace fields are prepended: the newest is on top.
    hops.reverse();
    for hop in &mut hops {
        let by = hop.by.to_ascii_lowercase();
        hop.authentication_results = results
            .iter()
            .find(|(id, _)| *id == by)
            .map(|(_, v)| v.clone());
    }
    hops
}

/// One `Received:` value as mailrig writes it
/// (`from HELO (IP [IP]) by HOST (mailrig) with WORD id QID ...`), or `None`.
fn mailrig_hop(value: &str) -> Option<Hop> {
    let words: Vec<&str> = value.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "(mailrig)")?;
    if at < 2 || words[at - 2] != "by" || words.get(at + 1) != Some(&"with") {
        return None;
    }
    let with = words.get(at + 2)?.trim_end_matches(';').to_string();
    let from_helo = match words.first() {
        Some(&"from") => words.get(1).copied().unwrap_or("").to_string(),
        _ => String::new(),
    };
    let from_ip = words[..at]
        .iter()
        .find(|w| w.starts_with('['))
        .map(|w| {
            w.trim_matches(|c| matches!(c, '[' | ']' | ')' | '('))
                .to_string()
        })
        .unwrap_or_default();
    Some(Hop {
        host: None,
        by: words[at - 1].to_string(),
        from_helo,
        from_ip,
        tls: with.starts_with("ESMTPS"),
        with,
        authentication_results: None,
    })
}

/// `?domain=` of `GET /api/v1/world/arrivals`.
#[derive(Debug, Deserialize)]
pub struct ArrivalParams {
    domain: Option<String>,
}

impl QueryParams for ArrivalParams {
    const ACCEPTED: &'static [&'static str] = &["domain"];
}

/// `GET /api/v1/world/arrivals`: [`report`] as JSON; an unknown `domain`
/// is a 404 naming it.
pub async fn handler(
    State(state): State<Arc<ServerState>>,
    ApiQuery(q): ApiQuery<ArrivalParams>,
) -> Result<Json<Report>, ApiError> {
    if let Some(d) = &q.domain {
        let known = hosts_of(&state)
            .iter()
            .any(|(_, st)| st.world.domain(d).is_some());
        if !known {
            return Err(ApiError::UnknownDomain(d.chars().take(100).collect()));
        }
    }
    Ok(Json(report(&state, q.domain.as_deref())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::trace::Trace;

    fn trace(helo: &str, ip: &str, by: &str, with: &str, rcpt: Option<&str>) -> Vec<u8> {
        let mut out = Vec::new();
        Trace {
            mail_from: "a@firma.test",
            helo,
            peer_ip: ip,
            hostname: by,
            with,
            queue_id: "Q1",
            for_rcpt: rcpt,
            date: "Wed, 2 Dec 2026 18:00:00 +0000",
        }
        .write(&mut out);
        out
    }

    #[test]
    fn the_path_is_read_from_the_trace_lines_mailrig_writes_oldest_first() {
        // A backup MX's copy, forwarded to the store: the store's lines on
        // top of the backup's, and a foreign Received at the bottom.
        let mut raw = trace("mx2.b.test", "127.0.0.1", "store.b.test", "ESMTP", None);
        raw.extend_from_slice(b"Authentication-Results: store.b.test; spf=fail\r\n");
        // The backup's Return-Path was taken off when it forwarded.
        let backup = trace(
            "relay.firma.test",
            "127.9.9.9",
            "mx2.b.test",
            "ESMTPS",
            Some("x@b.test"),
        );
        let received = &backup[backup.windows(9).position(|w| w == b"Received:").unwrap()..];
        raw.extend_from_slice(received);
        raw.extend_from_slice(
            b"Authentication-Results: mx2.b.test;\r\n\tdkim=pass header.d=firma.test\r\n",
        );
        raw.extend_from_slice(
            b"Received: from client (localhost [127.0.0.1])\r\n\tby relay.firma.test (Postfix) with ESMTP id 1;\r\n\tWed, 2 Dec 2026\r\n",
        );
        raw.extend_from_slice(b"Subject: x\r\nReceived: in the body? no, still the header\r\n\r\nReceived: from body (x [1.2.3.4]) by no.test (mailrig) with ESMTPS id 2\r\n");
        let path = trace_path(&raw);
        assert_eq!(path.len(), 2, "{path:#?}");
        assert_eq!(path[0].by, "mx2.b.test");
        assert_eq!(path[0].from_helo, "relay.firma.test");
        assert_eq!(path[0].from_ip, "127.9.9.9");
        assert!(path[0].tls);
        assert_eq!(
            path[0].authentication_results.as_deref(),
            Some("mx2.b.test; dkim=pass header.d=firma.test")
        );
        assert_eq!(path[1].by, "store.b.test");
        assert_eq!(path[1].with, "ESMTP");
        assert!(!path[1].tls);
        assert_eq!(
            path[1].authentication_results.as_deref(),
            Some("store.b.test; spf=fail")
        );
    }

    #[test]
    fn odd_trace_lines_are_left_out_not_guessed() {
        for raw in [
            &b"Received: (mailrig)\r\n\r\n"[..],
            b"Received: by (mailrig) with\r\n\r\n",
            b"Received: from x by h (mailrig)\r\n\r\n",
            b"Received:\r\n",
            b"",
            b"\xff\xfe: \xff\r\n\r\n",
        ] {
            assert!(trace_path(raw).is_empty(), "{raw:?}");
        }
        let path = trace_path(&trace("", "::1", "h.test", "ESMTPSA", None));
        assert_eq!(path.len(), 1);
        assert!(path[0].tls);
        assert_eq!(path[0].from_ip, "::1");
    }
}
