//! The dashboard's state: which view, scroll positions, sort order, the
//! event log, and what key presses mean. No drawing and no terminal here.

use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::events::EventLog;
use super::faultmenu::{FaultMenu, MenuOutcome};
use crate::backend::catalog::Properties;
use crate::metrics::{Phase, Snapshot};
use crate::scenario::Thresholds;

/// What the dashboard shows about the run that never changes.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// Scenario name.
    pub scenario: String,
    /// Backend kind (`redis`).
    pub kind: String,
    /// Backend variant (`set-nx`).
    pub variant: String,
    /// Declared properties of the variant.
    pub properties: Properties,
    /// Distinct keys.
    pub keys: u32,
    /// The scenario's thresholds (breaches become events).
    pub thresholds: Thresholds,
    /// Whether the nodes' traffic goes through the fault proxy, so the
    /// fault menu's network faults can apply.
    pub fault_proxy: bool,
}

impl Default for RunInfo {
    fn default() -> Self {
        RunInfo {
            scenario: String::new(),
            kind: String::new(),
            variant: String::new(),
            properties: Properties {
                fencing: false,
                fair: false,
                lease: false,
                r#unsafe: false,
            },
            keys: 1,
            thresholds: Thresholds::default(),
            fault_proxy: false,
        }
    }
}

impl RunInfo {
    /// The facts of `scn`.
    pub fn of(scn: &crate::scenario::Scenario) -> Self {
        RunInfo {
            scenario: scn.name.clone(),
            kind: scn.backend.kind.name.to_string(),
            variant: scn.backend.variant.name.to_string(),
            properties: scn.backend.variant.properties,
            keys: scn.workload.keys,
            thresholds: scn.thresholds.clone(),
            fault_proxy: crate::faults::needs_proxy(&scn.faults)
                && !matches!(scn.backend.kind.name, "mem" | "sqlite"),
        }
    }
}

/// The four screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Header, charts, fairness, safety.
    Overview,
    /// Per-node swimlanes over the last seconds.
    Timeline,
    /// Per-node table.
    Nodes,
    /// Log of faults, violations, errors.
    Events,
}

impl View {
    /// All views in key order (1–4).
    pub const ALL: [View; 4] = [View::Overview, View::Timeline, View::Nodes, View::Events];

    /// Tab title.
    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Timeline => "Timeline",
            View::Nodes => "Nodes",
            View::Events => "Events",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }
}

/// Columns of the nodes table (the sort key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// Node id.
    Id,
    /// Grants, most first.
    Acquired,
    /// Timeouts, most first.
    Timeouts,
    /// Errors, most first.
    Errors,
    /// Median acquire latency, highest first.
    P50,
    /// 99th percentile acquire latency, highest first.
    P99,
    /// Longest wait, highest first.
    Wait,
    /// State.
    State,
}

impl SortBy {
    /// Columns in table order.
    pub const ALL: [SortBy; 8] = [
        SortBy::Id,
        SortBy::Acquired,
        SortBy::Timeouts,
        SortBy::Errors,
        SortBy::P50,
        SortBy::P99,
        SortBy::Wait,
        SortBy::State,
    ];

    /// Position in the table.
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }
}

/// What a key asks the engine (or the loop) to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Start this fault now (the fault menu).
    Fault(crate::scenario::FaultSpec),
    /// Stop the run (the report is still written).
    Stop,
    /// Leave the dashboard now.
    Quit,
    /// Pause (true) or resume the load.
    Pause(bool),
    /// Add (or with a negative number remove) nodes.
    AddNodes(i32),
}

/// Shortest and longest timeline window, seconds.
pub const WINDOW_RANGE_S: (f64, f64) = (1.0, 600.0);

/// Everything the dashboard remembers between frames.
#[derive(Debug)]
pub struct App {
    /// Fixed facts about the run.
    pub info: RunInfo,
    /// The screen shown.
    pub view: View,
    /// Whether the key help is shown over the view.
    pub help: bool,
    /// The fault menu, while open.
    pub fault_menu: Option<FaultMenu>,
    /// First row shown, per view (timeline lanes, node rows, events).
    pub scroll: [usize; 4],
    /// Nodes table sort column.
    pub sort: SortBy,
    /// Timeline window, seconds.
    pub window_s: f64,
    /// Whether the user paused the load.
    pub paused: bool,
    /// A stop was requested (`q`); the loop waits for the engine to finish.
    pub stopping: bool,
    /// The engine finished (phase Done seen).
    pub finished: bool,
    /// The latest snapshot.
    pub snap: Arc<Snapshot>,
    /// Faults, violations, errors, ... with run times.
    pub events: EventLog,
}

impl App {
    /// A dashboard on the overview, before any snapshot.
    pub fn new(info: RunInfo) -> Self {
        App {
            info,
            view: View::Overview,
            help: false,
            fault_menu: None,
            scroll: [0; 4],
            sort: SortBy::Id,
            window_s: 10.0,
            paused: false,
            stopping: false,
            finished: false,
            snap: Arc::new(Snapshot::default()),
            events: EventLog::default(),
        }
    }

    /// Take in a new snapshot: log what changed.
    pub fn observe(&mut self, snap: Arc<Snapshot>) {
        self.events
            .observe(&self.snap, &snap, &self.info.thresholds);
        if snap.phase == Some(Phase::Done) {
            self.finished = true;
        }
        self.snap = snap;
    }

