//! Charts drawn as SVG on the server: no script, no asset to fetch, and the numbers are
//! in the page. Each chart is an `<svg role="img">` named by its `aria-label`; each data
//! point is a `<circle>` (or a bar) whose `<title>` is its hover text; and a data table
//! below repeats every point for readers who cannot see the drawing.

use maud::{Markup, html};

/// The drawing's coordinate space; CSS scales it to the page's width.
const WIDTH: f64 = 480.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 14.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 44.0;
/// Horizontal bars: height of one bar's row, and the room its label takes.
const BAR_ROW: f64 = 20.0;
const BAR_LABEL: f64 = 170.0;
const TICKS: usize = 5;

/// One plotted point: where it is, and its row in the data table (one cell per column).
#[derive(Debug, Clone)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub cells: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<Point>,
}

/// A chart of lines through points, on axes from 0 to `x_max` and from `y_min` to
/// `y_max`.
#[derive(Debug, Default)]
pub struct LineChart<'a> {
    /// Names the chart: its caption and its `aria-label`.
    pub label: &'a str,
    pub x_axis: &'a str,
    pub y_axis: &'a str,
    pub x_max: f64,
    pub y_max: f64,
    /// 0 unless a curve goes below it (a campaign that loses money).
    pub y_min: f64,
    /// Draws the line y = x (chance for ROC, perfect calibration, a random ranking).
    pub diagonal: bool,
    /// Draws a horizontal line at this height (a lift of 1).
    pub baseline: Option<f64>,
    /// Vertical lines, each at an x of the series of the same index, named by its hover
    /// text (the fraction a campaign contacts).
    pub marks: Vec<(f64, String)>,
    /// The data table's columns after the series name.
    pub columns: &'a [&'a str],
    pub series: Vec<Series>,
}

/// Horizontal bars, one per item, longest first as given.
#[derive(Debug)]
pub struct BarChart<'a> {
    pub label: &'a str,
    pub value_axis: &'a str,
    /// Vertical lines at these values, each with its name (PSI cut points).
    pub marks: &'a [(f64, &'a str)],
    pub columns: &'a [&'a str],
    /// Name, length, table cells.
    pub bars: Vec<(String, f64, Vec<String>)>,
}

/// A number for a table or a tooltip.
pub fn number(value: f64) -> String {
    if value.is_infinite() {
        "∞".to_owned()
    } else {
        format!("{value:.4}")
    }
}

/// A multiple of 1, 2 or 5 times a power of ten at or above `value`, for an axis's end.
pub fn nice_ceiling(value: f64) -> f64 {
    if value.is_nan() || value <= 0.0 || value.is_infinite() {
        return 1.0;
    }
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|&c| c >= value)
        .unwrap_or(10.0 * power)
}

/// The shortest decimal of a tick, rounded past the float noise of `max * k / TICKS`.
fn tick_label(value: f64) -> String {
    ((value * 1e6).round() / 1e6).to_string()
}

pub fn line_chart(chart: &LineChart) -> Markup {
    let (plot_width, plot_height) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let sx = |x: f64| LEFT + (x / chart.x_max).clamp(0.0, 1.0) * plot_width;
    let y_span = chart.y_max - chart.y_min;
    let sy =
        |y: f64| TOP + plot_height - ((y - chart.y_min) / y_span).clamp(0.0, 1.0) * plot_height;
    let ticks =
        |min: f64, max: f64| (0..=TICKS).map(move |k| min + (max - min) * k as f64 / TICKS as f64);
    html! {
        figure.chart {
            figcaption { (chart.label) }
            svg role="img" aria-label=(chart.label) viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) xmlns="http://www.w3.org/2000/svg" {
                title { (chart.label) }
                g.grid {
                    @for x in ticks(0.0, chart.x_max) {
                        line x1=(sx(x)) x2=(sx(x)) y1=(TOP) y2=(TOP + plot_height) {}
                        text.tick x=(sx(x)) y=(TOP + plot_height + 16.0) text-anchor="middle" { (tick_label(x)) }
                    }
                    @for y in ticks(chart.y_min, chart.y_max) {
                        line x1=(LEFT) x2=(LEFT + plot_width) y1=(sy(y)) y2=(sy(y)) {}
                        text.tick x=(LEFT - 6.0) y=(sy(y) + 4.0) text-anchor="end" { (tick_label(y)) }
                    }
                }
                text.axis x=(LEFT + plot_width / 2.0) y=(HEIGHT - 6.0) text-anchor="middle" { (chart.x_axis) }
                text.axis x="14" y=(TOP + plot_height / 2.0) text-anchor="middle" transform=(format!("rotate(-90 14 {})", TOP + plot_height / 2.0)) { (chart.y_axis) }
                @if chart.diagonal {
                    line.reference x1=(sx(0.0)) y1=(sy(0.0)) x2=(sx(chart.x_max.min(chart.y_max))) y2=(sy(chart.x_max.min(chart.y_max))) {}
                }
                @if let Some(y) = chart.baseline {
                    line.reference x1=(LEFT) x2=(LEFT + plot_width) y1=(sy(y)) y2=(sy(y)) {}
                }
                @for (k, (x, name)) in chart.marks.iter().enumerate() {
                    line class=(format!("mark s{k}")) x1=(sx(*x)) x2=(sx(*x)) y1=(TOP) y2=(TOP + plot_height) {
                        title { (name) }
                    }
                }
                @for (k, series) in chart.series.iter().enumerate() {
                    g class=(format!("series s{k}")) data-series=(series.name) data-points=(series.points.len()) {
                        polyline points=(polyline(series, &sx, &sy)) {}
                        @for point in &series.points {
                            circle cx=(format!("{:.1}", sx(point.x))) cy=(format!("{:.1}", sy(point.y))) r="3" {
                                title { (hover(&series.name, chart.columns, &point.cells)) }
                            }
                        }
                    }
                }
            }
            (legend(chart.series.iter().map(|s| s.name.as_str())))
            (data_table(chart.label, chart.columns, chart.series.iter().flat_map(|s| s.points.iter().map(move |p| (s.name.as_str(), &p.cells)))))
        }
    }
}

