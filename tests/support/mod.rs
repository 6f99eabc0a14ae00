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
