//! The engine's own ceiling on `mem` (rtt 0, hold 0, think 0).
//!
//! `cargo bench --bench engine -- CASE [SECONDS]` runs one case and prints one
//! line of figures; `scripts/bench` runs every case, each in its own process
//! so that peak RSS belongs to that case alone. Cases:
//! - `uncontended`: 64 nodes on 64 keys (round robin): lock cycles/s.
//! - `handoff`: 64 nodes on 1 key: every cycle a handoff.
//! - `nodes10k`: 10,000 nodes on 100 keys, for peak memory.

use std::path::Path;
use std::time::Duration;

use lockstorm::engine::Control;
use lockstorm::run::run_scenario;
use lockstorm::scenario::Scenario;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let case = args.first().map(String::as_str).unwrap_or("uncontended");
    let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let (nodes, keys, pick) = match case {
        "uncontended" => (64, 64, "round_robin"),
        "handoff" => (64, 1, "uniform"),
        "nodes10k" => (10_000, 100, "uniform"),
        other => {
            eprintln!("unknown case `{other}`; cases: uncontended, handoff, nodes10k");
            std::process::exit(2);
        }
    };
    let toml = format!(
        r#"
name = "bench-{case}"
duration = "{d}s"
warmup = "1s"
seed = 1
[backend]
kind = "mem"
variant = "fifo"
[workload]
nodes = {nodes}
keys = {keys}
key_pick = "{pick}"
hold = "0ms"
think = "0ms"
acquire_timeout = "30s"
"#,
        d = secs + 1
    );
    let scn = Scenario::parse(&toml, Path::new("bench.toml")).expect("bench scenario is valid");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let r = rt
        .block_on(run_scenario(
            &scn,
            Duration::from_secs(1),
            Control::default(),
        ))
        .expect("mem run cannot fail to connect");
    let s = &r.snapshot;
    println!(
        "{case:<12} nodes {nodes:>6} keys {keys:>3}  cycles/s {:>10.0}  handoffs/s {:>10.0}  acquire p50 {:>5}µs p99 {:>6}µs  violations {}  peak RSS {:.1} MiB",
        s.totals.throughput_per_s,
        s.latency.handoff.count as f64 / (r.elapsed_s - r.warmup_s),
        s.latency.acquire.p50,
        s.latency.acquire.p99,
        s.safety.violations,
        peak_rss_mib()
    );
}
