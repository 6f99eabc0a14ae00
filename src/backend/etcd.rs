//! `etcd`: locks on etcd v3, through its gRPC JSON gateway (`/v3/...` over
//! HTTP/1.1), so that building lockstorm needs no `protoc`.
//!
//! Every node owns a lease of `ttl` (granted at connect, kept alive by a
//! task of its own every ttl/3 — skipped while the node is paused, as a
//! frozen process would) and every lock it takes is attached to that lease.
//! All keys live under `lockstorm:<run-id>:`; `cleanup` deletes that prefix
//! and revokes every lease the run granted.
//!
//! Variants:
//! - `lock-api`: the Lock RPC (etcd's `concurrency.Mutex` on the server: a
//!   key `<name>/<lease>` per waiter, granted in creation-revision order, so
//!   it is fair). It has no try-lock, so the request is bounded by the acquire
//!   timeout; on timeout its connection is closed and the node's lease is
//!   revoked and replaced, so a grant that lands after the timeout cannot
//!   leave the lock held. Release deletes the lock key (what the Unlock RPC
//!   does) through DeleteRange, whose answer says whether the key was still
//!   there — a lost lease otherwise. Token: the revision of the Lock
//!   response header (the lock key's creation revision when uncontended,
//!   otherwise the revision at which the predecessor's deletion was seen);
//!   it increases from one holder to the next.
//! - `txn`: one transaction creates the key with the lease if its
//!   create_revision is 0; a loser watches the key from the next revision
//!   until it is deleted, then tries again (not fair: whoever retries first
//!   wins). Token: the revision of the creating transaction. Release is a
//!   transaction that deletes the key only if it is still attached to our
//!   lease.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::http::{HttpConn, HttpError};
use super::{
    Acquired, Backend, BackendError, Grant, Key, LockClient, PauseSignal, Released, Route,
};

const HINT: &str = "scripts/backends up etcd";
/// How long connecting to etcd may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one bookkeeping request (grant, revoke, delete) may take.
const OP_TIMEOUT: Duration = Duration::from_secs(3);

/// Which `etcd` lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtcdVariant {
    /// Lease + Lock RPC.
    LockApi,
    /// Create-if-absent transaction + watch.
    Txn,
}

impl EtcdVariant {
    /// From the catalog name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "lock-api" => Some(Self::LockApi),
            "txn" => Some(Self::Txn),
            _ => None,
        }
    }
}

/// Counters shared by all nodes of a run.
#[derive(Debug, Default)]
pub struct EtcdCounters {
    /// Leases granted (one per node, plus replacements).
    pub leases_granted: AtomicU64,
    /// Keepalives sent.
    pub keepalives: AtomicU64,
    /// Keepalives skipped because the node was paused.
    pub keepalives_skipped_paused: AtomicU64,
    /// Lock requests abandoned at the acquire timeout (lease revoked).
    pub abandoned: AtomicU64,
    /// Watches opened by `txn` waiters.
    pub watches: AtomicU64,
}

/// `http://host:port` → (`host:port`, shown form).
fn parse_url(url: &str) -> Result<String, BackendError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        BackendError::Op(format!(
            "etcd endpoint `{url}` must be http://host:port (the gRPC JSON gateway; TLS is not supported)"
        ))
    })?;
    let addr = rest.trim_end_matches('/');
    if addr.is_empty() || addr.contains('/') || !addr.contains(':') {
        return Err(BackendError::Op(format!(
            "etcd endpoint `{url}` is not http://host:port (e.g. http://127.0.0.1:2379)"
        )));
    }
    Ok(addr.to_string())
}

fn b64(s: &[u8]) -> String {
    B64.encode(s)
}

/// etcd's int64 fields arrive as JSON strings.
fn num(s: Option<&str>) -> i64 {
    s.and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[derive(Deserialize, Default)]
struct Header<'a> {
    #[serde(borrow, default)]
    revision: Option<&'a str>,
}

