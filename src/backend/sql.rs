//! What the two SQL backends (`postgres`, `mysql`) share: table naming from
//! the run id, the per-grant owner value, routing through the fault proxy,
//! and the connect / reconnect timings.

use std::time::Duration;

use super::{BackendError, Route};

/// How long opening one connection (TCP + handshake + login) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// After a failed reconnect, wait this long before trying again.
pub const RECONNECT_BACKOFF: Duration = Duration::from_millis(250);
/// Extra time a blocking lock call (`pg_advisory_lock` under `lock_timeout`,
/// `GET_LOCK(name, timeout)`) gets on the client beyond the server-side bound
/// before the client gives up on the connection.
pub const SERVER_BOUND_GRACE: Duration = Duration::from_secs(2);

/// Check that `run_id` is safe to splice into a table name (ASCII letters,
/// digits, `_`): identifiers cannot be bound as parameters, values always are.
pub fn check_run_id(kind: &str, run_id: &str) -> Result<(), BackendError> {
    if run_id.is_empty()
        || run_id.len() > 32
        || !run_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(BackendError::Op(format!(
            "{kind}: run id `{run_id}` must be 1 to 32 ASCII letters, digits or `_`"
        )));
    }
    Ok(())
}

/// The owner value of a node's `seq`-th acquire: unique per grant in a run.
pub fn owner_of(node: u32, seq: u64) -> i64 {
    // Node in the high half, sequence in the low: positive for node < 2^31.
    ((u64::from(node & 0x7fff_ffff) << 32) | (seq & 0xffff_ffff)) as i64
}

/// Where `node` connects: the fault proxy's listener when a route is set
/// and has one for `upstream`, else `upstream` itself (`host:port`).
pub fn routed(route: Option<&Route>, node: u32, upstream: &str) -> String {
    route
        .and_then(|r| r(node, upstream))
        .unwrap_or_else(|| upstream.to_string())
}

/// Split a `host:port` into its parts (`[v6]:port` too).
pub fn split_host_port(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Some((host, port.parse().ok()?))
}

/// `host:port` for a host and port (brackets around an IPv6 address).
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// One line: newlines in server messages become spaces.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn run_ids_are_checked_before_they_reach_sql() {
        assert!(check_run_id("postgres", "ab12_cd").is_ok());
        for bad in ["", "a\"b", "a;b", "a b", "x'--", &"a".repeat(33)] {
            assert!(check_run_id("postgres", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn owners_are_unique_and_positive() {
        assert_eq!(owner_of(0, 1), 1);
        assert_eq!(owner_of(1, 1), (1 << 32) | 1);
        assert!(owner_of(u32::MAX, u64::MAX) > 0);
        assert_ne!(owner_of(2, 5), owner_of(3, 5));
    }

    #[test]
    fn routes_and_addresses() {
        assert_eq!(split_host_port("127.0.0.1:5432"), Some(("127.0.0.1", 5432)));
        assert_eq!(split_host_port("[::1]:3306"), Some(("::1", 3306)));
        assert_eq!(split_host_port("nohost"), None);
        assert_eq!(join_host_port("::1", 3306), "[::1]:3306");
        assert_eq!(routed(None, 3, "127.0.0.1:5432"), "127.0.0.1:5432");
        let r: Route = Arc::new(|n, up| (n == 3).then(|| format!("proxy-for-{up}")));
        assert_eq!(routed(Some(&r), 3, "a:1"), "proxy-for-a:1");
        assert_eq!(routed(Some(&r), 4, "a:1"), "a:1");
        assert_eq!(one_line("a\nDETAIL:  b"), "a DETAIL: b");
    }
}