    /// Handle one key press; returns what the engine must do, if anything.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<Command> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if let Some(menu) = self.fault_menu.as_mut()
            && !(ctrl && key.code == KeyCode::Char('c'))
        {
            let nodes = (self.snap.nodes.len() as u32).max(1);
            match menu.on_key(key, nodes) {
                MenuOutcome::Open => {}
                MenuOutcome::Cancelled => self.fault_menu = None,
                MenuOutcome::Start(spec) => {
                    self.fault_menu = None;
                    if !self.finished && !self.stopping {
                        return Some(Command::Fault(spec));
                    }
                }
            }
            return None;
        }
        if self.help {
            // Any key closes the help; all but `?` and Esc then do their job.
            self.help = false;
            if matches!(key.code, KeyCode::Char('?') | KeyCode::Esc) {
                return None;
            }
        }
        let page = 10;
        match key.code {
            KeyCode::Char('c') if ctrl => return Some(self.quit_or_stop()),
            KeyCode::Char('q') => return Some(self.quit_or_stop()),
            KeyCode::Char('?') | KeyCode::Char('h') => self.help = true,
            KeyCode::Char(c @ '1'..='4') => {
                self.view = View::ALL[(c as u8 - b'1') as usize];
            }
            KeyCode::Tab => self.view = View::ALL[(self.view.index() + 1) % 4],
            KeyCode::BackTab => self.view = View::ALL[(self.view.index() + 3) % 4],
            KeyCode::Char(' ') if !self.finished && !self.stopping => {
                self.paused = !self.paused;
                self.events.note(
                    self.snap.elapsed_s,
                    if self.paused {
                        "load paused (space resumes)"
                    } else {
                        "load resumed"
                    },
                );
                return Some(Command::Pause(self.paused));
            }
            KeyCode::Char('f') if !self.finished && !self.stopping => {
                self.fault_menu = Some(FaultMenu::default());
            }
            KeyCode::Char('+') | KeyCode::Char('=') if !self.finished && !self.stopping => {
                return Some(Command::AddNodes(1));
            }
            KeyCode::Char('-') if !self.finished && !self.stopping => {
                return Some(Command::AddNodes(-1));
            }
            KeyCode::Char('s') if self.view == View::Nodes => {
                self.sort = SortBy::ALL[(self.sort.index() + 1) % SortBy::ALL.len()];
            }
            KeyCode::Char('[') => self.window_s = (self.window_s / 2.0).max(WINDOW_RANGE_S.0),
            KeyCode::Char(']') => self.window_s = (self.window_s * 2.0).min(WINDOW_RANGE_S.1),
            KeyCode::Up | KeyCode::Char('k') => self.scroll_by(-1),
            KeyCode::Down | KeyCode::Char('j') => self.scroll_by(1),
            KeyCode::PageUp => self.scroll_by(-page),
            KeyCode::PageDown => self.scroll_by(page),
            KeyCode::Home => self.scroll[self.view.index()] = 0,
            _ => {}
        }
        None
    }

    fn quit_or_stop(&mut self) -> Command {
        if self.finished || self.stopping {
            Command::Quit
        } else {
            self.stopping = true;
            self.events
                .note(self.snap.elapsed_s, "stop requested: finishing the run");
            Command::Stop
        }
    }

    fn scroll_by(&mut self, d: isize) {
        let s = &mut self.scroll[self.view.index()];
        *s = s.saturating_add_signed(d);
    }

    /// Clamp the current view's scroll to `rows` rows of which `shown` fit.
    pub fn clamp_scroll(&mut self, view: View, rows: usize, shown: usize) -> usize {
        let s = &mut self.scroll[view.index()];
        *s = (*s).min(rows.saturating_sub(shown.max(1)));
        *s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn keys_switch_views_and_q_stops_then_quits() {
        let mut a = App::new(RunInfo::default());
        a.on_key(key(KeyCode::Char('3')));
        assert_eq!(a.view, View::Nodes);
        a.on_key(key(KeyCode::Tab));
        assert_eq!(a.view, View::Events);
        a.on_key(key(KeyCode::Tab));
        assert_eq!(a.view, View::Overview);
        a.on_key(key(KeyCode::BackTab));
        assert_eq!(a.view, View::Events);
        assert_eq!(
            a.on_key(key(KeyCode::Char(' '))),
            Some(Command::Pause(true))
        );
        assert_eq!(
            a.on_key(key(KeyCode::Char('+'))),
            Some(Command::AddNodes(1))
        );
        assert_eq!(a.on_key(key(KeyCode::Char('q'))), Some(Command::Stop));
        assert_eq!(a.on_key(key(KeyCode::Char('q'))), Some(Command::Quit));
        let c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(App::new(RunInfo::default()).on_key(c), Some(Command::Stop));
    }

    #[test]
    fn help_closes_on_any_key_and_sort_cycles() {
        let mut a = App::new(RunInfo::default());
        a.on_key(key(KeyCode::Char('?')));
        assert!(a.help);
        a.on_key(key(KeyCode::Esc));
        assert!(!a.help);
        a.on_key(key(KeyCode::Char('?')));
        a.on_key(key(KeyCode::Char('2')));
        assert!(!a.help);
        assert_eq!(a.view, View::Timeline, "the key closed the help and acted");
        a.on_key(key(KeyCode::Char('1')));
        a.on_key(key(KeyCode::Char('3')));
        a.on_key(key(KeyCode::Char('s')));
        assert_eq!(a.sort, SortBy::Acquired);
        a.on_key(key(KeyCode::Char('[')));
        assert_eq!(a.window_s, 5.0);
    }
}
