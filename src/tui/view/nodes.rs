//! Screen 3: the per-node table.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Block, Cell, Row, Table};

use crate::tui::model::NodesVm;
use crate::tui::theme::Theme;

pub fn draw(f: &mut Frame, area: Rect, vm: &NodesVm, t: &Theme) {
    let header = Row::new(vm.columns.iter().enumerate().map(|(i, c)| {
        let c = if i == vm.sorted {
            format!("{c}▼")
        } else {
            (*c).to_string()
        };
        Cell::from(c).style(if i == vm.sorted { t.selected } else { t.bold })
    }));
    let rows = vm.rows.iter().map(|(cells, bad)| {
        Row::new(cells.iter().map(|c| Cell::from(c.as_str()))).style(if *bad {
            t.warn
        } else {
            t.text
        })
    });
    let widths = [
        Constraint::Length(6),
        Constraint::Length(10),
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(13),
        Constraint::Min(8),
    ];
    f.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(Block::bordered().title(vm.title.as_str())),
        area,
    );
}
