//! View models: everything a screen shows, computed from the latest snapshot
//! and the dashboard state for a given terminal size. The views in `view/`
//! only lay these out; every number and string is made here, so each one is
//! testable without a terminal.

use super::app::{App, SortBy, View};
use super::bigtext;
use super::events::EventKind;
use super::lanes::{TimelineVm, timeline_vm};
use crate::metrics::{NodeRow, NodeState, Phase, SeriesPoint, Snapshot};
use crate::report::human_us;

/// Rows of the header (title line, gauge, status line).
pub const HEADER_H: u16 = 3;
/// Below either size the overview shows fewer panels.
pub const COMPACT: (u16, u16) = (110, 32);
/// Most points a chart line gets (older history is bucketed, keeping maxima).
pub const CHART_POINTS: usize = 600;

/// The header shown above every view.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeaderVm {
    /// Scenario name.
    pub scenario: String,
    /// `kind:variant`.
    pub backend: String,
    /// Property badges; `true` marks the UNSAFE one.
    pub badges: Vec<(&'static str, bool)>,
    /// Run state word (`running`, `PAUSED`, ...), and whether it is alarming.
    pub state: (String, bool),
    /// Elapsed / total, 0..=1.
    pub ratio: f64,
    /// Text on the gauge.
    pub gauge: String,
    /// Nodes, throughput, p99, timeouts, in one line.
    pub status: String,
    /// Violations so far (red in the status when above zero).
    pub violations: u64,
    /// Error count and the latest backend error, if any.
    pub errors: String,
    /// Whether a backend error was seen (the errors text is then red).
    pub error: bool,
    /// Index of the shown view (for the tabs).
    pub tab: usize,
}

/// A line chart: up to three named series over run time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChartVm {
    /// Panel title.
    pub title: String,
    /// Series names and points (x = run seconds).
    pub series: Vec<(&'static str, Vec<(f64, f64)>)>,
    /// X range, seconds.
    pub x: [f64; 2],
    /// Y range.
    pub y: [f64; 2],
    /// X axis labels.
    pub x_labels: Vec<String>,
    /// Y axis labels.
    pub y_labels: Vec<String>,
}

/// Fairness panel.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FairnessVm {
    /// Per-node acquisitions, bucketed to fit the width (max of each bucket).
    pub bars: Vec<u64>,
    /// What the bars cover.
    pub bars_label: String,
    /// Label / value pairs.
    pub lines: Vec<(&'static str, String)>,
}

/// Safety panel.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SafetyVm {
    /// Violations in large digits (three rows).
    pub big: [String; 3],
    /// Whether there is any violation.
    pub bad: bool,
    /// Label / value pairs.
    pub lines: Vec<(&'static str, String)>,
    /// The latest examples, newest first.
    pub examples: Vec<String>,
}

/// The overview screen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OverviewVm {
    /// Fewer panels (small terminal).
    pub compact: bool,
    /// Acquisitions, timeouts, errors per second.
    pub throughput: ChartVm,
    /// p50, p99, p999 acquire latency, ms.
    pub latency: ChartVm,
    /// Current percentile table: (name, acquire, release, handoff).
    pub percentiles: Vec<[String; 4]>,
    /// Fairness.
    pub fairness: FairnessVm,
    /// Safety.
    pub safety: SafetyVm,
}

/// The nodes table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodesVm {
    /// Column titles.
    pub columns: [&'static str; 8],
    /// Sorted column.
    pub sorted: usize,
    /// Visible rows, already sorted and formatted; `true` marks rows with errors.
    pub rows: Vec<([String; 8], bool)>,
    /// Title with the range shown.
    pub title: String,
}

/// The events log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventsVm {
    /// Visible events, newest first: (time, kind, text).
    pub rows: Vec<(String, EventKind, String)>,
    /// Title with counts.
    pub title: String,
}

/// The body of the shown view.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyVm {
    /// Overview.
    Overview(Box<OverviewVm>),
    /// Timeline.
    Timeline(TimelineVm),
    /// Nodes.
    Nodes(NodesVm),
    /// Events.
    Events(EventsVm),
}

/// One frame's worth of data.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewModel {
    /// Header.
    pub header: HeaderVm,
    /// The shown view.
    pub body: BodyVm,
    /// Whether the key help is shown.
    pub help: bool,
    /// The fault menu, when open.
    pub fault_menu: Option<FaultMenuVm>,
}

