//! SVG charts drawn with plotters. Every chart carries a `<title>` and a `<desc>`
//! and scales to the width of a phone; the numbers behind it are always on the
//! page as a table, so the chart is never the only way to read them.

use chrono::NaiveDate;
use plotters::prelude::*;
use plotters::style::RGBColor;

pub use decompte_templates::{setting_color as color, PALETTE};

fn rgb(hex: &str) -> RGBColor {
    let channel = |i: usize| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0);
    RGBColor(channel(1), channel(3), channel(5))
}

/// The size of a chart and of its text. Every chart is drawn twice: wide
/// for screens, narrow for phones (the page shows one of the two), so its
/// text is never scaled down below 12 CSS pixels on a 360-pixel phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub width: u32,
    pub height: u32,
    /// As plotters counts it: its SVG text is 1/1.24 of this, so 15 gives
    /// 12.1-pixel text at scale 1.
    pub font: u32,
    pub x_labels: usize,
    pub y_labels: usize,
}

/// For screens 40 rem wide and more.
pub const WIDE: Layout = Layout {
    width: 800,
    height: 320,
    font: 16,
    x_labels: 6,
    y_labels: 6,
};

/// The width of the narrowest screen the RGAA asks for (320 pixels), less
/// the page's margins: drawn at scale 1 there, larger on wider phones.
pub const NARROW: Layout = Layout {
    width: 288,
    height: 230,
    font: 15,
    x_labels: 3,
    y_labels: 4,
};

/// What a chart says about itself, for assistive technologies.
pub struct Caption<'a> {
    /// Unique within the page: used for the ids of `<title>` and `<desc>`.
    pub id: &'a str,
    pub title: &'a str,
    pub description: &'a str,
}

fn day_label(first: NaiveDate, x: f64) -> String {
    let offset = x.round() as i64;
    (first + chrono::Duration::days(offset))
        .format("%d/%m/%y")
        .to_string()
}

/// A chart that plotters could not draw.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ChartError(String);

impl ChartError {
    fn new(error: impl std::fmt::Display) -> Self {
        Self(error.to_string())
    }
}

/// Daily bars stacked by series (one vector of per-day values per series).
pub fn stacked_bars(
    first_day: NaiveDate,
    series: &[Vec<u64>],
    colors: &[&str],
    caption: &Caption<'_>,
    layout: Layout,
) -> Result<String, ChartError> {
    let days = series.first().map_or(0, Vec::len);
    let totals: Vec<u64> = (0..days)
        .map(|d| series.iter().map(|s| s[d]).sum())
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1) as f64;
    draw(caption, layout, days, max, first_day, |chart| {
        Ok(bar_paths(chart, series, colors))
    })
}

/// The bars of `series` stacked day by day, as one `<path>` per series
/// (20 bytes a bar) where plotters would draw one `<rect>` a bar (80 bytes):
/// a year of daily bars stacked by setting is 1,825 rectangles, and a
/// commune's page must stay light on a phone. The corners are the pixels
/// plotters gives a `Rectangle` of the same coordinates.
fn bar_paths(chart: &Chart<'_, '_>, series: &[Vec<u64>], colors: &[&str]) -> String {
    use std::fmt::Write;
    let days = series.first().map_or(0, Vec::len);
    let mut bottoms = vec![0u64; days];
    let mut out = String::new();
    for (values, hex) in series.iter().zip(colors) {
        let mut d = String::new();
        for (day, &n) in values.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let (x0, x1) = (day as f64 + 0.1, day as f64 + 0.9);
            let y0 = bottoms[day] as f64;
            let a = chart.backend_coord(&(x0, y0));
            let b = chart.backend_coord(&(x1, y0 + n as f64));
            let (left, top) = (a.0.min(b.0), a.1.min(b.1));
            let (width, height) = (a.0.max(b.0) - left, a.1.max(b.1) - top);
            // Writing to a String cannot fail.
            let _ = write!(d, "M{left} {top}h{width}v{height}h-{width}z");
            bottoms[day] += n;
        }
        if !d.is_empty() {
            path(&mut out, &svg_color(hex), &d);
        }
    }
    out
}

/// A run of bars of one colour. A white edge around each bar: stacked
/// settings touch, and their colours differ from each other by less than
/// 3:1; each stands out from white by 3:1 at least (RGAA 3.3).
fn path(out: &mut String, fill: &str, d: &str) {
    out.push_str("<path fill=\"");
    out.push_str(fill);
    out.push_str("\" stroke=\"#fff\" stroke-width=\"0.6\" d=\"");
    out.push_str(d);
    out.push_str("\"/>\n");
}