#[derive(Deserialize)]
struct LeaseGrant<'a> {
    #[serde(borrow, rename = "ID")]
    id: Option<&'a str>,
    #[serde(borrow, rename = "TTL")]
    ttl: Option<&'a str>,
}

#[derive(Deserialize)]
struct KeepAlive<'a> {
    #[serde(borrow)]
    result: Option<LeaseGrant<'a>>,
}

#[derive(Deserialize)]
struct LockResp<'a> {
    #[serde(borrow, default)]
    header: Header<'a>,
    #[serde(borrow)]
    key: Option<&'a str>,
}

#[derive(Deserialize)]
struct TxnResp<'a> {
    #[serde(borrow, default)]
    header: Header<'a>,
    #[serde(default)]
    succeeded: bool,
    #[serde(borrow, default)]
    responses: Vec<TxnOp<'a>>,
}

#[derive(Deserialize)]
struct TxnOp<'a> {
    #[serde(borrow)]
    response_range: Option<RangeResp<'a>>,
}

#[derive(Deserialize)]
struct RangeResp<'a> {
    #[serde(borrow, default)]
    kvs: Vec<Kv<'a>>,
}

#[derive(Deserialize)]
struct Kv<'a> {
    #[serde(borrow)]
    #[allow(dead_code)] // reason: present to show the shape; only its presence matters
    mod_revision: Option<&'a str>,
}

#[derive(Deserialize)]
struct DeleteResp<'a> {
    #[serde(borrow)]
    deleted: Option<&'a str>,
}

#[derive(Deserialize)]
struct WatchMsg<'a> {
    #[serde(borrow)]
    result: Option<WatchResult<'a>>,
}

#[derive(Deserialize)]
struct WatchResult<'a> {
    #[serde(borrow, default)]
    events: Vec<WatchEvent<'a>>,
    #[serde(default)]
    canceled: bool,
}

#[derive(Deserialize)]
struct WatchEvent<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<&'a str>,
}

#[derive(Deserialize)]
struct ErrResp {
    #[serde(default)]
    message: String,
}

/// A failed etcd exchange.
#[derive(Debug, thiserror::Error)]
enum EtcdError {
    #[error("{0}")]
    Http(#[from] HttpError),
    #[error("etcd said: {0}")]
    Server(String),
    #[error("unexpected answer: {0}")]
    Json(#[from] serde_json::Error),
    #[error("timed out")]
    Timeout,
}

impl EtcdError {
    /// Whether the connection is unusable afterwards.
    fn breaks_conn(&self) -> bool {
        !matches!(self, EtcdError::Server(_))
    }
}

/// `POST path` on `conn`; the body on 200, the server's message otherwise.
async fn call(conn: &mut HttpConn, path: &str, json: &[u8]) -> Result<(), EtcdError> {
    let status = conn.post(path, json).await?;
    if status == 200 {
        return Ok(());
    }
    let msg = serde_json::from_slice::<ErrResp>(&conn.body)
        .map(|e| e.message)
        .unwrap_or_else(|_| format!("HTTP {status}"));
    Err(EtcdError::Server(msg))
}

async fn grant_lease(conn: &mut HttpConn, ttl_s: i64) -> Result<(i64, i64), EtcdError> {
    let body = format!("{{\"TTL\":\"{ttl_s}\"}}");
    call(conn, "/v3/lease/grant", body.as_bytes()).await?;
    let g: LeaseGrant = serde_json::from_slice(&conn.body)?;
    let id = num(g.id);
    if id == 0 {
        return Err(EtcdError::Server("lease grant returned no ID".into()));
    }
    Ok((id, num(g.ttl).max(1)))
}

async fn revoke_lease(conn: &mut HttpConn, id: i64) -> Result<(), EtcdError> {
    let body = format!("{{\"ID\":\"{id}\"}}");
    match call(conn, "/v3/lease/revoke", body.as_bytes()).await {
        Err(EtcdError::Server(m)) if m.contains("not found") => Ok(()),
        r => r,
    }
}

/// The `etcd` backend of one run.
pub struct EtcdBackend {
    addr: String,
    url: String,
    variant: EtcdVariant,
    prefix: String,
    ttl_s: i64,
    counters: Arc<EtcdCounters>,
    /// Every lease granted in this run, revoked by `cleanup`.
    leases: Arc<Mutex<Vec<i64>>>,
    route: Option<Route>,
}

impl std::fmt::Debug for EtcdBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdBackend")
            .field("url", &self.url)
            .field("variant", &self.variant)
            .finish_non_exhaustive()
    }
}

