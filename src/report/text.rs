//! The plain-text summary printed at the end of a headless run (and after the
//! dashboard closes). Aligned columns, no colour codes: the caller decides.

use std::fmt::Write;

use super::human_us;
use crate::metrics::RunResult;

/// Property badges: `fenced fair lease UNSAFE`.
pub fn badges(r: &RunResult) -> String {
    let p = r.properties;
    let mut b = Vec::new();
    b.push(if p.fencing { "fenced" } else { "no-fencing" });
    if p.fair {
        b.push("fair");
    }
    b.push(if p.lease { "lease" } else { "session" });
    if p.r#unsafe {
        b.push("UNSAFE");
    }
    b.join(" ")
}

/// The summary: what ran, throughput, latency, fairness, safety, thresholds.
pub fn summary(r: &RunResult) -> String {
    let s = &r.snapshot;
    let t = &s.totals;
    let mut o = String::new();
    let state = if r.completed {
        "completed"
    } else {
        "stopped early"
    };
    let _ = writeln!(
        o,
        "{} — {}:{} [{}] — {} nodes, {} keys — {} after {:.1}s (seed {})",
        r.scenario_name,
        r.backend_kind,
        r.backend_variant,
        badges(r),
        r.nodes,
        r.keys,
        state,
        r.elapsed_s,
        r.seed
    );
    let _ = writeln!(
        o,
        "  acquired {} of {} attempts ({:.0}/s), {} timeouts, {} errors, {} released",
        t.acquired, t.attempts, t.throughput_per_s, t.timeouts, t.errors, t.released
    );
    let _ = writeln!(
        o,
        "  latency       p50       p90       p99     p99.9       max"
    );
    for (name, l) in [
        ("acquire", &s.latency.acquire),
        ("release", &s.latency.release),
        ("handoff", &s.latency.handoff),
    ] {
        if l.count == 0 {
            let _ = writeln!(o, "  {name:<8}  {:>8}", "-");
            continue;
        }
        let _ = writeln!(
            o,
            "  {name:<8}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}",
            human_us(l.p50),
            human_us(l.p90),
            human_us(l.p99),
            human_us(l.p999),
            human_us(l.max)
        );
    }
    let f = &s.fairness;
    let _ = writeln!(
        o,
        "  fairness  jain {:.3}  cov {:.3}  per node {}..{}  longest wait {}  fifo inversions {}",
        f.jain,
        f.cov,
        f.min_node_acquired,
        f.max_node_acquired,
        human_us(f.max_wait_us),
        f.fifo_inversions
    );
    let sf = &s.safety;
    let verdict = if sf.violations == 0 {
        "no violations".to_string()
    } else {
        format!(
            "VIOLATIONS {} ({} fenced, {} unfenced)",
            sf.violations, sf.fenced_violations, sf.unfenced_violations
        )
    };
    let _ = writeln!(
        o,
        "  safety    {verdict}  lost leases {}  lost updates {}",
        sf.lost_leases, sf.lost_updates
    );
    for e in sf.examples.iter().rev().take(3) {
        let _ = writeln!(
            o,
            "            at {:.3}s key {} nodes {} and {} overlapped {} ({})",
            e.t_s,
            e.key,
            e.nodes[0],
            e.nodes[1],
            human_us(e.overlap_us),
            if e.fenced { "fenced" } else { "unfenced" }
        );
    }
    if !r.thresholds.is_empty() {
        let _ = writeln!(o, "  thresholds");
        for th in &r.thresholds {
            let _ = writeln!(
                o,
                "    {:<4} {:<24} limit {:<12} actual {}",
                if th.passed { "ok" } else { "FAIL" },
                th.name,
                fmt_num(th.limit),
                fmt_num(th.actual)
            );
        }
    }
    if !r.faults.is_empty() {
        let _ = writeln!(o, "  faults");
        for f in &r.faults {
            let what = match (f.applied, f.start_s, f.end_s) {
                (true, Some(a), Some(b)) if b > a => format!("{a:.1}–{b:.1}s"),
                (true, Some(a), _) => format!("at {a:.1}s"),
                _ => "not applied".to_string(),
            };
            let recovery = match f.recovery_s {
                Some(x) => format!("recovered in {}", human_us((x * 1e6) as u64)),
                None if f.applied => "no grant after it".to_string(),
                None => String::new(),
            };
            let _ = writeln!(
                o,
                "    {:<9} nodes {:<8} {:<14} acquired {:<6} errors {:<5} timeouts {:<5} {recovery}",
                f.kind, f.target, what, f.acquired, f.errors, f.timeouts
            );
            if let Some(d) = &f.detail {
                let d: String = d.replace('\n', " ").chars().take(160).collect();
                let _ = writeln!(o, "              {d}");
            }
        }
    }
    for w in &r.warnings {
        let _ = writeln!(o, "  warning: {w}");
    }
    o
}

/// A number without needless decimals.
pub fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:.3}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn summary_names_the_figures() {
        let s = super::summary(&crate::report::fixture::result());
        assert!(
            s.starts_with("fixture — mem:fifo [fenced fair lease] — 2 nodes, 1 keys — completed")
        );
        assert!(s.contains("acquired 1000 of 1010 attempts (100/s), 10 timeouts"));
        assert!(s.contains("VIOLATIONS 2 (2 fenced, 0 unfenced)"));
        assert!(s.contains("ok   max_unfenced_violations"));
        assert!(s.contains("900µs"));
    }

    #[test]
    fn snapshot() {
        insta::assert_snapshot!(super::summary(&crate::report::fixture::result()));
    }
}
