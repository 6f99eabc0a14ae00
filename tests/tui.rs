//! Dashboard views rendered with ratatui's `TestBackend` from fixed
//! snapshots, at 80×24 and at a large size, asserted on content.

use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use lockstorm::backend::catalog::Properties;
use lockstorm::metrics::*;
use lockstorm::scenario::Thresholds;
use lockstorm::tui::{self, App, RunInfo, Theme};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;

/// A run 60 s in: 40 nodes, 3 keys, one violation, one fault window.
fn fault(start_s: f64, duration_s: f64, kind: &str, nodes: Vec<u32>) -> FaultWindow {
    FaultWindow {
        start_s,
        end_s: start_s + duration_s,
        kind: kind.into(),
        nodes,
    }
}

fn snapshot(nodes: u32, history_s: u64) -> Snapshot {
    let mut s = Snapshot {
        phase: Some(Phase::Running),
        elapsed_s: history_s as f64,
        total_s: history_s as f64 + 30.0,
        nodes_running: nodes,
        last_error: Some("connection reset by peer".into()),
        ..Snapshot::default()
    };
    s.totals = Totals {
        attempts: 12_400,
        acquired: 12_345,
        timeouts: 55,
        errors: 7,
        released: 12_340,
        throughput_per_s: 205.8,
    };
    s.latency.acquire = LatencySummary {
        count: 12_345,
        min: 150,
        mean: 2_000.0,
        p50: 1_234,
        p90: 4_000,
        p99: 9_870,
        p999: 20_000,
        max: 31_000,
    };
    s.fairness = Fairness {
        jain: 0.987,
        cov: 0.114,
        min_node_acquired: 250,
        max_node_acquired: 370,
        max_wait_us: 45_000,
        fifo_inversions: 17,
    };
    s.safety = Safety {
        violations: 42,
        fenced_violations: 40,
        unfenced_violations: 2,
        lost_leases: 3,
        lost_updates: 2,
        stale_rejected: 40,
        examples: vec![ViolationExample {
            t_s: history_s as f64 - 2.0,
            key: "lockstorm:abcd:k1".into(),
            nodes: [2, 5],
            overlap_us: 500_000,
            fenced: false,
        }],
    };
    // One point per 250 ms tick.
    s.series = (1..=history_s * 4)
        .map(|i| SeriesPoint {
            t_s: i as f64 / 4.0,
            acquired: 50,
            throughput_per_s: 200.0 + (i % 7) as f64,
            timeouts_per_s: 1.0,
            errors_per_s: (i % 50 == 0) as u8 as f64,
            p50_us: 1_200,
            p99_us: 9_000 + (i % 5) * 100,
            p999_us: 20_000,
            violations: 0,
        })
        .collect();
    s.nodes = (0..nodes)
        .map(|id| NodeRow {
            id,
            acquired: 250 + u64::from(id * 3 % 120),
            timeouts: u64::from(id % 3),
            errors: u64::from(id == 7),
            p50_us: 1_000 + u64::from(id) * 10,
            p99_us: 9_000 + u64::from(id) * 10,
            max_wait_us: 40_000,
            state: if id == 1 {
                NodeState::Holding
            } else {
                NodeState::Waiting
            },
        })
        .collect();
    // Each node: waits 80 ms, holds 20 ms, every 100 ms, key = cycle % 3.
    let end_us = history_s * 1_000_000;
    let lanes = (0..nodes)
        .map(|id| {
            let phase = u64::from(id) * 10_000;
            (0..end_us / 100_000)
                .map(|c| {
                    let start = c * 100_000 + phase;
                    HoldSpan {
                        wait_start_us: start,
                        grant_us: start + 80_000,
                        end_us: start + 100_000,
                        key: (c % 3) as u32,
                        granted: true,
                        overlapped: false,
                    }
                })
                .collect()
        })
        .collect();
    s.timeline = Some(Arc::new(Timeline {
        lanes,
        dropped: 0,
        history_s: history_s as f64,
    }));
    s.faults
        .push(fault(history_s as f64 - 8.0, 2.0, "pause", vec![0, 1]));
    s
}

