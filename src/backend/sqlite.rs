//! `sqlite`: an expiring lease row per key in a real SQLite file, so
//! lockstorm runs against a real database with no server.
//!
//! Variant `lease-row`: each node owns its own connection. An acquire, in one
//! `BEGIN IMMEDIATE` transaction, bumps the key's token counter and upserts the
//! lease row only where the current lease has expired; it commits only when
//! the row was taken, so tokens stay dense and strictly monotonic per key. The
//! busy timeout is zero: a busy database means "not this time", and the node
//! retries after a jittered pause instead of blocking its worker thread.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior, params};

use super::{Acquired, Backend, BackendError, Grant, Key, LockClient, Released};

/// How long a release keeps retrying a busy database before it gives up.
const RELEASE_BUSY_BUDGET: Duration = Duration::from_secs(2);
/// Pause between busy retries of a release (jittered).
const RELEASE_BUSY_PAUSE: Duration = Duration::from_millis(1);
/// Busy timeout for the one-off schema work in `open` and `cleanup`.
const SETUP_BUSY_TIMEOUT: Duration = Duration::from_secs(1);

/// The embedded SQLite lock service for one run.
#[derive(Debug)]
pub struct SqliteBackend {
    path: PathBuf,
    /// The temp directory holding `path`, when lockstorm created it.
    temp_dir: Option<PathBuf>,
    locks: String,
    tokens: String,
    ttl: Duration,
    retry: Duration,
}

impl SqliteBackend {
    /// Open (creating if needed) the database and this run's tables.
    ///
    /// `path`: database file; `None` = a fresh file in a new temp dir (removed
    /// by cleanup / on drop). `run_id`: short id namespacing the tables
    /// (`lockstorm_<run_id>_locks`, `lockstorm_<run_id>_tokens`). `ttl`: lease
    /// length. `retry`: pause between failed tries (jittered ±50%).
    pub fn open(
        path: Option<&Path>,
        run_id: &str,
        ttl: Duration,
        retry: Duration,
    ) -> Result<Self, BackendError> {
        if run_id.is_empty()
            || !run_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(BackendError::Op(format!(
                "sqlite: run id `{run_id}` must be non-empty ASCII letters, digits or `_`"
            )));
        }
        let (path, temp_dir) = match path {
            Some(p) => (p.to_path_buf(), None),
            None => {
                let dir = make_temp_dir(run_id)?;
                (dir.join("lockstorm.db"), Some(dir))
            }
        };
        let backend = SqliteBackend {
            locks: format!("lockstorm_{run_id}_locks"),
            tokens: format!("lockstorm_{run_id}_tokens"),
            path,
            temp_dir,
            ttl,
            retry,
        };
        let unreachable = |reason: String| BackendError::Unreachable {
            endpoint: backend.path.display().to_string(),
            reason,
            hint: None,
        };
        let conn = Connection::open(&backend.path)
            .map_err(|e| unreachable(format!("cannot open: {e}")))?;
        let schema = format!(
            "CREATE TABLE IF NOT EXISTS \"{}\" (key TEXT PRIMARY KEY, owner INTEGER NOT NULL, \
             token INTEGER NOT NULL, expires_ms INTEGER NOT NULL);\n\
             CREATE TABLE IF NOT EXISTS \"{}\" (key TEXT PRIMARY KEY, next INTEGER NOT NULL);",
            backend.locks, backend.tokens
        );
        conn.busy_timeout(SETUP_BUSY_TIMEOUT)
            .and_then(|()| conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0)))
            .and_then(|_| conn.execute_batch("PRAGMA synchronous=NORMAL"))
            .and_then(|()| conn.execute_batch(&schema))
            .map_err(|e| unreachable(format!("cannot set up the lock tables: {e}")))?;
        Ok(backend)
    }

    fn op_error(&self, what: &str, e: rusqlite::Error) -> BackendError {
        BackendError::Op(format!("sqlite {}: {what}: {e}", self.path.display()))
    }
}

