//! The collector: once per tick it takes each node's recorder, moves the raw
//! latencies into the run-wide histograms, and publishes an immutable
//! [`Snapshot`]. It is the only code that reads every node.

use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};

use super::snapshot::*;
use super::stats::{fairness_of, summarize};
use super::timeline::TimelineTrack;
use super::{MERGED_SIGFIG, NODE_SIGFIG, NodeRecorder, new_histogram};
use crate::oracle::Oracle;

/// Collector settings.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// How often a snapshot is published.
    pub tick: Duration,
    /// Run time before which nothing is counted, µs.
    pub warmup_us: u64,
    /// Planned run length, seconds.
    pub total_s: f64,
    /// Length of one interval of the HdrHistogram log.
    pub hlog_interval: Duration,
}

/// Cumulative counters of one node, as read at a tick.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    attempts: u64,
    acquired: u64,
    timeouts: u64,
    errors: u64,
    released: u64,
    lost_leases: u64,
    violations: u64,
    fenced: u64,
    fifo_inversions: u64,
    stale_rejected: u64,
}

impl Counts {
    fn minus(self, b: Counts) -> Counts {
        Counts {
            attempts: self.attempts - b.attempts,
            acquired: self.acquired - b.acquired,
            timeouts: self.timeouts - b.timeouts,
            errors: self.errors - b.errors,
            released: self.released - b.released,
            lost_leases: self.lost_leases - b.lost_leases,
            violations: self.violations - b.violations,
            fenced: self.fenced - b.fenced,
            fifo_inversions: self.fifo_inversions - b.fifo_inversions,
            stale_rejected: self.stale_rejected - b.stale_rejected,
        }
    }

    fn plus(self, b: Counts) -> Counts {
        Counts {
            attempts: self.attempts + b.attempts,
            acquired: self.acquired + b.acquired,
            timeouts: self.timeouts + b.timeouts,
            errors: self.errors + b.errors,
            released: self.released + b.released,
            lost_leases: self.lost_leases + b.lost_leases,
            violations: self.violations + b.violations,
            fenced: self.fenced + b.fenced,
            fifo_inversions: self.fifo_inversions + b.fifo_inversions,
            stale_rejected: self.stale_rejected + b.stale_rejected,
        }
    }
}

/// Per-node state the collector keeps.
#[derive(Debug)]
struct NodeTrack {
    recorder: Arc<NodeRecorder>,
    now: Counts,
    baseline: Counts,
    max_wait_us: u64,
    acquire: Histogram<u64>,
}

/// Merges node recorders into snapshots.
#[derive(Debug)]
pub struct Collector {
    cfg: CollectorConfig,
    fault_log: Option<super::FaultLog>,
    oracle: Arc<Oracle>,
    nodes: Vec<NodeTrack>,
    measuring: bool,
    measure_start_us: u64,
    last_tick_us: u64,
    prev_total: Counts,
    acquire: Histogram<u64>,
    release: Histogram<u64>,
    handoff: Histogram<u64>,
    tick_acquire: Histogram<u64>,
    hlog_acquire: Histogram<u64>,
    hlog_start_us: u64,
    intervals: Vec<IntervalHistogram>,
    series: Vec<SeriesPoint>,
    last_error: Option<String>,
    timeline: Option<TimelineTrack>,
}

fn record_all(h: &mut Histogram<u64>, values: &[u32]) {
    for &v in values {
        // `saturating_record` would clamp to the current (auto-sized)
        // range instead of growing it; `record` grows it.
        let v = u64::from(v).max(1);
        if h.record(v).is_err() {
            h.saturating_record(v);
        }
    }
}

impl Collector {
    /// A collector over `recorders` (node i is `recorders[i]`).
    pub fn new(
        cfg: CollectorConfig,
        oracle: Arc<Oracle>,
        recorders: Vec<Arc<NodeRecorder>>,
    ) -> Self {
        let mut c = Collector {
            fault_log: None,
            measuring: cfg.warmup_us == 0,
            cfg,
            oracle,
            nodes: Vec::with_capacity(recorders.len()),
            measure_start_us: 0,
            last_tick_us: 0,
            prev_total: Counts::default(),
            acquire: new_histogram(MERGED_SIGFIG),
            release: new_histogram(MERGED_SIGFIG),
            handoff: new_histogram(MERGED_SIGFIG),
            tick_acquire: new_histogram(MERGED_SIGFIG),
            hlog_acquire: new_histogram(MERGED_SIGFIG),
            hlog_start_us: 0,
            intervals: Vec::new(),
            series: Vec::new(),
            last_error: None,
            timeline: None,
        };
        for r in recorders {
            c.add_node(r);
        }
        c
    }

