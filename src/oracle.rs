//! The safety oracle: exact mutual-exclusion checking and the guarded counter.
//!
//! All nodes live in one process, so one monotonic clock orders every event.
//! A node *believes* it holds key K from the moment its grant returns to the
//! moment it calls release. A second believer while K is occupied is a
//! **violation**.
//!
//! Each critical section also does what a real user of a lock does: it reads a
//! guarded counter on entry and writes counter + 1 on exit, presenting its
//! fencing token. The guarded resource (a model of the storage the lock
//! protects, e.g. a database row) remembers the highest token it has seen and
//! rejects any access with a lower one. Increments that were accepted and then
//! overwritten by a stale read-modify-write are **lost updates**.
//!
//! Per-key state sits behind a per-key mutex. With a correct lock only the
//! holder touches it (entry and exit), so it is uncontended; it models the
//! shared storage the lock protects, which is shared by nature.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::metrics::ViolationExample;

/// How many of the latest violation examples are kept.
pub const MAX_EXAMPLES: usize = 32;

#[derive(Debug, Clone, Copy)]
struct Believer {
    node: u32,
    token: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct OpenViolation {
    first: u32,
    second: u32,
    start_us: u64,
    fenced: bool,
}

#[derive(Debug, Default)]
struct KeyState {
    /// Nodes waiting for this key, in request order: (request time µs, node).
    waiters: VecDeque<(u64, u32)>,
    /// Nodes that currently believe they hold the key.
    believers: Vec<Believer>,
    /// Violations whose overlap has not ended yet.
    open: Vec<OpenViolation>,
    /// Highest fencing token the guarded resource has accepted.
    max_token: u64,
    /// The guarded counter.
    counter: u64,
    /// Writes the guarded resource accepted.
    accepted_writes: u64,
    /// When the last holder left its critical section, µs.
    last_release_us: Option<u64>,
}

/// What the oracle observed when a node entered its critical section.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Entry {
    /// Other nodes that believed they held the key at that moment.
    pub violations: u32,
    /// Of those, how many the new token fences (new token > old token).
    pub fenced: u32,
    /// The grant overtook an earlier waiter on the same key.
    pub fifo_inversion: bool,
    /// Release-to-grant time, when this node was waiting at the release, µs.
    pub handoff_us: Option<u64>,
    /// The guarded counter as read; `None` when the read was rejected as stale.
    pub read: Option<u64>,
}

/// What happened when a node left its critical section.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exit {
    /// The write (or the read before it) was rejected for a stale token.
    pub stale_rejected: bool,
}

/// The oracle for one run.
#[derive(Debug)]
pub struct Oracle {
    keys: Box<[Mutex<KeyState>]>,
    key_names: std::sync::Arc<[String]>,
    fencing: bool,
    examples: Mutex<VecDeque<ViolationExample>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Poisoning only means another node panicked mid-update; the state is
    // still the best evidence we have.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Oracle {
    /// An oracle for `key_names.len()` keys. `fencing` says whether the
    /// backend's tokens are monotonic fencing tokens.
    pub fn new(key_names: std::sync::Arc<[String]>, fencing: bool) -> Self {
        let keys = (0..key_names.len())
            .map(|_| Mutex::new(KeyState::default()))
            .collect();
        Oracle {
            keys,
            key_names,
            fencing,
            examples: Mutex::new(VecDeque::with_capacity(MAX_EXAMPLES)),
        }
    }

    /// Node `node` starts waiting for `key` at `now_us`.
    pub fn waiting(&self, key: u32, node: u32, now_us: u64) {
        lock(&self.keys[key as usize])
            .waiters
            .push_back((now_us, node));
    }

    /// Node `node`, waiting since `req_us`, stopped waiting without a grant.
    pub fn gave_up(&self, key: u32, node: u32, req_us: u64) {
        let mut k = lock(&self.keys[key as usize]);
        remove_waiter(&mut k.waiters, req_us, node);
    }

    /// Node `node` (waiting since `req_us`) was granted `key` with `token` and
    /// enters its critical section at `now_us`.
    pub fn enter(
        &self,
        key: u32,
        node: u32,
        token: Option<u64>,
        req_us: u64,
        now_us: u64,
    ) -> Entry {
        let mut k = lock(&self.keys[key as usize]);
        let k = &mut *k;
        let mut e = Entry::default();
        remove_waiter(&mut k.waiters, req_us, node);
        e.fifo_inversion = k.waiters.front().is_some_and(|&(t, _)| t < req_us);
        if let Some(rel) = k.last_release_us
            && k.believers.is_empty()
            && req_us <= rel
        {
            e.handoff_us = Some(now_us.saturating_sub(rel));
        }
        for b in &k.believers {
            let fenced =
                self.fencing && matches!((token, b.token), (Some(new), Some(old)) if new > old);
            e.violations += 1;
            e.fenced += u32::from(fenced);
            k.open.push(OpenViolation {
                first: b.node,
                second: node,
                start_us: now_us,
                fenced,
            });
        }
        k.believers.push(Believer { node, token });
        e.read = match token {
            Some(t) if self.fencing => {
                if t < k.max_token {
                    None
                } else {
                    k.max_token = t;
                    Some(k.counter)
                }
            }
            _ => Some(k.counter),
        };
        e
    }

