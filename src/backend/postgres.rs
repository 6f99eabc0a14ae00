//! `postgres`: locks in PostgreSQL, one connection (session) per node.
//!
//! What a run creates: the sequence `lockstorm_<run-id>_token` (fencing
//! tokens) and, for `lease-row`, the table `lockstorm_<run-id>_locks`.
//! `cleanup` drops exactly those. Keys and every other value travel as bound
//! parameters of prepared statements; only the two identifiers, built from
//! the checked run id, are spliced into SQL text.
//!
//! Variants:
//! - `advisory`: session-level `pg_advisory_lock(hashtextextended(key, 0))`,
//!   bounded server-side by `lock_timeout` = the acquire timeout (a timeout
//!   is SQLSTATE 55P03, reported as a timed-out acquire). The token is
//!   `nextval` of the run's sequence, taken in the same statement but only
//!   once the lock is held (a `MATERIALIZED` CTE holds the lock call), so it
//!   increases with every grant of a key. Session-based: a paused node keeps
//!   the lock, a dropped connection loses it.
//! - `lease-row`: a row per key with owner, token and `expires_at`; acquire is
//!   one `INSERT .. SELECT .. WHERE NOT EXISTS (a live lease) ON CONFLICT
//!   (key) DO UPDATE .. WHERE expires_at < now() RETURNING token`, polled
//!   every jittered `retry`. The `NOT EXISTS` gate keeps a try on a held
//!   lease read-only (no row lock, no transaction id, no WAL flush); a grant
//!   and a release are each a commit, so one hot key runs at about one cycle
//!   per two WAL flushes (docs/sql.md). The update path takes
//!   `nextval` under the row lock, so tokens increase in grant order. Release
//!   expires only the owner's row (`UPDATE .. WHERE key AND owner`): keeping
//!   the row (instead of deleting it) means a later grant always goes through
//!   the row lock, never through an INSERT whose token was drawn earlier.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::net::TcpStream;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls, Statement};

use super::redis::jittered;
use super::sql::{
    CONNECT_TIMEOUT, RECONNECT_BACKOFF, SERVER_BOUND_GRACE, check_run_id, join_host_port, one_line,
    owner_of, routed,
};
use super::{Acquired, Backend, BackendError, Grant, Key, LockClient, Released, Route, redact};

/// Command that starts the default server.
pub const HINT: &str = "scripts/backends up postgres";

/// Which `postgres` behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgVariant {
    /// Session advisory lock, token from a sequence.
    Advisory,
    /// Expiring row per key, token from a sequence.
    LeaseRow,
}

impl PgVariant {
    /// From the catalog name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "advisory" => Some(Self::Advisory),
            "lease-row" => Some(Self::LeaseRow),
            _ => None,
        }
    }
}

/// The text of a PostgreSQL error, on one line: the server's message and
/// SQLSTATE, or the client-side error and its causes.
pub fn reason(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return one_line(&format!("{} (SQLSTATE {})", db.message(), db.code().code()));
    }
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    one_line(&s)
}

/// Why opening a connection failed.
#[derive(Debug)]
enum OpenError {
    /// Nothing answered (refused, timed out, reset during the handshake).
    Network(String),
    /// The server answered and refused us (password, database, ...).
    Refused(String),
}

impl OpenError {
    fn into_backend(self, shown: &str) -> BackendError {
        match self {
            OpenError::Network(reason) => BackendError::Unreachable {
                endpoint: shown.to_string(),
                reason,
                hint: Some(HINT.to_string()),
            },
            OpenError::Refused(reason) => BackendError::Op(format!("postgres {shown}: {reason}")),
        }
    }
}

/// What every client of a run shares.
#[derive(Debug)]
struct Shared {
    config: Config,
    /// URL with the password redacted.
    shown: String,
    /// The server as `host:port`.
    upstream: String,
    variant: PgVariant,
    /// `"lockstorm_<run>_locks"`, quoted.
    locks: String,
    /// `"lockstorm_<run>_token"`, quoted.
    seq: String,
    ttl_ms: f64,
    retry: Duration,
    seed: u64,
}

