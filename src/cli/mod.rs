//! Command-line interface: argument parsing and the subcommands.

mod backends;
mod compare;
mod headless;
mod run;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// Exit code: a runtime error (unreadable scenario, backend unreachable).
pub const EXIT_RUNTIME: u8 = 1;
/// Exit code: a threshold failed.
pub const EXIT_THRESHOLD: u8 = 3;
/// Exit code: stopped early by Ctrl-C or `q` (report still written).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Make distributed locks fight, and see what happens.
///
/// lockstorm spawns virtual nodes that contend for locks on a backend, checks
/// mutual exclusion exactly, and measures acquisition latency, throughput and
/// fairness. Start with:
///
///   lockstorm run scenarios/quickstart.toml
///
/// Exit codes: 0 success, 1 runtime error, 2 usage error, 3 a threshold
/// failed, 130 interrupted (the report is still written).
#[derive(Debug, Parser)]
#[command(
    name = "lockstorm",
    version,
    verbatim_doc_comment,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario and print (and optionally write) a report.
    ///
    /// Examples:
    ///   lockstorm run scenarios/quickstart.toml
    ///   lockstorm run scenarios/mem-broken.toml --report reports/broken
    ///   lockstorm run scenarios/quickstart.toml --nodes 64 --duration 5s --seed 1
    #[command(verbatim_doc_comment)]
    Run(RunArgs),
    /// Run one scenario against several backends, one after another, and
    /// compare them side by side.
    ///
    /// Same workload and seed for each. A backend that cannot be reached
    /// becomes a `failed` row; the others still run (exit code 0).
    ///
    /// Examples:
    ///   lockstorm compare scenarios/choose-a-lock.toml --backend mem:fifo --backend sqlite
    ///   lockstorm compare scenarios/choose-a-lock.toml -b mem:fifo,mem:barging,redis --report reports/cmp
    #[command(verbatim_doc_comment)]
    Compare(compare::CompareArgs),
    /// Check scenario files without running them.
    ///
    /// Prints `ok` per valid file, or the error with file, line, column and
    /// what would be valid. Exit code 1 if any file is invalid.
    Validate {
        /// Scenario files (TOML).
        #[arg(required = true, value_name = "SCENARIO")]
        files: Vec<PathBuf>,
    },
    /// List backend kinds, variants, properties and default endpoints.
    Backends,
}

/// Arguments of `lockstorm run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Scenario file (TOML); see scenarios/ for examples.
    #[arg(value_name = "SCENARIO")]
    scenario: PathBuf,
    /// Print progress lines instead of opening the dashboard (which opens
    /// only when stdout is a terminal).
    #[arg(long)]
    headless: bool,
    /// Write report.json, report.md, report.html, timeseries.csv and latency.hlog here.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// Override the scenario's duration (e.g. 10s, 2m).
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Override the number of virtual nodes.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    nodes: Option<u32>,
    /// Override the seed (same seed, same sampled workload).
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Collector tick: how often progress is measured and printed
    /// [default: 1s headless, 250ms with the dashboard].
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    tick: Option<Duration>,
    /// Route every node through lockstorm's fault proxy even when the
    /// scenario has no network fault, so the dashboard's fault menu (`f`)
    /// can add latency, partitions and resets live.
    #[arg(long)]
    fault_proxy: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("{e} (write a duration such as 500ms, 10s, 2m)"))?;
    if d.is_zero() {
        return Err("must be greater than zero".into());
    }
    Ok(d)
}

/// Run the parsed command; returns the process exit code.
pub fn main(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Compare(args) => compare::compare(args),
        Command::Validate { files } => validate::validate(&files),
        Command::Backends => backends::list(),
    }
}

/// Whether colour may be used on stdout: a terminal and no `NO_COLOR`.
pub fn color_stdout() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// Print a one-line error to stderr, prefixed like every lockstorm error.
pub fn error(msg: impl std::fmt::Display) {
    eprintln!("lockstorm: error: {msg}");
}
