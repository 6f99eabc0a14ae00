//! Lock backends: the [`LockClient`] trait every backend implements, the
//! catalog of kinds and variants, and one module per backend.
//!
//! A [`Backend`] is built once per run from the scenario; it hands every
//! virtual node its own [`LockClient`] (its own connection or session, as a
//! separate process would have) and removes what the run created at the end.
//! The engine is generic over the backend, so a lock cycle costs no dynamic
//! dispatch and no boxed future.

pub mod catalog;
pub mod etcd;
pub mod http;
pub mod mem;
pub mod mysql;
pub mod postgres;
pub mod redis;
pub mod redlock;
pub mod registry;
pub mod resp;
pub mod sql;
pub mod sqlite;
pub mod zookeeper;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A key as a node sees it: its index (0-based) and its name on the backend.
#[derive(Debug, Clone, Copy)]
pub struct Key<'a> {
    /// Index into the run's keys.
    pub index: u32,
    /// Name, namespaced per run where the backend is shared.
    pub name: &'a str,
}

/// A granted lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Fencing token, when the backend issues one.
    pub token: Option<u64>,
    /// Backend-specific handle the release needs (lease id, owner value, ...).
    pub handle: u64,
}

/// The result of an acquire call that did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// The lock is ours.
    Granted(Grant),
    /// The acquire timeout passed first.
    TimedOut,
}

/// The result of a release call that did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// The backend released our lock.
    Released,
    /// The backend no longer had our lock: the lease had expired (and maybe
    /// someone else holds it now).
    LeaseLost,
}

/// A backend failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    /// The endpoint did not answer; `hint` says how to start it.
    #[error("cannot reach {endpoint}: {reason}{}", hint.as_ref().map(|h| format!(" (start it with `{h}`)")).unwrap_or_default())]
    Unreachable {
        /// Endpoint, password redacted.
        endpoint: String,
        /// What went wrong.
        reason: String,
        /// Command that starts the server.
        hint: Option<String>,
    },
    /// The backend answered with an error or the connection broke.
    #[error("{0}")]
    Op(String),
    /// The run is stopping; the operation was abandoned.
    #[error("stopped")]
    Stopped,
}

/// One node's handle on the lock service.
pub trait LockClient: Send + 'static {
    /// Try to acquire `key` within `timeout`.
    fn acquire(
        &mut self,
        key: Key<'_>,
        timeout: Duration,
    ) -> impl Future<Output = Result<Acquired, BackendError>> + Send;

    /// Release `key`, held under `grant`.
    fn release(
        &mut self,
        key: Key<'_>,
        grant: Grant,
    ) -> impl Future<Output = Result<Released, BackendError>> + Send;

    /// Called once after connect. A client that does background work for its
    /// node (lease keepalives, heartbeats on another task) must stop that work
    /// while `signal` is set, as a paused process would.
    fn attach_pause(&mut self, _signal: PauseSignal) {}
}

/// Set while the engine holds a node frozen (a `pause` fault).
#[derive(Debug, Clone, Default)]
pub struct PauseSignal(Arc<AtomicBool>);

impl PauseSignal {
    /// Whether the node is frozen now.
    pub fn is_paused(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Freeze or thaw the node.
    pub fn set(&self, paused: bool) {
        self.0.store(paused, Ordering::Release);
    }
}

/// Where node `n` connects to reach upstream `host:port`: the fault proxy's
/// per-node listener, or `None` to connect directly.
pub type Route = Arc<dyn Fn(u32, &str) -> Option<String> + Send + Sync>;

/// A lock service for one run.
pub trait Backend: Send + Sync + 'static {
    /// The per-node client.
    type Client: LockClient;

    /// Open node `node`'s own client (connection, session, ...).
    fn connect(&self, node: u32)
    -> impl Future<Output = Result<Self::Client, BackendError>> + Send;

    /// Remove everything this run created on the backend.
    fn cleanup(&self) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Endpoints in use, passwords redacted.
    fn endpoints(&self) -> Vec<String>;

    /// Every server this backend's nodes connect to, as `host:port`, for the
    /// fault proxy. Empty when the backend has no network traffic.
    fn upstreams(&self) -> Vec<String> {
        Vec::new()
    }

    /// From now on, node `n` connects to `route(n, upstream)` where that is
    /// `Some` (the fault proxy), instead of the upstream itself. Called before
    /// any node connects. Backends that ignore it cannot take network faults.
    fn set_route(&mut self, _route: Route) {}

    /// Backend-specific counters for the report's `backend.stats` (for
    /// example ZooKeeper's watch notifications per grant), read once after
    /// the run. Empty for most backends.
    fn stats(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }
}

/// Replace the password in a URL-like endpoint with `***`.
pub fn redact(endpoint: &str) -> String {
    let Some(scheme_end) = endpoint.find("://") else {
        return endpoint.to_string();
    };
    let rest = &endpoint[scheme_end + 3..];
    let auth_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..auth_end].rfind('@') else {
        return endpoint.to_string();
    };
    let userinfo = &rest[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &endpoint[..scheme_end + 3],
            &userinfo[..colon],
            &rest[at..]
        ),
        None => endpoint.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact("postgres://bob:s3cr@t@127.0.0.1:5432/db"),
            "postgres://bob:***@127.0.0.1:5432/db"
        );
        assert_eq!(
            redact("redis://:pw@127.0.0.1:6379"),
            "redis://:***@127.0.0.1:6379"
        );
        assert_eq!(
            redact("mysql://root@127.0.0.1:3306/mysql"),
            "mysql://root@127.0.0.1:3306/mysql"
        );
        assert_eq!(redact("127.0.0.1:2181"), "127.0.0.1:2181");
    }
}
