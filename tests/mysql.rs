//! The `mysql` backend against real servers: the shared MariaDB `scripts/backends
//! up mysql` starts (3306), and a private one on a free port for the test
//! that stops the server mid-run.

mod support;

use std::path::Path;
use std::time::Duration;

use lockstorm::backend::mysql::{MyBackend, MyVariant};
use lockstorm::backend::registry;
use lockstorm::backend::{Acquired, Backend, BackendError, Grant, Key, LockClient, Released};
use lockstorm::engine::Control;
use lockstorm::metrics::RunResult;
use lockstorm::run::run_scenario;
use lockstorm::scenario::Scenario;
use mysql_async::prelude::Queryable;
use support::{PrivateMariadb, free_port, server_up};

const URL: &str = "mysql://root@127.0.0.1:3306/mysql";
const TICK: Duration = Duration::from_millis(250);
const LONG: Duration = Duration::from_secs(10);

fn up() -> bool {
    server_up("mysql", "127.0.0.1:3306")
}

fn scenario(toml: &str) -> Scenario {
    Scenario::parse(toml, Path::new("test.toml")).expect("test scenario is valid")
}

async fn run(toml: &str) -> RunResult {
    run_scenario(&scenario(toml), TICK, Control::default())
        .await
        .expect("run succeeds")
}

