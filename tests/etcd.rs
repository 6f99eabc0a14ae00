//! etcd locks against the real server `scripts/backends up etcd` starts
//! (http://127.0.0.1:2379), and private etcds on free ports.
//!
//! The `lock-api` tests run on a fresh private etcd each: etcd 3.4.23's Lock
//! service can wedge after sustained contention by ~32 waiters (a contended
//! Lock then never hands over until etcd restarts; see docs/consensus.md),
//! and a test must neither depend on nor leave the shared server that way.

mod support;

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use lockstorm::backend::etcd::{EtcdBackend, EtcdVariant};
use lockstorm::backend::http::HttpConn;
use lockstorm::backend::{Acquired, Backend, Key, LockClient, PauseSignal, Released};
use lockstorm::engine::Control;
use lockstorm::metrics::RunResult;
use lockstorm::run::run_scenario;
use lockstorm::scenario::Scenario;
use support::{PrivateEtcd, free_port, server_up};

const TICK: Duration = Duration::from_millis(250);

fn etcd_up() -> bool {
    server_up("etcd", "127.0.0.1:2379")
}

fn scenario(toml: &str) -> Scenario {
    Scenario::parse(toml, Path::new("test.toml")).expect("test scenario is valid")
}

async fn run(toml: &str) -> RunResult {
    run_scenario(&scenario(toml), TICK, Control::default())
        .await
        .expect("run succeeds")
}

fn contended(kind: &str, variant: &str, nodes: u32, secs: u32) -> String {
    contended_on(kind, variant, nodes, secs, "")
}

fn contended_on(kind: &str, variant: &str, nodes: u32, secs: u32, url: &str) -> String {
    let url = if url.is_empty() {
        String::new()
    } else {
        format!("url = \"{url}\"")
    };
    format!(
        r#"
name = "t"
duration = "{secs}s"
# All nodes ask at once at the start: ties inside one round trip.
warmup = "1s"
seed = 7
[backend]
kind = "{kind}"
variant = "{variant}"
{url}
retry = "2ms"
[workload]
nodes = {nodes}
keys = 1
hold = "exp(1ms)"
think = "0ms"
acquire_timeout = "5s"
"#
    )
}

fn inversion_rate(r: &RunResult) -> f64 {
    let s = &r.snapshot;
    s.fairness.fifo_inversions as f64 / s.totals.acquired.max(1) as f64
}

