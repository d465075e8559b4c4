//! The prober as a monitor: rounds of [`crate::probe`] every so often, each
//! round's report appended to a JSON Lines history, Prometheus metrics kept
//! across rounds ([`Metrics`]), and the one-line Nagios / Icinga / Checkmk
//! status of a report ([`nagios`]).
//!
//! Pure where it can be: rendering metrics and status lines takes reports and
//! returns text, tested without sockets; [`run_rounds`] only sequences
//! probes and sleeps, and the command line serves the metrics text.

pub mod metrics;
pub mod nagios;

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

pub use metrics::Metrics;

use crate::report::Report;
use crate::run::{ProbeError, ProbeOptions, probe};
use crate::target::Target;

/// The shortest round interval `--every` accepts.
pub const MIN_EVERY: Duration = Duration::from_millis(100);

/// Parses an interval: `5m`, `30s`, `1h`, `500ms`, or plain seconds (`90`,
/// `0.5`). At least [`MIN_EVERY`], at most a day.
pub fn parse_every(text: &str) -> Result<Duration, String> {
    let every = mailrig_core::duration::parse_duration(text, "an interval")?;
    if every < MIN_EVERY || every > Duration::from_secs(86_400) {
        return Err(format!(
            "'{text}' must be between {} ms and one day",
            MIN_EVERY.as_millis()
        ));
    }
    Ok(every)
}

/// Appends one report as one JSON line (the JSON Lines history).
pub fn append_history(path: &Path, report: &Report) -> std::io::Result<()> {
    let mut line = serde_json::to_string(report).map_err(std::io::Error::other)?;
    line.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(line.as_bytes())
}

/// Runs `rounds` probes (forever with `None`), one starting every `every`
/// (or right after the previous one when it took longer). `on_round` gets
/// the round number (from 1) and its result; returning `false` stops.
pub async fn run_rounds(
    target: &Target,
    opts: &ProbeOptions,
    every: Duration,
    rounds: Option<u64>,
    mut on_round: impl FnMut(u64, &Result<Report, ProbeError>) -> bool,
) {
    let mut round = 0u64;
    let mut next = tokio::time::Instant::now();
    loop {
        round += 1;
        let result = probe(target, opts).await;
        if !on_round(round, &result) || rounds.is_some_and(|n| round >= n) {
            return;
        }
        next += every;
        let now = tokio::time::Instant::now();
        if next < now {
            next = now;
        }
        tokio::time::sleep_until(next).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_every("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_every("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_every("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_every("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_every("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_every("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_every("5x").unwrap_err().contains("unknown unit 'x'"));
        assert!(parse_every("m").unwrap_err().contains("not an interval"));
        assert!(parse_every("10ms").unwrap_err().contains("between 100 ms"));
        assert!(parse_every("2d").is_err());
    }
}
