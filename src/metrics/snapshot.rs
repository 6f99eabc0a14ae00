//! Immutable views of a run: what the collector publishes each tick
//! ([`Snapshot`]) and what a finished run hands to the report writers
//! ([`RunResult`]). Everything here is computed; consumers only lay it out.

use serde::Serialize;

use crate::backend::catalog::Properties;

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Nodes are connecting.
    Starting,
    /// Load runs; statistics are not counted yet.
    Warmup,
    /// Load runs and is measured.
    Running,
    /// Stop requested; nodes are finishing their current cycle.
    Stopping,
    /// All nodes have stopped.
    Done,
}

/// Run-wide counters (measured part of the run only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Totals {
    /// Acquire attempts started.
    pub attempts: u64,
    /// Attempts that were granted.
    pub acquired: u64,
    /// Attempts that gave up after `acquire_timeout`.
    pub timeouts: u64,
    /// Attempts or releases that failed with a backend error.
    pub errors: u64,
    /// Releases the backend confirmed.
    pub released: u64,
    /// Acquisitions per second over the measured time.
    pub throughput_per_s: f64,
}

/// Percentile summary of one latency histogram, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Number of recorded values.
    pub count: u64,
    /// Smallest value, µs.
    pub min: u64,
    /// Mean, µs.
    pub mean: f64,
    /// Median, µs.
    pub p50: u64,
    /// 90th percentile, µs.
    pub p90: u64,
    /// 99th percentile, µs.
    pub p99: u64,
    /// 99.9th percentile, µs.
    pub p999: u64,
    /// Largest value, µs.
    pub max: u64,
}

/// The three latencies lockstorm measures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latencies {
    /// From the (intended) start of an attempt to the grant.
    pub acquire: LatencySummary,
    /// Duration of the release call.
    pub release: LatencySummary,
    /// From one holder's release to the next waiting holder's grant, same key.
    pub handoff: LatencySummary,
}

/// How evenly the lock was shared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Fairness {
    /// Jain's index over per-node acquisitions: 1 = perfectly even, 1/n = one node got all.
    pub jain: f64,
    /// Coefficient of variation of per-node acquisitions (stddev / mean).
    pub cov: f64,
    /// Fewest acquisitions of any node.
    pub min_node_acquired: u64,
    /// Most acquisitions of any node.
    pub max_node_acquired: u64,
    /// Longest single wait for a lock (granted or not), µs.
    pub max_wait_us: u64,
    /// Grants that overtook an earlier waiter on the same key (by request time).
    pub fifo_inversions: u64,
}

/// One mutual-exclusion violation, as an example for a person to read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViolationExample {
    /// Run time at which the second holder entered, seconds.
    pub t_s: f64,
    /// The key both believed they held.
    pub key: String,
    /// The node that held first, then the node that entered.
    pub nodes: [u32; 2],
    /// How long both held at once, µs.
    pub overlap_us: u64,
    /// Whether the newer holder's token lets the guarded resource reject the older one.
    pub fenced: bool,
}

/// What the safety oracle found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Safety {
    /// Entries into a critical section while another node believed it held the same key.
    pub violations: u64,
    /// Violations where fencing tokens let the guarded resource reject the stale holder.
    pub fenced_violations: u64,
    /// Violations the guarded resource could not tell apart.
    pub unfenced_violations: u64,
    /// Releases the backend refused because the lease was already gone.
    pub lost_leases: u64,
    /// Accepted increments of the guarded counters that were later overwritten.
    pub lost_updates: u64,
    /// Writes (and reads) of the guarded resource rejected for a stale token.
    pub stale_rejected: u64,
    /// The latest violations (bounded).
    pub examples: Vec<ViolationExample>,
}

/// What one node is doing right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum NodeState {
    /// Connecting to the backend.
    #[default]
    Connecting = 0,
    /// Waiting for a grant.
    Waiting = 1,
    /// In its critical section.
    Holding = 2,
    /// Between cycles.
    Idle = 3,
    /// Finished.
    Stopped = 4,
}