    /// Node `node` leaves its critical section on `key` at `now_us`, writing
    /// `read + 1` with `token` (no write when the read was rejected).
    pub fn exit(
        &self,
        key: u32,
        node: u32,
        token: Option<u64>,
        read: Option<u64>,
        now_us: u64,
    ) -> Exit {
        let mut k = lock(&self.keys[key as usize]);
        let k = &mut *k;
        if let Some(i) = k.believers.iter().position(|b| b.node == node) {
            k.believers.swap_remove(i);
        }
        if !k.open.is_empty() {
            self.close_open(
                key,
                &mut k.open,
                |v| v.first == node || v.second == node,
                now_us,
            );
        }
        k.last_release_us = Some(now_us);
        let Some(v) = read else {
            return Exit {
                stale_rejected: true,
            };
        };
        if let (true, Some(t)) = (self.fencing, token) {
            if t < k.max_token {
                return Exit {
                    stale_rejected: true,
                };
            }
            k.max_token = t;
        }
        k.counter = v + 1;
        k.accepted_writes += 1;
        Exit::default()
    }

    fn close_open(
        &self,
        key: u32,
        open: &mut Vec<OpenViolation>,
        pick: impl Fn(&OpenViolation) -> bool,
        now_us: u64,
    ) {
        let mut ex = lock(&self.examples);
        open.retain(|v| {
            if !pick(v) {
                return true;
            }
            if ex.len() == MAX_EXAMPLES {
                ex.pop_front();
            }
            ex.push_back(ViolationExample {
                t_s: v.start_us as f64 / 1e6,
                key: self.key_names[key as usize].clone(),
                nodes: [v.first, v.second],
                overlap_us: now_us.saturating_sub(v.start_us),
                fenced: v.fenced,
            });
            false
        });
    }

    /// End every overlap still open (the run stopped) at `now_us`.
    pub fn finish(&self, now_us: u64) {
        for (i, k) in self.keys.iter().enumerate() {
            let mut k = lock(k);
            if !k.open.is_empty() {
                self.close_open(i as u32, &mut k.open, |_| true, now_us);
            }
        }
    }

    /// The latest violation examples, oldest first.
    pub fn examples(&self) -> Vec<ViolationExample> {
        lock(&self.examples).iter().cloned().collect()
    }

    /// Accepted increments that the final counters no longer contain.
    pub fn lost_updates(&self) -> u64 {
        self.keys
            .iter()
            .map(|k| {
                let k = lock(k);
                k.accepted_writes.saturating_sub(k.counter)
            })
            .sum()
    }

    /// The final value of each guarded counter.
    pub fn counters(&self) -> Vec<u64> {
        self.keys.iter().map(|k| lock(k).counter).collect()
    }
}