/// The fault menu as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultMenuVm {
    /// Label, value, selected.
    pub rows: Vec<(&'static str, String, bool)>,
    /// What the keys do, or why this kind cannot apply here.
    pub hint: String,
    /// Why Enter was refused.
    pub error: Option<String>,
}

fn fault_menu(app: &App) -> Option<FaultMenuVm> {
    let m = app.fault_menu.as_ref()?;
    let network = crate::faults::is_network(m.kind());
    let hint = if network && !app.info.fault_proxy {
        if matches!(app.info.kind.as_str(), "mem" | "sqlite") {
            format!("{} has no network: only pause applies", app.info.kind)
        } else {
            "no fault proxy in this run: start it with --fault-proxy".to_string()
        }
    } else {
        "Tab next field · ←→ kind · Enter start · Esc cancel".to_string()
    };
    Some(FaultMenuVm {
        rows: m.rows(),
        hint,
        error: m.error.clone(),
    })
}

/// Build the frame for a `width` × `height` terminal. Clamps the shown
/// view's scroll position to what exists.
pub fn build(app: &mut App, width: u16, height: u16) -> ViewModel {
    let body_h = height.saturating_sub(HEADER_H);
    let body = match app.view {
        View::Overview => BodyVm::Overview(Box::new(overview(&app.snap, width, body_h))),
        View::Timeline => BodyVm::Timeline(timeline_vm(app, width, body_h)),
        View::Nodes => BodyVm::Nodes(nodes(app, body_h)),
        View::Events => BodyVm::Events(events(app, body_h)),
    };
    ViewModel {
        header: header(app),
        body,
        help: app.help,
        fault_menu: fault_menu(app),
    }
}

/// The header for the current state.
pub fn header(app: &App) -> HeaderVm {
    let s = &app.snap;
    let p = app.info.properties;
    let mut badges = Vec::new();
    for (on, name) in [(p.fencing, "fenced"), (p.fair, "fair"), (p.lease, "lease")] {
        if on {
            badges.push((name, false));
        }
    }
    if p.r#unsafe {
        badges.push(("UNSAFE", true));
    }
    let phase = match s.phase {
        None | Some(Phase::Starting) => "connecting",
        Some(Phase::Warmup) => "warmup",
        Some(Phase::Running) => "running",
        Some(Phase::Stopping) => "stopping",
        Some(Phase::Done) => "done",
    };
    let state = if app.finished {
        ("finished — q to leave".to_string(), false)
    } else if app.stopping {
        ("stopping…".to_string(), false)
    } else if app.paused {
        ("PAUSED".to_string(), true)
    } else {
        (phase.to_string(), false)
    };
    let active: Vec<&str> = s
        .faults
        .iter()
        .filter(|f| f.start_s <= s.elapsed_s && s.elapsed_s < f.end_s)
        .map(|f| f.kind.as_str())
        .collect();
    let state = if active.is_empty() {
        state
    } else {
        (format!("{} FAULT {}", state.0, active.join("+")), true)
    };
    let ratio = if s.total_s > 0.0 {
        (s.elapsed_s / s.total_s).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let last = s.series.last().copied().unwrap_or_default();
    HeaderVm {
        scenario: app.info.scenario.clone(),
        backend: format!("{}:{}", app.info.kind, app.info.variant),
        badges,
        state,
        ratio,
        gauge: format!("{:.1}s / {:.0}s", s.elapsed_s, s.total_s),
        status: format!(
            "nodes {}  {:.0} acq/s  p99 {}  timeouts {}",
            s.nodes_running,
            last.throughput_per_s,
            human_us(last.p99_us),
            s.totals.timeouts,
        ),
        violations: s.safety.violations,
        errors: match &s.last_error {
            Some(e) => format!("errors {}: {e}", s.totals.errors),
            None => format!("errors {}", s.totals.errors),
        },
        error: s.last_error.is_some(),
        tab: View::ALL.iter().position(|v| *v == app.view).unwrap_or(0),
    }
}

/// Keep at most `max` points, bucketing older ones by their maximum.
fn thin(points: &[SeriesPoint], max: usize, f: impl Fn(&SeriesPoint) -> f64) -> Vec<(f64, f64)> {
    if points.len() <= max {
        return points.iter().map(|p| (p.t_s, f(p))).collect();
    }
    let per = points.len().div_ceil(max);
    points
        .chunks(per)
        .map(|c| {
            let y = c.iter().map(&f).fold(0.0, f64::max);
            (c[c.len() - 1].t_s, y)
        })
        .collect()
}

