//! `timeseries.csv`: one row per collector interval.

use std::fmt::Write;

use crate::metrics::RunResult;

/// Column names, in order.
pub const HEADER: &str =
    "t_s,acquired,throughput_per_s,timeouts_per_s,errors_per_s,p50_us,p99_us,p999_us,violations";

/// The CSV text.
pub fn render(r: &RunResult) -> String {
    let mut out = String::with_capacity(64 * (r.snapshot.series.len() + 1));
    out.push_str(HEADER);
    out.push('\n');
    for p in &r.snapshot.series {
        let _ = writeln!(
            out,
            "{:.3},{},{:.1},{:.1},{:.1},{},{},{},{}",
            p.t_s,
            p.acquired,
            p.throughput_per_s,
            p.timeouts_per_s,
            p.errors_per_s,
            p.p50_us,
            p.p99_us,
            p.p999_us,
            p.violations
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_row_per_point() {
        let s = super::render(&crate::report::fixture::result());
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], super::HEADER);
        assert_eq!(lines[1], "1.000,100,100.0,0.0,0.0,100,900,0,0");
        assert_eq!(lines[2], "2.000,90,90.0,0.0,0.0,0,0,0,2");
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn snapshot() {
        insta::assert_snapshot!(super::render(&crate::report::fixture::result()));
    }
}