impl Shared {
    /// Open one connection to `addr` and spawn its connection task.
    async fn open(&self, addr: &str) -> Result<Client, OpenError> {
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Err(_) => {
                return Err(OpenError::Network(format!(
                    "connect timed out after {CONNECT_TIMEOUT:?}"
                )));
            }
            Ok(Err(e)) => return Err(OpenError::Network(e.to_string())),
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        let (client, connection) =
            match tokio::time::timeout(CONNECT_TIMEOUT, self.config.connect_raw(stream, NoTls))
                .await
            {
                Err(_) => {
                    return Err(OpenError::Network(format!(
                        "no answer to the login within {CONNECT_TIMEOUT:?}"
                    )));
                }
                Ok(Err(e)) if e.as_db_error().is_some() => {
                    return Err(OpenError::Refused(reason(&e)));
                }
                Ok(Err(e)) => return Err(OpenError::Network(reason(&e))),
                Ok(Ok(pair)) => pair,
            };
        // The connection future does the I/O; it ends when the client is
        // dropped or the server goes away (`client.is_closed()` then says so).
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }
}

/// The `postgres` backend of one run.
pub struct PgBackend {
    shared: Arc<Shared>,
    route: Option<Route>,
}

impl std::fmt::Debug for PgBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgBackend")
            .field("shared", &self.shared)
            .field("routed", &self.route.is_some())
            .finish()
    }
}

impl PgBackend {
    /// Check that `url` answers and accepts us, and create the run's
    /// sequence (and table, for `lease-row`).
    pub async fn open(
        url: &str,
        variant: PgVariant,
        run_id: &str,
        ttl: Duration,
        retry: Duration,
        seed: u64,
    ) -> Result<Self, BackendError> {
        check_run_id("postgres", run_id)?;
        let shown = redact(url);
        let config: Config = url.parse().map_err(|e: tokio_postgres::Error| {
            BackendError::Op(format!("postgres {shown}: not a valid URL: {}", reason(&e)))
        })?;
        let host = config
            .get_hosts()
            .iter()
            .find_map(|h| match h {
                tokio_postgres::config::Host::Tcp(h) => Some(h.clone()),
                _ => None,
            })
            .ok_or_else(|| {
                BackendError::Op(format!("postgres {shown}: the URL names no TCP host"))
            })?;
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let shared = Shared {
            config,
            upstream: join_host_port(&host, port),
            shown,
            variant,
            locks: format!("\"lockstorm_{run_id}_locks\""),
            seq: format!("\"lockstorm_{run_id}_token\""),
            ttl_ms: ttl.as_secs_f64() * 1000.0,
            retry,
            seed,
        };
        let client = shared
            .open(&shared.upstream)
            .await
            .map_err(|e| e.into_backend(&shared.shown))?;
        let mut schema = format!("CREATE SEQUENCE IF NOT EXISTS {};", shared.seq);
        if variant == PgVariant::LeaseRow {
            schema.push_str(&format!(
                "CREATE TABLE IF NOT EXISTS {} (key text PRIMARY KEY, owner bigint NOT NULL, \
                 token bigint NOT NULL, expires_at timestamptz NOT NULL);",
                shared.locks
            ));
        }
        client.batch_execute(&schema).await.map_err(|e| {
            BackendError::Op(format!(
                "postgres {}: cannot create the lock tables: {}",
                shared.shown,
                reason(&e)
            ))
        })?;
        Ok(PgBackend {
            shared: Arc::new(shared),
            route: None,
        })
    }
}

impl Backend for PgBackend {
    type Client = PgClient;

    async fn connect(&self, node: u32) -> Result<PgClient, BackendError> {
        let mut c = PgClient {
            shared: Arc::clone(&self.shared),
            addr: routed(self.route.as_ref(), node, &self.shared.upstream),
            node,
            conn: None,
            in_flight: false,
            next_reconnect: Instant::now(),
            seq: 0,
            rng: SmallRng::seed_from_u64(self.shared.seed ^ (u64::from(node) << 24) ^ 0x7067),
        };
        c.reconnect()
            .await
            .map_err(|e| e.into_backend(&self.shared.shown))?;
        Ok(c)
    }

    async fn cleanup(&self) -> Result<(), BackendError> {
        let s = &self.shared;
        let client = s
            .open(&s.upstream)
            .await
            .map_err(|e| e.into_backend(&s.shown))?;
        client
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS {}; DROP SEQUENCE IF EXISTS {};",
                s.locks, s.seq
            ))
            .await
            .map_err(|e| {
                BackendError::Op(format!(
                    "postgres {}: cleanup failed: {}",
                    s.shown,
                    reason(&e)
                ))
            })
    }

    fn endpoints(&self) -> Vec<String> {
        vec![self.shared.shown.clone()]
    }

    fn upstreams(&self) -> Vec<String> {
        vec![self.shared.upstream.clone()]
    }

    fn set_route(&mut self, route: Route) {
        self.route = Some(route);
    }
}

