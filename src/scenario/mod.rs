//! Scenarios: the TOML files that describe a run.
//!
//! ```toml
//! name = "hot-key"
//! duration = "30s"
//!
//! [backend]
//! kind = "mem"
//!
//! [workload]
//! nodes = 32
//! hold = "exp(2ms)"
//! ```
//!
//! [`Scenario::load`] reads and validates a file completely: every error
//! names the file, line, column and key, and says what would be valid
//! (see [`ScenarioError`]). `${VAR}` in string values is replaced from the
//! environment.

mod dist;
mod error;
mod fault;
mod parse;
mod parse_fault;
mod reader;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::backend::catalog::{KindInfo, VariantInfo};

pub use dist::{
    DIST_FORMS, Dist, DurFmt, KEY_PICK_FORMS, KeyPick, ParseValueError, parse_duration,
};
pub use error::{ScenarioError, help_with, suggest};
pub use fault::{FaultKind, FaultSpec, NodeSel, ParseNodeSelError};

/// Run length when a scenario gives no `duration`.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(30);
/// Most virtual nodes a scenario may ask for.
pub const MAX_NODES: u32 = 1_000_000;

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Short name (`name = "hot-key"`), required.
    pub name: String,
    /// One line about what it shows.
    pub description: Option<String>,
    /// Seed of every node's RNG; random (and reported) when absent.
    pub seed: Option<u64>,
    /// Run length, warmup included (default 30s, > 0).
    pub duration: Duration,
    /// Unmeasured start (default 0, < duration).
    pub warmup: Duration,
    /// What lock service, and how to reach it.
    pub backend: BackendSpec,
    /// What the nodes do.
    pub workload: Workload,
    /// Faults to inject, in file order.
    pub faults: Vec<FaultSpec>,
    /// Pass/fail limits checked at the end.
    pub thresholds: Thresholds,
    /// The path it was loaded from (or given to [`Scenario::parse`]).
    pub file: PathBuf,
}

/// The `[backend]` table, resolved against the catalog.
#[derive(Debug, Clone)]
pub struct BackendSpec {
    /// Backend kind.
    pub kind: &'static KindInfo,
    /// Variant (the kind's default when absent).
    pub variant: &'static VariantInfo,
    /// The one endpoint (not for mem, sqlite or redlock).
    pub url: Option<String>,
    /// Redlock's endpoints (empty for every other kind).
    pub urls: Vec<String>,
    /// Lease length, where the backend uses leases (> 0).
    pub ttl: Option<Duration>,
    /// Polling backends: pause between failed tries.
    pub retry: Option<Duration>,
    /// mem only: simulated round trip.
    pub rtt: Option<Duration>,
    /// sqlite only: the database file, as written.
    pub path: Option<PathBuf>,
}

/// The `[workload]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Virtual nodes, `1..=1_000_000` (default 8).
    pub nodes: u32,
    /// Distinct locks, >= 1 (default 1).
    pub keys: u32,
    /// How each cycle picks its key (default uniform).
    pub key_pick: KeyPick,
    /// Time in the critical section (default `1ms`).
    pub hold: Dist,
    /// Pause between cycles (default `0ms`).
    pub think: Dist,
    /// Give up an acquire after this long (default 2s, > 0).
    pub acquire_timeout: Duration,
    /// Open loop: attempts per second across all nodes (Poisson), > 0.
    pub rate: Option<f64>,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            nodes: 8,
            keys: 1,
            key_pick: KeyPick::Uniform,
            hold: Dist::Const(Duration::from_millis(1)),
            think: Dist::Const(Duration::ZERO),
            acquire_timeout: Duration::from_secs(2),
            rate: None,
        }
    }
}

/// The `[thresholds]` table: any subset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thresholds {
    /// Most mutual-exclusion violations allowed.
    pub max_violations: Option<u64>,
    /// Most violations a fencing token would not have caught.
    pub max_unfenced_violations: Option<u64>,
    /// Highest 99th percentile acquire latency allowed.
    pub p99_acquire: Option<Duration>,
    /// Fewest acquisitions per second allowed (>= 0).
    pub min_throughput: Option<f64>,
    /// Lowest Jain fairness index allowed (0..=1).
    pub min_jain: Option<f64>,
}

impl Thresholds {
    /// Whether no threshold is set.
    pub fn is_empty(&self) -> bool {
        *self == Thresholds::default()
    }
}

impl Scenario {
    /// Read and validate a scenario file. An unreadable file is an error
    /// naming it.
    #[allow(
        clippy::result_large_err,
        reason = "the error is the product; errors are rare"
    )]
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let src = std::fs::read_to_string(path).map_err(|e| {
            ScenarioError::file_level(path, format!("cannot read scenario file: {e}"))
        })?;
        Scenario::parse(&src, path)
    }

    /// Validate scenario text; `file` names it in errors and in
    /// [`Scenario::file`]. `${VAR}` is replaced from the process environment.
    #[allow(
        clippy::result_large_err,
        reason = "the error is the product; errors are rare"
    )]
    pub fn parse(src: &str, file: &Path) -> Result<Scenario, ScenarioError> {
        Scenario::parse_with_env(src, file, &|name| std::env::var(name).ok())
    }

    /// Like [`Scenario::parse`], with an explicit lookup for `${VAR}`.
    #[allow(
        clippy::result_large_err,
        reason = "the error is the product; errors are rare"
    )]
    pub fn parse_with_env(
        src: &str,
        file: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Scenario, ScenarioError> {
        parse::parse(src, file, env).map_err(|e| *e)
    }
}
