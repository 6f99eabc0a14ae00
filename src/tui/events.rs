//! The events log: what changed between two snapshots, as lines with run
//! time stamps (faults, violations, errors, threshold breaches, phases).

use std::collections::VecDeque;

use crate::metrics::{Phase, Snapshot};
use crate::report::human_us;
use crate::scenario::Thresholds;
use crate::thresholds;

/// Events kept; older ones are dropped and counted.
pub const EVENTS_KEPT: usize = 2_000;

/// What kind of event (its colour and tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Run phase changes, user actions.
    Info,
    /// A fault window started.
    Fault,
    /// A mutual-exclusion violation.
    Violation,
    /// Backend errors, lost leases.
    Error,
    /// A threshold went from passing to failing.
    Threshold,
}

impl EventKind {
    /// Short tag shown in the log.
    pub fn tag(self) -> &'static str {
        match self {
            EventKind::Info => "info",
            EventKind::Fault => "FAULT",
            EventKind::Violation => "VIOLATION",
            EventKind::Error => "error",
            EventKind::Threshold => "THRESHOLD",
        }
    }
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Run time, seconds.
    pub t_s: f64,
    /// Kind.
    pub kind: EventKind,
    /// What happened.
    pub text: String,
}

/// A bounded log, newest last.
#[derive(Debug, Default)]
pub struct EventLog {
    events: VecDeque<Event>,
    /// Events dropped because the log was full.
    pub dropped: u64,
    examples_seen: f64,
    failing: Vec<String>,
}

impl EventLog {
    /// Events, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Event> + ExactSizeIterator {
        self.events.iter()
    }

    /// How many events are kept.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether nothing happened yet.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Append an event.
    pub fn push(&mut self, t_s: f64, kind: EventKind, text: String) {
        if self.events.len() >= EVENTS_KEPT {
            self.events.pop_front();
            self.dropped += 1;
        }
        self.events.push_back(Event { t_s, kind, text });
    }

    /// Append an informational event.
    pub fn note(&mut self, t_s: f64, text: &str) {
        self.push(t_s, EventKind::Info, text.to_string());
    }

    /// Log what changed from `old` to `new`.
    pub fn observe(&mut self, old: &Snapshot, new: &Snapshot, limits: &Thresholds) {
        let t = new.elapsed_s;
        if new.phase != old.phase
            && let Some(p) = new.phase
        {
            let text = match p {
                Phase::Starting => "connecting nodes",
                Phase::Warmup => "warmup (not measured)",
                Phase::Running => "running (measured)",
                Phase::Stopping => "stopping: nodes finish their cycle",
                Phase::Done => "run finished (q leaves the dashboard)",
            };
            self.note(t, text);
        }
        for f in new.faults.iter().skip(old.faults.len()) {
            let on = if f.nodes.is_empty() {
                "all nodes".to_string()
            } else {
                format!("nodes {:?}", f.nodes)
            };
            self.push(
                f.start_s,
                EventKind::Fault,
                format!("{} on {on}, {:.1}s–{:.1}s", f.kind, f.start_s, f.end_s),
            );
        }
        let new_violations = new.safety.violations.saturating_sub(old.safety.violations);
        let mut shown = 0;
        for ex in &new.safety.examples {
            if ex.t_s > self.examples_seen {
                shown += 1;
                self.push(
                    ex.t_s,
                    EventKind::Violation,
                    format!(
                        "{} held by nodes {} and {} at once for {} ({})",
                        ex.key,
                        ex.nodes[0],
                        ex.nodes[1],
                        human_us(ex.overlap_us),
                        if ex.fenced { "fenced" } else { "UNFENCED" }
                    ),
                );
            }
        }
        if let Some(last) = new.safety.examples.iter().map(|e| e.t_s).reduce(f64::max) {
            self.examples_seen = self.examples_seen.max(last);
        }
        if new_violations > shown {
            self.push(
                t,
                EventKind::Violation,
                format!("{} more violations", new_violations - shown),
            );
        }
        let errors = new.totals.errors.saturating_sub(old.totals.errors);
        if errors > 0 || (new.last_error != old.last_error && new.last_error.is_some()) {
            let what = new.last_error.as_deref().unwrap_or("backend error");
            self.push(
                t,
                EventKind::Error,
                format!("{errors} backend error(s): {what}"),
            );
        }
        let lost = new
            .safety
            .lost_leases
            .saturating_sub(old.safety.lost_leases);
        if lost > 0 {
            self.push(
                t,
                EventKind::Error,
                format!("{lost} lease(s) expired before release"),
            );
        }
        if !limits.is_empty() && new.phase != Some(Phase::Starting) {
            for r in thresholds::evaluate(limits, new) {
                let was = self.failing.iter().position(|n| *n == r.name);
                match (r.passed, was) {
                    (false, None) => {
                        self.push(
                            t,
                            EventKind::Threshold,
                            format!("{} breached: {:.3} (limit {})", r.name, r.actual, r.limit),
                        );
                        self.failing.push(r.name);
                    }
                    (true, Some(i)) => {
                        self.failing.swap_remove(i);
                        self.note(t, &format!("{} back within its limit", r.name));
                    }
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{FaultWindow, ViolationExample};

    #[test]
    fn violations_errors_faults_and_breaches_become_events() {
        let mut log = EventLog::default();
        let old = Snapshot::default();
        let mut new = Snapshot {
            phase: Some(Phase::Running),
            elapsed_s: 2.0,
            last_error: Some("connection reset".into()),
            ..Snapshot::default()
        };
        new.totals.errors = 3;
        new.safety.violations = 3;
        new.safety.examples.push(ViolationExample {
            t_s: 1.5,
            key: "k0".into(),
            nodes: [1, 2],
            overlap_us: 1500,
            fenced: false,
        });
        new.faults.push(FaultWindow {
            start_s: 1.0,
            end_s: 3.0,
            kind: "pause".into(),
            nodes: vec![0],
        });
        let limits = Thresholds {
            max_violations: Some(0),
            ..Thresholds::default()
        };
        log.observe(&old, &new, &limits);
        let texts: Vec<String> = log
            .iter()
            .map(|e| format!("{} {}", e.kind.tag(), e.text))
            .collect();
        assert_eq!(
            texts,
            [
                "info running (measured)",
                "FAULT pause on nodes [0], 1.0s–3.0s",
                "VIOLATION k0 held by nodes 1 and 2 at once for 1.50ms (UNFENCED)",
                "VIOLATION 2 more violations",
                "error 3 backend error(s): connection reset",
                "THRESHOLD max_violations breached: 3.000 (limit 0)",
            ]
        );
        // The same snapshot again adds nothing.
        log.observe(&new, &new, &limits);
        assert_eq!(log.len(), 6);
    }
}
