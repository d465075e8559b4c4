//! One status line for Nagios, Icinga and Checkmk, as the Monitoring Plugins
//! development guidelines ask: `SERVICE STATE - text|perfdata`, perfdata
//! as space-separated `'label'=value[UOM];[warn];[crit];[min];[max]`, and the
//! exit code 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
//!
//! The states: OK when every mailbox is delivered; CRITICAL when any probe
//! was lost, refused, misrouted, misfiled, stuck upstream or its mailbox unreadable;
//! WARNING when the only trouble is deferred, duplicated, altered or
//! delivered-unauthenticated mail (it arrived, or may still), or a TLS endpoint's certificate is in
//! trouble (expires within `--warn-cert-days`, expired, wrong name, does not
//! verify); UNKNOWN when the probe could not run.

use std::fmt::Write as _;

use crate::report::Report;
use crate::verdict::Verdict;

/// Plugin states and their exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Warning => "WARNING",
            State::Critical => "CRITICAL",
            State::Unknown => "UNKNOWN",
        }
    }

    pub fn exit_code(self) -> u8 {
        self as u8
    }
}

/// Most mailboxes named in the text part (the rest are counted).
const NAMED: usize = 5;

/// The state of a report.
pub fn state(report: &Report) -> State {
    if report.error.is_some() {
        return State::Unknown;
    }
    let c = &report.summary.counts;
    if c.missing + c.rejected + c.misrouted + c.misfiled + c.stuck_upstream + c.unreadable > 0 {
        State::Critical
    } else if c.deferred + c.duplicated + c.altered + c.delivered_unauthenticated > 0
        || report.tls.iter().any(|t| t.is_trouble())
    {
        State::Warning
    } else {
        State::Ok
    }
}

/// The status line (with a trailing newline) and its exit code.
pub fn status_line(report: &Report) -> (String, u8) {
    let st = state(report);
    let mut out = format!("MAILRIG PROBE {} - ", st.as_str());
    if let Some(e) = &report.error {
        let _ = writeln!(out, "could not run: {}", one_line(e));
        return (out, st.exit_code());
    }
    let total = report.summary.total;
    out.push_str(&Report::domain_line(&crate::report::DomainSummary {
        domain: String::new(),
        total,
        counts: report.summary.counts.clone(),
    }));
    let failed: Vec<String> = report
        .mailboxes
        .iter()
        .filter(|m| m.verdict != Verdict::Delivered)
        .map(|m| format!("{} {}", m.address, m.verdict_label()))
        .collect();
    if !failed.is_empty() {
        let named: Vec<&str> = failed.iter().take(NAMED).map(String::as_str).collect();
        let _ = write!(out, " ({}", named.join(", "));
        if failed.len() > NAMED {
            let _ = write!(out, ", {} more", failed.len() - NAMED);
        }
        out.push(')');
    }
    out.push('|');
    let mut perf = Vec::new();
    for v in Verdict::ALL {
        perf.push(format!("{v}={};;;0;{total}", report.summary.counts.get(v)));
    }
    let latencies: Vec<u64> = report
        .mailboxes
        .iter()
        .filter_map(|m| m.latency_ms)
        .collect();
    if let Some(max) = latencies.iter().max() {
        perf.push(format!("latency_max={}s;;;0;", seconds(*max)));
    }
    perf.push(format!("duration={}s;;;0;", seconds(report.duration_ms)));
    out.push_str(&perf.join(" "));
    out.push('\n');
    (out, st.exit_code())
}

fn seconds(ms: u64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

/// The text part must not contain `|` (it starts perfdata) or line breaks.
fn one_line(s: &str) -> String {
    s.replace(['|', '\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::seed_report;

    /// The guidelines' grammar for one perfdata item.
    fn valid_perfdata(item: &str) -> bool {
        let Some((label, rest)) = item.split_once('=') else {
            return false;
        };
        let fields: Vec<&str> = rest.split(';').collect();
        let value = fields[0].trim_end_matches(|c: char| c.is_ascii_alphabetic() || c == '%');
        !label.is_empty()
            && !label.contains(['\'', '=', ' '])
            && fields.len() <= 5
            && value.parse::<f64>().is_ok()
            && fields[1..]
                .iter()
                .all(|f| f.is_empty() || f.parse::<f64>().is_ok())
    }

    #[test]
    fn seed_incident_is_critical_with_perfdata() {
        let (line, code) = status_line(&seed_report());
        assert_eq!(code, 2);
        assert!(
            line.starts_with("MAILRIG PROBE CRITICAL - 5/30 delivered"),
            "{line}"
        );
        assert!(
            line.ends_with('\n') && line.matches('\n').count() == 1,
            "{line}"
        );
        let (text, perf) = line.trim_end().split_once('|').unwrap();
        assert!(text.contains("user03@patente.test missing"), "{text}");
        assert!(text.contains(" more)"), "{text}");
        for item in perf.split(' ') {
            assert!(valid_perfdata(item), "bad perfdata item {item:?} in {line}");
        }
        assert!(perf.contains("delivered=5;;;0;30"), "{perf}");
        assert!(perf.contains("missing="), "{perf}");
        assert!(perf.contains(" duration="), "{perf}");
    }

    #[test]
    fn states_follow_the_worst_verdict() {
        let mut r = seed_report();
        for m in &mut r.mailboxes {
            m.verdict = Verdict::Delivered;
        }
        let recount = |r: &mut Report| {
            let mut c = crate::report::Counts::default();
            for m in &r.mailboxes {
                c.add(m.verdict);
            }
            r.summary.counts = c;
        };
        recount(&mut r);
        assert_eq!(state(&r), State::Ok);
        assert!(
            status_line(&r)
                .0
                .starts_with("MAILRIG PROBE OK - 30/30 delivered|")
        );
        r.mailboxes[0].verdict = Verdict::Deferred;
        recount(&mut r);
        assert_eq!(status_line(&r).1, 1);
        r.mailboxes[1].verdict = Verdict::Misfiled;
        r.mailboxes[1].folders = vec!["Junk".into()];
        recount(&mut r);
        let (line, code) = status_line(&r);
        assert_eq!(code, 2);
        assert!(line.contains("misfiled (Junk)"), "{line}");
        let broken = Report::could_not_run("t.toml", "cannot reach x|y\nz");
        let (line, code) = status_line(&broken);
        assert_eq!(code, 3);
        assert_eq!(
            line,
            "MAILRIG PROBE UNKNOWN - could not run: cannot reach x y z\n"
        );
    }
}
