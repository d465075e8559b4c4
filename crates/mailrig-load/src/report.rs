//! The result of a run: counts, rates, errors by kind and by reply code, latency per stage, and the accepted
//! messages. [`Report`] is what `run` returns, what `--json` writes, what [`crate::merge`] adds up, and
//! what [`Report::to_table`] shows a person.
//!
//! [`Tally`] is the running form the sessions fill in; it becomes a report when the run ends.
//!
//! Dependencies go one way: a report contains a [`Verification`] and uses histograms' table rows;
//! `verification` knows nothing of reports.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::accepted::{AcceptTimes, AcceptedLog, AcceptedMessages};
use crate::config::{Pacing, SizeMix};
use crate::errors::{ErrorKind, LoadError};
use crate::histogram::{LatencySummary, StageHistograms, latency_row};
use crate::stage::Stage;
use crate::verification::Verification;

/// Version of the JSON layout; [`crate::merge`] refuses to mix versions.
pub const REPORT_FORMAT: u32 = 1;

/// How many error messages a report keeps as examples.
pub const MAX_ERROR_SAMPLES: usize = 20;

/// The outcome of one or more (merged) load runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`REPORT_FORMAT`].
    pub format: u32,
    /// The runs this report covers (one, or several after a merge).
    pub runs: Vec<RunInfo>,
    /// Start of the earliest run, Unix milliseconds.
    pub started_unix_ms: u64,
    /// End of the latest run, Unix milliseconds.
    pub finished_unix_ms: u64,
    /// Wall time covered, seconds (for merged reports: earliest start to latest end).
    pub elapsed_secs: f64,
    /// Accepted messages per second of `elapsed_secs`.
    pub messages_per_sec: f64,
    /// Accepted message bytes per second of `elapsed_secs`.
    pub bytes_per_sec: f64,
    /// Message and connection counts.
    pub counts: Counts,
    /// Failures.
    pub errors: Errors,
    /// Latency per stage (stages without samples are left out).
    pub latency: BTreeMap<Stage, LatencySummary>,
    /// Accepted messages of each run, for verification.
    pub accepted: Vec<AcceptedMessages>,
    /// The time of each 250, when the run was asked to keep them ([`crate::LoadConfig::record_accept_times`]).
    /// In memory only: never written to JSON, dropped by a merge.
    #[serde(skip)]
    pub accept_times: Option<AcceptTimes>,
    /// What a delivery check found after the run (`mailrig load --verify-imap`), if one was made. A merge
    /// drops it: each run's check stands for that run only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
}

/// What one run was asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Run id (in each Message-ID).
    pub run_id: String,
    /// Target URL.
    pub target: String,
    /// Closed or open loop.
    pub pacing: Pacing,
    /// Sessions.
    pub sessions: u32,
    /// Message limit.
    pub messages: Option<u64>,
    /// Duration limit, seconds.
    pub duration_secs: Option<f64>,
    /// Size mix.
    pub sizes: SizeMix,
    /// RCPTs per message.
    pub recipients_per_message: u32,
    /// Messages per connection (0 = unlimited).
    pub messages_per_connection: u64,
    /// Whether PIPELINING was allowed (it is used only if the server offers it).
    pub pipelining: bool,
    /// STARTTLS used.
    pub starttls: bool,
    /// Start, Unix milliseconds.
    pub started_unix_ms: u64,
    /// Wall time, seconds.
    pub elapsed_secs: f64,
    /// Ended by a cancellation (Ctrl-C) rather than its count or duration.
    pub cancelled: bool,
}

/// Message and connection counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Messages started.
    pub attempted: u64,
    /// Messages whose end of data got a 2xx reply.
    pub accepted: u64,
    /// Messages that failed (any kind).
    pub failed: u64,
    /// Started but cut off by a cancellation, neither accepted nor failed.
    pub interrupted: u64,
    /// Open loop: messages that were due before the run ended but never started (every session busy).
    pub unsent: u64,
    /// Recipients accepted within accepted messages.
    pub recipients_accepted: u64,
    /// Recipients refused by RCPT (in any message).
    pub recipients_refused: u64,
    /// Content bytes of accepted messages.
    pub message_bytes: u64,
    /// All bytes written to the server (commands, content, TLS records not included).
    pub wire_bytes_sent: u64,
    /// Connections opened (successful TCP connects).
    pub connections: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.attempted += o.attempted;
        self.accepted += o.accepted;
        self.failed += o.failed;
        self.interrupted += o.interrupted;
        self.unsent += o.unsent;
        self.recipients_accepted += o.recipients_accepted;
        self.recipients_refused += o.recipients_refused;
        self.message_bytes += o.message_bytes;
        self.wire_bytes_sent += o.wire_bytes_sent;
        self.connections += o.connections;
    }
}

