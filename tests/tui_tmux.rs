//! End to end: the real binary's dashboard in a tmux pane, driven with
//! `send-keys` and read with `capture-pane`, on the `mem` backend.
//!
//! Skips when tmux is missing, unless `LOCKSTORM_REQUIRE_BACKENDS=1`
//! (scripts/test installs tmux, so CI runs it).

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs")
    }

    fn capture(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    fn keys(&self, keys: &str) {
        assert!(self.cmd(&["send-keys", "-t", "t", keys]).status.success());
    }

    /// Wait (up to 10 s) until the pane shows every one of `needles`.
    fn wait_for(&self, needles: &[&str]) -> String {
        let t0 = Instant::now();
        loop {
            let s = self.capture();
            if needles.iter().all(|n| s.contains(n)) {
                return s;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "pane never showed {needles:?}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Our private server only (its own socket).
        let _ = self.cmd(&["kill-server"]);
    }
}

fn tmux_available() -> bool {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok && std::env::var("LOCKSTORM_REQUIRE_BACKENDS").as_deref() == Ok("1") {
        panic!("tmux is required (LOCKSTORM_REQUIRE_BACKENDS=1): apt-get install tmux");
    }
    ok
}

fn start(dir: &Path, width: u16, height: u16) -> Tmux {
    let scn = dir.join("dash.toml");
    std::fs::write(
        &scn,
        r#"name = "dash-e2e"
duration = "60s"
[backend]
kind = "mem"
variant = "fifo"
rtt = "100us"
[workload]
nodes = 8
keys = 2
hold = "exp(1ms)"
think = "1ms"
[thresholds]
max_violations = 0
"#,
    )
    .unwrap();
    let report = dir.join("report");
    let exit = dir.join("exit");
    let tmux = Tmux {
        socket: format!("lockstorm-test-{}-{width}", std::process::id()),
    };
    let shell = format!(
        "{} run {} --report {}; echo $? > {}; sleep 30",
        env!("CARGO_BIN_EXE_lockstorm"),
        scn.display(),
        report.display(),
        exit.display()
    );
    let (w, h) = (width.to_string(), height.to_string());
    let out = tmux.cmd(&[
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        &w,
        "-y",
        &h,
        &shell,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tmux
}

fn drive(width: u16, height: u16) {
    if !tmux_available() {
        eprintln!("skipped: tmux is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmux = start(dir.path(), width, height);
    tmux.wait_for(&[
        "1 Overview",
        "dash-e2e",
        "mem:fifo",
        "Throughput",
        "running",
    ]);
    let alt = tmux.cmd(&["display-message", "-p", "-t", "t", "#{alternate_on}"]);
    assert_eq!(String::from_utf8_lossy(&alt.stdout).trim(), "1");
    tmux.keys("2");
    tmux.wait_for(&["Timeline: last 10s", "n7", "now"]);
    tmux.keys("3");
    tmux.wait_for(&["acquired", "longest wait", "of 8"]);
    tmux.keys("4");
    tmux.wait_for(&["Events (", "running (measured)"]);
    tmux.keys("?");
    tmux.wait_for(&["pause / resume the load"]);
    tmux.keys("1");
    tmux.wait_for(&["Throughput", "Safety"]);
    tmux.keys("q");
    let exit = dir.path().join("exit");
    let t0 = Instant::now();
    while !exit.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "q did not end the run:\n{}",
            tmux.capture()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(std::fs::read_to_string(&exit).unwrap().trim(), "130");
    // Terminal restored: alternate screen left, the summary on the normal one.
    let s = tmux.wait_for(&["stopped early", "report:"]);
    assert!(!s.contains("1 Overview"), "{s}");
    let alt = tmux.cmd(&["display-message", "-p", "-t", "t", "#{alternate_on}"]);
    assert_eq!(String::from_utf8_lossy(&alt.stdout).trim(), "0");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("report/report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["completed"], false);
    assert!(json["totals"]["acquired"].as_u64().unwrap() > 0);
}

#[test]
fn dashboard_in_tmux_80x24_switches_views_and_q_writes_the_report() {
    drive(80, 24);
}

#[test]
fn dashboard_in_tmux_160x48_switches_views_and_q_writes_the_report() {
    drive(160, 48);
}

/// Open a tmux pane running `args` (then writing its exit code to `exit`).
fn start_cmd(name: &str, args: &str, exit: &Path) -> Tmux {
    let tmux = Tmux {
        socket: format!("lockstorm-test-{}-{name}", std::process::id()),
    };
    let shell = format!(
        "{} {args}; echo $? > {}; sleep 30",
        env!("CARGO_BIN_EXE_lockstorm"),
        exit.display()
    );
    let out = tmux.cmd(&[
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "120",
        "-y",
        "36",
        &shell,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tmux
}

fn wait_exit(tmux: &Tmux, exit: &Path) -> String {
    let t0 = Instant::now();
    while !exit.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "did not end:\n{}",
            tmux.capture()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(100));
    std::fs::read_to_string(exit).unwrap().trim().to_string()
}

#[test]
fn compare_dashboard_lists_stages_then_leaves_on_q_with_the_summary() {
    if !tmux_available() {
        eprintln!("skipped: tmux is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exit = dir.path().join("exit");
    let args = format!(
        "compare {}/scenarios/choose-a-lock.toml -b mem:fifo,mem:barging --duration 2s --report {}",
        env!("CARGO_MANIFEST_DIR"),
        dir.path().join("cmp").display()
    );
    let tmux = start_cmd("compare", &args, &exit);
    tmux.wait_for(&[
        "compare: 2 backends",
        "mem:fifo",
        "mem:barging",
        "1 Overview",
    ]);
    tmux.wait_for(&["✓ mem:fifo", "acq/s", "▶ mem:barging"]);
    tmux.wait_for(&["compare: done", "✓ mem:barging"]);
    tmux.keys("q");
    assert_eq!(wait_exit(&tmux, &exit), "0");
    let s = tmux.wait_for(&["(* best in column)", "compare.md"]);
    assert!(!s.contains("1 Overview"), "{s}");
    assert!(dir.path().join("cmp/compare.json").exists());
}

#[test]
fn fault_menu_pauses_every_node_and_the_report_records_it() {
    if !tmux_available() {
        eprintln!("skipped: tmux is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exit = dir.path().join("exit");
    let report = dir.path().join("report");
    let args = format!(
        "run {}/scenarios/quickstart.toml --duration 6s --report {}",
        env!("CARGO_MANIFEST_DIR"),
        report.display()
    );
    let tmux = start_cmd("faultmenu", &args, &exit);
    tmux.wait_for(&["1 Overview", "running"]);
    tmux.keys("f");
    tmux.wait_for(&["Start a fault now", "pause"]);
    // nodes: "all", duration: "2s", Enter.
    for k in [
        "Tab", "BSpace", "a", "l", "l", "Tab", "BSpace", "BSpace", "2", "s", "Enter",
    ] {
        tmux.keys(k);
    }
    tmux.wait_for(&["FAULT pause"]);
    // The run ends by itself; the dashboard stays until q.
    tmux.wait_for(&["finished"]);
    tmux.keys("q");
    assert_eq!(wait_exit(&tmux, &exit), "0");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("report.json")).unwrap())
            .unwrap();
    let f = &json["faults"][0];
    assert_eq!(f["kind"], "pause");
    assert_eq!(f["target"], "all");
    assert_eq!(f["applied"], true);
    assert_eq!(f["duration_s"], 2.0);
}
