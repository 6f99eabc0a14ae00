//! Pure statistics: percentile summaries and fairness.

use hdrhistogram::Histogram;

use super::snapshot::{Fairness, LatencySummary};

/// Percentile summary of a histogram (µs); all zero when it is empty.
pub fn summarize(h: &Histogram<u64>) -> LatencySummary {
    if h.is_empty() {
        return LatencySummary::default();
    }
    LatencySummary {
        count: h.len(),
        min: h.min(),
        mean: h.mean(),
        p50: h.value_at_quantile(0.50),
        p90: h.value_at_quantile(0.90),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
    }
}

/// Fairness over per-node acquisition counts. `max_wait_us` and
/// `fifo_inversions` are passed through.
pub fn fairness_of(acquired: &[u64], max_wait_us: u64, fifo_inversions: u64) -> Fairness {
    let n = acquired.len() as f64;
    let sum: f64 = acquired.iter().map(|&x| x as f64).sum();
    let sum_sq: f64 = acquired.iter().map(|&x| (x as f64) * (x as f64)).sum();
    let (jain, cov) = if n == 0.0 || sum == 0.0 {
        (1.0, 0.0)
    } else {
        let mean = sum / n;
        let var = (sum_sq / n - mean * mean).max(0.0);
        (sum * sum / (n * sum_sq), var.sqrt() / mean)
    };
    Fairness {
        jain,
        cov,
        min_node_acquired: acquired.iter().copied().min().unwrap_or(0),
        max_node_acquired: acquired.iter().copied().max().unwrap_or(0),
        max_wait_us,
        fifo_inversions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jain_is_one_when_even_and_one_over_n_when_one_node_gets_all() {
        let f = fairness_of(&[10, 10, 10, 10], 5, 2);
        assert!((f.jain - 1.0).abs() < 1e-12);
        assert_eq!(f.cov, 0.0);
        assert_eq!((f.min_node_acquired, f.max_node_acquired), (10, 10));
        assert_eq!((f.max_wait_us, f.fifo_inversions), (5, 2));
        let f = fairness_of(&[40, 0, 0, 0], 0, 0);
        assert!((f.jain - 0.25).abs() < 1e-12);
        // mean 10, stddev sqrt((900 + 3*100)/4) = sqrt(300)
        assert!((f.cov - 300f64.sqrt() / 10.0).abs() < 1e-12);
    }

    #[test]
    fn jain_of_two_to_one() {
        // (3)^2 / (2 * (4 + 1)) = 0.9
        let f = fairness_of(&[2, 1], 0, 0);
        assert!((f.jain - 0.9).abs() < 1e-12);
    }

    #[test]
    fn empty_is_fair_and_zero() {
        let f = fairness_of(&[], 0, 0);
        assert_eq!(f.jain, 1.0);
        assert_eq!(f.min_node_acquired, 0);
        assert_eq!(
            summarize(&Histogram::<u64>::new(3).unwrap()),
            LatencySummary::default()
        );
    }

    #[test]
    fn summary_percentiles_are_exact_for_small_values() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for v in 1..=1000 {
            h.record(v).unwrap();
        }
        let s = summarize(&h);
        assert_eq!(s.count, 1000);
        assert_eq!(
            (s.min, s.p50, s.p90, s.p99, s.p999, s.max),
            (1, 500, 900, 990, 999, 1000)
        );
        assert!((s.mean - 500.5).abs() < 0.01);
    }
}
