//! `lockstorm compare`: headless progress (a bar per stage on a terminal,
//! a line per stage otherwise), each stage's report written as soon as it
//! finishes, then the comparison files and a summary table.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lockstorm::compare::{
    self, BackendChoice, CompareObserver, CompareState, Comparison, Headline, Outcome,
};
use lockstorm::metrics::{Phase, Snapshot};
use lockstorm::report::{self, human_us};
use lockstorm::run::preflight_warnings;
use lockstorm::scenario::Scenario;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{EXIT_INTERRUPTED, EXIT_RUNTIME, error};

/// Arguments of `lockstorm compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Scenario file (TOML): the workload every backend runs.
    #[arg(value_name = "SCENARIO")]
    scenario: PathBuf,
    /// A backend to compare, KIND[:VARIANT] (default variant when omitted).
    /// Repeat it, or separate with commas: --backend mem:fifo,sqlite
    #[arg(
        long = "backend",
        short = 'b',
        value_name = "KIND[:VARIANT]",
        required = true,
        value_delimiter = ',',
        value_parser = parse_choice
    )]
    backends: Vec<BackendChoice>,
    /// Write each backend's report under DIR/<kind>-<variant>/, then
    /// compare.json, compare.md and compare.html into DIR.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// Override the scenario's duration, per backend (e.g. 5s).
    #[arg(long, value_name = "D", value_parser = super::parse_duration)]
    duration: Option<Duration>,
    /// Override the number of virtual nodes.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    nodes: Option<u32>,
    /// Override the seed (every backend runs with the same seed).
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Collector tick: how often progress is measured
    /// [default: 1s headless, 250ms with the dashboard].
    #[arg(long, value_name = "D", value_parser = super::parse_duration)]
    tick: Option<Duration>,
    /// Progress bars on stderr instead of the dashboard (which opens only
    /// when stdout is a terminal).
    #[arg(long)]
    headless: bool,
}

fn parse_choice(s: &str) -> Result<BackendChoice, String> {
    BackendChoice::parse(s)
}

/// Run `lockstorm compare`.
pub fn compare(args: CompareArgs) -> ExitCode {
    let mut scn = match Scenario::load(&args.scenario) {
        Ok(s) => s,
        Err(e) => {
            error(e);
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    if let Some(d) = args.duration {
        scn.duration = d;
        if scn.warmup >= d {
            scn.warmup = Duration::ZERO;
        }
    }
    if let Some(n) = args.nodes {
        scn.workload.nodes = n;
    }
    if let Some(s) = args.seed {
        scn.seed = Some(s);
    }
    if let Some(dir) = &args.report
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        error(format!(
            "cannot create the report directory {}: {e}",
            dir.display()
        ));
        return ExitCode::from(EXIT_RUNTIME);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error(format!("cannot start the async runtime: {e}"));
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    rt.block_on(compare_async(scn, args))
}

async fn compare_async(scn: Scenario, args: CompareArgs) -> ExitCode {
    let mut warnings: Vec<String> = Vec::new();
    for b in &args.backends {
        for w in preflight_warnings(&b.scenario(&scn)) {
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
    }
    for w in &warnings {
        eprintln!("lockstorm: warning: {w}");
    }
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nlockstorm: stopping (Ctrl-C again to quit without a report)");
            on_signal.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(i32::from(EXIT_INTERRUPTED));
            }
        }
    });
    let dashboard = !args.headless && std::io::stdout().is_terminal();
    let tick = args.tick.unwrap_or(if dashboard {
        lockstorm::tui::TUI_TICK
    } else {
        Duration::from_secs(1)
    });
    let mut progress = Progress::new(args.report.clone(), args.backends.len());
    let cmp = if dashboard {
        progress.quiet = true;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let ui = tokio::spawn(lockstorm::tui::compare::run(rx, stop.clone()));
        let mut obs = DashObserver {
            progress: &mut progress,
            tx,
            base: &scn,
            backends: &args.backends,
        };
        let cmp = compare::run(&scn, &args.backends, tick, stop, &mut obs).await;
        // Closing the channel tells the dashboard the comparison is over;
        // it stays on the final figures until `q`.
        drop(obs);
        match ui.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error(format!("the dashboard failed: {e}")),
            Err(e) => error(format!("the dashboard crashed: {e}")),
        }
        cmp
    } else {
        compare::run(&scn, &args.backends, tick, stop, &mut progress).await
    };
    progress.stop_follower();
    print!("{}", report::compare::text::summary(&cmp));
    let mut write_failed = progress.write_failed;
    if let Some(dir) = &args.report {
        match report::compare::write_all(&cmp, dir) {
            Ok(files) => println!(
                "  report: {}",
                files
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(e) => {
                error(format!(
                    "cannot write the comparison to {}: {e}",
                    dir.display()
                ));
                write_failed = true;
            }
        }
    }
    if !cmp.completed {
        ExitCode::from(EXIT_INTERRUPTED)
    } else if write_failed || cmp.stages.iter().all(|s| s.run().is_none()) {
        if cmp.stages.iter().all(|s| s.run().is_none()) {
            error("no backend could be run; the reasons are in the table above");
        }
        ExitCode::from(EXIT_RUNTIME)
    } else {
        ExitCode::SUCCESS
    }
}

/// Whether colour may be used on stderr: a terminal and no `NO_COLOR`.
fn color_stderr() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// The headless observer: progress on stderr, reports written per stage.
/// Feeds the compare dashboard and writes each stage's report.
struct DashObserver<'a> {
    progress: &'a mut Progress,
    tx: tokio::sync::mpsc::UnboundedSender<lockstorm::tui::compare::CompareEvent>,
    base: &'a Scenario,
    backends: &'a [BackendChoice],
}

