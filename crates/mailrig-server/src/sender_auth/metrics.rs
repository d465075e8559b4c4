//! Counters of the sender authentication checks, for `/metrics`:
//! `mailrig_auth_results_total{method,result}` and
//! `mailrig_auth_rejected_total` (refused by an `enforce` host).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use mailrig_core::sender_auth::AuthResults;

pub const METHODS: [&str; 4] = ["spf", "dkim", "dmarc", "arc"];
pub const RESULTS: [&str; 7] = [
    "pass",
    "fail",
    "softfail",
    "neutral",
    "none",
    "temperror",
    "permerror",
];

#[derive(Debug, Default)]
pub struct AuthMetrics {
    results: [[AtomicU64; RESULTS.len()]; METHODS.len()],
    pub rejected: AtomicU64,
}

impl AuthMetrics {
    /// Counts one message's results (ARC only when it carried a chain).
    pub fn count(&self, r: &AuthResults) {
        let add = |method: usize, word: &str| {
            if let Some(i) = RESULTS.iter().position(|w| *w == word) {
                self.results[method][i].fetch_add(1, Ordering::Relaxed);
            }
        };
        add(0, &r.spf);
        add(1, r.dkim_result());
        add(2, &r.dmarc);
        if let Some(arc) = &r.arc {
            add(3, arc);
        }
    }

    pub fn get(&self, method: &str, result: &str) -> u64 {
        let m = METHODS.iter().position(|x| *x == method);
        let r = RESULTS.iter().position(|x| *x == result);
        match (m, r) {
            (Some(m), Some(r)) => self.results[m][r].load(Ordering::Relaxed),
            _ => 0,
        }
    }

    /// Appends the Prometheus text of the counters of each host (`host`
    /// label; `None` in a one-server world).
    pub fn render(out: &mut String, hosts: &[(Option<&str>, &AuthMetrics)]) {
        let label = |h: Option<&str>| h.map_or(String::new(), |h| format!("host=\"{h}\","));
        let _ = writeln!(
            out,
            "# HELP mailrig_auth_results_total Received messages by sender authentication method and result."
        );
        let _ = writeln!(out, "# TYPE mailrig_auth_results_total counter");
        for (host, me) in hosts {
            for (m, method) in METHODS.iter().enumerate() {
                for (r, result) in RESULTS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "mailrig_auth_results_total{{{}method=\"{method}\",result=\"{result}\"}} {}",
                        label(*host),
                        me.results[m][r].load(Ordering::Relaxed)
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP mailrig_auth_rejected_total Messages refused with 550 5.7.1 (DMARC p=reject on an enforcing host)."
        );
        let _ = writeln!(out, "# TYPE mailrig_auth_rejected_total counter");
        for (host, me) in hosts {
            let l = label(*host);
            let l = l.trim_end_matches(',');
            let braces = if l.is_empty() {
                String::new()
            } else {
                format!("{{{l}}}")
            };
            let _ = writeln!(
                out,
                "mailrig_auth_rejected_total{braces} {}",
                me.rejected.load(Ordering::Relaxed)
            );
        }
    }
}
