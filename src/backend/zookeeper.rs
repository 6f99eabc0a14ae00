//! `zookeeper`: the lock recipes from ZooKeeper's documentation, on a real
//! server, one session per virtual node.
//!
//! Every lock of a run lives under `/lockstorm/<run-id>/<key>` (for example
//! `/lockstorm/1a2b3c4d/k0`); a waiter creates an `EPHEMERAL|SEQUENTIAL`
//! child `n<node>-lock-<10 digits>` there and the lowest sequence number holds the
//! lock. The fencing token is that sequence number: ZooKeeper hands them out
//! from a counter per parent, so they increase per key. `cleanup` deletes
//! `/lockstorm/<run-id>` and everything below it.
//!
//! Variants:
//! - `recipe`: each waiter watches only its predecessor (an `exists` watch),
//!   so a release wakes exactly one waiter — about one notification per grant.
//! - `herd`: each waiter watches the parent's children and re-checks on every
//!   change, so every create and delete wakes every waiter: notifications per
//!   grant grow with the number of waiters. The count is in the report's
//!   `backend.stats`.
//!
//! The lock belongs to the session: if the session expires while a node
//! holds the lock, ZooKeeper deletes the node and the next waiter gets it.
//! The client notices from its session state (or from the release failing)
//! and reports the release as a lost lease, then opens a new session.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use zookeeper_client as zk;

use super::{Acquired, Backend, BackendError, Grant, Key, LockClient, Released, Route};

const HINT: &str = "scripts/backends up zookeeper";
/// How long establishing one session may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Shortest session timeout lockstorm asks for (the server's minimum is
/// usually 2 × tickTime = 4 s and it rounds up anyway).
pub const MIN_SESSION_TIMEOUT: Duration = Duration::from_secs(2);
/// Lock nodes are named `n<node>-lock-<10 digits>`: the server appends the
/// digits, and the `n<node>-` tag lets a node find nodes of its own whose
/// create or delete it could not confirm (a timeout, a lost connection) —
/// Curator's "protected" mode — so none is left queued or holding.
const NODE_PREFIX: &str = "lock-";

/// Which `zookeeper` recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZkVariant {
    /// Watch the predecessor only.
    Recipe,
    /// Watch the parent's children (herd effect).
    Herd,
}

impl ZkVariant {
    /// From the catalog name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "recipe" => Some(Self::Recipe),
            "herd" => Some(Self::Herd),
            _ => None,
        }
    }
}

/// Counters shared by all nodes of a run (relaxed atomics: one add per event).
#[derive(Debug, Default)]
pub struct ZkCounters {
    /// Watch notifications delivered to waiters.
    pub watch_notifications: AtomicU64,
    /// Grants.
    pub grants: AtomicU64,
    /// Sessions that expired (or closed) under a node.
    pub sessions_expired: AtomicU64,
}

/// The `zookeeper` backend of one run.
pub struct ZkBackend {
    addr: String,
    variant: ZkVariant,
    root: String,
    parents: Arc<[String]>,
    session_timeout: Duration,
    counters: Arc<ZkCounters>,
    route: Option<Route>,
}

impl std::fmt::Debug for ZkBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZkBackend")
            .field("addr", &self.addr)
            .field("variant", &self.variant)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

fn unreachable(addr: &str, e: &dyn std::fmt::Display) -> BackendError {
    BackendError::Unreachable {
        endpoint: addr.to_string(),
        reason: e.to_string(),
        hint: Some(HINT.to_string()),
    }
}

/// Accept `host:port` or `zk://host:port` / `zookeeper://host:port`.
fn parse_addr(url: &str) -> Result<String, BackendError> {
    let addr = url
        .strip_prefix("zk://")
        .or_else(|| url.strip_prefix("zookeeper://"))
        .unwrap_or(url)
        .trim_end_matches('/');
    if addr.is_empty() || addr.contains('/') || !addr.contains(':') {
        return Err(BackendError::Op(format!(
            "zookeeper endpoint `{url}` is not host:port (e.g. 127.0.0.1:2181)"
        )));
    }
    Ok(addr.to_string())
}

/// Open one session on `addr`.
pub async fn connect_session(addr: &str, timeout: Duration) -> Result<zk::Client, zk::Error> {
    let fut = zk::Client::connector()
        .with_session_timeout(timeout)
        .with_connection_timeout(CONNECT_TIMEOUT)
        .with_fail_eagerly()
        .connect(addr);
    match tokio::time::timeout(CONNECT_TIMEOUT, fut).await {
        Ok(r) => r,
        Err(_) => Err(zk::Error::Timeout),
    }
}

fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

