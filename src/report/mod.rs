//! Report writers: pure functions from a [`RunResult`] to files. One module
//! per format.

pub mod chart;
pub mod compare;
pub mod csv;
pub mod hlog;
pub mod html;
pub mod json;
pub mod markdown;
pub mod svg;
pub mod text;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::metrics::RunResult;

/// Write `report.json`, `report.md`, `report.html`, `timeseries.csv` and `latency.hlog`
/// into `dir` (created if missing). Returns the paths written.
pub fn write_all(r: &RunResult, dir: &Path) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let mut put = |name: &str, bytes: Vec<u8>| -> io::Result<()> {
        let p = dir.join(name);
        fs::write(&p, bytes)?;
        written.push(p);
        Ok(())
    };
    put("report.json", json::render(r).into_bytes())?;
    put("report.md", markdown::render(r).into_bytes())?;
    put("report.html", html::render(r).into_bytes())?;
    put("timeseries.csv", csv::render(r).into_bytes())?;
    put("latency.hlog", hlog::render(r)?)?;
    Ok(written)
}

/// Format microseconds for people: `850µs`, `12.3ms`, `4.21s`.
pub fn human_us(us: u64) -> String {
    match us {
        0..1_000 => format!("{us}µs"),
        1_000..1_000_000 => format!("{:.2}ms", us as f64 / 1e3),
        _ => format!("{:.2}s", us as f64 / 1e6),
    }
}

#[cfg(test)]
pub(crate) mod fixture {
    //! A fixed result for the writers' tests.
    use crate::backend::catalog::Properties;
    use crate::metrics::*;

    pub fn result() -> RunResult {
        let mut snap = Snapshot {
            phase: Some(Phase::Done),
            elapsed_s: 10.0,
            total_s: 10.0,
            ..Snapshot::default()
        };
        snap.totals = Totals {
            attempts: 1010,
            acquired: 1000,
            timeouts: 10,
            errors: 0,
            released: 998,
            throughput_per_s: 100.0,
        };
        snap.latency.acquire = LatencySummary {
            count: 1000,
            min: 5,
            mean: 120.5,
            p50: 100,
            p90: 200,
            p99: 900,
            p999: 1500,
            max: 2000,
        };
        snap.fairness = crate::metrics::fairness_of(&[600, 400], 2000, 3);
        snap.safety = Safety {
            violations: 2,
            fenced_violations: 2,
            unfenced_violations: 0,
            lost_leases: 2,
            lost_updates: 0,
            stale_rejected: 2,
            examples: vec![ViolationExample {
                t_s: 1.5,
                key: "lockstorm:ab:k0".into(),
                nodes: [0, 1],
                overlap_us: 250,
                fenced: true,
            }],
        };
        snap.nodes = vec![
            NodeRow {
                id: 0,
                acquired: 600,
                p99_us: 800,
                ..NodeRow::default()
            },
            NodeRow {
                id: 1,
                acquired: 400,
                timeouts: 10,
                p99_us: 1000,
                ..NodeRow::default()
            },
        ];
        snap.series = vec![
            SeriesPoint {
                t_s: 1.0,
                acquired: 100,
                throughput_per_s: 100.0,
                p50_us: 100,
                p99_us: 900,
                ..SeriesPoint::default()
            },
            SeriesPoint {
                t_s: 2.0,
                acquired: 90,
                throughput_per_s: 90.0,
                violations: 2,
                ..SeriesPoint::default()
            },
        ];
        let mut h = hdrhistogram::Histogram::<u64>::new(3).unwrap();
        h.record(100).unwrap();
        h.record(900).unwrap();
        let mut encoded = Vec::new();
        use hdrhistogram::serialization::Serializer;
        hdrhistogram::serialization::V2DeflateSerializer::new()
            .serialize(&h, &mut encoded)
            .unwrap();
        RunResult {
            scenario_name: "fixture".into(),
            scenario_file: "scenarios/fixture.toml".into(),
            seed: 7,
            duration_s: 10.0,
            warmup_s: 0.0,
            nodes: 2,
            keys: 1,
            backend_kind: "mem".into(),
            backend_variant: "fifo".into(),
            endpoints: vec![],
            properties: Properties {
                fencing: true,
                fair: true,
                lease: true,
                r#unsafe: false,
            },
            run_id: "ab".into(),
            completed: true,
            elapsed_s: 10.01,
            snapshot: snap,
            thresholds: vec![ThresholdResult {
                name: "max_unfenced_violations".into(),
                limit: 0.0,
                actual: 0.0,
                passed: true,
            }],
            warnings: vec![],
            faults: vec![],
            tick_s: 1.0,
            interval_histograms: vec![IntervalHistogram {
                start_s: 0.0,
                duration_s: 1.0,
                encoded,
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human_us(850), "850µs");
        assert_eq!(human_us(12_345), "12.35ms");
        assert_eq!(human_us(4_210_000), "4.21s");
    }

    #[test]
    fn writes_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_all(&fixture::result(), dir.path()).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "report.json",
                "report.md",
                "report.html",
                "timeseries.csv",
                "latency.hlog"
            ]
        );
        for f in files {
            assert!(std::fs::metadata(f).unwrap().len() > 0);
        }
    }
}
