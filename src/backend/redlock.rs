//! `redlock`: the Redlock algorithm over N independent Redis instances.
//!
//! As described at redis.io/docs/manual/patterns/distributed-locks: a random
//! value is `SET NX PX ttl` on every instance, each with a timeout small
//! relative to the TTL; the lock is held if a majority answered yes and time
//! is left — validity = ttl − elapsed − drift, drift = ttl·1% + 2 ms.
//! Otherwise it is released everywhere and retried after a random delay.
//! Release is compare-and-delete on every instance.
//!
//! The requests go out to all instances before any reply is read, so one
//! attempt costs about one round trip, not N. The random value is no fencing
//! token: it does not increase, so a resource cannot reject a stale holder.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use super::redis::{
    CONNECT_TIMEOUT, RECONNECT_BACKOFF, Sha, connect_loaded, delete_run_keys, jittered, unreachable,
};
use super::resp::{Conn, Endpoint, Frame, RespError};
use super::{Acquired, Backend, BackendError, Grant, Key, LockClient, Released, Route};

const HINT: &str = "scripts/backends up redlock";

/// Clock drift allowance for a lease of `ttl`: 1% plus 2 ms.
pub fn drift(ttl: Duration) -> Duration {
    ttl / 100 + Duration::from_millis(2)
}

/// Per-instance timeout: a twentieth of the TTL, within 5..=250 ms.
pub fn instance_timeout(ttl: Duration) -> Duration {
    (ttl / 20).clamp(Duration::from_millis(5), Duration::from_millis(250))
}

/// The `redlock` backend of one run.
pub struct RedlockBackend {
    eps: Arc<[Endpoint]>,
    route: Option<Route>,
    run_id: String,
    ttl: Duration,
    retry: Duration,
    seed: u64,
}

impl RedlockBackend {
    /// Set up a run over `urls`. Fails unless a majority of them answer.
    pub async fn open(
        urls: &[String],
        run_id: &str,
        ttl: Duration,
        retry: Duration,
        seed: u64,
    ) -> Result<Self, BackendError> {
        let eps = urls
            .iter()
            .map(|u| Endpoint::parse(u))
            .collect::<Result<Vec<_>, _>>()
            .map_err(BackendError::Op)?;
        if eps.is_empty() {
            return Err(BackendError::Op(
                "redlock needs at least one instance in `urls`".into(),
            ));
        }
        let mut answered = 0;
        let mut first_down = None;
        for ep in &eps {
            match Conn::connect(ep, CONNECT_TIMEOUT).await {
                Ok(_) => answered += 1,
                Err(e) => {
                    first_down.get_or_insert_with(|| unreachable(ep, &e, HINT));
                }
            }
        }
        if answered < eps.len() / 2 + 1 {
            return Err(first_down
                .unwrap_or_else(|| BackendError::Op("no redlock instance answers".into())));
        }
        Ok(RedlockBackend {
            eps: eps.into(),
            route: None,
            run_id: run_id.to_string(),
            ttl,
            retry,
            seed,
        })
    }
}

impl Backend for RedlockBackend {
    type Client = RedlockClient;

    async fn connect(&self, node: u32) -> Result<RedlockClient, BackendError> {
        let now = Instant::now();
        let eps = match &self.route {
            Some(r) => self
                .eps
                .iter()
                .map(|e| match r(node, &e.addr) {
                    Some(addr) => e.via(addr),
                    None => e.clone(),
                })
                .collect(),
            None => Arc::clone(&self.eps),
        };
        let mut c = RedlockClient {
            eps,
            insts: self
                .eps
                .iter()
                .map(|_| Instance {
                    conn: None,
                    release_sha: [0; 40],
                    next_reconnect: now,
                    sent: false,
                })
                .collect(),
            ttl: self.ttl,
            ttl_ms: self.ttl.as_millis().max(1) as u64,
            inst_timeout: instance_timeout(self.ttl),
            retry: self.retry,
            rng: SmallRng::seed_from_u64(self.seed ^ (u64::from(node) << 24) ^ 0x7265_646c_6f63),
        };
        // Each node its own connection to every instance. A minority may be
        // down: Redlock is meant to survive that.
        let mut up = 0;
        for i in 0..c.insts.len() {
            if c.connect_instance(i).await.is_ok() {
                up += 1;
            }
        }
        if up < c.quorum() {
            return Err(BackendError::Op(format!(
                "redlock: node {node} reached only {up} of {} instances (a majority of {} is needed); start them with `{HINT}`",
                c.insts.len(),
                c.quorum()
            )));
        }
        Ok(c)
    }