fn fmt_rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn chart(
    title: String,
    s: &Snapshot,
    series: Vec<(&'static str, Vec<(f64, f64)>)>,
    y_fmt: impl Fn(f64) -> String,
) -> ChartVm {
    let x0 = s.series.first().map_or(0.0, |p| p.t_s);
    let x1 = s.series.last().map_or(1.0, |p| p.t_s).max(x0 + 1.0);
    let y_max = series
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let y_max = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
    ChartVm {
        title,
        series,
        x: [x0, x1],
        y: [0.0, y_max],
        x_labels: vec![format!("{x0:.0}s"), format!("{x1:.0}s")],
        y_labels: vec!["0".into(), y_fmt(y_max / 2.0), y_fmt(y_max)],
    }
}

/// The overview for a body of `width` × `height`.
pub fn overview(s: &Snapshot, width: u16, height: u16) -> OverviewVm {
    let compact = width < COMPACT.0 || height + HEADER_H < COMPACT.1;
    let pts = &s.series;
    let last = pts.last().copied().unwrap_or_default();
    let throughput = chart(
        format!(
            "Throughput  {}/s acquired  {}/s timeouts  {}/s errors",
            fmt_rate(last.throughput_per_s),
            fmt_rate(last.timeouts_per_s),
            fmt_rate(last.errors_per_s)
        ),
        s,
        vec![
            ("acq/s", thin(pts, CHART_POINTS, |p| p.throughput_per_s)),
            ("timeouts/s", thin(pts, CHART_POINTS, |p| p.timeouts_per_s)),
            ("errors/s", thin(pts, CHART_POINTS, |p| p.errors_per_s)),
        ],
        fmt_rate,
    );
    let ms = |us: u64| us as f64 / 1e3;
    let latency = chart(
        format!(
            "Acquire latency  p50 {}  p99 {}  p999 {}",
            human_us(last.p50_us),
            human_us(last.p99_us),
            human_us(last.p999_us)
        ),
        s,
        vec![
            ("p50", thin(pts, CHART_POINTS, |p| ms(p.p50_us))),
            ("p99", thin(pts, CHART_POINTS, |p| ms(p.p99_us))),
            ("p999", thin(pts, CHART_POINTS, |p| ms(p.p999_us))),
        ],
        |v| format!("{v:.1}ms"),
    );
    let l = &s.latency;
    let row = |name: &str, f: &dyn Fn(&crate::metrics::LatencySummary) -> u64| {
        [
            name.to_string(),
            human_us(f(&l.acquire)),
            human_us(f(&l.release)),
            human_us(f(&l.handoff)),
        ]
    };
    let percentiles = vec![
        [
            "count".to_string(),
            l.acquire.count.to_string(),
            l.release.count.to_string(),
            l.handoff.count.to_string(),
        ],
        row("min", &|x| x.min),
        row("p50", &|x| x.p50),
        row("p90", &|x| x.p90),
        row("p99", &|x| x.p99),
        row("p999", &|x| x.p999),
        row("max", &|x| x.max),
    ];
    OverviewVm {
        compact,
        throughput,
        latency,
        percentiles,
        fairness: fairness(s, (width / 2).saturating_sub(4) as usize),
        safety: safety(s),
    }
}

fn fairness(s: &Snapshot, width: usize) -> FairnessVm {
    let acquired: Vec<u64> = s.nodes.iter().map(|n| n.acquired).collect();
    let width = width.max(1);
    let (bars, bars_label) = if acquired.len() <= width {
        (
            acquired,
            format!(
                "acquisitions per node, 0–{}",
                s.nodes.len().saturating_sub(1)
            ),
        )
    } else {
        let per = acquired.len().div_ceil(width);
        (
            acquired
                .chunks(per)
                .map(|c| c.iter().copied().max().unwrap_or(0))
                .collect(),
            format!("max acquisitions per {per} nodes, {} nodes", s.nodes.len()),
        )
    };
    let f = &s.fairness;
    FairnessVm {
        bars,
        bars_label,
        lines: vec![
            ("Jain's index", format!("{:.3}", f.jain)),
            ("CoV", format!("{:.3}", f.cov)),
            (
                "min / max per node",
                format!("{} / {}", f.min_node_acquired, f.max_node_acquired),
            ),
            ("longest wait", human_us(f.max_wait_us)),
            ("FIFO inversions", f.fifo_inversions.to_string()),
        ],
    }
}

fn safety(s: &Snapshot) -> SafetyVm {
    let v = &s.safety;
    SafetyVm {
        big: bigtext::render(v.violations),
        bad: v.violations > 0,
        lines: vec![
            (
                "fenced / unfenced",
                format!("{} / {}", v.fenced_violations, v.unfenced_violations),
            ),
            ("lost leases", v.lost_leases.to_string()),
            ("lost updates", v.lost_updates.to_string()),
            ("stale writes rejected", v.stale_rejected.to_string()),
        ],
        examples: v
            .examples
            .iter()
            .rev()
            .take(3)
            .map(|e| {
                format!(
                    "{:.2}s {} nodes {}+{} {} {}",
                    e.t_s,
                    e.key,
                    e.nodes[0],
                    e.nodes[1],
                    human_us(e.overlap_us),
                    if e.fenced { "fenced" } else { "UNFENCED" }
                )
            })
            .collect(),
    }
}

fn state_name(s: NodeState) -> &'static str {
    match s {
        NodeState::Connecting => "connecting",
        NodeState::Waiting => "waiting",
        NodeState::Holding => "HOLDING",
        NodeState::Idle => "idle",
        NodeState::Stopped => "stopped",
    }
}

