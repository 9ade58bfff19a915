//! Charts drawn on the server as SVG.
//!
//! Every mark carries its label and value as `data-label`/`data-value` (and a `<title>` for a
//! tooltip and screen readers), so what a chart shows can be checked against the store, and the
//! same numbers are in the table under each chart for anyone who cannot see it.

use std::fmt::Write;

use super::{ChartKind, Lang, Table, esc, number};

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 64.0;
/// Series colours with enough contrast on white (WCAG AA for graphics, 3:1).
pub const COLOURS: [&str; 5] = ["#1f5fa8", "#b3361b", "#2f7d32", "#7a4fa0", "#8a6d00"];

/// A server's colour and word by its latest liveness verdict.
fn liveness_style(alive: Option<bool>, lang: Lang) -> (&'static str, &'static str) {
    let colour = match alive {
        Some(true) => COLOURS[1],
        Some(false) => "#555",
        None => "#8a6d00",
    };
    (colour, super::liveness_word(alive, lang))
}

/// The largest value rounded up to a tick that reads well (1, 2 or 5 times a power of ten).
fn nice_max(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    for step in [1.0, 2.0, 5.0, 10.0] {
        if step * power >= max {
            return step * power;
        }
    }
    10.0 * power
}

fn axis(out: &mut String, max: f64) {
    // Five steps: a 1, 2 or 5 times ten maximum then has whole-number ticks.
    for i in 0..=5 {
        let value = max * f64::from(i) / 5.0;
        let y = TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - f64::from(i) / 5.0);
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#d0d4da\" stroke-width=\"1\"/>\
<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"11\" fill=\"#333\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            number((value * 100.0).round() / 100.0)
        );
    }
}

fn x_label(out: &mut String, x: f64, label: &str, rotate: bool) {
    let y = HEIGHT - BOTTOM + 14.0;
    let short: String = label.chars().take(16).collect();
    if rotate {
        let _ = write!(
            out,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"11\" fill=\"#333\" text-anchor=\"end\" transform=\"rotate(-35 {x:.1} {y:.1})\">{}</text>",
            esc(&short)
        );
    } else {
        let _ = write!(
            out,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"11\" fill=\"#333\" text-anchor=\"middle\">{}</text>",
            esc(&short)
        );
    }
}

