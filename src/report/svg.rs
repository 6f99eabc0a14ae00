//! Inline SVG charts for the HTML reports: line charts (linear or log
//! axes), bar charts and event timelines. Hand-written rather than a plotting
//! crate: the output must be one self-contained, script-free file, and the few
//! shapes needed here are a couple of hundred lines; the plotting crates
//! (plotters, charming) either pull in font rasterising or emit JavaScript.
//!
//! Every function returns a complete `<svg>` element. All text is escaped.
//! The output is well-formed XML so the reports can be checked by a parser.

use std::fmt::Write;

/// One colour per backend (Okabe–Ito, distinguishable with colour-blindness).
pub const PALETTE: [&str; 8] = [
    "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442",
];

/// The colour of the `i`-th series.
pub fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// Escape text for HTML and XML (element content and attribute values).
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0 text.
            c if c.is_control() && c != '\n' && c != '\t' => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

/// How an axis maps values to positions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// Evenly spaced values.
    Linear,
    /// Decades evenly spaced; values below `floor` are drawn at `floor`.
    Log {
        /// Smallest value drawn (must be > 0).
        floor: f64,
    },
}

/// One axis: its range, scale, ticks and label.
#[derive(Debug, Clone)]
pub struct Axis {
    /// Axis title.
    pub label: String,
    /// Scale.
    pub scale: Scale,
    /// Smallest value shown.
    pub min: f64,
    /// Largest value shown.
    pub max: f64,
    /// Tick positions (values) and their labels.
    pub ticks: Vec<(f64, String)>,
}

impl Axis {
    /// A linear axis over `0..=max` with about five round ticks, labelled by `fmt`.
    pub fn linear_from_zero(label: &str, max: f64, fmt: impl Fn(f64) -> String) -> Axis {
        let max = if max.is_finite() && max > 0.0 {
            max
        } else {
            1.0
        };
        let step = nice_step(max / 5.0);
        let top = (max / step).ceil() * step;
        let ticks = (0..)
            .map(|i| i as f64 * step)
            .take_while(|v| *v <= top * (1.0 + 1e-9))
            .map(|v| (v, fmt(v)))
            .collect();
        Axis {
            label: label.into(),
            scale: Scale::Linear,
            min: 0.0,
            max: top,
            ticks,
        }
    }

    /// A linear axis over exactly `0..=max` (a time axis), ticks at round steps.
    pub fn linear_exact(label: &str, max: f64, fmt: impl Fn(f64) -> String) -> Axis {
        let max = if max.is_finite() && max > 0.0 {
            max
        } else {
            1.0
        };
        let step = nice_step(max / 8.0);
        let ticks = (0..)
            .map(|i| i as f64 * step)
            .take_while(|v| *v <= max * (1.0 + 1e-9))
            .map(|v| (v, fmt(v)))
            .collect();
        Axis {
            label: label.into(),
            scale: Scale::Linear,
            min: 0.0,
            max,
            ticks,
        }
    }

    /// A log axis over whole decades covering `lo..=hi` (both > 0), labelled by `fmt`.
    pub fn log_decades(label: &str, lo: f64, hi: f64, fmt: impl Fn(f64) -> String) -> Axis {
        let lo = lo.max(1.0);
        let hi = hi.max(lo * 10.0);
        let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
        let ticks = (a..=b)
            .map(|e| {
                let v = 10f64.powi(e);
                (v, fmt(v))
            })
            .collect();
        Axis {
            label: label.into(),
            scale: Scale::Log {
                floor: 10f64.powi(a),
            },
            min: 10f64.powi(a),
            max: 10f64.powi(b),
            ticks,
        }
    }

    /// Position of `v` in 0..=1 along the axis (clamped).
    pub fn frac(&self, v: f64) -> f64 {
        let f = match self.scale {
            Scale::Linear => (v - self.min) / (self.max - self.min),
            Scale::Log { floor } => {
                let t = |x: f64| x.max(floor).log10();
                (t(v) - t(self.min)) / (t(self.max) - t(self.min))
            }
        };
        if f.is_finite() {
            f.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }
}

/// A round step (1, 2 or 5 times a power of ten) no smaller than `raw`.
pub fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    let n = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    n * p
}

/// One line of a line chart.
#[derive(Debug, Clone)]
pub struct Line {
    /// Legend entry.
    pub name: String,
    /// Stroke colour.
    pub color: String,
    /// Dashed stroke (a second measure of the same series).
    pub dashed: bool,
    /// (x, y) in axis units, in x order.
    pub points: Vec<(f64, f64)>,
}

/// A shaded span of the x axis (e.g. warmup, a fault).
#[derive(Debug, Clone)]
pub struct Band {
    /// Start, x units.
    pub from: f64,
    /// End, x units.
    pub to: f64,
    /// Label shown at the top of the band.
    pub label: String,
}

