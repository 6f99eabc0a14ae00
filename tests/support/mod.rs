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
    eprintln!("SKIPPED: {name} does not answer on {addr} (run `scripts/backends up {name}`, or scripts/test)");
    false
}
