//! The probe report and its three renderings: a table grouped by domain for
//! people, JSON with a stable schema (`docs/probe-report-schema.json`) for
//! programs, JUnit XML (one test case per mailbox) for CI dashboards.
//!
//! The JSON shape is a contract: every key is always present (`null` or `[]`
//! when empty), keys are only ever added, and `schema` names the version.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::verdict::{MailboxResult, Verdict};

/// Name and version of the JSON report format.
pub const REPORT_SCHEMA: &str = "mailrig.probe.report/v1";

/// The outcome of one probe run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// [`REPORT_SCHEMA`].
    pub schema: String,
    pub run_id: String,
    /// The target file (or the name given in code).
    pub target: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub duration_ms: u64,
    pub timeout_ms: u64,
    /// `true` when probing ended at the timeout with verdicts still open
    /// (those are `missing`).
    pub timed_out: bool,
    pub summary: Summary,
    /// Per domain, in name order.
    pub domains: Vec<DomainSummary>,
    /// Per mailbox, in target order.
    pub mailboxes: Vec<MailboxResult>,
    pub cleanup: Cleanup,
    /// Why the probe could not run (bad target, a server unreachable), or `null`. A report with an error
    /// has no mailboxes; it exists so that CI collectors reading the JSON or JUnit file see the failure.
    #[serde(default)]
    pub error: Option<String>,
    /// What this run could not look at, for the reader of the report (POP3
    /// mailboxes: only INBOX was searched). Added in v1.
    #[serde(default)]
    pub notes: Vec<String>,
    /// TLS per endpoint (version, certificate, name match, expiry warning);
    /// empty when no endpoint uses TLS. Added in v1.
    #[serde(default)]
    pub tls: Vec<crate::endpoint_tls::EndpointTls>,
}

/// Counts per verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub delivered: usize,
    pub missing: usize,
    pub rejected: usize,
    pub deferred: usize,
    pub misrouted: usize,
    pub duplicated: usize,
    pub altered: usize,
    pub unreadable: usize,
    /// Found in another folder of its own mailbox (`Junk`); added in v1.
    #[serde(default)]
    pub misfiled: usize,
    /// Found only at the mailbox's upstream (never collected); added in v1.
    #[serde(default, rename = "stuck-upstream")]
    pub stuck_upstream: usize,
    /// Delivered, failing a `--require`ment; added in v1.
    #[serde(default, rename = "delivered-unauthenticated")]
    pub delivered_unauthenticated: usize,
}

impl Counts {
    pub(crate) fn add(&mut self, v: Verdict) {
        *self.slot(v) += 1;
    }

    fn slot(&mut self, v: Verdict) -> &mut usize {
        match v {
            Verdict::Delivered => &mut self.delivered,
            Verdict::Missing => &mut self.missing,
            Verdict::Rejected => &mut self.rejected,
            Verdict::Deferred => &mut self.deferred,
            Verdict::Misrouted => &mut self.misrouted,
            Verdict::Duplicated => &mut self.duplicated,
            Verdict::Altered => &mut self.altered,
            Verdict::Unreadable => &mut self.unreadable,
            Verdict::Misfiled => &mut self.misfiled,
            Verdict::StuckUpstream => &mut self.stuck_upstream,
            Verdict::DeliveredUnauthenticated => &mut self.delivered_unauthenticated,
        }
    }