    /// Also keep each node's cycles over the last `history` and publish them
    /// in every snapshot (for the dashboard's timeline).
    pub fn with_timeline(mut self, history: Duration) -> Self {
        self.timeline = Some(TimelineTrack::new(history.as_micros() as u64));
        self
    }

    /// Track one more node (added while running).
    pub fn add_node(&mut self, recorder: Arc<NodeRecorder>) {
        self.nodes.push(NodeTrack {
            recorder,
            now: Counts::default(),
            baseline: Counts::default(),
            max_wait_us: 0,
            acquire: new_histogram(NODE_SIGFIG),
        });
    }

    /// Copy the faults applied so far into every snapshot.
    pub fn with_fault_log(mut self, log: super::FaultLog) -> Self {
        self.fault_log = Some(log);
        self
    }

    /// Merge every node's recorder at run time `now_us` and build a snapshot.
    pub fn tick(&mut self, now_us: u64, phase: Phase, nodes_running: u32) -> Arc<Snapshot> {
        let start_measuring = !self.measuring && now_us >= self.cfg.warmup_us;
        let measuring = self.measuring;
        for (i, n) in self.nodes.iter_mut().enumerate() {
            let timeline = &mut self.timeline;
            let (acq, rel, hand, tick_acq, hlog) = (
                &mut self.acquire,
                &mut self.release,
                &mut self.handoff,
                &mut self.tick_acquire,
                &mut self.hlog_acquire,
            );
            let last_error = &mut self.last_error;
            n.recorder.with(|s| {
                n.now = Counts {
                    attempts: s.attempts,
                    acquired: s.acquired,
                    timeouts: s.timeouts,
                    errors: s.errors,
                    released: s.released,
                    lost_leases: s.lost_leases,
                    violations: s.violations,
                    fenced: s.fenced_violations,
                    fifo_inversions: s.fifo_inversions,
                    stale_rejected: s.stale_rejected,
                };
                if measuring {
                    record_all(acq, &s.acquire_us);
                    record_all(tick_acq, &s.acquire_us);
                    record_all(hlog, &s.acquire_us);
                    record_all(&mut n.acquire, &s.acquire_us);
                    record_all(rel, &s.release_us);
                    record_all(hand, &s.handoff_us);
                    n.max_wait_us = n.max_wait_us.max(s.max_wait_us);
                }
                if start_measuring {
                    n.baseline = n.now;
                    s.max_wait_us = 0;
                }
                s.acquire_us.clear();
                s.release_us.clear();
                s.handoff_us.clear();
                match timeline {
                    Some(t) => t.absorb(i, &mut s.spans, now_us),
                    None => {
                        s.spans.drain(|_| {});
                    }
                }
                if let Some(e) = &s.last_error {
                    *last_error = Some(e.clone());
                }
            });
        }
        let total = self.nodes.iter().fold(Counts::default(), |acc, n| {
            acc.plus(n.now.minus(n.baseline))
        });
        if start_measuring {
            self.measuring = true;
            self.measure_start_us = now_us;
            self.hlog_start_us = now_us;
            self.prev_total = Counts::default();
        } else if self.measuring {
            self.push_series(now_us, total);
            if now_us - self.hlog_start_us >= self.cfg.hlog_interval.as_micros() as u64 {
                self.close_hlog_interval(now_us);
            }
        }
        self.last_tick_us = now_us;
        Arc::new(self.snapshot(now_us, phase, nodes_running, total))
    }

    fn push_series(&mut self, now_us: u64, total: Counts) {
        let d = total.minus(self.prev_total);
        self.prev_total = total;
        let secs = (now_us.saturating_sub(self.last_tick_us.max(self.measure_start_us)) as f64
            / 1e6)
            .max(1e-6);
        let s = summarize(&self.tick_acquire);
        self.series.push(SeriesPoint {
            t_s: now_us as f64 / 1e6,
            acquired: d.acquired,
            throughput_per_s: d.acquired as f64 / secs,
            timeouts_per_s: d.timeouts as f64 / secs,
            errors_per_s: d.errors as f64 / secs,
            p50_us: s.p50,
            p99_us: s.p99,
            p999_us: s.p999,
            violations: d.violations,
        });
        self.tick_acquire.reset();
    }