/// Failures, counted several ways.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Errors {
    /// Failed messages by kind.
    pub by_kind: BTreeMap<ErrorKind, u64>,
    /// Failure replies by code, including refused recipients of otherwise accepted messages.
    pub by_code: BTreeMap<u16, u64>,
    /// Failure replies by the command answered and code, e.g. `"rcpt 550"`.
    pub by_stage_code: BTreeMap<String, u64>,
    /// The first few failure descriptions, for a human.
    pub samples: Vec<String>,
}

impl Errors {
    /// Total failed messages.
    pub fn total(&self) -> u64 {
        self.by_kind.values().sum()
    }

    fn add(&mut self, o: &Errors) {
        for (k, n) in &o.by_kind {
            *self.by_kind.entry(*k).or_default() += n;
        }
        for (k, n) in &o.by_code {
            *self.by_code.entry(*k).or_default() += n;
        }
        for (k, n) in &o.by_stage_code {
            *self.by_stage_code.entry(k.clone()).or_default() += n;
        }
        for s in &o.samples {
            if self.samples.len() < MAX_ERROR_SAMPLES {
                self.samples.push(s.clone());
            }
        }
    }
}

/// The running totals of a run (or of one session, added up at the end).
#[derive(Debug, Default)]
pub struct Tally {
    /// Latencies.
    pub latency: StageHistograms,
    /// Counts.
    pub counts: Counts,
    /// Errors.
    pub errors: Errors,
    /// Accepted messages.
    pub accepted: AcceptedLog,
    /// The time of each 250 (only filled when the config asks for it).
    pub accept_times: AcceptTimes,
}

impl Tally {
    /// Counts a failed message.
    pub fn record_failure(
        &mut self,
        kind: ErrorKind,
        stage_code: Option<(Stage, u16)>,
        detail: &str,
    ) {
        self.counts.failed += 1;
        *self.errors.by_kind.entry(kind).or_default() += 1;
        if let Some((stage, code)) = stage_code {
            self.record_code(stage, code);
        }
        if self.errors.samples.len() < MAX_ERROR_SAMPLES {
            self.errors.samples.push(format!("{kind}: {detail}"));
        }
    }

    /// Counts a failure reply code (also used for refused recipients of accepted messages).
    pub fn record_code(&mut self, stage: Stage, code: u16) {
        *self.errors.by_code.entry(code).or_default() += 1;
        *self
            .errors
            .by_stage_code
            .entry(format!("{stage} {code}"))
            .or_default() += 1;
    }

    /// Adds another tally of the same run.
    pub fn absorb(&mut self, other: Tally) -> Result<(), LoadError> {
        self.latency.add(&other.latency)?;
        self.counts.add(&other.counts);
        self.errors.add(&other.errors);
        self.accepted.absorb(other.accepted);
        self.accept_times.absorb(other.accept_times);
        Ok(())
    }

    /// The report of a finished run.
    pub fn into_report(self, info: RunInfo, recipients: Vec<String>) -> Result<Report, LoadError> {
        let elapsed = info.elapsed_secs;
        let started = info.started_unix_ms;
        let accepted =
            self.accepted
                .finish(info.run_id.clone(), recipients, info.recipients_per_message);
        let mut report = Report {
            format: REPORT_FORMAT,
            started_unix_ms: started,
            finished_unix_ms: started + (elapsed * 1000.0).round() as u64,
            elapsed_secs: elapsed,
            messages_per_sec: 0.0,
            bytes_per_sec: 0.0,
            counts: self.counts,
            errors: self.errors,
            latency: self.latency.to_report()?,
            accepted: vec![accepted],
            runs: vec![info],
            accept_times: (!self.accept_times.is_empty() || self.accept_times.truncated)
                .then(|| self.accept_times.finish()),
            verification: None,
        };
        report.compute_rates();
        Ok(report)
    }
}

impl Report {
    pub(crate) fn compute_rates(&mut self) {
        let secs = self.elapsed_secs;
        (self.messages_per_sec, self.bytes_per_sec) = if secs > 0.0 {
            (
                self.counts.accepted as f64 / secs,
                self.counts.message_bytes as f64 / secs,
            )
        } else {
            (0.0, 0.0)
        };
    }