/// A colour as plotters writes it in SVG (`#RRGGBB`, upper case).
fn svg_color(hex: &str) -> String {
    let RGBColor(r, g, b) = rgb(hex);
    format!("#{r:02X}{g:02X}{b:02X}")
}

/// A line, for cumulative totals.
pub fn line(
    first_day: NaiveDate,
    values: &[u64],
    hex: &str,
    caption: &Caption<'_>,
    layout: Layout,
) -> Result<String, ChartError> {
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    draw(caption, layout, values.len(), max, first_day, |chart| {
        let points = values
            .iter()
            .enumerate()
            .map(|(d, &n)| (d as f64 + 0.5, n as f64));
        chart
            .draw_series(LineSeries::new(points, rgb(hex).stroke_width(3)))
            .map(|_| String::new())
            .map_err(ChartError::new)
    })
}

type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

fn draw(
    caption: &Caption<'_>,
    layout: Layout,
    days: usize,
    max: f64,
    first_day: NaiveDate,
    // Draws on the chart, or returns SVG elements to add on top of it.
    plot: impl FnOnce(&mut Chart<'_, '_>) -> Result<String, ChartError>,
) -> Result<String, ChartError> {
    let mut svg = String::new();
    let above = {
        let root =
            SVGBackend::with_string(&mut svg, (layout.width, layout.height)).into_drawing_area();
        root.fill(&WHITE).map_err(ChartError::new)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(layout.font)
            .x_label_area_size(layout.font * 2 + 2)
            .y_label_area_size(layout.font * 3 + 5)
            .build_cartesian_2d(0f64..days.max(1) as f64, 0f64..(max * 1.08).ceil())
            .map_err(ChartError::new)?;
        let x_label = |x: &f64| day_label(first_day, *x);
        // Counts are whole numbers: fractional ticks get no label.
        let y_label = |y: &f64| {
            if y.fract().abs() < 1e-9 {
                format!("{y:.0}")
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(layout.x_labels)
            .y_labels(((max as usize) + 1).min(layout.y_labels))
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .label_style(
                ("sans-serif", layout.font)
                    .into_font()
                    .color(&RGBColor(60, 60, 60)),
            )
            .light_line_style(TRANSPARENT)
            .draw()
            .map_err(ChartError::new)?;
        let above = plot(&mut chart)?;
        root.present().map_err(ChartError::new)?;
        above
    };
    if !above.is_empty() {
        let end = svg.rfind("</svg>").unwrap_or(svg.len());
        svg.insert_str(end, &above);
    }
    Ok(accessible(&compact_rects(&svg), caption, layout))
}

/// Turns plotters' one `<rect>` a line into one `<path>` per run of
/// rectangles of the same colour, as [`bar_paths`] draws bars: the
/// background, and the bars of a chart drawn with plotters' `Rectangle`.
/// Lines of any other shape are kept.
fn compact_rects(svg: &str) -> String {
    let mut out = String::with_capacity(svg.len() / 2);
    let mut run: Option<(String, String)> = None;
    let close = |out: &mut String, run: &mut Option<(String, String)>| {
        if let Some((fill, d)) = run.take() {
            path(out, &fill, &d);
        }
    };
    for line in svg.lines() {
        match bar(line) {
            Some((x, y, w, h, fill)) => {
                if run.as_ref().is_some_and(|(f, _)| f != fill) {
                    close(&mut out, &mut run);
                }
                let (_, d) = run.get_or_insert_with(|| (fill.to_owned(), String::new()));
                d.push_str(&format!("M{x} {y}h{w}v{h}h-{w}z"));
            }
            None => {
                close(&mut out, &mut run);
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    close(&mut out, &mut run);
    out
}

/// `<rect x="80" y="190" width="195" height="89" opacity="1" fill="#0072B2"
/// stroke="none"/>`, as plotters writes a filled bar.
fn bar(line: &str) -> Option<(&str, &str, &str, &str, &str)> {
    let rest = line.trim().strip_prefix("<rect x=\"")?;
    let (x, rest) = rest.split_once("\" y=\"")?;
    let (y, rest) = rest.split_once("\" width=\"")?;
    let (w, rest) = rest.split_once("\" height=\"")?;
    let (h, rest) = rest.split_once("\" opacity=\"1\" fill=\"")?;
    let fill = rest.strip_suffix("\" stroke=\"none\"/>")?;
    let numeric = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
    (numeric(x) && numeric(y) && numeric(w) && numeric(h) && fill.starts_with('#'))
        .then_some((x, y, w, h, fill))
}

/// Adds `role="img"`, a `<title>` and a `<desc>` to plotters' SVG, and lets it scale.
fn accessible(svg: &str, caption: &Caption<'_>, layout: Layout) -> String {
    let escape = decompte_templates::escape_html;
    let id = caption.id;
    let Some(open_end) = svg.find('>') else {
        return svg.to_owned();
    };
    let (open, rest) = svg.split_at(open_end);
    let open = open
        .replacen(&format!("width=\"{}\"", layout.width), "width=\"100%\"", 1)
        .replacen(&format!("height=\"{}\"", layout.height), "", 1);
    format!(
        "{open} role=\"img\" aria-labelledby=\"{id}-title {id}-desc\" \
            preserveAspectRatio=\"xMidYMid meet\">\n<title id=\"{id}-title\">{}</title>\n<desc \
            id=\"{id}-desc\">{}</desc>{}",
        escape(caption.title),
        escape(caption.description),
        &rest[1..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bars written as paths are the rectangles plotters itself
    /// draws for the same coordinates, compacted the same way.
    #[test]
    fn bars_are_where_plotters_draws_them() {
        let first = NaiveDate::from_ymd_opt(2020, 4, 1).expect("date");
        let series = vec![
            vec![3, 0, 7, 1, 0, 12, 0, 1],
            vec![0, 2, 5, 0, 0, 1, 0, 0],
            vec![1, 1, 1, 1, 0, 1, 0, 40],
        ];
        let caption = Caption {
            id: "c",
            title: "t",
            description: "d",
        };
        for layout in [WIDE, NARROW] {
            let ours = stacked_bars(first, &series, &PALETTE, &caption, layout).expect("chart");
            let days = series[0].len();
            let max = (0..days)
                .map(|d| series.iter().map(|s| s[d]).sum::<u64>())
                .max()
                .expect("days") as f64;
            let theirs = draw(&caption, layout, days, max, first, |chart| {
                let mut bottoms = vec![0u64; days];
                for (values, hex) in series.iter().zip(PALETTE) {
                    let style = rgb(hex).filled();
                    let mut bars = Vec::new();
                    for (d, &n) in values.iter().enumerate().filter(|(_, &n)| n > 0) {
                        let (x0, x1) = (d as f64 + 0.1, d as f64 + 0.9);
                        let y0 = bottoms[d] as f64;
                        bars.push(Rectangle::new([(x0, y0), (x1, y0 + n as f64)], style));
                        bottoms[d] += n;
                    }
                    chart.draw_series(bars).map_err(ChartError::new)?;
                }
                Ok(String::new())
            })
            .expect("plotters' rectangles");
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn charts_are_accessible_svg() {
        let first = NaiveDate::from_ymd_opt(2020, 4, 1).expect("date");
        let caption = Caption {
            id: "c1",
            title: "Décès par jour",
            description: "3 jours <test>",
        };
        let svg = stacked_bars(
            first,
            &[vec![1, 0, 2], vec![0, 1, 1]],
            &PALETTE,
            &caption,
            WIDE,
        )
        .expect("chart");
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.contains("role=\"img\""));
        assert!(svg.contains("<title id=\"c1-title\">Décès par jour</title>"));
        assert!(svg.contains("&lt;test&gt;"));
        // The background and the four bars, as one path per colour.
        assert_eq!(svg.matches("<rect").count(), 0);
        assert_eq!(svg.matches("<path fill=").count(), 3, "{svg}");
        let bars: usize = svg
            .lines()
            .filter(|l| l.starts_with("<path fill="))
            .map(|l| l.matches('M').count())
            .sum();
        assert_eq!(bars, 5, "{svg}");
        let svg = line(first, &[1, 2, 4], PALETTE[0], &caption, NARROW).expect("line");
        assert!(svg.contains("<polyline") || svg.contains("<path"));
        assert!(svg.contains("viewBox=\"0 0 288 230\""), "{svg}");
        for size in svg.split("font-size=\"").skip(1) {
            let size: f64 = size
                .split('"')
                .next()
                .and_then(|s| s.parse().ok())
                .expect("size");
            assert!(size >= 12.0, "text of {size} pixels on a phone");
        }
    }
}
