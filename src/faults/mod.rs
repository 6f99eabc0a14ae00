//! Fault injection: the `[[faults]]` timeline of a scenario, applied while
//! the engine runs.
//!
//! - `pause` freezes nodes: a node's task stops polling whatever it was doing
//!   (acquire, hold, release, think) until the pause ends, and its client's
//!   background work (lease keepalives) stops through its [`PauseSignal`] —
//!   as a stop-the-world GC or SIGSTOP would. `when = "holding"` arms the
//!   pause and the node triggers it on its next grant.
//! - `latency`, `partition` and `reset` act on the [`proxy::Net`] links of
//!   the selected nodes.
//! - `exec` runs a shell command once.
//!
//! Every fault becomes a [`FaultRecord`] with what it did: when it really
//! started and ended, the targeted nodes' errors and timeouts in between,
//! and the recovery time (end to the first grant to a targeted node).

pub mod proxy;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use proxy::{LinkState, Net, host_port};

use crate::backend::PauseSignal;
use crate::clock::Clock;
use crate::metrics::{FaultLog, FaultRecord, NodeRecorder};
use crate::scenario::{FaultKind, FaultSpec};

/// How long an `exec` command may run before it is killed.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(60);
/// Most characters of an `exec` command's output kept in the report.
const EXEC_OUTPUT_MAX: usize = 2000;
/// How often the timeline looks for a recovery or a `when = "holding"` grant.
const POLL: Duration = Duration::from_millis(2);

/// Faults started while a run is going (the dashboard's fault menu): a
/// sender for the viewer, a receiver the engine's fault timeline takes.
#[derive(Debug, Clone)]
pub struct LiveFaults {
    tx: mpsc::UnboundedSender<FaultSpec>,
    rx: Arc<std::sync::Mutex<Option<mpsc::UnboundedReceiver<FaultSpec>>>>,
}

impl Default for LiveFaults {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        LiveFaults {
            tx,
            rx: Arc::new(std::sync::Mutex::new(Some(rx))),
        }
    }
}

impl LiveFaults {
    /// Start `spec` now (its `at` is ignored). False if the run is over.
    pub fn inject(&self, spec: FaultSpec) -> bool {
        self.tx.send(spec).is_ok()
    }

