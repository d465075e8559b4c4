//! Pass/fail limits on a finished run (`--max-error-rate`, `--max-p99`): a load test in CI fails when the
//! server got worse, not only when it accepted nothing.
//!
//! The error rate is the larger of two shares, so neither kind of failure hides behind the other: failed
//! messages among the messages answered (accepted + failed), and refused recipients among the recipients
//! of those messages (a message with 2 of 3 recipients refused is accepted, but 66% of its recipients
//! were not).

use std::time::Duration;

use crate::config::parse_duration;
use crate::errors::LoadError;
use crate::report::Report;
use crate::stage::Stage;

/// The flags, as typed.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ThresholdArgs {
    /// Fail (exit 1) when more than RATE of the messages failed or of their recipients were refused:
    /// a fraction (0.05) or a percentage (5%).
    #[arg(long, value_name = "RATE")]
    pub max_error_rate: Option<String>,

    /// Fail (exit 1) when the 99th percentile of the whole-message latency is above DURATION, e.g.
    /// 250ms or 2s.
    #[arg(long, value_name = "DURATION")]
    pub max_p99: Option<String>,
}

/// Checked limits.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Thresholds {
    /// Largest error rate allowed, 0.0 to 1.0.
    pub max_error_rate: Option<f64>,
    /// Largest p99 of [`Stage::Message`] allowed.
    pub max_p99: Option<Duration>,
}

impl ThresholdArgs {
    /// Parses the flags; each complaint names its flag.
    pub fn parse(&self) -> Result<Thresholds, LoadError> {
        let max_error_rate = self
            .max_error_rate
            .as_deref()
            .map(|s| {
                parse_rate(s).map_err(|reason| LoadError::InvalidFlag {
                    flag: "--max-error-rate",
                    reason,
                })
            })
            .transpose()?;
        let max_p99 = self
            .max_p99
            .as_deref()
            .map(|s| {
                parse_duration(s).map_err(|reason| LoadError::InvalidFlag {
                    flag: "--max-p99",
                    reason,
                })
            })
            .transpose()?;
        Ok(Thresholds {
            max_error_rate,
            max_p99,
        })
    }
}

/// `0.05`, `5%`, `12.5%`: a share between 0 and 1.
fn parse_rate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (number, scale) = match t.strip_suffix('%') {
        Some(n) => (n.trim(), 100.0),
        None => (t, 1.0),
    };
    let v: f64 = number
        .parse()
        .map_err(|_| format!("'{s}' is not a rate: give a fraction (0.05) or a percentage (5%)"))?;
    let v = v / scale;
    if !(0.0..=1.0).contains(&v) || !v.is_finite() {
        return Err(format!("'{s}' is not between 0 and 1 (0% and 100%)"));
    }
    Ok(v)
}

/// The error rate of a report (see the module doc): `(rate, what it is)`.
pub fn error_rate(report: &Report) -> (f64, String) {
    let c = &report.counts;
    let answered = c.accepted + c.failed;
    if answered == 0 {
        return (0.0, "no message was answered".into());
    }
    let messages = c.failed as f64 / answered as f64;
    let recipients_total = c.recipients_accepted + c.recipients_refused;
    let recipients = if recipients_total == 0 {
        0.0
    } else {
        c.recipients_refused as f64 / recipients_total as f64
    };
    if recipients > messages {
        (
            recipients,
            format!(
                "{} of {} recipients refused",
                c.recipients_refused, recipients_total
            ),
        )
    } else {
        (
            messages,
            format!("{} of {answered} messages failed", c.failed),
        )
    }
}

impl Thresholds {
    /// Whether any limit is set.
    pub fn any(&self) -> bool {
        self.max_error_rate.is_some() || self.max_p99.is_some()
    }

    /// The limits the report crosses, one sentence each (empty: the run passed).
    pub fn breaches(&self, report: &Report) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(max) = self.max_error_rate {
            let (rate, what) = error_rate(report);
            if rate > max {
                out.push(format!(
                    "error rate {:.1}% ({what}) is above --max-error-rate {:.1}%",
                    rate * 100.0,
                    max * 100.0
                ));
            }
        }
        if let Some(max) = self.max_p99 {
            match report.latency.get(&Stage::Message) {
                Some(s) if Duration::from_micros(s.p99_us) > max => out.push(format!(
                    "message latency p99 {:.2} ms is above --max-p99 {:.2} ms",
                    s.p99_us as f64 / 1000.0,
                    max.as_secs_f64() * 1000.0
                )),
                Some(_) => {}
                None => out.push(format!(
                    "no message latency was measured, so --max-p99 {} ms cannot be met",
                    max.as_millis()
                )),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Counts;

    #[test]
    fn rates_parse_as_fractions_or_percentages() {
        assert_eq!(parse_rate("0.05").unwrap(), 0.05);
        assert_eq!(parse_rate("5%").unwrap(), 0.05);
        assert_eq!(parse_rate("100%").unwrap(), 1.0);
        assert!(parse_rate("150%").is_err());
        assert!(parse_rate("-0.1").is_err());
        assert!(parse_rate("lots").is_err());
        let e = ThresholdArgs {
            max_p99: Some("soon".into()),
            ..Default::default()
        }
        .parse()
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("--max-p99"), "{e}");
    }

    fn report(counts: Counts) -> Report {
        let mut r = crate::report::tests::empty_report();
        r.counts = counts;
        r
    }

    #[test]
    fn refused_recipients_count_even_when_messages_are_accepted() {
        // 3 recipients per message, 2 of them refused: every message accepted, 66% of recipients refused.
        let r = report(Counts {
            attempted: 10,
            accepted: 10,
            recipients_accepted: 10,
            recipients_refused: 20,
            ..Default::default()
        });
        let (rate, what) = error_rate(&r);
        assert!((rate - 2.0 / 3.0).abs() < 1e-9, "{rate}");
        assert!(what.contains("20 of 30 recipients refused"), "{what}");
        let t = Thresholds {
            max_error_rate: Some(0.05),
            max_p99: None,
        };
        assert_eq!(t.breaches(&r).len(), 1);
        let lenient = Thresholds {
            max_error_rate: Some(0.7),
            max_p99: None,
        };
        assert!(lenient.breaches(&r).is_empty());
    }

    #[test]
    fn failed_messages_count() {
        let r = report(Counts {
            attempted: 4,
            accepted: 1,
            failed: 3,
            recipients_accepted: 1,
            recipients_refused: 0,
            ..Default::default()
        });
        let (rate, what) = error_rate(&r);
        assert_eq!(rate, 0.75);
        assert!(what.contains("3 of 4 messages failed"), "{what}");
    }

    #[test]
    fn a_missing_latency_fails_a_p99_limit() {
        let t = Thresholds {
            max_error_rate: None,
            max_p99: Some(Duration::from_millis(100)),
        };
        let b = t.breaches(&report(Counts::default()));
        assert_eq!(b.len(), 1, "{b:?}");
    }
}
