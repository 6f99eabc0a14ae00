//! Screen 4: the events log.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::tui::events::EventKind;
use crate::tui::model::EventsVm;
use crate::tui::theme::Theme;

pub fn draw(f: &mut Frame, area: Rect, vm: &EventsVm, t: &Theme) {
    let lines: Vec<Line> = vm
        .rows
        .iter()
        .map(|(time, kind, text)| {
            let style = match kind {
                EventKind::Info => t.text,
                EventKind::Fault => t.fault,
                EventKind::Violation | EventKind::Threshold => t.bad,
                EventKind::Error => t.warn,
            };
            Line::from(vec![
                Span::styled(format!("{time} "), t.dim),
                Span::styled(format!("{:<10}", kind.tag()), style),
                Span::styled(text.as_str(), style),
            ])
        })
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(vm.title.as_str())),
        area,
    );
}