fn info(unsafe_: bool) -> RunInfo {
    RunInfo {
        scenario: "hot-key".into(),
        kind: "redis".into(),
        variant: if unsafe_ { "get-set" } else { "set-nx" }.into(),
        properties: Properties {
            fencing: !unsafe_,
            fair: false,
            lease: true,
            r#unsafe: unsafe_,
        },
        keys: 3,
        thresholds: Thresholds {
            max_violations: Some(0),
            ..Thresholds::default()
        },
        fault_proxy: false,
    }
}

fn app(snap: Snapshot) -> App {
    let mut a = App::new(info(false));
    a.observe(Arc::new(snap));
    a
}

fn key(a: &mut App, c: char) {
    a.on_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
}

fn render(a: &mut App, w: u16, h: u16, theme: &Theme) -> (String, ratatui::buffer::Buffer) {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    tui::render(&mut term, a, theme).unwrap();
    let buf = term.backend().buffer().clone();
    let mut text = String::new();
    for y in 0..h {
        for x in 0..w {
            text.push_str(buf[(x, y)].symbol());
        }
        text.push('\n');
    }
    (text, buf)
}

fn screen(a: &mut App, w: u16, h: u16) -> String {
    render(a, w, h, &Theme::new(false)).0
}

fn assert_has(screen: &str, needles: &[&str]) {
    for n in needles {
        assert!(screen.contains(n), "missing {n:?} in\n{screen}");
    }
}

#[test]
fn overview_at_80x24_has_header_throughput_percentiles_and_safety() {
    let mut a = app(snapshot(40, 60));
    let s = screen(&mut a, 80, 24);
    assert_has(
        &s,
        &[
            "1 Overview",
            "4 Events",
            "hot-key",
            "redis:set-nx",
            "[fenced]",
            "[lease]",
            "running 60.0s / 90s",
            "nodes 40",
            "violations 42",
            "errors 7: connection reset",
            "Throughput",
            "acquire",
            "p99",
            "9.87ms",
            "Safety",
            "fenced / unfenced",
            "40 / 2",
        ],
    );
    // Compact: the latency chart and fairness panel are left out, not garbled.
    assert!(!s.contains("Fairness"), "{s}");
    assert_eq!(s.lines().count(), 24);
    assert!(s.lines().all(|l| l.chars().count() == 80));
}

#[test]
fn overview_large_adds_latency_chart_and_fairness() {
    let mut a = app(snapshot(40, 60));
    let s = screen(&mut a, 200, 60);
    assert_has(
        &s,
        &[
            "Acquire latency  p50 1.20ms",
            "Fairness",
            "Jain's index",
            "0.987",
            "FIFO inversions",
            "17",
            "acquisitions per node, 0–39",
            "lost leases",
            "UNFENCED",
            "lockstorm:abcd:k1 nodes 2+5",
        ],
    );
    // Violations in large type (the digits 4 and 2 of the 3-row font).
    assert!(s.contains("█ █ ▀▀█"), "{s}");
}

#[test]
fn unsafe_badge_and_violations_are_red_and_no_color_has_none() {
    let mut a = App::new(info(true));
    a.observe(Arc::new(snapshot(4, 10)));
    let (s, buf) = render(&mut a, 120, 40, &Theme::new(false));
    let at = |needle: &str| {
        let row = s.lines().position(|l| l.contains(needle)).unwrap();
        let col = s.lines().nth(row).unwrap().find(needle).unwrap();
        // Byte offset to column: the header lines are ASCII up to here.
        (col as u16, row as u16)
    };
    let (x, y) = at("[UNSAFE]");
    assert_eq!(buf[(x + 1, y)].fg, Color::Red);
    let (x, y) = at("violations 42");
    assert_eq!(buf[(x, y)].fg, Color::Red);

    let (s2, buf) = render(&mut a, 120, 40, &Theme::plain());
    assert_eq!(s, s2, "same content without colour");
    for cell in buf.content() {
        assert_eq!(cell.fg, Color::Reset);
        assert_eq!(cell.bg, Color::Reset);
    }
}