fn contended(variant: &str, nodes: u32, ttl: &str, hold: &str, duration: &str) -> String {
    format!(
        r#"
name = "t"
duration = "{duration}"
seed = 7
[backend]
kind = "mysql"
variant = "{variant}"
url = "{URL}"
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

async fn admin() -> mysql_async::Conn {
    let opts = mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(URL).unwrap())
        .prefer_socket(false);
    mysql_async::Conn::new(opts)
        .await
        .expect("connect to the shared mariadb")
}

/// Tables in the `mysql` database whose name starts with `prefix`.
async fn tables(prefix: &str) -> Vec<String> {
    let mut c = admin().await;
    c.exec(
        "SELECT table_name FROM information_schema.tables \
         WHERE table_schema = 'mysql' AND LEFT(table_name, CHAR_LENGTH(?)) = ? ORDER BY 1",
        (prefix, prefix),
    )
    .await
    .unwrap()
}

fn granted(a: Acquired) -> Grant {
    match a {
        Acquired::Granted(g) => g,
        Acquired::TimedOut => panic!("expected a grant, timed out"),
    }
}

fn key(name: &str) -> Key<'_> {
    Key { index: 0, name }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_lock_excludes_16_nodes_on_one_key() {
    if !up() {
        return;
    }
    let r = run(&contended("get-lock", 16, "5s", "exp(500us)", "3s")).await;
    let s = &r.snapshot;
    assert!(s.totals.acquired > 40, "acquired {}", s.totals.acquired);
    assert_eq!(s.safety.violations, 0);
    assert_eq!(s.safety.lost_updates, 0);
    assert_eq!(s.totals.errors, 0, "{:?}", s.last_error);
    assert_eq!(s.totals.released, s.totals.acquired);
    assert!(!r.properties.fencing && !r.properties.lease && !r.properties.r#unsafe);
    assert_eq!(r.endpoints, [URL]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_row_excludes_16_nodes_on_one_key_and_cleans_up() {
    if !up() {
        return;
    }
    let r = run(&contended("lease-row", 16, "5s", "exp(500us)", "3s")).await;
    let s = &r.snapshot;
    assert!(s.totals.acquired > 40, "acquired {}", s.totals.acquired);
    assert_eq!(s.safety.violations, 0);
    assert_eq!(s.safety.lost_updates, 0);
    assert_eq!(s.safety.stale_rejected, 0, "tokens not monotonic");
    assert_eq!(s.totals.errors, 0, "{:?}", s.last_error);
    assert_eq!(s.totals.released, s.totals.acquired);
    assert!(r.properties.fencing && r.properties.lease);
    assert!(tables(&format!("lockstorm_{}", r.run_id)).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_row_holds_past_the_ttl_violate_but_are_all_fenced() {
    if !up() {
        return;
    }
    let r = run(&contended(
        "lease-row",
        8,
        "100ms",
        "uniform(20ms,200ms)",
        "3s",
    ))
    .await;
    let s = &r.snapshot.safety;
    assert!(s.violations > 3, "violations {}", s.violations);
    // All fenced, give or take the engine: a node whose grant (token N) is
    // delayed past its TTL before it enters, while N+1 enters first, counts
    // as unfenced, though its read is refused (no damage). On a loaded
    // 2-core machine that happens now and then.
    assert!(s.fenced_violations * 10 >= s.violations * 9, "{s:?}");
    assert!(s.unfenced_violations <= s.stale_rejected, "{s:?}");
    assert_eq!(s.lost_updates, 0);
    assert!(s.stale_rejected > 0);
    assert!(s.lost_leases > 0, "late releases find the row taken over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_upsert_shows_unfenced_violations_within_the_first_second() {
    if !up() {
        return;
    }
    let r = run(&contended("seed-upsert", 8, "5s", "exp(2ms)", "2s")).await;
    let s = &r.snapshot;
    assert!(r.properties.r#unsafe);
    assert!(
        s.safety.violations > 10,
        "violations {}",
        s.safety.violations
    );
    assert_eq!(s.safety.fenced_violations, 0, "no token, nothing fenced");
    assert!(s.safety.lost_updates > 0);
    let first_second: u64 = s
        .series
        .iter()
        .filter(|p| p.t_s <= 1.0)
        .map(|p| p.violations)
        .sum();
    assert!(first_second > 0, "{:?}", s.series);
    assert!(
        r.warnings.iter().any(|w| w.contains("UNSAFE")),
        "{:?}",
        r.warnings
    );
    let dir = tempfile::tempdir().unwrap();
    lockstorm::report::write_all(&r, dir.path()).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(json["backend"]["properties"]["unsafe"], true);
    assert!(tables(&format!("lockstorm_{}", r.run_id)).await.is_empty());
}

#[test]
fn backends_labels_seed_upsert_unsafe() {
    let out = assert_cmd::Command::cargo_bin("lockstorm")
        .unwrap()
        .arg("backends")
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("seed-upsert"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("UNSAFE"), "{line}");
    for v in ["get-lock", "lease-row", "advisory"] {
        assert!(text.contains(v), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_lock_waits_within_the_timeout_and_a_dropped_session_frees_the_lock() {
    if !up() {
        return;
    }
    let b = MyBackend::open(URL, MyVariant::GetLock, "t_gl1", LONG, LONG, 1)
        .await
        .unwrap();
    let (mut a, mut c) = (b.connect(0).await.unwrap(), b.connect(1).await.unwrap());
    let k = key("lockstorm:t_gl1:k0");
    let ga = granted(a.acquire(k, LONG).await.unwrap());
    let t = std::time::Instant::now();
    assert_eq!(
        c.acquire(k, Duration::from_millis(300)).await.unwrap(),
        Acquired::TimedOut
    );
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert_eq!(c.release(k, ga).await.unwrap(), Released::LeaseLost);
    drop(a);
    let gc = granted(c.acquire(k, LONG).await.unwrap());
    assert_eq!(c.release(k, gc).await.unwrap(), Released::Released);
    b.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_full_of_sql_metacharacters_is_just_a_value() {
    if !up() {
        return;
    }
    let canary = format!("lockstorm_canary_{}", free_port());
    let mut db = admin().await;
    db.query_drop(format!(
        "CREATE TABLE mysql.{canary} (v TEXT); INSERT INTO mysql.{canary} VALUES ('keep')"
    ))
    .await
    .unwrap();
    let hostile = format!(r#"it's "k"`'); DROP TABLE {canary}; -- \ %s ?"#);
    for variant in [
        MyVariant::GetLock,
        MyVariant::LeaseRow,
        MyVariant::SeedUpsert,
    ] {
        let b = MyBackend::open(URL, variant, "t_hostile", LONG, Duration::from_millis(1), 1)
            .await
            .unwrap();
        let mut a = b.connect(0).await.unwrap();
        let k = key(&hostile);
        let g1 = granted(a.acquire(k, LONG).await.unwrap());
        assert_eq!(a.release(k, g1).await.unwrap(), Released::Released);
        let g2 = granted(a.acquire(k, LONG).await.unwrap());
        if variant == MyVariant::LeaseRow {
            assert_eq!((g1.token, g2.token), (Some(1), Some(2)));
        }
        assert_eq!(a.release(k, g2).await.unwrap(), Released::Released);
        drop(a);
        b.cleanup().await.unwrap();
    }
    let v: Option<String> = db
        .query_first(format!("SELECT v FROM mysql.{canary}"))
        .await
        .unwrap();
    assert_eq!(v.as_deref(), Some("keep"));
    db.query_drop(format!("DROP TABLE mysql.{canary}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unreachable_server_is_named_with_the_command_that_starts_it() {
    let port = free_port();
    let scn = scenario(&format!(
        "name = \"x\"\n[backend]\nkind = \"mysql\"\nurl = \"mysql://bob:hunter2@127.0.0.1:{port}/db\"\n"
    ));
    let err = match registry::build(&scn, "test", 1).await {
        Err(e) => e,
        Ok(_) => panic!("nothing listens on {port}"),
    };
    let msg = err.to_string();
    assert!(matches!(err, BackendError::Unreachable { .. }), "{msg}");
    assert!(
        msg.contains(&format!("mysql://bob:***@127.0.0.1:{port}/db")),
        "{msg}"
    );
    assert!(msg.contains("scripts/backends up mysql"), "{msg}");
    assert!(!msg.contains("hunter2"), "password leaked: {msg}");
}

#[tokio::test]
async fn a_wrong_password_or_database_is_one_line_naming_the_endpoint() {
    if !up() {
        return;
    }
    for (url, expect) in [
        ("mysql://root:hunter2@127.0.0.1:3306/mysql", "Access denied"),
        (
            "mysql://root@127.0.0.1:3306/no_such_db_lockstorm",
            "no_such_db_lockstorm",
        ),
    ] {
        let scn = scenario(&format!(
            "name = \"x\"\n[backend]\nkind = \"mysql\"\nvariant = \"lease-row\"\nurl = \"{url}\"\n"
        ));
        let err = match registry::build(&scn, "test", 1).await {
            Err(e) => e,
            Ok(_) => panic!("{url} must be refused"),
        };
        let msg = err.to_string();
        assert!(!msg.contains('\n'), "{msg}");
        assert!(msg.contains(&lockstorm::backend::redact(url)), "{msg}");
        assert!(msg.contains(expect), "{msg}");
        assert!(!msg.contains("hunter2"), "password leaked: {msg}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_stopped_mid_run_counts_errors_ends_cleanly_and_writes_the_report() {
    let Some(mut server) = PrivateMariadb::start() else {
        return;
    };
    let toml = format!(
        r#"
name = "mysql-stopped"
duration = "4s"
[backend]
kind = "mysql"
variant = "get-lock"
url = "{}"
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
    let r = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("run ends")
        .expect("no panic")
        .expect("run succeeds");
    let s = &r.snapshot;
    assert!(r.completed);
    assert!(s.totals.acquired > 20, "acquired {}", s.totals.acquired);
    assert!(s.totals.errors > 0, "the outage shows as errors");
    assert_eq!(s.safety.violations, 0);
    let dir = tempfile::tempdir().unwrap();
    lockstorm::report::write_all(&r, dir.path()).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    assert!(json["totals"]["errors"].as_u64().unwrap() > 0);
    assert_eq!(json["completed"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_a_route_connects_through_it_and_the_others_do_not() {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    if !up() {
        return;
    }
    let (proxy, accepted, bytes) = support::forwarder("127.0.0.1:3306").await;
    let mut b = MyBackend::open(
        URL,
        MyVariant::LeaseRow,
        "t_route",
        LONG,
        Duration::from_millis(1),
        1,
    )
    .await
    .unwrap();
    assert_eq!(b.upstreams(), ["127.0.0.1:3306"]);
    b.set_route(Arc::new(move |n, up| {
        (n == 1 && up == "127.0.0.1:3306").then(|| proxy.clone())
    }));
    let mut direct = b.connect(0).await.unwrap();
    assert_eq!(accepted.load(Ordering::Relaxed), 0);
    let mut routed = b.connect(1).await.unwrap();
    assert_eq!(accepted.load(Ordering::Relaxed), 1);
    let k = key("lockstorm:t_route:k0");
    let g = granted(direct.acquire(k, LONG).await.unwrap());
    assert_eq!(direct.release(k, g).await.unwrap(), Released::Released);
    // Not switched to the server's unix socket behind the route's back.
    let before = bytes.load(Ordering::Relaxed);
    let g = granted(routed.acquire(k, LONG).await.unwrap());
    assert_eq!(routed.release(k, g).await.unwrap(), Released::Released);
    assert!(
        bytes.load(Ordering::Relaxed) > before,
        "the routed node's traffic bypassed the route"
    );
    drop((direct, routed));
    b.cleanup().await.unwrap();
}
