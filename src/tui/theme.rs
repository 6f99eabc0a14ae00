//! Colours of the dashboard, or none at all when `NO_COLOR` is set: every
//! state is then still told apart by its glyph, weight or reverse video.

use ratatui::style::{Color, Modifier, Style};

/// The styles every view draws with.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    /// Plain text.
    pub text: Style,
    /// Labels and axis text.
    pub dim: Style,
    /// Titles and emphasized figures.
    pub bold: Style,
    /// Something wrong: violations, errors, the UNSAFE badge.
    pub bad: Style,
    /// Something fine (zero violations, a passed threshold).
    pub good: Style,
    /// A warning (timeouts, paused).
    pub warn: Style,
    /// Property badges (fenced, fair, lease).
    pub badge: Style,
    /// The selected tab / sort column.
    pub selected: Style,
    /// Timeline: waiting for a lock.
    pub wait: Style,
    /// Timeline: holding a lock.
    pub hold: Style,
    /// Timeline: fault window in the background.
    pub fault: Style,
    /// Series colours for charts (three lines).
    pub series: [Style; 3],
}

impl Theme {
    /// Colours, unless `no_color`.
    pub fn new(no_color: bool) -> Self {
        if no_color {
            return Self::plain();
        }
        let fg = |c| Style::new().fg(c);
        Theme {
            text: Style::new(),
            dim: fg(Color::DarkGray),
            bold: Style::new().add_modifier(Modifier::BOLD),
            bad: fg(Color::Red).add_modifier(Modifier::BOLD),
            good: fg(Color::Green),
            warn: fg(Color::Yellow),
            badge: fg(Color::Black).bg(Color::Cyan),
            selected: fg(Color::Black).bg(Color::White),
            wait: fg(Color::Yellow),
            hold: fg(Color::Green),
            fault: fg(Color::Magenta),
            series: [fg(Color::Green), fg(Color::Yellow), fg(Color::Red)],
        }
    }

    /// No colour at all (`NO_COLOR`): only bold and reverse video.
    pub fn plain() -> Self {
        let bold = Style::new().add_modifier(Modifier::BOLD);
        let rev = Style::new().add_modifier(Modifier::REVERSED);
        Theme {
            text: Style::new(),
            dim: Style::new(),
            bold,
            bad: bold,
            good: Style::new(),
            warn: Style::new(),
            badge: rev,
            selected: rev,
            wait: Style::new(),
            hold: Style::new(),
            fault: Style::new(),
            series: [Style::new(); 3],
        }
    }

    /// The theme for this process: plain when `NO_COLOR` is set and not empty.
    pub fn from_env() -> Self {
        Self::new(std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()))
    }
}