#[test]
fn timeline_shows_lanes_keys_waits_overlaps_and_faults() {
    let mut a = app(snapshot(40, 60));
    key(&mut a, '2');
    for (w, h) in [(80, 24), (200, 60)] {
        let s = screen(&mut a, w, h);
        assert_has(
            &s,
            &[
                "Timeline: last 10s, nodes 0–",
                "n0 ",
                "n5 ",
                "-10s",
                "now",
                "hold (key)",
            ],
        );
        let lane = |n: &str| {
            s.lines()
                .find(|l| l.starts_with(&format!("│{n:<6}")))
                .unwrap_or_else(|| panic!("no lane {n} in\n{s}"))
                .to_string()
        };
        // Nodes 2 and 5 overlapped 2 s ago for 0.5 s; node 3 did not.
        assert!(lane("n2").contains('!'), "{s}");
        assert!(lane("n5").contains('!'), "{s}");
        assert!(!lane("n3").contains('!'), "{s}");
        // 80 % waiting: waits dominate, and holds show their key.
        assert!(lane("n3").contains('.'), "{s}");
        // Nodes 0 and 1 were paused 8 s to 6 s ago: marked where they
        // waited, and on the fault row over the same time.
        assert!(lane("n0").contains('~'), "{s}");
        assert!(!lane("n3").contains('~'), "{s}");
        let band = lane("fault");
        assert_eq!(band.find('~'), lane("n0").find('~'), "{s}");
    }
    // Zoomed in to 1.25 s, cells are 1/100 s: holds show their key glyph.
    for _ in 0..3 {
        key(&mut a, '[');
    }
    let s = screen(&mut a, 200, 60);
    assert_has(&s, &["last 1s"]);
    let n3 = s.lines().find(|l| l.starts_with("│n3 ")).unwrap();
    assert!(
        n3.contains("00") || n3.contains("11") || n3.contains("22"),
        "{s}"
    );
}

#[test]
fn timeline_scrolls_through_1000_nodes() {
    let mut a = app(snapshot(1000, 5));
    key(&mut a, '2');
    let s = screen(&mut a, 80, 24);
    assert_has(&s, &["nodes 0–15 of 1000"]);
    a.on_key(KeyEvent::new(KeyCode::PageDown, KeyModifiers::NONE));
    let s = screen(&mut a, 80, 24);
    assert_has(&s, &["nodes 10–25 of 1000", "│n10 "]);
    for _ in 0..200 {
        a.on_key(KeyEvent::new(KeyCode::PageDown, KeyModifiers::NONE));
    }
    let s = screen(&mut a, 80, 24);
    assert_has(&s, &["nodes 984–999 of 1000", "│n999 "]);
}

#[test]
fn nodes_table_sorts_by_column() {
    let mut a = app(snapshot(40, 60));
    key(&mut a, '3');
    let s = screen(&mut a, 80, 24);
    assert_has(
        &s,
        &[
            "Nodes 0–17 of 40",
            "node▼",
            "acquired",
            "longest wait",
            "HOLDING",
        ],
    );
    let first_row = |s: &str| s.lines().nth(5).unwrap().to_string();
    assert!(first_row(&s).starts_with("│0 "), "{s}");
    key(&mut a, 's');
    let s = screen(&mut a, 200, 60);
    assert_has(&s, &["acquired▼", "Nodes 0–39 of 40"]);
    // Most acquisitions first: node 39 has 250 + 117.
    assert!(first_row(&s).starts_with("│39 "), "{s}");
    assert!(first_row(&s).contains("367"), "{s}");
}

#[test]
fn events_log_lists_violations_errors_faults_and_breaches() {
    let mut a = app(snapshot(40, 60));
    key(&mut a, '4');
    for (w, h) in [(80, 24), (200, 60)] {
        let s = screen(&mut a, w, h);
        assert_has(
            &s,
            &[
                "Events (",
                "newest first",
                "VIOLATION",
                "nodes 2 and 5",
                "FAULT",
                "pause on nodes [0, 1] started",
                "error",
                "connection reset by peer",
                "THRESHOLD",
                "max_violations breached",
                "running (measured)",
            ],
        );
    }
    let s = screen(&mut a, 200, 60);
    assert_has(&s, &["pause on nodes [0, 1] ended after 2.0s"]);
    // Newest first, by run time.
    let fault = s.find("pause on nodes [0, 1] started").unwrap();
    let violation = s.find("held by nodes 2 and 5").unwrap();
    assert!(violation < fault, "{s}");
}

