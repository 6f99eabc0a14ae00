//! The dashboard's engine hooks on a real run (`mem`): adding and removing
//! nodes while running, pausing and resuming the load, and the timeline
//! spans published in snapshots. Bounded waits, no timing asserts.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lockstorm::engine::Control;
use lockstorm::metrics::{NodeState, Snapshot};
use lockstorm::run::run_scenario;
use lockstorm::scenario::Scenario;
use tokio::sync::watch;

const SCENARIO: &str = r#"
name = "load-control"
duration = "30s"
seed = 5
[backend]
kind = "mem"
variant = "fifo"
[workload]
nodes = 4
keys = 2
hold = "500us"
think = "500us"
"#;

/// Wait (at most 5 s) for a snapshot satisfying `ok`.
async fn until(
    rx: &mut watch::Receiver<Arc<Snapshot>>,
    what: &str,
    ok: impl Fn(&Snapshot) -> bool,
) -> Arc<Snapshot> {
    let wait = async {
        loop {
            rx.changed().await.expect("engine still running");
            let s = Arc::clone(&rx.borrow_and_update());
            if ok(&s) {
                return s;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .unwrap_or_else(|_| panic!("no snapshot with {what} within 5 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_come_and_go_and_the_load_pauses() {
    let scn = Scenario::parse(SCENARIO, Path::new("t.toml")).unwrap();
    let (tx, mut rx) = watch::channel(Arc::new(Snapshot::default()));
    let control = Control {
        snapshots: Some(tx),
        timeline: Some(Duration::from_secs(10)),
        ..Control::default()
    };
    let (load, stop) = (control.load.clone(), control.stop.clone());
    let run =
        tokio::spawn(async move { run_scenario(&scn, Duration::from_millis(100), control).await });

    until(&mut rx, "4 running nodes", |s| {
        s.nodes_running == 4 && s.totals.acquired > 0
    })
    .await;
    assert_eq!(load.add_nodes(2), 6);
    let s = until(&mut rx, "6 nodes", |s| {
        s.nodes_running == 6 && s.nodes.len() == 6 && s.nodes[5].acquired > 0
    })
    .await;
    // Every node's cycles reach the timeline.
    let tl = s.timeline.as_deref().expect("timeline requested");
    assert!(tl.lanes.len() >= 4);
    assert!(
        tl.lanes[0]
            .iter()
            .any(|sp| sp.granted && sp.end_us > sp.grant_us)
    );

    assert_eq!(load.add_nodes(-3), 3);
    let s = until(&mut rx, "3 nodes", |s| s.nodes_running == 3).await;
    assert_eq!(s.nodes[4].state, NodeState::Stopped);
    assert_eq!(s.nodes[5].state, NodeState::Stopped);

    load.set_paused(true);
    // Nodes finish their cycle, then wait: attempts stop growing.
    let paused = until(&mut rx, "a paused load", |s| {
        s.nodes
            .iter()
            .all(|n| n.state != NodeState::Waiting && n.state != NodeState::Holding)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let later = Arc::clone(&rx.borrow());
    assert_eq!(
        later.totals.attempts, paused.totals.attempts,
        "paused load kept going"
    );

    load.set_paused(false);
    let a = paused.totals.attempts;
    until(&mut rx, "the load resumed", |s| s.totals.attempts > a + 10).await;
    // Node 3 comes back (a new client), its counts kept.
    assert_eq!(load.add_nodes(1), 4);
    let before = later.nodes[3].acquired;
    until(&mut rx, "node 3 running again", |s| {
        s.nodes_running == 4 && s.nodes[3].acquired > before
    })
    .await;

    stop.cancel();
    let r = run.await.unwrap().expect("run succeeds");
    assert!(!r.completed);
    assert_eq!(r.snapshot.safety.violations, 0);
    assert_eq!(r.snapshot.nodes.len(), 6);
}
