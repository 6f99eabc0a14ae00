//! The Redis family against real servers: the shared ones `scripts/backends
//! up redis redlock` starts (6379, 7001–7005), and private `redis-server`s
//! on free ports for the tests that kill a server mid-run.

mod support;

use std::path::Path;
use std::time::Duration;

use lockstorm::backend::BackendError;
use lockstorm::backend::registry;
use lockstorm::backend::resp::{Conn, Endpoint, Frame, Value};
use lockstorm::engine::Control;
use lockstorm::metrics::RunResult;
use lockstorm::run::run_scenario;
use lockstorm::scenario::Scenario;
use support::{PrivateRedis, free_port, server_up};

const TICK: Duration = Duration::from_millis(250);

fn scenario(toml: &str) -> Scenario {
    Scenario::parse(toml, Path::new("test.toml")).expect("test scenario is valid")
}

async fn run(toml: &str) -> RunResult {
    run_scenario(&scenario(toml), TICK, Control::default())
        .await
        .expect("run succeeds")
}

fn redis_up() -> bool {
    server_up("redis", "127.0.0.1:6379")
}

fn redlock_up() -> bool {
    (7001..=7005).all(|p| server_up("redlock", &format!("127.0.0.1:{p}")))
}

fn contended(kind: &str, variant: &str, nodes: u32, ttl: &str, hold: &str) -> String {
    format!(
        r#"
name = "t"
duration = "3s"
seed = 7
[backend]
kind = "{kind}"
variant = "{variant}"
ttl = "{ttl}"
retry = "1ms"
[workload]
nodes = {nodes}
keys = 1
hold = "{hold}"
think = "500us"
acquire_timeout = "3s"
"#
    )
}

