//! Shared by the integration tests that talk to real servers.
//!
//! Those tests need the servers `scripts/backends up` starts. `scripts/test`
//! starts them and sets `LOCKSTORM_REQUIRE_BACKENDS=1`, so in CI a missing
//! server fails the test. Run alone (`cargo test`) without the servers, such
//! a test says it is skipping and passes vacuously — run `scripts/test` for
//! the real thing.
#![allow(dead_code)]

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Whether `addr` (host:port) accepts a TCP connection. When it does not and
/// `LOCKSTORM_REQUIRE_BACKENDS` is set, panics with the command that starts it.
pub fn server_up(name: &str, addr: &str) -> bool {
    let up = addr
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok());
    if up {
        return true;
    }
    if std::env::var_os("LOCKSTORM_REQUIRE_BACKENDS").is_some_and(|v| v != "0") {
        panic!("{name} does not answer on {addr}; start it with `scripts/backends up {name}`");
    }
    eprintln!(
        "SKIPPED: {name} does not answer on {addr} (run `scripts/backends up {name}`, or scripts/test)"
    );
    false
}

/// A port nothing listens on right now (the OS picked it; a small race).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the OS hands out a free loopback port")
}

/// A private `redis-server` on its own port, for tests that stop and start
/// a server mid-run without disturbing the shared one. Killed on drop.
pub struct PrivateRedis {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    /// Start one on a free port, or `None` (with a skip message, or a panic
    /// under LOCKSTORM_REQUIRE_BACKENDS) if `redis-server` is not installed.
    pub fn start() -> Option<PrivateRedis> {
        let mut r = PrivateRedis {
            port: free_port(),
            child: None,
        };
        if !r.restart() {
            if std::env::var_os("LOCKSTORM_REQUIRE_BACKENDS").is_some_and(|v| v != "0") {
                panic!("redis-server is not installed; run `scripts/backends up redis`");
            }
            eprintln!("SKIPPED: redis-server is not installed (run `scripts/backends up redis`)");
            return None;
        }
        Some(r)
    }