impl ZkBackend {
    /// Check that `url` answers and create `/lockstorm/<run_id>/k<i>` for
    /// each of the `keys` locks.
    pub async fn open(
        url: &str,
        variant: ZkVariant,
        run_id: &str,
        keys: u32,
        ttl: Duration,
    ) -> Result<Self, BackendError> {
        let addr = parse_addr(url)?;
        let session_timeout = ttl.max(MIN_SESSION_TIMEOUT);
        let client = connect_session(&addr, session_timeout)
            .await
            .map_err(|e| unreachable(&addr, &e))?;
        let root = format!("/lockstorm/{run_id}");
        let parents: Arc<[String]> = (0..keys).map(|i| format!("{root}/k{i}")).collect();
        let op =
            |e: zk::Error| BackendError::Op(format!("zookeeper {addr}: cannot create {root}: {e}"));
        client.mkdir(&root, &persistent()).await.map_err(op)?;
        for p in parents.iter() {
            match client.create(p, &[], &persistent()).await {
                Ok(_) | Err(zk::Error::NodeExists) => {}
                Err(e) => return Err(op(e)),
            }
        }
        Ok(ZkBackend {
            addr,
            variant,
            root,
            parents,
            session_timeout,
            counters: Arc::default(),
            route: None,
        })
    }

    /// The counters of this run.
    pub fn counters(&self) -> &Arc<ZkCounters> {
        &self.counters
    }

    /// Delete every child of `path`, then `path`; missing nodes are fine.
    async fn delete_tree(client: &zk::Client, path: &str) -> Result<(), zk::Error> {
        // Two levels at most: /lockstorm/<run>/k<i>/lock-N. Ephemeral lock
        // nodes of sessions still closing may reappear in the listing for a
        // moment, hence the retries.
        for _ in 0..20 {
            let children = match client.list_children(path).await {
                Ok(c) => c,
                Err(zk::Error::NoNode) => return Ok(()),
                Err(e) => return Err(e),
            };
            for c in &children {
                let child = format!("{path}/{c}");
                if let Ok(grand) = client.list_children(&child).await {
                    for g in grand {
                        match client.delete(&format!("{child}/{g}"), None).await {
                            Ok(()) | Err(zk::Error::NoNode) => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                match client.delete(&child, None).await {
                    Ok(()) | Err(zk::Error::NoNode) | Err(zk::Error::NotEmpty) => {}
                    Err(e) => return Err(e),
                }
            }
            match client.delete(path, None).await {
                Ok(()) | Err(zk::Error::NoNode) => return Ok(()),
                Err(zk::Error::NotEmpty) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => return Err(e),
            }
        }
        Err(zk::Error::NotEmpty)
    }
}

impl Backend for ZkBackend {
    type Client = ZkClient;

    async fn connect(&self, node: u32) -> Result<ZkClient, BackendError> {
        let addr = self
            .route
            .as_ref()
            .and_then(|r| r(node, &self.addr))
            .unwrap_or_else(|| self.addr.clone());
        let session = connect_session(&addr, self.session_timeout)
            .await
            .map_err(|e| unreachable(&addr, &e))?;
        Ok(ZkClient {
            addr,
            shown: self.addr.clone(),
            variant: self.variant,
            session,
            session_timeout: self.session_timeout,
            parents: Arc::clone(&self.parents),
            counters: Arc::clone(&self.counters),
            mine: String::with_capacity(64),
            pred: String::with_capacity(64),
            dead_counted: false,
            tag: format!("n{node}-"),
            dirty: None,
        })
    }

    async fn cleanup(&self) -> Result<(), BackendError> {
        let client = connect_session(&self.addr, self.session_timeout)
            .await
            .map_err(|e| unreachable(&self.addr, &e))?;
        Self::delete_tree(&client, &self.root).await.map_err(|e| {
            BackendError::Op(format!(
                "zookeeper {}: cleanup of {} failed: {e}",
                self.addr, self.root
            ))
        })
    }

    fn endpoints(&self) -> Vec<String> {
        vec![self.addr.clone()]
    }

    fn upstreams(&self) -> Vec<String> {
        vec![self.addr.clone()]
    }

    fn set_route(&mut self, route: Route) {
        self.route = Some(route);
    }

    fn stats(&self) -> Map<String, Value> {
        let c = &self.counters;
        let notes = c.watch_notifications.load(Ordering::Relaxed);
        let grants = c.grants.load(Ordering::Relaxed);
        let per_grant = if grants == 0 {
            0.0
        } else {
            notes as f64 / grants as f64
        };
        let mut m = Map::new();
        m.insert("watch_notifications".into(), json!(notes));
        m.insert("grants".into(), json!(grants));
        m.insert(
            "watch_notifications_per_grant".into(),
            json!((per_grant * 100.0).round() / 100.0),
        );
        m.insert(
            "sessions_expired".into(),
            json!(c.sessions_expired.load(Ordering::Relaxed)),
        );
        m
    }
}

/// One node's ZooKeeper session.
pub struct ZkClient {
    /// Where this node connects (the fault proxy's listener, or the server).
    addr: String,
    /// The server, for messages.
    shown: String,
    variant: ZkVariant,
    session: zk::Client,
    session_timeout: Duration,
    parents: Arc<[String]>,
    counters: Arc<ZkCounters>,
    /// Path of this node's current lock node (reused buffer).
    mine: String,
    /// Path of the node watched (reused buffer).
    pred: String,
    /// The current (dead) session's end has been counted.
    dead_counted: bool,
    /// `n<node>-`: the tag in this node's lock node names.
    tag: String,
    /// A key under which a node of ours may be left (an unconfirmed create
    /// or delete): swept before the next acquire.
    dirty: Option<u32>,
}

impl std::fmt::Debug for ZkClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZkClient")
            .field("addr", &self.addr)
            .field("session", &self.session.session_id())
            .finish_non_exhaustive()
    }
}

/// The sequence number in a lock node's name, if it is a lock node.
fn seq_of(name: &str) -> Option<u64> {
    name.rsplit_once(NODE_PREFIX)?.1.parse().ok()
}

enum Step {
    /// We hold the lock.
    Mine,
    /// Wait for this watch, then look again.
    Wait(zk::OneshotWatcher),
    /// The watched node went away between listing and watching: look again.
    Again,
}

impl ZkClient {
    /// This node's session, so a test can force it to expire (by opening a
    /// second client on the same session and closing it).
    pub fn session_info(&self) -> zk::SessionInfo {
        self.session.session().clone()
    }