/// A node's connection and the statements prepared on it.
struct Conn {
    client: Client,
    /// advisory: lock + token; lease-row: the upsert.
    acquire: Statement,
    /// advisory: unlock; lease-row: expire the owner's row.
    release: Statement,
    /// advisory: `set_config('lock_timeout', ..)`.
    set_timeout: Option<Statement>,
    /// The `lock_timeout` in force on this session, in ms.
    lock_timeout_ms: u64,
}

/// One node's own session with PostgreSQL.
pub struct PgClient {
    shared: Arc<Shared>,
    addr: String,
    node: u32,
    conn: Option<Conn>,
    /// A call was started and its future dropped before the answer: the
    /// session may hold a lock nobody knows about, so it must be replaced.
    in_flight: bool,
    next_reconnect: Instant,
    seq: u64,
    rng: SmallRng,
}

enum Try {
    Granted(u64),
    Busy,
}

impl PgClient {
    async fn reconnect(&mut self) -> Result<(), OpenError> {
        self.conn = None;
        self.in_flight = false;
        let client = self.shared.open(&self.addr).await?;
        let s = &self.shared;
        let (acquire, release) = match s.variant {
            PgVariant::Advisory => (
                format!(
                    "WITH held AS MATERIALIZED (SELECT pg_advisory_lock(hashtextextended($1, 0))) \
                     SELECT nextval('{}') FROM held",
                    s.seq
                ),
                "SELECT pg_advisory_unlock(hashtextextended($1, 0))".to_string(),
            ),
            PgVariant::LeaseRow => (
                // The NOT EXISTS gate makes a try on a held lease a plain
                // read: no row lock, no transaction id, no WAL flush. Only
                // when the lease looks free does it insert or take the row
                // lock, and then the ON CONFLICT .. WHERE decides.
                format!(
                    "INSERT INTO {t} AS l (key, owner, token, expires_at) \
                     SELECT $1, $2, nextval('{s}'), now() + $3::float8 * interval '1 millisecond' \
                     WHERE NOT EXISTS (SELECT 1 FROM {t} WHERE key = $1 AND expires_at >= now()) \
                     ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, \
                     token = nextval('{s}'), expires_at = excluded.expires_at \
                     WHERE l.expires_at < now() RETURNING token",
                    t = s.locks,
                    s = s.seq
                ),
                format!(
                    "UPDATE {} SET owner = 0, expires_at = '-infinity' \
                     WHERE key = $1 AND owner = $2",
                    s.locks
                ),
            ),
        };
        let prep = |sql: String| {
            let client = &client;
            async move {
                client.prepare(&sql).await.map_err(|e| {
                    OpenError::Refused(format!("cannot prepare `{sql}`: {}", reason(&e)))
                })
            }
        };
        let acquire = prep(acquire).await?;
        let release = prep(release).await?;
        let set_timeout = match s.variant {
            PgVariant::Advisory => {
                Some(prep("SELECT set_config('lock_timeout', $1, false)".to_string()).await?)
            }
            PgVariant::LeaseRow => None,
        };
        self.conn = Some(Conn {
            client,
            acquire,
            release,
            set_timeout,
            lock_timeout_ms: 0,
        });
        Ok(())
    }

    /// A usable connection, reconnecting if the last one broke.
    async fn ready(&mut self) -> Result<(), BackendError> {
        if self.in_flight || self.conn.as_ref().is_some_and(|c| c.client.is_closed()) {
            self.conn = None;
            self.in_flight = false;
        }
        if self.conn.is_some() {
            return Ok(());
        }
        if Instant::now() < self.next_reconnect {
            return Err(self.down("not connected (reconnecting)"));
        }
        if let Err(e) = self.reconnect().await {
            self.next_reconnect = Instant::now() + RECONNECT_BACKOFF;
            let why = match e {
                OpenError::Network(r) | OpenError::Refused(r) => r,
            };
            return Err(self.down(&why));
        }
        Ok(())
    }

    fn down(&self, why: &str) -> BackendError {
        BackendError::Op(format!(
            "postgres {} (node {}): {why}",
            self.shared.shown, self.node
        ))
    }