    /// The URL to use in a scenario.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stop it (SIGKILL, like a crash) and wait until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port (empty: no persistence). False if
    /// redis-server could not be started.
    pub fn restart(&mut self) -> bool {
        self.stop();
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let Ok(child) = child else { return false };
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", self.port);
        for _ in 0..100 {
            if TcpStream::connect(&addr).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A private single-member etcd on free client and peer ports with its data
/// in a temp dir, for tests that kill and restart it mid-run. Killed on drop.
pub struct PrivateEtcd {
    /// Client port on 127.0.0.1.
    pub port: u16,
    peer_port: u16,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl PrivateEtcd {
    /// Start one, or `None` (with a skip message, or a panic under
    /// LOCKSTORM_REQUIRE_BACKENDS) if `etcd` is not installed.
    pub fn start() -> Option<PrivateEtcd> {
        let mut e = PrivateEtcd {
            port: free_port(),
            peer_port: free_port(),
            dir: tempfile::tempdir().expect("a temp dir"),
            child: None,
        };
        if !e.restart() {
            if std::env::var_os("LOCKSTORM_REQUIRE_BACKENDS").is_some_and(|v| v != "0") {
                panic!("etcd does not start; run `scripts/backends up etcd`");
            }
            eprintln!("SKIPPED: etcd is not installed (run `scripts/backends up etcd`)");
            return None;
        }
        Some(e)
    }

    /// The URL to use in a scenario.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stop it (SIGKILL, like a crash) and wait until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same ports and data. False if it did not come up.
    pub fn restart(&mut self) -> bool {
        self.stop();
        let client = format!("http://127.0.0.1:{}", self.port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::File::create(self.dir.path().join("etcd.log")).ok();
        let mut cmd = std::process::Command::new("etcd");
        cmd.args(["--name", "n1", "--data-dir"])
            .arg(self.dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .arg("--initial-cluster")
            .arg(format!("n1={peer}"))
            .stdout(std::process::Stdio::null());
        match log {
            Some(f) => cmd.stderr(f),
            None => cmd.stderr(std::process::Stdio::null()),
        };
        let Ok(child) = cmd.spawn() else { return false };
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", self.port);
        for _ in 0..100 {
            if TcpStream::connect(&addr).is_ok() {
                // Listening comes before the member has elected itself.
                std::thread::sleep(Duration::from_millis(300));
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for PrivateEtcd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether tests must fail (not skip) when a server is missing.
fn required() -> bool {
    std::env::var_os("LOCKSTORM_REQUIRE_BACKENDS").is_some_and(|v| v != "0")
}

/// Skip (or, under LOCKSTORM_REQUIRE_BACKENDS, fail) because `why`.
fn skip_private(name: &str, why: &str) {
    if required() {
        panic!("{why}; run `scripts/backends up {name}`");
    }
    eprintln!("SKIPPED: {why} (run `scripts/backends up {name}`)");
}

/// Run `cmd` to completion with its output in `log`; whether it succeeded.
fn run_logged(cmd: &mut std::process::Command, log: &std::path::Path) -> bool {
    let Ok(out) = std::fs::File::create(log) else {
        return false;
    };
    let Ok(err) = out.try_clone() else {
        return false;
    };
    cmd.stdout(out)
        .stderr(err)
        .status()
        .is_ok_and(|s| s.success())
}

/// Wait until `127.0.0.1:port` accepts connections (up to `limit`).
fn wait_listening(port: u16, limit: Duration) -> bool {
    let t = std::time::Instant::now();
    while t.elapsed() < limit {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Send `sig` (e.g. "INT", "KILL") to `pid` and wait for it to exit.
fn signal_and_wait(child: &mut std::process::Child, sig: &str) {
    let _ = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status();
    for _ in 0..200 {
        if child.try_wait().is_ok_and(|s| s.is_some()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A private PostgreSQL (own data dir in a tempdir, own free port), for
/// tests that stop the server mid-run. Runs as the `postgres` user (it
/// refuses root); stopped by PID on drop, never touching the shared one.
pub struct PrivatePostgres {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl PrivatePostgres {
    /// initdb and start one, or `None` (skip message, or panic under
    /// LOCKSTORM_REQUIRE_BACKENDS) if PostgreSQL is not installed.
    pub fn start() -> Option<PrivatePostgres> {
        use std::os::unix::fs::PermissionsExt;
        let bin = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .filter(|p| p.join("postgres").exists())
                .max()
        });
        let Some(bin) = bin else {
            skip_private("postgres", "PostgreSQL is not installed");
            return None;
        };
        let dir = tempfile::tempdir().expect("a temp dir");
        let data = dir.path().join("data");
        let owned = std::process::Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        let _ = std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755));
        let ok = owned
            && run_logged(
                std::process::Command::new("setpriv")
                    .args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
                    .arg(bin.join("initdb"))
                    .arg("-D")
                    .arg(&data)
                    .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"]),
                &dir.path().join("initdb.log"),
            );
        if !ok {
            skip_private(
                "postgres",
                "cannot initdb a private PostgreSQL (need root and setpriv)",
            );
            return None;
        }
        let mut pg = PrivatePostgres {
            port: free_port(),
            dir,
            bin,
            child: None,
        };
        if !pg.restart() {
            skip_private("postgres", "the private PostgreSQL did not start");
            return None;
        }
        Some(pg)
    }

    /// The URL to use in a scenario.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stop it (SIGINT: fast shutdown, sessions cut) and wait until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal_and_wait(&mut c, "INT");
        }
    }

    /// Start it (again) on the same port; false if it does not answer.
    pub fn restart(&mut self) -> bool {
        self.stop();
        let log = std::fs::File::create(self.dir.path().join("postgres.log"));
        let Ok(log) = log else { return false };
        let Ok(err) = log.try_clone() else {
            return false;
        };
        let child = std::process::Command::new("setpriv")
            .args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
            .arg(self.bin.join("postgres"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", &format!("port={}", self.port)])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.dir.path().display()
            ))
            .stdout(log)
            .stderr(err)
            .spawn();
        let Ok(child) = child else { return false };
        self.child = Some(child);
        // Listening is not ready: it answers "starting up" for a while.
        let t = std::time::Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            let ready = std::process::Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A private MariaDB (own data dir in a tempdir, own free port), for tests
/// that stop the server mid-run; stopped by PID on drop.
pub struct PrivateMariadb {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl PrivateMariadb {
    /// Install a data dir and start one, or `None` (skip message, or panic
    /// under LOCKSTORM_REQUIRE_BACKENDS) if MariaDB is not installed.
    pub fn start() -> Option<PrivateMariadb> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("a temp dir");
        let data = dir.path().join("data");
        let _ = std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755));
        let owned = std::process::Command::new("chown")
            .args(["-R", "mysql:mysql"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        let ok = owned
            && run_logged(
                std::process::Command::new("mariadb-install-db")
                    .arg("--no-defaults")
                    .arg("--user=mysql")
                    .arg(format!("--datadir={}", data.display()))
                    .args(["--auth-root-authentication-method=normal", "--skip-test-db"]),
                &dir.path().join("install.log"),
            );
        if !ok {
            skip_private("mysql", "cannot install a private MariaDB data dir");
            return None;
        }
        let mut db = PrivateMariadb {
            port: free_port(),
            dir,
            child: None,
        };
        if !db.restart() {
            skip_private("mysql", "the private MariaDB did not start");
            return None;
        }
        Some(db)
    }

    /// The URL to use in a scenario.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/mysql", self.port)
    }

    /// Stop it (SIGKILL, like a crash) and wait until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal_and_wait(&mut c, "KILL");
        }
    }

    /// Start it (again) on the same port; false if it does not answer.
    pub fn restart(&mut self) -> bool {
        self.stop();
        let d = self.dir.path();
        let child = std::process::Command::new("mariadbd")
            .arg("--no-defaults")
            .arg("--user=mysql")
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--port={}", self.port))
            .arg(format!("--socket={}", d.join("sock").display()))
            .arg(format!("--pid-file={}", d.join("pid").display()))
            .arg("--skip-log-bin")
            .arg(format!("--log-error={}", d.join("error.log").display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let Ok(child) = child else { return false };
        self.child = Some(child);
        wait_listening(self.port, Duration::from_secs(20))
    }
}

impl Drop for PrivateMariadb {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback TCP forwarder to `upstream` (a stand-in for the fault proxy):
/// its `host:port`, the number of connections it accepted, and the number of
/// bytes it carried in both directions.
pub async fn forwarder(
    upstream: &str,
) -> (
    String,
    std::sync::Arc<std::sync::atomic::AtomicU64>,
    std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn pump(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        bytes: Arc<AtomicU64>,
    ) {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0 || to.write_all(&buf[..n]).await.is_err() {
                break;
            }
            bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
        let _ = to.shutdown().await;
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("bound").to_string();
    let (accepted, bytes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (acc, byt, upstream) = (
        Arc::clone(&accepted),
        Arc::clone(&bytes),
        upstream.to_string(),
    );
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            acc.fetch_add(1, Ordering::Relaxed);
            let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                continue;
            };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pump(cr, sw, Arc::clone(&byt)));
            tokio::spawn(pump(sr, cw, Arc::clone(&byt)));
        }
    });
    (addr, accepted, bytes)
}
