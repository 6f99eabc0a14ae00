//! `mem`: an in-process lock service, so lockstorm runs with no server.
//!
//! Leases really expire, tokens are monotonic per key, and an optional `rtt`
//! delays every call by a simulated network round trip (half before, half
//! after). Variants:
//! - `fifo`: a release hands the lock to the longest waiter.
//! - `barging`: a release frees the lock and wakes one waiter, but anyone —
//!   a newcomer, or the node that just released — may take it first.
//! - `broken`: fifo, except that now and then it grants a lock that is held,
//!   with the holder's token. The checker's self-test; labelled unsafe.
//!
//! The service state is shared by all nodes, as a server's would be; each
//! node has its own client and its own wake-up signal.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use tokio::sync::Notify;

use super::{Acquired, Backend, BackendError, Grant, Key, LockClient, Released};
use crate::pace;

/// Probability that `broken` grants a held lock on an attempt that finds it held.
pub const BROKEN_GRANT_PROBABILITY: f64 = 0.02;

/// Which `mem` behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemVariant {
    /// Grants in request order.
    Fifo,
    /// Anyone may win after a release.
    Barging,
    /// Sometimes grants a held lock.
    Broken,
}

impl MemVariant {
    /// From the catalog name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "fifo" => Some(Self::Fifo),
            "barging" => Some(Self::Barging),
            "broken" => Some(Self::Broken),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Holder {
    ticket: u64,
    token: u64,
    expires: Instant,
}

#[derive(Debug)]
struct Waiter {
    ticket: u64,
    wake: Arc<Notify>,
}

#[derive(Debug, Default)]
struct Slot {
    holder: Option<Holder>,
    queue: VecDeque<Waiter>,
    last_token: u64,
    /// xorshift state for `barging`'s choice of whom to wake.
    rng: u64,
}

#[derive(Debug)]
struct Service {
    slots: Box<[Mutex<Slot>]>,
    ttl: Duration,
    variant: MemVariant,
}

impl Service {
    fn slot(&self, key: u32) -> MutexGuard<'_, Slot> {
        // A panicking node cannot leave a slot half-updated in a way that
        // matters more than losing the whole run would.
        self.slots[key as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Make `ticket` the holder with a fresh token.
    fn grant(&self, slot: &mut Slot, ticket: u64, now: Instant) -> Grant {
        slot.last_token += 1;
        slot.holder = Some(Holder {
            ticket,
            token: slot.last_token,
            expires: now + self.ttl,
        });
        Grant {
            token: Some(slot.last_token),
            handle: ticket,
        }
    }

    /// The lock is free now: in fifo, hand it to the longest waiter; in
    /// barging, wake one waiter to compete for it.
    fn on_free(&self, slot: &mut Slot, now: Instant) {
        slot.holder = None;
        match self.variant {
            MemVariant::Fifo | MemVariant::Broken => {
                if let Some(w) = slot.queue.pop_front() {
                    self.grant(slot, w.ticket, now);
                    w.wake.notify_one();
                }
            }
            MemVariant::Barging => {
                // Wake a waiter chosen at random, as a retry timer or a
                // scheduler would: it races the releaser and any newcomer.
                let n = slot.queue.len() as u64;
                if n > 0 {
                    slot.rng ^= slot.rng << 13;
                    slot.rng ^= slot.rng >> 7;
                    slot.rng ^= slot.rng << 17;
                    let i = (slot.rng % n) as usize;
                    slot.queue[i].wake.notify_one();
                }
            }
        }
    }

    /// Drop the holder if its lease ran out.
    fn expire(&self, slot: &mut Slot, now: Instant) {
        if slot.holder.is_some_and(|h| h.expires <= now) {
            self.on_free(slot, now);
        }
    }
}

/// The `mem` backend of one run.
#[derive(Debug, Clone)]
pub struct MemBackend {
    service: Arc<Service>,
    rtt: Duration,
    seed: u64,
}

impl MemBackend {
    /// A service for `keys` keys with lease `ttl` and simulated round trip `rtt`.
    pub fn new(variant: MemVariant, keys: u32, ttl: Duration, rtt: Duration, seed: u64) -> Self {
        let slots = (0..keys)
            .map(|k| {
                Mutex::new(Slot {
                    rng: (seed ^ 0x2545_f491_4f6c_dd1d).wrapping_mul(u64::from(k) * 2 + 1) | 1,
                    ..Slot::default()
                })
            })
            .collect();
        MemBackend {
            service: Arc::new(Service {
                slots,
                ttl,
                variant,
            }),
            rtt,
            seed,
        }
    }
}

impl Backend for MemBackend {
    type Client = MemClient;

