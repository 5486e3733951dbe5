//! Inline SVG line charts for the self-contained HTML reports (lab's and
//! loadgen's): axes, round y ticks, round x ticks, vertical marks, dashed or
//! solid lines, optional points with error bars. No script, no stylesheet
//! beyond the classes it names (`title`, `tick`, `legend`, `mark`), so a
//! report opens anywhere.
//!
//! The reports drew the same chart twice with small differences (tick steps,
//! number formats, `0s 0s 1s` labels fixed in one only); this module is the
//! one copy. A chart is described as data ([`LineChart`]) and rendered by
//! [`LineChart::render`]; the caller picks the scales, so two charts side by
//! side can share one (see [`nice_max`]).

use std::fmt::Write as _;

use crate::html::escape as esc;

/// How the x axis labels its ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XAxis {
    /// Elapsed seconds, as `45s`, `2m`, `1m30s`, `1h5m`, at round steps.
    Seconds,
    /// Plain numbers (e.g. replicas), at round steps (1, 2, 5 × 10ⁿ).
    Number,
}

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend.
    pub name: String,
    /// CSS colour.
    pub color: String,
    /// `(x, y)` points, joined in order.
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed (a secondary figure) and before the solid lines.
    pub dashed: bool,
    /// Draw each point as a dot (measured points) instead of only the line.
    pub dots: bool,
    /// Per point `(low, high)`: a vertical error bar (same length as `points`, or empty).
    pub ranges: Vec<(f64, f64)>,
}

impl Series {
    /// A solid line.
    pub fn line(name: &str, color: &str, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.to_string(),
            color: color.to_string(),
            points,
            dashed: false,
            dots: false,
            ranges: Vec::new(),
        }
    }

    /// The same line, dashed.
    pub fn dashed(mut self) -> Series {
        self.dashed = true;
        self
    }

    /// Measured points: dots, and an error bar `(low, high)` per point.
    pub fn with_ranges(mut self, ranges: Vec<(f64, f64)>) -> Series {
        self.dots = true;
        self.ranges = ranges;
        self
    }
}

/// A vertical mark on the x axis (e.g. where a step's window begins).
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// Where, in x units.
    pub x: f64,
    /// Short label at its top (e.g. the step number).
    pub label: String,
    /// Tooltip.
    pub tip: String,
    /// Drawn in red (e.g. a step that broke the objective).
    pub alert: bool,
}

/// A line chart, as data.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// Title, top left (empty: none).
    pub title: String,
    /// Unit of the y axis, top left under the title.
    pub y_label: String,
    /// A note under the x axis, right-aligned (empty: none).
    pub x_note: String,
    /// How x ticks read.
    pub x_axis: XAxis,
    /// Left end of the x axis.
    pub xmin: f64,
    /// Right end of the x axis.
    pub xmax: f64,
    /// Top of the y axis (round it with [`nice_max`] first).
    pub ymax: f64,
    /// Lines.
    pub series: Vec<Series>,
    /// Vertical marks.
    pub marks: Vec<Mark>,
    /// viewBox width and height.
    pub size: (f64, f64),
    /// Name each line inside the chart, along its top (off where the page
    /// writes its own legend beside the chart).
    pub legend: bool,
}

impl LineChart {
    /// A chart of `series` from x = 0 to `xmax`, y from 0 to `ymax`, 460 × 238.
    pub fn new(title: &str, y_label: &str, xmax: f64, ymax: f64, series: Vec<Series>) -> Self {
        LineChart {
            title: title.to_string(),
            y_label: y_label.to_string(),
            x_note: String::new(),
            x_axis: XAxis::Seconds,
            xmin: 0.0,
            xmax,
            ymax,
            series,
            marks: Vec::new(),
            size: (460.0, 238.0),
            legend: true,
        }
    }

    /// The `<svg>` element: the frame, then each layer in drawing order.
    pub fn render(&self) -> String {
        let f = Frame::of(self);
        let mut o = String::new();
        let _ = write!(
            o,
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" class="chart" role="img" aria-label="{0}"><text x="{l}" y="16" class="title">{0}</text>"#,
            esc(&self.title),
            w = f.w,
            h = f.h,
            l = f.l,
        );
        self.y_grid(&mut o, &f);
        self.x_ticks(&mut o, &f);
        self.marks(&mut o, &f);
        let _ = write!(
            o,
            r#"<text x="{}" y="{}" class="tick" text-anchor="end">{}</text><text x="4" y="16" class="tick">{}</text>"#,
            f.w - f.r,
            f.h - 6.0,
            esc(&self.x_note),
            esc(&self.y_label)
        );
        // Dashed lines first, so a solid line they coincide with stays visible.
        let order = self
            .series
            .iter()
            .enumerate()
            .filter(|(_, s)| s.dashed)
            .chain(self.series.iter().enumerate().filter(|(_, s)| !s.dashed));
        for (k, s) in order {
            self.line(&mut o, &f, k, s);
        }
        o.push_str("</svg>");
        o
    }

