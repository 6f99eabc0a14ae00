//! Fault injection end to end: pauses on the embedded backend, and network
//! faults and server kills against real Redis servers (the shared ones from
//! `scripts/backends up redis redlock`, and private ones for kills).

mod support;

use std::path::Path;
use std::time::Duration;

use lockstorm::engine::Control;
use lockstorm::metrics::{FaultRecord, RunResult, SeriesPoint};
use lockstorm::run::run_scenario;
use lockstorm::scenario::Scenario;
use support::{PrivateRedis, server_up};

const TICK: Duration = Duration::from_millis(250);

async fn run(toml: &str) -> RunResult {
    let scn = Scenario::parse(toml, Path::new("test.toml")).expect("test scenario is valid");
    run_scenario(&scn, TICK, Control::default())
        .await
        .expect("run succeeds")
}

fn redis_up() -> bool {
    server_up("redis", "127.0.0.1:6379")
}

fn redlock_up() -> bool {
    (7001..=7005).all(|p| server_up("redlock", &format!("127.0.0.1:{p}")))
}

/// Series points whose whole interval lies inside `from..to` seconds. An
/// interval starts where the previous one ended (ticks run late under load).
fn inside(r: &RunResult, from: f64, to: f64) -> Vec<&SeriesPoint> {
    let s = &r.snapshot.series;
    (0..s.len())
        .filter(|&i| {
            let begin = if i == 0 { 0.0 } else { s[i - 1].t_s };
            begin >= from - 1e-6 && s[i].t_s <= to + 1e-6
        })
        .map(|i| &s[i])
        .collect()
}