/// A line chart: several lines over shared axes, with a legend.
#[derive(Debug, Clone)]
pub struct LineChart {
    /// Accessible title (also the SVG `<title>`).
    pub title: String,
    /// Horizontal axis.
    pub x: Axis,
    /// Vertical axis.
    pub y: Axis,
    /// The lines.
    pub lines: Vec<Line>,
    /// Shaded spans.
    pub bands: Vec<Band>,
}

const W: f64 = 640.0;
const H: f64 = 300.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 58.0;

fn open_svg(o: &mut String, class: &str, title: &str, w: f64, h: f64) {
    let _ = write!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart {class}" viewBox="0 0 {w} {h}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = esc(title)
    );
}

fn legend(o: &mut String, items: &[(&str, &str, bool)], y: f64) {
    let mut x = LEFT;
    for (name, col, dashed) in items {
        let dash = if *dashed {
            r#" stroke-dasharray="5 3""#
        } else {
            ""
        };
        let _ = write!(
            o,
            r#"<line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{col}" stroke-width="2.5"{dash}/><text x="{:.1}" y="{:.1}" class="legend">{}</text>"#,
            x + 18.0,
            x + 22.0,
            y + 4.0,
            esc(name)
        );
        x += 34.0 + 6.5 * name.chars().count() as f64;
    }
}

impl LineChart {
    /// The `<svg>` element.
    pub fn render(&self) -> String {
        let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
        let px = |v: f64| LEFT + self.x.frac(v) * pw;
        let py = |v: f64| TOP + (1.0 - self.y.frac(v)) * ph;
        let mut o = String::new();
        open_svg(&mut o, "line", &self.title, W, H);
        for b in &self.bands {
            let (x0, x1) = (px(b.from), px(b.to));
            let _ = write!(
                o,
                r#"<rect class="band" x="{x0:.1}" y="{TOP}" width="{:.1}" height="{ph}"/><text class="band-label" x="{:.1}" y="{:.1}">{}</text>"#,
                (x1 - x0).max(1.0),
                x0 + 3.0,
                TOP + 11.0,
                esc(&b.label)
            );
        }
        for (v, label) in &self.y.ticks {
            let y = py(*v);
            let _ = write!(
                o,
                r#"<line class="grid" x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT + pw,
                LEFT - 5.0,
                y + 4.0,
                esc(label)
            );
        }
        for (v, label) in &self.x.ticks {
            let x = px(*v);
            // The rightmost label ends at the frame, so it is not cut off.
            let anchor = if self.x.frac(*v) > 0.97 {
                "end"
            } else {
                "middle"
            };
            let _ = write!(
                o,
                r#"<line class="grid" x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}"/><text class="tick" x="{x:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
                TOP + ph,
                TOP + ph + 15.0,
                esc(label)
            );
        }
        let _ = write!(
            o,
            r#"<rect class="frame" x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}"/><text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text><text class="axis" transform="translate(13 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            LEFT + pw / 2.0,
            TOP + ph + 32.0,
            esc(&self.x.label),
            TOP + ph / 2.0,
            esc(&self.y.label)
        );
        for l in &self.lines {
            if l.points.is_empty() {
                continue;
            }
            let dash = if l.dashed {
                r#" stroke-dasharray="5 3""#
            } else {
                ""
            };
            let _ = write!(
                o,
                r#"<polyline class="series" fill="none" stroke="{}" stroke-width="2"{dash} points=""#,
                esc(&l.color)
            );
            for (i, (x, y)) in l.points.iter().enumerate() {
                if i > 0 {
                    o.push(' ');
                }
                let _ = write!(o, "{:.1},{:.1}", px(*x), py(*y));
            }
            o.push_str(r#""/>"#);
            if l.points.len() == 1 {
                let (x, y) = l.points[0];
                let _ = write!(
                    o,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                    px(x),
                    py(y),
                    esc(&l.color)
                );
            }
        }
        if self.lines.iter().all(|l| l.points.is_empty()) {
            no_data(&mut o, LEFT + pw / 2.0, TOP + ph / 2.0);
        }
        let items: Vec<(&str, &str, bool)> = self
            .lines
            .iter()
            .map(|l| (l.name.as_str(), l.color.as_str(), l.dashed))
            .collect();
        legend(&mut o, &items, H - 10.0);
        o.push_str("</svg>");
        o
    }
}

fn no_data(o: &mut String, x: f64, y: f64) {
    let _ = write!(
        o,
        r#"<text class="nodata" x="{x:.1}" y="{y:.1}" text-anchor="middle">no data</text>"#
    );
}

/// One bar of a bar chart.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Label under the bar (shown when there is room) and in its tooltip.
    pub label: String,
    /// Height in value units.
    pub value: f64,
    /// Fill colour.
    pub color: String,
}