    /// The receiving end, once (the engine takes it).
    pub fn take(&self) -> Option<mpsc::UnboundedReceiver<FaultSpec>> {
        self.rx.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Whether any fault needs the network proxy.
pub fn needs_proxy(faults: &[FaultSpec]) -> bool {
    faults.iter().any(|f| is_network(f.kind))
}

/// Whether `kind` acts on network traffic.
pub fn is_network(kind: FaultKind) -> bool {
    matches!(
        kind,
        FaultKind::Latency | FaultKind::Partition | FaultKind::Reset
    )
}

/// Whether any fault pauses nodes.
pub fn needs_pauses(faults: &[FaultSpec]) -> bool {
    faults.iter().any(|f| f.kind == FaultKind::Pause)
}

/// One node's pause state: written by the fault timeline (or by the node on
/// a grant, for an armed pause), read by the node at each await point.
#[derive(Debug, Default)]
pub struct PauseCell {
    /// Frozen until this run time, µs (0: not paused).
    until_us: AtomicU64,
    /// An armed `when = "holding"` pause's length, µs (0: none armed).
    armed_us: AtomicU64,
    /// When the latest pause began, µs (0: none since the last arm).
    began_us: AtomicU64,
    wake: Notify,
    signal: PauseSignal,
}

impl PauseCell {
    /// The signal the node's client watches for its background work.
    pub fn signal(&self) -> PauseSignal {
        self.signal.clone()
    }

    /// Freeze the node from `now_us` for `dur_us`.
    pub fn pause(&self, now_us: u64, dur_us: u64) {
        self.began_us.store(now_us.max(1), Ordering::Release);
        self.until_us
            .fetch_max(now_us.saturating_add(dur_us), Ordering::AcqRel);
        self.signal.set(true);
        self.wake.notify_waiters();
    }

    /// Freeze the node for `dur_us` as soon as it next holds a lock.
    pub fn arm(&self, dur_us: u64) {
        self.began_us.store(0, Ordering::Release);
        self.armed_us.store(dur_us.max(1), Ordering::Release);
    }

    /// Cancel an armed pause; true if it had not fired.
    pub fn disarm(&self) -> bool {
        self.armed_us.swap(0, Ordering::AcqRel) != 0
    }

    /// When the latest pause began, µs (0: not since the last arm).
    pub fn began_us(&self) -> u64 {
        self.began_us.load(Ordering::Acquire)
    }

    /// End any pause now (the run is stopping).
    pub fn thaw(&self) {
        self.armed_us.store(0, Ordering::Release);
        self.until_us.store(0, Ordering::Release);
        self.signal.set(false);
        self.wake.notify_waiters();
    }

    /// The node was just granted a lock at `now_us`: fire an armed pause.
    #[inline]
    pub fn on_grant(&self, now_us: u64) {
        if self.armed_us.load(Ordering::Relaxed) != 0 {
            let d = self.armed_us.swap(0, Ordering::AcqRel);
            if d != 0 {
                self.pause(now_us, d);
            }
        }
    }

    /// Sleep while the node is paused.
    pub async fn wait_out(&self, clock: &Clock) {
        loop {
            let until = self.until_us.load(Ordering::Acquire);
            if until <= clock.now_us() {
                break;
            }
            self.signal.set(true);
            let notified = self.wake.notified();
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(clock.instant_at(until).into()) => {}
            }
        }
        if self.signal.is_paused() {
            self.signal.set(false);
        }
    }

    /// Run `fut`, but stop polling it whenever the node is paused: a paused
    /// process makes no progress, while its timers and its peers go on.
    pub async fn freeze<F: Future>(&self, clock: &Clock, fut: F) -> F::Output {
        tokio::pin!(fut);
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.until_us.load(Ordering::Acquire) > clock.now_us() {
                self.wait_out(clock).await;
                continue;
            }
            tokio::select! {
                biased;
                _ = &mut notified => continue,
                out = &mut fut => return out,
            }
        }
    }
}

/// `fut`, frozen by `cell`'s pauses when there is a cell.
pub async fn frozen<F: Future>(cell: Option<&PauseCell>, clock: &Clock, fut: F) -> F::Output {
    match cell {
        Some(c) => c.freeze(clock, fut).await,
        None => fut.await,
    }
}

/// What the fault timeline acts on.
#[derive(Debug)]
pub struct FaultEnv {
    /// The run's clock.
    pub clock: Clock,
    /// Nodes in the run.
    pub nodes: u32,
    /// Per-node pause cells, when the scenario pauses nodes.
    pub pauses: Option<Arc<[PauseCell]>>,
    /// The proxy, when the scenario has network faults and the backend
    /// routes through it.
    pub net: Option<Arc<Net>>,
    /// Per-node recorders (errors, timeouts, last grant).
    pub recorders: Vec<Arc<NodeRecorder>>,
    /// Fires when the nodes stop.
    pub stop: CancellationToken,
    /// Where applied faults are published for snapshots.
    pub log: FaultLog,
    /// Working directory of `exec` commands (default: lockstorm's own).
    pub exec_dir: Option<PathBuf>,
    /// Name of the backend kind, for messages.
    pub backend: String,
}

impl FaultEnv {
    fn targets(&self, spec: &FaultSpec) -> Vec<u32> {
        (0..self.nodes)
            .filter(|n| spec.nodes.contains(*n))
            .collect()
    }

    /// Errors, timeouts and grants of `targets` so far.
    fn counts(&self, targets: &[u32]) -> [u64; 3] {
        targets
            .iter()
            .filter_map(|&n| self.recorders.get(n as usize))
            .map(|r| {
                let (e, t) = r.with(|s| (s.errors, s.timeouts));
                [e, t, r.grants()]
            })
            .fold([0; 3], |a, b| [a[0] + b[0], a[1] + b[1], a[2] + b[2]])
    }

