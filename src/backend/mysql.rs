//! `mysql`: locks in MySQL / MariaDB, one connection (session) per node.
//!
//! What a run creates, in the URL's database: `lockstorm_<run-id>_locks`
//! (`lease-row`) or `lockstorm_<run-id>_seed` (`seed-upsert`); `get-lock`
//! creates nothing (its lock names, `lockstorm:<run-id>:<key>`, vanish with
//! the sessions). `cleanup` drops exactly those tables. Keys and every other
//! value are bound parameters of prepared statements; only the table names,
//! built from the checked run id, are spliced into SQL text.
//!
//! Variants:
//! - `get-lock`: `GET_LOCK(name, timeout)` (waits in the server up to the
//!   acquire timeout; 1 = granted, 0 = timed out) and `RELEASE_LOCK(name)`.
//!   Session-based; no fencing token.
//! - `lease-row`: a row per key (owner, token, `expires_at`). Acquire is one
//!   `INSERT .. ON DUPLICATE KEY UPDATE` whose every assignment is
//!   `IF(expires_at < NOW(6), new, old)` (`expires_at` assigned last, so the
//!   test sees the old value throughout). Affected rows say what happened
//!   (1 inserted, 2 taken over, 0 still held), and the token — the key's
//!   previous token + 1, under the row lock — comes back in the OK packet
//!   through `LAST_INSERT_ID(expr)`. A plain `SELECT` first skips the upsert
//!   while the lease is live (the upsert locks the row and commits a write
//!   even when it changes nothing). Release expires only the owner's row.
//! - `seed-upsert` (unsafe): the recipe many articles give —
//!   `INSERT .. (lock_key, acquire_time) .. ON DUPLICATE KEY UPDATE
//!   acquire_time = NOW()`, and an `UPDATE` as release. The upsert succeeds
//!   whether or not someone holds the key, so it never excludes anyone.
//!   (The articles also format the key into the SQL string; here it is bound,
//!   so the only bug shown is the one in the locking logic.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn as MyConn, Opts, OptsBuilder, Statement};
use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::redis::jittered;
use super::sql::{
    CONNECT_TIMEOUT, RECONNECT_BACKOFF, SERVER_BOUND_GRACE, check_run_id, join_host_port, one_line,
    owner_of, routed, split_host_port,
};
use super::{Acquired, Backend, BackendError, Grant, Key, LockClient, Released, Route, redact};

/// Command that starts the default server.
pub const HINT: &str = "scripts/backends up mysql";

/// Which `mysql` behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MyVariant {
    /// GET_LOCK / RELEASE_LOCK.
    GetLock,
    /// Expiring row per key.
    LeaseRow,
    /// INSERT .. ON DUPLICATE KEY UPDATE: never excludes.
    SeedUpsert,
}

impl MyVariant {
    /// From the catalog name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "get-lock" => Some(Self::GetLock),
            "lease-row" => Some(Self::LeaseRow),
            "seed-upsert" => Some(Self::SeedUpsert),
            _ => None,
        }
    }
}

/// The text of a MySQL error, on one line.
pub fn reason(e: &mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Server(s) => one_line(&format!("{} (error {})", s.message, s.code)),
        other => one_line(&other.to_string()),
    }
}

/// Why opening a connection failed.
#[derive(Debug)]
enum OpenError {
    /// Nothing answered (refused, timed out, closed during the handshake).
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
            OpenError::Refused(reason) => BackendError::Op(format!("mysql {shown}: {reason}")),
        }
    }

    fn reason(self) -> String {
        match self {
            OpenError::Network(r) | OpenError::Refused(r) => r,
        }
    }
}

/// What every client of a run shares.
#[derive(Debug)]
struct Shared {
    opts: Opts,
    /// URL with the password redacted.
    shown: String,
    /// The server as `host:port`.
    upstream: String,
    variant: MyVariant,
    /// `` `lockstorm_<run>_locks` `` or `` `lockstorm_<run>_seed` ``, quoted.
    table: String,
    ttl_us: i64,
    retry: Duration,
    seed: u64,
}

