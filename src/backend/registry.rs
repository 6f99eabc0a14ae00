//! From a scenario's `[backend]` table to a running backend.
//!
//! The engine is generic over [`Backend`](super::Backend); this is the one
//! place that names every concrete backend, so adding one means adding an arm
//! here and in [`crate::run`].

use std::time::Duration;

use super::BackendError;
use super::etcd::{EtcdBackend, EtcdVariant};
use super::mem::{MemBackend, MemVariant};
use super::mysql::{MyBackend, MyVariant};
use super::postgres::{PgBackend, PgVariant};
use super::redis::{RedisBackend, RedisVariant};
use super::redlock::RedlockBackend;
use super::sqlite::SqliteBackend;
use super::zookeeper::{ZkBackend, ZkVariant};
use crate::scenario::Scenario;

/// Lease length when a scenario gives no `ttl`.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5);
/// Pause between failed tries when a scenario gives no `retry`.
pub const DEFAULT_RETRY: Duration = Duration::from_millis(2);

/// A backend of any kind this build can run.
pub enum AnyBackend {
    /// In-process lock service.
    Mem(MemBackend),
    /// SQLite lease rows.
    Sqlite(SqliteBackend),
    /// One Redis server.
    Redis(RedisBackend),
    /// Redlock over N Redis instances.
    Redlock(RedlockBackend),
    /// ZooKeeper lock recipes.
    Zookeeper(ZkBackend),
    /// etcd v3 locks.
    Etcd(EtcdBackend),
    /// PostgreSQL advisory locks or lease rows.
    Postgres(PgBackend),
    /// MySQL / MariaDB GET_LOCK, lease rows or the unsafe upsert.
    Mysql(MyBackend),
}

/// The scenario's endpoint for this kind, or the kind's default.
fn endpoint(scn: &Scenario) -> String {
    scn.backend
        .url
        .clone()
        .or_else(|| {
            scn.backend
                .kind
                .default_endpoints
                .first()
                .map(|s| s.to_string())
        })
        .unwrap_or_default()
}

/// Build the backend a scenario names. `run_id` namespaces what the run creates.
/// Async so that network backends can check their endpoint and create what
/// they need (tables, parent znodes) before any node connects.
pub async fn build(scn: &Scenario, run_id: &str, seed: u64) -> Result<AnyBackend, BackendError> {
    let b = &scn.backend;
    let ttl = b.ttl.unwrap_or(DEFAULT_TTL);
    let retry = b.retry.unwrap_or(DEFAULT_RETRY);
    match b.kind.name {
        "mem" => {
            let variant = MemVariant::from_name(b.variant.name).ok_or_else(|| {
                BackendError::Op(format!("mem has no variant `{}`", b.variant.name))
            })?;
            Ok(AnyBackend::Mem(MemBackend::new(
                variant,
                scn.workload.keys,
                ttl,
                b.rtt.unwrap_or(Duration::ZERO),
                seed,
            )))
        }
        "sqlite" => Ok(AnyBackend::Sqlite(SqliteBackend::open(
            b.path.as_deref(),
            run_id,
            ttl,
            retry,
        )?)),
        "redis" => {
            let variant = RedisVariant::from_name(b.variant.name).ok_or_else(|| {
                BackendError::Op(format!("redis has no variant `{}`", b.variant.name))
            })?;
            Ok(AnyBackend::Redis(
                RedisBackend::open(&endpoint(scn), variant, run_id, ttl, retry, seed).await?,
            ))
        }
        "redlock" => {
            let urls: Vec<String> = if b.urls.is_empty() {
                b.kind
                    .default_endpoints
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            } else {
                b.urls.clone()
            };
            Ok(AnyBackend::Redlock(
                RedlockBackend::open(&urls, run_id, ttl, retry, seed).await?,
            ))
        }
        "zookeeper" => {
            let variant = ZkVariant::from_name(b.variant.name).ok_or_else(|| {
                BackendError::Op(format!("zookeeper has no variant `{}`", b.variant.name))
            })?;
            Ok(AnyBackend::Zookeeper(
                ZkBackend::open(&endpoint(scn), variant, run_id, scn.workload.keys, ttl).await?,
            ))
        }
        "etcd" => {
            let variant = EtcdVariant::from_name(b.variant.name).ok_or_else(|| {
                BackendError::Op(format!("etcd has no variant `{}`", b.variant.name))
            })?;
            Ok(AnyBackend::Etcd(
                EtcdBackend::open(&endpoint(scn), variant, run_id, ttl).await?,
            ))
        }
        "postgres" => {
            let variant = PgVariant::from_name(b.variant.name).ok_or_else(|| {
                BackendError::Op(format!("postgres has no variant `{}`", b.variant.name))
            })?;
            Ok(AnyBackend::Postgres(
                PgBackend::open(&endpoint(scn), variant, run_id, ttl, retry, seed).await?,
            ))
        }
        "mysql" => {
            let variant = MyVariant::from_name(b.variant.name).ok_or_else(|| {
                BackendError::Op(format!("mysql has no variant `{}`", b.variant.name))
            })?;
            Ok(AnyBackend::Mysql(
                MyBackend::open(&endpoint(scn), variant, run_id, ttl, retry, seed).await?,
            ))
        }
        other => Err(BackendError::Op(format!(
            "backend kind `{other}` is not implemented in this version of lockstorm yet; \
             `lockstorm backends` lists what runs (mem and sqlite run with no server)"
        ))),
    }
}
