//! One virtual node: its own client, its own RNG, its own recorder.
//!
//! A cycle is acquire → (oracle entry) → hold → (oracle exit) → release →
//! think. Everything it records goes into its own [`NodeRecorder`]; it sends
//! no message and takes no lock another node takes (the oracle's per-key
//! state models the guarded storage, touched by the holder only).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Exp, Zipf};
use tokio_util::sync::CancellationToken;

use super::EngineConfig;
use crate::backend::{Acquired, Key, LockClient, Released};
use crate::clock::Clock;
use crate::faults::{PauseCell, frozen};
use crate::metrics::{HoldSpan, NodeRecorder, NodeState, NodeStats};
use crate::oracle::Oracle;
use crate::pace;
use crate::scenario::KeyPick;

/// What every node shares, read-only.
#[derive(Debug)]
pub(crate) struct NodeCtx {
    pub clock: Clock,
    pub oracle: Arc<Oracle>,
    pub keys: Arc<[String]>,
    pub cfg: Arc<EngineConfig>,
    pub stop: CancellationToken,
    /// Per-node pause cells, when the scenario pauses nodes.
    pub pauses: Option<Arc<[PauseCell]>>,
    pub load: super::LoadControl,
}

/// Picks the key of each cycle.
enum Picker {
    Uniform(u32),
    Zipf(Zipf<f64>),
    RoundRobin { keys: u32, next: u32 },
}

impl Picker {
    fn new(pick: KeyPick, keys: u32, node: u32) -> Self {
        match pick {
            KeyPick::Uniform => Picker::Uniform(keys),
            KeyPick::Zipf(s) => match Zipf::new(f64::from(keys), s) {
                Ok(z) => Picker::Zipf(z),
                // Validation rejects s <= 0; fall back rather than panic.
                Err(_) => Picker::Uniform(keys),
            },
            KeyPick::RoundRobin => Picker::RoundRobin {
                keys,
                next: node % keys,
            },
        }
    }

    fn pick(&mut self, rng: &mut SmallRng) -> u32 {
        match self {
            Picker::Uniform(1) => 0,
            Picker::Uniform(n) => rng.random_range(0..*n),
            Picker::Zipf(z) => (z.sample(rng) as u32).saturating_sub(1),
            Picker::RoundRobin { keys, next } => {
                let k = *next;
                *next = (*next + 1) % *keys;
                k
            }
        }
    }
}

