//! `compare.json`, schema_version 1 (contract in DESIGN.md): one row per
//! backend with the same shapes as `report.json`. Keys may be added; none
//! may be removed or renamed without bumping the version.

use serde_json::{Value, json};

use crate::compare::{Comparison, Outcome, verdict::verdict};
use crate::report::json::{SCHEMA_VERSION, latency};

/// The comparison as a JSON value.
pub fn value(cmp: &Comparison) -> Value {
    let s = &cmp.scenario;
    let rows: Vec<Value> = cmp
        .stages
        .iter()
        .map(|st| {
            let mut row = json!({
                "kind": st.kind,
                "variant": st.variant,
                "status": "ok",
                "report_dir": st.dir_name,
                "properties": st.properties,
                "verdict": verdict(st, cmp),
            });
            match &st.outcome {
                Outcome::Failed(reason) => {
                    row["status"] = json!("failed");
                    row["error"] = json!(reason);
                    for k in ["totals", "latency_us", "fairness", "safety"] {
                        row[k] = Value::Null;
                    }
                }
                Outcome::Ok(r) => {
                    let sn = &r.snapshot;
                    row["completed"] = json!(r.completed);
                    row["elapsed_s"] = json!(r.elapsed_s);
                    row["endpoints"] = json!(r.endpoints);
                    row["totals"] = json!(sn.totals);
                    row["latency_us"] = json!({
                        "acquire": latency(&sn.latency.acquire),
                        "release": latency(&sn.latency.release),
                        "handoff": latency(&sn.latency.handoff),
                    });
                    row["fairness"] = json!(sn.fairness);
                    row["safety"] = json!(sn.safety);
                    row["thresholds"] = json!(r.thresholds);
                }
            }
            row
        })
        .collect();
    json!({
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "lockstorm", "version": env!("CARGO_PKG_VERSION")},
        "scenario": {
            "name": s.name, "file": s.file, "seed": s.seed, "duration_s": s.duration_s,
            "warmup_s": s.warmup_s, "nodes": s.nodes, "keys": s.keys,
        },
        "completed": cmp.completed,
        "planned": cmp.planned,
        "rows": rows,
    })
}

/// `compare.json` text (pretty, newline-terminated).
pub fn render(cmp: &Comparison) -> String {
    let mut s = serde_json::to_string_pretty(&value(cmp)).expect("a JSON value always serializes");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_follow_the_contract() {
        let v = value(&crate::report::compare::fixture::comparison());
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["scenario"]["seed"], 7);
        let rows = v["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 3);
        for r in rows {
            for k in [
                "kind",
                "variant",
                "status",
                "report_dir",
                "properties",
                "totals",
                "latency_us",
                "fairness",
                "safety",
            ] {
                assert!(r.get(k).is_some(), "row lacks {k}");
            }
        }
        assert_eq!(rows[0]["status"], "ok");
        assert_eq!(rows[0]["latency_us"]["acquire"]["p99"], 900);
        assert_eq!(rows[1]["variant"], "barging");
        assert_eq!(rows[1]["fairness"]["fifo_inversions"], 400);
        assert_eq!(rows[2]["status"], "failed");
        assert!(rows[2]["error"].as_str().unwrap().contains("cannot reach"));
        assert_eq!(rows[2]["properties"]["fencing"], true);
    }

    #[test]
    fn snapshot() {
        let text = render(&crate::report::compare::fixture::comparison());
        insta::assert_snapshot!(text.replace(env!("CARGO_PKG_VERSION"), "[version]"));
    }
}