    /// Adds `other`'s counts and errors into `self` (used by merge).
    pub(crate) fn add_counts(&mut self, other: &Report) {
        self.counts.add(&other.counts);
        self.errors.add(&other.errors);
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> Result<String, LoadError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Parses a JSON report.
    pub fn from_json(text: &str) -> Result<Report, LoadError> {
        let report: Report = serde_json::from_str(text)?;
        if report.format != REPORT_FORMAT {
            return Err(LoadError::Report(format!(
                "format {} is not the supported format {REPORT_FORMAT}",
                report.format
            )));
        }
        Ok(report)
    }

    /// Writes the JSON report to a file.
    pub fn write_json(&self, path: &Path) -> Result<(), LoadError> {
        std::fs::write(path, self.to_json()?)
            .map_err(|e| LoadError::Report(format!("cannot write {}: {e}", path.display())))
    }

    /// Reads a JSON report from a file.
    pub fn read_json(path: &Path) -> Result<Report, LoadError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| LoadError::Report(format!("cannot read {}: {e}", path.display())))?;
        Report::from_json(&text).map_err(|e| LoadError::Report(format!("{}: {e}", path.display())))
    }

    /// A table for a terminal.
    pub fn to_table(&self) -> String {
        let mut t = String::new();
        let c = &self.counts;
        match self.runs.as_slice() {
            [run] => {
                let pacing = match run.pacing {
                    Pacing::Closed => format!("closed loop, {} sessions", run.sessions),
                    Pacing::Open { rate } => {
                        format!("open loop at {rate} msg/s, up to {} sessions", run.sessions)
                    }
                };
                let _ = writeln!(
                    t,
                    "mailrig load: {}  run {}  {pacing}{}",
                    run.target,
                    run.run_id,
                    if run.cancelled { "  (cancelled)" } else { "" }
                );
            }
            runs => {
                let _ = writeln!(t, "mailrig load: {} merged runs", runs.len());
            }
        }
        let _ = writeln!(
            t,
            "elapsed {:.2} s   accepted {} of {} attempted   {:.1} msg/s   {}/s   {} connections",
            self.elapsed_secs,
            c.accepted,
            c.attempted,
            self.messages_per_sec,
            human_bytes(self.bytes_per_sec),
            c.connections
        );
        if c.unsent > 0 || c.interrupted > 0 {
            let _ = writeln!(
                t,
                "unsent (due, never started) {}   interrupted {}",
                c.unsent, c.interrupted
            );
        }
        if c.recipients_refused > 0 {
            let _ = writeln!(
                t,
                "recipients accepted {}   refused {}",
                c.recipients_accepted, c.recipients_refused
            );
        }
        if self.errors.by_kind.is_empty() && self.errors.by_code.is_empty() {
            let _ = writeln!(t, "errors: none");
        } else {
            let kinds: Vec<String> = self
                .errors
                .by_kind
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            let codes: Vec<String> = self
                .errors
                .by_stage_code
                .iter()
                .map(|(k, n)| format!("{k} ×{n}"))
                .collect();
            let _ = writeln!(
                t,
                "errors: {}   replies: {}",
                if kinds.is_empty() {
                    "none".into()
                } else {
                    kinds.join(", ")
                },
                if codes.is_empty() {
                    "none".into()
                } else {
                    codes.join(", ")
                }
            );
            for s in self.errors.samples.iter().take(3) {
                let _ = writeln!(t, "  e.g. {s}");
            }
        }
        let _ = writeln!(
            t,
            "\n{:<14}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}",
            "stage", "count", "p50", "p90", "p99", "p99.9", "max"
        );
        for (stage, s) in &self.latency {
            latency_row(&mut t, stage.as_str(), s);
        }
        if let Some(v) = &self.verification {
            v.write_table(&mut t);
        }
        t
    }
}

fn human_bytes(b: f64) -> String {
    if b < 1024.0 {
        format!("{b:.0} B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::Duration;

    pub(crate) fn info(run_id: &str, started: u64, elapsed: f64) -> RunInfo {
        RunInfo {
            run_id: run_id.into(),
            target: "smtp://127.0.0.1:2525".into(),
            pacing: Pacing::Closed,
            sessions: 2,
            messages: Some(10),
            duration_secs: None,
            sizes: SizeMix::fixed(4096),
            recipients_per_message: 1,
            messages_per_connection: 0,
            pipelining: true,
            starttls: false,
            started_unix_ms: started,
            elapsed_secs: elapsed,
            cancelled: false,
        }
    }

    /// A report of a run that did nothing.
    pub(crate) fn empty_report() -> Report {
        Tally::default()
            .into_report(info("empty", 0, 1.0), Vec::new())
            .expect("an empty tally makes a report")
    }

    #[test]
    fn table_and_json_round_trip() {
        let mut tally = Tally::default();
        tally.counts.attempted = 3;
        tally.counts.accepted = 2;
        tally.counts.message_bytes = 8192;
        tally
            .latency
            .record(Stage::Mail, Duration::from_micros(250));
        tally
            .latency
            .record(Stage::Message, Duration::from_millis(3));
        tally.accepted.insert(0, &[]);
        tally.accepted.insert(1, &[]);
        tally.record_failure(
            ErrorKind::Rejected,
            Some((Stage::Rcpt, 550)),
            "550 no such user",
        );
        let report = tally
            .into_report(info("r1", 1_000, 2.0), vec!["a@x".into()])
            .unwrap();
        assert_eq!(report.messages_per_sec, 1.0);
        assert_eq!(report.bytes_per_sec, 4096.0);
        let table = report.to_table();
        assert!(table.contains("accepted 2 of 3 attempted"), "{table}");
        assert!(table.contains("rejected 1"), "{table}");
        assert!(table.contains("rcpt 550 ×1"), "{table}");
        assert!(table.contains("mail"), "{table}");
        let back = Report::from_json(&report.to_json().unwrap()).unwrap();
        assert_eq!(back, report);
        assert_eq!(back.accepted[0].per_recipient["a@x"], 2);
    }
}