#[test]
fn help_overlay_lists_every_key() {
    let mut a = app(snapshot(4, 10));
    key(&mut a, '?');
    let s = screen(&mut a, 80, 24);
    for (k, _) in tui::view::KEYS {
        assert!(s.contains(k), "help misses {k}\n{s}");
    }
    assert_has(&s, &["pause / resume the load", "add / remove a node"]);
}

#[test]
fn empty_snapshot_renders_every_view_at_tiny_sizes() {
    for (w, h) in [(80, 24), (40, 10), (20, 5)] {
        let mut a = App::new(RunInfo::default());
        for k in ['1', '2', '3', '4', '?'] {
            key(&mut a, k);
            let s = screen(&mut a, w, h);
            assert_eq!(s.lines().count(), h as usize);
        }
    }
    let mut a = App::new(RunInfo::default());
    let s = screen(&mut a, 80, 24);
    assert_has(&s, &["connecting"]);
}

#[test]
fn fault_menu_starts_a_fault_and_explains_what_cannot_apply() {
    let mut a = app(snapshot(4, 10));
    key(&mut a, 'f');
    let s = screen(&mut a, 80, 24);
    assert_has(
        &s,
        &[
            "Start a fault now",
            "kind",
            "pause",
            "nodes",
            "duration",
            "5s",
        ],
    );
    // Latency on a run without the proxy: the menu says why it cannot apply.
    a.on_key(KeyEvent::new(KeyCode::Right, KeyModifiers::NONE));
    let s = screen(&mut a, 80, 24);
    assert_has(&s, &["latency", "delay", "50ms", "--fault-proxy"]);
    // Back to pause, nodes "0..2", Enter: the engine gets the fault.
    a.on_key(KeyEvent::new(KeyCode::Left, KeyModifiers::NONE));
    a.on_key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
    a.on_key(KeyEvent::new(KeyCode::Backspace, KeyModifiers::NONE));
    for c in "0..2".chars() {
        key(&mut a, c);
    }
    let cmd = a.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    match cmd {
        Some(tui::Command::Fault(spec)) => {
            assert_eq!(spec.kind, lockstorm::scenario::FaultKind::Pause);
            assert_eq!(spec.nodes, lockstorm::scenario::NodeSel::Range(0, 2));
        }
        other => panic!("expected a fault, got {other:?}"),
    }
    let s = screen(&mut a, 80, 24);
    assert!(!s.contains("Start a fault now"), "the menu closed\n{s}");
}

#[test]
fn compare_stage_list_shows_done_running_waiting_and_failed() {
    use lockstorm::compare::{CompareState, Headline, StageStatus, StageView};
    let st = |label: &str, status, headline, error: Option<&str>| StageView {
        label: label.into(),
        status,
        headline,
        error: error.map(String::from),
    };
    let state = CompareState {
        stages: vec![
            st(
                "mem:fifo",
                StageStatus::Done,
                Some(Headline {
                    throughput_per_s: 1665.0,
                    acquire_p99_us: 20_190,
                    jain: 0.999,
                    violations: 0,
                    unfenced_violations: 0,
                    errors: 0,
                }),
                None,
            ),
            st("redis:set-nx", StageStatus::Running, None, None),
            st("etcd:lock-api", StageStatus::Waiting, None, None),
            st(
                "mysql:get-lock",
                StageStatus::Failed,
                None,
                Some("cannot reach mysql://root@127.0.0.1:3306/mysql"),
            ),
        ],
    };
    let lines = tui::compare::stage_lines(&state);
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0].0, '✓');
    assert!(lines[0].2.contains("1665 acq/s") && lines[0].2.contains("Jain 0.999"));
    assert_eq!((lines[1].0, lines[1].2.as_str()), ('▶', "running"));
    assert_eq!((lines[2].0, lines[2].2.as_str()), ('·', "waiting"));
    assert_eq!(lines[3].0, '✗');
    assert!(lines[3].2.starts_with("failed: cannot reach") && lines[3].3);
}
