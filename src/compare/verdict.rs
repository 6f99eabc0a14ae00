//! A plain-words verdict per backend, from its figures (relative to the
//! other rows) and its declared properties.

use super::{Comparison, Outcome, StageResult};
use crate::metrics::RunResult;
use crate::report::human_us;

/// Speed relative to the fastest row at or above which a backend is "fast".
const FAST: f64 = 0.8;
/// Below this share of the fastest it is "slow".
const SLOW: f64 = 0.25;
/// Jain index below which the sharing is called uneven.
const UNEVEN_JAIN: f64 = 0.8;
/// Share of grants that overtook a waiter above which a lock "barges".
const BARGING_SHARE: f64 = 0.1;

fn fastest(cmp: &Comparison) -> f64 {
    cmp.stages
        .iter()
        .filter_map(StageResult::run)
        .map(|r| r.snapshot.totals.throughput_per_s)
        .fold(0.0, f64::max)
}

fn speed(r: &RunResult, best: f64, rows: usize) -> String {
    let tp = r.snapshot.totals.throughput_per_s;
    if r.snapshot.totals.acquired == 0 {
        return "granted nothing".into();
    }
    if rows < 2 || best <= 0.0 {
        return format!("{tp:.0} acquisitions/s");
    }
    let ratio = tp / best;
    if ratio >= 0.999 {
        "fastest".into()
    } else if ratio >= FAST {
        "fast".into()
    } else if ratio >= SLOW {
        format!("{:.1}× slower than the fastest", 1.0 / ratio)
    } else {
        format!("slow ({:.0}× slower than the fastest)", 1.0 / ratio)
    }
}

fn safety(r: &RunResult) -> String {
    let s = &r.snapshot.safety;
    let fencing = r.properties.fencing;
    if s.unfenced_violations > 0 {
        format!(
            "NOT SAFE here: {} unfenced violations, {} lost updates",
            s.unfenced_violations, s.lost_updates
        )
    } else if s.violations > 0 {
        format!(
            "{} overlaps, all fenced ({} lost updates)",
            s.violations, s.lost_updates
        )
    } else if s.lost_updates > 0 {
        format!("{} lost updates", s.lost_updates)
    } else if fencing {
        "safe and fenced".into()
    } else {
        "safe in this run but without fencing tokens".into()
    }
}

fn fairness(r: &RunResult) -> Option<String> {
    let f = &r.snapshot.fairness;
    let acquired = r.snapshot.totals.acquired.max(1) as f64;
    if r.snapshot.totals.acquired == 0 {
        return None;
    }
    if f.jain < UNEVEN_JAIN {
        return Some(format!("uneven: some nodes starve (Jain {:.2})", f.jain));
    }
    let share = f.fifo_inversions as f64 / acquired;
    if share > BARGING_SHARE {
        Some(format!(
            "not FIFO ({:.0}% of grants overtook a waiter)",
            share * 100.0
        ))
    } else if r.properties.fair {
        Some("fair (first come, first served)".into())
    } else {
        Some("shares evenly".into())
    }
}

fn tail(r: &RunResult) -> Option<String> {
    let l = &r.snapshot.latency.acquire;
    (l.count > 0 && l.p50 > 0 && l.p99 >= 20 * l.p50)
        .then(|| format!("long latency tail (p99 {})", human_us(l.p99)))
}

fn trouble(r: &RunResult) -> Option<String> {
    let t = &r.snapshot.totals;
    let mut v = Vec::new();
    if t.errors > 0 {
        v.push(format!("{} errors", t.errors));
    }
    if t.timeouts > 0 {
        v.push(format!("{} timeouts", t.timeouts));
    }
    if !r.completed {
        v.push("stopped early".into());
    }
    (!v.is_empty()).then(|| v.join(", "))
}

fn properties(r: &RunResult) -> String {
    let p = r.properties;
    if p.r#unsafe {
        return "a deliberately unsafe variant: a demonstration, not a choice".into();
    }
    match (p.lease, p.fencing) {
        (true, true) => {
            "lease-based, so a paused holder can be overtaken (its stale writes are fenced off)"
                .into()
        }
        (true, false) => {
            "lease-based without fencing tokens, so a paused holder can overwrite the next one's work"
                .into()
        }
        (false, true) => "session-based: held until the holder's session dies".into(),
        (false, false) => {
            "session-based without fencing tokens: a holder cut off from the server keeps writing"
                .into()
        }
    }
}

/// The verdict on one stage of `cmp`.
pub fn verdict(stage: &StageResult, cmp: &Comparison) -> String {
    let r = match &stage.outcome {
        Outcome::Failed(reason) => return format!("not measured: {reason}"),
        Outcome::Ok(r) => r,
    };
    let rows = cmp.stages.iter().filter(|s| s.run().is_some()).count();
    let mut first = vec![speed(r, fastest(cmp), rows), safety(r)];
    first.extend(fairness(r));
    first.extend(tail(r));
    first.extend(trouble(r));
    format!("{}; {}.", first.join(", "), properties(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{ScenarioInfo, StageResult};

    fn stage(r: RunResult) -> StageResult {
        StageResult {
            kind: r.backend_kind.clone(),
            variant: r.backend_variant.clone(),
            properties: r.properties,
            dir_name: "x".into(),
            outcome: Outcome::Ok(Box::new(r)),
        }
    }

    fn cmp(stages: Vec<StageResult>) -> Comparison {
        Comparison {
            scenario: ScenarioInfo {
                name: "t".into(),
                file: "t.toml".into(),
                seed: 1,
                duration_s: 10.0,
                warmup_s: 0.0,
                nodes: 2,
                keys: 1,
            },
            planned: stages.len(),
            stages,
            completed: true,
        }
    }

    #[test]
    fn words_follow_the_figures() {
        let fast = crate::report::fixture::result();
        let mut slow = crate::report::fixture::result();
        slow.snapshot.totals.throughput_per_s = 10.0;
        slow.snapshot.safety.violations = 3;
        slow.snapshot.safety.unfenced_violations = 3;
        slow.snapshot.safety.lost_updates = 2;
        slow.properties.fencing = false;
        let c = cmp(vec![
            stage(fast),
            stage(slow),
            StageResult {
                kind: "redis".into(),
                variant: "set-nx".into(),
                properties: crate::backend::catalog::kind("redis").unwrap().variants[0].properties,
                dir_name: "redis-set-nx".into(),
                outcome: Outcome::Failed("cannot reach redis://127.0.0.1:1".into()),
            },
        ]);
        assert_eq!(
            verdict(&c.stages[0], &c),
            "fastest, 2 overlaps, all fenced (0 lost updates), fair (first come, first served), \
             10 timeouts; lease-based, so a paused holder can be overtaken (its stale writes are \
             fenced off)."
        );
        let v = verdict(&c.stages[1], &c);
        assert!(
            v.starts_with(
                "slow (10× slower than the fastest), NOT SAFE here: 3 unfenced violations, 2 lost updates"
            ),
            "{v}"
        );
        assert!(v.ends_with("overwrite the next one's work."), "{v}");
        assert_eq!(
            verdict(&c.stages[2], &c),
            "not measured: cannot reach redis://127.0.0.1:1"
        );
    }
}
