//! `redis`: locks on one Redis server, the right way and two classic wrong ways.
//!
//! Every key lockstorm creates is `lockstorm:<run-id>:<key>` (the lock) or
//! `lockstorm:<run-id>:<key>:token` (its fencing counter), and `cleanup`
//! deletes exactly those, found with `SCAN MATCH lockstorm:<run-id>:*`.
//!
//! Variants:
//! - `set-nx`: one script does `SET key value NX PX ttl` and, when it set the
//!   key, `INCR key:token` — so the grant and its fencing token are atomic.
//!   The value is a random 64-bit number per grant; release is the usual Lua
//!   compare-and-delete. Failed tries retry after a jittered `retry`.
//! - `naive-del` (unsafe): the same acquire, released by plain `DEL`. A holder
//!   whose lease expired deletes whoever holds the lock now.
//! - `get-set` (unsafe): `GET`, then `SET` if it was empty — two round trips,
//!   and two nodes that both saw it empty both believe they hold it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use super::resp::{Conn, Endpoint, Frame, RespError, Value};
use super::{Acquired, Backend, BackendError, Grant, Key, LockClient, Released, Route};

/// `SET NX PX` and, when it set the key, the next fencing token.
/// KEYS: lock, token counter. ARGV: value, ttl in ms. Returns the token or 0.
pub const ACQUIRE_SCRIPT: &str = "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then \
     return redis.call('INCR', KEYS[2]) end return 0";

/// Compare-and-delete. KEYS: lock. ARGV: value. Returns 1 if it deleted.
pub const RELEASE_SCRIPT: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

/// How long connecting to one Redis may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// After a failed reconnect, wait this long before trying that server again.
pub const RECONNECT_BACKOFF: Duration = Duration::from_millis(250);

/// Which `redis` behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisVariant {
    /// SET NX PX + INCR token in one script; compare-and-delete release.
    SetNx,
    /// Release by plain DEL.
    NaiveDel,
    /// GET, then SET if empty.
    GetSet,
}

impl RedisVariant {
    /// From the catalog name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "set-nx" => Some(Self::SetNx),
            "naive-del" => Some(Self::NaiveDel),
            "get-set" => Some(Self::GetSet),
            _ => None,
        }
    }
}

/// SHA1 of a loaded script, as the 40 hex digits EVALSHA takes.
pub type Sha = [u8; 40];

/// The error for a server that does not answer.
pub fn unreachable(ep: &Endpoint, e: &RespError, hint: &str) -> BackendError {
    BackendError::Unreachable {
        endpoint: ep.shown.clone(),
        reason: e.to_string(),
        hint: Some(hint.to_string()),
    }
}

/// Load both scripts on `conn`; their SHAs.
pub async fn load_scripts(conn: &mut Conn) -> Result<(Sha, Sha), RespError> {
    let mut shas = [[0u8; 40]; 2];
    for (i, script) in [ACQUIRE_SCRIPT, RELEASE_SCRIPT].into_iter().enumerate() {
        conn.begin(3)
            .arg(b"SCRIPT")
            .arg(b"LOAD")
            .arg(script.as_bytes());
        match conn.call().await? {
            Frame::Bulk(r) if r.len() == 40 => shas[i].copy_from_slice(conn.bytes(&r)),
            f => return Err(conn.unexpected(f)),
        }
    }
    Ok((shas[0], shas[1]))
}

/// Delete every key under `lockstorm:<run_id>:` on one server; how many.
pub async fn delete_run_keys(ep: &Endpoint, run_id: &str) -> Result<u64, RespError> {
    let mut conn = Conn::connect(ep, CONNECT_TIMEOUT).await?;
    let pattern = format!("lockstorm:{run_id}:*");
    let mut cursor = b"0".to_vec();
    let mut deleted = 0u64;
    loop {
        conn.begin(6)
            .arg(b"SCAN")
            .arg(&cursor)
            .arg(b"MATCH")
            .arg(pattern.as_bytes())
            .arg(b"COUNT")
            .arg(b"1000");
        conn.send().await?;
        let Value::Array(mut parts) = conn.value().await? else {
            return Err(RespError::Protocol("SCAN did not return an array"));
        };
        let (Some(Value::Array(keys)), Some(Value::Bulk(next))) = (parts.pop(), parts.pop()) else {
            return Err(RespError::Protocol("SCAN reply has an unexpected shape"));
        };
        let keys: Vec<Vec<u8>> = keys
            .into_iter()
            .filter_map(|k| match k {
                Value::Bulk(b) if b.starts_with(pattern.trim_end_matches('*').as_bytes()) => {
                    Some(b)
                }
                _ => None,
            })
            .collect();
        if !keys.is_empty() {
            conn.begin(1 + keys.len()).arg(b"DEL");
            for k in &keys {
                conn.arg(k);
            }
            deleted += u64::try_from(conn.int().await?).unwrap_or(0);
        }
        if next == b"0" {
            return Ok(deleted);
        }
        cursor = next;
    }
}