    fn failed(&mut self, e: &tokio_postgres::Error) -> BackendError {
        self.in_flight = false;
        if e.as_db_error().is_none() || e.is_closed() {
            self.conn = None;
        }
        self.down(&reason(e))
    }

    async fn advisory(&mut self, key: &str, timeout: Duration) -> Result<Acquired, BackendError> {
        self.ready().await?;
        let ms = u64::try_from(timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let Some(conn) = self.conn.as_mut() else {
            return Err(self.down("not connected"));
        };
        self.in_flight = true;
        if conn.lock_timeout_ms != ms
            && let Some(st) = &conn.set_timeout
        {
            // lock_timeout = 0 would mean "wait forever": ms is at least 1.
            match conn.client.query_one(st, &[&format!("{ms}ms")]).await {
                Ok(_) => conn.lock_timeout_ms = ms,
                Err(e) => return Err(self.failed(&e)),
            }
        }
        let r = tokio::time::timeout(
            timeout + SERVER_BOUND_GRACE,
            conn.client.query_one(&conn.acquire, &[&key]),
        )
        .await;
        match r {
            // The server never answered within its own bound: the session
            // may yet get the lock, so drop it (the server frees its locks).
            Err(_) => {
                self.conn = None;
                self.in_flight = false;
                Ok(Acquired::TimedOut)
            }
            Ok(Ok(row)) => {
                self.in_flight = false;
                let token: i64 = row.try_get(0).map_err(|e| self.failed(&e))?;
                Ok(Acquired::Granted(Grant {
                    token: u64::try_from(token).ok(),
                    handle: 0,
                }))
            }
            Ok(Err(e)) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
                self.in_flight = false;
                Ok(Acquired::TimedOut)
            }
            Ok(Err(e)) => Err(self.failed(&e)),
        }
    }

    async fn lease_try(&mut self, key: &str, owner: i64) -> Result<Try, BackendError> {
        self.ready().await?;
        let ttl_ms = self.shared.ttl_ms;
        let Some(conn) = self.conn.as_mut() else {
            return Err(self.down("not connected"));
        };
        self.in_flight = true;
        let r = conn
            .client
            .query_opt(&conn.acquire, &[&key, &owner, &ttl_ms])
            .await;
        self.in_flight = false;
        match r {
            Ok(None) => Ok(Try::Busy),
            Ok(Some(row)) => {
                let token: i64 = row.try_get(0).map_err(|e| self.failed(&e))?;
                Ok(Try::Granted(u64::try_from(token).unwrap_or(0)))
            }
            Err(e) => Err(self.failed(&e)),
        }
    }
}

impl LockClient for PgClient {
    async fn acquire(&mut self, key: Key<'_>, timeout: Duration) -> Result<Acquired, BackendError> {
        if self.shared.variant == PgVariant::Advisory {
            return self.advisory(key.name, timeout).await;
        }
        let deadline = Instant::now() + timeout;
        self.seq += 1;
        let owner = owner_of(self.node, self.seq);
        loop {
            let attempt =
                tokio::time::timeout_at(deadline.into(), self.lease_try(key.name, owner)).await;
            match attempt {
                Err(_) => return Ok(Acquired::TimedOut),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(Try::Granted(token))) => {
                    return Ok(Acquired::Granted(Grant {
                        token: Some(token),
                        handle: owner as u64,
                    }));
                }
                Ok(Ok(Try::Busy)) => {}
            }
            let pause = jittered(&mut self.rng, self.shared.retry);
            if Instant::now() + pause >= deadline {
                return Ok(Acquired::TimedOut);
            }
            crate::pace::sleep(pause).await;
        }
    }

    async fn release(&mut self, key: Key<'_>, grant: Grant) -> Result<Released, BackendError> {
        self.ready().await?;
        let Some(conn) = self.conn.as_mut() else {
            return Err(self.down("not connected"));
        };
        self.in_flight = true;
        let released = match self.shared.variant {
            PgVariant::Advisory => conn
                .client
                .query_one(&conn.release, &[&key.name])
                .await
                .and_then(|row| row.try_get::<_, bool>(0)),
            PgVariant::LeaseRow => conn
                .client
                .execute(&conn.release, &[&key.name, &(grant.handle as i64)])
                .await
                .map(|n| n == 1),
        };
        self.in_flight = false;
        match released {
            Ok(true) => Ok(Released::Released),
            Ok(false) => Ok(Released::LeaseLost),
            Err(e) => Err(self.failed(&e)),
        }
    }
}