    async fn connect(&self, node: u32) -> Result<MemClient, BackendError> {
        Ok(MemClient {
            service: Arc::clone(&self.service),
            half_rtt: self.rtt / 2,
            node,
            seq: 0,
            wake: Arc::new(Notify::new()),
            rng: SmallRng::seed_from_u64(self.seed ^ (u64::from(node) << 32) ^ 0x6d65_6d00),
        })
    }

    async fn cleanup(&self) -> Result<(), BackendError> {
        Ok(())
    }

    fn endpoints(&self) -> Vec<String> {
        Vec::new()
    }
}

/// One node's client of the `mem` service.
#[derive(Debug)]
pub struct MemClient {
    service: Arc<Service>,
    half_rtt: Duration,
    node: u32,
    seq: u64,
    wake: Arc<Notify>,
    rng: SmallRng,
}

/// Removes a waiter from the queue if its acquire is abandoned (the future is
/// dropped when the run stops), handing on a lock granted in the meantime.
struct WaitGuard<'a> {
    service: &'a Service,
    key: u32,
    ticket: u64,
    armed: bool,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut slot = self.service.slot(self.key);
        if let Some(i) = slot.queue.iter().position(|w| w.ticket == self.ticket) {
            slot.queue.remove(i);
        }
        if slot.holder.is_some_and(|h| h.ticket == self.ticket) {
            self.service.on_free(&mut slot, Instant::now());
        }
    }
}

impl MemClient {
    fn try_take(&mut self, slot: &mut Slot, ticket: u64, now: Instant) -> Option<Grant> {
        let service = &*self.service;
        service.expire(slot, now);
        if let Some(h) = slot.holder {
            if h.ticket == ticket {
                return Some(Grant {
                    token: Some(h.token),
                    handle: ticket,
                });
            }
            if service.variant == MemVariant::Broken
                && self.rng.random_bool(BROKEN_GRANT_PROBABILITY)
            {
                // The bug: a second grant of a held lock, with the same token.
                return Some(Grant {
                    token: Some(h.token),
                    handle: ticket,
                });
            }
            return None;
        }
        let my_turn = match service.variant {
            MemVariant::Barging => true,
            MemVariant::Fifo | MemVariant::Broken => {
                slot.queue.front().is_none_or(|w| w.ticket == ticket)
            }
        };
        if !my_turn {
            return None;
        }
        if let Some(i) = slot.queue.iter().position(|w| w.ticket == ticket) {
            slot.queue.remove(i);
        }
        Some(service.grant(slot, ticket, now))
    }
}

impl LockClient for MemClient {
    async fn acquire(&mut self, key: Key<'_>, timeout: Duration) -> Result<Acquired, BackendError> {
        pace::sleep(self.half_rtt).await;
        let start = Instant::now();
        let deadline = start + timeout;
        self.seq += 1;
        let ticket = (u64::from(self.node) << 32) | (self.seq & 0xffff_ffff);
        let service = Arc::clone(&self.service);
        let mut guard = WaitGuard {
            service: &service,
            key: key.index,
            ticket,
            armed: false,
        };
        let mut queued = false;
        let outcome = loop {
            let now = Instant::now();
            let wake_at = {
                let mut slot = service.slot(key.index);
                if let Some(g) = self.try_take(&mut slot, ticket, now) {
                    break Acquired::Granted(g);
                }
                if now >= deadline {
                    if let Some(i) = slot.queue.iter().position(|w| w.ticket == ticket) {
                        slot.queue.remove(i);
                    }
                    break Acquired::TimedOut;
                }
                if !queued {
                    slot.queue.push_back(Waiter {
                        ticket,
                        wake: Arc::clone(&self.wake),
                    });
                    queued = true;
                    guard.armed = true;
                }
                slot.holder.map_or(deadline, |h| h.expires.min(deadline))
            };
            let _ = tokio::time::timeout_at(wake_at.into(), self.wake.notified()).await;
        };
        guard.armed = false;
        drop(guard);
        pace::sleep(self.half_rtt).await;
        Ok(outcome)
    }

    async fn release(&mut self, key: Key<'_>, grant: Grant) -> Result<Released, BackendError> {
        pace::sleep(self.half_rtt).await;
        let outcome = {
            let service = &*self.service;
            let mut slot = service.slot(key.index);
            let now = Instant::now();
            match slot.holder {
                Some(h) if h.ticket == grant.handle && h.expires > now => {
                    service.on_free(&mut slot, now);
                    Released::Released
                }
                _ => {
                    service.expire(&mut slot, now);
                    Released::LeaseLost
                }
            }
        };
        pace::sleep(self.half_rtt).await;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> Key<'static> {
        Key {
            index: i,
            name: "k",
        }
    }

