//! `lockstorm run`.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use lockstorm::engine::Control;
use lockstorm::faults::LiveFaults;
use lockstorm::metrics::Snapshot;
use lockstorm::report;
use lockstorm::run::{HEADLESS_TICK, preflight_warnings, run_scenario};
use lockstorm::scenario::Scenario;
use lockstorm::tui;
use tokio::sync::watch;

use super::{
    EXIT_INTERRUPTED, EXIT_RUNTIME, EXIT_THRESHOLD, RunArgs, color_stdout, error, headless,
};

pub fn run(args: RunArgs) -> ExitCode {
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
            scn.warmup = std::time::Duration::ZERO;
        }
    }
    if let Some(n) = args.nodes {
        scn.workload.nodes = n;
    }
    if let Some(s) = args.seed {
        scn.seed = Some(s);
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
    rt.block_on(run_async(scn, args))
}

async fn run_async(scn: Scenario, args: RunArgs) -> ExitCode {
    for w in preflight_warnings(&scn) {
        eprintln!("lockstorm: warning: {w}");
    }
    let (tx, rx) = watch::channel(Arc::new(Snapshot::default()));
    let dashboard = !args.headless && std::io::stdout().is_terminal();
    let tick = args.tick.unwrap_or(if dashboard {
        tui::TUI_TICK
    } else {
        HEADLESS_TICK
    });
    let control = Control {
        snapshots: Some(tx),
        timeline: dashboard.then_some(tui::TIMELINE_HISTORY),
        live_faults: dashboard.then(LiveFaults::default),
        fault_proxy: args.fault_proxy,
        ..Control::default()
    };
    let stop = control.stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nlockstorm: stopping (Ctrl-C again to quit without a report)");
            stop.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(i32::from(EXIT_INTERRUPTED));
            }
        }
    });
    let (progress, ui) = if dashboard {
        let d = tui::Dashboard {
            info: tui::RunInfo {
                fault_proxy: tui::RunInfo::of(&scn).fault_proxy
                    || (args.fault_proxy && !matches!(scn.backend.kind.name, "mem" | "sqlite")),
                ..tui::RunInfo::of(&scn)
            },
            stop: control.stop.clone(),
            load: control.load.clone(),
            faults: control.live_faults.clone(),
            fault_proxy: args.fault_proxy,
        };
        (None, Some(tokio::spawn(tui::run(d, rx))))
    } else {
        (Some(tokio::spawn(headless::follow(rx))), None)
    };
    let result = run_scenario(&scn, tick, control).await;
    if let Some(p) = progress {
        let _ = p.await;
    }
    // The dashboard stays on the final figures until `q`; the summary is
    // printed after it restored the terminal.
    if let Some(ui) = ui {
        match ui.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error(format!("the dashboard failed: {e}")),
            Err(e) => error(format!("the dashboard crashed: {e}")),
        }
    }
    let result = match result {
        Ok(r) => r,
        Err(e) => {
            error(e);
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let mut summary = report::text::summary(&result);
    if color_stdout() {
        summary = summary
            .replace("VIOLATIONS", "\x1b[1;31mVIOLATIONS\x1b[0m")
            .replace("FAIL ", "\x1b[1;31mFAIL\x1b[0m ");
    }
    print!("{summary}");
    if let Some(dir) = &args.report {
        match report::write_all(&result, dir) {
            Ok(files) => println!(
                "  report: {}",
                files
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(e) => {
                error(format!("cannot write the report to {}: {e}", dir.display()));
                return ExitCode::from(EXIT_RUNTIME);
            }
        }
    }
    if !result.completed {
        ExitCode::from(EXIT_INTERRUPTED)
    } else if !result.thresholds_passed() {
        eprintln!(
            "lockstorm: {} threshold(s) failed",
            result.thresholds.iter().filter(|t| !t.passed).count()
        );
        ExitCode::from(EXIT_THRESHOLD)
    } else {
        ExitCode::SUCCESS
    }
}