impl Shared {
    /// Open one connection to `addr` (`host:port`).
    async fn open(&self, addr: &str) -> Result<MyConn, OpenError> {
        let (host, port) = split_host_port(addr)
            .ok_or_else(|| OpenError::Refused(format!("bad address `{addr}`")))?;
        let opts = OptsBuilder::from_opts(self.opts.clone())
            .ip_or_hostname(host)
            .tcp_port(port)
            // Else the driver switches to the server's unix socket when it
            // sees a loopback address, bypassing the route (fault proxy).
            .prefer_socket(false)
            .tcp_nodelay(true);
        match tokio::time::timeout(CONNECT_TIMEOUT, MyConn::new(opts)).await {
            Err(_) => Err(OpenError::Network(format!(
                "no connection within {CONNECT_TIMEOUT:?}"
            ))),
            Ok(Err(e @ mysql_async::Error::Server(_))) => Err(OpenError::Refused(reason(&e))),
            Ok(Err(e)) => Err(OpenError::Network(reason(&e))),
            Ok(Ok(c)) => Ok(c),
        }
    }
}

/// The `mysql` backend of one run.
pub struct MyBackend {
    shared: Arc<Shared>,
    route: Option<Route>,
}

impl std::fmt::Debug for MyBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MyBackend")
            .field("shared", &self.shared)
            .field("routed", &self.route.is_some())
            .finish()
    }
}

impl MyBackend {
    /// Check that `url` answers and accepts us, and create the run's table.
    pub async fn open(
        url: &str,
        variant: MyVariant,
        run_id: &str,
        ttl: Duration,
        retry: Duration,
        seed: u64,
    ) -> Result<Self, BackendError> {
        check_run_id("mysql", run_id)?;
        let shown = redact(url);
        let opts = Opts::from_url(url)
            .map_err(|e| BackendError::Op(format!("mysql {shown}: not a valid URL: {e}")))?;
        if opts.db_name().is_none() && variant != MyVariant::GetLock {
            return Err(BackendError::Op(format!(
                "mysql {shown}: the URL names no database for the lock table \
                 (e.g. mysql://root@127.0.0.1:3306/mysql)"
            )));
        }
        let shared = Shared {
            upstream: join_host_port(opts.ip_or_hostname(), opts.tcp_port()),
            opts,
            shown,
            variant,
            table: match variant {
                MyVariant::SeedUpsert => format!("`lockstorm_{run_id}_seed`"),
                _ => format!("`lockstorm_{run_id}_locks`"),
            },
            ttl_us: i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX),
            retry,
            seed,
        };
        let mut conn = shared
            .open(&shared.upstream)
            .await
            .map_err(|e| e.into_backend(&shared.shown))?;
        let schema = match variant {
            MyVariant::GetLock => None,
            MyVariant::LeaseRow => Some(format!(
                "CREATE TABLE IF NOT EXISTS {} (k VARBINARY(255) PRIMARY KEY, \
                 owner BIGINT NOT NULL, token BIGINT NOT NULL, expires_at DATETIME(6) NOT NULL) \
                 ENGINE=InnoDB",
                shared.table
            )),
            MyVariant::SeedUpsert => Some(format!(
                "CREATE TABLE IF NOT EXISTS {} (lock_key VARCHAR(255) PRIMARY KEY, \
                 acquire_time DATETIME(6) NOT NULL, release_time DATETIME(6) NULL) \
                 ENGINE=InnoDB",
                shared.table
            )),
        };
        if let Some(schema) = schema {
            conn.query_drop(schema).await.map_err(|e| {
                BackendError::Op(format!(
                    "mysql {}: cannot create the lock table: {}",
                    shared.shown,
                    reason(&e)
                ))
            })?;
        }
        let _ = conn.disconnect().await;
        Ok(MyBackend {
            shared: Arc::new(shared),
            route: None,
        })
    }
}

impl Backend for MyBackend {
    type Client = MyClient;

    async fn connect(&self, node: u32) -> Result<MyClient, BackendError> {
        let mut c = MyClient {
            shared: Arc::clone(&self.shared),
            addr: routed(self.route.as_ref(), node, &self.shared.upstream),
            node,
            conn: None,
            in_flight: false,
            next_reconnect: Instant::now(),
            seq: 0,
            rng: SmallRng::seed_from_u64(self.shared.seed ^ (u64::from(node) << 24) ^ 0x6d79),
        };
        c.reconnect()
            .await
            .map_err(|e| e.into_backend(&self.shared.shown))?;
        Ok(c)
    }

