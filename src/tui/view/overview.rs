//! Screen 1: throughput and latency over time, percentiles, fairness, safety.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph, Row, Sparkline, Table};

use crate::tui::model::{ChartVm, FairnessVm, OverviewVm, SafetyVm};
use crate::tui::theme::Theme;

pub fn draw(f: &mut Frame, area: Rect, vm: &OverviewVm, t: &Theme) {
    if vm.compact {
        let [top, bottom] =
            Layout::vertical([Constraint::Min(6), Constraint::Length(11)]).areas(area);
        chart(f, top, &vm.throughput, t);
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(bottom);
        percentiles(f, left, &vm.percentiles, t);
        safety(f, right, &vm.safety, t);
        return;
    }
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(area);
    let [thr, lat] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(left);
    chart(f, thr, &vm.throughput, t);
    chart(f, lat, &vm.latency, t);
    let [pct, fair, safe] = Layout::vertical([
        Constraint::Length(9),
        Constraint::Min(9),
        Constraint::Length(13),
    ])
    .areas(right);
    percentiles(f, pct, &vm.percentiles, t);
    fairness(f, fair, &vm.fairness, t);
    safety(f, safe, &vm.safety, t);
}

fn chart(f: &mut Frame, area: Rect, c: &ChartVm, t: &Theme) {
    let datasets = c
        .series
        .iter()
        .enumerate()
        .map(|(i, (name, pts))| {
            Dataset::default()
                .name(*name)
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(t.series[i % 3])
                .data(pts)
        })
        .collect();
    let chart = Chart::new(datasets)
        .block(Block::bordered().title(c.title.as_str()))
        .x_axis(
            Axis::default()
                .bounds(c.x)
                .labels(c.x_labels.iter().map(|s| Span::styled(s.as_str(), t.dim))),
        )
        .y_axis(
            Axis::default()
                .bounds(c.y)
                .labels(c.y_labels.iter().map(|s| Span::styled(s.as_str(), t.dim))),
        );
    f.render_widget(chart, area);
}

fn percentiles(f: &mut Frame, area: Rect, rows: &[[String; 4]], t: &Theme) {
    let rows = rows.iter().map(|r| Row::new(r.iter().map(|c| c.as_str())));
    let table = Table::new(
        rows,
        [
            Constraint::Length(6),
            Constraint::Min(8),
            Constraint::Min(8),
            Constraint::Min(8),
        ],
    )
    .header(Row::new(["", "acquire", "release", "handoff"]).style(t.bold))
    .block(Block::bordered().title("Latency (measured)"));
    f.render_widget(table, area);
}

fn fairness(f: &mut Frame, area: Rect, vm: &FairnessVm, t: &Theme) {
    let block = Block::bordered().title("Fairness");
    let inner = block.inner(area);
    f.render_widget(block, area);
    let n = vm.lines.len() as u16;
    let [bars, label, lines] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(n),
    ])
    .areas(inner);
    f.render_widget(Sparkline::default().data(&vm.bars).style(t.hold), bars);
    f.render_widget(Paragraph::new(vm.bars_label.as_str()).style(t.dim), label);
    f.render_widget(Paragraph::new(pairs(&vm.lines, t)), lines);
}

fn pairs<'a>(lines: &'a [(&'static str, String)], t: &Theme) -> Vec<Line<'a>> {
    lines
        .iter()
        .map(|(k, v)| {
            Line::from(vec![
                Span::styled(format!("{k:<22}"), t.dim),
                Span::styled(v.as_str(), t.bold),
            ])
        })
        .collect()
}

fn safety(f: &mut Frame, area: Rect, vm: &SafetyVm, t: &Theme) {
    let style = if vm.bad { t.bad } else { t.good };
    let mut lines: Vec<Line> = vm
        .big
        .iter()
        .map(|r| Line::from(Span::styled(format!(" {r}"), style)))
        .collect();
    lines.push(Line::from(Span::styled(" violations", style)));
    lines.extend(pairs(&vm.lines, t));
    lines.extend(
        vm.examples
            .iter()
            .map(|e| Line::from(Span::styled(e.as_str(), t.bad))),
    );
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title("Safety")),
        area,
    );
}
