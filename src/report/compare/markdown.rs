//! `compare.md`: the comparison table (best value per column in bold) and
//! a plain-words verdict per backend.

use std::fmt::Write;

use super::{COLUMNS, best, property_words};
use crate::compare::{Comparison, Outcome, verdict::verdict};

/// Make text safe inside a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The Markdown text.
pub fn render(cmp: &Comparison) -> String {
    let s = &cmp.scenario;
    let mut o = String::new();
    let _ = writeln!(o, "# lockstorm compare: {}\n", s.name);
    let _ = writeln!(
        o,
        "Same workload for every backend, run one after another: {} nodes · {} keys · {:.1} s each (warmup {:.1} s) · seed {} · scenario `{}`{}\n",
        s.nodes,
        s.keys,
        s.duration_s,
        s.warmup_s,
        s.seed,
        s.file,
        if cmp.completed {
            String::new()
        } else {
            format!(
                " · **stopped early** ({} of {} backends ran)",
                cmp.stages.len(),
                cmp.planned
            )
        }
    );
    o.push_str("| backend | properties |");
    for c in COLUMNS {
        let _ = write!(o, " {} |", c.name);
    }
    o.push_str("\n|---|---|");
    for _ in COLUMNS {
        o.push_str("---:|");
    }
    o.push('\n');
    let marks = best(cmp);
    for (st, m) in cmp.stages.iter().zip(&marks) {
        let _ = write!(
            o,
            "| `{}` | {} |",
            st.label(),
            property_words(st.properties)
        );
        match &st.outcome {
            Outcome::Failed(_) => {
                o.push_str(" **failed** |");
                for _ in 1..COLUMNS.len() {
                    o.push_str(" – |");
                }
            }
            Outcome::Ok(r) => {
                for (c, is_best) in COLUMNS.iter().zip(m) {
                    let v = cell(&(c.show)(r));
                    if *is_best {
                        let _ = write!(o, " **{v}** |");
                    } else {
                        let _ = write!(o, " {v} |");
                    }
                }
            }
        }
        o.push('\n');
    }
    o.push_str(
        "\n**Bold**: the best value in its column. Violations: mutual-exclusion overlaps \
         the checker saw (fenced ones were harmless: the guarded resource rejected the stale \
         holder). Lost updates: increments of the guarded counter that were overwritten.\n\n",
    );
    let _ = writeln!(o, "## Verdicts\n");
    for st in &cmp.stages {
        let _ = writeln!(o, "- **`{}`**: {}", st.label(), verdict(st, cmp));
    }
    let ran: Vec<_> = cmp.stages.iter().filter(|s| s.run().is_some()).collect();
    if !ran.is_empty() {
        let _ = writeln!(o, "\n## Reports per backend\n");
        for st in ran {
            let _ = writeln!(
                o,
                "- `{}`: [report.md]({d}/report.md) · [report.html]({d}/report.html) · [report.json]({d}/report.json)",
                st.label(),
                d = st.dir_name
            );
        }
    }
    o
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows_best_marks_and_verdicts() {
        let md = super::render(&crate::report::compare::fixture::comparison());
        assert!(md.starts_with("# lockstorm compare: fixture\n"));
        assert!(md.contains(
            "| `mem:fifo` | fenced fair lease | 100 | 100µs | 900µs | 1.50ms | – | **0.962** | **3** | 2 (2 / 0) | 0 | 0 |"
        ), "{md}");
        assert!(md.contains("| `mem:barging` | fenced lease | **150** | 100µs | **700µs** |"));
        assert!(md.contains("| `redis:set-nx` | fenced lease | **failed** | – |"));
        assert!(md.contains("- **`mem:barging`**: fastest, safe and fenced, not FIFO"));
        assert!(
            md.contains("- **`redis:set-nx`**: not measured: cannot reach redis://127.0.0.1:1")
        );
        assert!(md.contains("[report.html](mem-fifo/report.html)"));
        assert!(!md.contains("redis-set-nx/report.md"));
    }

    #[test]
    fn snapshot() {
        insta::assert_snapshot!(super::render(&crate::report::compare::fixture::comparison()));
    }
}
