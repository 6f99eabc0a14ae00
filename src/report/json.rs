//! `report.json`, schema_version 1 (contract in DESIGN.md). Keys may be
//! added; none may be removed or renamed without bumping the version.

use serde_json::{Value, json};

use crate::metrics::{LatencySummary, RunResult};

/// The report schema version.
pub const SCHEMA_VERSION: u32 = 1;

/// A latency summary as in report.json.
pub fn latency(s: &LatencySummary) -> Value {
    json!({
        "count": s.count, "min": s.min, "mean": s.mean, "p50": s.p50, "p90": s.p90,
        "p99": s.p99, "p999": s.p999, "max": s.max,
    })
}

/// The report as a JSON value.
pub fn value(r: &RunResult) -> Value {
    let s = &r.snapshot;
    json!({
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "lockstorm", "version": env!("CARGO_PKG_VERSION")},
        "scenario": {
            "name": r.scenario_name, "file": r.scenario_file, "seed": r.seed,
            "duration_s": r.duration_s, "warmup_s": r.warmup_s,
            "nodes": r.nodes, "keys": r.keys, "run_id": r.run_id,
        },
        "backend": {
            "kind": r.backend_kind, "variant": r.backend_variant,
            "endpoints": r.endpoints, "properties": r.properties,
        },
        "completed": r.completed,
        "elapsed_s": r.elapsed_s,
        "totals": s.totals,
        "latency_us": {
            "acquire": latency(&s.latency.acquire),
            "release": latency(&s.latency.release),
            "handoff": latency(&s.latency.handoff),
        },
        "fairness": s.fairness,
        "safety": s.safety,
        "nodes": s.nodes.iter().map(|n| json!({
            "id": n.id, "acquired": n.acquired, "timeouts": n.timeouts, "errors": n.errors,
            "p50_us": n.p50_us, "p99_us": n.p99_us, "max_wait_us": n.max_wait_us,
        })).collect::<Vec<_>>(),
        "timeseries": s.series,
        "faults": r.faults,
        "thresholds": r.thresholds,
        "warnings": r.warnings,
        "tick_s": r.tick_s,
    })
}

/// `report.json` text (pretty, newline-terminated).
pub fn render(r: &RunResult) -> String {
    let mut s = serde_json::to_string_pretty(&value(r)).expect("a JSON value always serializes");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_every_contract_key() {
        let v = value(&crate::report::fixture::result());
        let need: &[(&str, &[&str])] = &[
            ("tool", &["name", "version"]),
            (
                "scenario",
                &["name", "file", "seed", "duration_s", "nodes", "keys"],
            ),
            ("backend", &["kind", "variant", "endpoints", "properties"]),
            (
                "totals",
                &[
                    "attempts",
                    "acquired",
                    "timeouts",
                    "errors",
                    "released",
                    "throughput_per_s",
                ],
            ),
            ("latency_us", &["acquire", "release", "handoff"]),
            (
                "fairness",
                &[
                    "jain",
                    "cov",
                    "min_node_acquired",
                    "max_node_acquired",
                    "max_wait_us",
                    "fifo_inversions",
                ],
            ),
            (
                "safety",
                &[
                    "violations",
                    "fenced_violations",
                    "unfenced_violations",
                    "lost_leases",
                    "lost_updates",
                    "examples",
                ],
            ),
        ];
        for (k, subs) in need {
            for s in *subs {
                assert!(v[k].get(s).is_some(), "missing {k}.{s}");
            }
        }
        for k in [
            "schema_version",
            "completed",
            "elapsed_s",
            "nodes",
            "timeseries",
            "faults",
            "thresholds",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        for p in ["fencing", "fair", "lease", "unsafe"] {
            assert!(
                v["backend"]["properties"].get(p).is_some(),
                "missing property {p}"
            );
        }
        for h in ["acquire", "release", "handoff"] {
            for p in ["count", "min", "mean", "p50", "p90", "p99", "p999", "max"] {
                assert!(
                    v["latency_us"][h].get(p).is_some(),
                    "missing latency_us.{h}.{p}"
                );
            }
        }
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["latency_us"]["acquire"]["p99"], 900);
        assert_eq!(v["safety"]["examples"][0]["nodes"], json!([0, 1]));
        assert_eq!(v["nodes"][1]["p99_us"], 1000);
        assert_eq!(v["timeseries"][1]["violations"], 2);
        assert_eq!(v["thresholds"][0]["passed"], true);
    }

    #[test]
    fn snapshot() {
        let text = render(&crate::report::fixture::result());
        let text = text.replace(env!("CARGO_PKG_VERSION"), "[version]");
        insta::assert_snapshot!(text);
    }
}
