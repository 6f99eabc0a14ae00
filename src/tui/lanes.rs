//! The timeline's view model: one swimlane per node over the last N seconds,
//! each cell one slice of time showing what the node did in it.

use super::app::{App, View};
use crate::metrics::{HoldSpan, Snapshot};

/// Glyphs marking which key a block holds (key index modulo their count).
const KEY_GLYPHS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
/// Width of the lane label (`n1234 `).
pub const LABEL_W: u16 = 6;

/// What a cell shows, lowest priority first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CellKind {
    /// Nothing (idle, thinking).
    Empty,
    /// A fault window covers the node.
    Fault,
    /// Waiting for a lock.
    Wait,
    /// Holding a lock.
    Hold,
    /// Holding while another node also believed it held the key.
    Overlap,
}

/// One node's row: label and runs of cells of the same kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LaneVm {
    /// `n12`.
    pub label: String,
    /// Consecutive cells: their glyphs and kind.
    pub runs: Vec<(String, CellKind)>,
}

/// The timeline screen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimelineVm {
    /// Panel title (window, lanes shown, dropped spans).
    pub title: String,
    /// Visible lanes.
    pub lanes: Vec<LaneVm>,
    /// Time axis under the lanes.
    pub axis: String,
    /// Legend line.
    pub legend: String,
    /// Shown instead of lanes when there is nothing to draw.
    pub message: Option<String>,
}

/// Time a node spent in each state within one cell.
#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    wait_s: f64,
    hold_s: f64,
    key: u32,
    overlap: bool,
    fault: bool,
}

struct Grid {
    cells: Vec<Acc>,
    t0: f64,
    per_cell_s: f64,
}

impl Grid {
    fn new(cells: usize, t0: f64, window_s: f64) -> Self {
        Grid {
            cells: vec![Acc::default(); cells],
            t0,
            per_cell_s: window_s / cells.max(1) as f64,
        }
    }

    /// Call `f(cell, seconds of [a, b] inside it)` for every cell [a, b] touches.
    fn each(&mut self, a_s: f64, b_s: f64, mut f: impl FnMut(&mut Acc, f64)) {
        let n = self.cells.len() as isize;
        let col = |t: f64| ((t - self.t0) / self.per_cell_s).floor() as isize;
        let (a, b) = (col(a_s).max(0), col(b_s).min(n - 1));
        for c in a..=b {
            let lo = self.t0 + c as f64 * self.per_cell_s;
            let inside = (b_s.min(lo + self.per_cell_s) - a_s.max(lo)).max(0.0);
            f(&mut self.cells[c as usize], inside);
        }
    }

    /// What each cell shows: overlap wins, then whichever of holding and
    /// waiting took more of the cell, then a fault window.
    fn kinds(&self, keys: u32) -> impl Iterator<Item = (CellKind, u8)> + '_ {
        self.cells.iter().map(move |c| {
            let kind = if c.overlap {
                CellKind::Overlap
            } else if c.hold_s > 0.0 && c.hold_s >= c.wait_s {
                CellKind::Hold
            } else if c.wait_s > 0.0 {
                CellKind::Wait
            } else if c.hold_s > 0.0 {
                CellKind::Hold
            } else if c.fault {
                CellKind::Fault
            } else {
                CellKind::Empty
            };
            (kind, glyph(kind, c.key, keys))
        })
    }
}

fn glyph(kind: CellKind, key: u32, keys: u32) -> u8 {
    match kind {
        CellKind::Empty => b' ',
        CellKind::Fault => b'~',
        CellKind::Wait => b'.',
        CellKind::Hold if keys <= 1 => b'#',
        CellKind::Hold => KEY_GLYPHS[key as usize % KEY_GLYPHS.len()],
        CellKind::Overlap => b'!',
    }
}

fn lane(snap: &Snapshot, node: u32, spans: &[HoldSpan], grid: &mut Grid, keys: u32) -> LaneVm {
    for f in &snap.faults {
        if f.nodes.is_empty() || f.nodes.contains(&node) {
            grid.each(f.start_s, f.end_s, |c, _| c.fault = true);
        }
    }
    let first = spans.partition_point(|s| (s.end_us as f64 / 1e6) < grid.t0);
    for s in &spans[first..] {
        let (w, g, e) = (
            s.wait_start_us as f64 / 1e6,
            s.grant_us as f64 / 1e6,
            s.end_us as f64 / 1e6,
        );
        if g > w {
            grid.each(w, g, |c, d| c.wait_s += d);
        }
        if s.granted {
            grid.each(g, e, |c, d| {
                // A hold shorter than the cell still shows.
                c.hold_s += d.max(1e-9);
                c.key = s.key;
                c.overlap |= s.overlapped;
            });
        }
    }
    for ex in &snap.safety.examples {
        if ex.nodes.contains(&node) {
            let end = ex.t_s + ex.overlap_us as f64 / 1e6;
            grid.each(ex.t_s, end, |c, _| c.overlap = true);
        }
    }
    let mut runs: Vec<(String, CellKind)> = Vec::new();
    for (kind, g) in grid.kinds(keys) {
        match runs.last_mut() {
            Some((text, k)) if *k == kind => text.push(char::from(g)),
            _ => runs.push((char::from(g).to_string(), kind)),
        }
    }
    LaneVm {
        label: format!("n{node}"),
        runs,
    }
}