impl CompareObserver for DashObserver<'_> {
    fn stage_started(
        &mut self,
        index: usize,
        state: &CompareState,
        snapshots: watch::Receiver<Arc<Snapshot>>,
    ) {
        let info = match self.backends.get(index) {
            Some(b) => lockstorm::tui::RunInfo::of(&b.scenario(self.base)),
            None => lockstorm::tui::RunInfo::default(),
        };
        let _ = self
            .tx
            .send(lockstorm::tui::compare::CompareEvent::Started {
                index,
                state: state.clone(),
                info,
                snapshots,
            });
    }

    fn stage_finished(&mut self, index: usize, state: &CompareState, so_far: &Comparison) {
        self.progress.stage_finished(index, state, so_far);
        let _ = self
            .tx
            .send(lockstorm::tui::compare::CompareEvent::Finished(
                state.clone(),
            ));
    }
}

struct Progress {
    /// Print nothing (the dashboard shows progress); still write reports.
    quiet: bool,
    dir: Option<PathBuf>,
    stages: usize,
    tty: bool,
    color: bool,
    bar: Option<ProgressBar>,
    follower: Option<JoinHandle<()>>,
    write_failed: bool,
}

impl Progress {
    fn new(dir: Option<PathBuf>, stages: usize) -> Progress {
        let tty = std::io::stderr().is_terminal();
        Progress {
            quiet: false,
            dir,
            stages,
            tty,
            color: color_stderr(),
            bar: None,
            follower: None,
            write_failed: false,
        }
    }

    fn stop_follower(&mut self) {
        if let Some(f) = self.follower.take() {
            f.abort();
        }
    }

    fn style(&self) -> ProgressStyle {
        let template = if self.color {
            "{prefix:.bold} [{bar:28.cyan/blue}] {msg}"
        } else {
            "{prefix} [{bar:28}] {msg}"
        };
        ProgressStyle::with_template(template)
            .expect("the progress template is valid")
            .progress_chars("=> ")
    }

    fn write_stage(&mut self, cmp: &Comparison) {
        let (Some(dir), Some(st)) = (&self.dir, cmp.stages.last()) else {
            return;
        };
        if let Outcome::Ok(r) = &st.outcome {
            let stage_dir = dir.join(&st.dir_name);
            if let Err(e) = report::write_all(r, &stage_dir) {
                error(format!(
                    "cannot write the report to {}: {e}",
                    stage_dir.display()
                ));
                self.write_failed = true;
            }
        }
        // The comparison so far, so a later failure loses nothing.
        if let Err(e) = report::compare::write_all(cmp, dir) {
            error(format!(
                "cannot write the comparison to {}: {e}",
                Path::new(dir).display()
            ));
            self.write_failed = true;
        }
    }
}

fn live_message(s: &Snapshot) -> String {
    let phase = match s.phase {
        Some(Phase::Starting) | None => "connecting",
        Some(Phase::Warmup) => "warmup",
        Some(Phase::Running) => "running",
        Some(Phase::Stopping) | Some(Phase::Done) => "stopping",
    };
    let last = s.series.last();
    format!(
        "{:>4.0}s/{:.0}s {phase:<10} {:>8.0} acq/s  p99 {:>8}  violations {}",
        s.elapsed_s,
        s.total_s,
        last.map_or(0.0, |p| p.throughput_per_s),
        human_us(last.map_or(0, |p| p.p99_us)),
        s.safety.violations
    )
}

fn done_message(h: &Headline) -> String {
    format!(
        "done: {:.0} acq/s, p99 {}, Jain {:.3}, {} violations ({} unfenced), {} errors",
        h.throughput_per_s,
        human_us(h.acquire_p99_us),
        h.jain,
        h.violations,
        h.unfenced_violations,
        h.errors
    )
}

impl CompareObserver for Progress {
    fn stage_started(
        &mut self,
        index: usize,
        state: &CompareState,
        mut snapshots: watch::Receiver<Arc<Snapshot>>,
    ) {
        let label = &state.stages[index].label;
        let prefix = format!("[{}/{}] {label:<20}", index + 1, self.stages);
        if !self.tty {
            eprintln!("{prefix} running");
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::stderr());
        bar.set_style(self.style());
        bar.set_prefix(prefix);
        bar.set_message("connecting");
        let follow = bar.clone();
        self.stop_follower();
        self.follower = Some(tokio::spawn(async move {
            while snapshots.changed().await.is_ok() {
                let s = Arc::clone(&snapshots.borrow_and_update());
                if s.total_s > 0.0 {
                    follow
                        .set_position((s.elapsed_s / s.total_s * 1000.0).clamp(0.0, 1000.0) as u64);
                }
                follow.set_message(live_message(&s));
            }
        }));
        self.bar = Some(bar);
    }

    fn stage_finished(&mut self, index: usize, state: &CompareState, so_far: &Comparison) {
        self.stop_follower();
        if self.quiet {
            self.write_stage(so_far);
            return;
        }
        let view = &state.stages[index];
        let msg = match (&view.headline, &view.error) {
            (_, Some(e)) => format!("FAILED: {e}"),
            (Some(h), None) => done_message(h),
            (None, None) => "done".into(),
        };
        match self.bar.take() {
            Some(bar) => {
                if view.error.is_none() {
                    bar.set_position(1000);
                }
                bar.finish_with_message(msg);
            }
            None => eprintln!("[{}/{}] {:<20} {msg}", index + 1, self.stages, view.label),
        }
        self.write_stage(so_far);
    }
}
