//! Drawing: each screen lays out its precomputed view model. Nothing here
//! computes a figure; see `model.rs` and `lanes.rs`.

mod events;
mod nodes;
mod overview;
mod timeline;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, LineGauge, Paragraph, Wrap};

use super::app::View;
use super::model::{BodyVm, FaultMenuVm, HEADER_H, HeaderVm, ViewModel};
use super::theme::Theme;

/// Every key, for the help overlay (and the README).
pub const KEYS: &[(&str, &str)] = &[
    ("1 2 3 4", "overview, timeline, nodes, events"),
    ("Tab / Shift-Tab", "next / previous view"),
    (
        "q, Ctrl-C",
        "stop the run (report still written); again to leave",
    ),
    ("space", "pause / resume the load"),
    ("f", "fault menu: start a fault now"),
    ("+ / -", "add / remove a node"),
    ("↑ ↓ PgUp PgDn Home", "scroll lanes, nodes, events"),
    ("s", "nodes: sort by the next column"),
    ("[ / ]", "timeline: zoom in / out (window ÷2 / ×2)"),
    ("?", "this help (Esc or ? closes it)"),
];

/// Draw one frame.
pub fn draw(f: &mut Frame, vm: &ViewModel, t: &Theme) {
    draw_in(f, f.area(), vm, t);
}

/// Draw the dashboard into `area` (the rest of the frame is someone else's).
pub fn draw_in(f: &mut Frame, area: Rect, vm: &ViewModel, t: &Theme) {
    let [head, body] =
        Layout::vertical([Constraint::Length(HEADER_H), Constraint::Min(0)]).areas(area);
    header(f, head, &vm.header, t);
    match &vm.body {
        BodyVm::Overview(o) => overview::draw(f, body, o, t),
        BodyVm::Timeline(tl) => timeline::draw(f, body, tl, t),
        BodyVm::Nodes(n) => nodes::draw(f, body, n, t),
        BodyVm::Events(e) => events::draw(f, body, e, t),
    }
    if vm.help {
        help(f, body, t);
    }
    if let Some(m) = &vm.fault_menu {
        fault_menu(f, body, m, t);
    }
}

fn fault_menu(f: &mut Frame, body: Rect, m: &FaultMenuVm, t: &Theme) {
    let w = 60.min(body.width);
    let h = (m.rows.len() as u16 + 5).min(body.height);
    let area = Rect {
        x: body.x + (body.width - w) / 2,
        y: body.y + (body.height - h) / 2,
        width: w,
        height: h,
    };
    let mut lines: Vec<Line> = m
        .rows
        .iter()
        .map(|(label, value, selected)| {
            Line::from(vec![
                Span::styled(format!("{label:>10}  "), t.bold),
                Span::styled(
                    format!(" {value} "),
                    if *selected { t.selected } else { t.text },
                ),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::from(Span::styled(m.hint.as_str(), t.dim)));
    if let Some(e) = &m.error {
        lines.push(Line::from(Span::styled(e.as_str(), t.bad)));
    }
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" Start a fault now ")),
        area,
    );
}

fn header(f: &mut Frame, area: Rect, h: &HeaderVm, t: &Theme) {
    let [tabs, info, status] = Layout::vertical([Constraint::Length(1); 3]).areas(area);
    let mut spans = vec![Span::styled(" lockstorm ", t.bold)];
    for (i, v) in View::ALL.iter().enumerate() {
        let label = format!(" {} {} ", i + 1, v.title());
        spans.push(if i == h.tab {
            Span::styled(label, t.selected)
        } else {
            Span::styled(label, t.text)
        });
    }
    spans.push(Span::styled("  ? help", t.dim));
    f.render_widget(Paragraph::new(Line::from(spans)), tabs);

    let mut spans = vec![
        Span::styled(format!(" {} ", h.scenario), t.bold),
        Span::styled(format!(" {} ", h.backend), t.text),
    ];
    for (b, bad) in &h.badges {
        spans.push(Span::styled(
            format!("[{b}]"),
            if *bad { t.bad } else { t.badge },
        ));
        spans.push(Span::raw(" "));
    }
    let line = Line::from(spans);
    // The name and badges take what they need; the gauge gets the rest (at
    // least 24 columns, cutting the badges on a narrow terminal).
    let left_w = (line.width() as u16 + 1).min(info.width.saturating_sub(24));
    let [left, gauge] =
        Layout::horizontal([Constraint::Length(left_w), Constraint::Min(0)]).areas(info);
    f.render_widget(Paragraph::new(line), left);
    let label = Line::from(vec![
        Span::styled(
            h.state.0.as_str(),
            if h.state.1 {
                t.warn.patch(t.bold)
            } else {
                t.bold
            },
        ),
        Span::styled(format!(" {} ", h.gauge), t.text),
    ]);
    f.render_widget(
        LineGauge::default()
            .ratio(h.ratio)
            .label(label)
            .filled_style(t.good)
            .unfilled_style(t.dim),
        gauge,
    );

    // Most important first, so a narrow terminal cuts the least useful.
    let spans = vec![
        Span::styled(
            format!(" violations {}  ", h.violations),
            if h.violations > 0 { t.bad } else { t.good },
        ),
        Span::styled(
            format!("{}  ", h.errors),
            if h.error { t.bad } else { t.text },
        ),
        Span::styled(h.status.as_str(), t.text),
    ];
    f.render_widget(Paragraph::new(Line::from(spans)), status);
}

fn help(f: &mut Frame, body: Rect, t: &Theme) {
    let w = 64.min(body.width);
    // Room for a wrapped line or two on a narrow terminal.
    let h = (KEYS.len() as u16 + 4).min(body.height);
    let area = Rect {
        x: body.x + (body.width - w) / 2,
        y: body.y + (body.height - h) / 2,
        width: w,
        height: h,
    };
    let lines: Vec<Line> = KEYS
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!("{k:>18}  "), t.bold),
                Span::styled(*what, t.text),
            ])
        })
        .collect();
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" Keys ")),
        area,
    );
}