/// Jittered pause between failed tries: uniform in [retry/2, retry*3/2].
pub fn jittered(rng: &mut SmallRng, retry: Duration) -> Duration {
    let us = retry.as_micros() as u64;
    if us == 0 {
        return Duration::ZERO;
    }
    Duration::from_micros(rng.random_range(us / 2..=us + us / 2))
}

/// Connect to `ep` and load the lock scripts, bounded by `limit` as a
/// whole: a server (or a partition) that accepts the connection and then
/// answers nothing must not hang the caller.
pub async fn connect_loaded(
    ep: &Endpoint,
    limit: Duration,
) -> Result<(Conn, (Sha, Sha)), RespError> {
    tokio::time::timeout(limit, async {
        let mut conn = Conn::connect(ep, limit).await?;
        let shas = load_scripts(&mut conn).await?;
        Ok((conn, shas))
    })
    .await
    .unwrap_or_else(|_| {
        Err(RespError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connected, but no answer to SCRIPT LOAD",
        )))
    })
}

/// The `redis` backend of one run.
pub struct RedisBackend {
    ep: Arc<Endpoint>,
    route: Option<Route>,
    variant: RedisVariant,
    run_id: String,
    ttl: Duration,
    retry: Duration,
    seed: u64,
}

impl RedisBackend {
    /// Check that `url` answers (within the connect timeout) and set up a run.
    pub async fn open(
        url: &str,
        variant: RedisVariant,
        run_id: &str,
        ttl: Duration,
        retry: Duration,
        seed: u64,
    ) -> Result<Self, BackendError> {
        let ep = Endpoint::parse(url).map_err(BackendError::Op)?;
        let mut conn = Conn::connect(&ep, CONNECT_TIMEOUT)
            .await
            .map_err(|e| unreachable(&ep, &e, "scripts/backends up redis"))?;
        load_scripts(&mut conn).await.map_err(|e| {
            BackendError::Op(format!("{}: cannot load the lock scripts: {e}", ep.shown))
        })?;
        Ok(RedisBackend {
            ep: Arc::new(ep),
            route: None,
            variant,
            run_id: run_id.to_string(),
            ttl,
            retry,
            seed,
        })
    }
}

impl Backend for RedisBackend {
    type Client = RedisClient;

    async fn connect(&self, node: u32) -> Result<RedisClient, BackendError> {
        let ep = match self.route.as_ref().and_then(|r| r(node, &self.ep.addr)) {
            Some(addr) => Arc::new(self.ep.via(addr)),
            None => Arc::clone(&self.ep),
        };
        let mut c = RedisClient {
            ep,
            variant: self.variant,
            conn: None,
            in_flight: false,
            next_reconnect: Instant::now(),
            acquire_sha: [0; 40],
            release_sha: [0; 40],
            ttl_ms: self.ttl.as_millis().max(1) as u64,
            retry: self.retry,
            rng: SmallRng::seed_from_u64(self.seed ^ (u64::from(node) << 24) ^ 0x7265_6469_7300),
        };
        c.reconnect()
            .await
            .map_err(|e| unreachable(&self.ep, &e, "scripts/backends up redis"))?;
        Ok(c)
    }

    async fn cleanup(&self) -> Result<(), BackendError> {
        delete_run_keys(&self.ep, &self.run_id)
            .await
            .map(|_| ())
            .map_err(|e| BackendError::Op(format!("{}: cleanup failed: {e}", self.ep.shown)))
    }

    fn endpoints(&self) -> Vec<String> {
        vec![self.ep.shown.clone()]
    }

    fn upstreams(&self) -> Vec<String> {
        vec![self.ep.addr.clone()]
    }

    fn set_route(&mut self, route: Route) {
        self.route = Some(route);
    }
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("ep", &self.ep)
            .field("variant", &self.variant)
            .field("routed", &self.route.is_some())
            .finish_non_exhaustive()
    }
}

/// One node's connection to Redis.
#[derive(Debug)]
pub struct RedisClient {
    ep: Arc<Endpoint>,
    variant: RedisVariant,
    conn: Option<Conn>,
    /// A call was started and not finished (its future was dropped): the
    /// connection has a reply pending and must be replaced.
    in_flight: bool,
    next_reconnect: Instant,
    acquire_sha: Sha,
    release_sha: Sha,
    ttl_ms: u64,
    retry: Duration,
    rng: SmallRng,
}

enum Try {
    Granted(Grant),
    Busy,
}

impl RedisClient {
    async fn reconnect(&mut self) -> Result<(), RespError> {
        self.conn = None;
        self.in_flight = false;
        let (conn, (a, r)) = connect_loaded(&self.ep, CONNECT_TIMEOUT).await?;
        self.acquire_sha = a;
        self.release_sha = r;
        self.conn = Some(conn);
        Ok(())
    }