impl Drop for SqliteBackend {
    fn drop(&mut self) {
        if let Some(dir) = &self.temp_dir {
            // Best effort: cleanup may already have removed it.
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Create a fresh, uniquely named directory under the system temp dir.
fn make_temp_dir(run_id: &str) -> Result<PathBuf, BackendError> {
    let base = std::env::temp_dir();
    let mut last_err = None;
    for _ in 0..16 {
        let suffix: u64 = rand::random();
        let dir = base.join(format!(
            "lockstorm-{run_id}-{}-{suffix:016x}",
            std::process::id()
        ));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => {
                last_err = Some(e);
                break;
            }
        }
    }
    Err(BackendError::Unreachable {
        endpoint: base.display().to_string(),
        reason: format!(
            "cannot create a temp dir for the database: {}",
            last_err.map(|e| e.to_string()).unwrap_or_default()
        ),
        hint: None,
    })
}

impl Backend for SqliteBackend {
    type Client = SqliteClient;

    async fn connect(&self, node: u32) -> Result<SqliteClient, BackendError> {
        let conn = Connection::open(&self.path)
            .and_then(|c| {
                c.busy_timeout(Duration::ZERO)?;
                c.execute_batch("PRAGMA synchronous=NORMAL")?;
                Ok(c)
            })
            .map_err(|e| BackendError::Unreachable {
                endpoint: self.path.display().to_string(),
                reason: format!("node {node} cannot open the database: {e}"),
                hint: None,
            })?;
        Ok(SqliteClient {
            conn,
            node,
            seq: 0,
            path: self.path.display().to_string(),
            bump_sql: format!(
                "INSERT INTO \"{}\" (key, next) VALUES (?1, 1) \
                 ON CONFLICT(key) DO UPDATE SET next = next + 1 RETURNING next",
                self.tokens
            ),
            grant_sql: format!(
                "INSERT INTO \"{t}\" (key, owner, token, expires_ms) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT(key) DO UPDATE SET owner = excluded.owner, token = excluded.token, \
                 expires_ms = excluded.expires_ms WHERE \"{t}\".expires_ms <= ?5",
                t = self.locks
            ),
            release_sql: format!(
                "DELETE FROM \"{}\" WHERE key = ?1 AND owner = ?2",
                self.locks
            ),
            ttl_ms: i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX),
            retry: self.retry,
        })
    }

    async fn cleanup(&self) -> Result<(), BackendError> {
        if let Some(dir) = &self.temp_dir
            && !dir.exists()
        {
            return Ok(()); // already cleaned up
        }
        // Without CREATE: never conjure up an empty database to clean.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)
            .map_err(|e| self.op_error("cleanup: cannot open", e))?;
        conn.busy_timeout(SETUP_BUSY_TIMEOUT)
            .and_then(|()| {
                conn.execute_batch(&format!(
                    "DROP TABLE IF EXISTS \"{}\"; DROP TABLE IF EXISTS \"{}\";",
                    self.locks, self.tokens
                ))
            })
            .map_err(|e| self.op_error("cleanup: cannot drop the lock tables", e))?;
        drop(conn);
        if let Some(dir) = &self.temp_dir {
            std::fs::remove_dir_all(dir).map_err(|e| {
                BackendError::Op(format!(
                    "sqlite: cannot remove temp dir {}: {e}",
                    dir.display()
                ))
            })?;
        }
        Ok(())
    }

    fn endpoints(&self) -> Vec<String> {
        vec![format!("sqlite://{}", self.path.display())]
    }
}

/// One node's own connection to the database (never shared between nodes).
#[derive(Debug)]
pub struct SqliteClient {
    conn: Connection,
    node: u32,
    seq: u64,
    path: String,
    bump_sql: String,
    grant_sql: String,
    release_sql: String,
    ttl_ms: i64,
    retry: Duration,
}

/// Whether an error means another connection holds the write lock.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
}

/// Wall clock in ms since the UNIX epoch (shared by all nodes).
fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// `d` scaled by a random factor in [0.5, 1.5).
fn jitter(d: Duration) -> Duration {
    d.mul_f64(rand::random_range(0.5..1.5))
}

/// Pause for `d`, or just yield when it is zero.
async fn pause(d: Duration) {
    if d.is_zero() {
        tokio::task::yield_now().await;
    } else {
        tokio::time::sleep(d).await;
    }
}

impl SqliteClient {
    fn op_error(&self, what: &str, e: rusqlite::Error) -> BackendError {
        BackendError::Op(format!("sqlite {}: {what}: {e}", self.path))
    }