    /// Five horizontal grid lines with their y values, 0 to `ymax`.
    fn y_grid(&self, o: &mut String, f: &Frame) {
        for i in 0..=4 {
            let y = f.ymax * f64::from(i) / 4.0;
            let _ = write!(
                o,
                r##"<line x1="{l}" x2="{0}" y1="{1:.1}" y2="{1:.1}" stroke="#ddd"/><text x="{2}" y="{3:.1}" class="tick" text-anchor="end">{4}</text>"##,
                f.w - f.r,
                f.py(y),
                f.l - 4.0,
                f.py(y) + 3.0,
                fmt_num(y),
                l = f.l,
            );
        }
    }

    /// The x ticks at a round step, labelled as [`XAxis`] says.
    fn x_ticks(&self, o: &mut String, f: &Frame) {
        let every = match self.x_axis {
            XAxis::Seconds => time_tick(f.span),
            XAxis::Number => number_tick(f.span),
        };
        let mut x = (self.xmin / every).ceil() * every;
        while x <= self.xmax + 1e-9 {
            let text = match self.x_axis {
                XAxis::Seconds => fmt_secs(x),
                XAxis::Number => fmt_num(x),
            };
            let _ = write!(
                o,
                r##"<line x1="{0:.1}" x2="{0:.1}" y1="{1:.1}" y2="{2:.1}" stroke="#888"/><text x="{0:.1}" y="{3:.1}" class="tick xtick" text-anchor="middle">{4}</text>"##,
                f.px(x),
                f.h - f.b,
                f.h - f.b + 4.0,
                f.h - f.b + 14.0,
                text
            );
            x += every;
        }
    }

    /// The vertical marks, dashed, labelled at their top.
    fn marks(&self, o: &mut String, f: &Frame) {
        for m in &self.marks {
            let color = if m.alert { "#c44" } else { "#999" };
            let _ = write!(
                o,
                r##"<g class="mark"><title>{tip}</title><line x1="{0:.1}" x2="{0:.1}" y1="{1:.1}" y2="{2:.1}" stroke="{color}" stroke-dasharray="3 3"/><text x="{3:.1}" y="{4:.1}" class="tick" fill="{color}">{label}</text></g>"##,
                f.px(m.x),
                f.t - 8.0,
                f.h - f.b,
                f.px(m.x) + 2.0,
                f.t - 2.0,
                tip = esc(&m.tip),
                label = esc(&m.label),
            );
        }
    }

    /// One series: its polyline, its legend entry (the `k`th slot, unless
    /// [`LineChart::legend`] is off), its error bars and dots.
    fn line(&self, o: &mut String, f: &Frame, k: usize, s: &Series) {
        if s.points.is_empty() {
            return;
        }
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", f.px(*x), f.py(*y)))
            .collect();
        let dash = if s.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let (c, n) = (esc(&s.color), esc(&s.name));
        let _ = write!(
            o,
            r#"<polyline fill="none" stroke="{c}" stroke-width="1.6"{dash} points="{}"><title>{n}</title></polyline>"#,
            pts.join(" "),
        );
        if self.legend {
            let _ = write!(
                o,
                r#"<text x="{}" y="{}" class="legend" fill="{c}">{n}</text>"#,
                f.l + 8.0 + 90.0 * k as f64,
                f.t + 12.0,
            );
        }
        for (i, &(x, y)) in s.points.iter().enumerate() {
            if let Some(&(lo, hi)) = s.ranges.get(i) {
                let _ = write!(
                    o,
                    r#"<line class="range" x1="{0:.1}" x2="{0:.1}" y1="{1:.1}" y2="{2:.1}" stroke="{c}"/>"#,
                    f.px(x),
                    f.py(lo),
                    f.py(hi),
                );
            }
            if s.dots {
                let _ = write!(
                    o,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{c}"><title>{}: {}</title></circle>"#,
                    f.px(x),
                    f.py(y),
                    fmt_num(x),
                    fmt_num(y)
                );
            }
        }
    }
}

/// The plot area inside the viewBox (margins left, right, top, bottom) and
/// the scales that map data onto it.
struct Frame {
    w: f64,
    h: f64,
    l: f64,
    r: f64,
    t: f64,
    b: f64,
    xmin: f64,
    span: f64,
    ymax: f64,
}

impl Frame {
    fn of(c: &LineChart) -> Frame {
        let (w, h) = c.size;
        Frame {
            w,
            h,
            l: 52.0,
            r: 10.0,
            t: 34.0,
            b: 40.0,
            xmin: c.xmin,
            span: (c.xmax - c.xmin).max(1e-9),
            ymax: if c.ymax > 0.0 { c.ymax } else { 1.0 },
        }
    }

    fn px(&self, x: f64) -> f64 {
        self.l + (x - self.xmin) / self.span * (self.w - self.l - self.r)
    }

    /// Values above the axis are drawn at its top, not outside the chart.
    fn py(&self, y: f64) -> f64 {
        self.h - self.b - y.clamp(0.0, self.ymax) / self.ymax * (self.h - self.t - self.b)
    }
}

/// A round top for a y axis: 1, 2, 2.5 or 5 × 10ⁿ at or above `v` (1 for 0).
pub fn nice_max(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|&c| c >= v - 1e-9)
        .unwrap_or(10.0 * mag)
}

