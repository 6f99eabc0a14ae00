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