    /// One attempt: `Some(token)` when granted, `None` when held or busy.
    fn try_acquire(&mut self, key: &str, owner: i64) -> Result<Option<u64>, BackendError> {
        match self.attempt(key, owner) {
            Ok(granted) => Ok(granted),
            Err(e) if is_busy(&e) => Ok(None),
            Err(e) => Err(self.op_error(&format!("acquire of key {key:?}"), e)),
        }
    }

    fn attempt(&mut self, key: &str, owner: i64) -> rusqlite::Result<Option<u64>> {
        // Dropping `tx` without commit rolls back (token bump included).
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (token, changed) = {
            let token: i64 = tx
                .prepare_cached(&self.bump_sql)?
                .query_row(params![key], |r| r.get(0))?;
            let now = now_ms();
            let expires = now.saturating_add(self.ttl_ms);
            let changed = tx
                .prepare_cached(&self.grant_sql)?
                .execute(params![key, owner, token, expires, now])?;
            (token, changed)
        };
        if changed == 1 {
            tx.commit()?;
            Ok(Some(token as u64))
        } else {
            Ok(None)
        }
    }

    fn try_release(&mut self, key: &str, owner: i64) -> rusqlite::Result<usize> {
        self.conn
            .prepare_cached(&self.release_sql)?
            .execute(params![key, owner])
    }
}