    fn publish(&self, slot: &mut Option<usize>, rec: &FaultRecord) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        match *slot {
            Some(i) if i < log.len() => log[i] = rec.clone(),
            _ => {
                *slot = Some(log.len());
                log.push(rec.clone());
            }
        }
    }

    /// Sleep until run time `us`; false if the run stopped first.
    async fn sleep_until_us(&self, us: u64) -> bool {
        tokio::select! {
            biased;
            _ = self.stop.cancelled() => false,
            _ = tokio::time::sleep_until(self.clock.instant_at(us).into()) => true,
        }
    }

    fn set_links(
        &self,
        targets: &[u32],
        endpoints: &[String],
        f: impl Fn(&mut LinkState),
    ) -> usize {
        let Some(net) = &self.net else { return 0 };
        let idx: Vec<usize> = if endpoints.is_empty() {
            (0..net.upstreams().len()).collect()
        } else {
            endpoints
                .iter()
                .filter_map(|e| net.endpoint_index(e))
                .collect()
        };
        for &n in targets {
            for &e in &idx {
                if let Some(l) = net.link(n, e) {
                    l.update(&f);
                }
            }
        }
        idx.len()
    }

    /// End every fault at once: heal the network and thaw every node.
    pub fn heal(&self) {
        if let Some(net) = &self.net {
            net.heal_all();
        }
        if let Some(cells) = &self.pauses {
            for c in cells.iter() {
                c.thaw();
            }
        }
    }
}