/// A chart of `table`: the first column labels, the numeric columns are values.
pub fn chart(kind: ChartKind, table: &Table, lang: Lang) -> String {
    let mut out = format!(
        "<svg class=\"chart-svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-labelledby=\"svg-{id}\" data-chart=\"{id}\">\
<title id=\"svg-{id}\">{}</title>",
        esc(&table.caption),
        id = table.id
    );
    if table.rows.is_empty() {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"14\" fill=\"#333\">{}</text></svg>",
            WIDTH / 2.0,
            HEIGHT / 2.0,
            lang.pick("No data in this range", "この条件ではデータがありません")
        );
        return out;
    }
    let series = table.columns.len().saturating_sub(1).max(1);
    let max = table.rows.iter().flat_map(|r| r.iter().skip(1).map(|c| c.value())).fold(0.0, f64::max);
    let max = nice_max(max);
    axis(&mut out, max);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let n = table.rows.len() as f64;
    let step = plot_w / n;
    let rotate = table.rows.len() > 8 || table.rows.iter().any(|r| r[0].plain().chars().count() > 8);
    let every = (table.rows.len() / 16).max(1);
    let y_of = |v: f64| TOP + plot_h * (1.0 - v / max);
    match kind {
        ChartKind::Bars => {
            let bar_w = (step * 0.7 / series as f64).max(1.0);
            for (i, row) in table.rows.iter().enumerate() {
                let label = row[0].plain();
                for s in 0..series {
                    let value = row.get(s + 1).map(|c| c.value()).unwrap_or(0.0);
                    let x = LEFT + step * i as f64 + step * 0.15 + bar_w * s as f64;
                    let y = y_of(value);
                    let series_name = table.columns.get(s + 1).map(String::as_str).unwrap_or("");
                    let _ = write!(
                        out,
                        "<rect class=\"bar\" data-series=\"{}\" data-label=\"{}\" data-value=\"{}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar_w:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {}</title></rect>",
                        esc(series_name),
                        esc(&label),
                        number(value),
                        (TOP + plot_h - y).max(0.0),
                        COLOURS[s % COLOURS.len()],
                        esc(&label),
                        number(value)
                    );
                }
                if i % every == 0 {
                    x_label(&mut out, LEFT + step * (i as f64 + 0.5), &label, rotate);
                }
            }
        }
        ChartKind::Lines => {
            for s in 0..series {
                let series_name = table.columns.get(s + 1).map(String::as_str).unwrap_or("");
                let colour = COLOURS[s % COLOURS.len()];
                let points: Vec<(f64, f64, String, f64)> = table
                    .rows
                    .iter()
                    .enumerate()
                    .map(|(i, row)| {
                        let value = row.get(s + 1).map(|c| c.value()).unwrap_or(0.0);
                        (LEFT + step * (i as f64 + 0.5), y_of(value), row[0].plain(), value)
                    })
                    .collect();
                let path: Vec<String> = points.iter().map(|(x, y, _, _)| format!("{x:.1},{y:.1}")).collect();
                let _ = write!(
                    out,
                    "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
                    path.join(" ")
                );
                for (x, y, label, value) in &points {
                    let _ = write!(
                        out,
                        "<circle class=\"point\" data-series=\"{}\" data-label=\"{}\" data-value=\"{}\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.5\" fill=\"{colour}\"><title>{}, {}: {}</title></circle>",
                        esc(series_name),
                        esc(label),
                        number(*value),
                        esc(series_name),
                        esc(label),
                        number(*value)
                    );
                }
            }
            for (i, row) in table.rows.iter().enumerate() {
                if i % every == 0 {
                    x_label(&mut out, LEFT + step * (i as f64 + 0.5), &row[0].plain(), rotate);
                }
            }
        }
    }
    if series > 1 {
        for s in 0..series {
            let x = LEFT + 150.0 * s as f64;
            let _ = write!(
                out,
                "<rect x=\"{x}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#333\">{}</text>",
                HEIGHT - 14.0,
                COLOURS[s % COLOURS.len()],
                x + 14.0,
                HEIGHT - 5.0,
                esc(table.columns.get(s + 1).map(String::as_str).unwrap_or(""))
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// A bot and C&C graph: servers in the middle, bots on a ring, an edge from each bot to the
/// servers it was seen with.
pub struct Graph<'a> {
    /// Servers, as `ip:port`, alive or not (None: never probed).
    pub servers: Vec<(String, Option<bool>)>,
    /// Bots, each with the indices of its servers.
    pub bots: Vec<(String, Vec<usize>)>,
    /// How many bots were left out to keep the drawing readable.
    pub hidden: usize,
    /// Title.
    pub title: &'a str,
}

/// Draws a [`Graph`].
pub fn graph(graph: &Graph, lang: Lang) -> String {
    let (w, h) = (720.0, 420.0);
    let (cx, cy) = (w / 2.0, h / 2.0);
    let mut out = format!(
        "<svg class=\"graph-svg\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-labelledby=\"graph-title\" data-chart=\"graph\"><title id=\"graph-title\">{}</title>",
        esc(graph.title)
    );
    let server_pos: Vec<(f64, f64)> = (0..graph.servers.len())
        .map(|i| {
            let angle = std::f64::consts::TAU * i as f64 / graph.servers.len().max(1) as f64;
            let r = if graph.servers.len() > 1 { 60.0 } else { 0.0 };
            (cx + r * angle.cos(), cy + r * angle.sin())
        })
        .collect();
    let bot_pos: Vec<(f64, f64)> = (0..graph.bots.len())
        .map(|i| {
            let angle = std::f64::consts::TAU * i as f64 / graph.bots.len().max(1) as f64;
            (cx + 180.0 * angle.cos(), cy + 170.0 * angle.sin())
        })
        .collect();
    for ((_, links), (bx, by)) in graph.bots.iter().zip(&bot_pos) {
        for &s in links {
            if let Some((sx, sy)) = server_pos.get(s) {
                let _ = write!(
                    out,
                    "<line x1=\"{bx:.1}\" y1=\"{by:.1}\" x2=\"{sx:.1}\" y2=\"{sy:.1}\" stroke=\"#9aa4b1\" stroke-width=\"0.8\"/>"
                );
            }
        }
    }
    for ((name, _), (x, y)) in graph.bots.iter().zip(&bot_pos) {
        let _ = write!(
            out,
            "<circle class=\"node bot\" data-label=\"{}\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"{}\"><title>{} {}</title></circle>",
            esc(name),
            COLOURS[0],
            lang.pick("bot", "ボット"),
            esc(name)
        );
    }
    for ((name, alive), (x, y)) in graph.servers.iter().zip(&server_pos) {
        let (fill, state) = liveness_style(*alive, lang);
        let _ = write!(
            out,
            "<rect class=\"node cnc\" data-label=\"{}\" x=\"{:.1}\" y=\"{:.1}\" width=\"16\" height=\"16\" fill=\"{fill}\"><title>C&amp;C {} ({state})</title></rect>\
<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#111\" text-anchor=\"middle\">{}</text>",
            esc(name),
            x - 8.0,
            y - 8.0,
            esc(name),
            x,
            y + 22.0,
            esc(name)
        );
    }
    if graph.hidden > 0 {
        let _ = write!(
            out,
            "<text x=\"8\" y=\"{}\" font-size=\"11\" fill=\"#333\">{} {}</text>",
            h - 8.0,
            graph.hidden,
            lang.pick("more bots not drawn", "台のボットは省略")
        );
    }
    out.push_str("</svg>");
    out
}

/// One bar of a timeline.
pub struct Span {
    /// What it is.
    pub label: String,
    /// Start and end, seconds since the epoch.
    pub from: i64,
    /// End.
    pub to: i64,
    /// Alive (true), dead (false) or never probed.
    pub alive: Option<bool>,
}

/// A timeline of spans (C&C servers over a botnet's life) with markers for events.
pub fn timeline(spans: &[Span], events: &[(i64, String)], lang: Lang, title: &str) -> String {
    let row_h = 26.0;
    let h = TOP + row_h * spans.len().max(1) as f64 + 40.0;
    let mut out = format!(
        "<svg class=\"timeline-svg\" viewBox=\"0 0 {WIDTH} {h}\" role=\"img\" aria-labelledby=\"tl-title\" data-chart=\"timeline\"><title id=\"tl-title\">{}</title>",
        esc(title)
    );
    let start = spans.iter().map(|s| s.from).chain(events.iter().map(|e| e.0)).min().unwrap_or(0);
    let end = spans.iter().map(|s| s.to).chain(events.iter().map(|e| e.0)).max().unwrap_or(1).max(start + 1);
    let left = 170.0;
    let x_of = |t: i64| left + (WIDTH - left - RIGHT) * (t - start) as f64 / (end - start) as f64;
    for (i, span) in spans.iter().enumerate() {
        let y = TOP + row_h * i as f64;
        let (fill, state) = liveness_style(span.alive, lang);
        let (x1, x2) = (x_of(span.from), x_of(span.to));
        let _ = write!(
            out,
            "<text x=\"4\" y=\"{:.1}\" font-size=\"12\" fill=\"#111\">{}</text>\
<rect class=\"span\" data-label=\"{}\" data-alive=\"{}\" x=\"{x1:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"14\" fill=\"{fill}\"><title>{} ({state})</title></rect>",
            y + 12.0,
            esc(&span.label),
            esc(&span.label),
            span.alive.map(|a| a.to_string()).unwrap_or_default(),
            y + 1.0,
            (x2 - x1).max(2.0),
            esc(&span.label)
        );
    }
    let base = TOP + row_h * spans.len().max(1) as f64;
    for (at, name) in events {
        let x = x_of(*at);
        let _ = write!(
            out,
            "<line class=\"event\" data-label=\"{}\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{TOP}\" y2=\"{base:.1}\" stroke=\"#7a4fa0\" stroke-dasharray=\"3 2\"><title>{}</title></line>",
            esc(name),
            esc(name)
        );
    }
    let fmt = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0).map(|d| d.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default()
    };
    let _ = write!(
        out,
        "<text x=\"{left}\" y=\"{:.1}\" font-size=\"11\" fill=\"#333\">{}</text><text x=\"{}\" y=\"{:.1}\" font-size=\"11\" fill=\"#333\" text-anchor=\"end\">{}</text></svg>",
        base + 18.0,
        fmt(start),
        WIDTH - RIGHT,
        base + 18.0,
        fmt(end)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::Cell;

    #[test]
    fn every_row_is_a_mark_carrying_its_value() {
        let mut table = Table::new("t", "T", &["day", "a", "b"]);
        table.row(vec!["d1".into(), Cell::Num(3.0), Cell::Num(0.0)]);
        table.row(vec!["d2<".into(), Cell::Num(12.5), Cell::Num(7.0)]);
        let bars = chart(ChartKind::Bars, &table, Lang::En);
        assert_eq!(bars.matches("class=\"bar\"").count(), 4);
        assert!(bars.contains("data-label=\"d2&lt;\" data-value=\"12.50\""));
        let lines = chart(ChartKind::Lines, &table, Lang::En);
        assert_eq!(lines.matches("class=\"point\"").count(), 4);
    }

    #[test]
    fn ticks_round_up_to_readable_values() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(13.0), 20.0);
        assert_eq!(nice_max(420.0), 500.0);
    }

    #[test]
    fn an_empty_table_says_so_instead_of_drawing() {
        let table = Table::new("t", "T", &["x", "y"]);
        assert!(chart(ChartKind::Bars, &table, Lang::Ja).contains("データがありません"));
    }
}
