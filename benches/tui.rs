//! Frame render time of the dashboard: one snapshot with 1,000 nodes and 10
//! minutes of history (2,400 series points at the 250 ms tick, a full
//! timeline budget), drawn on ratatui's `TestBackend` for every view, at
//! 200×60 and 80×24. A frame = building the view model + drawing it.
//!
//! `cargo bench --bench tui [ITERATIONS]` prints one line per view and size.
//! Figures: docs/dashboard.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use lockstorm::metrics::*;
use lockstorm::tui::{self, App, RunInfo, Theme};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn snapshot(nodes: u32, history_s: u64) -> Snapshot {
    let mut s = Snapshot {
        phase: Some(Phase::Running),
        elapsed_s: history_s as f64,
        total_s: history_s as f64 + 60.0,
        nodes_running: nodes,
        ..Snapshot::default()
    };
    s.series = (1..=history_s * 4)
        .map(|i| SeriesPoint {
            t_s: i as f64 / 4.0,
            acquired: 1000,
            throughput_per_s: 4000.0 + (i % 97) as f64,
            timeouts_per_s: (i % 13) as f64,
            errors_per_s: (i % 29 == 0) as u8 as f64,
            p50_us: 1_000 + i % 300,
            p99_us: 9_000 + i % 3000,
            p999_us: 20_000 + i % 9000,
            violations: 0,
        })
        .collect();
    s.nodes = (0..nodes)
        .map(|id| NodeRow {
            id,
            acquired: 2_000 + u64::from(id * 7919 % 1000),
            timeouts: u64::from(id % 5),
            errors: 0,
            p50_us: 1_000 + u64::from(id),
            p99_us: 9_000 + u64::from(id),
            max_wait_us: 40_000,
            state: NodeState::Waiting,
        })
        .collect();
    s.safety.violations = 12;
    s.safety.examples = (0..16)
        .map(|i| ViolationExample {
            t_s: history_s as f64 - f64::from(i),
            key: format!("lockstorm:bench:k{i}"),
            nodes: [i, i + 1],
            overlap_us: 20_000,
            fenced: i % 2 == 0,
        })
        .collect();
    // The collector's budget: SPAN_BUDGET spans spread over the nodes.
    let per_node = (SPAN_BUDGET / nodes as usize).clamp(32, 4096) as u64;
    let end_us = history_s * 1_000_000;
    let cycle_us = 150_000;
    s.timeline = Some(Arc::new(Timeline {
        lanes: (0..nodes)
            .map(|id| {
                (0..per_node)
                    .map(|c| {
                        let start = end_us - (per_node - c) * cycle_us + u64::from(id) * 97;
                        HoldSpan {
                            wait_start_us: start,
                            grant_us: start + 100_000,
                            end_us: start + 120_000,
                            key: (c % 100) as u32,
                            granted: true,
                            overlapped: c % 50 == 0,
                        }
                    })
                    .collect()
            })
            .collect(),
        dropped: 0,
        history_s: history_s as f64,
    }));
    s.faults.push(FaultWindow {
        start_s: history_s as f64 - 5.0,
        end_s: history_s as f64 - 2.0,
        kind: "partition".into(),
        nodes: vec![],
    });
    s
}

fn main() {
    let iterations: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let snap = Arc::new(snapshot(1_000, 600));
    let theme = Theme::new(false);
    println!("1,000 nodes, 600 s of history, {iterations} frames per case");
    println!(
        "{:<10} {:>9} {:>10} {:>10} {:>10} {:>10}",
        "view", "size", "mean", "p50", "p99", "max"
    );
    for (w, h) in [(200u16, 60u16), (80, 24)] {
        for (k, name) in [
            ('1', "overview"),
            ('2', "timeline"),
            ('3', "nodes"),
            ('4', "events"),
        ] {
            let mut app = App::new(RunInfo {
                keys: 100,
                ..RunInfo::default()
            });
            app.observe(Arc::clone(&snap));
            app.on_key(KeyEvent::new(KeyCode::Char(k), KeyModifiers::NONE));
            let mut term = Terminal::new(TestBackend::new(w, h)).expect("test backend");
            let mut times: Vec<Duration> = (0..iterations.max(1))
                .map(|_| {
                    let t0 = Instant::now();
                    tui::render(&mut term, &mut app, &theme).expect("test backend draws");
                    t0.elapsed()
                })
                .collect();
            times.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            let mean = times.iter().sum::<Duration>() / times.len() as u32;
            let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
            println!(
                "{name:<10} {:>9} {:>8.3}ms {:>8.3}ms {:>8.3}ms {:>8.3}ms",
                format!("{w}x{h}"),
                ms(mean),
                ms(at(0.5)),
                ms(at(0.99)),
                ms(times[times.len() - 1])
            );
        }
    }
}