    fn op(&self, what: &str, e: zk::Error) -> BackendError {
        BackendError::Op(format!("zookeeper {}: {what}: {e}", self.shown))
    }

    /// Whether the session is gone for good (expired, closed, auth failed).
    fn session_dead(&self) -> bool {
        self.session.state().is_terminated()
    }

    /// Replace a dead session with a new one.
    async fn renew(&mut self) -> Result<(), BackendError> {
        let s = connect_session(&self.addr, self.session_timeout)
            .await
            .map_err(|e| self.op("cannot open a new session", e))?;
        self.session = s;
        self.dead_counted = false;
        Ok(())
    }

    /// Count this session's end once, however often it is seen dead.
    fn note_dead_session(&mut self) {
        if !self.dead_counted {
            self.dead_counted = true;
            self.counters
                .sessions_expired
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One look at the queue: hold it, or what to wait for.
    async fn step(&mut self, parent: &str, my_seq: u64) -> Result<Step, zk::Error> {
        match self.variant {
            ZkVariant::Recipe => {
                let children = self.session.list_children(parent).await?;
                let pred = children
                    .iter()
                    .filter_map(|c| seq_of(c).map(|s| (s, c)))
                    .filter(|(s, _)| *s < my_seq)
                    .max_by_key(|(s, _)| *s);
                let Some((_, pred)) = pred else {
                    return Ok(Step::Mine);
                };
                self.pred.clear();
                self.pred.push_str(parent);
                self.pred.push('/');
                self.pred.push_str(pred);
                match self.session.check_and_watch_stat(&self.pred).await? {
                    (Some(_), w) => Ok(Step::Wait(w)),
                    (None, _) => Ok(Step::Again),
                }
            }
            ZkVariant::Herd => {
                let (children, w) = self.session.list_and_watch_children(parent).await?;
                let lowest = children.iter().filter_map(|c| seq_of(c)).min();
                if lowest.is_none_or(|l| l >= my_seq) {
                    Ok(Step::Mine)
                } else {
                    Ok(Step::Wait(w))
                }
            }
        }
    }

    /// Queue up and wait until granted; the caller bounds it with the timeout.
    async fn queue(&mut self, parent: &str, my_seq: u64) -> Result<(), zk::Error> {
        loop {
            match self.step(parent, my_seq).await? {
                Step::Mine => return Ok(()),
                Step::Again => {}
                Step::Wait(w) => {
                    let ev = w.changed().await;
                    self.counters
                        .watch_notifications
                        .fetch_add(1, Ordering::Relaxed);
                    if ev.event_type == zk::EventType::Session {
                        return Err(if self.session_dead() {
                            zk::Error::SessionExpired
                        } else {
                            zk::Error::ConnectionLoss
                        });
                    }
                }
            }
        }
    }

    /// Delete our own lock node (after a timeout or an error); best effort.
    async fn withdraw(&mut self) {
        if !self.mine.is_empty() {
            let r =
                tokio::time::timeout(CONNECT_TIMEOUT, self.session.delete(&self.mine, None)).await;
            if matches!(r, Ok(Ok(())) | Ok(Err(zk::Error::NoNode))) {
                self.dirty = None;
            }
            self.mine.clear();
        }
    }

    /// Delete every node of ours under the key `self.dirty` names.
    async fn sweep(&mut self) -> Result<(), BackendError> {
        let Some(index) = self.dirty else {
            return Ok(());
        };
        let parents = Arc::clone(&self.parents);
        let Some(parent) = parents.get(index as usize) else {
            self.dirty = None;
            return Ok(());
        };
        let children = match self.session.list_children(parent).await {
            Ok(c) => c,
            Err(e) => return Err(self.op("looking for nodes left behind", e)),
        };
        for c in children.iter().filter(|c| c.starts_with(self.tag.as_str())) {
            match self.session.delete(&format!("{parent}/{c}"), None).await {
                Ok(()) | Err(zk::Error::NoNode) => {}
                Err(e) => return Err(self.op("deleting a node left behind", e)),
            }
        }
        self.dirty = None;
        Ok(())
    }
}

impl LockClient for ZkClient {
    async fn acquire(&mut self, key: Key<'_>, timeout: Duration) -> Result<Acquired, BackendError> {
        let deadline = Instant::now() + timeout;
        if self.session_dead() {
            self.note_dead_session();
            self.renew().await?;
            // The old session's nodes went with it.
            self.dirty = None;
        }
        self.sweep().await?;
        let parents = Arc::clone(&self.parents);
        let Some(parent) = parents.get(key.index as usize) else {
            return Err(BackendError::Op(format!(
                "zookeeper: no lock node for key {}",
                key.name
            )));
        };
        self.mine.clear();
        self.mine.push_str(parent);
        self.mine.push('/');
        self.mine.push_str(&self.tag);
        self.mine.push_str(NODE_PREFIX);
        // Until the create is confirmed (and again from the grant until the
        // release is), a node of ours may be there that we cannot name.
        self.dirty = Some(key.index);
        let opts = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
        let created =
            tokio::time::timeout_at(deadline.into(), self.session.create(&self.mine, &[], &opts))
                .await;
        let seq = match created {
            Ok(Ok((_, seq))) => seq,
            Ok(Err(e)) => {
                self.mine.clear();
                return Err(self.op("create", e));
            }
            Err(_) => {
                // The create may still land; the next acquire sweeps it.
                self.mine.clear();
                return Ok(Acquired::TimedOut);
            }
        };
        let my_seq = u64::try_from(seq.into_i64()).unwrap_or(0);
        // `CreateSequence` prints as the server names the node (10 digits).
        let _ = write!(self.mine, "{seq}");
        match tokio::time::timeout_at(deadline.into(), self.queue(parent, my_seq)).await {
            Ok(Ok(())) => {
                self.counters.grants.fetch_add(1, Ordering::Relaxed);
                Ok(Acquired::Granted(Grant {
                    token: Some(my_seq),
                    handle: my_seq,
                }))
            }
            Ok(Err(e)) => {
                self.withdraw().await;
                Err(self.op("waiting for the lock", e))
            }
            Err(_) => {
                self.withdraw().await;
                Ok(Acquired::TimedOut)
            }
        }
    }

    async fn release(&mut self, _key: Key<'_>, _grant: Grant) -> Result<Released, BackendError> {
        if self.session_dead() {
            // The session expired while we held the lock: ZooKeeper has
            // already deleted our node and someone else may hold it now.
            self.note_dead_session();
            self.mine.clear();
            let _ = self.renew().await;
            return Ok(Released::LeaseLost);
        }
        let r = self.session.delete(&self.mine, None).await;
        match r {
            Ok(()) => {
                self.mine.clear();
                self.dirty = None;
                Ok(Released::Released)
            }
            Err(zk::Error::NoNode) | Err(zk::Error::SessionExpired) => {
                self.mine.clear();
                self.dirty = None;
                if self.session_dead() {
                    self.note_dead_session();
                    let _ = self.renew().await;
                }
                Ok(Released::LeaseLost)
            }
            Err(e) => Err(self.op("delete", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_node_names_parse_to_their_sequence() {
        assert_eq!(seq_of("lock-0000000042"), Some(42));
        assert_eq!(seq_of("n12-lock-0000000042"), Some(42));
        assert_eq!(seq_of("lock-"), None);
        assert_eq!(seq_of("other-0000000001"), None);
    }

    #[test]
    fn endpoints_accept_plain_and_scheme_forms() {
        assert_eq!(parse_addr("127.0.0.1:2181").unwrap(), "127.0.0.1:2181");
        assert_eq!(
            parse_addr("zk://127.0.0.1:2181/").unwrap(),
            "127.0.0.1:2181"
        );
        assert!(parse_addr("127.0.0.1").is_err());
        assert!(parse_addr("http://x:1/a").is_err());
    }
}