    #[tokio::test]
    async fn fifo_grants_in_request_order_with_increasing_tokens() {
        let b = MemBackend::new(
            MemVariant::Fifo,
            1,
            Duration::from_secs(5),
            Duration::ZERO,
            1,
        );
        let mut a = b.connect(0).await.unwrap();
        let Acquired::Granted(g0) = a.acquire(key(0), Duration::from_secs(1)).await.unwrap() else {
            panic!("free lock not granted")
        };
        assert_eq!(g0.token, Some(1));
        let mut handles = Vec::new();
        for n in 1..4u32 {
            let mut c = b.connect(n).await.unwrap();
            handles.push(tokio::spawn(async move {
                let r = c.acquire(key(0), Duration::from_secs(2)).await.unwrap();
                (n, r, c)
            }));
            // Let each queue before the next one asks.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(a.release(key(0), g0).await.unwrap(), Released::Released);
        let mut order = Vec::new();
        for h in handles {
            let (n, r, mut c) = h.await.unwrap();
            let Acquired::Granted(g) = r else {
                panic!("timed out")
            };
            order.push((n, g.token));
            c.release(key(0), g).await.unwrap();
        }
        assert_eq!(order, vec![(1, Some(2)), (2, Some(3)), (3, Some(4))]);
    }

    #[tokio::test]
    async fn leases_expire_and_the_late_release_is_a_lost_lease() {
        let b = MemBackend::new(
            MemVariant::Fifo,
            1,
            Duration::from_millis(30),
            Duration::ZERO,
            1,
        );
        let mut a = b.connect(0).await.unwrap();
        let mut c = b.connect(1).await.unwrap();
        let Acquired::Granted(ga) = a.acquire(key(0), Duration::from_secs(1)).await.unwrap() else {
            panic!()
        };
        let t = Instant::now();
        let Acquired::Granted(gc) = c.acquire(key(0), Duration::from_secs(1)).await.unwrap() else {
            panic!("not granted after expiry")
        };
        assert!(t.elapsed() >= Duration::from_millis(20));
        assert!(gc.token > ga.token);
        assert_eq!(a.release(key(0), ga).await.unwrap(), Released::LeaseLost);
        assert_eq!(c.release(key(0), gc).await.unwrap(), Released::Released);
    }

    #[tokio::test]
    async fn timeout_leaves_the_queue() {
        let b = MemBackend::new(
            MemVariant::Fifo,
            1,
            Duration::from_secs(5),
            Duration::ZERO,
            1,
        );
        let mut a = b.connect(0).await.unwrap();
        let mut c = b.connect(1).await.unwrap();
        let Acquired::Granted(ga) = a.acquire(key(0), Duration::from_secs(1)).await.unwrap() else {
            panic!()
        };
        assert_eq!(
            c.acquire(key(0), Duration::from_millis(10)).await.unwrap(),
            Acquired::TimedOut
        );
        a.release(key(0), ga).await.unwrap();
        // Nobody is queued, so the lock is free rather than handed to the quitter.
        assert!(matches!(
            a.acquire(key(0), Duration::from_millis(10)).await.unwrap(),
            Acquired::Granted(_)
        ));
    }

    #[tokio::test]
    async fn dropped_acquire_does_not_strand_the_lock() {
        let b = MemBackend::new(
            MemVariant::Fifo,
            1,
            Duration::from_secs(5),
            Duration::ZERO,
            1,
        );
        let mut a = b.connect(0).await.unwrap();
        let mut c = b.connect(1).await.unwrap();
        let Acquired::Granted(ga) = a.acquire(key(0), Duration::from_secs(1)).await.unwrap() else {
            panic!()
        };
        let r = tokio::time::timeout(
            Duration::from_millis(10),
            c.acquire(key(0), Duration::from_secs(5)),
        )
        .await;
        assert!(r.is_err(), "should still be waiting");
        a.release(key(0), ga).await.unwrap();
        assert!(matches!(
            a.acquire(key(0), Duration::from_millis(10)).await.unwrap(),
            Acquired::Granted(_)
        ));
    }

    #[tokio::test]
    async fn rtt_delays_every_call() {
        let b = MemBackend::new(
            MemVariant::Fifo,
            1,
            Duration::from_secs(5),
            Duration::from_millis(4),
            1,
        );
        let mut a = b.connect(0).await.unwrap();
        let t = Instant::now();
        let Acquired::Granted(g) = a.acquire(key(0), Duration::from_secs(1)).await.unwrap() else {
            panic!()
        };
        assert!(t.elapsed() >= Duration::from_millis(4));
        a.release(key(0), g).await.unwrap();
        assert!(t.elapsed() >= Duration::from_millis(8));
    }
}