/// Seconds between two x ticks: a round step giving at most six ticks (five
/// steps from 0), so no two labels read the same and `1m30s` labels keep
/// apart on a narrow chart.
pub fn time_tick(span: f64) -> f64 {
    const STEPS: [f64; 16] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
        14400.0, 43200.0,
    ];
    STEPS
        .into_iter()
        .find(|s| span / s <= 5.0)
        .unwrap_or(86400.0 * (span / 86400.0 / 5.0).ceil().max(1.0))
}

/// A round step (1, 2, 5 × 10ⁿ, at least 1) giving at most eight ticks.
pub fn number_tick(span: f64) -> f64 {
    let mut mag = 1.0;
    loop {
        for m in [1.0, 2.0, 5.0] {
            if span / (m * mag) <= 7.0 {
                return m * mag;
            }
        }
        mag *= 10.0;
    }
}

/// `45s`, `2m`, `1m30s`, `1h5m`: an elapsed time on the x axis.
pub fn fmt_secs(x: f64) -> String {
    let t = x.round().max(0.0) as u64;
    let (h, m, s) = (t / 3600, t / 60 % 60, t % 60);
    match (h, m, s) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

/// A tick value: no decimals from 100 up or for whole numbers, one from 10, else two.
pub fn fmt_num(v: f64) -> String {
    if v >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_scales_and_ticks() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(73.0), 100.0);
        assert_eq!(nice_max(120.0), 200.0);
        assert_eq!(nice_max(5.0), 5.0);
        assert_eq!(time_tick(10.0), 2.0);
        assert_eq!(time_tick(12.0), 5.0);
        assert_eq!(time_tick(200.0), 60.0);
        assert_eq!(number_tick(7.0), 1.0);
        assert_eq!(number_tick(30.0), 5.0);
        assert_eq!(fmt_secs(90.0), "1m30s");
        assert_eq!(fmt_num(2.5), "2.50");
    }

    /// The x labels of a rendered chart, in order.
    fn x_labels(svg: &str) -> Vec<&str> {
        svg.split(r#"class="tick xtick" text-anchor="middle">"#)
            .skip(1)
            .map(|t| t.split('<').next().unwrap_or_default())
            .collect()
    }

    #[test]
    fn x_labels_are_at_most_six_distinct_and_round() {
        for xmax in [
            1.0, 2.5, 3.0, 4.0, 7.0, 12.0, 59.0, 61.0, 299.0, 3601.0, 90000.0,
        ] {
            let svg = LineChart::new("", "", xmax, 1.0, vec![]).render();
            let labels = x_labels(&svg);
            assert!((2..=6).contains(&labels.len()), "{xmax}: {labels:?}");
            let mut unique = labels.clone();
            unique.dedup();
            assert_eq!(unique, labels, "{xmax}");
        }
        let svg = LineChart::new("", "", 3.0, 1.0, vec![]).render();
        assert_eq!(x_labels(&svg), ["0s", "1s", "2s", "3s"]);
        assert_eq!(fmt_secs(3900.0), "1h5m");
    }

    #[test]
    fn the_legend_inside_can_be_left_to_the_page() {
        let lines = vec![Series::line("p50", "#00f", vec![(0.0, 1.0), (1.0, 2.0)])];
        let mut c = LineChart::new("", "ms", 1.0, 2.0, lines);
        assert!(c.render().contains(r#"class="legend""#));
        c.legend = false;
        let svg = c.render();
        assert!(!svg.contains(r#"class="legend""#), "{svg}");
        assert!(
            svg.contains("<title>p50</title>"),
            "the line keeps its tooltip"
        );
    }

    #[test]
    fn renders_ticks_marks_dashes_and_ranges() {
        let mut c = LineChart::new(
            "t <1>",
            "ms",
            10.0,
            5.0,
            vec![
                Series::line("a", "#000", vec![(1.0, 2.0), (2.0, 3.0)]),
                Series::line("b", "#888", vec![(1.0, 1.0)]).dashed(),
            ],
        );
        c.marks.push(Mark {
            x: 6.0,
            label: "2".into(),
            tip: "step 2".into(),
            alert: true,
        });
        let svg = c.render();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("t &lt;1&gt;"));
        for t in ["0s", "2s", "10s"] {
            assert!(svg.contains(&format!(">{t}</text>")), "{t}: {svg}");
        }
        assert_eq!(svg.matches("class=\"mark\"").count(), 1);
        // The dashed line is drawn before the solid one.
        assert!(svg.find("stroke-dasharray=\"6 4\"").unwrap() < svg.find(">a</title>").unwrap());
        let mut c = LineChart::new(
            "usl",
            "req/s",
            8.0,
            10.0,
            vec![Series::line("m", "#00f", vec![(1.0, 2.0), (4.0, 6.0)])
                .with_ranges(vec![(1.5, 2.5), (5.0, 7.0)])],
        );
        c.x_axis = XAxis::Number;
        c.xmin = 1.0;
        let svg = c.render();
        assert_eq!(svg.matches("class=\"range\"").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains(">8</text>") && !svg.contains(">8s</text>"));
    }
}
