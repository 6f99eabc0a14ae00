//! The table printed at the end of `lockstorm compare`: aligned columns and
//! the verdicts, no colour codes (the caller decides).

use std::fmt::Write;

use super::{COLUMNS, best};
use crate::compare::{Comparison, Outcome, verdict::verdict};

/// Short headers for the terminal, in [`COLUMNS`] order.
const SHORT: [&str; 10] = [
    "acq/s",
    "p50",
    "p99",
    "p99.9",
    "handoff",
    "jain",
    "inversions",
    "viol (f/u)",
    "lost upd",
    "errors",
];

/// The summary table; a `*` follows the best value of each column.
pub fn summary(cmp: &Comparison) -> String {
    let marks = best(cmp);
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut head = vec!["backend".to_string()];
    head.extend(SHORT.iter().map(|s| s.to_string()));
    rows.push(head);
    for (st, m) in cmp.stages.iter().zip(&marks) {
        let mut row = vec![st.label()];
        match &st.outcome {
            Outcome::Failed(_) => {
                row.push("failed".into());
                row.extend((1..COLUMNS.len()).map(|_| "-".to_string()));
            }
            Outcome::Ok(r) => {
                for (c, b) in COLUMNS.iter().zip(m) {
                    let v = (c.show)(r);
                    row.push(if *b { format!("{v}*") } else { v });
                }
            }
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut o = String::new();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            let pad = widths[i] - c.chars().count();
            if i == 0 {
                let _ = write!(o, "  {c}{}", " ".repeat(pad));
            } else {
                let _ = write!(o, "  {}{c}", " ".repeat(pad));
            }
        }
        o.push('\n');
    }
    o.push_str("  (* best in column)\n");
    for st in &cmp.stages {
        let _ = writeln!(o, "  {}: {}", st.label(), verdict(st, cmp));
    }
    o
}

#[cfg(test)]
mod tests {
    #[test]
    fn snapshot() {
        insta::assert_snapshot!(super::summary(
            &crate::report::compare::fixture::comparison()
        ));
    }
}