    pub fn get(&self, v: Verdict) -> usize {
        match v {
            Verdict::Delivered => self.delivered,
            Verdict::Missing => self.missing,
            Verdict::Rejected => self.rejected,
            Verdict::Deferred => self.deferred,
            Verdict::Misrouted => self.misrouted,
            Verdict::Duplicated => self.duplicated,
            Verdict::Altered => self.altered,
            Verdict::Unreadable => self.unreadable,
            Verdict::Misfiled => self.misfiled,
            Verdict::StuckUpstream => self.stuck_upstream,
            Verdict::DeliveredUnauthenticated => self.delivered_unauthenticated,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub total: usize,
    pub all_delivered: bool,
    pub counts: Counts,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainSummary {
    pub domain: String,
    pub total: usize,
    pub counts: Counts,
}

/// What the prober did to leave the mailboxes as it found them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cleanup {
    /// `--keep`: probe messages were left in place.
    pub kept: bool,
    /// Probe messages deleted.
    pub deleted: usize,
    /// Probe messages seen but not deleted (kept, or deletion failed).
    pub left: usize,
    /// Problems worth a look (a mailbox that could not be cleaned).
    pub notes: Vec<String>,
}

/// The facts of a run that head its report.
#[derive(Debug, Clone)]
pub(crate) struct RunInfo {
    pub run_id: String,
    pub target: String,
    pub started_at: String,
    pub duration_ms: u64,
    pub timeout_ms: u64,
    pub timed_out: bool,
}

impl Report {
    pub(crate) fn new(info: RunInfo, mailboxes: Vec<MailboxResult>, cleanup: Cleanup) -> Report {
        let RunInfo {
            run_id,
            target,
            started_at,
            duration_ms,
            timeout_ms,
            timed_out,
        } = info;
        let mut counts = Counts::default();
        let mut per_domain: BTreeMap<String, (usize, Counts)> = BTreeMap::new();
        for m in &mailboxes {
            counts.add(m.verdict);
            let e = per_domain.entry(m.domain.clone()).or_default();
            e.0 += 1;
            e.1.add(m.verdict);
        }
        Report {
            schema: REPORT_SCHEMA.to_string(),
            run_id,
            target,
            started_at,
            duration_ms,
            timeout_ms,
            timed_out,
            summary: Summary {
                total: mailboxes.len(),
                all_delivered: counts.delivered == mailboxes.len(),
                counts,
            },
            domains: per_domain
                .into_iter()
                .map(|(domain, (total, counts))| DomainSummary {
                    domain,
                    total,
                    counts,
                })
                .collect(),
            mailboxes,
            cleanup,
            error: None,
            notes: Vec::new(),
            tls: Vec::new(),
        }
    }

    /// The report of a probe that could not run: no mailboxes, `error` set. Rendered as JSON it has every
    /// key of the schema; as JUnit it is one test case with an `<error>`, so a collector sees a failure
    /// instead of a missing file.
    pub fn could_not_run(target: &str, error: &str) -> Report {
        let mut report = Report::new(
            RunInfo {
                run_id: crate::message::RunId::random().to_string(),
                target: target.to_string(),
                started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                duration_ms: 0,
                timeout_ms: 0,
                timed_out: false,
            },
            Vec::new(),
            Cleanup::default(),
        );
        report.summary.all_delivered = false;
        report.error = Some(error.to_string());
        report
    }

    /// `true` when every mailbox is `delivered`.
    pub fn all_delivered(&self) -> bool {
        self.summary.all_delivered
    }

    /// 0 when every mailbox is delivered, 1 otherwise, 2 for the report of a
    /// probe that could not run ([`Report::could_not_run`]).
    pub fn exit_code(&self) -> u8 {
        if self.error.is_some() {
            2
        } else if self.all_delivered() {
            0
        } else {
            1
        }
    }

    /// The same report listing only the mailboxes not delivered (counts,
    /// domains and notes unchanged): what `--only-failures` shows.
    pub fn failures_only(&self) -> Report {
        let mut r = self.clone();
        r.mailboxes.retain(|m| m.verdict != Verdict::Delivered);
        r
    }

    /// Pretty JSON following [`REPORT_SCHEMA`].
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The one-line count of a domain: `2/25 delivered, 23 missing`.
    pub fn domain_line(d: &DomainSummary) -> String {
        let mut s = format!("{}/{} delivered", d.counts.delivered, d.total);
        for v in Verdict::ALL.into_iter().skip(1) {
            let n = d.counts.get(v);
            if n > 0 {
                let _ = write!(s, ", {n} {v}");
            }
        }
        s
    }

    /// The table for people; `colour` adds ANSI colours (for terminals).
    pub fn to_table(&self, colour: bool) -> String {
        if let Some(error) = &self.error {
            return format!(
                "mailrig probe {}  target {}  could not run: {error}\n",
                self.run_id, self.target
            );
        }
        let paint = |v: Verdict, text: &str| -> String {
            if !colour {
                return text.to_string();
            }
            let code = match v {
                Verdict::Delivered => "32",
                Verdict::Deferred
                | Verdict::Duplicated
                | Verdict::Altered
                | Verdict::DeliveredUnauthenticated => "33",
                _ => "31",
            };
            format!("\x1b[{code}m{text}\x1b[0m")
        };
        let bold = |t: &str| {
            if colour {
                format!("\x1b[1m{t}\x1b[0m")
            } else {
                t.to_string()
            }
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "mailrig probe {}  target {}  {} mailbox(es) in {:.1} s{}",
            self.run_id,
            self.target,
            self.summary.total,
            self.duration_ms as f64 / 1000.0,
            if self.timed_out {
                " (timeout reached)"
            } else {
                ""
            }
        );
        let addr_w = self
            .mailboxes
            .iter()
            .map(|m| m.address.len())
            .max()
            .unwrap_or(0)
            .max(8);
        let dom_w = self
            .domains
            .iter()
            .map(|d| d.domain.len())
            .max()
            .unwrap_or(0)
            .max(6);
        for d in &self.domains {
            out.push('\n');
            let worst = if d.counts.delivered == d.total {
                Verdict::Delivered
            } else {
                Verdict::Missing
            };
            let line = Self::domain_line(d);
            let _ = writeln!(
                out,
                "{}  {}",
                bold(&format!("{:<dom_w$}", d.domain)),
                paint(worst, &line)
            );
            for m in self.mailboxes.iter().filter(|m| m.domain == d.domain) {
                let detail = match m.verdict {
                    Verdict::Delivered => {
                        let mut d = m
                            .latency_ms
                            .map(|ms| format!("{:.2} s", ms as f64 / 1000.0))
                            .unwrap_or_default();
                        if !m.hops.is_empty() {
                            let hops: Vec<String> = m.hops.iter().map(|h| h.label()).collect();
                            let _ = write!(d, " ({})", hops.join(", "));
                        }
                        if let Some(a) = m.auth.as_ref().filter(|a| !a.is_empty()) {
                            let _ = write!(d, "  {}", a.summary());
                        }
                        d
                    }
                    _ => m.reason.clone(),
                };
                let _ = writeln!(
                    out,
                    "  {:<addr_w$}  {}  {}",
                    m.address,
                    paint(m.verdict, &format!("{:<10}", m.verdict_label())),
                    detail
                );
            }
        }
        out.push('\n');
        let total = Report::domain_line(&DomainSummary {
            domain: String::new(),
            total: self.summary.total,
            counts: self.summary.counts.clone(),
        });
        let _ = writeln!(out, "{} {}", bold("total"), total);
        if self.cleanup.kept {
            let _ = writeln!(out, "probe messages kept (--keep): {}", self.cleanup.left);
        } else if self.cleanup.deleted > 0 || self.cleanup.left > 0 {
            let _ = writeln!(
                out,
                "cleanup: {} probe message(s) deleted{}",
                self.cleanup.deleted,
                if self.cleanup.left > 0 {
                    format!(", {} left behind", self.cleanup.left)
                } else {
                    String::new()
                }
            );
        }
        for n in self.notes.iter().chain(&self.cleanup.notes) {
            let _ = writeln!(out, "note: {n}");
        }
        for t in &self.tls {
            let _ = writeln!(out, "tls: {}", t.line());
        }
        out
    }

    /// JUnit XML: a suite per domain, a test case per mailbox; `unreadable`
    /// is an error (the check could not be made), other non-delivered
    /// verdicts are failures.
    pub fn to_junit(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        if let Some(error) = &self.error {
            let _ = write!(
                out,
                "<testsuites name=\"mailrig probe {id}\" tests=\"1\" failures=\"0\" errors=\"1\" time=\"0.000\">\n  \
                 <testsuite name=\"mailrig probe\" tests=\"1\" failures=\"0\" errors=\"1\" timestamp=\"{at}\">\n    \
                 <testcase classname=\"mailrig probe\" name=\"probe {target}\" time=\"0.000\">\n      \
                 <error type=\"could-not-run\" message=\"{msg}\">{msg}</error>\n    </testcase>\n  </testsuite>\n</testsuites>\n",
                id = xml(&self.run_id),
                at = xml(&self.started_at),
                target = xml(&self.target),
                msg = xml(&format!("the probe could not run: {error}")),
            );
            return out;
        }
        let failures =
            self.summary.total - self.summary.counts.delivered - self.summary.counts.unreadable;
        let _ = writeln!(
            out,
            "<testsuites name=\"mailrig probe {}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{:.3}\">",
            xml(&self.run_id),
            self.summary.total,
            failures,
            self.summary.counts.unreadable,
            self.duration_ms as f64 / 1000.0
        );
        for d in &self.domains {
            let _ = writeln!(
                out,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" timestamp=\"{}\">",
                xml(&d.domain),
                d.total,
                d.total - d.counts.delivered - d.counts.unreadable,
                d.counts.unreadable,
                xml(&self.started_at)
            );
            for m in self.mailboxes.iter().filter(|m| m.domain == d.domain) {
                let time = m.latency_ms.map_or(0.0, |ms| ms as f64 / 1000.0);
                // Under --each-mx a mailbox is a test case per MX host.
                let name = match &m.via {
                    Some(mx) => format!("{} via {mx}", m.address),
                    None => m.address.clone(),
                };
                let _ = write!(
                    out,
                    "    <testcase classname=\"{}\" name=\"{}\" time=\"{time:.3}\"",
                    xml(&d.domain),
                    xml(&name)
                );
                let message = format!("{}: {}", m.verdict, m.reason);
                // spf/dkim/dmarc of the copy read back, as test case properties.
                let properties = match &m.auth {
                    Some(a) => {
                        let mut p = String::from("\n      <properties>");
                        for (name, value) in [
                            ("spf", a.get(crate::auth::Method::Spf)),
                            ("dkim", a.get(crate::auth::Method::Dkim)),
                            ("dmarc", a.get(crate::auth::Method::Dmarc)),
                            ("dkim_signed", if a.dkim_signed { "true" } else { "false" }),
                        ] {
                            let _ =
                                write!(p, "<property name=\"{name}\" value=\"{}\"/>", xml(value));
                        }
                        p.push_str("</properties>");
                        p
                    }
                    None => String::new(),
                };
                match m.verdict {
                    Verdict::Delivered if properties.is_empty() => out.push_str("/>\n"),
                    Verdict::Delivered => {
                        let _ = writeln!(out, ">{properties}\n    </testcase>");
                    }
                    Verdict::Unreadable => {
                        let _ = writeln!(
                            out,
                            ">{properties}\n      <error type=\"unreadable\" message=\"{}\">{}</error>\n    </testcase>",
                            xml(&message),
                            xml(&details(m))
                        );
                    }
                    v => {
                        let _ = writeln!(
                            out,
                            ">{properties}\n      <failure type=\"{v}\" message=\"{}\">{}</failure>\n    </testcase>",
                            xml(&message),
                            xml(&details(m))
                        );
                    }
                }
            }
            out.push_str("  </testsuite>\n");
        }
        if !self.tls.is_empty() {
            let bad = self.tls.iter().filter(|t| t.is_trouble()).count();
            let _ = writeln!(
                out,
                "  <testsuite name=\"tls\" tests=\"{}\" failures=\"{bad}\" errors=\"0\" timestamp=\"{}\">",
                self.tls.len(),
                xml(&self.started_at)
            );
            for t in &self.tls {
                let _ = write!(
                    out,
                    "    <testcase classname=\"tls\" name=\"{}\" time=\"0.000\"",
                    xml(&t.endpoint)
                );
                if t.is_trouble() {
                    let _ = writeln!(
                        out,
                        ">\n      <failure type=\"tls\" message=\"{}\">{}</failure>\n    </testcase>",
                        xml(&t.line()),
                        xml(&t.line())
                    );
                } else {
                    out.push_str("/>\n");
                }
            }
            out.push_str("  </testsuite>\n");
        }
        out.push_str("</testsuites>\n");
        out
    }
}

fn details(m: &MailboxResult) -> String {
    let mut s = format!("token {}\nread via {}\n", m.token, m.read_via);
    if let Some(r) = &m.smtp {
        let _ = writeln!(s, "SMTP reply: {r}");
    } else if let Some(r) = &m.accepted {
        let _ = writeln!(s, "SMTP reply: {r} (accepted)");
    }
    if !m.found_in.is_empty() {
        let _ = writeln!(s, "found in: {}", m.found_in.join(", "));
    }
    if !m.folders.is_empty() {
        let _ = writeln!(s, "filed into: {}", m.folders.join(", "));
    }
    if let Some(a) = &m.auth {
        let _ = writeln!(s, "authentication: {}", a.summary());
    }
    for h in &m.hops {
        let _ = writeln!(
            s,
            "hop {} ({}): {}",
            h.hop,
            h.read_via,
            match h.latency_ms {
                Some(ms) => format!("seen {:.3} s after 250", ms as f64 / 1000.0),
                None => "not seen".to_string(),
            }
        );
    }
    for d in &m.differences {
        let _ = writeln!(s, "difference: {d}");
    }
    s
}

/// Escapes text for XML attributes and content; drops characters XML 1.0
/// cannot carry.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

mod html;

#[cfg(test)]
pub(crate) mod tests;