fn sort_rows(rows: &mut [&NodeRow], by: SortBy) {
    match by {
        SortBy::Id => rows.sort_by_key(|r| r.id),
        SortBy::Acquired => rows.sort_by_key(|r| std::cmp::Reverse(r.acquired)),
        SortBy::Timeouts => rows.sort_by_key(|r| std::cmp::Reverse(r.timeouts)),
        SortBy::Errors => rows.sort_by_key(|r| std::cmp::Reverse(r.errors)),
        SortBy::P50 => rows.sort_by_key(|r| std::cmp::Reverse(r.p50_us)),
        SortBy::P99 => rows.sort_by_key(|r| std::cmp::Reverse(r.p99_us)),
        SortBy::Wait => rows.sort_by_key(|r| std::cmp::Reverse(r.max_wait_us)),
        SortBy::State => rows.sort_by_key(|r| r.state as u8),
    }
}

/// The nodes table for a body `height` rows tall.
pub fn nodes(app: &mut App, height: u16) -> NodesVm {
    // Borders and the column header.
    let shown = height.saturating_sub(3) as usize;
    let snap = std::sync::Arc::clone(&app.snap);
    let mut rows: Vec<&NodeRow> = snap.nodes.iter().collect();
    sort_rows(&mut rows, app.sort);
    let first = app.clamp_scroll(View::Nodes, rows.len(), shown);
    let visible: Vec<([String; 8], bool)> = rows
        .iter()
        .skip(first)
        .take(shown)
        .map(|r| {
            (
                [
                    r.id.to_string(),
                    r.acquired.to_string(),
                    r.timeouts.to_string(),
                    r.errors.to_string(),
                    human_us(r.p50_us),
                    human_us(r.p99_us),
                    human_us(r.max_wait_us),
                    state_name(r.state).to_string(),
                ],
                r.errors > 0,
            )
        })
        .collect();
    let title = if rows.is_empty() {
        "Nodes (none yet)".to_string()
    } else {
        format!(
            "Nodes {}–{} of {}  (s: sort, ↑↓ PgUp PgDn: scroll)",
            first,
            first + visible.len().saturating_sub(1),
            rows.len()
        )
    };
    NodesVm {
        columns: [
            "node",
            "acquired",
            "timeouts",
            "errors",
            "p50",
            "p99",
            "longest wait",
            "state",
        ],
        sorted: app.sort.index(),
        rows: visible,
        title,
    }
}

/// The events log for a body `height` rows tall, newest first.
pub fn events(app: &mut App, height: u16) -> EventsVm {
    let shown = height.saturating_sub(2) as usize;
    let total = app.events.len();
    let first = app.clamp_scroll(View::Events, total, shown);
    let rows = app
        .events
        .iter()
        .rev()
        .skip(first)
        .take(shown)
        .map(|e| (format!("{:>8.2}s", e.t_s), e.kind, e.text.clone()))
        .collect();
    let dropped = if app.events.dropped > 0 {
        format!(", {} older dropped", app.events.dropped)
    } else {
        String::new()
    };
    EventsVm {
        rows,
        title: format!("Events ({total}{dropped}), newest first"),
    }
}