impl EtcdBackend {
    /// Check that `url` answers and set up a run.
    pub async fn open(
        url: &str,
        variant: EtcdVariant,
        run_id: &str,
        ttl: Duration,
    ) -> Result<Self, BackendError> {
        let addr = parse_url(url)?;
        let down = |e: &dyn std::fmt::Display| BackendError::Unreachable {
            endpoint: url.to_string(),
            reason: e.to_string(),
            hint: Some(HINT.to_string()),
        };
        let mut conn = HttpConn::connect(&addr, &addr, CONNECT_TIMEOUT)
            .await
            .map_err(|e| down(&e))?;
        let probe = format!("{{\"key\":\"{}\"}}", b64(b"lockstorm:probe"));
        match tokio::time::timeout(
            OP_TIMEOUT,
            call(&mut conn, "/v3/kv/range", probe.as_bytes()),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(down(&e)),
            Err(_) => return Err(down(&"no answer within 3s")),
        }
        Ok(EtcdBackend {
            url: url.to_string(),
            addr,
            variant,
            prefix: format!("lockstorm:{run_id}:"),
            ttl_s: i64::try_from(ttl.as_secs_f64().ceil() as u64)
                .unwrap_or(5)
                .max(1),
            counters: Arc::default(),
            leases: Arc::default(),
            route: None,
        })
    }

    /// The counters of this run.
    pub fn counters(&self) -> &Arc<EtcdCounters> {
        &self.counters
    }
}

impl Backend for EtcdBackend {
    type Client = EtcdClient;

    async fn connect(&self, node: u32) -> Result<EtcdClient, BackendError> {
        let addr = self
            .route
            .as_ref()
            .and_then(|r| r(node, &self.addr))
            .unwrap_or_else(|| self.addr.clone());
        let shared = Arc::new(Shared {
            lease: AtomicI64::new(0),
            keepalive_every_ms: AtomicU64::new(1000),
            lease_lost: AtomicBool::new(false),
            pause: OnceLock::new(),
        });
        let mut c = EtcdClient {
            addr: addr.clone(),
            host: self.addr.clone(),
            url: self.url.clone(),
            variant: self.variant,
            conn: None,
            ttl_s: self.ttl_s,
            shared: Arc::clone(&shared),
            needs_new_lease: true,
            counters: Arc::clone(&self.counters),
            leases: Arc::clone(&self.leases),
            key_b64: Vec::new(),
            held_b64: String::with_capacity(96),
            req: Vec::with_capacity(512),
            keepalive: None,
        };
        c.renew_lease()
            .await
            .map_err(|e| BackendError::Unreachable {
                endpoint: self.url.clone(),
                reason: e.to_string(),
                hint: Some(HINT.to_string()),
            })?;
        let task = tokio::spawn(keepalive_loop(
            addr,
            self.addr.clone(),
            shared,
            Arc::clone(&self.counters),
        ));
        c.keepalive = Some(task.abort_handle());
        Ok(c)
    }