/// A vertical bar chart with an optional reference line (e.g. the mean).
#[derive(Debug, Clone)]
pub struct BarChart {
    /// Accessible title.
    pub title: String,
    /// Vertical axis (usually [`Axis::linear_from_zero`]).
    pub y: Axis,
    /// Horizontal axis title.
    pub x_label: String,
    /// The bars, left to right.
    pub bars: Vec<Bar>,
    /// A horizontal reference line: (value, label).
    pub reference: Option<(f64, String)>,
}

impl BarChart {
    /// The `<svg>` element.
    pub fn render(&self) -> String {
        let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
        let py = |v: f64| TOP + (1.0 - self.y.frac(v)) * ph;
        let mut o = String::new();
        open_svg(&mut o, "bars", &self.title, W, H);
        for (v, label) in &self.y.ticks {
            let y = py(*v);
            let _ = write!(
                o,
                r#"<line class="grid" x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT + pw,
                LEFT - 5.0,
                y + 4.0,
                esc(label)
            );
        }
        let n = self.bars.len().max(1) as f64;
        let slot = pw / n;
        let gap = if slot > 6.0 { slot * 0.2 } else { 0.0 };
        let show_labels = slot >= 14.0;
        let label_every = if show_labels {
            1
        } else {
            // Label about 16 bars across the axis.
            (self.bars.len() / 16).max(1)
        };
        for (i, b) in self.bars.iter().enumerate() {
            let x = LEFT + i as f64 * slot + gap / 2.0;
            let y = py(b.value);
            let _ = write!(
                o,
                r#"<rect class="bar" x="{x:.2}" y="{y:.1}" width="{:.2}" height="{:.1}" fill="{}"><title>{}</title></rect>"#,
                (slot - gap).max(0.5),
                (TOP + ph - y).max(0.0),
                esc(&b.color),
                esc(&format!(
                    "{}: {}",
                    b.label,
                    crate::report::text::fmt_num(b.value)
                ))
            );
            if i % label_every == 0 {
                let _ = write!(
                    o,
                    r#"<text class="tick" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                    x + (slot - gap) / 2.0,
                    TOP + ph + 15.0,
                    esc(&b.label)
                );
            }
        }
        if self.bars.is_empty() {
            no_data(&mut o, LEFT + pw / 2.0, TOP + ph / 2.0);
        }
        if let Some((v, label)) = &self.reference {
            let y = py(*v);
            let _ = write!(
                o,
                r#"<line class="ref" x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text class="ref-label" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT + pw,
                LEFT + pw - 4.0,
                y - 4.0,
                esc(label)
            );
        }
        let _ = write!(
            o,
            r#"<rect class="frame" x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}"/><text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text><text class="axis" transform="translate(13 {:.1}) rotate(-90)" text-anchor="middle">{}</text></svg>"#,
            LEFT + pw / 2.0,
            TOP + ph + 32.0,
            esc(&self.x_label),
            TOP + ph / 2.0,
            esc(&self.y.label)
        );
        o
    }
}

/// What happens on one lane of a timeline.
#[derive(Debug, Clone)]
pub enum Mark {
    /// A span (a fault): from, to (seconds), label, whether it was applied.
    Span(f64, f64, String, bool),
    /// A count in an interval ending at `t` (seconds) of length `dt`: violations.
    Count(f64, f64, u64),
    /// One event at `t` (seconds) with a tooltip.
    Point(f64, String),
}

/// One lane of a timeline.
#[derive(Debug, Clone)]
pub struct Lane {
    /// Lane name (left).
    pub name: String,
    /// Colour of its marks.
    pub color: String,
    /// Its marks.
    pub marks: Vec<Mark>,
}

/// Lanes of events over run time (violations, faults).
#[derive(Debug, Clone)]
pub struct Timeline {
    /// Accessible title.
    pub title: String,
    /// Run length, seconds.
    pub total_s: f64,
    /// Warmup, seconds (shaded).
    pub warmup_s: f64,
    /// The lanes, top to bottom.
    pub lanes: Vec<Lane>,
}

const LANE_H: f64 = 34.0;
const TL_LEFT: f64 = 130.0;
/// Timelines span the page: twice as wide as a chart, so text keeps its size.
const TL_W: f64 = 1280.0;