/// Apply `specs` on their schedule, and the faults that arrive on `live`
/// at once, until they are all done or the run stops; one record per spec,
/// in scenario order, then the live ones in the order they came.
pub async fn run_timeline(
    specs: Vec<FaultSpec>,
    env: Arc<FaultEnv>,
    mut live: Option<mpsc::UnboundedReceiver<FaultSpec>>,
) -> Vec<FaultRecord> {
    let mut set = JoinSet::new();
    let mut n = specs.len();
    for (i, spec) in specs.into_iter().enumerate() {
        let env = Arc::clone(&env);
        set.spawn(async move { (i, apply(spec, &env).await) });
    }
    // Live faults: until the run stops.
    while let Some(rx) = live.as_mut() {
        tokio::select! {
            biased;
            _ = env.stop.cancelled() => break,
            spec = rx.recv() => match spec {
                Some(mut spec) => {
                    spec.at = Duration::from_micros(env.clock.now_us());
                    let env = Arc::clone(&env);
                    let i = n;
                    n += 1;
                    set.spawn(async move { (i, apply(spec, &env).await) });
                }
                None => live = None,
            },
        }
    }
    // At stop, end every fault so the nodes can release what they hold.
    let healer = {
        let env = Arc::clone(&env);
        tokio::spawn(async move {
            env.stop.cancelled().await;
            env.heal();
        })
    };
    let mut out: Vec<Option<FaultRecord>> = vec![None; n];
    while let Some(j) = set.join_next().await {
        if let Ok((i, rec)) = j {
            out[i] = Some(rec);
        }
    }
    healer.abort();
    out.into_iter()
        .map(|r| {
            r.unwrap_or_else(|| FaultRecord {
                detail: Some("the fault task failed (a bug in lockstorm)".into()),
                ..FaultRecord::default()
            })
        })
        .collect()
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn secs(us: u64) -> f64 {
    us as f64 / 1e6
}

async fn apply(spec: FaultSpec, env: &FaultEnv) -> FaultRecord {
    let mut rec = FaultRecord::planned(&spec);
    let mut slot = None;
    if !env.sleep_until_us(us(spec.at)).await {
        rec.detail = Some("not applied: the run ended before it was due".into());
        return rec;
    }
    let targets = env.targets(&spec);
    let dur_us = spec.duration.map_or(0, us);
    let before = env.counts(&targets);
    let mut start_us = env.clock.now_us();
    let end_us;
    match spec.kind {
        FaultKind::Pause => {
            let Some(cells) = &env.pauses else {
                rec.detail = Some("not applied: no pause cells (a bug in lockstorm)".into());
                return rec;
            };
            let cells_of = || targets.iter().filter_map(|&n| cells.get(n as usize));
            if spec.when_holding {
                for c in cells_of() {
                    c.arm(dur_us);
                }
                // Wait until every target has held a lock (and so paused).
                let mut fired: Vec<u64>;
                loop {
                    fired = cells_of().map(|c| c.began_us()).collect();
                    if fired.iter().all(|&b| b != 0) || env.stop.is_cancelled() {
                        break;
                    }
                    if fired.iter().any(|&b| b != 0) && slot.is_none() {
                        rec.applied = true;
                        rec.start_s = Some(secs(
                            fired.iter().copied().filter(|&b| b != 0).min().unwrap_or(0),
                        ));
                        env.publish(&mut slot, &rec);
                    }
                    tokio::time::sleep(POLL).await;
                }
                let never: Vec<String> = targets
                    .iter()
                    .zip(&fired)
                    .filter(|(n, b)| {
                        **b == 0 && cells.get(**n as usize).is_some_and(|c| c.disarm())
                    })
                    .map(|(n, _)| n.to_string())
                    .collect();
                let began: Vec<u64> = fired.iter().copied().filter(|&b| b != 0).collect();
                if began.is_empty() {
                    rec.detail = Some(
                        "not applied: no targeted node held a lock before the run ended".into(),
                    );
                    rec.applied = false;
                    env.publish(&mut slot, &rec);
                    return rec;
                }
                if !never.is_empty() {
                    rec.detail = Some(format!(
                        "node(s) {} never held a lock before the run ended and were not paused",
                        never.join(", ")
                    ));
                }
                start_us = began.iter().copied().min().unwrap_or(start_us);
                end_us = began.iter().copied().max().unwrap_or(start_us) + dur_us;
            } else {
                for c in cells_of() {
                    c.pause(start_us, dur_us);
                }
                end_us = start_us + dur_us;
            }
            rec.applied = true;
            rec.start_s = Some(secs(start_us));
            env.publish(&mut slot, &rec);
            env.sleep_until_us(end_us).await;
        }
        FaultKind::Latency | FaultKind::Partition | FaultKind::Reset => {
            if env.net.is_none() {
                rec.detail = Some(if matches!(env.backend.as_str(), "mem" | "sqlite") {
                    format!(
                        "not applied: the {} backend has no network connections to fault",
                        env.backend
                    )
                } else {
                    "not applied: this run has no fault proxy (it starts when the scenario \
                     has a network fault, or with `lockstorm run --fault-proxy`)"
                        .to_string()
                });
                return rec;
            }
            let (delay, jitter) = (
                spec.delay.unwrap_or_default(),
                spec.jitter.unwrap_or_default(),
            );
            let eps = match spec.kind {
                FaultKind::Latency => env.set_links(&targets, &[], |s| {
                    s.delay = delay;
                    s.jitter = jitter;
                }),
                FaultKind::Partition => {
                    env.set_links(&targets, &spec.endpoints, |s| s.partitioned = true)
                }
                _ => env.set_links(&targets, &spec.endpoints, |s| s.reset_gen += 1),
            };
            rec.applied = true;
            rec.start_s = Some(secs(start_us));
            rec.detail = Some(format!(
                "{} node(s) × {eps} endpoint(s){}",
                targets.len(),
                if spec.endpoints.is_empty() {
                    String::new()
                } else {
                    format!(": {}", spec.endpoints.join(", "))
                }
            ));
            env.publish(&mut slot, &rec);
            if spec.kind == FaultKind::Reset {
                end_us = start_us;
            } else {
                end_us = start_us + dur_us;
                env.sleep_until_us(end_us).await;
                match spec.kind {
                    FaultKind::Latency => env.set_links(&targets, &[], |s| {
                        s.delay = Duration::ZERO;
                        s.jitter = Duration::ZERO;
                    }),
                    _ => env.set_links(&targets, &spec.endpoints, |s| s.partitioned = false),
                };
            }
        }
        FaultKind::Exec => {
            let command = spec.command.clone().unwrap_or_default();
            rec.applied = true;
            rec.start_s = Some(secs(start_us));
            rec.detail = Some(format!("`{command}` running"));
            env.publish(&mut slot, &rec);
            rec.detail = Some(format!("`{command}` → {}", exec(&command, env).await));
            end_us = env.clock.now_us();
        }
    }
    let end_us = end_us.min(env.clock.now_us());
    rec.end_s = Some(secs(end_us));
    let after = env.counts(&targets);
    rec.errors = after[0].saturating_sub(before[0]);
    rec.timeouts = after[1].saturating_sub(before[1]);
    rec.acquired = after[2].saturating_sub(before[2]);
    env.publish(&mut slot, &rec);
    // Recovery: the first grant to a targeted node after the end.
    loop {
        let first = targets
            .iter()
            .filter_map(|&n| env.recorders.get(n as usize))
            .map(|r| r.last_grant_us())
            .filter(|&g| g > end_us)
            .min();
        if let Some(g) = first {
            rec.recovery_s = Some(secs(g - end_us));
            env.publish(&mut slot, &rec);
            break;
        }
        tokio::select! {
            biased;
            _ = env.stop.cancelled() => break,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
    rec
}

/// Run `command` with `sh -c`; "exit N" and the tail of its output.
async fn exec(command: &str, env: &FaultEnv) -> String {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(dir) = &env.exec_dir {
        cmd.current_dir(dir);
    }
    match tokio::time::timeout(EXEC_TIMEOUT, cmd.output()).await {
        Err(_) => format!("killed after {}s", EXEC_TIMEOUT.as_secs()),
        Ok(Err(e)) => format!("could not start: {e}"),
        Ok(Ok(out)) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            let text = text.trim();
            let status = match out.status.code() {
                Some(c) => format!("exit {c}"),
                None => "killed by a signal".to_string(),
            };
            if text.is_empty() {
                status
            } else {
                let tail: String = if text.chars().count() > EXEC_OUTPUT_MAX {
                    let skip = text.chars().count() - EXEC_OUTPUT_MAX;
                    format!("…{}", text.chars().skip(skip).collect::<String>())
                } else {
                    text.to_string()
                };
                format!("{status}: {tail}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn freeze_stops_progress_until_the_pause_ends() {
        let clock = Clock::start();
        let cell = Arc::new(PauseCell::default());
        let progressed = Arc::new(AtomicU64::new(0));
        let p = Arc::clone(&progressed);
        let c2 = Arc::clone(&cell);
        let task = tokio::spawn(async move {
            c2.freeze(&clock, async {
                for i in 1..=40u64 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    p.store(i, Ordering::Relaxed);
                }
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        let t = Instant::now();
        cell.pause(clock.now_us(), 150_000);
        assert!(cell.signal().is_paused());
        tokio::time::sleep(Duration::from_millis(20)).await;
        let frozen_at = progressed.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            progressed.load(Ordering::Relaxed),
            frozen_at,
            "no progress while paused"
        );
        task.await.unwrap();
        assert!(t.elapsed() >= Duration::from_millis(150));
        assert_eq!(progressed.load(Ordering::Relaxed), 40);
        assert!(!cell.signal().is_paused());
    }

    #[tokio::test]
    async fn armed_pause_fires_on_grant_only() {
        let clock = Clock::start();
        let cell = PauseCell::default();
        cell.arm(50_000);
        assert_eq!(cell.began_us(), 0);
        let now = clock.now_us();
        cell.on_grant(now);
        assert_eq!(cell.began_us(), now.max(1));
        let t = Instant::now();
        cell.wait_out(&clock).await;
        assert!(t.elapsed() >= Duration::from_millis(40));
        cell.on_grant(clock.now_us()); // disarmed after firing
        let t = Instant::now();
        cell.wait_out(&clock).await;
        assert!(t.elapsed() < Duration::from_millis(20));
        cell.arm(1_000_000);
        assert!(cell.disarm());
        assert!(!cell.disarm());
    }

    #[tokio::test]
    async fn exec_records_exit_code_and_output() {
        let env = FaultEnv {
            clock: Clock::start(),
            nodes: 0,
            pauses: None,
            net: None,
            recorders: vec![],
            stop: CancellationToken::new(),
            log: FaultLog::default(),
            exec_dir: None,
            backend: "mem".into(),
        };
        assert_eq!(exec("true", &env).await, "exit 0");
        assert_eq!(exec("echo hi; exit 3", &env).await, "exit 3: hi");
        let long = exec("yes x | head -c 5000", &env).await;
        assert!(long.starts_with("exit 0: …") && long.chars().count() < 2100);
    }
}