    /// A usable connection, reconnecting if the last one broke.
    async fn ready(&mut self) -> Result<(), BackendError> {
        if self.in_flight {
            self.conn = None;
            self.in_flight = false;
        }
        if self.conn.is_some() {
            return Ok(());
        }
        let now = Instant::now();
        if now < self.next_reconnect {
            return Err(self.down("not connected (reconnecting)"));
        }
        if let Err(e) = self.reconnect().await {
            self.next_reconnect = Instant::now() + RECONNECT_BACKOFF;
            return Err(self.down(&e.to_string()));
        }
        Ok(())
    }

    fn down(&self, why: &str) -> BackendError {
        BackendError::Op(format!("redis {}: {why}", self.ep.shown))
    }

    fn failed(&mut self, e: RespError) -> BackendError {
        if matches!(e, RespError::Io(_) | RespError::Protocol(_)) {
            self.conn = None;
        }
        self.in_flight = false;
        self.down(&e.to_string())
    }

    async fn try_once(&mut self, key: &str) -> Result<Try, BackendError> {
        self.ready().await?;
        let value = self.rng.random::<u64>() | 1;
        let (variant, ttl_ms, acquire_sha) = (self.variant, self.ttl_ms, self.acquire_sha);
        let Some(conn) = self.conn.as_mut() else {
            return Err(self.down("not connected"));
        };
        self.in_flight = true;
        let r = match variant {
            RedisVariant::SetNx | RedisVariant::NaiveDel => {
                conn.begin(7)
                    .arg(b"EVALSHA")
                    .arg(&acquire_sha)
                    .arg(b"2")
                    .arg(key.as_bytes())
                    .arg_parts(key.as_bytes(), b":token")
                    .arg_u64(value)
                    .arg_u64(ttl_ms);
                match conn.int().await {
                    Ok(0) => Ok(Try::Busy),
                    Ok(t) => Ok(Try::Granted(Grant {
                        token: u64::try_from(t).ok(),
                        handle: value,
                    })),
                    Err(e) => Err(e),
                }
            }
            RedisVariant::GetSet => {
                conn.begin(2).arg(b"GET").arg(key.as_bytes());
                match conn.call().await {
                    Ok(Frame::Nil) => {
                        // The race: between this GET and the SET below,
                        // another node may GET an empty key too.
                        conn.begin(5)
                            .arg(b"SET")
                            .arg(key.as_bytes())
                            .arg_u64(value)
                            .arg(b"PX")
                            .arg_u64(ttl_ms);
                        conn.simple_ok().await.map(|()| {
                            Try::Granted(Grant {
                                token: None,
                                handle: value,
                            })
                        })
                    }
                    Ok(Frame::Bulk(_)) => Ok(Try::Busy),
                    Ok(f) => Err(conn.unexpected(f)),
                    Err(e) => Err(e),
                }
            }
        };
        self.in_flight = false;
        r.map_err(|e| self.failed(e))
    }
}

impl LockClient for RedisClient {
    async fn acquire(&mut self, key: Key<'_>, timeout: Duration) -> Result<Acquired, BackendError> {
        let deadline = Instant::now() + timeout;
        loop {
            let attempt = tokio::time::timeout_at(deadline.into(), self.try_once(key.name)).await;
            match attempt {
                Err(_) => return Ok(Acquired::TimedOut),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(Try::Granted(g))) => return Ok(Acquired::Granted(g)),
                Ok(Ok(Try::Busy)) => {}
            }
            let pause = jittered(&mut self.rng, self.retry);
            if Instant::now() + pause >= deadline {
                return Ok(Acquired::TimedOut);
            }
            crate::pace::sleep(pause).await;
        }
    }

    async fn release(&mut self, key: Key<'_>, grant: Grant) -> Result<Released, BackendError> {
        self.ready().await?;
        let (variant, release_sha) = (self.variant, self.release_sha);
        let Some(conn) = self.conn.as_mut() else {
            return Err(self.down("not connected"));
        };
        self.in_flight = true;
        match variant {
            // The mistake: whoever holds the key now loses it.
            RedisVariant::NaiveDel => conn.begin(2).arg(b"DEL").arg(key.name.as_bytes()),
            RedisVariant::SetNx | RedisVariant::GetSet => conn
                .begin(5)
                .arg(b"EVALSHA")
                .arg(&release_sha)
                .arg(b"1")
                .arg(key.name.as_bytes())
                .arg_u64(grant.handle),
        };
        let r = conn.int().await;
        self.in_flight = false;
        match r {
            Ok(1) => Ok(Released::Released),
            Ok(_) => Ok(Released::LeaseLost),
            Err(e) => Err(self.failed(e)),
        }
    }
}
