//! `lockstorm compare`, run as the built binary: stages, files, rows, a
//! backend that cannot be reached, and usage errors.

mod support;

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn lockstorm() -> Command {
    let mut c = Command::cargo_bin("lockstorm").unwrap();
    c.env("NO_COLOR", "1");
    c
}

fn read_json(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

/// Parse an HTML report as XML (they are written well-formed); return the
/// number of SVG charts.
fn svg_charts(p: &Path) -> usize {
    let html = std::fs::read_to_string(p).unwrap();
    let doc = roxmltree::Document::parse_with_options(
        &html,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{} is not well-formed: {e}", p.display()));
    assert!(!html.contains("<script"), "{} has a script", p.display());
    doc.descendants()
        .filter(|n| n.tag_name().name() == "svg")
        .count()
}

const STAGE_FILES: [&str; 5] = [
    "report.json",
    "report.md",
    "report.html",
    "timeseries.csv",
    "latency.hlog",
];

#[test]
fn compares_mem_fifo_mem_barging_and_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    lockstorm()
        .args([
            "compare",
            "scenarios/choose-a-lock.toml",
            "--backend",
            "mem:fifo,mem:barging",
            "--backend",
            "sqlite",
            "--duration",
            "2s",
            "--report",
        ])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("mem:barging"))
        .stdout(predicate::str::contains("(* best in column)"))
        .stderr(predicate::str::contains("[3/3] sqlite:lease-row"));
    let d = dir.path();
    for stage in ["mem-fifo", "mem-barging", "sqlite-lease-row"] {
        for f in STAGE_FILES {
            assert!(d.join(stage).join(f).exists(), "{stage}/{f} missing");
        }
        let r = read_json(&d.join(stage).join("report.json"));
        assert_eq!(r["scenario"]["seed"], 42, "every stage runs the same seed");
    }
    let v = read_json(&d.join("compare.json"));
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["scenario"]["name"], "choose-a-lock");
    assert_eq!(v["scenario"]["seed"], 42);
    let rows = v["rows"].as_array().unwrap();
    let ids: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_string(),
                r["variant"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [("mem", "fifo"), ("mem", "barging"), ("sqlite", "lease-row")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
    );
    for r in rows {
        assert_eq!(r["status"], "ok", "{r}");
        assert!(r["totals"]["acquired"].as_u64().unwrap() > 50, "{r}");
        assert_eq!(r["safety"]["unfenced_violations"], 0);
        assert!(r["latency_us"]["acquire"]["p99"].as_u64().unwrap() > 0);
        assert!(r["fairness"]["jain"].as_f64().unwrap() > 0.5);
        assert!(d.join(r["report_dir"].as_str().unwrap()).is_dir());
    }
    assert_eq!(rows[0]["properties"]["fair"], true);
    assert_eq!(rows[1]["properties"]["fair"], false);
    let md = std::fs::read_to_string(d.join("compare.md")).unwrap();
    for row in [
        "| `mem:fifo` | fenced fair lease |",
        "| `mem:barging` | fenced lease |",
        "| `sqlite:lease-row` | fenced lease |",
    ] {
        assert!(md.contains(row), "compare.md lacks {row}:\n{md}");
    }
    assert!(md.contains("- **`mem:fifo`**: "));
    assert!(md.contains("**"), "some best value is marked");
    assert!(svg_charts(&d.join("compare.html")) >= 4);
    assert!(svg_charts(&d.join("mem-fifo/report.html")) >= 4);
}

#[test]
fn an_unreachable_backend_is_a_failed_row_and_the_rest_still_run() {
    let port = support::free_port();
    let dir = tempfile::tempdir().unwrap();
    let scn = dir.path().join("redis-down.toml");
    std::fs::write(
        &scn,
        format!(
            "name = \"redis-down\"\nseed = 5\nduration = \"1500ms\"\n\n[backend]\nkind = \"redis\"\nurl = \"redis://127.0.0.1:{port}\"\n\n[workload]\nnodes = 4\nhold = \"1ms\"\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    lockstorm()
        .arg("compare")
        .arg(&scn)
        .args(["-b", "redis:set-nx", "-b", "mem:fifo", "--report"])
        .arg(&out)
        .assert()
        .code(0)
        .stderr(predicate::str::contains(format!("127.0.0.1:{port}")));
    let v = read_json(&out.join("compare.json"));
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["kind"], "redis");
    assert_eq!(rows[0]["status"], "failed");
    let err = rows[0]["error"].as_str().unwrap();
    assert!(err.contains(&format!("redis://127.0.0.1:{port}")), "{err}");
    assert!(err.contains("scripts/backends up redis"), "{err}");
    assert!(
        !out.join("redis-set-nx").exists(),
        "no report for a stage that never ran"
    );
    assert_eq!(rows[1]["kind"], "mem");
    assert_eq!(rows[1]["status"], "ok");
    assert!(rows[1]["totals"]["acquired"].as_u64().unwrap() > 0);
    assert!(out.join("mem-fifo/report.json").exists());
    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    assert!(md.contains("| `redis:set-nx` | fenced lease | **failed** |"));
    assert!(md.contains("- **`redis:set-nx`**: not measured: cannot reach"));
    svg_charts(&out.join("compare.html"));
}

#[test]
fn nothing_runnable_exits_1_with_the_failed_rows() {
    let port = support::free_port();
    let dir = tempfile::tempdir().unwrap();
    let scn = dir.path().join("down.toml");
    std::fs::write(
        &scn,
        format!(
            "name = \"down\"\nduration = \"1s\"\n[backend]\nkind = \"redis\"\nurl = \"redis://127.0.0.1:{port}\"\n"
        ),
    )
    .unwrap();
    lockstorm()
        .arg("compare")
        .arg(&scn)
        .args(["-b", "redis", "--report"])
        .arg(dir.path().join("out"))
        .assert()
        .code(1)
        .stdout(predicate::str::contains("redis:set-nx  failed"))
        .stderr(predicate::str::contains("no backend could be run"));
    let v = read_json(&dir.path().join("out/compare.json"));
    assert_eq!(v["rows"][0]["status"], "failed");
}

#[test]
fn bad_backend_names_are_usage_errors() {
    lockstorm()
        .args(["compare", "scenarios/choose-a-lock.toml", "-b", "reddis"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("did you mean `redis`?"));
    lockstorm()
        .args(["compare", "scenarios/choose-a-lock.toml", "-b", "mem:fifoo"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("mem has no variant `fifoo`"));
    lockstorm()
        .args(["compare", "scenarios/choose-a-lock.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--backend"));
}