/// Run node `id` until the stop token fires.
pub(crate) async fn run_node<C: LockClient>(
    id: u32,
    mut client: C,
    rec: Arc<NodeRecorder>,
    ctx: Arc<NodeCtx>,
) {
    let cfg = &*ctx.cfg;
    let mut rng = SmallRng::seed_from_u64(
        cfg.seed ^ 0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(u64::from(id) + 1),
    );
    let mut picker = Picker::new(cfg.key_pick, cfg.keys, id);
    // Open loop: each node is a Poisson process of rate R/N; together they
    // are a Poisson process of rate R.
    let arrivals = cfg
        .rate
        .and_then(|r| Exp::new(r / f64::from(cfg.nodes.max(1))).ok());
    let mut next_start = Instant::now();
    if let Some(exp) = &arrivals {
        next_start += Duration::from_secs_f64(exp.sample(&mut rng));
    }
    let stop = &ctx.stop;
    let clock = &ctx.clock;
    // Every await below goes through `frozen`: while a pause fault holds this
    // node, nothing it was doing makes progress.
    let pause = ctx.pauses.as_deref().and_then(|p| p.get(id as usize));
    rec.set_state(NodeState::Idle);
    while !stop.is_cancelled() {
        // Paused, or removed with `-` (the dashboard): two atomic loads.
        if ctx.load.blocks(id) && ctx.load.wait(id, stop).await {
            break;
        }
        let intended = match &arrivals {
            Some(exp) => {
                let t = next_start;
                next_start += Duration::from_secs_f64(exp.sample(&mut rng));
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => break,
                    _ = frozen(pause, clock, pace::sleep_until(t)) => {}
                }
                t
            }
            None => Instant::now(),
        };
        let key = picker.pick(&mut rng);
        let k = Key {
            index: key,
            name: &ctx.keys[key as usize],
        };
        rec.set_state(NodeState::Waiting);
        let req_us = ctx.clock.now_us();
        ctx.oracle.waiting(key, id, req_us);
        let res = tokio::select! {
            biased;
            _ = stop.cancelled() => {
                ctx.oracle.gave_up(key, id, req_us);
                break;
            }
            r = frozen(pause, clock, client.acquire(k, cfg.acquire_timeout)) => r,
        };
        let answered = Instant::now();
        let wait_us = u64::try_from(answered.saturating_duration_since(intended).as_micros())
            .unwrap_or(u64::MAX);
        match res {
            Ok(Acquired::Granted(grant)) => {
                let grant_us = ctx.clock.us_of(answered);
                let entry = ctx.oracle.enter(key, id, grant.token, req_us, grant_us);
                rec.set_last_grant(grant_us);
                if let Some(p) = pause {
                    p.on_grant(grant_us);
                }
                rec.set_state(NodeState::Holding);
                let hold = cfg.hold.sample(&mut rng);
                if !hold.is_zero() {
                    tokio::select! {
                        biased;
                        _ = stop.cancelled() => {}
                        _ = frozen(pause, clock, pace::sleep(hold)) => {}
                    }
                }
                // A pause that began during the hold ends before the write:
                // the stale holder writes after its lease may have expired.
                if let Some(p) = pause {
                    tokio::select! {
                        biased;
                        _ = stop.cancelled() => {}
                        _ = p.wait_out(clock) => {}
                    }
                }
                let exit_us = ctx.clock.now_us();
                let exit = ctx.oracle.exit(key, id, grant.token, entry.read, exit_us);
                let t0 = Instant::now();
                // Bounded even if the server hangs; always attempted, so
                // nothing is left locked when the run stops.
                let released = tokio::time::timeout(
                    cfg.acquire_timeout,
                    frozen(pause, clock, client.release(k, grant)),
                )
                .await;
                let release_us = t0.elapsed().as_micros() as u64;
                rec.with(|s| {
                    s.attempts += 1;
                    s.acquired += 1;
                    s.max_wait_us = s.max_wait_us.max(wait_us);
                    NodeStats::push(&mut s.acquire_us, wait_us);
                    if let Some(h) = entry.handoff_us {
                        NodeStats::push(&mut s.handoff_us, h);
                    }
                    s.violations += u64::from(entry.violations);
                    s.fenced_violations += u64::from(entry.fenced);
                    s.fifo_inversions += u64::from(entry.fifo_inversion);
                    s.stale_rejected += u64::from(exit.stale_rejected);
                    s.spans.push(HoldSpan {
                        wait_start_us: req_us,
                        grant_us,
                        end_us: exit_us,
                        key,
                        granted: true,
                        overlapped: entry.violations > 0,
                    });
                    match released {
                        Ok(Ok(Released::Released)) => {
                            s.released += 1;
                            NodeStats::push(&mut s.release_us, release_us);
                        }
                        Ok(Ok(Released::LeaseLost)) => {
                            s.lost_leases += 1;
                            NodeStats::push(&mut s.release_us, release_us);
                        }
                        Ok(Err(e)) => note_error(s, &e.to_string()),
                        Err(_) => note_error(s, "release timed out"),
                    }
                });
            }
            Ok(Acquired::TimedOut) => {
                ctx.oracle.gave_up(key, id, req_us);
                rec.with(|s| {
                    s.attempts += 1;
                    s.timeouts += 1;
                    s.max_wait_us = s.max_wait_us.max(wait_us);
                    let end_us = ctx.clock.us_of(answered);
                    s.spans.push(HoldSpan {
                        wait_start_us: req_us,
                        grant_us: end_us,
                        end_us,
                        key,
                        granted: false,
                        overlapped: false,
                    });
                });
            }
            Err(e) => {
                ctx.oracle.gave_up(key, id, req_us);
                rec.with(|s| {
                    s.attempts += 1;
                    note_error(s, &e.to_string());
                });
                rec.set_state(NodeState::Idle);
                // Back off before trying a failing backend again.
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => break,
                    _ = frozen(pause, clock, tokio::time::sleep(cfg.error_backoff)) => {}
                }
                continue;
            }
        }
        rec.set_state(NodeState::Idle);
        if arrivals.is_none() {
            let think = cfg.think.sample(&mut rng);
            if !think.is_zero() {
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => break,
                    _ = frozen(pause, clock, pace::sleep(think)) => {}
                }
            }
        }
    }
    rec.set_state(NodeState::Stopped);
}

fn note_error(s: &mut NodeStats, msg: &str) {
    s.errors += 1;
    if s.last_error.as_deref() != Some(msg) {
        s.last_error = Some(msg.to_string());
    }
}

/// Record an error for node `rec` outside a cycle (e.g. a failed connect).
pub(crate) fn record_error(rec: &NodeRecorder, msg: &str) {
    rec.with(|s| note_error(s, msg));
    rec.set_state(NodeState::Stopped);
}