impl LockClient for SqliteClient {
    async fn acquire(&mut self, key: Key<'_>, timeout: Duration) -> Result<Acquired, BackendError> {
        let deadline = Instant::now() + timeout;
        self.seq += 1;
        let handle = (u64::from(self.node) << 32) | (self.seq & 0xffff_ffff);
        loop {
            if let Some(token) = self.try_acquire(key.name, handle as i64)? {
                return Ok(Acquired::Granted(Grant {
                    token: Some(token),
                    handle,
                }));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Acquired::TimedOut);
            }
            pause(jitter(self.retry).min(deadline - now)).await;
        }
    }

    async fn release(&mut self, key: Key<'_>, grant: Grant) -> Result<Released, BackendError> {
        let deadline = Instant::now() + RELEASE_BUSY_BUDGET;
        loop {
            match self.try_release(key.name, grant.handle as i64) {
                Ok(1) => return Ok(Released::Released),
                Ok(_) => return Ok(Released::LeaseLost),
                Err(e) if is_busy(&e) && Instant::now() < deadline => {}
                Err(e) if is_busy(&e) => {
                    let what = format!(
                        "release of key {:?} stayed busy for {RELEASE_BUSY_BUDGET:?}",
                        key.name
                    );
                    return Err(self.op_error(&what, e));
                }
                Err(e) => return Err(self.op_error(&format!("release of key {:?}", key.name), e)),
            }
            pause(jitter(RELEASE_BUSY_PAUSE)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Mutex};

    const LONG: Duration = Duration::from_secs(10);

    fn key(name: &str) -> Key<'_> {
        Key { index: 0, name }
    }

    fn granted(a: Acquired) -> Grant {
        match a {
            Acquired::Granted(g) => g,
            Acquired::TimedOut => panic!("expected a grant, timed out"),
        }
    }

    fn tables(path: &Path) -> Vec<String> {
        let conn = Connection::open(path).unwrap();
        let mut st = conn
            .prepare("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn second_client_waits_then_gets_a_higher_token() {
        let b = SqliteBackend::open(None, "t1", LONG, Duration::from_millis(2)).unwrap();
        let dir = b.temp_dir.clone().unwrap();
        assert!(b.endpoints()[0].starts_with("sqlite://"));
        let (mut a, mut c) = (b.connect(0).await.unwrap(), b.connect(1).await.unwrap());
        let ga = granted(a.acquire(key("k"), LONG).await.unwrap());
        let t = Instant::now();
        assert_eq!(
            c.acquire(key("k"), Duration::from_millis(50))
                .await
                .unwrap(),
            Acquired::TimedOut
        );
        assert!(t.elapsed() >= Duration::from_millis(50));
        assert_eq!(a.release(key("k"), ga).await.unwrap(), Released::Released);
        let gc = granted(c.acquire(key("k"), LONG).await.unwrap());
        assert!(gc.token > ga.token);
        assert_ne!(gc.handle, ga.handle);
        assert_eq!(c.release(key("k"), gc).await.unwrap(), Released::Released);
        drop((a, c));
        b.cleanup().await.unwrap();
        assert!(!dir.exists());
        b.cleanup().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn expired_lease_is_taken_over_and_lost() {
        let b = SqliteBackend::open(
            None,
            "t2",
            Duration::from_millis(50),
            Duration::from_millis(2),
        )
        .unwrap();
        let (mut a, mut c) = (b.connect(0).await.unwrap(), b.connect(1).await.unwrap());
        let ga = granted(a.acquire(key("k"), LONG).await.unwrap());
        tokio::time::sleep(Duration::from_millis(80)).await;
        let gc = granted(c.acquire(key("k"), Duration::from_secs(1)).await.unwrap());
        assert!(gc.token > ga.token);
        assert_eq!(a.release(key("k"), ga).await.unwrap(), Released::LeaseLost);
        assert_eq!(c.release(key("k"), gc).await.unwrap(), Released::Released);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn contention_never_overlaps_and_tokens_increase() {
        let b = Arc::new(SqliteBackend::open(None, "t3", LONG, Duration::from_millis(1)).unwrap());
        let holders = Arc::new(AtomicU32::new(0));
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for node in 0..8 {
            let mut client = b.connect(node).await.unwrap();
            let (holders, order) = (Arc::clone(&holders), Arc::clone(&order));
            tasks.push(tokio::spawn(async move {
                for _ in 0..200 {
                    let g = loop {
                        if let Acquired::Granted(g) =
                            client.acquire(key("hot"), LONG).await.unwrap()
                        {
                            break g;
                        }
                    };
                    assert_eq!(
                        holders.fetch_add(1, Ordering::SeqCst),
                        0,
                        "two holders at once"
                    );
                    order.lock().unwrap().push(g.token.unwrap());
                    tokio::task::yield_now().await;
                    holders.fetch_sub(1, Ordering::SeqCst);
                    assert_eq!(
                        client.release(key("hot"), g).await.unwrap(),
                        Released::Released
                    );
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap();
        assert_eq!(order.len(), 1600);
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "tokens not strictly increasing"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cleanup_drops_only_our_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE other (v TEXT); INSERT INTO other VALUES ('keep');")
                .unwrap();
        }
        let b = SqliteBackend::open(Some(&path), "ab12", LONG, Duration::from_millis(2)).unwrap();
        assert_eq!(
            tables(&path),
            ["lockstorm_ab12_locks", "lockstorm_ab12_tokens", "other"]
        );
        let mut a = b.connect(0).await.unwrap();
        let g = granted(a.acquire(key("k"), LONG).await.unwrap());
        assert_eq!(a.release(key("k"), g).await.unwrap(), Released::Released);
        drop(a);
        b.cleanup().await.unwrap();
        assert_eq!(tables(&path), ["other"]);
        let conn = Connection::open(&path).unwrap();
        let v: String = conn
            .query_row("SELECT v FROM other", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, "keep");
        drop(b);
        assert!(path.exists());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hostile_key_is_just_a_value() {
        let b = SqliteBackend::open(None, "t5", LONG, Duration::from_millis(2)).unwrap();
        let mut a = b.connect(0).await.unwrap();
        let k = key(r#"it's "k"; DROP TABLE x; --"#);
        let g1 = granted(a.acquire(k, LONG).await.unwrap());
        assert_eq!(g1.token, Some(1));
        assert_eq!(a.release(k, g1).await.unwrap(), Released::Released);
        let g2 = granted(a.acquire(k, LONG).await.unwrap());
        assert_eq!(g2.token, Some(2));
        assert_eq!(a.release(k, g2).await.unwrap(), Released::Released);
        assert_eq!(tables(&b.path).len(), 2);
    }

    #[test]
    fn bad_run_id_and_unopenable_path_are_errors() {
        assert!(matches!(
            SqliteBackend::open(None, "a\"b", LONG, LONG),
            Err(BackendError::Op(_))
        ));
        let bad = Path::new("/nonexistent-dir-lockstorm/x/db.sqlite");
        let err = SqliteBackend::open(Some(bad), "ab", LONG, LONG).unwrap_err();
        assert!(
            matches!(err, BackendError::Unreachable { hint: None, .. }),
            "{err:?}"
        );
    }
}
