//! Latency histograms, one per protocol stage, in microseconds (HdrHistogram, 3 significant digits).
//!
//! They are stored in reports in HdrHistogram's V2 binary form, base64-encoded, so that reports from several
//! machines add up *exactly* ([`crate::merge`]): percentiles of a merged report are those of one big run,
//! not an average of percentiles.
//!
//! Dependencies go one way: histograms report their failures as [`LoadError`]s; `errors` knows nothing of
//! histograms (both name stages with [`crate::stage::Stage`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
use serde::{Deserialize, Serialize};

use crate::errors::LoadError;
use crate::stage::Stage;

/// A fresh histogram with the settings every report uses.
pub fn new_histogram() -> Histogram<u64> {
    // Auto-resizing from 1 µs with 3 significant digits; cannot fail for sigfig 3.
    Histogram::new(3).unwrap_or_else(|_| unreachable!("sigfig 3 is valid"))
}

/// Converts a duration to the recorded unit (microseconds, at least 1 so a sample is never lost to 0).
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// One histogram per [`Stage`].
#[derive(Debug, Clone)]
pub struct StageHistograms {
    hists: Vec<Histogram<u64>>,
}

impl Default for StageHistograms {
    fn default() -> Self {
        StageHistograms {
            hists: Stage::ALL.iter().map(|_| new_histogram()).collect(),
        }
    }
}

impl StageHistograms {
    /// Records one sample.
    pub fn record(&mut self, stage: Stage, d: Duration) {
        let h = &mut self.hists[stage.index()];
        // `record` grows the histogram as needed (`saturating_record` would clamp to the current size).
        if h.record(micros(d)).is_err() {
            h.saturating_record(micros(d));
        }
    }

    /// The histogram of one stage.
    pub fn get(&self, stage: Stage) -> &Histogram<u64> {
        &self.hists[stage.index()]
    }

    /// Adds another set in (exact).
    pub fn add(&mut self, other: &StageHistograms) -> Result<(), LoadError> {
        for stage in Stage::ALL {
            add_exact(&mut self.hists[stage.index()], other.get(stage), stage)?;
        }
        Ok(())
    }

    /// The report form: summaries plus the encoded histogram, for stages with samples.
    pub fn to_report(&self) -> Result<BTreeMap<Stage, LatencySummary>, LoadError> {
        let mut out = BTreeMap::new();
        for stage in Stage::ALL {
            let h = self.get(stage);
            if !h.is_empty() {
                out.insert(stage, LatencySummary::of(h)?);
            }
        }
        Ok(out)
    }

    /// Rebuilds from a report's encoded histograms.
    pub fn from_report(
        latency: &BTreeMap<Stage, LatencySummary>,
    ) -> Result<StageHistograms, LoadError> {
        let mut set = StageHistograms::default();
        for (stage, summary) in latency {
            let h = decode(&summary.histogram)
                .map_err(|e| LoadError::Report(format!("histogram of stage {stage}: {e}")))?;
            add_exact(&mut set.hists[stage.index()], &h, *stage)?;
        }
        Ok(set)
    }
}

fn add_exact(
    into: &mut Histogram<u64>,
    from: &Histogram<u64>,
    stage: Stage,
) -> Result<(), LoadError> {
    into.add(from)
        .map_err(|e| LoadError::Report(format!("cannot add histograms of stage {stage}: {e:?}")))
}

/// Percentiles of one stage in microseconds, plus the exact histogram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest sample.
    pub max_us: u64,
    /// The histogram, HdrHistogram V2 serialised, base64 (standard alphabet).
    pub histogram: String,
}

impl LatencySummary {
    /// Summarises and encodes a histogram.
    pub fn of(h: &Histogram<u64>) -> Result<LatencySummary, LoadError> {
        Ok(LatencySummary {
            count: h.len(),
            mean_us: h.mean(),
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
            histogram: encode(h)?,
        })
    }
}

/// V2 + base64. The encoding is canonical: equal counts give equal text, however the histogram grew.
pub fn encode(h: &Histogram<u64>) -> Result<String, LoadError> {
    // A fresh histogram sized only by the values in it, so `highest_trackable_value` in the V2 header does
    // not depend on the history of auto-resizing.
    let mut canonical = new_histogram();
    canonical
        .add(h)
        .map_err(|e| LoadError::Report(format!("cannot copy histogram: {e:?}")))?;
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(&canonical, &mut bytes)
        .map_err(|e| LoadError::Report(format!("cannot serialise histogram: {e:?}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// base64 + V2 (also reads V2-deflate).
pub fn decode(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("not an HdrHistogram V2 histogram: {e:?}"))
}

/// One row of a latency table (the stage table's columns).
pub(crate) fn latency_row(t: &mut String, name: &str, s: &LatencySummary) {
    let _ = writeln!(
        t,
        "{:<14}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}",
        name,
        s.count,
        human_micros(s.p50_us),
        human_micros(s.p90_us),
        human_micros(s.p99_us),
        human_micros(s.p999_us),
        human_micros(s.max_us)
    );
}

fn human_micros(us: u64) -> String {
    if us < 1_000 {
        format!("{us}µs")
    } else if us < 1_000_000 {
        format!("{:.2}ms", us as f64 / 1e3)
    } else {
        format!("{:.2}s", us as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let mut h = new_histogram();
        for v in [1, 10, 100, 1000, 123_456, 9_999_999] {
            h.record(v).unwrap();
        }
        let back = decode(&encode(&h).unwrap()).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.len(), 6);
        assert!(decode("!!!").is_err());
        assert!(decode("aGVsbG8=").is_err());
    }

    #[test]
    fn summary_and_rebuild() {
        let mut set = StageHistograms::default();
        for i in 1..=1000u64 {
            set.record(Stage::Mail, Duration::from_micros(i));
        }
        set.record(Stage::Connect, Duration::ZERO);
        set.record(Stage::Message, Duration::from_millis(2));
        set.record(Stage::Message, Duration::from_secs(5));
        let report = set.to_report().unwrap();
        assert_eq!(report.len(), 3);
        let message = &report[&Stage::Message];
        assert_eq!((message.count, message.p50_us), (2, 2000));
        assert!(
            message.max_us >= 5_000_000 && message.max_us < 5_010_000,
            "{message:?}"
        );
        let mail = &report[&Stage::Mail];
        assert_eq!(mail.count, 1000);
        assert_eq!(mail.p50_us, 500);
        assert_eq!(mail.max_us, 1000);
        assert_eq!(report[&Stage::Connect].max_us, 1);
        let back = StageHistograms::from_report(&report).unwrap();
        assert_eq!(back.get(Stage::Mail), set.get(Stage::Mail));
    }

    #[test]
    fn stage_names_match_serde() {
        for stage in Stage::ALL {
            let json = serde_json::to_string(&stage).unwrap();
            assert_eq!(json, format!("\"{}\"", stage.as_str()));
        }
    }
}