/// Per-node figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NodeRow {
    /// Node index, 0-based.
    pub id: u32,
    /// Grants.
    pub acquired: u64,
    /// Attempts that timed out.
    pub timeouts: u64,
    /// Backend errors.
    pub errors: u64,
    /// Acquire latency median, µs.
    pub p50_us: u64,
    /// Acquire latency 99th percentile, µs.
    pub p99_us: u64,
    /// Longest wait, µs.
    pub max_wait_us: u64,
    /// Current state.
    pub state: NodeState,
}

/// One collector interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct SeriesPoint {
    /// End of the interval, seconds of run time.
    pub t_s: f64,
    /// Grants in the interval.
    pub acquired: u64,
    /// Grants per second in the interval.
    pub throughput_per_s: f64,
    /// Timeouts per second in the interval.
    pub timeouts_per_s: f64,
    /// Errors per second in the interval.
    pub errors_per_s: f64,
    /// Acquire latency median in the interval, µs.
    pub p50_us: u64,
    /// Acquire latency 99th percentile in the interval, µs.
    pub p99_us: u64,
    /// Acquire latency 99.9th percentile in the interval, µs.
    pub p999_us: u64,
    /// Violations detected in the interval.
    pub violations: u64,
}

/// Everything a viewer needs at one tick. Published as `Arc<Snapshot>`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    /// Run phase.
    pub phase: Option<Phase>,
    /// Time since the run started, seconds.
    pub elapsed_s: f64,
    /// Planned duration, seconds (warmup included).
    pub total_s: f64,
    /// Nodes currently running.
    pub nodes_running: u32,
    /// Counters over the measured part.
    pub totals: Totals,
    /// Latency percentiles over the measured part.
    pub latency: Latencies,
    /// Fairness over the measured part.
    pub fairness: Fairness,
    /// Safety over the whole run (warmup included: a violation is never excused).
    pub safety: Safety,
    /// Per-node rows.
    pub nodes: Vec<NodeRow>,
    /// Per-interval series (measured part).
    pub series: Vec<SeriesPoint>,
    /// Last backend error seen, if any (for the header / events).
    pub last_error: Option<String>,
    /// Recent cycles per node (only when a viewer asked for a timeline).
    #[serde(skip)]
    pub timeline: Option<std::sync::Arc<super::Timeline>>,
    /// Fault windows so far (planned or applied), for the timeline and events.
    pub faults: Vec<FaultWindow>,
}

impl FaultWindow {
    /// The window of an applied fault (one in progress ends when planned).
    pub fn of(f: &FaultRecord) -> Option<FaultWindow> {
        let start_s = f.start_s.filter(|_| f.applied)?;
        let nodes = match f.target.parse::<crate::scenario::NodeSel>() {
            Ok(crate::scenario::NodeSel::List(v)) => v,
            Ok(crate::scenario::NodeSel::Range(a, b)) => (a..b).collect(),
            _ => Vec::new(),
        };
        Some(FaultWindow {
            start_s,
            end_s: f.end_s.unwrap_or(start_s + f.duration_s),
            kind: f.kind.clone(),
            nodes,
        })
    }
}

/// A fault as a viewer marks it on the timeline: when, what, and on whom.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultWindow {
    /// Start, seconds of run time.
    pub start_s: f64,
    /// End, seconds of run time (equal to `start_s` for instantaneous faults).
    pub end_s: f64,
    /// Fault kind (`pause`, `partition`, ...).
    pub kind: String,
    /// Targeted nodes; empty means every node.
    pub nodes: Vec<u32>,
}

/// Result of one threshold check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdResult {
    /// Threshold name as in the scenario (`p99_acquire`).
    pub name: String,
    /// The limit, as a number in the unit of `actual`.
    pub limit: f64,
    /// The measured value.
    pub actual: f64,
    /// Whether the run met it.
    pub passed: bool,
}

