//! The engine: connects one client per virtual node, drives the workload
//! (closed or open loop), ticks the collector, and stops cleanly on duration
//! or on request (Ctrl-C, `q`).
//!
//! It never touches the terminal: viewers read the snapshots it publishes.

mod load;
mod node;

pub use load::{LoadControl, MAX_NODES};

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::backend::{Backend, BackendError, LockClient};
use crate::clock::Clock;
use crate::faults::{self, FaultEnv, Net, PauseCell};
use crate::metrics::{
    Collector, CollectorConfig, FaultLog, FaultRecord, IntervalHistogram, NodeRecorder, Phase,
    Snapshot,
};
use crate::oracle::Oracle;
use crate::scenario::{Dist, FaultSpec, KeyPick};
use node::{NodeCtx, run_node};

/// How long connecting one node may take before the run gives up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the backend's cleanup may take.
pub const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Nodes connecting at once.
const CONNECT_CONCURRENCY: usize = 64;

/// The workload as the engine runs it.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Virtual nodes.
    pub nodes: u32,
    /// Distinct keys.
    pub keys: u32,
    /// How each cycle picks its key.
    pub key_pick: KeyPick,
    /// Time in the critical section.
    pub hold: Dist,
    /// Pause between cycles (closed loop only).
    pub think: Dist,
    /// Give up an acquire after this long.
    pub acquire_timeout: Duration,
    /// Open loop: attempts per second across all nodes.
    pub rate: Option<f64>,
    /// Run length, warmup included.
    pub duration: Duration,
    /// Unmeasured start.
    pub warmup: Duration,
    /// Seed of every node's RNG.
    pub seed: u64,
    /// Collector tick.
    pub tick: Duration,
    /// Pause after a backend error before the node tries again.
    pub error_backoff: Duration,
    /// Whether grants carry monotonic fencing tokens.
    pub fencing: bool,
    /// The fault timeline.
    pub faults: Vec<FaultSpec>,
    /// Working directory of `exec` faults (default: the current one).
    pub exec_dir: Option<PathBuf>,
    /// The backend's kind, for messages.
    pub backend: String,
}

/// How the caller steers a run and watches it.
#[derive(Debug, Clone, Default)]
pub struct Control {
    /// Cancel to stop the run early (the result says `completed: false`).
    pub stop: CancellationToken,
    /// Where snapshots are published each tick, if anyone watches.
    pub snapshots: Option<watch::Sender<Arc<Snapshot>>>,
    /// The fault proxy the backend's nodes connect through, if any.
    pub net: Option<Arc<Net>>,
    /// Faults a viewer starts while the run goes (the dashboard's menu).
    pub live_faults: Option<faults::LiveFaults>,
    /// Route the nodes through the fault proxy even when the scenario has no
    /// network fault (for live network faults, or to measure the proxy).
    pub fault_proxy: bool,
    /// Pause the load and change the node count while running.
    pub load: LoadControl,
    /// Publish each node's recent cycles over this much history (the
    /// dashboard's timeline); `None` keeps snapshots small.
    pub timeline: Option<Duration>,
}

/// What a run produced.
#[derive(Debug)]
pub struct EngineOutput {
    /// Ran for the whole duration.
    pub completed: bool,
    /// Wall time from start to the last node stopping.
    pub elapsed: Duration,
    /// Final snapshot.
    pub snapshot: Arc<Snapshot>,
    /// Acquire histograms per log interval.
    pub intervals: Vec<IntervalHistogram>,
    /// Problems that did not stop the run (e.g. cleanup failed).
    pub warnings: Vec<String>,
    /// Backend-specific counters, filled in by the caller from
    /// [`Backend::stats`] (empty from the engine itself).
    pub backend_stats: serde_json::Map<String, serde_json::Value>,
    /// One record per scheduled fault, in scenario order.
    pub faults: Vec<FaultRecord>,
}

/// The keys of a run: `k0`, `k1`, ... prefixed by `prefix`.
pub fn key_names(prefix: &str, keys: u32) -> Arc<[String]> {
    (0..keys).map(|i| format!("{prefix}k{i}")).collect()
}

