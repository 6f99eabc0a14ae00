//! The comparison writers: `compare.json`, `compare.md`, `compare.html`
//! (and the text table printed at the end of `lockstorm compare`). Pure
//! functions of a [`Comparison`]; one module per format.

pub mod html;
pub mod json;
pub mod markdown;
pub mod text;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::human_us;
use crate::backend::catalog::Properties;
use crate::compare::Comparison;
use crate::metrics::RunResult;

/// Write `compare.json`, `compare.md` and `compare.html` into `dir`
/// (created if missing). Returns the paths written.
pub fn write_all(cmp: &Comparison, dir: &Path) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (name, text) in [
        ("compare.json", json::render(cmp)),
        ("compare.md", markdown::render(cmp)),
        ("compare.html", html::render(cmp)),
    ] {
        let p = dir.join(name);
        fs::write(&p, text)?;
        written.push(p);
    }
    Ok(written)
}

/// Property words: `fenced fair lease`, `no-fencing session UNSAFE`.
pub fn property_words(p: Properties) -> String {
    let mut b = vec![if p.fencing { "fenced" } else { "no-fencing" }];
    if p.fair {
        b.push("fair");
    }
    b.push(if p.lease { "lease" } else { "session" });
    if p.r#unsafe {
        b.push("UNSAFE");
    }
    b.join(" ")
}

/// Which way is better in a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// More is better.
    High,
    /// Less is better.
    Low,
}

/// One figure column of the comparison table.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Header.
    pub name: &'static str,
    /// Direction.
    pub better: Better,
    /// The value ranked for "best" (None: not comparable, e.g. no samples).
    pub key: fn(&RunResult) -> Option<f64>,
    /// The cell text.
    pub show: fn(&RunResult) -> String,
}

fn lat(l: &crate::metrics::LatencySummary, v: u64) -> Option<f64> {
    (l.count > 0).then_some(v as f64)
}

fn show_lat(l: &crate::metrics::LatencySummary, v: u64) -> String {
    if l.count == 0 {
        "–".into()
    } else {
        human_us(v)
    }
}

/// The figure columns, in table order.
pub const COLUMNS: &[Column] = &[
    Column {
        name: "acquisitions/s",
        better: Better::High,
        key: |r| Some(r.snapshot.totals.throughput_per_s),
        show: |r| format!("{:.0}", r.snapshot.totals.throughput_per_s),
    },
    Column {
        name: "acquire p50",
        better: Better::Low,
        key: |r| lat(&r.snapshot.latency.acquire, r.snapshot.latency.acquire.p50),
        show: |r| show_lat(&r.snapshot.latency.acquire, r.snapshot.latency.acquire.p50),
    },
    Column {
        name: "acquire p99",
        better: Better::Low,
        key: |r| lat(&r.snapshot.latency.acquire, r.snapshot.latency.acquire.p99),
        show: |r| show_lat(&r.snapshot.latency.acquire, r.snapshot.latency.acquire.p99),
    },
    Column {
        name: "acquire p99.9",
        better: Better::Low,
        key: |r| lat(&r.snapshot.latency.acquire, r.snapshot.latency.acquire.p999),
        show: |r| show_lat(&r.snapshot.latency.acquire, r.snapshot.latency.acquire.p999),
    },
    Column {
        name: "handoff p50",
        better: Better::Low,
        key: |r| lat(&r.snapshot.latency.handoff, r.snapshot.latency.handoff.p50),
        show: |r| show_lat(&r.snapshot.latency.handoff, r.snapshot.latency.handoff.p50),
    },
    Column {
        name: "Jain",
        better: Better::High,
        key: |r| (r.snapshot.totals.acquired > 0).then_some(r.snapshot.fairness.jain),
        show: |r| format!("{:.3}", r.snapshot.fairness.jain),
    },
    Column {
        name: "FIFO inversions",
        better: Better::Low,
        key: |r| Some(r.snapshot.fairness.fifo_inversions as f64),
        show: |r| r.snapshot.fairness.fifo_inversions.to_string(),
    },
    Column {
        name: "violations (fenced / unfenced)",
        better: Better::Low,
        // Unfenced ones weigh more than any number of fenced ones.
        key: |r| {
            let s = &r.snapshot.safety;
            Some(s.unfenced_violations as f64 * 1e12 + s.violations as f64)
        },
        show: |r| {
            let s = &r.snapshot.safety;
            format!(
                "{} ({} / {})",
                s.violations, s.fenced_violations, s.unfenced_violations
            )
        },
    },
    Column {
        name: "lost updates",
        better: Better::Low,
        key: |r| Some(r.snapshot.safety.lost_updates as f64),
        show: |r| r.snapshot.safety.lost_updates.to_string(),
    },
    Column {
        name: "errors",
        better: Better::Low,
        key: |r| Some(r.snapshot.totals.errors as f64),
        show: |r| r.snapshot.totals.errors.to_string(),
    },
];