fn applied(f: &FaultRecord) -> (f64, f64) {
    assert!(f.applied, "fault not applied: {f:?}");
    (
        f.start_s.expect("start recorded"),
        f.end_s.expect("end recorded"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_every_node_stops_all_grants_and_recovery_is_measured() {
    let r = run(r#"
name = "pause-all"
duration = "2s"
seed = 1
[backend]
kind = "mem"
[workload]
nodes = 4
keys = 1
hold = "1ms"
[[faults]]
at = "500ms"
kind = "pause"
nodes = "all"
duration = "700ms"
"#)
    .await;
    assert_eq!(r.faults.len(), 1);
    let f = &r.faults[0];
    let (start, end) = applied(f);
    // Never early; late only by scheduling delay (loaded CI machines).
    assert!((0.5..0.8).contains(&start), "start {start}");
    assert!((end - start - 0.7).abs() < 0.01, "window {start}..{end}");
    let quiet = inside(&r, start, end);
    assert!(!quiet.is_empty(), "a whole tick falls inside the pause");
    for p in quiet {
        assert_eq!(p.acquired, 0, "no grants while every node is paused: {p:?}");
    }
    assert!(f.acquired <= 4, "at most the grants in flight at the start");
    let rec = f
        .recovery_s
        .expect("the nodes acquire again after the pause");
    assert!(rec < 0.1, "recovery {rec}");
    assert!(r.snapshot.totals.acquired > 100);
    assert_eq!(r.snapshot.safety.violations, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_paused_past_its_lease_is_overtaken_and_fenced_on_mem() {
    let r = run(r#"
name = "mem-pause-holder"
duration = "2s"
seed = 2
[backend]
kind = "mem"
variant = "fifo"
ttl = "100ms"
[workload]
nodes = 4
keys = 1
hold = "2ms"
[[faults]]
at = "500ms"
kind = "pause"
nodes = [0]
duration = "500ms"
when = "holding"
"#)
    .await;
    let f = &r.faults[0];
    let (start, end) = applied(f);
    assert!(start >= 0.5 && end - start >= 0.499, "{start}..{end}");
    let s = &r.snapshot.safety;
    assert!(
        s.violations >= 1,
        "others entered while node 0 still believed it held"
    );
    assert_eq!(
        s.fenced_violations, s.violations,
        "mem issues fencing tokens"
    );
    assert!(s.stale_rejected >= 1, "node 0's stale write was rejected");
    assert_eq!(s.lost_updates, 0);
    assert!(s.lost_leases >= 1, "node 0's release found its lease gone");
}

/// Kleppmann, "How to do distributed locking" (2016): a client pauses while
/// holding the lock, the lease expires, another client takes the lock, the
/// first wakes and writes. With a fencing token the storage rejects the
/// stale write; Redlock's random value fences nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kleppmann_pause_past_the_lease_set_nx_fenced_redlock_loses_updates() {
    if !redis_up() || !redlock_up() {
        return;
    }
    let scenario = |kind: &str| {
        format!(
            r#"
name = "kleppmann"
duration = "3s"
seed = 3
[backend]
kind = "{kind}"
ttl = "300ms"
retry = "2ms"
[workload]
nodes = 8
keys = 1
hold = "2ms"
acquire_timeout = "2s"
[[faults]]
at = "500ms"
kind = "pause"
nodes = [0]
duration = "1200ms"
when = "holding"
"#
        )
    };
    let set_nx = run(&scenario("redis")).await;
    applied(&set_nx.faults[0]);
    let s = &set_nx.snapshot.safety;
    assert!(s.violations >= 1, "set-nx: {s:?}");
    assert_eq!(s.fenced_violations, s.violations, "set-nx: all fenced");
    assert_eq!(s.lost_updates, 0, "set-nx: no lost updates");
    assert!(
        s.lost_leases >= 1,
        "set-nx: the paused holder lost its lease"
    );

    let redlock = run(&scenario("redlock")).await;
    applied(&redlock.faults[0]);
    let s = &redlock.snapshot.safety;
    assert!(s.unfenced_violations >= 1, "redlock: {s:?}");
    assert!(
        s.lost_updates >= 1,
        "redlock: the stale write overwrote newer ones"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_slows_the_selected_nodes_traffic() {
    if !redis_up() {
        return;
    }
    let r = run(r#"
name = "latency"
duration = "2500ms"
seed = 4
[backend]
kind = "redis"
[workload]
nodes = 4
keys = 4
key_pick = "round_robin"
hold = "1ms"
[[faults]]
at = "1s"
kind = "latency"
nodes = "all"
duration = "1s"
delay = "40ms"
"#)
    .await;
    let (start, end) = applied(&r.faults[0]);
    let before = inside(&r, 0.25, start);
    let during = inside(&r, start + 0.25, end);
    assert!(!before.is_empty() && !during.is_empty());
    for p in &before {
        assert!(p.p50_us < 20_000, "before: {p:?}");
    }
    for p in &during {
        // One acquire is at least one round trip: 40 ms each way.
        assert!(p.p50_us >= 80_000, "during: {p:?}");
    }
    assert!(r.faults[0].recovery_s.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_cuts_off_only_the_selected_nodes_and_they_recover() {
    if !redis_up() {
        return;
    }
    let r = run(r#"
name = "partition"
duration = "3s"
seed = 5
[backend]
kind = "redis"
ttl = "100ms"
[workload]
nodes = 6
keys = 6
key_pick = "round_robin"
hold = "1ms"
think = "1ms"
acquire_timeout = "300ms"
[[faults]]
at = "1s"
kind = "partition"
nodes = "0..2"
duration = "1s"
"#)
    .await;
    let f = &r.faults[0];
    let (start, end) = applied(f);
    assert!(
        f.errors + f.timeouts >= 2,
        "cut-off nodes fail their acquires: {f:?}"
    );
    assert!(f.acquired <= 2, "cut-off nodes get nothing: {f:?}");
    // Locks the cut-off nodes held expire within the 100 ms TTL; from then
    // on the other nodes go on.
    let during = inside(&r, start + 0.25, end);
    assert!(!during.is_empty());
    for p in during {
        assert!(p.acquired > 10, "the other nodes go on: {p:?}");
    }
    let rec = f.recovery_s.expect("the cut-off nodes acquire again");
    assert!(rec < 1.0, "recovery {rec}");
}

/// Redlock under partition: a node cut off from a minority of instances
/// still gets the lock; cut off from a majority it gets nothing until the
/// partition heals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redlock_minority_partition_is_survived_majority_is_not() {
    if !redlock_up() {
        return;
    }
    let r = run(r#"
name = "redlock-partition"
duration = "3500ms"
seed = 6
[backend]
kind = "redlock"
ttl = "1s"
[workload]
nodes = 4
keys = 4
key_pick = "round_robin"
hold = "1ms"
think = "1ms"
acquire_timeout = "300ms"
[[faults]]
at = "500ms"
kind = "partition"
nodes = [0]
duration = "1s"
endpoints = ["redis://127.0.0.1:7001"]
[[faults]]
at = "2s"
kind = "partition"
nodes = [0]
duration = "1s"
endpoints = ["redis://127.0.0.1:7001", "redis://127.0.0.1:7002", "redis://127.0.0.1:7003"]
"#)
    .await;
    let (minority, majority) = (&r.faults[0], &r.faults[1]);
    applied(minority);
    applied(majority);
    // Every round waits the per-instance timeout (ttl/20) for the silent
    // instance, so node 0 is slower, but it keeps getting the lock.
    assert!(
        minority.acquired >= 3,
        "minority cut: node 0 still acquires: {minority:?}"
    );
    // A reply already on its way when the partition began may still land.
    assert!(
        majority.acquired <= 1,
        "majority cut: node 0 gets nothing: {majority:?}"
    );
    assert!(majority.timeouts + majority.errors >= 1, "{majority:?}");
    let rec = majority.recovery_s.expect("node 0 acquires after the heal");
    assert!(rec < 1.0, "recovery {rec}");
    assert_eq!(r.snapshot.safety.violations, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_closes_connections_and_the_nodes_reconnect() {
    if !redis_up() {
        return;
    }
    let r = run(r#"
name = "reset"
duration = "2s"
seed = 7
[backend]
kind = "redis"
# The holder's release fails on its closed connection: its lock stays until
# the TTL, so keep the TTL short.
ttl = "200ms"
[workload]
nodes = 4
keys = 1
hold = "1ms"
[[faults]]
at = "1s"
kind = "reset"
nodes = "all"
"#)
    .await;
    let f = &r.faults[0];
    let (start, end) = applied(f);
    assert_eq!(start, end, "a reset is instantaneous");
    assert!(
        r.snapshot.totals.errors >= 1,
        "closed connections fail a call"
    );
    let rec = f.recovery_s.expect("the nodes reconnect and acquire");
    assert!(rec < 0.9, "recovery {rec}");
    assert_eq!(r.snapshot.safety.violations, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_stops_and_restarts_a_server_and_the_nodes_recover() {
    let Some(mut redis) = PrivateRedis::start() else {
        return;
    };
    let port = redis.port;
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("redis.pid");
    let restart = format!(
        "redis-server --bind 127.0.0.1 --port {port} --save '' --appendonly no \
         --daemonize yes --pidfile {} --dir {}",
        pidfile.display(),
        dir.path().display()
    );
    let r = run(&format!(
        r#"
name = "exec"
duration = "3s"
seed = 8
[backend]
kind = "redis"
url = "redis://127.0.0.1:{port}"
ttl = "200ms"
[workload]
nodes = 4
keys = 1
hold = "1ms"
acquire_timeout = "500ms"
[[faults]]
at = "800ms"
kind = "exec"
command = "redis-cli -p {port} shutdown nosave; echo stopped"
[[faults]]
at = "1600ms"
kind = "exec"
command = "{restart}"
"#
    ))
    .await;
    // The private server was restarted by the scenario: stop that one by PID.
    if let Ok(pid) = std::fs::read_to_string(&pidfile) {
        let _ = std::process::Command::new("kill").arg(pid.trim()).status();
    }
    redis.stop();
    let (stop, start) = (&r.faults[0], &r.faults[1]);
    applied(stop);
    applied(start);
    let detail = stop.detail.as_deref().unwrap_or_default();
    assert!(
        detail.contains("exit 0") && detail.contains("stopped"),
        "{detail}"
    );
    assert!(
        start
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("exit 0"),
        "{start:?}"
    );
    assert!(r.snapshot.totals.errors >= 1, "the nodes saw the server go");
    let rec = start
        .recovery_s
        .expect("the nodes acquire again after the restart");
    assert!(rec < 1.0, "recovery {rec}");
    assert!(r.completed);
}

/// The dashboard's fault menu sends faults through `LiveFaults`: they start
/// at once and are recorded after the scheduled ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_fault_starts_at_once_and_is_recorded() {
    use lockstorm::faults::LiveFaults;
    use lockstorm::scenario::{FaultKind, FaultSpec, NodeSel};
    let scn = Scenario::parse(
        r#"
name = "live"
duration = "2s"
seed = 9
[backend]
kind = "mem"
[workload]
nodes = 4
keys = 1
hold = "1ms"
"#,
        Path::new("test.toml"),
    )
    .unwrap();
    let live = LiveFaults::default();
    let control = Control {
        live_faults: Some(live.clone()),
        ..Control::default()
    };
    let injector = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        live.inject(FaultSpec {
            at: Duration::ZERO,
            kind: FaultKind::Pause,
            nodes: NodeSel::All,
            duration: Some(Duration::from_millis(600)),
            when_holding: false,
            delay: None,
            jitter: None,
            endpoints: Vec::new(),
            command: None,
            line: 0,
        })
    });
    let r = run_scenario(&scn, TICK, control).await.unwrap();
    assert!(injector.await.unwrap(), "the run took the fault");
    assert_eq!(r.faults.len(), 1, "{:?}", r.faults);
    let f = &r.faults[0];
    let (start, end) = applied(f);
    assert!((0.69..1.0).contains(&start), "started when sent: {start}");
    assert!((end - start - 0.6).abs() < 0.01);
    assert!(f.at_s >= 0.69, "at is the injection time: {}", f.at_s);
    for p in inside(&r, start, end) {
        assert_eq!(p.acquired, 0, "{p:?}");
    }
    assert!(f.recovery_s.is_some());
}