async fn connect_all<B: Backend>(
    backend: &Arc<B>,
    nodes: u32,
    stop: &CancellationToken,
    pauses: Option<&Arc<[PauseCell]>>,
) -> Result<Vec<B::Client>, BackendError> {
    let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut set = JoinSet::new();
    for id in 0..nodes {
        let b = Arc::clone(backend);
        let gate = Arc::clone(&gate);
        set.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let r = tokio::time::timeout(CONNECT_TIMEOUT, b.connect(id)).await;
            let r = r.unwrap_or_else(|_| {
                Err(BackendError::Op(format!(
                    "connecting node {id} took longer than {}s",
                    CONNECT_TIMEOUT.as_secs()
                )))
            });
            (id, r)
        });
    }
    let mut clients: Vec<Option<B::Client>> = (0..nodes).map(|_| None).collect();
    loop {
        let joined = tokio::select! {
            biased;
            _ = stop.cancelled() => return Err(BackendError::Stopped),
            j = set.join_next() => j,
        };
        let Some(joined) = joined else { break };
        let (id, r) = joined.map_err(|e| BackendError::Op(format!("connect task failed: {e}")))?;
        clients[id as usize] = Some(r?);
    }
    let mut clients: Vec<B::Client> = clients
        .into_iter()
        .map(|c| c.expect("every node connected or returned an error"))
        .collect();
    if let Some(cells) = pauses {
        for (c, cell) in clients.iter_mut().zip(cells.iter()) {
            c.attach_pause(cell.signal());
        }
    }
    Ok(clients)
}

/// Connect node `id` (added while running), then run it. A failed connect
/// is recorded as the node's error, which the viewers show.
async fn connect_and_run<B: Backend>(
    backend: Arc<B>,
    id: u32,
    rec: Arc<NodeRecorder>,
    ctx: Arc<NodeCtx>,
) {
    let r = tokio::select! {
        biased;
        _ = ctx.stop.cancelled() => return,
        r = tokio::time::timeout(CONNECT_TIMEOUT, backend.connect(id)) => r,
    };
    match r {
        Ok(Ok(mut client)) => {
            if let Some(cell) = ctx.pauses.as_deref().and_then(|p| p.get(id as usize)) {
                client.attach_pause(cell.signal());
            }
            run_node(id, client, rec, ctx).await
        }
        Ok(Err(e)) => node::record_error(&rec, &format!("connecting node {id}: {e}")),
        Err(_) => node::record_error(
            &rec,
            &format!(
                "connecting node {id} took longer than {}s",
                CONNECT_TIMEOUT.as_secs()
            ),
        ),
    }
}

