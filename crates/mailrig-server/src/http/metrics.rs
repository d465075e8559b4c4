//! `/metrics`: the server's counters in the Prometheus text format (0.0.4),
//! plus gauges computed from the store at scrape time: messages stored per
//! domain, and how many journal entries were let go.

use crate::sender_auth::metrics::AuthMetrics;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::extract::{ApiQuery, NoParams};
use crate::state::{DomainCounters, DomainMetrics, Metrics, ServerState};

pub async fn metrics(
    State(state): State<Arc<ServerState>>,
    _: ApiQuery<NoParams>,
) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&state),
    )
}

/// Per-host series of a world of `[[host]]`s: each host's own counters and
/// what its store holds (a backup MX's queue, a provider's uncollected mail).
fn render_hosts(out: &mut String, hosts: &[(String, std::sync::Weak<ServerState>)]) {
    type Pick = fn(&ServerState) -> u64;
    let series: [(&str, &str, &str, Pick); 4] = [
        (
            "mailrig_host_connections_total",
            "counter",
            "Connections accepted, by host of the world.",
            |s| Metrics::get(&s.metrics.connections_total),
        ),
        (
            "mailrig_host_messages_accepted_total",
            "counter",
            "Messages accepted with 250 at the end of DATA, by host of the world.",
            |s| Metrics::get(&s.metrics.messages_accepted),
        ),
        (
            "mailrig_host_messages_delivered_total",
            "counter",
            "Copies stored into mailboxes (SMTP and collectors), by host of the world.",
            |s| Metrics::get(&s.metrics.messages_delivered),
        ),
        (
            "mailrig_host_stored_messages",
            "gauge",
            "Messages held now in a host's store (a backup MX's queue included).",
            |s| s.store.total_messages() as u64,
        ),
    ];
    for (name, kind, help, pick) in series {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (host, state) in hosts {
            if let Some(s) = state.upgrade() {
                let _ = writeln!(out, "{name}{{host=\"{}\"}} {}", label(host), pick(&s));
            }
        }
    }
}