pub fn bar_chart(chart: &BarChart) -> Markup {
    let longest = chart.bars.iter().map(|b| b.1).fold(0.0, f64::max);
    let max = nice_ceiling(chart.marks.iter().map(|m| m.0).fold(longest, f64::max));
    let height = TOP + BAR_ROW * chart.bars.len() as f64 + BOTTOM;
    let plot_width = WIDTH - BAR_LABEL - RIGHT;
    let sx = |v: f64| BAR_LABEL + (v / max).clamp(0.0, 1.0) * plot_width;
    let plot_bottom = TOP + BAR_ROW * chart.bars.len() as f64;
    html! {
        figure.chart {
            figcaption { (chart.label) }
            svg role="img" aria-label=(chart.label) viewBox=(format!("0 0 {WIDTH} {height}")) xmlns="http://www.w3.org/2000/svg" {
                title { (chart.label) }
                g.grid {
                    @for k in 0..=TICKS {
                        @let value = max * k as f64 / TICKS as f64;
                        line x1=(sx(value)) x2=(sx(value)) y1=(TOP) y2=(plot_bottom) {}
                        text.tick x=(sx(value)) y=(plot_bottom + 16.0) text-anchor="middle" { (tick_label(value)) }
                    }
                }
                text.axis x=(BAR_LABEL + plot_width / 2.0) y=(height - 6.0) text-anchor="middle" { (chart.value_axis) }
                @for (value, name) in chart.marks {
                    line.mark x1=(sx(*value)) x2=(sx(*value)) y1=(TOP) y2=(plot_bottom) {
                        title { (name) " " (tick_label(*value)) }
                    }
                }
                g class="series s0" data-series=(chart.label) data-points=(chart.bars.len()) {
                    @for (k, (name, value, cells)) in chart.bars.iter().enumerate() {
                        @let y = TOP + BAR_ROW * k as f64;
                        text.bar-label x=(BAR_LABEL - 6.0) y=(y + BAR_ROW * 0.7) text-anchor="end" { (name) }
                        rect x=(BAR_LABEL) y=(y + 3.0) width=(format!("{:.1}", sx(*value) - BAR_LABEL)) height=(BAR_ROW - 6.0) {
                            title { (hover(name, chart.columns, cells)) }
                        }
                    }
                }
            }
            (data_table(chart.label, chart.columns, chart.bars.iter().map(|(name, _, cells)| (name.as_str(), cells))))
        }
    }
}

fn polyline(series: &Series, sx: &impl Fn(f64) -> f64, sy: &impl Fn(f64) -> f64) -> String {
    series
        .points
        .iter()
        .map(|p| format!("{:.1},{:.1}", sx(p.x), sy(p.y)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn hover(name: &str, columns: &[&str], cells: &[String]) -> String {
    std::iter::once(name.to_owned())
        .chain(
            columns
                .iter()
                .zip(cells)
                .map(|(column, cell)| format!("{column} {cell}")),
        )
        .collect::<Vec<_>>()
        .join(" · ")
}

fn legend<'a>(names: impl Iterator<Item = &'a str>) -> Markup {
    html! {
        ul.legend {
            @for (k, name) in names.enumerate() {
                li class=(format!("s{k}")) { span.swatch {} (name) }
            }
        }
    }
}

fn data_table<'a>(
    label: &str,
    columns: &[&str],
    rows: impl Iterator<Item = (&'a str, &'a Vec<String>)>,
) -> Markup {
    html! {
        details.data {
            summary { "Data table: " (label) }
            div.scroll {
                table {
                    thead { tr { th { "series" } @for column in columns { th { (column) } } } }
                    tbody {
                        @for (name, cells) in rows {
                            tr { td { (name) } @for cell in cells { td.num { (cell) } } }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_ends_are_round_numbers_at_or_above_the_data() {
        assert_eq!(nice_ceiling(0.83), 1.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(0.031), 0.05);
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(f64::NAN), 1.0);
        assert_eq!(tick_label(0.25 * 3.0 / 5.0), "0.15");
        assert_eq!(tick_label(10.0), "10");
    }

    #[test]
    fn names_in_a_chart_are_escaped() {
        let chart = BarChart {
            label: "Feature importance",
            value_axis: "importance",
            marks: &[],
            columns: &["importance"],
            bars: vec![("<script>".to_owned(), 1.0, vec!["1".to_owned()])],
        };
        let svg = bar_chart(&chart).into_string();
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"));
    }
}
