//! Per-function error rate and duration percentiles over a recent window of ended runs.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use crate::shared::State;
use crate::state::RunStatus;

/// How far back the window reaches: runs that ended in the last hour…
pub(crate) const WINDOW_MINUTES: i64 = 60;
/// …at most this many (the newest) per function.
pub(crate) const WINDOW_RUNS: usize = 1000;

/// What the window says about one function.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FunctionStats {
    /// Ended runs in the window (completed, failed or cancelled).
    pub(crate) ended: usize,
    /// Of which failed.
    pub(crate) failed: usize,
    /// Median duration, milliseconds (nearest rank).
    pub(crate) p50_ms: Option<i64>,
    /// 95th percentile duration, milliseconds (nearest rank).
    pub(crate) p95_ms: Option<i64>,
}

impl FunctionStats {
    /// Failed ÷ ended, as a percentage (`None` with no ended run).
    pub(crate) fn error_rate(&self) -> Option<f64> {
        (self.ended > 0).then(|| self.failed as f64 * 100.0 / self.ended as f64)
    }

    /// The statistics of these `(status, duration ms)` samples.
    pub(crate) fn of(samples: &[(RunStatus, i64)]) -> FunctionStats {
        let mut durations: Vec<i64> = samples.iter().map(|&(_, d)| d).collect();
        durations.sort_unstable();
        FunctionStats {
            ended: samples.len(),
            failed: samples
                .iter()
                .filter(|(s, _)| *s == RunStatus::Failed)
                .count(),
            p50_ms: percentile(&durations, 50),
            p95_ms: percentile(&durations, 95),
        }
    }
}

/// The nearest-rank `p`th percentile of sorted values.
fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// Statistics of every function that has ended runs in the window ending at `now`, by
/// composite function id. One pass over the runs, newest first.
pub(crate) fn window(st: &State, now: DateTime<Utc>) -> HashMap<String, FunctionStats> {
    let since = now - Duration::minutes(WINDOW_MINUTES);
    let mut samples: HashMap<&str, Vec<(RunStatus, i64)>> = HashMap::new();
    for run in st.run_order.iter().rev().filter_map(|id| st.runs.get(id)) {
        let Some(ended) = run.ended_at.filter(|t| *t >= since) else {
            continue;
        };
        let bucket = samples.entry(run.function.slug.as_str()).or_default();
        if bucket.len() < WINDOW_RUNS {
            let ms = super::format::millis_between(run.started_at, ended);
            bucket.push((run.status, ms));
        }
    }
    samples
        .into_iter()
        .map(|(f, s)| (f.to_owned(), FunctionStats::of(&s)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_and_error_rate() {
        let samples: Vec<(RunStatus, i64)> = (1..=20)
            .map(|i| {
                let s = if i % 5 == 0 {
                    RunStatus::Failed
                } else {
                    RunStatus::Completed
                };
                (s, i * 10)
            })
            .collect();
        let st = FunctionStats::of(&samples);
        assert_eq!(st.ended, 20);
        assert_eq!(st.failed, 4);
        assert_eq!(st.error_rate(), Some(20.0));
        assert_eq!(st.p50_ms, Some(100));
        assert_eq!(st.p95_ms, Some(190));
        assert_eq!(FunctionStats::of(&[]).error_rate(), None);
        assert_eq!(percentile(&[7], 95), Some(7));
    }
}