/// `best[stage][column]`: whether that cell holds the best value of its
/// column. Only rows that ran compete; a column where every row is equal
/// marks nothing (there is no winner).
pub fn best(cmp: &Comparison) -> Vec<Vec<bool>> {
    let mut marks = vec![vec![false; COLUMNS.len()]; cmp.stages.len()];
    for (c, col) in COLUMNS.iter().enumerate() {
        let vals: Vec<Option<f64>> = cmp
            .stages
            .iter()
            .map(|s| s.run().and_then(col.key))
            .collect();
        let present: Vec<f64> = vals.iter().flatten().copied().collect();
        if present.len() < 2 {
            continue;
        }
        let top = match col.better {
            Better::High => present.iter().copied().fold(f64::MIN, f64::max),
            Better::Low => present.iter().copied().fold(f64::MAX, f64::min),
        };
        if present.iter().all(|v| *v == top) {
            continue;
        }
        for (s, v) in vals.iter().enumerate() {
            marks[s][c] = *v == Some(top);
        }
    }
    marks
}

#[cfg(test)]
pub(crate) mod fixture {
    //! A fixed comparison for the writers' tests: two rows that ran and one
    //! that failed.
    use crate::compare::{Comparison, Outcome, ScenarioInfo, StageResult};

    pub fn comparison() -> Comparison {
        let a = crate::report::fixture::result();
        let mut b = crate::report::fixture::result();
        b.backend_variant = "barging".into();
        b.properties.fair = false;
        b.snapshot.totals.throughput_per_s = 150.0;
        b.snapshot.latency.acquire.p99 = 700;
        b.snapshot.fairness.jain = 0.9;
        b.snapshot.fairness.fifo_inversions = 400;
        b.snapshot.safety.violations = 0;
        b.snapshot.safety.fenced_violations = 0;
        for p in &mut b.snapshot.series {
            p.throughput_per_s *= 1.5;
        }
        let stage = |r: crate::metrics::RunResult| StageResult {
            kind: r.backend_kind.clone(),
            variant: r.backend_variant.clone(),
            properties: r.properties,
            dir_name: format!("{}-{}", r.backend_kind, r.backend_variant),
            outcome: Outcome::Ok(Box::new(r)),
        };
        Comparison {
            scenario: ScenarioInfo {
                name: "fixture".into(),
                file: "scenarios/fixture.toml".into(),
                seed: 7,
                duration_s: 10.0,
                warmup_s: 0.0,
                nodes: 2,
                keys: 1,
            },
            stages: vec![
                stage(a),
                stage(b),
                StageResult {
                    kind: "redis".into(),
                    variant: "set-nx".into(),
                    properties: crate::backend::catalog::kind("redis").unwrap().variants[0]
                        .properties,
                    dir_name: "redis-set-nx".into(),
                    outcome: Outcome::Failed(
                        "cannot reach redis://127.0.0.1:1: connection refused <&>".into(),
                    ),
                },
            ],
            planned: 3,
            completed: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_the_best_of_each_column() {
        let cmp = fixture::comparison();
        let b = best(&cmp);
        let col = |name: &str| COLUMNS.iter().position(|c| c.name == name).unwrap();
        assert!(b[1][col("acquisitions/s")] && !b[0][col("acquisitions/s")]);
        assert!(b[1][col("acquire p99")]);
        assert!(b[0][col("Jain")] && b[0][col("FIFO inversions")]);
        assert!(b[1][col("violations (fenced / unfenced)")]);
        // Equal everywhere: no winner.
        assert!(!b[0][col("acquire p50")] && !b[1][col("acquire p50")]);
        assert!(!b[0][col("errors")]);
        // The failed row never wins.
        assert!(b[2].iter().all(|m| !m));
    }

    #[test]
    fn writes_the_three_files() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_all(&fixture::comparison(), dir.path()).unwrap();
        assert_eq!(files.len(), 3);
        for f in files {
            assert!(std::fs::metadata(f).unwrap().len() > 100);
        }
    }
}
