//! `lockstorm backends`.

use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use lockstorm::backend::catalog::{KINDS, Properties};

fn props(p: Properties) -> String {
    let mut v = Vec::new();
    v.push(if p.fencing { "fencing" } else { "no-fencing" });
    v.push(if p.fair { "fair" } else { "unfair" });
    v.push(if p.lease { "lease" } else { "session" });
    if p.r#unsafe {
        v.push("UNSAFE");
    }
    v.join(" ")
}

/// `host:port` of a URL-like endpoint (`scheme://user:pass@host:port/path`).
fn host_port(endpoint: &str) -> &str {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let rest = rest.split('/').next().unwrap_or(rest);
    rest.rsplit_once('@').map_or(rest, |(_, hp)| hp)
}

/// Whether something accepts TCP connections at `endpoint` (a quick probe,
/// not a protocol check).
fn answers(endpoint: &str) -> bool {
    host_port(endpoint)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok())
}

pub fn list() -> ExitCode {
    // Probe every default endpoint at once.
    let reach: Vec<Vec<bool>> = std::thread::scope(|s| {
        let handles: Vec<_> = KINDS
            .iter()
            .map(|k| {
                s.spawn(move || {
                    k.default_endpoints
                        .iter()
                        .map(|e| answers(e))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    for (k, reach) in KINDS.iter().zip(&reach) {
        let up = reach.iter().filter(|&&r| r).count();
        let status = if !k.implemented {
            "not in this version yet".to_string()
        } else if k.default_endpoints.is_empty() {
            "ready".to_string()
        } else if up == reach.len() {
            "default endpoint answers".to_string()
        } else if up == 0 {
            "default endpoint DOWN".to_string()
        } else {
            format!("{up} of {} default endpoints answer", reach.len())
        };
        println!("{:<10} {} ({status})", k.name, k.summary);
        if !k.default_endpoints.is_empty() {
            println!(
                "           default endpoint: {}",
                k.default_endpoints.join(", ")
            );
        }
        if let Some(h) = k.start_hint {
            println!("           start locally:    {h}");
        }
        for (i, v) in k.variants.iter().enumerate() {
            println!(
                "   {:<12} {:<34} {}{}",
                v.name,
                props(v.properties),
                v.summary,
                if i == 0 { "  (default)" } else { "" }
            );
        }
        println!();
    }
    println!(
        "Properties are what the variant guarantees by design; lockstorm measures what it does."
    );
    ExitCode::SUCCESS
}
