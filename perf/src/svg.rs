//! A line plot with error bars, written as SVG text: no plotting dependency.

use std::fmt::Write;

use crate::measure::Spread;

/// One line of a plot: its name and its points, each an x value and the spread of y there.
pub struct Series {
    /// The legend's text.
    pub name: String,
    /// (x, spread of y), in increasing x.
    pub points: Vec<(f64, Spread)>,
}

const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
];

/// Escapes the characters XML gives a meaning to.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A plot of `series` against x (linear, ticks at every x that occurs) and y (logarithmic, so
/// that lines a hundred times apart both show): a line through the medians, a bar from min to
/// max at every point.
pub fn plot(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let (w, h) = (820.0, 500.0);
    let (left, right, top, bottom) = (80.0, 250.0, 50.0, 60.0);
    let (pw, ph) = (w - left - right, h - top - bottom);

    let mut xs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().flat_map(|p| [p.1.min, p.1.max]))
        .filter(|y| *y > 0.0 && y.is_finite())
        .collect();
    let (x0, x1) = match (xs.first(), xs.last()) {
        (Some(&a), Some(&b)) if b > a => (a, b),
        (Some(&a), _) => (a - 1.0, a + 1.0),
        _ => (0.0, 1.0),
    };
    let ymin = ys.iter().copied().fold(f64::INFINITY, f64::min);
    let ymax = ys.iter().copied().fold(0.0, f64::max);
    let (d0, d1) = if ys.is_empty() {
        (0, 1)
    } else {
        (
            ymin.log10().floor() as i32,
            (ymax.log10().ceil() as i32).max(ymin.log10().floor() as i32 + 1),
        )
    };
    let px = |x: f64| left + (x - x0) / (x1 - x0) * pw;
    let py = |y: f64| top + ph - (y.log10() - f64::from(d0)) / f64::from(d1 - d0) * ph;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#,
        left + pw / 2.0,
        esc(title)
    );
    // Grid and y ticks: every 1, 2 and 5 of each decade.
    for d in d0..d1 {
        for m in [1.0, 2.0, 5.0] {
            let y = m * 10f64.powi(d);
            let yy = py(y);
            let major = m == 1.0;
            let _ = writeln!(
                s,
                r##"<line x1="{left}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="{}" stroke-width="1"/>"##,
                left + pw,
                if major { "#bbbbbb" } else { "#e6e6e6" }
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                left - 6.0,
                yy + 4.0,
                tick(y)
            );
        }
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
        left - 6.0,
        py(10f64.powi(d1)) + 4.0,
        tick(10f64.powi(d1))
    );
    for &x in &xs {
        let xx = px(x);
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" y1="{top}" x2="{xx:.1}" y2="{:.1}" stroke="#eeeeee"/>"##,
            top + ph
        );
        let _ = writeln!(
            s,
            r#"<text x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            top + ph + 18.0,
            tick(x)
        );
    }
    let _ = writeln!(
        s,
        r#"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        left + pw / 2.0,
        h - 18.0,
        esc(x_label)
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(20 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        top + ph / 2.0,
        esc(y_label)
    );
    for (i, ser) in series.iter().enumerate() {
        let c = COLOURS[i % COLOURS.len()];
        let pts: Vec<String> = ser
            .points
            .iter()
            .filter(|p| p.1.median > 0.0)
            .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.1.median)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"/>"#,
            pts.join(" ")
        );
        for (x, sp) in &ser.points {
            if sp.min <= 0.0 || sp.median <= 0.0 {
                continue;
            }
            let xx = px(*x);
            let _ = writeln!(
                s,
                r#"<line x1="{xx:.1}" y1="{:.1}" x2="{xx:.1}" y2="{:.1}" stroke="{c}" stroke-width="1.5"/>"#,
                py(sp.min),
                py(sp.max)
            );
            let _ = writeln!(
                s,
                r#"<circle cx="{xx:.1}" cy="{:.1}" r="3" fill="{c}"/>"#,
                py(sp.median)
            );
        }
        let ly = top + 10.0 + 22.0 * i as f64;
        let lx = left + pw + 16.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{c}" stroke-width="2"/>"#,
            lx + 24.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 30.0,
            ly + 4.0,
            esc(&ser.name)
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" font-size="11" fill="#555">line: median; bar: min to max</text>"##,
        left + pw + 16.0,
        top + 10.0 + 22.0 * series.len() as f64 + 8.0
    );
    s.push_str("</svg>\n");
    s
}

/// A tick label: no trailing zeros, thousands as k.
fn tick(v: f64) -> String {
    if v >= 1000.0 && v % 1000.0 == 0.0 {
        format!("{}k", v / 1000.0)
    } else if v >= 1.0 {
        format!("{v}")
    } else {
        format!("{v:.3}").trim_end_matches('0').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plot_has_a_line_and_bars_per_series() {
        let sp = |m: f64| Spread {
            min: m * 0.9,
            q1: m,
            median: m,
            q3: m,
            max: m * 1.1,
        };
        let svg = plot(
            "t",
            "x",
            "y",
            &[
                Series {
                    name: "a<b".into(),
                    points: vec![(1.0, sp(5.0)), (2.0, sp(50.0))],
                },
                Series {
                    name: "c".into(),
                    points: vec![(1.0, sp(2.0))],
                },
            ],
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("a&lt;b") && svg.ends_with("</svg>\n"));
    }
}
