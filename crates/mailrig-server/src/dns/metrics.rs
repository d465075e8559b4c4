//! Counters of the DNS server: queries by answer code and transport, for
//! `/metrics` (`mailrig_dns_queries_total{rcode,transport}`).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// The answer codes counted; `none` is a query left unanswered by a `timeout` fault.
pub const RCODES: [&str; 6] = [
    "NOERROR", "NXDOMAIN", "REFUSED", "SERVFAIL", "FORMERR", "none",
];
const TRANSPORTS: [&str; 2] = ["udp", "tcp"];

#[derive(Debug, Default)]
pub struct DnsMetrics {
    queries: [[AtomicU64; 2]; 6],
    truncated: AtomicU64,
}

impl DnsMetrics {
    /// Counts one query (`rcode` one of [`RCODES`], others count as FORMERR).
    pub fn count(&self, rcode: &str, tcp: bool, truncated: bool) {
        let i = RCODES.iter().position(|r| *r == rcode).unwrap_or(4);
        self.queries[i][usize::from(tcp)].fetch_add(1, Ordering::Relaxed);
        if truncated {
            self.truncated.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queries answered with this code over this transport.
    pub fn queries(&self, rcode: &str, transport: &str) -> u64 {
        let (Some(i), Some(t)) = (
            RCODES.iter().position(|r| *r == rcode),
            TRANSPORTS.iter().position(|x| *x == transport),
        ) else {
            return 0;
        };
        self.queries[i][t].load(Ordering::Relaxed)
    }

    /// Appends the Prometheus text of these counters.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP mailrig_dns_queries_total DNS queries, by answer code (none: not answered) and transport."
        );
        let _ = writeln!(out, "# TYPE mailrig_dns_queries_total counter");
        for (i, rcode) in RCODES.iter().enumerate() {
            for (t, transport) in TRANSPORTS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "mailrig_dns_queries_total{{rcode=\"{rcode}\",transport=\"{transport}\"}} {}",
                    self.queries[i][t].load(Ordering::Relaxed)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP mailrig_dns_truncated_total UDP answers sent with the TC bit."
        );
        let _ = writeln!(out, "# TYPE mailrig_dns_truncated_total counter");
        let _ = writeln!(
            out,
            "mailrig_dns_truncated_total {}",
            self.truncated.load(Ordering::Relaxed)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_code_and_transport() {
        let m = DnsMetrics::default();
        m.count("NXDOMAIN", false, false);
        m.count("NOERROR", true, false);
        m.count("NOERROR", false, true);
        assert_eq!(m.queries("NXDOMAIN", "udp"), 1);
        assert_eq!(m.queries("NOERROR", "tcp"), 1);
        let mut s = String::new();
        m.render(&mut s);
        assert!(s.contains("mailrig_dns_queries_total{rcode=\"NOERROR\",transport=\"udp\"} 1"));
        assert!(s.contains("mailrig_dns_truncated_total 1"));
    }
}
