//! Headless progress: one line per collector tick on stderr (rewritten in
//! place on a terminal).

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use lockstorm::metrics::{Phase, Snapshot};
use lockstorm::report::human_us;
use tokio::sync::watch;

/// One progress line for a snapshot.
pub fn progress_line(s: &Snapshot) -> String {
    let phase = match s.phase {
        Some(Phase::Starting) => "connecting",
        Some(Phase::Warmup) => "warmup",
        Some(Phase::Running) => "running",
        Some(Phase::Stopping) => "stopping",
        Some(Phase::Done) | None => "done",
    };
    let last = s.series.last();
    let mut line = format!(
        "[{:>6.1}s/{:.0}s] {:<8} {:>9.0} acq/s  p99 {:>8}  timeouts {}  errors {}  violations {}",
        s.elapsed_s,
        s.total_s,
        phase,
        last.map_or(0.0, |p| p.throughput_per_s),
        human_us(last.map_or(0, |p| p.p99_us)),
        s.totals.timeouts,
        s.totals.errors,
        s.safety.violations
    );
    // Faults in progress: started, not yet ended.
    for f in s
        .faults
        .iter()
        .filter(|f| f.start_s <= s.elapsed_s && s.elapsed_s < f.end_s)
    {
        let nodes = if f.nodes.is_empty() {
            "all".to_string()
        } else if f.nodes.len() > 3 {
            format!("{} nodes", f.nodes.len())
        } else {
            format!("{:?}", f.nodes)
        };
        line.push_str(&format!("  [{} {nodes}]", f.kind));
    }
    line
}

/// Print a line for every new snapshot until the sender goes away.
pub async fn follow(mut rx: watch::Receiver<Arc<Snapshot>>) {
    let tty = std::io::stderr().is_terminal();
    let mut printed = false;
    while rx.changed().await.is_ok() {
        let snap = Arc::clone(&rx.borrow_and_update());
        if snap.phase == Some(Phase::Done) {
            break;
        }
        let line = progress_line(&snap);
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
        printed = true;
    }
    if tty && printed {
        eprintln!();
    }
}
