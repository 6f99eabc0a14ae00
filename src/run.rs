//! One scenario, start to finish: build the backend, run the engine, check
//! the thresholds, and assemble the [`RunResult`] the reports are made from.

use std::sync::Arc;
use std::time::Duration;

use crate::backend::registry::{self, AnyBackend};
use crate::backend::{Backend, BackendError};
use crate::engine::{self, Control, EngineConfig, EngineOutput};
use crate::faults::{self, Net};
use crate::metrics::{FaultRecord, RunResult};
use crate::scenario::Scenario;
use crate::thresholds;

/// Collector tick for headless runs.
pub const HEADLESS_TICK: Duration = Duration::from_secs(1);
/// Pause after a backend error before a node retries.
pub const ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// A fresh id for a run: 8 hex digits, used to namespace keys and tables.
pub fn new_run_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// The seed a run uses: the scenario's, or a random one (printed in the report).
pub fn seed_of(scn: &Scenario) -> u64 {
    scn.seed.unwrap_or_else(rand::random)
}

/// The engine settings for `scn`.
pub fn engine_config(scn: &Scenario, seed: u64, tick: Duration) -> EngineConfig {
    let w = &scn.workload;
    EngineConfig {
        nodes: w.nodes,
        keys: w.keys,
        key_pick: w.key_pick,
        hold: w.hold,
        think: w.think,
        acquire_timeout: w.acquire_timeout,
        rate: w.rate,
        duration: scn.duration,
        warmup: scn.warmup,
        seed,
        tick,
        error_backoff: ERROR_BACKOFF,
        fencing: scn.backend.variant.properties.fencing,
        faults: scn.faults.clone(),
        exec_dir: None,
        backend: scn.backend.kind.name.to_string(),
    }
}

/// Warnings to show before a run starts.
pub fn preflight_warnings(scn: &Scenario) -> Vec<String> {
    let mut w = Vec::new();
    let kind = scn.backend.kind.name;
    if faults::needs_proxy(&scn.faults) && matches!(kind, "mem" | "sqlite") {
        w.push(format!(
            "the {kind} backend has no network traffic: this scenario's latency, partition and \
             reset faults are NOT applied (pause and exec are)"
        ));
    }
    if scn.backend.variant.properties.r#unsafe {
        w.push(format!(
            "{}:{} is deliberately UNSAFE: it exists to show what the checker catches",
            scn.backend.kind.name, scn.backend.variant.name
        ));
    }
    w
}

/// Start the fault proxy in front of `backend`'s upstreams when the
/// scenario has network faults, and route the backend's nodes through it.
async fn start_proxy<B: Backend>(
    backend: &mut B,
    scn: &Scenario,
    seed: u64,
    forced: bool,
) -> Result<Option<Arc<Net>>, BackendError> {
    let upstreams = backend.upstreams();
    if !(faults::needs_proxy(&scn.faults) || forced) || upstreams.is_empty() {
        return Ok(None);
    }
    let net = Net::start(scn.workload.nodes, upstreams, seed)
        .await
        .map_err(|e| BackendError::Op(format!("cannot start the fault proxy: {e}")))?;
    for (i, f) in scn.faults.iter().enumerate() {
        for e in &f.endpoints {
            if net.endpoint_index(e).is_none() {
                return Err(BackendError::Op(format!(
                    "{}:{}: faults[{i}].endpoints: `{}` is not an endpoint of this run; it connects to {}",
                    scn.file.display(),
                    f.line,
                    crate::backend::redact(e),
                    net.upstreams().join(", ")
                )));
            }
        }
    }
    let routes = Arc::clone(&net);
    backend.set_route(Arc::new(move |node, upstream| routes.route(node, upstream)));
    Ok(Some(net))
}

async fn run_on<B: Backend>(
    mut backend: B,
    scn: &Scenario,
    seed: u64,
    run_id: &str,
    tick: Duration,
    mut control: Control,
) -> Result<(EngineOutput, Vec<String>), BackendError> {
    control.net = start_proxy(&mut backend, scn, seed, control.fault_proxy).await?;
    let endpoints = backend.endpoints();
    let keys = engine::key_names(&format!("lockstorm:{run_id}:"), scn.workload.keys);
    let backend = Arc::new(backend);
    let mut out = engine::run(
        Arc::clone(&backend),
        engine_config(scn, seed, tick),
        keys,
        control,
    )
    .await?;
    out.backend_stats = backend.stats();
    Ok((out, endpoints))
}

/// Run `scn` to the end (or until `control.stop`) and assemble its result.
pub async fn run_scenario(
    scn: &Scenario,
    tick: Duration,
    control: Control,
) -> Result<RunResult, BackendError> {
    let seed = seed_of(scn);
    let run_id = new_run_id();
    let backend = registry::build(scn, &run_id, seed).await?;
    let (out, endpoints) = match backend {
        AnyBackend::Mem(b) => run_on(b, scn, seed, &run_id, tick, control).await?,
        AnyBackend::Sqlite(b) => run_on(b, scn, seed, &run_id, tick, control).await?,
        AnyBackend::Redis(b) => run_on(b, scn, seed, &run_id, tick, control).await?,
        AnyBackend::Redlock(b) => run_on(b, scn, seed, &run_id, tick, control).await?,
        AnyBackend::Zookeeper(b) => run_on(b, scn, seed, &run_id, tick, control).await?,
        AnyBackend::Etcd(b) => run_on(b, scn, seed, &run_id, tick, control).await?,
        AnyBackend::Postgres(b) => run_on(b, scn, seed, &run_id, tick, control).await?,
        AnyBackend::Mysql(b) => run_on(b, scn, seed, &run_id, tick, control).await?,
    };
    Ok(assemble(scn, seed, run_id, tick, endpoints, out))
}

fn assemble(
    scn: &Scenario,
    seed: u64,
    run_id: String,
    tick: Duration,
    endpoints: Vec<String>,
    out: EngineOutput,
) -> RunResult {
    let mut warnings = preflight_warnings(scn);
    warnings.extend(out.warnings);
    let snapshot = Arc::unwrap_or_clone(out.snapshot);
    RunResult {
        scenario_name: scn.name.clone(),
        scenario_file: scn.file.display().to_string(),
        seed,
        duration_s: scn.duration.as_secs_f64(),
        warmup_s: scn.warmup.as_secs_f64(),
        nodes: scn.workload.nodes,
        keys: scn.workload.keys,
        backend_kind: scn.backend.kind.name.to_string(),
        backend_variant: scn.backend.variant.name.to_string(),
        endpoints,
        properties: scn.backend.variant.properties,
        run_id,
        completed: out.completed,
        elapsed_s: out.elapsed.as_secs_f64(),
        thresholds: thresholds::evaluate(&scn.thresholds, &snapshot),
        snapshot,
        warnings,
        faults: if out.faults.len() >= scn.faults.len() {
            out.faults
        } else {
            scn.faults.iter().map(FaultRecord::planned).collect()
        },
        tick_s: tick.as_secs_f64(),
        backend_stats: out.backend_stats,
        interval_histograms: out.intervals,
    }
}
