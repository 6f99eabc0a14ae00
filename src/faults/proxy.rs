//! A TCP proxy on loopback in front of every backend endpoint, one listener
//! per (node, endpoint), so network faults can target a subset of nodes.
//!
//! Each listener is a [`Link`] whose [`LinkState`] the fault timeline changes:
//! `delay`/`jitter` hold every chunk back before forwarding it, `partitioned`
//! stalls both directions and new connections (bytes are held, not dropped,
//! as TCP retransmission would deliver them after the partition heals), and
//! bumping `reset_gen` closes every open connection of the link.
//!
//! With no fault active a chunk costs one extra read and write on loopback;
//! `scripts/bench-faults` measures that overhead.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Most listeners one run may open (nodes × endpoints).
pub const MAX_LINKS: usize = 16_384;
/// Bytes forwarded per read.
const CHUNK: usize = 16 * 1024;

/// What a link does to the traffic through it now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkState {
    /// Added to every chunk, each direction.
    pub delay: Duration,
    /// Random extra delay, uniform in `0..=jitter`.
    pub jitter: Duration,
    /// Black-holed: nothing passes, new connections wait.
    pub partitioned: bool,
    /// Bumped to close every open connection.
    pub reset_gen: u64,
}

/// One (node, endpoint) listener.
#[derive(Debug)]
pub struct Link {
    state: watch::Sender<LinkState>,
    local: SocketAddr,
}

impl Link {
    /// Change what the link does; takes effect on the next chunk.
    pub fn update(&self, f: impl FnOnce(&mut LinkState)) {
        self.state.send_modify(f);
    }

    /// What the link does now.
    pub fn state(&self) -> LinkState {
        *self.state.borrow()
    }

    /// The address node traffic goes to.
    pub fn local(&self) -> SocketAddr {
        self.local
    }
}

/// The proxy of one run.
#[derive(Debug)]
pub struct Net {
    nodes: u32,
    upstreams: Vec<String>,
    /// Node-major: link of (node, endpoint) is at `node * upstreams + endpoint`.
    links: Vec<Link>,
    cancel: CancellationToken,
}

/// `host:port` of a URL (`redis://user:pw@h:p/db`, `http://h:p`, `h:p`),
/// with `localhost` spelled `127.0.0.1` so the two compare equal.
pub fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split(['/', '?']).next().unwrap_or(rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    match rest.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => rest.to_string(),
    }
}

impl Net {
    /// Open one listener per (node, upstream) on 127.0.0.1.
    pub async fn start(nodes: u32, upstreams: Vec<String>, seed: u64) -> io::Result<Arc<Net>> {
        let count = nodes as usize * upstreams.len();
        if count > MAX_LINKS {
            return Err(io::Error::other(format!(
                "network faults need one proxy listener per node and endpoint: \
                 {nodes} nodes × {} endpoints = {count}, more than the {MAX_LINKS} lockstorm opens",
                upstreams.len()
            )));
        }
        let cancel = CancellationToken::new();
        let mut links = Vec::with_capacity(count);
        for node in 0..nodes {
            for (e, up) in upstreams.iter().enumerate() {
                let listener = TcpListener::bind("127.0.0.1:0").await?;
                let local = listener.local_addr()?;
                let (tx, rx) = watch::channel(LinkState::default());
                let link_seed = seed ^ (u64::from(node) << 20) ^ (e as u64) ^ 0x7072_6f78;
                tokio::spawn(accept_loop(
                    listener,
                    Arc::from(up.as_str()),
                    rx,
                    cancel.clone(),
                    link_seed,
                ));
                links.push(Link { state: tx, local });
            }
        }
        Ok(Arc::new(Net {
            nodes,
            upstreams,
            links,
            cancel,
        }))
    }

    /// The upstreams (`host:port`), in endpoint-index order.
    pub fn upstreams(&self) -> &[String] {
        &self.upstreams
    }

    /// Nodes the proxy serves.
    pub fn nodes(&self) -> u32 {
        self.nodes
    }

