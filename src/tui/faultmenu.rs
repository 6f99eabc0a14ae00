//! The fault menu (`f`): pick a kind, the nodes and a duration, and the
//! fault starts at once — recorded like a scheduled one.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent};

use crate::scenario::{FaultKind, FaultSpec, NodeSel};

/// The kinds the menu offers (`exec` needs a command line: scenario only).
pub const KINDS: [FaultKind; 4] = [
    FaultKind::Pause,
    FaultKind::Latency,
    FaultKind::Partition,
    FaultKind::Reset,
];

/// The menu's fields, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Fault kind (← →).
    Kind,
    /// Node selection: `all`, `3`, `0..4`, `1,5`.
    Nodes,
    /// How long (pause, latency, partition).
    Duration,
    /// Added delay (latency only).
    Delay,
}

/// The open menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultMenu {
    /// Index into [`KINDS`].
    pub kind: usize,
    /// Typed node selection.
    pub nodes: String,
    /// Typed duration.
    pub duration: String,
    /// Typed delay (latency).
    pub delay: String,
    /// The field being edited.
    pub field: Field,
    /// Why the last Enter was refused.
    pub error: Option<String>,
}

/// What a key did to the menu.
#[derive(Debug, Clone, PartialEq)]
pub enum MenuOutcome {
    /// Still open.
    Open,
    /// Closed without a fault.
    Cancelled,
    /// Start this fault now.
    Start(FaultSpec),
}

impl Default for FaultMenu {
    fn default() -> Self {
        FaultMenu {
            kind: 0,
            nodes: "0".into(),
            duration: "5s".into(),
            delay: "50ms".into(),
            field: Field::Kind,
            error: None,
        }
    }
}

impl FaultMenu {
    /// The selected kind.
    pub fn kind(&self) -> FaultKind {
        KINDS[self.kind]
    }