impl Timeline {
    /// The `<svg>` element.
    pub fn render(&self) -> String {
        let total = if self.total_s > 0.0 {
            self.total_s
        } else {
            1.0
        };
        let pw = TL_W - TL_LEFT - RIGHT;
        let h = TOP + LANE_H * self.lanes.len().max(1) as f64 + 40.0;
        let px = |t: f64| TL_LEFT + (t / total).clamp(0.0, 1.0) * pw;
        let mut o = String::new();
        open_svg(&mut o, "timeline", &self.title, TL_W, h);
        let bottom = TOP + LANE_H * self.lanes.len().max(1) as f64;
        if self.warmup_s > 0.0 {
            let _ = write!(
                o,
                r#"<rect class="band" x="{TL_LEFT}" y="{TOP}" width="{:.1}" height="{:.1}"/><text class="band-label" x="{:.1}" y="{:.1}">warmup</text>"#,
                px(self.warmup_s) - TL_LEFT,
                bottom - TOP,
                TL_LEFT + 3.0,
                TOP + 11.0
            );
        }
        let max_count = self
            .lanes
            .iter()
            .flat_map(|l| &l.marks)
            .filter_map(|m| match m {
                Mark::Count(_, _, c) => Some(*c),
                _ => None,
            })
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        for (i, lane) in self.lanes.iter().enumerate() {
            let y0 = TOP + LANE_H * i as f64;
            let mid = y0 + LANE_H / 2.0;
            let _ = write!(
                o,
                r#"<line class="grid" x1="{TL_LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/><text class="lane" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                y0 + LANE_H,
                TL_LEFT + pw,
                y0 + LANE_H,
                TL_LEFT - 6.0,
                mid + 4.0,
                esc(&lane.name)
            );
            let col = esc(&lane.color);
            let mut empty = true;
            for m in &lane.marks {
                match m {
                    Mark::Span(from, to, label, applied) => {
                        empty = false;
                        let (x0, x1) = (px(*from), px(from.max(*to)));
                        let _ = write!(
                            o,
                            r#"<rect class="{}" x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{col}"><title>{}</title></rect><text class="span-label" x="{:.1}" y="{:.1}">{}</text>"#,
                            if *applied { "span" } else { "span planned" },
                            y0 + 6.0,
                            (x1 - x0).max(3.0),
                            LANE_H - 12.0,
                            esc(label),
                            x0 + 3.0,
                            mid + 4.0,
                            esc(label)
                        );
                    }
                    Mark::Count(t, dt, c) if *c > 0 => {
                        empty = false;
                        let hgt = (LANE_H - 8.0) * (*c as f64 / max_count).max(0.15);
                        let (x0, x1) = (px(t - dt), px(*t));
                        let _ = write!(
                            o,
                            r#"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{hgt:.1}" fill="{col}"><title>{}</title></rect>"#,
                            y0 + LANE_H - 4.0 - hgt,
                            (x1 - x0 - 1.0).max(2.0),
                            esc(&format!("{c} violations in {:.1}–{:.1} s", t - dt, t))
                        );
                    }
                    Mark::Count(..) => {}
                    Mark::Point(t, tip) => {
                        empty = false;
                        let _ = write!(
                            o,
                            r##"<path d="M{:.1} {:.1} l5 7 l-5 7 l-5 -7 z" fill="{col}" stroke="#fff"><title>{}</title></path>"##,
                            px(*t),
                            y0 + 3.0,
                            esc(tip)
                        );
                    }
                }
            }
            if empty {
                let _ = write!(
                    o,
                    r#"<text class="lane-empty" x="{:.1}" y="{:.1}">none</text>"#,
                    TL_LEFT + 6.0,
                    mid + 4.0
                );
            }
        }
        let step = nice_step(total / 16.0);
        let mut t = 0.0;
        while t <= total * (1.0 + 1e-9) {
            let x = px(t);
            let _ = write!(
                o,
                r#"<line class="grid" x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{bottom:.1}"/><text class="tick" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                bottom + 15.0,
                esc(&format!("{}s", crate::report::chart::trim(t)))
            );
            t += step;
        }
        let _ = write!(
            o,
            r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">run time (s)</text></svg>"#,
            TL_LEFT + pw / 2.0,
            bottom + 32.0
        );
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(esc("a\u{1}b"), "a\u{fffd}b");
    }

    #[test]
    fn nice_steps_are_round() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(1.3), 2.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(230.0), 500.0);
        assert_eq!(nice_step(0.0), 1.0);
    }

    #[test]
    fn axes_map_values() {
        let a = Axis::linear_from_zero("x", 9.0, |v| v.to_string());
        assert_eq!(a.max, 10.0);
        assert_eq!(a.ticks.len(), 6);
        assert_eq!(a.frac(5.0), 0.5);
        let l = Axis::log_decades("y", 30.0, 2000.0, |v| v.to_string());
        assert_eq!((l.min, l.max), (10.0, 10_000.0));
        assert_eq!(l.ticks.len(), 4);
        assert!((l.frac(100.0) - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(l.frac(0.0), 0.0);
    }
}