    async fn cleanup(&self) -> Result<(), BackendError> {
        let mut failed = Vec::new();
        for ep in self.eps.iter() {
            if let Err(e) = delete_run_keys(ep, &self.run_id).await {
                failed.push(format!("{}: {e}", ep.shown));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(BackendError::Op(format!(
                "cleanup failed on {}",
                failed.join("; ")
            )))
        }
    }

    fn endpoints(&self) -> Vec<String> {
        self.eps.iter().map(|e| e.shown.clone()).collect()
    }

    fn upstreams(&self) -> Vec<String> {
        self.eps.iter().map(|e| e.addr.clone()).collect()
    }

    fn set_route(&mut self, route: Route) {
        self.route = Some(route);
    }
}

impl std::fmt::Debug for RedlockBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedlockBackend")
            .field("eps", &self.eps)
            .field("routed", &self.route.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Instance {
    conn: Option<Conn>,
    release_sha: Sha,
    next_reconnect: Instant,
    /// A request went out in this round and its reply is still to be read.
    sent: bool,
}

/// One node's connections to every Redlock instance.
#[derive(Debug)]
pub struct RedlockClient {
    eps: Arc<[Endpoint]>,
    insts: Vec<Instance>,
    ttl: Duration,
    ttl_ms: u64,
    inst_timeout: Duration,
    retry: Duration,
    rng: SmallRng,
}

#[derive(Clone, Copy)]
enum Op {
    Set(u64),
    Release(u64),
}

impl RedlockClient {
    fn quorum(&self) -> usize {
        self.insts.len() / 2 + 1
    }

    async fn connect_instance(&mut self, i: usize) -> Result<(), RespError> {
        let ep = &self.eps[i];
        let inst = &mut self.insts[i];
        inst.conn = None;
        // Bounded as a whole: a silent instance (a partition, a hung server)
        // must not stall the rounds on the other instances.
        let limit = CONNECT_TIMEOUT.min(self.inst_timeout * 4);
        let r = connect_loaded(ep, limit)
            .await
            .map(|(conn, (_, release))| (conn, release));
        match r {
            Ok((conn, sha)) => {
                inst.conn = Some(conn);
                inst.release_sha = sha;
                Ok(())
            }
            Err(e) => {
                inst.next_reconnect = Instant::now() + RECONNECT_BACKOFF;
                Err(e)
            }
        }
    }

    /// Send `op` for `key` to every instance (reconnecting those due), then
    /// read the replies until the per-instance deadline. Returns (yes,
    /// answered): how many said yes, how many answered at all.
    async fn round(&mut self, key: &str, op: Op) -> (usize, usize) {
        let deadline = Instant::now() + self.inst_timeout;
        for i in 0..self.insts.len() {
            self.insts[i].sent = false;
            if self.insts[i].conn.is_none() && Instant::now() >= self.insts[i].next_reconnect {
                let _ = self.connect_instance(i).await;
            }
            let ttl_ms = self.ttl_ms;
            let inst = &mut self.insts[i];
            let Some(conn) = inst.conn.as_mut() else {
                continue;
            };
            match op {
                Op::Set(value) => conn
                    .begin(6)
                    .arg(b"SET")
                    .arg(key.as_bytes())
                    .arg_u64(value)
                    .arg(b"NX")
                    .arg(b"PX")
                    .arg_u64(ttl_ms),
                Op::Release(value) => conn
                    .begin(5)
                    .arg(b"EVALSHA")
                    .arg(&inst.release_sha)
                    .arg(b"1")
                    .arg(key.as_bytes())
                    .arg_u64(value),
            };
            match tokio::time::timeout_at(deadline.into(), conn.send()).await {
                Ok(Ok(())) => inst.sent = true,
                _ => inst.conn = None,
            }
        }
        let (mut yes, mut answered) = (0, 0);
        for inst in &mut self.insts {
            if !inst.sent {
                continue;
            }
            inst.sent = false;
            let Some(conn) = inst.conn.as_mut() else {
                continue;
            };
            // A reply that misses the deadline leaves the connection with a
            // pending reply: drop it, reconnect next round.
            match tokio::time::timeout_at(deadline.into(), conn.frame()).await {
                Ok(Ok(f)) => {
                    answered += 1;
                    let ok = match (op, f) {
                        (Op::Set(_), Frame::Simple(_)) => true,
                        (Op::Release(_), Frame::Int(1)) => true,
                        (_, Frame::Error(_)) => {
                            answered -= 1;
                            false
                        }
                        _ => false,
                    };
                    yes += usize::from(ok);
                }
                _ => inst.conn = None,
            }
        }
        (yes, answered)
    }
}

impl LockClient for RedlockClient {
    async fn acquire(&mut self, key: Key<'_>, timeout: Duration) -> Result<Acquired, BackendError> {
        let deadline = Instant::now() + timeout;
        let n = self.insts.len();
        let quorum = self.quorum();
        loop {
            let value = self.rng.random::<u64>() | 1;
            let start = Instant::now();
            let (yes, answered) = self.round(key.name, Op::Set(value)).await;
            let elapsed = start.elapsed();
            let validity = self.ttl.saturating_sub(elapsed + drift(self.ttl));
            if yes >= quorum && !validity.is_zero() {
                return Ok(Acquired::Granted(Grant {
                    token: None,
                    handle: value,
                }));
            }
            if yes > 0 {
                // Undo the partial acquisition so others need not wait for the TTL.
                self.round(key.name, Op::Release(value)).await;
            }
            if answered < quorum {
                return Err(BackendError::Op(format!(
                    "redlock: only {answered} of {n} instances answered within {}ms (a majority of {quorum} is needed)",
                    self.inst_timeout.as_millis()
                )));
            }
            let pause = jittered(&mut self.rng, self.retry);
            if Instant::now() + pause >= deadline {
                return Ok(Acquired::TimedOut);
            }
            crate::pace::sleep(pause).await;
        }
    }

    async fn release(&mut self, key: Key<'_>, grant: Grant) -> Result<Released, BackendError> {
        let (yes, answered) = self.round(key.name, Op::Release(grant.handle)).await;
        if yes >= self.quorum() {
            Ok(Released::Released)
        } else if answered >= self.quorum() {
            Ok(Released::LeaseLost)
        } else {
            Err(BackendError::Op(format!(
                "redlock: release answered by only {answered} of {} instances",
                self.insts.len()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_and_instance_timeout_follow_the_ttl() {
        assert_eq!(drift(Duration::from_secs(10)), Duration::from_millis(102));
        assert_eq!(
            instance_timeout(Duration::from_secs(10)),
            Duration::from_millis(250)
        );
        assert_eq!(
            instance_timeout(Duration::from_secs(1)),
            Duration::from_millis(50)
        );
        assert_eq!(
            instance_timeout(Duration::from_millis(20)),
            Duration::from_millis(5)
        );
    }
}