    /// The fields this kind has, in Tab order.
    pub fn fields(&self) -> &'static [Field] {
        match self.kind() {
            FaultKind::Latency => &[Field::Kind, Field::Nodes, Field::Duration, Field::Delay],
            FaultKind::Reset => &[Field::Kind, Field::Nodes],
            _ => &[Field::Kind, Field::Nodes, Field::Duration],
        }
    }

    fn text(&mut self) -> Option<&mut String> {
        match self.field {
            Field::Kind => None,
            Field::Nodes => Some(&mut self.nodes),
            Field::Duration => Some(&mut self.duration),
            Field::Delay => Some(&mut self.delay),
        }
    }

    fn step_field(&mut self, by: isize) {
        let fields = self.fields();
        let i = fields.iter().position(|f| *f == self.field).unwrap_or(0) as isize;
        let n = fields.len() as isize;
        self.field = fields[((i + by).rem_euclid(n)) as usize];
    }

    /// Handle a key while the menu is open.
    pub fn on_key(&mut self, key: KeyEvent, nodes: u32) -> MenuOutcome {
        match key.code {
            KeyCode::Esc => return MenuOutcome::Cancelled,
            KeyCode::Enter => match self.spec(nodes) {
                Ok(spec) => return MenuOutcome::Start(spec),
                Err(e) => self.error = Some(e),
            },
            KeyCode::Tab | KeyCode::Down => self.step_field(1),
            KeyCode::BackTab | KeyCode::Up => self.step_field(-1),
            KeyCode::Left if self.field == Field::Kind => {
                self.kind = (self.kind + KINDS.len() - 1) % KINDS.len();
            }
            KeyCode::Right | KeyCode::Char(' ') if self.field == Field::Kind => {
                self.kind = (self.kind + 1) % KINDS.len();
            }
            KeyCode::Backspace => {
                if let Some(t) = self.text() {
                    t.pop();
                }
            }
            KeyCode::Char(c) if !c.is_control() => {
                if let Some(t) = self.text()
                    && t.len() < 32
                {
                    t.push(c);
                }
            }
            _ => {}
        }
        MenuOutcome::Open
    }

    /// The fault the menu describes, or what is wrong with it.
    pub fn spec(&self, nodes: u32) -> Result<FaultSpec, String> {
        let sel: NodeSel = self
            .nodes
            .parse()
            .map_err(|e: crate::scenario::ParseNodeSelError| format!("nodes: {e}"))?;
        let out_of_range = match &sel {
            NodeSel::All => None,
            NodeSel::Range(a, _) => (*a >= nodes).then_some(*a),
            NodeSel::List(v) => v.iter().copied().find(|n| *n >= nodes),
        };
        if let Some(n) = out_of_range {
            return Err(format!(
                "nodes: node {n} does not exist (nodes are 0..{nodes})"
            ));
        }
        let parse = |what: &str, s: &str| -> Result<Duration, String> {
            let d = humantime::parse_duration(s.trim())
                .map_err(|_| format!("{what}: `{s}` is not a duration (e.g. 5s, 500ms)"))?;
            if d.is_zero() {
                return Err(format!("{what}: must be more than 0"));
            }
            Ok(d)
        };
        let kind = self.kind();
        let duration = match kind {
            FaultKind::Reset => None,
            _ => Some(parse("duration", &self.duration)?),
        };
        let delay = match kind {
            FaultKind::Latency => Some(parse("delay", &self.delay)?),
            _ => None,
        };
        Ok(FaultSpec {
            at: Duration::ZERO,
            kind,
            nodes: sel,
            duration,
            when_holding: false,
            delay,
            jitter: None,
            endpoints: Vec::new(),
            command: None,
            line: 0,
        })
    }

    /// The menu as label, value, selected rows (for the view).
    pub fn rows(&self) -> Vec<(&'static str, String, bool)> {
        self.fields()
            .iter()
            .map(|f| match f {
                Field::Kind => ("kind", format!("◀ {} ▶", self.kind()), *f == self.field),
                Field::Nodes => ("nodes", self.nodes.clone(), *f == self.field),
                Field::Duration => ("duration", self.duration.clone(), *f == self.field),
                Field::Delay => ("delay", self.delay.clone(), *f == self.field),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyModifiers;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn typed(m: &mut FaultMenu, s: &str) {
        for c in s.chars() {
            m.on_key(key(KeyCode::Char(c)), 8);
        }
    }

    #[test]
    fn builds_a_latency_fault_from_keys() {
        let mut m = FaultMenu::default();
        m.on_key(key(KeyCode::Right), 8);
        assert_eq!(m.kind(), FaultKind::Latency);
        m.on_key(key(KeyCode::Tab), 8);
        m.on_key(key(KeyCode::Backspace), 8);
        typed(&mut m, "0..4");
        m.on_key(key(KeyCode::Tab), 8);
        m.on_key(key(KeyCode::Tab), 8);
        assert_eq!(m.field, Field::Delay);
        match m.on_key(key(KeyCode::Enter), 8) {
            MenuOutcome::Start(s) => {
                assert_eq!(s.kind, FaultKind::Latency);
                assert_eq!(s.nodes, NodeSel::Range(0, 4));
                assert_eq!(s.duration, Some(Duration::from_secs(5)));
                assert_eq!(s.delay, Some(Duration::from_millis(50)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refuses_bad_input_and_says_why() {
        let mut m = FaultMenu::default();
        m.on_key(key(KeyCode::Tab), 8);
        m.on_key(key(KeyCode::Backspace), 8);
        typed(&mut m, "9");
        assert_eq!(m.on_key(key(KeyCode::Enter), 8), MenuOutcome::Open);
        assert!(
            m.error
                .as_deref()
                .unwrap()
                .contains("node 9 does not exist")
        );
        m.on_key(key(KeyCode::Backspace), 8);
        typed(&mut m, "all");
        m.on_key(key(KeyCode::Tab), 8);
        typed(&mut m, "x");
        assert_eq!(m.on_key(key(KeyCode::Enter), 8), MenuOutcome::Open);
        assert!(m.error.as_deref().unwrap().contains("not a duration"));
        assert_eq!(m.on_key(key(KeyCode::Esc), 8), MenuOutcome::Cancelled);
    }

    #[test]
    fn reset_needs_no_duration() {
        let mut m = FaultMenu {
            kind: 3,
            duration: "nonsense".into(),
            ..FaultMenu::default()
        };
        assert_eq!(m.fields(), &[Field::Kind, Field::Nodes]);
        assert!(matches!(
            m.on_key(key(KeyCode::Enter), 8),
            MenuOutcome::Start(FaultSpec {
                kind: FaultKind::Reset,
                duration: None,
                ..
            })
        ));
    }
}