/// A finished (or interrupted) run: the input of every report writer.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// Scenario name.
    pub scenario_name: String,
    /// Scenario file as given.
    pub scenario_file: String,
    /// Seed used (given or drawn).
    pub seed: u64,
    /// Planned duration including warmup, seconds.
    pub duration_s: f64,
    /// Warmup, seconds.
    pub warmup_s: f64,
    /// Nodes at start.
    pub nodes: u32,
    /// Distinct keys.
    pub keys: u32,
    /// Backend kind.
    pub backend_kind: String,
    /// Backend variant.
    pub backend_variant: String,
    /// Endpoints, passwords redacted.
    pub endpoints: Vec<String>,
    /// Declared properties.
    pub properties: Properties,
    /// Unique id of this run (namespaces keys on the backend).
    pub run_id: String,
    /// False when stopped early (Ctrl-C, `q`, fatal error).
    pub completed: bool,
    /// Wall time of the run, seconds.
    pub elapsed_s: f64,
    /// Final snapshot.
    pub snapshot: Snapshot,
    /// Threshold outcomes, in scenario order.
    pub thresholds: Vec<ThresholdResult>,
    /// Things the user should know (e.g. faults not applied).
    pub warnings: Vec<String>,
    /// Scenario faults (as configured; `applied` says whether they ran).
    pub faults: Vec<FaultRecord>,
    /// Collector tick, seconds.
    pub tick_s: f64,
    /// Backend-specific counters (`backend.stats` in report.json; empty for
    /// most backends), e.g. ZooKeeper's `watch_notifications_per_grant`.
    pub backend_stats: serde_json::Map<String, serde_json::Value>,
    /// Acquire-latency histogram per interval, for the HdrHistogram interval log.
    #[serde(skip)]
    pub interval_histograms: Vec<IntervalHistogram>,
}

/// One fault of the scenario, as it appears in the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FaultRecord {
    /// Planned start, seconds of run time.
    pub at_s: f64,
    /// Fault kind.
    pub kind: String,
    /// Targeted nodes ("all", "0..4", "[0, 1]").
    pub target: String,
    /// Planned duration, seconds (0 for instantaneous faults).
    pub duration_s: f64,
    /// Whether lockstorm actually applied it.
    pub applied: bool,
    /// When it took effect, seconds of run time (a `when = "holding"` pause
    /// waits for its node to hold a lock).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_s: Option<f64>,
    /// When it ended, seconds of run time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_s: Option<f64>,
    /// Errors of the targeted nodes from start to end.
    pub errors: u64,
    /// Acquire timeouts of the targeted nodes from start to end.
    pub timeouts: u64,
    /// Grants to the targeted nodes from start to end (a lock service that
    /// survives the fault keeps granting).
    pub acquired: u64,
    /// From the end to the first grant to a targeted node, seconds; absent
    /// when none came before the run ended.
    pub recovery_s: Option<f64>,
    /// What happened: endpoints affected, exit code and output of `exec`,
    /// or why it was not applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl FaultRecord {
    /// The record of a planned fault that has not been applied (yet).
    pub fn planned(spec: &crate::scenario::FaultSpec) -> FaultRecord {
        FaultRecord {
            at_s: spec.at.as_secs_f64(),
            kind: spec.kind.to_string(),
            target: spec.nodes.to_string(),
            duration_s: spec.duration.map_or(0.0, |d| d.as_secs_f64()),
            ..FaultRecord::default()
        }
    }
}

/// The acquire latencies recorded in one collector interval.
#[derive(Debug, Clone)]
pub struct IntervalHistogram {
    /// Interval start, seconds of run time.
    pub start_s: f64,
    /// Interval length, seconds.
    pub duration_s: f64,
    /// The histogram (values in µs), serialized in HdrHistogram's V2
    /// compressed format: a few hundred bytes instead of tens of KiB.
    pub encoded: Vec<u8>,
}

impl RunResult {
    /// Whether every threshold passed (true when there are none).
    pub fn thresholds_passed(&self) -> bool {
        self.thresholds.iter().all(|t| t.passed)
    }
}