fn axis(width: usize, window_s: f64) -> String {
    let left = format!("-{window_s:.0}s");
    let mid = format!("-{:.1}s", window_s / 2.0);
    let right = "now";
    let mut line = vec![b' '; width];
    let put = |line: &mut Vec<u8>, at: usize, s: &str| {
        for (i, b) in s.bytes().enumerate() {
            if let Some(c) = line.get_mut(at + i) {
                *c = b;
            }
        }
    };
    put(&mut line, 0, &left);
    put(&mut line, (width / 2).saturating_sub(mid.len() / 2), &mid);
    put(&mut line, width.saturating_sub(right.len()), right);
    String::from_utf8(line).unwrap_or_default()
}

/// The timeline for a body `width` × `height`.
pub fn timeline_vm(app: &mut App, width: u16, height: u16) -> TimelineVm {
    let snap = std::sync::Arc::clone(&app.snap);
    let legend = format!(
        "{} hold (key)  . waiting  ! overlap  ~ fault   [ ] zoom  ↑↓ PgUp PgDn scroll",
        if app.info.keys <= 1 { "#" } else { "0-z" }
    );
    let Some(tl) = snap.timeline.as_deref() else {
        return TimelineVm {
            title: "Timeline".into(),
            legend,
            message: Some("no cycles recorded yet".into()),
            ..TimelineVm::default()
        };
    };
    let cells = width.saturating_sub(2 + LABEL_W).max(1) as usize;
    // Borders, axis and legend.
    let shown = height.saturating_sub(4) as usize;
    let total = tl.lanes.len().max(snap.nodes.len());
    let first = app.clamp_scroll(View::Timeline, total, shown);
    let window_s = app.window_s;
    let t0 = snap.elapsed_s - window_s;
    let lanes = (first..total.min(first + shown))
        .map(|i| {
            let mut grid = Grid::new(cells, t0, window_s);
            let spans = tl.lanes.get(i).map_or(&[][..], |l| &l[..]);
            lane(&snap, i as u32, spans, &mut grid, app.info.keys)
        })
        .collect::<Vec<_>>();
    let dropped = if tl.dropped > 0 {
        format!(", {} cycles not drawn (too fast)", tl.dropped)
    } else {
        String::new()
    };
    TimelineVm {
        title: format!(
            "Timeline: last {window_s:.0}s, nodes {}–{} of {total}{dropped}",
            first,
            (first + lanes.len()).saturating_sub(1)
        ),
        axis: axis(cells, window_s),
        legend,
        message: lanes.is_empty().then(|| "no nodes yet".to_string()),
        lanes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_paint_waits_holds_and_faults_in_their_cells() {
        let mut snap = Snapshot {
            elapsed_s: 10.0,
            ..Snapshot::default()
        };
        snap.faults.push(crate::metrics::FaultWindow {
            start_s: 0.0,
            end_s: 1.9,
            kind: "pause".into(),
            nodes: vec![],
        });
        let spans = [HoldSpan {
            wait_start_us: 4_000_000,
            grant_us: 6_000_000,
            end_us: 7_000_000,
            key: 11,
            granted: true,
            overlapped: false,
        }];
        // 10 cells of 1 s over [0, 10).
        let mut grid = Grid::new(10, 0.0, 10.0);
        let l = lane(&snap, 3, &spans, &mut grid, 12);
        let text: String = l.runs.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(text, "~~  ..bb  ");
        // A cell mostly waiting shows waiting; one mostly holding shows the key.
        let spans = [HoldSpan {
            wait_start_us: 0,
            grant_us: 1_700_000,
            end_us: 2_600_000,
            key: 1,
            granted: true,
            overlapped: false,
        }];
        let mut grid = Grid::new(3, 0.0, 3.0);
        let l2 = lane(&Snapshot::default(), 0, &spans, &mut grid, 2);
        assert_eq!(
            l2.runs,
            vec![
                ("..".to_string(), CellKind::Wait),
                ("1".to_string(), CellKind::Hold)
            ]
        );
        assert_eq!(l.label, "n3");
        assert_eq!(axis(20, 10.0), "-10s    -5.0s    now");
    }
}