fn remove_waiter(waiters: &mut VecDeque<(u64, u32)>, req_us: u64, node: u32) {
    if let Some(i) = waiters.iter().position(|&w| w == (req_us, node)) {
        waiters.remove(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn oracle(fencing: bool) -> Oracle {
        Oracle::new(Arc::from(vec!["k0".to_string(), "k1".to_string()]), fencing)
    }

    #[test]
    fn adjacent_sections_are_not_violations() {
        let o = oracle(true);
        o.waiting(0, 1, 10);
        o.waiting(0, 2, 11);
        let a = o.enter(0, 1, Some(1), 10, 20);
        assert_eq!(a.violations, 0);
        assert_eq!(a.read, Some(0));
        assert_eq!(o.exit(0, 1, Some(1), a.read, 30), Exit::default());
        // Enters at the very microsecond the other left: adjacent, not overlapping.
        let b = o.enter(0, 2, Some(2), 11, 30);
        assert_eq!(b.violations, 0);
        assert_eq!(b.handoff_us, Some(0));
        assert_eq!(b.read, Some(1));
        o.exit(0, 2, Some(2), b.read, 40);
        assert_eq!(o.counters(), vec![2, 0]);
        assert_eq!(o.lost_updates(), 0);
        assert!(o.examples().is_empty());
    }

    #[test]
    fn overlap_is_flagged_with_nodes_time_and_length() {
        let o = oracle(false);
        let a = o.enter(0, 3, None, 0, 100);
        let b = o.enter(0, 4, None, 0, 150);
        assert_eq!((b.violations, b.fenced), (1, 0));
        o.exit(0, 3, None, a.read, 400);
        o.exit(0, 4, None, b.read, 500);
        let ex = o.examples();
        assert_eq!(ex.len(), 1);
        assert_eq!(ex[0].nodes, [3, 4]);
        assert_eq!(ex[0].overlap_us, 250);
        assert_eq!(ex[0].t_s, 150e-6);
        assert!(!ex[0].fenced);
        // Both read 0 and wrote 1: one of two accepted increments is lost.
        assert_eq!(o.counters()[0], 1);
        assert_eq!(o.lost_updates(), 1);
    }

    #[test]
    fn different_keys_never_conflict() {
        let o = oracle(true);
        o.enter(0, 1, Some(1), 0, 10);
        let e = o.enter(1, 2, Some(1), 0, 11);
        assert_eq!(e.violations, 0);
    }

    #[test]
    fn fencing_rejects_the_stale_write_so_nothing_is_lost() {
        let o = oracle(true);
        // Node 1 holds with token 1; its lease expires; node 2 gets token 2.
        let a = o.enter(0, 1, Some(1), 0, 100);
        let b = o.enter(0, 2, Some(2), 0, 200);
        assert_eq!((b.violations, b.fenced), (1, 1));
        assert_eq!(b.read, Some(0));
        assert_eq!(o.exit(0, 2, Some(2), b.read, 300), Exit::default());
        // The stale holder writes last: rejected.
        assert!(o.exit(0, 1, Some(1), a.read, 400).stale_rejected);
        assert_eq!(o.counters()[0], 1);
        assert_eq!(o.lost_updates(), 0);
        assert!(o.examples()[0].fenced);
        assert_eq!(o.examples()[0].overlap_us, 100);
    }

    #[test]
    fn a_stale_read_is_rejected_too() {
        let o = oracle(true);
        let b = o.enter(0, 2, Some(2), 0, 100);
        let a = o.enter(0, 1, Some(1), 0, 110);
        // The older token enters second: not fenced by the newer one, and its read is refused.
        assert_eq!((a.violations, a.fenced), (1, 0));
        assert_eq!(a.read, None);
        assert!(o.exit(0, 1, Some(1), a.read, 120).stale_rejected);
        o.exit(0, 2, Some(2), b.read, 130);
        assert_eq!(o.lost_updates(), 0);
    }

    #[test]
    fn equal_tokens_are_not_fenced() {
        let o = oracle(true);
        let a = o.enter(0, 1, Some(5), 0, 10);
        let b = o.enter(0, 2, Some(5), 0, 20);
        assert_eq!((b.violations, b.fenced), (1, 0));
        o.exit(0, 1, Some(5), a.read, 30);
        o.exit(0, 2, Some(5), b.read, 40);
        assert_eq!(o.lost_updates(), 1);
    }

    #[test]
    fn fifo_inversion_when_a_later_request_is_granted_first() {
        let o = oracle(true);
        o.waiting(0, 1, 10);
        o.waiting(0, 2, 20);
        let e = o.enter(0, 2, Some(1), 20, 30);
        assert!(e.fifo_inversion);
        o.exit(0, 2, Some(1), e.read, 40);
        let e = o.enter(0, 1, Some(2), 10, 50);
        assert!(!e.fifo_inversion);
        // A waiter that gave up no longer counts.
        o.exit(0, 1, Some(2), e.read, 60);
        o.waiting(0, 3, 70);
        o.waiting(0, 4, 80);
        o.gave_up(0, 3, 70);
        assert!(!o.enter(0, 4, Some(3), 80, 90).fifo_inversion);
    }

    #[test]
    fn handoff_only_counts_nodes_that_waited_through_the_release() {
        let o = oracle(true);
        let a = o.enter(0, 1, Some(1), 0, 0);
        o.exit(0, 1, Some(1), a.read, 100);
        assert_eq!(o.enter(0, 2, Some(2), 90, 130).handoff_us, Some(30));
        o.exit(0, 2, Some(2), Some(1), 200);
        // Asked after the release: the key was idle, no handoff.
        assert_eq!(o.enter(0, 3, Some(3), 250, 260).handoff_us, None);
    }

    #[test]
    fn finish_closes_open_overlaps() {
        let o = oracle(false);
        o.enter(0, 1, None, 0, 10);
        o.enter(0, 2, None, 0, 20);
        o.finish(70);
        assert_eq!(o.examples()[0].overlap_us, 50);
    }
}
