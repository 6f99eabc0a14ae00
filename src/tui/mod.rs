//! The live dashboard (ratatui + crossterm): renders the engine's snapshots,
//! turns key presses into commands for the engine, and never touches the
//! engine's state directly.
//!
//! Layers: [`app`] holds the state and key handling, [`model`] and [`lanes`]
//! compute everything a frame shows, [`view`] lays it out. The loop is one
//! `tokio::select!` over key events, snapshot changes and a frame interval;
//! a frame is drawn only when something changed.

pub mod app;
mod bigtext;
pub mod compare;
pub mod events;
pub mod faultmenu;
pub mod lanes;
pub mod model;
pub mod theme;
pub mod view;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{Event, EventStream};
use futures_util::StreamExt;
use ratatui::Terminal;
use ratatui::backend::Backend as TermBackend;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use app::{App, Command, RunInfo, View};
pub use theme::Theme;

use crate::engine::LoadControl;
use crate::metrics::Snapshot;

/// Collector tick while the dashboard is open.
pub const TUI_TICK: Duration = Duration::from_millis(250);
/// Shortest time between two frames (at most 20 fps).
pub const FRAME: Duration = Duration::from_millis(50);
/// How much per-node history the timeline can show.
pub const TIMELINE_HISTORY: Duration = Duration::from_secs(app::WINDOW_RANGE_S.1 as u64);

/// What the dashboard steers.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// Fixed facts about the run.
    pub info: RunInfo,
    /// Cancelled by `q` / Ctrl-C.
    pub stop: CancellationToken,
    /// Pause and node count.
    pub load: LoadControl,
    /// Where the fault menu sends the faults it starts.
    pub faults: Option<crate::faults::LiveFaults>,
    /// Whether the nodes go through the fault proxy (network faults work).
    pub fault_proxy: bool,
}

/// Draw one frame of `app` on `terminal` (any ratatui backend: the real
/// terminal or a `TestBackend`).
pub fn render<B: TermBackend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    theme: &Theme,
) -> Result<(), B::Error> {
    let size = terminal.size()?;
    let vm = model::build(app, size.width, size.height);
    terminal.draw(|f| view::draw(f, &vm, theme))?;
    Ok(())
}

/// Restores the terminal when dropped (normal return, error or unwinding).
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Apply a command from a key press. Returns false when the dashboard must close.
fn apply(d: &Dashboard, app: &mut App, cmd: Command) -> bool {
    match cmd {
        Command::Stop => d.stop.cancel(),
        Command::Quit => return false,
        Command::Pause(p) => d.load.set_paused(p),
        Command::Fault(spec) => {
            let what = format!(
                "fault started from the menu: {} nodes {}{}",
                spec.kind,
                spec.nodes,
                spec.duration
                    .map(|d| format!(" for {}", humantime::format_duration(d)))
                    .unwrap_or_default()
            );
            let sent = d.faults.as_ref().is_some_and(|f| f.inject(spec));
            let note = if sent {
                what
            } else {
                "the run no longer takes faults".to_string()
            };
            app.events.note(app.snap.elapsed_s, &note);
        }
        Command::AddNodes(n) => {
            let target = d.load.add_nodes(n);
            app.events
                .note(app.snap.elapsed_s, &format!("node count set to {target}"));
        }
    }
    true
}

/// Run the dashboard on the real terminal until the user leaves it (after
/// the run ended or was stopped) or the engine goes away without finishing.
pub async fn run(d: Dashboard, rx: watch::Receiver<Arc<Snapshot>>) -> io::Result<()> {
    let stop = d.stop.clone();
    let r = run_inner(d, rx).await;
    if r.is_err() {
        // The dashboard is gone: stop the run rather than leave it running
        // with nobody watching (the report is still written).
        stop.cancel();
    }
    r
}

async fn run_inner(d: Dashboard, mut rx: watch::Receiver<Arc<Snapshot>>) -> io::Result<()> {
    // Installs a panic hook that restores the terminal before printing.
    let mut terminal = ratatui::try_init()?;
    let _restore = Restore;
    let theme = Theme::from_env();
    let mut app = App::new(d.info.clone());
    app.observe(Arc::clone(&rx.borrow_and_update()));
    let mut keys = EventStream::new();
    let mut frame = tokio::time::interval(FRAME);
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut dirty = true;
    let mut engine_gone = false;
    loop {
        tokio::select! {
            ev = keys.next() => match ev {
                Some(Ok(Event::Key(k))) => {
                    if let Some(cmd) = app.on_key(k) && !apply(&d, &mut app, cmd) {
                        break;
                    }
                    dirty = true;
                }
                Some(Ok(Event::Resize(..))) => dirty = true,
                Some(Ok(_)) => {}
                // No input any more: stop the run rather than hang on it.
                Some(Err(_)) | None => {
                    d.stop.cancel();
                    break;
                }
            },
            changed = rx.changed(), if !engine_gone => match changed {
                Ok(()) => {
                    let snap = Arc::clone(&rx.borrow_and_update());
                    app.observe(snap);
                    dirty = true;
                }
                Err(_) => {
                    engine_gone = true;
                    // Ended without a final snapshot (an error): leave, so
                    // the error is printed on the normal screen.
                    if !app.finished {
                        break;
                    }
                }
            },
            _ = frame.tick() => if dirty {
                render(&mut terminal, &mut app, &theme)?;
                dirty = false;
            },
        }
        if app.stopping && app.finished {
            break;
        }
    }
    Ok(())
}
