//! The charts of the HTML reports, built from finished runs. Shared by
//! `report.html` (one run) and `compare.html` (one line per backend).

use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;

use super::human_us;
use super::svg::{Axis, Band, Bar, BarChart, Lane, Line, LineChart, Mark, Timeline, color};
use super::text::fmt_num;
use crate::metrics::{MERGED_SIGFIG, RunResult, new_histogram};

/// A run as it appears in a chart: its legend name and colour.
#[derive(Debug, Clone, Copy)]
pub struct Plotted<'a> {
    /// Legend entry (`mem:fifo`).
    pub name: &'a str,
    /// Line colour.
    pub color: &'a str,
    /// The run.
    pub run: &'a RunResult,
}

/// The measured acquire latencies of a run, merged from its interval
/// histograms (µs). `None` when nothing was recorded or decoding failed.
pub fn acquire_histogram(r: &RunResult) -> Option<Histogram<u64>> {
    let mut all = new_histogram(MERGED_SIGFIG);
    let mut de = Deserializer::new();
    for iv in &r.interval_histograms {
        let h: Histogram<u64> = de.deserialize(&mut iv.encoded.as_slice()).ok()?;
        all.add(&h).ok()?;
    }
    (!all.is_empty()).then_some(all)
}

/// Deepest percentile plotted: 99.999 % (five nines).
const MAX_NINES: f64 = 5.0;
/// Points per decade of the percentile curve.
const POINTS_PER_NINE: u32 = 20;

/// The HdrHistogram percentile curve: (nines, µs), where nines =
/// log10(1 / (1 - q)): 0 is the minimum, 1 is p90, 2 is p99, 3 is p99.9.
/// The curve stops at the deepest percentile the sample size supports
/// (log10 of the count, at most five nines) and ends at the maximum.
pub fn percentile_curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let depth = (h.len() as f64).log10().clamp(1.0, MAX_NINES);
    let n = (depth * POINTS_PER_NINE as f64).ceil() as u32;
    let mut pts: Vec<(f64, f64)> = (0..=n)
        .map(|i| {
            let nines = depth * i as f64 / n as f64;
            let q = 1.0 - 10f64.powf(-nines);
            (nines, h.value_at_quantile(q) as f64)
        })
        .collect();
    if let Some(last) = pts.last_mut() {
        last.1 = last.1.max(h.max() as f64);
    }
    pts
}

/// The label of a position on the percentile axis.
pub fn nines_label(nines: f64) -> String {
    match nines.round() as i32 {
        0 => "0%".into(),
        1 => "90%".into(),
        2 => "99%".into(),
        3 => "99.9%".into(),
        4 => "99.99%".into(),
        _ => "99.999%".into(),
    }
}

fn time_axis(runs: &[Plotted]) -> Axis {
    let total = runs
        .iter()
        .map(|p| p.run.duration_s.max(p.run.elapsed_s))
        .fold(0.0, f64::max);
    Axis::linear_exact("run time (s)", total, |v| format!("{}s", trim(v)))
}

fn warmup_band(runs: &[Plotted]) -> Vec<Band> {
    let w = runs.iter().map(|p| p.run.warmup_s).fold(0.0, f64::max);
    if w > 0.0 {
        vec![Band {
            from: 0.0,
            to: w,
            label: "warmup".into(),
        }]
    } else {
        Vec::new()
    }
}

/// A tick value without trailing zeros: `2.5`, `0.25`, `3`.
pub fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