/// Run the workload against `backend` until the duration ends or
/// `control.stop` fires. Fails only if the nodes cannot connect.
pub async fn run<B: Backend>(
    backend: Arc<B>,
    cfg: EngineConfig,
    keys: Arc<[String]>,
    control: Control,
) -> Result<EngineOutput, BackendError> {
    let publish = |snap: Arc<Snapshot>| {
        if let Some(tx) = &control.snapshots {
            tx.send_replace(snap);
        }
    };
    publish(Arc::new(Snapshot {
        phase: Some(Phase::Starting),
        total_s: cfg.duration.as_secs_f64(),
        ..Snapshot::default()
    }));
    let live_rx = control.live_faults.as_ref().and_then(|l| l.take());
    let pauses: Option<Arc<[PauseCell]>> = (faults::needs_pauses(&cfg.faults) || live_rx.is_some())
        .then(|| (0..cfg.nodes).map(|_| PauseCell::default()).collect());
    let clients = connect_all(&backend, cfg.nodes, &control.stop, pauses.as_ref()).await?;

    let clock = Clock::start();
    let oracle = Arc::new(Oracle::new(Arc::clone(&keys), cfg.fencing));
    let node_stop = control.stop.child_token();
    let cfg = Arc::new(cfg);
    let ctx = Arc::new(NodeCtx {
        clock,
        oracle: Arc::clone(&oracle),
        keys,
        cfg: Arc::clone(&cfg),
        stop: node_stop.clone(),
        pauses: pauses.clone(),
        load: control.load.clone(),
    });
    control.load.init(cfg.nodes);
    let fault_log: FaultLog = Arc::new(Mutex::new(Vec::new()));
    let mut recorders: Vec<Arc<NodeRecorder>> = (0..cfg.nodes).map(|_| Arc::default()).collect();
    let mut collector = Collector::new(
        CollectorConfig {
            tick: cfg.tick,
            warmup_us: cfg.warmup.as_micros() as u64,
            total_s: cfg.duration.as_secs_f64(),
            hlog_interval: Duration::from_secs(1).max(cfg.tick),
        },
        Arc::clone(&oracle),
        recorders.clone(),
    )
    .with_fault_log(Arc::clone(&fault_log));
    if let Some(history) = control.timeline {
        collector = collector.with_timeline(history);
    }
    let mut tasks = JoinSet::new();
    // Which node ids have a live task (nodes come and go with `+` / `-`).
    let mut live = vec![true; cfg.nodes as usize];
    let mut task_ids = std::collections::HashMap::new();
    for (id, client) in clients.into_iter().enumerate() {
        let h = tasks.spawn(run_node(
            id as u32,
            client,
            Arc::clone(&recorders[id]),
            Arc::clone(&ctx),
        ));
        task_ids.insert(h.id(), id as u32);
    }
    let timeline = (!cfg.faults.is_empty() || live_rx.is_some()).then(|| {
        tokio::spawn(faults::run_timeline(
            cfg.faults.clone(),
            Arc::new(FaultEnv {
                clock,
                nodes: cfg.nodes,
                pauses: pauses.clone(),
                net: control.net.clone(),
                recorders: recorders.clone(),
                stop: node_stop.clone(),
                log: Arc::clone(&fault_log),
                exec_dir: cfg.exec_dir.clone(),
                backend: cfg.backend.clone(),
            }),
            live_rx,
        ))
    });
    let mut running = cfg.nodes;
    let mut ticker = tokio::time::interval_at((clock.origin() + cfg.tick).into(), cfg.tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = tokio::time::sleep_until((clock.origin() + cfg.duration).into());
    tokio::pin!(end);
    let mut stopping = false;
    let mut completed = true;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let now = clock.now_us();
                let phase = if stopping {
                    Phase::Stopping
                } else if now < cfg.warmup.as_micros() as u64 {
                    Phase::Warmup
                } else {
                    Phase::Running
                };
                publish(collector.tick(now, phase, running));
            }
            _ = &mut end, if !stopping => {
                stopping = true;
                node_stop.cancel();
            }
            _ = control.stop.cancelled(), if !stopping => {
                stopping = true;
                completed = false;
                node_stop.cancel();
            }
            _ = control.load.changed(), if !stopping => {
                let target = control.load.target();
                for id in 0..target {
                    if live.get(id as usize).copied().unwrap_or(false) {
                        continue;
                    }
                    if id as usize >= recorders.len() {
                        let rec: Arc<NodeRecorder> = Arc::default();
                        collector.add_node(Arc::clone(&rec));
                        recorders.push(rec);
                        live.push(false);
                    }
                    live[id as usize] = true;
                    running += 1;
                    let h = tasks.spawn(connect_and_run(
                        Arc::clone(&backend),
                        id,
                        Arc::clone(&recorders[id as usize]),
                        Arc::clone(&ctx),
                    ));
                    task_ids.insert(h.id(), id);
                }
            }
            joined = tasks.join_next_with_id() => match joined {
                Some(r) => {
                    running -= 1;
                    let task = match &r {
                        Ok((t, ())) => *t,
                        Err(e) => e.id(),
                    };
                    if let Some(id) = task_ids.remove(&task) {
                        live[id as usize] = false;
                    }
                    if let Err(e) = r && e.is_panic() {
                        // A node panicking is a bug; the run goes on without it.
                        eprintln!("lockstorm: node task panicked: {e}");
                    }
                }
                None => break,
            },
        }
    }
    let elapsed = clock.origin().elapsed();
    node_stop.cancel();
    let fault_records = match timeline {
        Some(t) => t.await.unwrap_or_else(|e| {
            eprintln!("lockstorm: fault timeline failed: {e}");
            cfg.faults.iter().map(FaultRecord::planned).collect()
        }),
        None => Vec::new(),
    };
    let end_us = clock.now_us();
    oracle.finish(end_us);
    let (snapshot, intervals) = collector.finish(end_us);
    publish(Arc::clone(&snapshot));
    let mut warnings = Vec::new();
    match tokio::time::timeout(CLEANUP_TIMEOUT, backend.cleanup()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warnings.push(format!("cleanup on the backend failed: {e}")),
        Err(_) => warnings.push(format!(
            "cleanup on the backend did not finish within {}s",
            CLEANUP_TIMEOUT.as_secs()
        )),
    }
    Ok(EngineOutput {
        completed,
        elapsed,
        snapshot,
        intervals,
        warnings,
        backend_stats: serde_json::Map::new(),
        faults: fault_records,
    })
}
