//! Combining the reports of several runs (e.g. the workers of a Kubernetes Indexed Job, see
//! `docs/load-k8s-job.yaml`) into one, exactly: counts add, histograms add bucket by bucket, and the
//! percentiles are recomputed from the sum. This backs `mailrig load merge a.json b.json`.

use std::collections::BTreeSet;

use crate::errors::LoadError;
use crate::histogram::StageHistograms;
use crate::report::{REPORT_FORMAT, Report};

/// Merges reports into one covering all their runs. The wall time is from the earliest start to the latest
/// end, so the rates of workers that ran side by side add up.
pub fn merge(reports: &[Report]) -> Result<Report, LoadError> {
    let (first, rest) = reports
        .split_first()
        .ok_or_else(|| LoadError::Report("nothing to merge: give at least one report".into()))?;
    for (i, r) in reports.iter().enumerate() {
        if r.format != REPORT_FORMAT {
            return Err(LoadError::Report(format!(
                "report {} has format {}, expected {REPORT_FORMAT}",
                i + 1,
                r.format
            )));
        }
    }
    let mut seen = BTreeSet::new();
    for r in reports {
        for run in &r.runs {
            if !seen.insert(run.run_id.as_str()) {
                return Err(LoadError::Report(format!(
                    "run '{}' appears in more than one report: merge each report once, and give each worker its own --run-id",
                    run.run_id
                )));
            }
        }
    }
    let mut merged = first.clone();
    let mut latency = StageHistograms::from_report(&first.latency)
        .map_err(|e| LoadError::Report(format!("report 1: {e}")))?;
    for (i, r) in rest.iter().enumerate() {
        let other = StageHistograms::from_report(&r.latency)
            .map_err(|e| LoadError::Report(format!("report {}: {e}", i + 2)))?;
        latency.add(&other)?;
        merged.add_counts(r);
        merged.runs.extend(r.runs.iter().cloned());
        merged.accepted.extend(r.accepted.iter().cloned());
        merged.started_unix_ms = merged.started_unix_ms.min(r.started_unix_ms);
        merged.finished_unix_ms = merged.finished_unix_ms.max(r.finished_unix_ms);
    }
    if !rest.is_empty() {
        // A delivery check stands for its own run only.
        merged.verification = None;
        merged.accept_times = None;
        merged.elapsed_secs = merged
            .finished_unix_ms
            .saturating_sub(merged.started_unix_ms) as f64
            / 1000.0;
    }
    merged.latency = latency.to_report()?;
    merged.compute_rates();
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::ErrorKind;
    use crate::report::Tally;
    use crate::report::tests::info;
    use crate::stage::Stage;
    use std::time::Duration;

    /// A deterministic pseudo-random tally: `seed` picks the samples.
    fn tally(seed: u64, n: u64) -> Tally {
        let mut t = Tally::default();
        let mut x = seed;
        for i in 0..n {
            x = crate::config::splitmix64(x);
            t.latency
                .record(Stage::Mail, Duration::from_micros(x % 5_000));
            t.latency
                .record(Stage::Message, Duration::from_micros(x % 2_000_000));
            if x.is_multiple_of(10) {
                t.record_failure(ErrorKind::Rejected, Some((Stage::Rcpt, 550)), "550");
            } else {
                t.counts.accepted += 1;
                t.accepted.insert(seed * 1000 + i, &[]);
            }
            t.counts.attempted += 1;
        }
        t
    }

    #[test]
    fn merging_two_reports_equals_the_report_of_the_union() {
        let recipients = vec!["a@x".to_string()];
        let a = tally(1, 500)
            .into_report(info("a", 0, 10.0), recipients.clone())
            .unwrap();
        let b = tally(2, 700)
            .into_report(info("b", 0, 10.0), recipients.clone())
            .unwrap();
        let merged = merge(&[a.clone(), b.clone()]).unwrap();

        let mut union = tally(1, 500);
        union.absorb(tally(2, 700)).unwrap();
        let union = union.into_report(info("u", 0, 10.0), recipients).unwrap();

        assert_eq!(
            merged.latency, union.latency,
            "percentiles and histograms are exact"
        );
        assert_eq!(merged.counts, union.counts);
        assert_eq!(merged.errors.by_kind, union.errors.by_kind);
        assert_eq!(merged.errors.by_code, union.errors.by_code);
        assert_eq!(merged.messages_per_sec, union.messages_per_sec);
        assert_eq!(merged.runs.len(), 2);
        assert_eq!(
            merged.accepted.iter().map(|a| a.count()).sum::<u64>(),
            union.accepted[0].count()
        );
        // and merging is order-independent for the numbers
        let other_way = merge(&[b, a]).unwrap();
        assert_eq!(other_way.latency, merged.latency);
    }

    #[test]
    fn side_by_side_runs_add_their_rates() {
        let r = vec!["a@x".to_string()];
        let a = tally(1, 100)
            .into_report(info("a", 1_000, 10.0), r.clone())
            .unwrap();
        let b = tally(2, 100)
            .into_report(info("b", 2_000, 10.0), r)
            .unwrap();
        let m = merge(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(m.elapsed_secs, 11.0);
        assert_eq!(m.counts.accepted, a.counts.accepted + b.counts.accepted);
        assert_eq!(m.messages_per_sec, m.counts.accepted as f64 / 11.0);
    }

    #[test]
    fn merge_refuses_nothing_duplicates_and_corruption() {
        assert!(
            merge(&[])
                .unwrap_err()
                .to_string()
                .contains("nothing to merge")
        );
        let r = vec!["a@x".to_string()];
        let a = tally(1, 10).into_report(info("a", 0, 1.0), r).unwrap();
        assert!(
            merge(&[a.clone(), a.clone()])
                .unwrap_err()
                .to_string()
                .contains("--run-id")
        );
        let mut bad = a.clone();
        bad.runs[0].run_id = "other".into();
        if let Some(s) = bad.latency.get_mut(&Stage::Mail) {
            s.histogram = "bm90IGEgaGlzdG9ncmFt".into();
        }
        let e = merge(&[a, bad]).unwrap_err().to_string();
        assert!(e.contains("report 2") && e.contains("mail"), "{e}");
    }
}