    fn close_hlog_interval(&mut self, now_us: u64) {
        let mut encoded = Vec::new();
        if V2DeflateSerializer::new()
            .serialize(&self.hlog_acquire, &mut encoded)
            .is_ok()
        {
            self.intervals.push(IntervalHistogram {
                start_s: self.hlog_start_us as f64 / 1e6,
                duration_s: (now_us - self.hlog_start_us) as f64 / 1e6,
                encoded,
            });
        }
        self.hlog_acquire.reset();
        self.hlog_start_us = now_us;
    }

    fn snapshot(&self, now_us: u64, phase: Phase, nodes_running: u32, total: Counts) -> Snapshot {
        let measured_s = if self.measuring {
            now_us.saturating_sub(self.measure_start_us) as f64 / 1e6
        } else {
            0.0
        };
        let per_node: Vec<u64> = self
            .nodes
            .iter()
            .map(|n| n.now.acquired - n.baseline.acquired)
            .collect();
        let max_wait = self.nodes.iter().map(|n| n.max_wait_us).max().unwrap_or(0);
        // Safety is never excused by the warmup: counted from the start.
        let all = self
            .nodes
            .iter()
            .fold(Counts::default(), |acc, n| acc.plus(n.now));
        Snapshot {
            phase: Some(phase),
            elapsed_s: now_us as f64 / 1e6,
            total_s: self.cfg.total_s,
            nodes_running,
            totals: Totals {
                attempts: total.attempts,
                acquired: total.acquired,
                timeouts: total.timeouts,
                errors: total.errors,
                released: total.released,
                throughput_per_s: if measured_s > 0.0 {
                    total.acquired as f64 / measured_s
                } else {
                    0.0
                },
            },
            latency: Latencies {
                acquire: summarize(&self.acquire),
                release: summarize(&self.release),
                handoff: summarize(&self.handoff),
            },
            fairness: fairness_of(&per_node, max_wait, total.fifo_inversions),
            safety: Safety {
                violations: all.violations,
                fenced_violations: all.fenced,
                unfenced_violations: all.violations - all.fenced,
                lost_leases: all.lost_leases,
                lost_updates: self.oracle.lost_updates(),
                stale_rejected: all.stale_rejected,
                examples: self.oracle.examples(),
            },
            nodes: self
                .nodes
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let d = n.now.minus(n.baseline);
                    let s = summarize(&n.acquire);
                    NodeRow {
                        id: i as u32,
                        acquired: d.acquired,
                        timeouts: d.timeouts,
                        errors: d.errors,
                        p50_us: s.p50,
                        p99_us: s.p99,
                        max_wait_us: n.max_wait_us,
                        state: n.recorder.state(),
                    }
                })
                .collect(),
            series: self.series.clone(),
            last_error: self.last_error.clone(),
            timeline: self.timeline.as_ref().map(|t| Arc::new(t.publish())),
            faults: self
                .fault_log
                .as_ref()
                .map(|l| {
                    let log = l.lock().unwrap_or_else(|e| e.into_inner());
                    log.iter().filter_map(FaultWindow::of).collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Final merge at `now_us`; returns the last snapshot and the interval
    /// histograms for the HdrHistogram log.
    pub fn finish(mut self, now_us: u64) -> (Arc<Snapshot>, Vec<IntervalHistogram>) {
        let snap = self.tick(now_us, Phase::Done, 0);
        if self.measuring && (!self.hlog_acquire.is_empty() || self.intervals.is_empty()) {
            self.close_hlog_interval(now_us);
        }
        (snap, self.intervals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_latencies_grow_the_histogram_instead_of_clamping() {
        for sigfig in [NODE_SIGFIG, MERGED_SIGFIG] {
            let mut h = new_histogram(sigfig);
            record_all(&mut h, &[0, 3, 2_200_000, u32::MAX]);
            assert_eq!(h.len(), 4);
            assert_eq!(h.min(), 1, "zero is recorded as 1µs");
            assert!(
                h.value_at_quantile(0.7) >= 2_000_000,
                "{}",
                h.value_at_quantile(0.7)
            );
            assert!(h.max() >= u64::from(u32::MAX) / 2);
        }
    }
}