/// The exposition text.
pub fn render(state: &ServerState) -> String {
    let m = &state.metrics;
    let mut out = String::with_capacity(2048);
    let counters: [(&str, &str, &str, &AtomicU64); 8] = [
        (
            "mailrig_connections_total",
            "counter",
            "Connections accepted by all listeners.",
            &m.connections_total,
        ),
        (
            "mailrig_connections_active",
            "gauge",
            "Connections open now.",
            &m.connections_active,
        ),
        (
            "mailrig_connections_refused_total",
            "counter",
            "Connections refused because of the connection limit.",
            &m.connections_refused,
        ),
        (
            "mailrig_messages_accepted_total",
            "counter",
            "Messages accepted with 250 at the end of DATA.",
            &m.messages_accepted,
        ),
        (
            "mailrig_messages_delivered_total",
            "counter",
            "Copies stored into mailboxes (one per target mailbox).",
            &m.messages_delivered,
        ),
        (
            "mailrig_messages_rejected_total",
            "counter",
            "Messages refused at the end of DATA.",
            &m.messages_rejected,
        ),
        (
            "mailrig_recipients_rejected_total",
            "counter",
            "Recipients refused at RCPT.",
            &m.recipients_rejected,
        ),
        (
            "mailrig_bytes_received_total",
            "counter",
            "Message bytes received over SMTP.",
            &m.bytes_received,
        ),
    ];
    for (name, kind, help, counter) in counters {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {}", Metrics::get(counter));
    }

    let _ = writeln!(
        out,
        "# HELP mailrig_stored_messages Messages held now in the mailboxes of a domain (all folders)."
    );
    let _ = writeln!(out, "# TYPE mailrig_stored_messages gauge");
    for d in &state.world.domains {
        let n: usize = d
            .mailboxes
            .iter()
            .map(|id| {
                state
                    .store
                    .mailbox(*id)
                    .lock()
                    .folders
                    .values()
                    .map(|f| f.messages.len())
                    .sum::<usize>()
            })
            .sum();
        let _ = writeln!(
            out,
            "mailrig_stored_messages{{domain=\"{}\"}} {n}",
            label(&d.name)
        );
    }

    if let Some(hosts) = state.world_hosts.get() {
        render_hosts(&mut out, hosts);
    }

    let _ = writeln!(
        out,
        "# HELP mailrig_connections_by_listener_total Connections accepted, by listener."
    );
    let _ = writeln!(out, "# TYPE mailrig_connections_by_listener_total counter");
    for (name, c) in Metrics::LISTENERS.iter().zip(&m.connections_by_listener) {
        let _ = writeln!(
            out,
            "mailrig_connections_by_listener_total{{listener=\"{name}\"}} {}",
            Metrics::get(c)
        );
    }

    type Pick = fn(&DomainCounters) -> &AtomicU64;
    let by_domain: [(&str, &str, Pick); 4] = [
        (
            "mailrig_domain_recipients_accepted_total",
            "Recipients accepted at RCPT, by recipient domain.",
            |c| &c.recipients_accepted,
        ),
        (
            "mailrig_domain_recipients_rejected_total",
            "Recipients refused at RCPT, by recipient domain.",
            |c| &c.recipients_rejected,
        ),
        (
            "mailrig_domain_delivered_total",
            "Copies stored, by the domain of the mailbox they went to.",
            |c| &c.delivered,
        ),
        (
            "mailrig_domain_dropped_total",
            "Copies accepted and thrown away by a drop fault, by recipient domain.",
            |c| &c.dropped,
        ),
    ];
    for (name, help, pick) in by_domain {
        let _ = writeln!(
            out,
            "# HELP {name} {help} Other domains count as \"{}\".",
            DomainMetrics::OTHER
        );
        let _ = writeln!(out, "# TYPE {name} counter");
        for (domain, c) in m.by_domain.iter() {
            let _ = writeln!(
                out,
                "{name}{{domain=\"{}\"}} {}",
                label(domain),
                Metrics::get(pick(c))
            );
        }
    }

    let _ = writeln!(
        out,
        "# HELP mailrig_faults_fired_total How many times each fault rule fired."
    );
    let _ = writeln!(out, "# TYPE mailrig_faults_fired_total counter");
    for rule in state.faults.read().rules() {
        let _ = writeln!(
            out,
            "mailrig_faults_fired_total{{rule=\"{}\"}} {}",
            label(&rule.name),
            rule.fired()
        );
    }

    let _ = writeln!(
        out,
        "# HELP mailrig_journal_dropped_total Journal entries let go because it is bounded."
    );
    let _ = writeln!(out, "# TYPE mailrig_journal_dropped_total counter");
    let _ = writeln!(
        out,
        "mailrig_journal_dropped_total {}",
        state.journal.dropped()
    );
    state.dns.render(&mut out);
    render_auth(&mut out, state);
    out
}

/// The sender authentication counters: of each host that checks, or of
/// the one server.
fn render_auth(out: &mut String, state: &ServerState) {
    match state.world_hosts.get() {
        Some(hosts) => {
            let states: Vec<(String, std::sync::Arc<ServerState>)> = hosts
                .iter()
                .filter_map(|(h, s)| Some((label(h), s.upgrade()?)))
                .filter(|(_, s)| s.sender_auth.get().is_some())
                .collect();
            if !states.is_empty() {
                let rows: Vec<(Option<&str>, &AuthMetrics)> = states
                    .iter()
                    .map(|(h, s)| (Some(h.as_str()), &s.auth))
                    .collect();
                AuthMetrics::render(out, &rows);
            }
        }
        None if state.sender_auth.get().is_some() => {
            AuthMetrics::render(out, &[(None, &state.auth)]);
        }
        None => {}
    }
}

/// Escapes a label value (backslash, double quote, line feed).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
