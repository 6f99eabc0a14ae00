//! The dashboard for `lockstorm compare`: the stage list (done / running /
//! waiting, each finished backend's headline figures) above the running
//! stage's live dashboard.

use std::io;
use std::sync::Arc;

use crossterm::event::{Event, EventStream, KeyCode, KeyEventKind, KeyModifiers};
use futures_util::StreamExt;
use ratatui::layout::{Constraint, Layout};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::app::{App, RunInfo};
use super::{FRAME, Restore, Theme, model, view};
use crate::compare::{CompareState, StageStatus};
use crate::metrics::Snapshot;
use crate::report::human_us;

/// What the comparison tells the dashboard.
#[derive(Debug)]
pub enum CompareEvent {
    /// Stage `index` started: its run's facts and its live snapshots.
    Started {
        /// Position in the stage list.
        index: usize,
        /// The stage list now.
        state: CompareState,
        /// The stage's backend and workload.
        info: RunInfo,
        /// Its snapshots.
        snapshots: watch::Receiver<Arc<Snapshot>>,
    },
    /// A stage finished (ran or failed): the stage list now.
    Finished(CompareState),
}

/// One line per stage: a mark, the label, and what is known.
pub fn stage_lines(state: &CompareState) -> Vec<(char, String, String, bool)> {
    state
        .stages
        .iter()
        .map(|st| {
            let (mark, what, bad) = match st.status {
                StageStatus::Waiting => ('·', "waiting".to_string(), false),
                StageStatus::Running => ('▶', "running".to_string(), false),
                StageStatus::Failed => (
                    '✗',
                    format!("failed: {}", st.error.as_deref().unwrap_or("?")),
                    true,
                ),
                StageStatus::Done => match &st.headline {
                    Some(h) => (
                        '✓',
                        format!(
                            "{:>8.0} acq/s  p99 {:>8}  Jain {:.3}  violations {} ({} unfenced)  errors {}",
                            h.throughput_per_s,
                            human_us(h.acquire_p99_us),
                            h.jain,
                            h.violations,
                            h.unfenced_violations,
                            h.errors
                        ),
                        h.unfenced_violations > 0,
                    ),
                    None => ('✓', "done".to_string(), false),
                },
            };
            (mark, st.label.clone(), what, bad)
        })
        .collect()
}

/// Run the compare dashboard until the comparison is over and the user
/// leaves (`q`), or the user stops it (`q` / Ctrl-C cancel `stop`, `q`
/// again leaves).
pub async fn run(
    mut events: mpsc::UnboundedReceiver<CompareEvent>,
    stop: CancellationToken,
) -> io::Result<()> {
    let r = run_inner(&mut events, &stop).await;
    if r.is_err() {
        stop.cancel();
    }
    r
}

async fn run_inner(
    events: &mut mpsc::UnboundedReceiver<CompareEvent>,
    stop: &CancellationToken,
) -> io::Result<()> {
    let mut terminal = ratatui::try_init()?;
    let _restore = Restore;
    let theme = Theme::from_env();
    let mut app = App::new(RunInfo::default());
    let mut state = CompareState { stages: Vec::new() };
    let mut snaps: Option<watch::Receiver<Arc<Snapshot>>> = None;
    let mut keys = EventStream::new();
    let mut frame = tokio::time::interval(FRAME);
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut over = false;
    let mut dirty = true;
    loop {
        tokio::select! {
            ev = keys.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => {
                    let quit = k.code == KeyCode::Char('q')
                        || (k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL));
                    if quit {
                        if over || stop.is_cancelled() {
                            break;
                        }
                        stop.cancel();
                        app.stopping = true;
                        app.events.note(app.snap.elapsed_s, "stop requested: finishing this stage, skipping the rest");
                    } else if app.fault_menu.is_none() && k.code != KeyCode::Char('f') {
                        // Views, scrolling, sorting, help; the load is the
                        // comparison's, so pause, +/- and faults are not offered.
                        if !matches!(k.code, KeyCode::Char(' ' | '+' | '=' | '-')) {
                            app.on_key(k);
                        }
                    }
                    dirty = true;
                }
                Some(Ok(Event::Resize(..))) => dirty = true,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    stop.cancel();
                    break;
                }
            },
            ev = events.recv(), if !over => match ev {
                Some(CompareEvent::Started { state: st, info, snapshots, .. }) => {
                    state = st;
                    let view = app.view;
                    app = App::new(info);
                    app.view = view;
                    app.stopping = stop.is_cancelled();
                    app.observe(Arc::clone(&snapshots.borrow()));
                    snaps = Some(snapshots);
                    dirty = true;
                }
                Some(CompareEvent::Finished(st)) => {
                    state = st;
                    dirty = true;
                }
                None => {
                    over = true;
                    app.finished = true;
                    dirty = true;
                }
            },
            changed = async {
                match snaps.as_mut() {
                    Some(rx) => rx.changed().await,
                    None => std::future::pending().await,
                }
            } => {
                match changed {
                    Ok(()) => {
                        if let Some(rx) = snaps.as_mut() {
                            let s = Arc::clone(&rx.borrow_and_update());
                            app.observe(s);
                        }
                    }
                    Err(_) => snaps = None,
                }
                dirty = true;
            }
            _ = frame.tick(), if dirty => {
                dirty = false;
                let lines = stage_lines(&state);
                terminal.draw(|f| {
                    let list_h = (lines.len() as u16 + 2).min(f.area().height / 3).max(3);
                    let [list, rest] = Layout::vertical([
                        Constraint::Length(list_h),
                        Constraint::Min(0),
                    ])
                    .areas(f.area());
                    let rows: Vec<Line> = lines
                        .iter()
                        .map(|(mark, label, what, bad)| {
                            Line::from(vec![
                                Span::styled(format!(" {mark} {label:<20} "), theme.bold),
                                Span::styled(what.as_str(), if *bad { theme.bad } else { theme.text }),
                            ])
                        })
                        .collect();
                    let title = if over {
                        " compare: done — q leaves, the summary follows ".to_string()
                    } else {
                        format!(" compare: {} backends, one after another ", lines.len())
                    };
                    f.render_widget(Paragraph::new(rows).block(Block::bordered().title(title)), list);
                    let vm = model::build(&mut app, rest.width, rest.height);
                    view::draw_in(f, rest, &vm, &theme);
                })?;
            }
        }
    }
    Ok(())
}
