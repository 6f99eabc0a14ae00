//! `compare.html`: the comparison as one self-contained page. Charts
//! overlay the backends, one colour each, with a legend; the table marks the
//! best value per column; each backend gets its verdict and a link to its
//! own `report.html`.

use std::fmt::Write;

use super::{COLUMNS, best, property_words};
use crate::compare::{Comparison, Outcome, verdict::verdict};
use crate::report::chart::{self, Plotted};
use crate::report::html::{figure, page};
use crate::report::svg::esc;

/// The `compare.html` text.
pub fn render(cmp: &Comparison) -> String {
    let s = &cmp.scenario;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<h1>lockstorm compare: {}</h1>\n<p class=\"sub\">Same workload for every backend, run one after another: {} nodes · {} keys · {:.1} s each (warmup {:.1} s) · seed {} · scenario <code>{}</code>{}</p>",
        esc(&s.name),
        s.nodes,
        s.keys,
        s.duration_s,
        s.warmup_s,
        s.seed,
        esc(&s.file),
        if cmp.completed {
            String::new()
        } else {
            format!(
                " · <strong>stopped early</strong> ({} of {} backends ran)",
                cmp.stages.len(),
                cmp.planned
            )
        }
    );
    // Colours follow the row order, failed rows included, so a backend
    // keeps its colour whatever else failed.
    let labels: Vec<String> = cmp.stages.iter().map(|st| st.label()).collect();
    let runs: Vec<Plotted> = cmp
        .stages
        .iter()
        .enumerate()
        .filter_map(|(i, st)| {
            st.run().map(|r| Plotted {
                name: &labels[i],
                color: chart::run_color(i),
                run: r,
            })
        })
        .collect();

    // The table.
    let marks = best(cmp);
    o.push_str("<div class=\"scroll\"><table><thead><tr><th class=\"l\">backend</th><th class=\"l\">properties</th>");
    for c in COLUMNS {
        let _ = write!(o, "<th>{}</th>", esc(c.name));
    }
    o.push_str("</tr></thead><tbody>\n");
    for (i, (st, m)) in cmp.stages.iter().zip(&marks).enumerate() {
        let _ = write!(
            o,
            "<tr><td class=\"l\"><span class=\"swatch\" style=\"background:{}\"></span><code>{}</code></td><td class=\"l\">{}</td>",
            chart::run_color(i),
            esc(&st.label()),
            property_badges(&property_words(st.properties))
        );
        match &st.outcome {
            Outcome::Failed(reason) => {
                let _ = write!(
                    o,
                    "<td class=\"wrap bad\" colspan=\"{}\">failed: {}</td>",
                    COLUMNS.len(),
                    esc(reason)
                );
            }
            Outcome::Ok(r) => {
                for (c, is_best) in COLUMNS.iter().zip(m) {
                    let bad = c.name.starts_with("violations")
                        && r.snapshot.safety.unfenced_violations > 0
                        || c.name == "lost updates" && r.snapshot.safety.lost_updates > 0;
                    let class = match (is_best, bad) {
                        (true, _) => " class=\"best\"",
                        (false, true) => " class=\"bad\"",
                        _ => "",
                    };
                    let _ = write!(o, "<td{class}>{}</td>", esc(&(c.show)(r)));
                }
            }
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody></table></div>\n<p class=\"sub\">Green: the best value in its column. Violations: mutual-exclusion overlaps the checker saw (fenced ones were harmless: the guarded resource rejected the stale holder). Lost updates: increments of the guarded counter that were overwritten.</p>\n");

    o.push_str("<h2>Verdicts</h2>\n<table><tbody>\n");
    for (i, st) in cmp.stages.iter().enumerate() {
        let link = if st.run().is_some() {
            format!("<a href=\"{}/report.html\">report</a>", esc(&st.dir_name))
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            "<tr><td class=\"l\"><span class=\"swatch\" style=\"background:{}\"></span><code>{}</code></td><td class=\"wrap\">{}</td><td class=\"l\">{link}</td></tr>",
            chart::run_color(i),
            esc(&st.label()),
            esc(&verdict(st, cmp))
        );
    }
    o.push_str("</tbody></table>\n");

    if !runs.is_empty() {
        o.push_str("<h2>Charts</h2>\n<div class=\"grid2\">\n");
        figure(
            &mut o,
            "Throughput over time",
            &chart::throughput(&runs).render(),
        );
        figure(
            &mut o,
            "Acquire latency percentiles (HdrHistogram)",
            &chart::percentiles(&runs).render(),
        );
        figure(
            &mut o,
            "Acquisitions per second",
            &chart::per_run_bars(
                "Acquisitions per second",
                "acquisitions / s",
                &runs,
                None,
                |r| r.snapshot.totals.throughput_per_s,
            )
            .render(),
        );
        figure(
            &mut o,
            "Fairness (Jain's index, 1 = perfectly even)",
            &chart::per_run_bars("Jain's fairness index", "Jain", &runs, Some(1.0), |r| {
                r.snapshot.fairness.jain
            })
            .render(),
        );
        o.push_str("</div>\n");
        figure(
            &mut o,
            "Violations and faults",
            &chart::violations_timeline(&runs).render(),
        );
    }
    page(&format!("lockstorm compare: {}", s.name), &o)
}

fn property_badges(words: &str) -> String {
    words
        .split(' ')
        .map(|w| {
            let class = if w == "UNSAFE" {
                "badge unsafe"
            } else {
                "badge"
            };
            format!("<span class=\"{class}\">{}</span>", esc(w))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_with_overlaid_charts_and_a_row_per_backend() {
        let html = render(&crate::report::compare::fixture::comparison());
        let doc = roxmltree::Document::parse_with_options(
            &html,
            roxmltree::ParsingOptions {
                allow_dtd: true,
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("compare.html is not well-formed: {e}"));
        let svgs: Vec<_> = doc
            .descendants()
            .filter(|n| n.tag_name().name() == "svg")
            .collect();
        assert_eq!(svgs.len(), 5);
        // The throughput chart overlays both backends that ran, with a legend.
        let tp = svgs[0];
        let lines = tp
            .descendants()
            .filter(|n| n.tag_name().name() == "polyline")
            .count();
        assert_eq!(lines, 2);
        let text: String = tp
            .descendants()
            .filter(|n| n.is_text())
            .filter_map(|n| n.text())
            .collect();
        assert!(text.contains("mem:fifo") && text.contains("mem:barging"));
        assert!(html.contains(
            "failed: cannot reach redis://127.0.0.1:1: connection refused &lt;&amp;&gt;"
        ));
        assert!(html.contains("<a href=\"mem-fifo/report.html\">report</a>"));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn snapshot() {
        let html = render(&crate::report::compare::fixture::comparison());
        insta::assert_snapshot!(html.replace(env!("CARGO_PKG_VERSION"), "[version]"));
    }
}