    async fn cleanup(&self) -> Result<(), BackendError> {
        let s = &self.shared;
        if s.variant == MyVariant::GetLock {
            return Ok(());
        }
        let mut conn = s
            .open(&s.upstream)
            .await
            .map_err(|e| e.into_backend(&s.shown))?;
        let r = conn
            .query_drop(format!("DROP TABLE IF EXISTS {}", s.table))
            .await;
        let _ = conn.disconnect().await;
        r.map_err(|e| {
            BackendError::Op(format!("mysql {}: cleanup failed: {}", s.shown, reason(&e)))
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
    conn: MyConn,
    acquire: Statement,
    release: Statement,
    /// lease-row: is the key's lease live? (a lock-free consistent read)
    held: Option<Statement>,
}

/// One node's own session with MySQL / MariaDB.
pub struct MyClient {
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
    Granted(Option<u64>),
    Busy,
}

impl MyClient {
    async fn reconnect(&mut self) -> Result<(), OpenError> {
        self.conn = None;
        self.in_flight = false;
        let mut conn = self.shared.open(&self.addr).await?;
        let t = &self.shared.table;
        let (acquire, release) = match self.shared.variant {
            MyVariant::GetLock => (
                "SELECT GET_LOCK(?, ?)".to_string(),
                "SELECT RELEASE_LOCK(?)".to_string(),
            ),
            MyVariant::LeaseRow => (
                format!(
                    "INSERT INTO {t} (k, owner, token, expires_at) \
                     VALUES (?, ?, LAST_INSERT_ID(1), NOW(6) + INTERVAL ? MICROSECOND) \
                     ON DUPLICATE KEY UPDATE \
                     token = IF(expires_at < NOW(6), LAST_INSERT_ID(token + 1), token), \
                     owner = IF(expires_at < NOW(6), VALUES(owner), owner), \
                     expires_at = IF(expires_at < NOW(6), VALUES(expires_at), expires_at)"
                ),
                format!(
                    "UPDATE {t} SET owner = 0, expires_at = '1000-01-01' WHERE k = ? AND owner = ?"
                ),
            ),
            MyVariant::SeedUpsert => (
                // The recipe: "insert, or refresh the time if it exists".
                format!(
                    "INSERT INTO {t} (lock_key, acquire_time) VALUES (?, NOW(6)) \
                     ON DUPLICATE KEY UPDATE acquire_time = NOW(6)"
                ),
                format!("UPDATE {t} SET release_time = NOW(6) WHERE lock_key = ?"),
            ),
        };
        let prep = |e: mysql_async::Error, sql: &str| {
            OpenError::Refused(format!("cannot prepare `{sql}`: {}", reason(&e)))
        };
        let a = conn.prep(&acquire).await.map_err(|e| prep(e, &acquire))?;
        let r = conn.prep(&release).await.map_err(|e| prep(e, &release))?;
        let held = match self.shared.variant {
            MyVariant::LeaseRow => {
                let sql = format!("SELECT expires_at >= NOW(6) FROM {t} WHERE k = ?");
                Some(conn.prep(&sql).await.map_err(|e| prep(e, &sql))?)
            }
            _ => None,
        };
        self.conn = Some(Conn {
            conn,
            acquire: a,
            release: r,
            held,
        });
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
        if Instant::now() < self.next_reconnect {
            return Err(self.down("not connected (reconnecting)"));
        }
        if let Err(e) = self.reconnect().await {
            self.next_reconnect = Instant::now() + RECONNECT_BACKOFF;
            return Err(self.down(&e.reason()));
        }
        Ok(())
    }

    fn down(&self, why: &str) -> BackendError {
        BackendError::Op(format!(
            "mysql {} (node {}): {why}",
            self.shared.shown, self.node
        ))
    }

    fn failed(&mut self, e: &mysql_async::Error) -> BackendError {
        self.in_flight = false;
        if !matches!(e, mysql_async::Error::Server(_)) {
            self.conn = None;
        }
        self.down(&reason(e))
    }

    async fn get_lock(&mut self, key: &str, timeout: Duration) -> Result<Acquired, BackendError> {
        self.ready().await?;
        let Some(c) = self.conn.as_mut() else {
            return Err(self.down("not connected"));
        };
        self.in_flight = true;
        let call = c
            .conn
            .exec_first::<Option<i64>, _, _>(&c.acquire, (key, timeout.as_secs_f64()));
        match tokio::time::timeout(timeout + SERVER_BOUND_GRACE, call).await {
            // The server did not answer within its own bound: the session
            // may yet get the lock, so drop it (the server frees its locks).
            Err(_) => {
                self.conn = None;
                self.in_flight = false;
                Ok(Acquired::TimedOut)
            }
            Ok(Ok(Some(Some(1)))) => {
                self.in_flight = false;
                Ok(Acquired::Granted(Grant {
                    token: None,
                    handle: 0,
                }))
            }
            Ok(Ok(Some(Some(0)))) => {
                self.in_flight = false;
                Ok(Acquired::TimedOut)
            }
            Ok(Ok(other)) => {
                self.in_flight = false;
                Err(self.down(&format!("GET_LOCK returned {other:?}")))
            }
            Ok(Err(e)) => Err(self.failed(&e)),
        }
    }

    async fn try_once(&mut self, key: &str, owner: i64) -> Result<Try, BackendError> {
        self.ready().await?;
        let (variant, ttl_us) = (self.shared.variant, self.shared.ttl_us);
        let Some(c) = self.conn.as_mut() else {
            return Err(self.down("not connected"));
        };
        self.in_flight = true;
        if let Some(held) = &c.held {
            // Polling a held lease with the upsert would take InnoDB's row
            // lock and commit a write every time; a plain read takes none.
            match c.conn.exec_first::<Option<i64>, _, _>(held, (key,)).await {
                Ok(Some(Some(1))) => {
                    self.in_flight = false;
                    return Ok(Try::Busy);
                }
                Ok(_) => {}
                Err(e) => return Err(self.failed(&e)),
            }
        }
        let r = match variant {
            MyVariant::LeaseRow => c.conn.exec_drop(&c.acquire, (key, owner, ttl_us)).await,
            _ => c.conn.exec_drop(&c.acquire, (key,)).await,
        };
        self.in_flight = false;
        if let Err(e) = r {
            return Err(self.failed(&e));
        }
        Ok(match variant {
            // 1: inserted, 2: an expired row taken over, 0: still held.
            MyVariant::LeaseRow => match c.conn.affected_rows() {
                0 => Try::Busy,
                _ => Try::Granted(c.conn.last_insert_id()),
            },
            // The bug on show: the upsert "succeeds" every time.
            _ => Try::Granted(None),
        })
    }
}

impl LockClient for MyClient {
    async fn acquire(&mut self, key: Key<'_>, timeout: Duration) -> Result<Acquired, BackendError> {
        if self.shared.variant == MyVariant::GetLock {
            return self.get_lock(key.name, timeout).await;
        }
        let deadline = Instant::now() + timeout;
        self.seq += 1;
        let owner = owner_of(self.node, self.seq);
        loop {
            let attempt =
                tokio::time::timeout_at(deadline.into(), self.try_once(key.name, owner)).await;
            match attempt {
                Err(_) => return Ok(Acquired::TimedOut),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(Try::Granted(token))) => {
                    return Ok(Acquired::Granted(Grant {
                        token,
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
        let variant = self.shared.variant;
        let Some(c) = self.conn.as_mut() else {
            return Err(self.down("not connected"));
        };
        self.in_flight = true;
        let r = match variant {
            // 1: released; 0: not ours; NULL: no such lock.
            MyVariant::GetLock => c
                .conn
                .exec_first::<Option<i64>, _, _>(&c.release, (key.name,))
                .await
                .map(|v| v.flatten() == Some(1)),
            MyVariant::LeaseRow => c
                .conn
                .exec_drop(&c.release, (key.name, grant.handle as i64))
                .await
                .map(|()| c.conn.affected_rows() == 1),
            // The recipe's release never checks whose lock it is.
            MyVariant::SeedUpsert => c
                .conn
                .exec_drop(&c.release, (key.name,))
                .await
                .map(|()| true),
        };
        self.in_flight = false;
        match r {
            Ok(true) => Ok(Released::Released),
            Ok(false) => Ok(Released::LeaseLost),
            Err(e) => Err(self.failed(&e)),
        }
    }
}