/// Keys left under the run's prefix, and leases alive, on `url`'s server.
async fn leftovers(addr: &str, run_id: &str) -> (usize, usize) {
    let mut c = HttpConn::connect(addr, addr, Duration::from_secs(2))
        .await
        .unwrap();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let body = format!(
        "{{\"key\":\"{}\",\"range_end\":\"{}\",\"keys_only\":true}}",
        b64(&format!("lockstorm:{run_id}:")),
        b64(&format!("lockstorm:{run_id};"))
    );
    assert_eq!(c.post("/v3/kv/range", body.as_bytes()).await.unwrap(), 200);
    let v: serde_json::Value = serde_json::from_slice(&c.body).unwrap();
    let keys = v["kvs"].as_array().map_or(0, Vec::len);
    assert_eq!(c.post("/v3/lease/leases", b"{}").await.unwrap(), 200);
    let v: serde_json::Value = serde_json::from_slice(&c.body).unwrap();
    let leases = v["leases"].as_array().map_or(0, Vec::len);
    (keys, leases)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_api_excludes_32_nodes_in_fifo_order_and_cleans_up() {
    let Some(server) = PrivateEtcd::start() else {
        return;
    };
    let r = run(&contended_on("etcd", "lock-api", 32, 4, &server.url())).await;
    let s = &r.snapshot;
    assert!(s.totals.acquired > 200, "acquired {}", s.totals.acquired);
    assert_eq!(s.safety.violations, 0);
    assert_eq!(s.safety.lost_updates, 0);
    assert_eq!(s.totals.errors, 0, "{:?}", s.last_error);
    assert_eq!(s.totals.released, s.totals.acquired);
    assert!(
        inversion_rate(&r) < 0.02,
        "inversions {} of {}",
        s.fairness.fifo_inversions,
        s.totals.acquired
    );
    assert!(r.properties.fencing && r.properties.fair && r.properties.lease);
    assert_eq!(r.backend_stats["leases_granted"], 32);
    let (keys, leases) = leftovers(&format!("127.0.0.1:{}", server.port), &r.run_id).await;
    assert_eq!((keys, leases), (0, 0), "keys or leases left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txn_excludes_16_nodes_and_waits_by_watching() {
    if !etcd_up() {
        return;
    }
    let r = run(&contended("etcd", "txn", 16, 3)).await;
    let s = &r.snapshot;
    // Modest: every delete wakes every watcher, and a loaded 2-core machine
    // shares its CPU with etcd.
    assert!(s.totals.acquired > 50, "acquired {}", s.totals.acquired);
    assert_eq!(s.safety.violations, 0);
    assert_eq!(s.safety.lost_updates, 0);
    assert_eq!(s.totals.errors, 0, "{:?}", s.last_error);
    assert!(r.backend_stats["watches"].as_u64().unwrap() > 0);
    let (keys, _) = leftovers("127.0.0.1:2379", &r.run_id).await;
    assert_eq!(keys, 0, "keys left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_api_queues_far_more_fairly_than_redis_set_nx() {
    if !server_up("redis", "127.0.0.1:6379") {
        return;
    }
    let Some(server) = PrivateEtcd::start() else {
        return;
    };
    let etcd = run(&contended_on("etcd", "lock-api", 16, 3, &server.url())).await;
    let redis = run(&contended("redis", "set-nx", 16, 3)).await;
    assert_eq!(etcd.snapshot.safety.violations, 0);
    let (e, r) = (inversion_rate(&etcd), inversion_rate(&redis));
    assert!(e < 0.02, "etcd inversions {e}");
    assert!(r > 5.0 * e.max(0.01), "redis {r} vs etcd {e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_request_abandoned_at_the_timeout_leaves_nothing_held() {
    let Some(server) = PrivateEtcd::start() else {
        return;
    };
    let run_id = format!("test-abandon-{}", free_port());
    let backend = EtcdBackend::open(
        &server.url(),
        EtcdVariant::LockApi,
        &run_id,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let key = Key {
        index: 0,
        name: &format!("lockstorm:{run_id}:k0"),
    };
    let mut a = backend.connect(0).await.unwrap();
    let mut b = backend.connect(1).await.unwrap();
    let mut c = backend.connect(2).await.unwrap();
    let Acquired::Granted(ga) = a.acquire(key, Duration::from_secs(2)).await.unwrap() else {
        panic!("a alone gets the lock");
    };
    let b_lease = b.lease();
    assert_eq!(
        b.acquire(key, Duration::from_millis(300)).await.unwrap(),
        Acquired::TimedOut
    );
    assert_ne!(
        b.lease(),
        b_lease,
        "the abandoned request's lease is replaced"
    );
    assert_eq!(a.release(key, ga).await.unwrap(), Released::Released);
    // Had b's request survived, it would now hold the lock for good (its
    // lease kept alive); c gets it at once instead.
    let t = std::time::Instant::now();
    let Acquired::Granted(gc) = c.acquire(key, Duration::from_secs(3)).await.unwrap() else {
        panic!("c is blocked by a leaked lock");
    };
    assert!(t.elapsed() < Duration::from_secs(1));
    assert!(gc.token > ga.token, "tokens increase: {ga:?} then {gc:?}");
    assert_eq!(c.release(key, gc).await.unwrap(), Released::Released);
    assert_eq!(backend.stats()["abandoned_requests"], 1);
    drop((a, b, c));
    backend.cleanup().await.unwrap();
    assert_eq!(
        leftovers(&format!("127.0.0.1:{}", server.port), &run_id).await,
        (0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_node_stops_its_keepalives_and_loses_its_lease() {
    let Some(server) = PrivateEtcd::start() else {
        return;
    };
    for variant in [EtcdVariant::LockApi, EtcdVariant::Txn] {
        let run_id = format!("test-pause-{}", free_port());
        // etcd's shortest lease is about 2 s.
        let backend = EtcdBackend::open(&server.url(), variant, &run_id, Duration::from_secs(2))
            .await
            .unwrap();
        let name = format!("lockstorm:{run_id}:k0");
        let key = Key {
            index: 0,
            name: &name,
        };
        let mut a = backend.connect(0).await.unwrap();
        let mut b = backend.connect(1).await.unwrap();
        let pause = PauseSignal::default();
        a.attach_pause(pause.clone());
        b.attach_pause(PauseSignal::default());
        let Acquired::Granted(ga) = a.acquire(key, Duration::from_secs(2)).await.unwrap() else {
            panic!("a alone gets the lock");
        };
        pause.set(true);
        // b waits while a's lease runs out (no keepalives while paused).
        let Acquired::Granted(gb) = b.acquire(key, Duration::from_secs(8)).await.unwrap() else {
            panic!("{variant:?}: b never got the lock of a paused node");
        };
        pause.set(false);
        assert!(gb.token > ga.token);
        assert_eq!(
            a.release(key, ga).await.unwrap(),
            Released::LeaseLost,
            "{variant:?}"
        );
        assert_eq!(b.release(key, gb).await.unwrap(), Released::Released);
        assert!(
            backend.stats()["keepalives_skipped_paused"]
                .as_u64()
                .unwrap()
                > 0
        );
        // a takes a new lease and locks again.
        let Acquired::Granted(g) = a.acquire(key, Duration::from_secs(2)).await.unwrap() else {
            panic!("a locks again after a lost lease");
        };
        assert_eq!(a.release(key, g).await.unwrap(), Released::Released);
        drop((a, b));
        backend.cleanup().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_restarted_mid_run_errors_then_recovers_and_the_report_is_written() {
    let Some(mut server) = PrivateEtcd::start() else {
        return;
    };
    let toml = format!(
        r#"
name = "restart"
duration = "6s"
[backend]
kind = "etcd"
variant = "lock-api"
url = "{}"
ttl = "5s"
[workload]
nodes = 8
hold = "500us"
acquire_timeout = "500ms"
"#,
        server.url()
    );
    let control = Control::default();
    let task = tokio::spawn(async move { run_scenario(&scenario(&toml), TICK, control).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.stop();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(server.restart(), "etcd restarts");
    let r = tokio::time::timeout(Duration::from_secs(30), task)
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
        .filter(|p| p.t_s > 5.0)
        .map(|p| p.acquired)
        .sum();
    assert!(late > 20, "acquisitions resumed: {late} in the last second");
    assert_eq!(s.safety.unfenced_violations, 0);
    let dir = tempfile::tempdir().unwrap();
    lockstorm::report::write_all(&r, dir.path()).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    assert!(json["totals"]["errors"].as_u64().unwrap() > 0);
    assert!(json["backend"]["stats"]["leases_granted"].as_u64().unwrap() >= 8);
}

#[tokio::test]
async fn an_unreachable_etcd_is_named_with_the_command_that_starts_it() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let err = EtcdBackend::open(&url, EtcdVariant::LockApi, "x", Duration::from_secs(5))
        .await
        .expect_err("nothing listens there");
    let msg = err.to_string();
    assert!(msg.contains(&url), "{msg}");
    assert!(msg.contains("scripts/backends up etcd"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_fault_past_the_lease_is_fenced_and_counted_as_a_lost_lease() {
    let Some(server) = PrivateEtcd::start() else {
        return;
    };
    let text = std::fs::read_to_string("scenarios/etcd-pause.toml").expect("shipped scenario");
    let text = text.replace("http://127.0.0.1:2379", &server.url());
    let r = run(&text).await;
    let s = &r.snapshot;
    assert!(r.completed);
    assert!(s.safety.lost_leases >= 1, "{:?}", s.safety);
    assert!(
        s.safety.violations > 0,
        "the lock moved on while node 0 slept"
    );
    assert_eq!(s.safety.unfenced_violations, 0);
    assert_eq!(s.safety.lost_updates, 0);
    let skipped = r.backend_stats["keepalives_skipped_paused"]
        .as_u64()
        .unwrap();
    assert!(skipped > 0, "{:?}", r.backend_stats);
}