    async fn cleanup(&self) -> Result<(), BackendError> {
        let fail = |e: &dyn std::fmt::Display| {
            BackendError::Op(format!("etcd {}: cleanup failed: {e}", self.url))
        };
        let mut conn = HttpConn::connect(&self.addr, &self.addr, CONNECT_TIMEOUT)
            .await
            .map_err(|e| fail(&e))?;
        let leases: Vec<i64> =
            std::mem::take(&mut *self.leases.lock().unwrap_or_else(|e| e.into_inner()));
        for id in leases {
            revoke_lease(&mut conn, id).await.map_err(|e| fail(&e))?;
        }
        // The prefix ends in ':', so the range end is the same with ';'.
        let mut end = self.prefix.clone().into_bytes();
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        let body = format!(
            "{{\"key\":\"{}\",\"range_end\":\"{}\"}}",
            b64(self.prefix.as_bytes()),
            b64(&end)
        );
        call(&mut conn, "/v3/kv/deleterange", body.as_bytes())
            .await
            .map_err(|e| fail(&e))
    }

    fn endpoints(&self) -> Vec<String> {
        vec![self.url.clone()]
    }

    fn upstreams(&self) -> Vec<String> {
        vec![self.addr.clone()]
    }

    fn set_route(&mut self, route: Route) {
        self.route = Some(route);
    }

    fn stats(&self) -> Map<String, Value> {
        let c = &self.counters;
        let mut m = Map::new();
        for (k, v) in [
            ("leases_granted", &c.leases_granted),
            ("keepalives", &c.keepalives),
            ("keepalives_skipped_paused", &c.keepalives_skipped_paused),
            ("abandoned_requests", &c.abandoned),
            ("watches", &c.watches),
        ] {
            m.insert(k.into(), json!(v.load(Ordering::Relaxed)));
        }
        m
    }
}

/// What a node shares with its keepalive task.
#[derive(Debug)]
struct Shared {
    /// The node's current lease (0: none yet).
    lease: AtomicI64,
    /// Keepalive period, ms (a third of the granted TTL).
    keepalive_every_ms: AtomicU64,
    /// A keepalive found the lease gone.
    lease_lost: AtomicBool,
    /// Set by `attach_pause`: while paused, no keepalive is sent.
    pause: OnceLock<PauseSignal>,
}