    /// Index of the upstream a URL or `host:port` names.
    pub fn endpoint_index(&self, url: &str) -> Option<usize> {
        let hp = host_port(url);
        self.upstreams.iter().position(|u| host_port(u) == hp)
    }

    /// The link of (node, endpoint).
    pub fn link(&self, node: u32, endpoint: usize) -> Option<&Link> {
        if node >= self.nodes || endpoint >= self.upstreams.len() {
            return None;
        }
        self.links
            .get(node as usize * self.upstreams.len() + endpoint)
    }

    /// Where node `node` connects to reach `upstream` (`host:port`).
    pub fn route(&self, node: u32, upstream: &str) -> Option<String> {
        let e = self.endpoint_index(upstream)?;
        self.link(node, e).map(|l| l.local.to_string())
    }

    /// Undo every latency and partition (a run is stopping).
    pub fn heal_all(&self) {
        for l in &self.links {
            l.update(|s| {
                s.delay = Duration::ZERO;
                s.jitter = Duration::ZERO;
                s.partitioned = false;
            });
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: Arc<str>,
    rx: watch::Receiver<LinkState>,
    cancel: CancellationToken,
    seed: u64,
) {
    let mut conns = 0u64;
    loop {
        let accepted = tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((inbound, _)) = accepted else {
            // Out of file descriptors or similar: back off, keep serving.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        conns += 1;
        tokio::spawn(serve(
            inbound,
            Arc::clone(&upstream),
            rx.clone(),
            cancel.clone(),
            seed.wrapping_add(conns.wrapping_mul(0x9e37_79b9)),
        ));
    }
}

/// Wait until the link is not partitioned. False if the link is gone.
async fn unpartitioned(rx: &mut watch::Receiver<LinkState>) -> bool {
    rx.wait_for(|s| !s.partitioned).await.is_ok()
}

async fn serve(
    inbound: TcpStream,
    upstream: Arc<str>,
    mut rx: watch::Receiver<LinkState>,
    cancel: CancellationToken,
    seed: u64,
) {
    let generation = rx.borrow().reset_gen;
    let mut reset_rx = rx.clone();
    let work = async {
        // A partitioned link answers nothing, not even the connect.
        if !unpartitioned(&mut rx).await {
            return;
        }
        let Ok(outbound) = TcpStream::connect(&*upstream).await else {
            // Upstream down: close, as the server itself would refuse.
            return;
        };
        let _ = inbound.set_nodelay(true);
        let _ = outbound.set_nodelay(true);
        let (ir, iw) = inbound.into_split();
        let (or, ow) = outbound.into_split();
        tokio::join!(
            pump(ir, ow, rx.clone(), seed),
            pump(or, iw, rx.clone(), seed ^ 1)
        );
    };
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = reset_rx.wait_for(|s| s.reset_gen != generation) => {}
        _ = work => {}
    }
    // Dropping both streams closes them.
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut rx: watch::Receiver<LinkState>,
    seed: u64,
) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        let st = *rx.borrow();
        let mut delay = st.delay;
        if !st.jitter.is_zero() {
            let j = st.jitter.as_micros() as u64;
            delay += Duration::from_micros(rng.random_range(0..=j));
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if !unpartitioned(&mut rx).await {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    async fn echo_server() -> (SocketAddr, CancellationToken) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            loop {
                let (mut c, _) = tokio::select! {
                    _ = s.cancelled() => return,
                    a = l.accept() => a.unwrap(),
                };
                tokio::spawn(async move {
                    let (mut r, mut w) = c.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        (addr, stop)
    }

    async fn roundtrip(addr: &str, msg: &[u8]) -> io::Result<Vec<u8>> {
        let mut c = TcpStream::connect(addr).await?;
        c.write_all(msg).await?;
        let mut got = vec![0; msg.len()];
        c.read_exact(&mut got).await?;
        Ok(got)
    }

    #[test]
    fn host_port_of_urls() {
        assert_eq!(host_port("redis://127.0.0.1:6379"), "127.0.0.1:6379");
        assert_eq!(host_port("redis://:pw@127.0.0.1:7001/2"), "127.0.0.1:7001");
        assert_eq!(
            host_port("postgres://u:p@localhost:5432/db?sslmode=disable"),
            "127.0.0.1:5432"
        );
        assert_eq!(host_port("http://127.0.0.1:2379"), "127.0.0.1:2379");
        assert_eq!(host_port("127.0.0.1:2181"), "127.0.0.1:2181");
    }

    #[tokio::test]
    async fn forwards_bytes_exactly() {
        let (up, stop) = echo_server().await;
        let net = Net::start(2, vec![up.to_string()], 1).await.unwrap();
        let route = net.route(1, &up.to_string()).unwrap();
        assert_ne!(route, up.to_string());
        let msg: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        assert_eq!(roundtrip(&route, &msg).await.unwrap(), msg);
        assert_eq!(net.route(5, &up.to_string()), None);
        assert_eq!(net.route(0, "127.0.0.1:1"), None);
        stop.cancel();
    }

    #[tokio::test]
    async fn partition_stalls_one_node_and_heals_without_loss() {
        let (up, stop) = echo_server().await;
        let up = up.to_string();
        let net = Net::start(2, vec![up.clone()], 2).await.unwrap();
        let (r0, r1) = (net.route(0, &up).unwrap(), net.route(1, &up).unwrap());
        let mut c0 = TcpStream::connect(&r0).await.unwrap();
        net.link(0, 0).unwrap().update(|s| s.partitioned = true);
        c0.write_all(b"held").await.unwrap();
        let mut got = [0u8; 4];
        let stalled =
            tokio::time::timeout(Duration::from_millis(300), c0.read_exact(&mut got)).await;
        assert!(stalled.is_err(), "a partitioned link must answer nothing");
        // Node 1 is not partitioned.
        assert_eq!(roundtrip(&r1, b"free").await.unwrap(), b"free");
        // A new connection of node 0 waits too.
        let fresh = tokio::time::timeout(Duration::from_millis(200), roundtrip(&r0, b"x")).await;
        assert!(fresh.is_err());
        net.link(0, 0).unwrap().update(|s| s.partitioned = false);
        tokio::time::timeout(Duration::from_secs(2), c0.read_exact(&mut got))
            .await
            .expect("healed link delivers")
            .unwrap();
        assert_eq!(&got, b"held");
        stop.cancel();
    }

    #[tokio::test]
    async fn reset_closes_connections_and_new_ones_work() {
        let (up, stop) = echo_server().await;
        let up = up.to_string();
        let net = Net::start(1, vec![up.clone()], 3).await.unwrap();
        let r0 = net.route(0, &up).unwrap();
        let mut c = TcpStream::connect(&r0).await.unwrap();
        c.write_all(b"a").await.unwrap();
        let mut b = [0u8; 1];
        c.read_exact(&mut b).await.unwrap();
        net.link(0, 0).unwrap().update(|s| s.reset_gen += 1);
        let n = tokio::time::timeout(Duration::from_secs(2), c.read(&mut b))
            .await
            .expect("reset closes promptly");
        assert!(matches!(n, Ok(0) | Err(_)), "connection closed: {n:?}");
        assert_eq!(roundtrip(&r0, b"again").await.unwrap(), b"again");
        stop.cancel();
    }

    #[tokio::test]
    async fn latency_delays_each_direction() {
        let (up, stop) = echo_server().await;
        let up = up.to_string();
        let net = Net::start(1, vec![up.clone()], 4).await.unwrap();
        let r0 = net.route(0, &up).unwrap();
        net.link(0, 0)
            .unwrap()
            .update(|s| s.delay = Duration::from_millis(40));
        let t = Instant::now();
        assert_eq!(roundtrip(&r0, b"slow").await.unwrap(), b"slow");
        assert!(
            t.elapsed() >= Duration::from_millis(80),
            "{:?}",
            t.elapsed()
        );
        stop.cancel();
    }
}
