//! Prometheus metrics of a monitor's rounds, in the text exposition format
//! (version 0.0.4), so that Grafana shows which mailbox broke when.
//!
//! Per mailbox: `mailrig_probe_mailbox_verdict` (1 for the last verdict, 0
//! for the others, so `== 1` selects the current state), the last latency,
//! and rounds counted by verdict. Per run: rounds, errors (probes that could
//! not run), the last round's duration and its start time. Under
//! `--each-mx` a mailbox is probed once per MX host, and each of those is a
//! series of its own with an `mx` label (`mx="mx2.patente.test"`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::report::Report;
use crate::run::ProbeError;
use crate::verdict::Verdict;

#[derive(Debug, Default, Clone)]
struct MailboxMetrics {
    domain: String,
    last: Option<Verdict>,
    last_latency_ms: Option<u64>,
    rounds: BTreeMap<Verdict, u64>,
}

/// Metrics kept across rounds.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    rounds: u64,
    errors: u64,
    last_duration_ms: Option<u64>,
    last_error: bool,
    /// Keyed by address and the MX it went through (`--each-mx`).
    mailboxes: BTreeMap<(String, Option<String>), MailboxMetrics>,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Counts one round.
    pub fn record(&mut self, result: &Result<Report, ProbeError>) {
        self.rounds += 1;
        match result {
            Err(_) => {
                self.errors += 1;
                self.last_error = true;
            }
            Ok(r) if r.error.is_some() => {
                self.errors += 1;
                self.last_error = true;
            }
            Ok(r) => {
                self.last_error = false;
                self.last_duration_ms = Some(r.duration_ms);
                for m in &r.mailboxes {
                    let e = self
                        .mailboxes
                        .entry((m.address.clone(), m.via.clone()))
                        .or_default();
                    e.domain = m.domain.clone();
                    e.last = Some(m.verdict);
                    e.last_latency_ms = m.latency_ms;
                    *e.rounds.entry(m.verdict).or_default() += 1;
                }
            }
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let head = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
        };
        head(
            &mut out,
            "mailrig_probe_rounds_total",
            "counter",
            "Probe rounds run.",
        );
        let _ = writeln!(out, "mailrig_probe_rounds_total {}", self.rounds);
        head(
            &mut out,
            "mailrig_probe_errors_total",
            "counter",
            "Rounds in which the probe could not run (exit code 2).",
        );
        let _ = writeln!(out, "mailrig_probe_errors_total {}", self.errors);
        head(
            &mut out,
            "mailrig_probe_last_round_error",
            "gauge",
            "1 when the last round could not run.",
        );
        let _ = writeln!(
            out,
            "mailrig_probe_last_round_error {}",
            u8::from(self.last_error)
        );
        if let Some(ms) = self.last_duration_ms {
            head(
                &mut out,
                "mailrig_probe_run_duration_seconds",
                "gauge",
                "Duration of the last round that ran.",
            );
            let _ = writeln!(
                out,
                "mailrig_probe_run_duration_seconds {}",
                ms as f64 / 1000.0
            );
        }
        head(
            &mut out,
            "mailrig_probe_mailbox_verdict",
            "gauge",
            "1 for the mailbox's verdict in the last round, 0 for the others.",
        );
        for ((address, via), m) in &self.mailboxes {
            for v in Verdict::ALL {
                let _ = writeln!(
                    out,
                    "mailrig_probe_mailbox_verdict{{{},verdict=\"{v}\"}} {}",
                    labels(address, &m.domain, via.as_deref()),
                    u8::from(m.last == Some(v))
                );
            }
        }
        head(
            &mut out,
            "mailrig_probe_mailbox_latency_seconds",
            "gauge",
            "From SMTP 250 to the probe seen, in the last round where it was seen.",
        );
        for ((address, via), m) in &self.mailboxes {
            if let Some(ms) = m.last_latency_ms {
                let _ = writeln!(
                    out,
                    "mailrig_probe_mailbox_latency_seconds{{{}}} {}",
                    labels(address, &m.domain, via.as_deref()),
                    ms as f64 / 1000.0
                );
            }
        }
        head(
            &mut out,
            "mailrig_probe_mailbox_rounds_total",
            "counter",
            "Rounds per mailbox and verdict.",
        );
        for ((address, via), m) in &self.mailboxes {
            for (v, n) in &m.rounds {
                let _ = writeln!(
                    out,
                    "mailrig_probe_mailbox_rounds_total{{{},verdict=\"{v}\"}} {n}",
                    labels(address, &m.domain, via.as_deref())
                );
            }
        }
        out
    }
}

