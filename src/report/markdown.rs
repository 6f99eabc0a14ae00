//! `report.md`: the run for a person reading it in a repository or a PR.

use std::fmt::Write;

use super::human_us;
use super::text::{badges, fmt_num};
use crate::metrics::RunResult;

/// The Markdown text.
pub fn render(r: &RunResult) -> String {
    let s = &r.snapshot;
    let t = &s.totals;
    let mut o = String::new();
    let _ = writeln!(o, "# lockstorm report: {}\n", r.scenario_name);
    let _ = writeln!(
        o,
        "`{}:{}` ({}) · {} nodes · {} keys · seed {} · {} after {:.1} s (warmup {:.1} s) · scenario `{}`\n",
        r.backend_kind,
        r.backend_variant,
        badges(r),
        r.nodes,
        r.keys,
        r.seed,
        if r.completed {
            "completed"
        } else {
            "**stopped early**"
        },
        r.elapsed_s,
        r.warmup_s,
        r.scenario_file
    );
    if !r.endpoints.is_empty() {
        let _ = writeln!(o, "Endpoints: {}\n", r.endpoints.join(", "));
    }
    for w in &r.warnings {
        let _ = writeln!(o, "> **Warning:** {w}\n");
    }
    let sf = &s.safety;
    let _ = writeln!(o, "## Safety\n");
    if sf.violations == 0 {
        let _ = writeln!(o, "No mutual-exclusion violations.\n");
    } else {
        let _ = writeln!(
            o,
            "**{} violations** ({} fenced, {} unfenced).\n",
            sf.violations, sf.fenced_violations, sf.unfenced_violations
        );
    }
    let _ = writeln!(
        o,
        "| violations | fenced | unfenced | lost leases | lost updates | stale accesses rejected |"
    );
    let _ = writeln!(o, "|---:|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        o,
        "| {} | {} | {} | {} | {} | {} |\n",
        sf.violations,
        sf.fenced_violations,
        sf.unfenced_violations,
        sf.lost_leases,
        sf.lost_updates,
        sf.stale_rejected
    );
    if !sf.examples.is_empty() {
        let _ = writeln!(o, "Latest violations:\n");
        let _ = writeln!(o, "| at | key | nodes | overlap | fenced |");
        let _ = writeln!(o, "|---:|---|---|---:|---|");
        for e in &sf.examples {
            let _ = writeln!(
                o,
                "| {:.3} s | `{}` | {} → {} | {} | {} |",
                e.t_s,
                e.key,
                e.nodes[0],
                e.nodes[1],
                human_us(e.overlap_us),
                if e.fenced { "yes" } else { "no" }
            );
        }
        o.push('\n');
    }
    let _ = writeln!(o, "## Throughput\n");
    let _ = writeln!(
        o,
        "| attempts | acquired | per second | timeouts | errors | released |"
    );
    let _ = writeln!(o, "|---:|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        o,
        "| {} | {} | {:.1} | {} | {} | {} |\n",
        t.attempts, t.acquired, t.throughput_per_s, t.timeouts, t.errors, t.released
    );
    let _ = writeln!(o, "## Latency\n");
    let _ = writeln!(
        o,
        "| | count | min | mean | p50 | p90 | p99 | p99.9 | max |"
    );
    let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, l) in [
        ("acquire", &s.latency.acquire),
        ("release", &s.latency.release),
        ("handoff", &s.latency.handoff),
    ] {
        let _ = writeln!(
            o,
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} |",
            l.count,
            human_us(l.min),
            human_us(l.mean.round() as u64),
            human_us(l.p50),
            human_us(l.p90),
            human_us(l.p99),
            human_us(l.p999),
            human_us(l.max)
        );
    }
    let f = &s.fairness;
    let _ = writeln!(o, "\n## Fairness\n");
    let _ = writeln!(
        o,
        "| Jain | CoV | min node | max node | longest wait | FIFO inversions |"
    );
    let _ = writeln!(o, "|---:|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        o,
        "| {:.3} | {:.3} | {} | {} | {} | {} |\n",
        f.jain,
        f.cov,
        f.min_node_acquired,
        f.max_node_acquired,
        human_us(f.max_wait_us),
        f.fifo_inversions
    );
    if !r.thresholds.is_empty() {
        let _ = writeln!(o, "## Thresholds\n");
        let _ = writeln!(o, "| threshold | limit | actual | result |");
        let _ = writeln!(o, "|---|---:|---:|---|");
        for th in &r.thresholds {
            let _ = writeln!(
                o,
                "| `{}` | {} | {} | {} |",
                th.name,
                fmt_num(th.limit),
                fmt_num(th.actual),
                if th.passed { "pass" } else { "**FAIL**" }
            );
        }
        o.push('\n');
    }
    if !r.faults.is_empty() {
        let _ = writeln!(o, "## Faults\n");
        let _ = writeln!(
            o,
            "| at | kind | nodes | window | acquired | errors | timeouts | recovery | applied |"
        );
        let _ = writeln!(o, "|---:|---|---|---|---:|---:|---:|---:|---|");
        for ft in &r.faults {
            let window = match (ft.start_s, ft.end_s) {
                (Some(a), Some(b)) => format!("{a:.2}–{b:.2} s"),
                (Some(a), None) => format!("{a:.2} s –"),
                _ => "–".to_string(),
            };
            let recovery = match ft.recovery_s {
                Some(x) if x < 1.0 => format!("{:.0} ms", x * 1e3),
                Some(x) => format!("{x:.2} s"),
                None if ft.applied => "none".to_string(),
                None => "–".to_string(),
            };
            let _ = writeln!(
                o,
                "| {:.1} s | {} | {} | {} | {} | {} | {} | {} | {} |",
                ft.at_s,
                ft.kind,
                ft.target,
                window,
                ft.acquired,
                ft.errors,
                ft.timeouts,
                recovery,
                if ft.applied { "yes" } else { "**no**" }
            );
        }
        o.push('\n');
        for (i, ft) in r.faults.iter().enumerate() {
            if let Some(d) = &ft.detail {
                let _ = writeln!(
                    o,
                    "- fault {} ({}): {}",
                    i + 1,
                    ft.kind,
                    d.replace('\n', " ")
                );
            }
        }
        if r.faults.iter().any(|f| f.detail.is_some()) {
            o.push('\n');
        }
        let _ = writeln!(
            o,
            "Recovery is the time from the end of a fault to the first grant to one of its nodes.\n"
        );
    }
    let _ = writeln!(o, "## Nodes\n");
    let _ = writeln!(
        o,
        "| node | acquired | timeouts | errors | p50 | p99 | longest wait |"
    );
    let _ = writeln!(o, "|---:|---:|---:|---:|---:|---:|---:|");
    const MAX_ROWS: usize = 64;
    for n in s.nodes.iter().take(MAX_ROWS) {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} |",
            n.id,
            n.acquired,
            n.timeouts,
            n.errors,
            human_us(n.p50_us),
            human_us(n.p99_us),
            human_us(n.max_wait_us)
        );
    }
    if s.nodes.len() > MAX_ROWS {
        let _ = writeln!(
            o,
            "\n({} more nodes in report.json)",
            s.nodes.len() - MAX_ROWS
        );
    }
    o
}

#[cfg(test)]
mod tests {
    #[test]
    fn sections_and_figures() {
        let md = super::render(&crate::report::fixture::result());
        assert!(md.starts_with("# lockstorm report: fixture\n"));
        assert!(md.contains("**2 violations** (2 fenced, 0 unfenced)."));
        assert!(md.contains(
            "| acquire | 1000 | 5µs | 121µs | 100µs | 200µs | 900µs | 1.50ms | 2.00ms |"
        ));
        assert!(md.contains("| `max_unfenced_violations` | 0 | 0 | pass |"));
        assert!(md.contains("| 1 | 400 | 10 | 0 | 0µs | 1.00ms | 0µs |"));
    }

    #[test]
    fn snapshot() {
        insta::assert_snapshot!(super::render(&crate::report::fixture::result()));
    }
}