/// A node's lease keepalives, on a connection of its own.
async fn keepalive_loop(
    addr: String,
    host: String,
    shared: Arc<Shared>,
    counters: Arc<EtcdCounters>,
) {
    let mut conn: Option<HttpConn> = None;
    let mut body = Vec::with_capacity(64);
    loop {
        let every = Duration::from_millis(shared.keepalive_every_ms.load(Ordering::Relaxed));
        tokio::time::sleep(every).await;
        if shared.pause.get().is_some_and(PauseSignal::is_paused) {
            counters
                .keepalives_skipped_paused
                .fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let id = shared.lease.load(Ordering::Acquire);
        if id == 0 {
            continue;
        }
        if conn.is_none() {
            conn = HttpConn::connect(&addr, &host, CONNECT_TIMEOUT).await.ok();
        }
        let Some(c) = conn.as_mut() else { continue };
        body.clear();
        use std::io::Write as _;
        let _ = write!(body, "{{\"ID\":\"{id}\"}}");
        let r = tokio::time::timeout(OP_TIMEOUT, call(c, "/v3/lease/keepalive", &body)).await;
        match r {
            Ok(Ok(())) => {
                counters.keepalives.fetch_add(1, Ordering::Relaxed);
                let ttl = serde_json::from_slice::<KeepAlive>(&c.body)
                    .ok()
                    .and_then(|k| k.result)
                    .map(|g| num(g.ttl));
                // Only the lease we asked about: the node may have replaced it.
                if ttl.is_some_and(|t| t <= 0) && shared.lease.load(Ordering::Acquire) == id {
                    shared.lease_lost.store(true, Ordering::Release);
                }
                if c.closing {
                    conn = None;
                }
            }
            Ok(Err(EtcdError::Server(_))) => {}
            _ => conn = None,
        }
    }
}

/// One node's connections and lease.
pub struct EtcdClient {
    /// Where this node connects (the fault proxy's listener, or etcd).
    addr: String,
    /// etcd's own host:port, sent as the Host header.
    host: String,
    url: String,
    variant: EtcdVariant,
    conn: Option<HttpConn>,
    ttl_s: i64,
    shared: Arc<Shared>,
    /// The lease may hold a lock key we do not know about (an abandoned or
    /// failed request), or is gone: revoke it and take a new one.
    needs_new_lease: bool,
    counters: Arc<EtcdCounters>,
    leases: Arc<Mutex<Vec<i64>>>,
    /// base64 of each key's name, by key index (filled on first use).
    key_b64: Vec<Option<String>>,
    /// base64 of the key this node holds (lock-api: `<name>/<lease hex>`).
    held_b64: String,
    /// Request body buffer.
    req: Vec<u8>,
    keepalive: Option<tokio::task::AbortHandle>,
}

impl Drop for EtcdClient {
    fn drop(&mut self) {
        if let Some(k) = self.keepalive.take() {
            k.abort();
        }
    }
}

impl std::fmt::Debug for EtcdClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdClient")
            .field("addr", &self.addr)
            .field("lease", &self.shared.lease.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// base64 of `key`'s name, computed once per key.
fn cached_b64<'c>(cache: &'c mut Vec<Option<String>>, key: Key<'_>) -> &'c str {
    let i = key.index as usize;
    if cache.len() <= i {
        cache.resize(i + 1, None);
    }
    cache[i].get_or_insert_with(|| b64(key.name.as_bytes()))
}

enum TxnTry {
    Granted(u64),
    /// Held by someone: watch from this revision.
    Held(i64),
    /// Gone between the compare and the range: try again.
    Again,
}

impl EtcdClient {
    fn err(&self, what: &str, e: &dyn std::fmt::Display) -> BackendError {
        BackendError::Op(format!("etcd {}: {what}: {e}", self.url))
    }

    /// The node's lease id.
    pub fn lease(&self) -> i64 {
        self.shared.lease.load(Ordering::Acquire)
    }

    async fn ready(&mut self) -> Result<&mut HttpConn, EtcdError> {
        if self.conn.as_ref().is_some_and(|c| c.busy) {
            // An exchange was abandoned midway (its future dropped, e.g. a
            // release past its timeout): the connection is out of step, and
            // the lease may hold a key we do not know about.
            self.conn = None;
            self.needs_new_lease = true;
        }
        if self.conn.as_ref().is_some_and(|c| c.closing) {
            self.conn = None;
        }
        if self.conn.is_none() {
            self.conn = Some(HttpConn::connect(&self.addr, &self.host, CONNECT_TIMEOUT).await?);
        }
        Ok(self.conn.as_mut().expect("connected just above"))
    }

    /// Run `f` bounded by `OP_TIMEOUT`, dropping the connection when it breaks.
    async fn op(&mut self, path: &str) -> Result<(), EtcdError> {
        let req = std::mem::take(&mut self.req);
        let r = match self.ready().await {
            Ok(conn) => tokio::time::timeout(OP_TIMEOUT, call(conn, path, &req))
                .await
                .unwrap_or(Err(EtcdError::Timeout)),
            Err(e) => Err(e),
        };
        self.req = req;
        if let Err(e) = &r
            && e.breaks_conn()
        {
            self.conn = None;
        }
        r
    }

    /// Revoke the current lease (if any) and grant a new one.
    async fn renew_lease(&mut self) -> Result<(), EtcdError> {
        let old = self.lease();
        if old != 0 {
            self.req.clear();
            self.req
                .extend_from_slice(format!("{{\"ID\":\"{old}\"}}").as_bytes());
            match self.op("/v3/lease/revoke").await {
                Ok(()) => {}
                Err(EtcdError::Server(m)) if m.contains("not found") => {}
                Err(e) => return Err(e),
            }
        }
        let ttl_s = self.ttl_s;
        let conn = self.ready().await?;
        let r = tokio::time::timeout(OP_TIMEOUT, grant_lease(conn, ttl_s))
            .await
            .unwrap_or(Err(EtcdError::Timeout));
        let (id, ttl) = match r {
            Ok(v) => v,
            Err(e) => {
                if e.breaks_conn() {
                    self.conn = None;
                }
                return Err(e);
            }
        };
        self.counters.leases_granted.fetch_add(1, Ordering::Relaxed);
        self.leases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(id);
        let every_ms = u64::try_from(ttl * 1000 / 3).unwrap_or(1000).max(100);
        self.shared
            .keepalive_every_ms
            .store(every_ms, Ordering::Relaxed);
        self.shared.lease.store(id, Ordering::Release);
        self.shared.lease_lost.store(false, Ordering::Release);
        self.needs_new_lease = false;
        Ok(())
    }

    async fn lease_ready(&mut self) -> Result<(), BackendError> {
        if self.conn.as_ref().is_some_and(|c| c.busy) {
            self.conn = None;
            self.needs_new_lease = true;
        }
        if self.shared.lease_lost.load(Ordering::Acquire) {
            self.needs_new_lease = true;
        }
        if self.needs_new_lease {
            self.renew_lease()
                .await
                .map_err(|e| self.err("cannot renew the lease", &e))?;
        }
        Ok(())
    }

    /// Abandon whatever request was in flight: close its connection, and
    /// replace the lease so nothing it might still grant stays held.
    async fn abandon(&mut self) {
        self.conn = None;
        self.counters.abandoned.fetch_add(1, Ordering::Relaxed);
        self.needs_new_lease = true;
        if let Err(e) = self.renew_lease().await {
            // Retried at the next acquire; the lease also expires on its own
            // once its keepalives stop finding it.
            let _ = e;
        }
    }

    async fn lock_api(
        &mut self,
        key: Key<'_>,
        deadline: Instant,
    ) -> Result<Acquired, BackendError> {
        let lease = self.lease();
        let name = cached_b64(&mut self.key_b64, key);
        self.req.clear();
        use std::io::Write as _;
        let _ = write!(self.req, "{{\"name\":\"{name}\",\"lease\":\"{lease}\"}}");
        let req = std::mem::take(&mut self.req);
        let conn = match self.ready().await {
            Ok(c) => c,
            Err(e) => {
                self.req = req;
                return Err(self.err("connect", &e));
            }
        };
        let r = tokio::time::timeout_at(deadline.into(), call(conn, "/v3/lock/lock", &req)).await;
        self.req = req;
        match r {
            Err(_) => {
                self.abandon().await;
                Ok(Acquired::TimedOut)
            }
            Ok(Err(e)) => {
                self.conn = None;
                self.needs_new_lease = true;
                Err(self.err("lock", &e))
            }
            Ok(Ok(())) => {
                let conn = self.conn.as_ref().expect("the call above used it");
                let parsed = serde_json::from_slice::<LockResp>(&conn.body)
                    .ok()
                    .and_then(|l| Some((num(l.header.revision), l.key?)));
                let Some((rev, k)) = parsed else {
                    self.needs_new_lease = true;
                    return Err(self.err("lock", &"answer without a key"));
                };
                self.held_b64.clear();
                self.held_b64.push_str(k);
                let token = u64::try_from(rev).unwrap_or(0);
                Ok(Acquired::Granted(Grant {
                    token: Some(token),
                    handle: token,
                }))
            }
        }
    }

    async fn txn_try(
        &mut self,
        key: Key<'_>,
        deadline: Instant,
    ) -> Result<Option<TxnTry>, BackendError> {
        let lease = self.lease();
        let k = cached_b64(&mut self.key_b64, key);
        self.req.clear();
        use std::io::Write as _;
        let _ = write!(
            self.req,
            "{{\"compare\":[{{\"target\":\"CREATE\",\"key\":\"{k}\",\"create_revision\":\"0\",\"result\":\"EQUAL\"}}],\
             \"success\":[{{\"request_put\":{{\"key\":\"{k}\",\"value\":\"eA==\",\"lease\":\"{lease}\"}}}}],\
             \"failure\":[{{\"request_range\":{{\"key\":\"{k}\",\"keys_only\":true}}}}]}}"
        );
        let req = std::mem::take(&mut self.req);
        let conn = match self.ready().await {
            Ok(c) => c,
            Err(e) => {
                self.req = req;
                return Err(self.err("connect", &e));
            }
        };
        let r = tokio::time::timeout_at(deadline.into(), call(conn, "/v3/kv/txn", &req)).await;
        self.req = req;
        match r {
            Err(_) => {
                // The put may have landed with our lease.
                self.abandon().await;
                Ok(None)
            }
            Ok(Err(e)) => {
                self.conn = None;
                self.needs_new_lease = true;
                Err(self.err("txn", &e))
            }
            Ok(Ok(())) => {
                let conn = self.conn.as_ref().expect("the call above used it");
                let t: TxnResp =
                    serde_json::from_slice(&conn.body).map_err(|e| self.err("txn", &e))?;
                let rev = num(t.header.revision);
                if t.succeeded {
                    self.held_b64.clear();
                    self.held_b64.push_str(cached_b64(&mut self.key_b64, key));
                    return Ok(Some(TxnTry::Granted(u64::try_from(rev).unwrap_or(0))));
                }
                let present = t
                    .responses
                    .first()
                    .and_then(|r| r.response_range.as_ref())
                    .is_some_and(|r| !r.kvs.is_empty());
                Ok(Some(if present {
                    TxnTry::Held(rev + 1)
                } else {
                    TxnTry::Again
                }))
            }
        }
    }

    /// Wait (until `deadline`) for `key` to be deleted at or after `from_rev`.
    async fn watch_delete(
        &mut self,
        key: Key<'_>,
        from_rev: i64,
        deadline: Instant,
    ) -> Result<(), BackendError> {
        self.counters.watches.fetch_add(1, Ordering::Relaxed);
        let k = cached_b64(&mut self.key_b64, key);
        let body = format!(
            "{{\"create_request\":{{\"key\":\"{k}\",\"start_revision\":\"{from_rev}\",\"filters\":[\"NOPUT\"]}}}}"
        );
        let (addr, host) = (self.addr.clone(), self.host.clone());
        let wait = async move {
            let mut w = HttpConn::connect(&addr, &host, CONNECT_TIMEOUT).await?;
            if w.open_stream("/v3/watch", body.as_bytes()).await? != 200 {
                return Err(EtcdError::Server("watch refused".into()));
            }
            while let Some(line) = w.next_line().await? {
                let Ok(m) = serde_json::from_slice::<WatchMsg>(line) else {
                    continue;
                };
                let Some(r) = m.result else { continue };
                if r.canceled || r.events.iter().any(|e| e.kind == Some("DELETE")) {
                    return Ok(());
                }
            }
            Ok(())
        };
        match tokio::time::timeout_at(deadline.into(), wait).await {
            Err(_) | Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.err("watch", &e)),
        }
    }
}

impl LockClient for EtcdClient {
    async fn acquire(&mut self, key: Key<'_>, timeout: Duration) -> Result<Acquired, BackendError> {
        let deadline = Instant::now() + timeout;
        self.lease_ready().await?;
        match self.variant {
            EtcdVariant::LockApi => self.lock_api(key, deadline).await,
            EtcdVariant::Txn => loop {
                if Instant::now() >= deadline {
                    return Ok(Acquired::TimedOut);
                }
                match self.txn_try(key, deadline).await? {
                    None => return Ok(Acquired::TimedOut),
                    Some(TxnTry::Granted(t)) => {
                        return Ok(Acquired::Granted(Grant {
                            token: Some(t),
                            handle: t,
                        }));
                    }
                    Some(TxnTry::Again) => {}
                    Some(TxnTry::Held(rev)) => self.watch_delete(key, rev, deadline).await?,
                }
            },
        }
    }

    async fn release(&mut self, _key: Key<'_>, _grant: Grant) -> Result<Released, BackendError> {
        let lease = self.lease();
        let k = std::mem::take(&mut self.held_b64);
        self.req.clear();
        use std::io::Write as _;
        let path = match self.variant {
            // The key carries our lease id: nobody else can hold it.
            EtcdVariant::LockApi => {
                let _ = write!(self.req, "{{\"key\":\"{k}\"}}");
                "/v3/kv/deleterange"
            }
            // Delete only if the key is still attached to our lease.
            EtcdVariant::Txn => {
                let _ = write!(
                    self.req,
                    "{{\"compare\":[{{\"target\":\"LEASE\",\"key\":\"{k}\",\"lease\":\"{lease}\",\"result\":\"EQUAL\"}}],\
                     \"success\":[{{\"request_delete_range\":{{\"key\":\"{k}\"}}}}]}}"
                );
                "/v3/kv/txn"
            }
        };
        self.held_b64 = k;
        let r = self.op(path).await;
        self.held_b64.clear();
        if let Err(e) = r {
            self.needs_new_lease = true;
            return Err(self.err("release", &e));
        }
        let conn = self.conn.as_ref().expect("op succeeded on it");
        let gone = match self.variant {
            EtcdVariant::LockApi => serde_json::from_slice::<DeleteResp>(&conn.body)
                .map(|d| num(d.deleted) == 0)
                .unwrap_or(true),
            EtcdVariant::Txn => serde_json::from_slice::<TxnResp>(&conn.body)
                .map(|t| !t.succeeded)
                .unwrap_or(true),
        };
        if gone {
            // The lease expired under us (a pause, a partition): take a new one.
            self.needs_new_lease = true;
            Ok(Released::LeaseLost)
        } else {
            Ok(Released::Released)
        }
    }

    fn attach_pause(&mut self, signal: PauseSignal) {
        let _ = self.shared.pause.set(signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_plain_http_host_port() {
        assert_eq!(
            parse_url("http://127.0.0.1:2379").unwrap(),
            "127.0.0.1:2379"
        );
        assert_eq!(
            parse_url("http://127.0.0.1:2379/").unwrap(),
            "127.0.0.1:2379"
        );
        assert!(parse_url("https://127.0.0.1:2379").is_err());
        assert!(parse_url("127.0.0.1:2379").is_err());
    }

    #[test]
    fn gateway_answers_parse_with_string_numbers_and_omitted_defaults() {
        let t: TxnResp = serde_json::from_slice(
            br#"{"header":{"revision":"7"},"responses":[{"response_range":{"header":{"revision":"7"},"kvs":[{"key":"eA==","mod_revision":"5"}],"count":"1"}}]}"#,
        )
        .unwrap();
        assert!(!t.succeeded);
        assert_eq!(num(t.header.revision), 7);
        assert_eq!(t.responses[0].response_range.as_ref().unwrap().kvs.len(), 1);
        let d: DeleteResp = serde_json::from_slice(br#"{"header":{"revision":"8"}}"#).unwrap();
        assert_eq!(num(d.deleted), 0);
        let k: KeepAlive =
            serde_json::from_slice(br#"{"result":{"header":{},"ID":"12345"}}"#).unwrap();
        assert_eq!(num(k.result.unwrap().ttl), 0);
        let w: WatchMsg = serde_json::from_slice(
            br#"{"result":{"header":{},"events":[{"type":"DELETE","kv":{"key":"eA=="}}]}}"#,
        )
        .unwrap();
        assert_eq!(w.result.unwrap().events[0].kind, Some("DELETE"));
    }
}