fn labels(address: &str, domain: &str, via: Option<&str>) -> String {
    let mut l = format!(
        "mailbox=\"{}\",domain=\"{}\"",
        escape(address),
        escape(domain)
    );
    if let Some(mx) = via {
        let _ = write!(l, ",mx=\"{}\"", escape(mx));
    }
    l
}

/// Label values escape `\`, `"` and line feeds.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::seed_report;

    #[test]
    fn rounds_accumulate_and_the_last_verdict_is_one() {
        let mut m = Metrics::new();
        let good = seed_report();
        m.record(&Ok(good.clone()));
        let mut bad = good.clone();
        bad.mailboxes[0].verdict = Verdict::Missing;
        bad.mailboxes[0].latency_ms = None;
        m.record(&Ok(bad));
        m.record(&Ok(Report::could_not_run("t.toml", "down")));
        let text = m.render();
        assert!(text.contains("mailrig_probe_rounds_total 3\n"), "{text}");
        assert!(text.contains("mailrig_probe_errors_total 1\n"), "{text}");
        assert!(
            text.contains("mailrig_probe_last_round_error 1\n"),
            "{text}"
        );
        // Per run: the duration of the last round that ran (1.5 s), not the
        // failed one after it.
        assert!(
            text.contains("mailrig_probe_run_duration_seconds 1.5\n"),
            "{text}"
        );
        // Per mailbox: the last latency.
        assert!(
            text.contains(
                "mailrig_probe_mailbox_latency_seconds{mailbox=\"bernd@kanzlei.test\",domain=\"kanzlei.test\"} 0.12\n"
            ),
            "{text}"
        );
        let anna = "mailbox=\"anna@kanzlei.test\",domain=\"kanzlei.test\"";
        assert!(
            text.contains(&format!(
                "mailrig_probe_mailbox_verdict{{{anna},verdict=\"missing\"}} 1\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "mailrig_probe_mailbox_verdict{{{anna},verdict=\"delivered\"}} 0\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "mailrig_probe_mailbox_rounds_total{{{anna},verdict=\"delivered\"}} 1\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "mailrig_probe_mailbox_rounds_total{{{anna},verdict=\"missing\"}} 1\n"
            )),
            "{text}"
        );
        // Every sample line is `name{labels} value` or `name value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
            assert!(line.starts_with("mailrig_probe_"), "{line}");
        }
        assert_eq!(escape("a\"b\\c\n"), "a\\\"b\\\\c\\n");
    }

    #[test]
    fn each_mx_rows_of_one_mailbox_are_series_of_their_own() {
        let mut r = seed_report();
        let mut backup = r.mailboxes[0].clone();
        r.mailboxes[0].via = Some("mx.kanzlei.test".into());
        backup.via = Some("mx2.kanzlei.test".into());
        backup.verdict = Verdict::Missing;
        r.mailboxes.insert(1, backup);
        let mut m = Metrics::new();
        m.record(&Ok(r));
        let text = m.render();
        let anna = "mailbox=\"anna@kanzlei.test\",domain=\"kanzlei.test\"";
        for (mx, verdict) in [
            ("mx.kanzlei.test", "delivered"),
            ("mx2.kanzlei.test", "missing"),
        ] {
            let line = format!(
                "mailrig_probe_mailbox_verdict{{{anna},mx=\"{mx}\",verdict=\"{verdict}\"}} 1\n"
            );
            assert!(text.contains(&line), "{line}\n{text}");
        }
        assert!(
            !text.contains(&format!("mailrig_probe_mailbox_verdict{{{anna},verdict=")),
            "{text}"
        );
    }
}
