//! The built binary, run on scenarios: exit codes, messages, report files.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;

fn lockstorm() -> Command {
    let mut c = Command::cargo_bin("lockstorm").unwrap();
    c.env("NO_COLOR", "1");
    c
}

fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir("tests/fixtures")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("bad-"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_malformed_scenario_exits_1_naming_its_line() {
    let files = fixtures();
    assert!(files.len() >= 6, "fixtures missing: {files:?}");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let out = lockstorm().arg("validate").arg(&f).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", f.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&f.display().to_string()),
            "{}: no file name in {err}",
            f.display()
        );
        for line in text.lines().filter_map(|l| l.strip_prefix("# expect: ")) {
            if let Some(n) = line.strip_prefix("line ") {
                let want = format!("{}:{}:", f.display(), n.trim());
                assert!(
                    err.contains(&want),
                    "{}: expected `{want}` in {err}",
                    f.display()
                );
            } else {
                assert!(
                    err.contains(line.trim()),
                    "{}: expected `{}` in {err}",
                    f.display(),
                    line.trim()
                );
            }
        }
        // `run` fails the same way, before touching any backend.
        lockstorm().arg("run").arg(&f).assert().code(1);
    }
}

#[test]
fn shipped_scenarios_validate() {
    let mut files: Vec<PathBuf> = std::fs::read_dir("scenarios")
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    lockstorm()
        .arg("validate")
        .args(&files)
        .assert()
        .success()
        .stdout(predicate::str::contains("ok     scenarios/quickstart.toml"));
}

#[test]
fn a_failed_threshold_exits_3_with_a_table() {
    lockstorm()
        .args(["run", "scenarios/mem-broken.toml", "--duration", "1s"])
        .assert()
        .code(3)
        .stdout(predicate::str::contains("FAIL max_violations"))
        .stderr(predicate::str::contains("UNSAFE"));
}

fn check_contract(report: &Path) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    for k in [
        "schema_version",
        "tool",
        "scenario",
        "backend",
        "completed",
        "elapsed_s",
        "totals",
        "latency_us",
        "fairness",
        "safety",
        "nodes",
        "timeseries",
        "faults",
        "thresholds",
    ] {
        assert!(v.get(k).is_some(), "report.json lacks {k}");
    }
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["tool"]["name"], "lockstorm");
    v
}

#[test]
fn report_dir_gets_every_file_and_the_json_contract() {
    let dir = tempfile::tempdir().unwrap();
    lockstorm()
        .args([
            "run",
            "scenarios/quickstart.toml",
            "--duration",
            "2s",
            "--headless",
            "--report",
        ])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "quickstart — mem:fifo [fenced fair lease]",
        ))
        .stderr(predicate::str::contains("acq/s"));
    for f in [
        "report.json",
        "report.md",
        "report.html",
        "timeseries.csv",
        "latency.hlog",
    ] {
        assert!(dir.path().join(f).exists(), "{f} missing");
    }
    let v = check_contract(&dir.path().join("report.json"));
    assert_eq!(v["completed"], true);
    assert_eq!(v["scenario"]["nodes"], 16);
    assert_eq!(v["backend"]["kind"], "mem");
    assert_eq!(v["safety"]["violations"], 0);
    assert!(v["totals"]["acquired"].as_u64().unwrap() > 100);
    let hlog = std::fs::read_to_string(dir.path().join("latency.hlog")).unwrap();
    assert!(
        hlog.lines().any(|l| l.starts_with("Tag=acquire,")),
        "{hlog}"
    );
}

#[test]
fn ctrl_c_writes_the_report_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let child = StdCommand::new(assert_cmd::cargo::cargo_bin("lockstorm"))
        .args([
            "run",
            "scenarios/quickstart.toml",
            "--duration",
            "60s",
            "--report",
        ])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let ok = StdCommand::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let v = check_contract(&dir.path().join("report.json"));
    assert_eq!(v["completed"], false);
}

#[test]
fn usage_errors_exit_2() {
    lockstorm().args(["run"]).assert().code(2);
    lockstorm()
        .args(["run", "scenarios/quickstart.toml", "--duration", "soon"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("500ms, 10s, 2m"));
}

#[test]
fn missing_file_is_a_runtime_error() {
    lockstorm()
        .args(["run", "no/such.toml"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no/such.toml"));
}

#[test]
fn backends_lists_kinds_variants_and_properties() {
    lockstorm()
        .arg("backends")
        .assert()
        .success()
        .stdout(predicate::str::contains("mem"))
        .stdout(predicate::str::contains("broken"))
        .stdout(predicate::str::contains("UNSAFE"))
        .stdout(predicate::str::contains("redis://127.0.0.1:6379"));
}
