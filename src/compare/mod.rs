//! `lockstorm compare`: one workload against several backends, one after
//! another (never concurrently: they would share the machine and distort
//! each other), with the same seed.
//!
//! [`run`] drives the stages and reports progress to a [`CompareObserver`]:
//! the headless progress bars use it, and so can the dashboard (a stage list
//! from [`CompareState`], live charts from the running stage's snapshots).
//! The result, a [`Comparison`], is what the `compare.*` writers in
//! [`crate::report::compare`] turn into files.

pub mod verdict;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::backend::catalog::{self, KindInfo, Properties, VariantInfo};
use crate::engine::Control;
use crate::metrics::{RunResult, Snapshot};
use crate::run::run_scenario;
use crate::scenario::{Scenario, help_with};

/// One backend to compare: a kind and one of its variants.
#[derive(Debug, Clone, Copy)]
pub struct BackendChoice {
    /// The kind.
    pub kind: &'static KindInfo,
    /// The variant (the kind's default when none was named).
    pub variant: &'static VariantInfo,
}

impl BackendChoice {
    /// Parse `KIND[:VARIANT]`. The error says what would be valid.
    pub fn parse(s: &str) -> Result<BackendChoice, String> {
        let (k, v) = match s.split_once(':') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (s.trim(), None),
        };
        let kind = catalog::kind(k).ok_or_else(|| {
            format!(
                "unknown backend kind `{k}`; {}",
                help_with(k, &catalog::kind_names(), "valid kinds")
            )
        })?;
        let variant = match v {
            None | Some("") => kind.default_variant(),
            Some(v) => kind.variant(v).ok_or_else(|| {
                format!(
                    "{} has no variant `{v}`; {}",
                    kind.name,
                    help_with(v, &kind.variant_names(), "valid variants")
                )
            })?,
        };
        Ok(BackendChoice { kind, variant })
    }

    /// `kind:variant`.
    pub fn label(&self) -> String {
        format!("{}:{}", self.kind.name, self.variant.name)
    }

    /// The stage directory name: `kind-variant`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.kind.name, self.variant.name)
    }

    /// The scenario `base` with this backend. Endpoint settings (`url`,
    /// `urls`, `path`, `rtt`) are kept only when the kind matches the
    /// scenario's, so other kinds use their default endpoints; `ttl` and
    /// `retry` apply to every kind.
    pub fn scenario(&self, base: &Scenario) -> Scenario {
        let mut s = base.clone();
        if s.backend.kind.name != self.kind.name {
            s.backend.url = None;
            s.backend.urls = Vec::new();
            s.backend.path = None;
            s.backend.rtt = None;
        }
        s.backend.kind = self.kind;
        s.backend.variant = self.variant;
        s
    }
}

/// What the comparison ran, common to every stage.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioInfo {
    /// Scenario name.
    pub name: String,
    /// Scenario file as given.
    pub file: String,
    /// The seed every stage used.
    pub seed: u64,
    /// Planned duration per stage, warmup included, seconds.
    pub duration_s: f64,
    /// Warmup, seconds.
    pub warmup_s: f64,
    /// Virtual nodes.
    pub nodes: u32,
    /// Distinct keys.
    pub keys: u32,
}

/// How a stage ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// It ran (possibly stopped early: see `RunResult::completed`).
    Ok(Box<RunResult>),
    /// It could not run: the reason (unreachable endpoint, not implemented, ...).
    Failed(String),
}

/// One backend's stage of a comparison.
#[derive(Debug, Clone)]
pub struct StageResult {
    /// Backend kind.
    pub kind: String,
    /// Backend variant.
    pub variant: String,
    /// Declared properties.
    pub properties: Properties,
    /// Its report directory, relative to the comparison's (`kind-variant`).
    pub dir_name: String,
    /// How it ended.
    pub outcome: Outcome,
}

impl StageResult {
    /// `kind:variant`.
    pub fn label(&self) -> String {
        format!("{}:{}", self.kind, self.variant)
    }

    /// The run, when the stage ran.
    pub fn run(&self) -> Option<&RunResult> {
        match &self.outcome {
            Outcome::Ok(r) => Some(r),
            Outcome::Failed(_) => None,
        }
    }
}

/// A comparison: the finished stages, in the order given.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// The shared workload.
    pub scenario: ScenarioInfo,
    /// One row per finished stage.
    pub stages: Vec<StageResult>,
    /// Stages planned in all.
    pub planned: usize,
    /// False when stopped early (Ctrl-C): later stages did not run.
    pub completed: bool,
}

/// Where a stage is, for a progress view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageStatus {
    /// Not started.
    Waiting,
    /// Running now.
    Running,
    /// Ran.
    Done,
    /// Could not run.
    Failed,
}

/// A finished stage's headline figures, for a stage list.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Headline {
    /// Acquisitions per second.
    pub throughput_per_s: f64,
    /// Acquire latency p99, µs.
    pub acquire_p99_us: u64,
    /// Jain's fairness index.
    pub jain: f64,
    /// Mutual-exclusion violations.
    pub violations: u64,
    /// Of those, unfenced.
    pub unfenced_violations: u64,
    /// Backend errors.
    pub errors: u64,
}

impl Headline {
    /// The headline of a run.
    pub fn of(r: &RunResult) -> Headline {
        let s = &r.snapshot;
        Headline {
            throughput_per_s: s.totals.throughput_per_s,
            acquire_p99_us: s.latency.acquire.p99,
            jain: s.fairness.jain,
            violations: s.safety.violations,
            unfenced_violations: s.safety.unfenced_violations,
            errors: s.totals.errors,
        }
    }
}