async fn keys_matching(url: &str, pattern: &str) -> Vec<Vec<u8>> {
    let ep = Endpoint::parse(url).unwrap();
    let mut c = Conn::connect(&ep, Duration::from_secs(2)).await.unwrap();
    c.begin(2).arg(b"KEYS").arg(pattern.as_bytes());
    c.send().await.unwrap();
    match c.value().await.unwrap() {
        Value::Array(v) => v
            .into_iter()
            .map(|k| match k {
                Value::Bulk(b) => b,
                other => panic!("KEYS gave {other:?}"),
            })
            .collect(),
        other => panic!("KEYS gave {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_nx_excludes_32_nodes_on_one_key_and_cleans_up_only_its_keys() {
    if !redis_up() {
        return;
    }
    // Someone else's key on the same server must survive the run.
    let ep = Endpoint::parse("redis://127.0.0.1:6379").unwrap();
    let mut c = Conn::connect(&ep, Duration::from_secs(2)).await.unwrap();
    let foreign = format!("lockstorm-test-foreign:{}", free_port());
    c.begin(3).arg(b"SET").arg(foreign.as_bytes()).arg(b"keep");
    c.simple_ok().await.unwrap();

    let r = run(&contended("redis", "set-nx", 32, "5s", "exp(500us)")).await;
    let s = &r.snapshot;
    assert!(s.totals.acquired > 300, "acquired {}", s.totals.acquired);
    assert_eq!(s.safety.violations, 0);
    assert_eq!(s.safety.lost_updates, 0);
    assert_eq!(s.totals.errors, 0, "{:?}", s.last_error);
    assert_eq!(s.totals.released, s.totals.acquired);
    assert!(r.properties.fencing && !r.properties.r#unsafe);

    let left = keys_matching(
        "redis://127.0.0.1:6379",
        &format!("lockstorm:{}:*", r.run_id),
    )
    .await;
    assert!(left.is_empty(), "left behind: {left:?}");
    c.begin(2).arg(b"GET").arg(foreign.as_bytes());
    let got = c.call().await.unwrap();
    assert!(
        matches!(&got, Frame::Bulk(b) if c.bytes(b) == b"keep"),
        "{got:?}"
    );
    c.begin(2).arg(b"DEL").arg(foreign.as_bytes());
    assert_eq!(c.int().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redlock_excludes_32_nodes_on_one_key() {
    if !redlock_up() {
        return;
    }
    let r = run(&contended("redlock", "quorum", 32, "5s", "exp(500us)")).await;
    let s = &r.snapshot;
    // Modest: on a loaded 2-core machine a Redlock round over five
    // instances for 32 nodes manages a few hundred grants in 3 s.
    assert!(s.totals.acquired > 50, "acquired {}", s.totals.acquired);
    assert_eq!(s.safety.violations, 0);
    assert_eq!(s.totals.errors, 0, "{:?}", s.last_error);
    assert!(!r.properties.fencing);
    assert_eq!(r.endpoints.len(), 5);
    for p in 7001..=7005 {
        let url = format!("redis://127.0.0.1:{p}");
        assert!(
            keys_matching(&url, &format!("lockstorm:{}:*", r.run_id))
                .await
                .is_empty()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naive_del_lets_a_late_holder_delete_the_next_holders_lock() {
    if !redis_up() {
        return;
    }
    let r = run(&contended(
        "redis",
        "naive-del",
        12,
        "15ms",
        "uniform(1ms,25ms)",
    ))
    .await;
    let s = &r.snapshot.safety;
    assert!(s.lost_leases > 0);
    assert!(s.violations > 3, "violations {}", s.violations);
    assert!(r.properties.r#unsafe);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_set_races_even_with_holds_far_below_the_ttl() {
    if !redis_up() {
        return;
    }
    let r = run(&contended("redis", "get-set", 16, "5s", "300us")).await;
    let s = &r.snapshot.safety;
    assert!(
        s.violations > 0,
        "no race in {} grants",
        r.snapshot.totals.acquired
    );
    assert_eq!(s.fenced_violations, 0, "get-set has no token");
    assert!(s.lost_updates > 0);
    // Holds are far below the TTL, yet releases find someone else's value:
    // the second SET overwrote the first holder's.
    assert!(s.lost_leases > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_past_the_ttl_are_fenced_on_set_nx_but_not_on_redlock() {
    if !redis_up() || !redlock_up() {
        return;
    }
    let w = |kind: &str, variant: &str| contended(kind, variant, 8, "30ms", "uniform(5ms,50ms)");
    let set_nx = run(&w("redis", "set-nx")).await.snapshot.safety;
    assert!(
        set_nx.violations > 3,
        "set-nx violations {}",
        set_nx.violations
    );
    assert_eq!(set_nx.fenced_violations, set_nx.violations, "all fenced");
    assert_eq!(set_nx.lost_updates, 0);
    assert!(set_nx.stale_rejected > 0);

    let redlock = run(&w("redlock", "quorum")).await.snapshot.safety;
    assert!(
        redlock.violations > 3,
        "redlock violations {}",
        redlock.violations
    );
    assert_eq!(
        redlock.fenced_violations, 0,
        "a random value fences nothing"
    );
    assert!(redlock.lost_updates > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redlock_survives_one_dead_instance_of_five() {
    if !redlock_up() {
        return;
    }
    let dead = free_port();
    let toml = format!(
        r#"
name = "minority-down"
duration = "2s"
[backend]
kind = "redlock"
urls = ["redis://127.0.0.1:7001", "redis://127.0.0.1:7002", "redis://127.0.0.1:7003",
        "redis://127.0.0.1:7004", "redis://127.0.0.1:{dead}"]
retry = "2ms"
[workload]
nodes = 8
hold = "500us"
"#
    );
    let s = run(&toml).await.snapshot;
    assert!(s.totals.acquired > 100, "acquired {}", s.totals.acquired);
    assert_eq!(s.totals.errors, 0, "{:?}", s.last_error);
    assert_eq!(s.safety.violations, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redlock_grants_nothing_once_a_majority_is_gone() {
    let mut servers: Vec<PrivateRedis> = Vec::new();
    for _ in 0..5 {
        match PrivateRedis::start() {
            Some(s) => servers.push(s),
            None => return,
        }
    }
    let urls: Vec<String> = servers.iter().map(|s| format!("\"{}\"", s.url())).collect();
    let toml = format!(
        r#"
name = "majority-down"
duration = "3s"
[backend]
kind = "redlock"
urls = [{}]
ttl = "2s"
retry = "2ms"
[workload]
nodes = 8
hold = "500us"
acquire_timeout = "500ms"
"#,
        urls.join(", ")
    );
    let control = Control::default();
    let stop = control.stop.clone();
    let task = tokio::spawn(async move { run_scenario(&scenario(&toml), TICK, control).await });
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for s in &mut servers[..3] {
        s.stop();
    }
    let r = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("run ends")
        .expect("no panic")
        .expect("run succeeds");
    drop(stop);
    let s = &r.snapshot;
    assert!(r.completed);
    assert!(s.totals.errors > 0, "no errors after the majority died");
    assert_eq!(s.safety.violations, 0);
    // After the kill (t ≈ 1.2 s) plus one tick of slack, not a single grant.
    let late: u64 = s
        .series
        .iter()
        .filter(|p| p.t_s > 1.75)
        .map(|p| p.acquired)
        .sum();
    let early: u64 = s
        .series
        .iter()
        .filter(|p| p.t_s <= 1.0)
        .map(|p| p.acquired)
        .sum();
    assert!(early > 50, "early grants {early}");
    assert_eq!(late, 0, "grants without a majority: {:?}", s.series);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_mid_run_errors_then_recovers_and_the_report_is_written() {
    let Some(mut server) = PrivateRedis::start() else {
        return;
    };
    let toml = format!(
        r#"
name = "restart"
duration = "4s"
[backend]
kind = "redis"
url = "{}"
retry = "1ms"
[workload]
nodes = 8
hold = "500us"
acquire_timeout = "500ms"
"#,
        server.url()
    );
    let control = Control::default();
    let task = tokio::spawn(async move { run_scenario(&scenario(&toml), TICK, control).await });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    server.stop();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(server.restart(), "redis-server restarts");
    let r = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("run ends")
        .expect("no panic")
        .expect("run succeeds");
    let s = &r.snapshot;
    assert!(r.completed);
    assert!(s.totals.errors > 0, "the outage shows as errors");
    let late: u64 = s
        .series
        .iter()
        .filter(|p| p.t_s > 3.0)
        .map(|p| p.acquired)
        .sum();
    assert!(late > 50, "acquisitions resumed: {late} in the last second");
    assert_eq!(s.safety.unfenced_violations, 0);
    let dir = tempfile::tempdir().unwrap();
    let files = lockstorm::report::write_all(&r, dir.path()).unwrap();
    assert!(files.iter().any(|f| f.ends_with("report.json")));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    assert!(json["totals"]["errors"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn an_unreachable_server_is_named_with_the_command_that_starts_it() {
    let port = free_port();
    let scn = scenario(&format!(
        "name = \"x\"\n[backend]\nkind = \"redis\"\nurl = \"redis://:hunter2@127.0.0.1:{port}\"\n"
    ));
    let t = std::time::Instant::now();
    let err = match registry::build(&scn, "test", 1).await {
        Err(e) => e,
        Ok(_) => panic!("nothing listens on {port}"),
    };
    assert!(t.elapsed() < Duration::from_secs(5));
    let msg = err.to_string();
    assert!(matches!(err, BackendError::Unreachable { .. }), "{msg}");
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(msg.contains("scripts/backends up redis"), "{msg}");
    assert!(!msg.contains("hunter2"), "password leaked: {msg}");
}

#[test]
fn the_cli_reports_an_unreachable_server_in_one_line_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("down.toml");
    let port = free_port();
    std::fs::write(
        &f,
        format!("name = \"down\"\nduration = \"2s\"\n[backend]\nkind = \"redlock\"\nurls = [\"redis://127.0.0.1:{port}\"]\n"),
    )
    .unwrap();
    let out = assert_cmd::Command::cargo_bin("lockstorm")
        .unwrap()
        .args(["run", "--headless"])
        .arg(&f)
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("error"))
        .unwrap_or_default();
    assert!(
        line.contains(&format!("127.0.0.1:{port}")) && line.contains("scripts/backends up redlock"),
        "{err}"
    );
}

#[test]
fn backends_says_whether_the_default_endpoints_answer() {
    if !redis_up() {
        return;
    }
    let out = assert_cmd::Command::cargo_bin("lockstorm")
        .unwrap()
        .arg("backends")
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let redis = text
        .lines()
        .find(|l| l.starts_with("redis "))
        .unwrap_or_default();
    assert!(redis.contains("default endpoint answers"), "{text}");
    let mem = text
        .lines()
        .find(|l| l.starts_with("mem "))
        .unwrap_or_default();
    assert!(mem.contains("ready"), "{text}");
}
