//! Checking a finished run against the scenario's `[thresholds]`.

use crate::metrics::{Snapshot, ThresholdResult};
use crate::scenario::Thresholds;

/// Evaluate every threshold the scenario sets, in a fixed order.
pub fn evaluate(t: &Thresholds, snap: &Snapshot) -> Vec<ThresholdResult> {
    let mut out = Vec::new();
    let mut max = |name: &str, limit: f64, actual: f64| {
        out.push(ThresholdResult {
            name: name.to_string(),
            limit,
            actual,
            passed: actual <= limit,
        })
    };
    if let Some(l) = t.max_violations {
        max("max_violations", l as f64, snap.safety.violations as f64);
    }
    if let Some(l) = t.max_unfenced_violations {
        max(
            "max_unfenced_violations",
            l as f64,
            snap.safety.unfenced_violations as f64,
        );
    }
    if let Some(l) = t.p99_acquire {
        // In µs, like every latency in the report.
        max(
            "p99_acquire",
            l.as_micros() as f64,
            snap.latency.acquire.p99 as f64,
        );
    }
    let mut min = |name: &str, limit: f64, actual: f64| {
        out.push(ThresholdResult {
            name: name.to_string(),
            limit,
            actual,
            passed: actual >= limit,
        })
    };
    if let Some(l) = t.min_throughput {
        min("min_throughput", l, snap.totals.throughput_per_s);
    }
    if let Some(l) = t.min_jain {
        min("min_jain", l, snap.fairness.jain);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn each_threshold_compares_the_right_figure() {
        let mut s = Snapshot::default();
        s.safety.violations = 2;
        s.safety.unfenced_violations = 0;
        s.latency.acquire.p99 = 40_000;
        s.totals.throughput_per_s = 450.0;
        s.fairness.jain = 0.9;
        let t = Thresholds {
            max_violations: Some(0),
            max_unfenced_violations: Some(0),
            p99_acquire: Some(Duration::from_millis(50)),
            min_throughput: Some(500.0),
            min_jain: Some(0.8),
        };
        let r = evaluate(&t, &s);
        let got: Vec<(&str, bool)> = r.iter().map(|r| (r.name.as_str(), r.passed)).collect();
        assert_eq!(
            got,
            vec![
                ("max_violations", false),
                ("max_unfenced_violations", true),
                ("p99_acquire", true),
                ("min_throughput", false),
                ("min_jain", true)
            ]
        );
        assert_eq!(r[2].limit, 50_000.0);
        assert!(evaluate(&Thresholds::default(), &s).is_empty());
    }
}
