//! Per-node recorders, the collector that merges them each tick, and the
//! snapshot types both the TUI and the headless printer read.
//!
//! The hot path (one lock cycle) writes only into its own node's
//! [`NodeRecorder`]: a mutex no other node ever takes. The collector takes each
//! node's mutex once per tick to move the interval histograms out.

mod collector;
mod snapshot;
mod stats;
mod timeline;

pub use collector::{Collector, CollectorConfig};
pub use snapshot::*;
pub use stats::{fairness_of, summarize};
pub use timeline::{HoldSpan, SPAN_BUDGET, SPAN_RING, SpanRing, Timeline};

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use hdrhistogram::Histogram;

/// Significant figures of each node's cumulative acquire histogram (per-node
/// p50/p99, within about 6 %). One figure keeps it near 1 KiB, so 10,000
/// nodes fit in memory.
pub const NODE_SIGFIG: u8 = 1;
/// Significant figures of the run-wide histograms (exact to 0.1 %).
pub const MERGED_SIGFIG: u8 = 3;

/// The faults applied so far, shared by the fault timeline (writer, at
/// most a few times per fault) and the collector (reader, once per tick).
pub type FaultLog = std::sync::Arc<Mutex<Vec<FaultRecord>>>;

/// Counters and interval histograms of one node, owned by that node.
#[derive(Debug, Default)]
pub struct NodeStats {
    /// Acquire attempts started.
    pub attempts: u64,
    /// Grants.
    pub acquired: u64,
    /// Attempts that gave up after the acquire timeout.
    pub timeouts: u64,
    /// Backend errors (acquire or release).
    pub errors: u64,
    /// Releases confirmed by the backend.
    pub released: u64,
    /// Releases refused because the lease was gone.
    pub lost_leases: u64,
    /// Violations this node caused by entering a held key.
    pub violations: u64,
    /// Of those, fenced.
    pub fenced_violations: u64,
    /// Grants to this node that overtook an earlier waiter.
    pub fifo_inversions: u64,
    /// Guarded-resource accesses rejected for a stale token.
    pub stale_rejected: u64,
    /// Longest wait, µs.
    pub max_wait_us: u64,
    /// Last error text.
    pub last_error: Option<String>,
    /// Acquire latencies since the last tick, µs. A plain buffer: the node
    /// only appends (no allocation once it has grown to one tick's worth);
    /// the collector drains it into the histograms. Memory follows the
    /// operation rate, not the node count.
    pub acquire_us: Vec<u32>,
    /// Release latencies since the last tick, µs.
    pub release_us: Vec<u32>,
    /// Handoff latencies since the last tick, µs.
    pub handoff_us: Vec<u32>,
    /// Cycles completed since the last tick, for the timeline (fixed ring).
    pub spans: SpanRing,
}

/// A new empty auto-resizing histogram with `sigfig` significant figures.
pub fn new_histogram(sigfig: u8) -> Histogram<u64> {
    let mut h = Histogram::new(sigfig).expect("1..=5 significant figures is valid");
    h.auto(true);
    h
}

impl NodeStats {
    /// Append a latency, saturating at u32::MAX µs (71 minutes).
    #[inline]
    pub fn push(buf: &mut Vec<u32>, us: u64) {
        buf.push(u32::try_from(us).unwrap_or(u32::MAX));
    }
}

/// One node's recorder: shared between that node and the collector only.
#[derive(Debug, Default)]
pub struct NodeRecorder {
    stats: Mutex<NodeStats>,
    state: AtomicU8,
    /// Run time of the node's latest grant, µs (0: none yet).
    last_grant_us: AtomicU64,
    /// Grants so far, counted at grant time (the stats count at cycle end).
    grants: AtomicU64,
}

impl NodeRecorder {
    /// Run `f` on this node's stats. Called by the node itself (once per
    /// cycle) and by the collector (once per tick).
    pub fn with<R>(&self, f: impl FnOnce(&mut NodeStats) -> R) -> R {
        // A poisoned recorder only means a node panicked mid-record; the
        // counters are still meaningful, so keep going.
        let mut guard = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    /// Publish what the node is doing (one relaxed store).
    #[inline]
    pub fn set_state(&self, state: NodeState) {
        self.state.store(state as u8, Ordering::Relaxed);
    }

    /// Note a grant at run time `us` (one relaxed store).
    #[inline]
    pub fn set_last_grant(&self, us: u64) {
        self.last_grant_us.store(us.max(1), Ordering::Relaxed);
        self.grants.fetch_add(1, Ordering::Relaxed);
    }

    /// Grants so far, counted when granted.
    pub fn grants(&self) -> u64 {
        self.grants.load(Ordering::Relaxed)
    }

    /// Run time of the node's latest grant, µs; 0 when none yet.
    pub fn last_grant_us(&self) -> u64 {
        self.last_grant_us.load(Ordering::Relaxed)
    }

    /// What the node is doing.
    pub fn state(&self) -> NodeState {
        match self.state.load(Ordering::Relaxed) {
            0 => NodeState::Connecting,
            1 => NodeState::Waiting,
            2 => NodeState::Holding,
            3 => NodeState::Idle,
            _ => NodeState::Stopped,
        }
    }
}