fn short_count(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if v >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

/// Acquisitions per second over run time, one line per run.
pub fn throughput(runs: &[Plotted]) -> LineChart {
    let max = runs
        .iter()
        .flat_map(|p| whole_intervals(p.run))
        .map(|s| s.throughput_per_s)
        .fold(0.0, f64::max);
    LineChart {
        title: "Acquisitions per second over time".into(),
        x: time_axis(runs),
        y: Axis::linear_from_zero("acquisitions / s", max * 1.05, short_count),
        lines: runs
            .iter()
            .map(|p| Line {
                name: p.name.into(),
                color: p.color.into(),
                dashed: false,
                points: whole_intervals(p.run)
                    .map(|s| (s.t_s, s.throughput_per_s))
                    .collect(),
            })
            .collect(),
        bands: warmup_band(runs),
    }
}

fn us_axis(label: &str, values: impl Iterator<Item = f64>) -> Axis {
    let (lo, hi) = values
        .filter(|v| *v > 0.0)
        .fold((f64::MAX, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let lo = if lo == f64::MAX { 1.0 } else { lo };
    Axis::log_decades(label, lo, hi.max(lo), decade_label)
}

/// A decade of microseconds, short: `1µs`, `10µs`, `1ms`, `100ms`, `10s`.
pub fn decade_label(us: f64) -> String {
    if us >= 1e6 {
        format!("{}s", trim(us / 1e6))
    } else if us >= 1e3 {
        format!("{}ms", trim(us / 1e3))
    } else {
        format!("{}µs", trim(us))
    }
}

/// The series points worth plotting: the last interval of a run is often a
/// sliver (the run stopped just after a tick) whose rate is noise; drop
/// intervals shorter than half a tick.
fn whole_intervals(r: &RunResult) -> impl Iterator<Item = &crate::metrics::SeriesPoint> {
    let mut prev = r.warmup_s;
    let min = r.tick_s / 2.0;
    r.snapshot.series.iter().filter(move |s| {
        let keep = s.t_s - prev >= min;
        prev = s.t_s;
        keep
    })
}

/// Acquire latency p50 (solid) and p99 (dashed) per interval, one colour per run.
pub fn latency_over_time(runs: &[Plotted]) -> LineChart {
    let y = us_axis(
        "acquire latency (log)",
        runs.iter()
            .flat_map(|p| whole_intervals(p.run))
            .flat_map(|s| [s.p50_us as f64, s.p99_us as f64]),
    );
    let mut lines = Vec::new();
    for p in runs {
        let pick = |f: fn(&crate::metrics::SeriesPoint) -> u64| -> Vec<(f64, f64)> {
            whole_intervals(p.run)
                .filter(|s| s.acquired > 0)
                .map(|s| (s.t_s, f(s) as f64))
                .collect()
        };
        lines.push(Line {
            name: format!("{} p50", p.name),
            color: p.color.into(),
            dashed: false,
            points: pick(|s| s.p50_us),
        });
        lines.push(Line {
            name: format!("{} p99", p.name),
            color: p.color.into(),
            dashed: true,
            points: pick(|s| s.p99_us),
        });
    }
    LineChart {
        title: "Acquire latency over time (p50 solid, p99 dashed)".into(),
        x: time_axis(runs),
        y,
        lines,
        bands: warmup_band(runs),
    }
}

/// The acquire-latency percentile distribution, log-scaled tail, one line per run.
pub fn percentiles(runs: &[Plotted]) -> LineChart {
    let curves: Vec<Vec<(f64, f64)>> = runs
        .iter()
        .map(|p| {
            acquire_histogram(p.run)
                .map(|h| percentile_curve(&h))
                .unwrap_or_default()
        })
        .collect();
    let depth = curves
        .iter()
        .filter_map(|c| c.last().map(|p| p.0))
        .fold(1.0, f64::max);
    // Round up to whole nines, unless the curve only just passes one.
    let depth = (depth - 0.05).ceil().max(1.0);
    let x = Axis {
        label: "percentile (log-scaled tail)".into(),
        scale: super::svg::Scale::Linear,
        min: 0.0,
        max: depth,
        ticks: (0..=depth as i32)
            .map(|i| (i as f64, nines_label(i as f64)))
            .collect(),
    };
    let y = us_axis(
        "acquire latency (log)",
        curves.iter().flatten().map(|p| p.1),
    );
    LineChart {
        title: "Acquire latency by percentile".into(),
        x,
        y,
        lines: runs
            .iter()
            .zip(curves)
            .map(|(p, points)| Line {
                name: p.name.into(),
                color: p.color.into(),
                dashed: false,
                points,
            })
            .collect(),
        bands: Vec::new(),
    }
}

/// Most bars drawn; more nodes are grouped into consecutive buckets.
pub const MAX_BARS: usize = 128;

/// Acquisitions per node, with the mean as a reference line.
pub fn fairness(r: &RunResult, bar_color: &str) -> BarChart {
    let nodes = &r.snapshot.nodes;
    let per = nodes.len().div_ceil(MAX_BARS).max(1);
    let bars: Vec<Bar> = nodes
        .chunks(per)
        .map(|c| {
            let sum: u64 = c.iter().map(|n| n.acquired).sum();
            let label = match (c.first(), c.last()) {
                (Some(a), Some(b)) if a.id != b.id => format!("{}–{}", a.id, b.id),
                (Some(a), _) => a.id.to_string(),
                _ => String::new(),
            };
            Bar {
                label,
                value: sum as f64 / c.len() as f64,
                color: bar_color.into(),
            }
        })
        .collect();
    let mean = if nodes.is_empty() {
        0.0
    } else {
        nodes.iter().map(|n| n.acquired).sum::<u64>() as f64 / nodes.len() as f64
    };
    let max = bars.iter().map(|b| b.value).fold(mean, f64::max);
    let f = &r.snapshot.fairness;
    BarChart {
        title: format!(
            "Acquisitions per node (Jain {:.3}, {} FIFO inversions)",
            f.jain, f.fifo_inversions
        ),
        y: Axis::linear_from_zero("acquisitions", max * 1.05, short_count),
        x_label: if per > 1 {
            format!("node (mean of {per} nodes per bar)")
        } else {
            "node".into()
        },
        bars,
        reference: (!nodes.is_empty()).then(|| (mean, format!("mean {}", fmt_num(mean.round())))),
    }
}

/// One bar per run for a headline figure (compare.html); `top` fixes the
/// axis maximum (Jain's index: 1).
pub fn per_run_bars(
    title: &str,
    y_label: &str,
    runs: &[Plotted],
    top: Option<f64>,
    value: impl Fn(&RunResult) -> f64,
) -> BarChart {
    let bars: Vec<Bar> = runs
        .iter()
        .map(|p| Bar {
            label: p.name.into(),
            value: value(p.run),
            color: p.color.into(),
        })
        .collect();
    let max = bars.iter().map(|b| b.value).fold(0.0, f64::max) * 1.05;
    BarChart {
        title: title.into(),
        y: Axis::linear_from_zero(y_label, top.unwrap_or(max), short_count),
        x_label: "backend".into(),
        bars,
        reference: None,
    }
}

/// The scenario's faults, then violations per interval (and the latest
/// examples) for each run, over run time.
pub fn violations_timeline(runs: &[Plotted]) -> Timeline {
    let total_s = runs
        .iter()
        .map(|p| p.run.duration_s.max(p.run.elapsed_s))
        .fold(0.0, f64::max);
    let warmup_s = runs.iter().map(|p| p.run.warmup_s).fold(0.0, f64::max);
    let mut lanes = Vec::new();
    let faults = runs.first().map(|p| &p.run.faults);
    lanes.push(Lane {
        name: "faults".into(),
        color: "#7f7f7f".into(),
        marks: faults
            .into_iter()
            .flatten()
            .map(|f| {
                let applied = if f.applied { "" } else { " (not applied)" };
                Mark::Span(
                    f.at_s,
                    f.at_s + f.duration_s,
                    format!("{} {}{applied}", f.kind, f.target),
                    f.applied,
                )
            })
            .collect(),
    });
    for p in runs {
        let r = p.run;
        let mut marks = Vec::new();
        let mut prev_t = r.warmup_s;
        for s in &r.snapshot.series {
            marks.push(Mark::Count(s.t_s, (s.t_s - prev_t).max(0.0), s.violations));
            prev_t = s.t_s;
        }
        for e in &r.snapshot.safety.examples {
            marks.push(Mark::Point(
                e.t_s,
                format!(
                    "{:.3} s: nodes {} and {} both held {} for {} ({})",
                    e.t_s,
                    e.nodes[0],
                    e.nodes[1],
                    e.key,
                    human_us(e.overlap_us),
                    if e.fenced { "fenced" } else { "unfenced" }
                ),
            ));
        }
        lanes.push(Lane {
            name: if runs.len() == 1 {
                "violations".into()
            } else {
                p.name.into()
            },
            color: if runs.len() == 1 {
                "#d62728".into()
            } else {
                p.color.into()
            },
            marks,
        });
    }
    Timeline {
        title: "Violations and faults over run time".into(),
        total_s,
        warmup_s,
        lanes,
    }
}

/// The colour of the `i`-th run in a comparison.
pub fn run_color(i: usize) -> &'static str {
    color(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_curve_reaches_the_max_and_is_monotonic() {
        let mut h = new_histogram(3);
        for v in 1..=1000u64 {
            h.record(v).unwrap();
        }
        let c = percentile_curve(&h);
        assert_eq!(c.first().unwrap().0, 0.0);
        assert!((c.last().unwrap().0 - 3.0).abs() < 1e-9);
        assert_eq!(c.last().unwrap().1, 1000.0);
        assert!(c.windows(2).all(|w| w[0].1 <= w[1].1 && w[0].0 < w[1].0));
        let p90 = c.iter().find(|p| (p.0 - 1.0).abs() < 1e-9).unwrap().1;
        assert_eq!(p90, 900.0);
    }

    #[test]
    fn merges_the_interval_histograms() {
        let r = crate::report::fixture::result();
        let h = acquire_histogram(&r).unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(nines_label(2.0), "99%");
        assert_eq!(trim(2.5), "2.5");
        assert_eq!(trim(3.0), "3");
        assert_eq!(short_count(1500.0), "1.5k");
        assert_eq!(decade_label(100_000.0), "100ms");
    }

    #[test]
    fn groups_many_nodes_into_buckets() {
        let mut r = crate::report::fixture::result();
        r.snapshot.nodes = (0..300)
            .map(|id| crate::metrics::NodeRow {
                id,
                acquired: u64::from(id),
                ..Default::default()
            })
            .collect();
        let c = fairness(&r, "#000");
        assert_eq!(c.bars.len(), 100);
        assert_eq!(c.bars[0].label, "0–2");
        assert_eq!(c.bars[0].value, 1.0);
    }
}