/// One line of a stage list.
#[derive(Debug, Clone, PartialEq)]
pub struct StageView {
    /// `kind:variant`.
    pub label: String,
    /// Where it is.
    pub status: StageStatus,
    /// Headline figures once done.
    pub headline: Option<Headline>,
    /// The reason, when failed.
    pub error: Option<String>,
}

/// The whole stage list: what a dashboard or progress printer shows.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareState {
    /// One entry per planned stage, in order.
    pub stages: Vec<StageView>,
}

/// Told about each stage as the comparison goes. Every method has a
/// default that does nothing.
pub trait CompareObserver {
    /// Stage `index` starts; `snapshots` carries its live snapshots (ends
    /// with a `Phase::Done` one, or closes if the stage fails).
    fn stage_started(
        &mut self,
        _index: usize,
        _state: &CompareState,
        _snapshots: watch::Receiver<Arc<Snapshot>>,
    ) {
    }

    /// Stage `index` finished (ran or failed). `so_far` holds every stage
    /// finished until now, this one last: write its report here.
    fn stage_finished(&mut self, _index: usize, _state: &CompareState, _so_far: &Comparison) {}
}

/// An observer that ignores everything.
impl CompareObserver for () {}

/// Run `base` against each backend in turn, with the same seed.
/// Cancelling `stop` ends the running stage early (its row says so) and
/// skips the rest.
pub async fn run(
    base: &Scenario,
    backends: &[BackendChoice],
    tick: Duration,
    stop: CancellationToken,
    observer: &mut dyn CompareObserver,
) -> Comparison {
    let seed = crate::run::seed_of(base);
    let mut state = CompareState {
        stages: backends
            .iter()
            .map(|b| StageView {
                label: b.label(),
                status: StageStatus::Waiting,
                headline: None,
                error: None,
            })
            .collect(),
    };
    let mut cmp = Comparison {
        scenario: ScenarioInfo {
            name: base.name.clone(),
            file: base.file.display().to_string(),
            seed,
            duration_s: base.duration.as_secs_f64(),
            warmup_s: base.warmup.as_secs_f64(),
            nodes: base.workload.nodes,
            keys: base.workload.keys,
        },
        stages: Vec::with_capacity(backends.len()),
        planned: backends.len(),
        completed: true,
    };
    let mut dirs: Vec<String> = Vec::new();
    for (i, b) in backends.iter().enumerate() {
        if stop.is_cancelled() {
            cmp.completed = false;
            break;
        }
        let mut scn = b.scenario(base);
        scn.seed = Some(seed);
        let (tx, rx) = watch::channel(Arc::new(Snapshot::default()));
        state.stages[i].status = StageStatus::Running;
        observer.stage_started(i, &state, rx);
        let control = Control {
            stop: stop.clone(),
            snapshots: Some(tx),
            ..Control::default()
        };
        let outcome = match run_scenario(&scn, tick, control).await {
            Ok(r) => {
                if !r.completed {
                    cmp.completed = false;
                }
                state.stages[i].status = StageStatus::Done;
                state.stages[i].headline = Some(Headline::of(&r));
                Outcome::Ok(Box::new(r))
            }
            Err(e) => {
                let reason = e.to_string();
                state.stages[i].status = StageStatus::Failed;
                state.stages[i].error = Some(reason.clone());
                Outcome::Failed(reason)
            }
        };
        // The same backend twice gets `-2`, `-3`, ... so no report is overwritten.
        let mut dir = b.dir_name();
        let same = dirs.iter().filter(|d| **d == dir).count();
        dirs.push(dir.clone());
        if same > 0 {
            dir = format!("{dir}-{}", same + 1);
        }
        cmp.stages.push(StageResult {
            kind: b.kind.name.into(),
            variant: b.variant.name.into(),
            properties: b.variant.properties,
            dir_name: dir,
            outcome,
        });
        observer.stage_finished(i, &state, &cmp);
    }
    cmp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kind_and_variant() {
        let b = BackendChoice::parse("mem:barging").unwrap();
        assert_eq!(b.label(), "mem:barging");
        assert_eq!(b.dir_name(), "mem-barging");
        assert_eq!(
            BackendChoice::parse("redis").unwrap().label(),
            "redis:set-nx"
        );
        let e = BackendChoice::parse("reddis").unwrap_err();
        assert!(e.contains("did you mean `redis`?"), "{e}");
        let e = BackendChoice::parse("mem:fifoo").unwrap_err();
        assert!(e.contains("mem has no variant `fifoo`"), "{e}");
        assert!(e.contains("did you mean `fifo`?"), "{e}");
    }

    #[test]
    fn other_kinds_drop_the_scenario_endpoints() {
        let base = Scenario::parse(
            "name = \"x\"\n[backend]\nkind = \"redis\"\nurl = \"redis://127.0.0.1:1\"\nttl = \"3s\"\n",
            std::path::Path::new("x.toml"),
        )
        .unwrap();
        let same = BackendChoice::parse("redis:naive-del")
            .unwrap()
            .scenario(&base);
        assert_eq!(same.backend.url.as_deref(), Some("redis://127.0.0.1:1"));
        assert_eq!(same.backend.variant.name, "naive-del");
        let other = BackendChoice::parse("mem").unwrap().scenario(&base);
        assert_eq!(other.backend.url, None);
        assert_eq!(other.backend.kind.name, "mem");
        assert_eq!(other.backend.ttl, Some(Duration::from_secs(3)));
    }
}
