//! ZooKeeper lock recipes against the real server `scripts/backends up
//! zookeeper` starts (127.0.0.1:2181). Session expiry is forced by cutting
//! one node's connections (a relay in the test, through the backend's route
//! hook) for longer than the session timeout; the shared server is never
//! stopped.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lockstorm::backend::zookeeper::{ZkBackend, ZkVariant, connect_session};
use lockstorm::backend::{Acquired, Backend, Key, LockClient, Released, Route};
use lockstorm::engine::Control;
use lockstorm::metrics::RunResult;
use lockstorm::run::run_scenario;
use lockstorm::scenario::Scenario;
use support::server_up;

const ADDR: &str = "127.0.0.1:2181";
const TICK: Duration = Duration::from_millis(250);

fn zk_up() -> bool {
    server_up("zookeeper", ADDR)
}

async fn run(toml: &str) -> RunResult {
    let scn = Scenario::parse(toml, Path::new("test.toml")).expect("test scenario is valid");
    run_scenario(&scn, TICK, Control::default())
        .await
        .expect("run succeeds")
}

fn contended(kind: &str, variant: &str, nodes: u32, secs: u32) -> String {
    format!(
        r#"
name = "t"
duration = "{secs}s"
# All nodes ask at once at the start: ties inside one round trip, which
# any queue may order either way. Measure the steady state after it.
warmup = "1s"
seed = 7
[backend]
kind = "{kind}"
variant = "{variant}"
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

fn per_grant(r: &RunResult) -> f64 {
    r.backend_stats["watch_notifications_per_grant"]
        .as_f64()
        .expect("zookeeper reports notifications per grant")
}

fn inversion_rate(r: &RunResult) -> f64 {
    let s = &r.snapshot;
    s.fairness.fifo_inversions as f64 / s.totals.acquired.max(1) as f64
}

async fn run_root_exists(run_id: &str) -> bool {
    let c = connect_session(ADDR, Duration::from_secs(4)).await.unwrap();
    c.check_stat(&format!("/lockstorm/{run_id}"))
        .await
        .unwrap()
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipe_excludes_32_nodes_in_fifo_order_and_cleans_up() {
    if !zk_up() {
        return;
    }
    let r = run(&contended("zookeeper", "recipe", 32, 4)).await;
    let s = &r.snapshot;
    assert!(s.totals.acquired > 200, "acquired {}", s.totals.acquired);
    assert_eq!(s.safety.violations, 0);
    assert_eq!(s.safety.lost_updates, 0);
    assert_eq!(s.totals.errors, 0, "{:?}", s.last_error);
    assert_eq!(s.totals.released, s.totals.acquired);
    assert!(
        inversion_rate(&r) < 0.02,
        "inversions {}",
        s.fairness.fifo_inversions
    );
    // Watching only the predecessor: about one notification per grant.
    assert!(per_grant(&r) < 1.5, "{:?}", r.backend_stats);
    assert!(r.properties.fencing && r.properties.fair && !r.properties.lease);
    assert!(!run_root_exists(&r.run_id).await, "znodes left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn herd_wakes_every_waiter_on_every_change() {
    if !zk_up() {
        return;
    }
    let herd = run(&contended("zookeeper", "herd", 32, 4)).await;
    let s = &herd.snapshot;
    assert!(s.totals.acquired > 100, "acquired {}", s.totals.acquired);
    assert_eq!(s.safety.violations, 0);
    assert_eq!(s.totals.errors, 0, "{:?}", s.last_error);
    // 32 waiters, each woken by every create and delete under the parent.
    assert!(per_grant(&herd) > 10.0, "{:?}", herd.backend_stats);
    assert!(!run_root_exists(&herd.run_id).await, "znodes left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipe_queues_far_more_fairly_than_redis_set_nx() {
    if !zk_up() || !server_up("redis", "127.0.0.1:6379") {
        return;
    }
    let zk = run(&contended("zookeeper", "recipe", 16, 3)).await;
    let redis = run(&contended("redis", "set-nx", 16, 3)).await;
    assert_eq!(zk.snapshot.safety.violations, 0);
    let (z, r) = (inversion_rate(&zk), inversion_rate(&redis));
    assert!(z < 0.02, "zookeeper inversions {z}");
    assert!(r > 5.0 * z.max(0.01), "redis {r} vs zookeeper {z}");
}

/// A TCP relay for one node's connections that the test can cut: while cut,
/// it closes what it relays and refuses new connections.
async fn cuttable_relay(upstream: &'static str) -> (String, Arc<AtomicBool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let cut = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cut);
    tokio::spawn(async move {
        loop {
            let Ok((mut down, _)) = listener.accept().await else {
                return;
            };
            if flag.load(Ordering::Acquire) {
                continue;
            }
            let flag = Arc::clone(&flag);
            tokio::spawn(async move {
                let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let relay = tokio::io::copy_bidirectional(&mut down, &mut up);
                let watch_cut = async {
                    while !flag.load(Ordering::Acquire) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                };
                tokio::select! {
                    _ = relay => {}
                    _ = watch_cut => {}
                }
            });
        }
    });
    (addr, cut)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_loses_the_lock_to_the_next_waiter() {
    if !zk_up() {
        return;
    }
    let run_id = format!("test-expiry-{}", support::free_port());
    let mut backend = ZkBackend::open(ADDR, ZkVariant::Recipe, &run_id, 1, Duration::from_secs(4))
        .await
        .unwrap();
    // Node 0 reaches ZooKeeper through a relay the test cuts for longer than
    // the session timeout, so the server expires node 0's session.
    let (relay, cut) = cuttable_relay(ADDR).await;
    let route: Route = Arc::new(move |node, _| (node == 0).then(|| relay.clone()));
    backend.set_route(route);
    let key = Key {
        index: 0,
        name: "k0",
    };
    let mut a = backend.connect(0).await.unwrap();
    let mut b = backend.connect(1).await.unwrap();
    let Acquired::Granted(ga) = a.acquire(key, Duration::from_secs(2)).await.unwrap() else {
        panic!("a alone gets the lock");
    };
    let waiter = tokio::spawn(async move {
        let r = b.acquire(key, Duration::from_secs(30)).await;
        (b, r)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "b waits while a holds");

    cut.store(true, Ordering::Release);
    let (mut b, rb) = tokio::time::timeout(Duration::from_secs(30), waiter)
        .await
        .expect("b is granted once a's session expires")
        .expect("no panic");
    let Acquired::Granted(gb) = rb.unwrap() else {
        panic!("b timed out");
    };
    assert!(gb.token > ga.token, "tokens increase: {ga:?} then {gb:?}");
    cut.store(false, Ordering::Release);
    // a learns from its session events once it reaches the server again.
    let mut lost = None;
    for _ in 0..50 {
        let released = tokio::time::timeout(Duration::from_secs(10), a.release(key, ga))
            .await
            .expect("release answers");
        match released {
            Ok(r) => {
                lost = Some(r);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    assert_eq!(lost, Some(Released::LeaseLost));
    assert_eq!(b.release(key, gb).await.unwrap(), Released::Released);
    // a has a fresh session and can lock again.
    assert!(matches!(
        a.acquire(key, Duration::from_secs(5)).await.unwrap(),
        Acquired::Granted(_)
    ));
    assert!(backend.stats()["sessions_expired"].as_u64().unwrap() >= 1);
    drop((a, b));
    backend.cleanup().await.unwrap();
    assert!(!run_root_exists(&run_id).await);
}

#[tokio::test]
async fn an_unreachable_zookeeper_is_named_with_the_command_that_starts_it() {
    let port = support::free_port();
    let err = ZkBackend::open(
        &format!("127.0.0.1:{port}"),
        ZkVariant::Recipe,
        "x",
        1,
        Duration::from_secs(4),
    )
    .await
    .expect_err("nothing listens there");
    let msg = err.to_string();
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(msg.contains("scripts/backends up zookeeper"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_waiter_leaves_no_node_in_the_queue() {
    if !zk_up() {
        return;
    }
    let run_id = format!("test-timeout-{}", support::free_port());
    for variant in [ZkVariant::Recipe, ZkVariant::Herd] {
        let backend = ZkBackend::open(ADDR, variant, &run_id, 1, Duration::from_secs(4))
            .await
            .unwrap();
        let key = Key {
            index: 0,
            name: "k0",
        };
        let mut a = backend.connect(0).await.unwrap();
        let mut b = backend.connect(1).await.unwrap();
        let mut c = backend.connect(2).await.unwrap();
        let Acquired::Granted(ga) = a.acquire(key, Duration::from_secs(2)).await.unwrap() else {
            panic!("a alone gets the lock");
        };
        assert_eq!(
            b.acquire(key, Duration::from_millis(200)).await.unwrap(),
            Acquired::TimedOut
        );
        assert_eq!(a.release(key, ga).await.unwrap(), Released::Released);
        let t = std::time::Instant::now();
        let Acquired::Granted(gc) = c.acquire(key, Duration::from_secs(3)).await.unwrap() else {
            panic!("{variant:?}: c queued behind b's abandoned node");
        };
        assert!(t.elapsed() < Duration::from_secs(1));
        let zk = connect_session(ADDR, Duration::from_secs(4)).await.unwrap();
        let queue = zk
            .list_children(&format!("/lockstorm/{run_id}/k0"))
            .await
            .unwrap();
        assert_eq!(queue.len(), 1, "only c's node: {queue:?}");
        assert!(queue[0].starts_with("n2-lock-"), "{queue:?}");
        assert_eq!(c.release(key, gc).await.unwrap(), Released::Released);
        drop((a, b, c));
        backend.cleanup().await.unwrap();
    }
}
