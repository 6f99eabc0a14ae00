//! Recent lock cycles per node, for the dashboard's timeline swimlanes.
//!
//! Each node appends one [`HoldSpan`] per cycle into a small fixed ring in its
//! own recorder (no allocation once the ring exists, no message, no shared
//! lock). The collector drains the rings each tick into a bounded per-node
//! history and, when a viewer asked for it, publishes a [`Timeline`] in the
//! snapshot. When a node completes more cycles in one tick than the ring holds,
//! the oldest are overwritten and counted as dropped (shown by the viewer).

use std::collections::VecDeque;

use serde::Serialize;

/// Spans one node can buffer between two collector ticks.
pub const SPAN_RING: usize = 64;
/// Spans kept across all nodes' histories (bounds the memory and the
/// per-tick copy into the snapshot, about 40 bytes each).
pub const SPAN_BUDGET: usize = 65_536;

/// One lock cycle of one node: waiting, then (maybe) holding. Run-time µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HoldSpan {
    /// When the node asked for the lock, µs of run time.
    pub wait_start_us: u64,
    /// When the grant arrived (equals `end_us` when not granted), µs.
    pub grant_us: u64,
    /// When the node left its critical section, or gave up waiting, µs.
    pub end_us: u64,
    /// Key index.
    pub key: u32,
    /// Whether the lock was granted (false: timed out).
    pub granted: bool,
    /// Whether another node believed it held the key when this one entered.
    pub overlapped: bool,
}

/// A fixed-size ring of the spans a node completed since the last tick.
#[derive(Debug, Default)]
pub struct SpanRing {
    buf: Vec<HoldSpan>,
    next: usize,
    dropped: u64,
}

impl SpanRing {
    /// Record a span, overwriting the oldest when full.
    #[inline]
    pub fn push(&mut self, s: HoldSpan) {
        if self.buf.len() < SPAN_RING {
            if self.buf.capacity() == 0 {
                self.buf.reserve_exact(SPAN_RING);
            }
            self.buf.push(s);
        } else {
            self.buf[self.next] = s;
            self.next = (self.next + 1) % SPAN_RING;
            self.dropped += 1;
        }
    }

    /// Hand every buffered span to `f`, oldest first, and empty the ring.
    /// Returns how many spans were overwritten since the last drain.
    pub fn drain(&mut self, mut f: impl FnMut(HoldSpan)) -> u64 {
        let (a, b) = self.buf.split_at(self.next);
        b.iter().chain(a).for_each(|s| f(*s));
        self.buf.clear();
        self.next = 0;
        std::mem::take(&mut self.dropped)
    }
}

/// Recent cycles of every node, as published in a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timeline {
    /// Per node (index = node id), spans ordered by start, the newest last.
    pub lanes: Vec<Vec<HoldSpan>>,
    /// Spans lost because a node cycled faster than its ring between two
    /// ticks, or its history was full (whole run).
    pub dropped: u64,
    /// How far back the lanes reach, seconds.
    pub history_s: f64,
}

/// The collector's per-node histories.
#[derive(Debug, Default)]
pub(crate) struct TimelineTrack {
    pub history_us: u64,
    pub lanes: Vec<VecDeque<HoldSpan>>,
    pub dropped: u64,
}

impl TimelineTrack {
    pub fn new(history_us: u64) -> Self {
        TimelineTrack {
            history_us,
            ..Self::default()
        }
    }

    /// Most spans one node keeps.
    fn cap(&self) -> usize {
        (SPAN_BUDGET / self.lanes.len().max(1)).clamp(32, 4096)
    }

    /// Drain node `i`'s ring into its history, dropping what is too old.
    pub fn absorb(&mut self, i: usize, ring: &mut SpanRing, now_us: u64) {
        while self.lanes.len() <= i {
            self.lanes.push(VecDeque::new());
        }
        let cap = self.cap();
        let lane = &mut self.lanes[i];
        let mut over = 0;
        self.dropped += ring.drain(|s| {
            if lane.len() >= cap {
                lane.pop_front();
                over += 1;
            }
            lane.push_back(s);
        });
        self.dropped += over;
        let oldest = now_us.saturating_sub(self.history_us);
        while lane.front().is_some_and(|s| s.end_us < oldest) {
            lane.pop_front();
        }
    }

    /// A copy for the snapshot.
    pub fn publish(&self) -> Timeline {
        Timeline {
            lanes: self
                .lanes
                .iter()
                .map(|l| l.iter().copied().collect())
                .collect(),
            dropped: self.dropped,
            history_s: self.history_us as f64 / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(t: u64) -> HoldSpan {
        HoldSpan {
            wait_start_us: t,
            grant_us: t + 1,
            end_us: t + 2,
            ..HoldSpan::default()
        }
    }

    #[test]
    fn ring_keeps_the_newest_in_order_and_counts_the_overwritten() {
        let mut r = SpanRing::default();
        for t in 0..(SPAN_RING as u64 + 3) {
            r.push(span(t));
        }
        let mut got = Vec::new();
        assert_eq!(r.drain(|s| got.push(s.wait_start_us)), 3);
        assert_eq!(got.len(), SPAN_RING);
        assert_eq!(got[0], 3);
        assert_eq!(*got.last().unwrap(), SPAN_RING as u64 + 2);
        assert_eq!(r.drain(|_| panic!("empty")), 0);
    }

    #[test]
    fn track_trims_history_by_age() {
        let mut t = TimelineTrack::new(1_000);
        let mut r = SpanRing::default();
        r.push(span(0));
        r.push(span(5_000));
        t.absorb(2, &mut r, 5_500);
        let tl = t.publish();
        assert_eq!(tl.lanes.len(), 3);
        assert_eq!(tl.lanes[2], vec![span(5_000)]);
        assert!(tl.lanes[0].is_empty());
        assert_eq!(tl.history_s, 0.001);
    }
}
