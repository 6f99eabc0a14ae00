//! Screen 2: swimlanes, one row per node.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::tui::lanes::{CellKind, LABEL_W, TimelineVm};
use crate::tui::theme::Theme;

pub fn draw(f: &mut Frame, area: Rect, vm: &TimelineVm, t: &Theme) {
    let block = Block::bordered().title(vm.title.as_str());
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [lanes, axis, legend] = Layout::vertical([
        Constraint::Min(0),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    if let Some(m) = &vm.message {
        f.render_widget(Paragraph::new(m.as_str()).style(t.dim), lanes);
    }
    let lines: Vec<Line> = vm
        .lanes
        .iter()
        .map(|l| {
            let mut spans = vec![Span::styled(
                format!("{:<w$}", l.label, w = LABEL_W as usize),
                t.dim,
            )];
            spans.extend(l.runs.iter().map(|(text, kind)| {
                let style = match kind {
                    CellKind::Empty => t.text,
                    CellKind::Fault => t.fault,
                    CellKind::Wait => t.wait,
                    CellKind::Hold => t.hold,
                    CellKind::Overlap => t.bad,
                };
                Span::styled(text.as_str(), style)
            }));
            Line::from(spans)
        })
        .collect();
    f.render_widget(Paragraph::new(lines), lanes);
    f.render_widget(
        Paragraph::new(format!("{:w$}{}", "", vm.axis, w = LABEL_W as usize)).style(t.dim),
        axis,
    );
    f.render_widget(Paragraph::new(vm.legend.as_str()).style(t.dim), legend);
}
