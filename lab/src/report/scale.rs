//! `lab scale`'s report: capacity at each replica count with its range over
//! the repeats, the fitted Universal Scalability Law, and where adding
//! replicas stops paying; as a terminal table, `scale.json` and
//! `scale.html` (measured points with their ranges, the fitted curve).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plumbing::html::escape as esc;
use plumbing::svg::{nice_max, LineChart, Series, XAxis};
use serde::{Deserialize, Serialize};

use crate::capacity::Slo;
use crate::spread::Spread;
use crate::stack::Stack;
use crate::step::StepRecord;
use crate::usl::Usl;
use crate::Error;

/// A replica's marginal gain below this share of one replica's throughput
/// is where adding replicas "stops paying".
pub const PAYING: f64 = 0.10;

/// One search at one count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScaleRun {
    /// Highest load that kept the objective.
    pub capacity: Option<u32>,
    /// Goodput at the knee fitted to every window ([`crate::knee`]), or at
    /// the capacity when the search never broke the objective; successful req/s.
    pub goodput: Option<f64>,
    /// The objective never broke: the capacity is a lower bound.
    pub lower_bound: bool,
    /// Ctrl-C or SIGTERM cut this search short.
    pub interrupted: bool,
    /// Every step.
    pub steps: Vec<StepRecord>,
}

/// Every search at one replica count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScalePoint {
    /// Replicas behind the balancer.
    pub replicas: u16,
    /// One per repeat.
    pub runs: Vec<ScaleRun>,
}

impl ScalePoint {
    /// No run yet.
    pub fn new(replicas: u16) -> ScalePoint {
        ScalePoint {
            replicas,
            runs: Vec::new(),
        }
    }

    /// Median and range of the goodput at the knees (at capacity for a
    /// search that never broke the objective).
    pub fn goodput(&self) -> Option<Spread> {
        Spread::of(
            &self
                .runs
                .iter()
                .filter_map(|r| r.goodput)
                .collect::<Vec<_>>(),
        )
    }

    /// Median and range of the load at capacity.
    pub fn load(&self) -> Option<Spread> {
        Spread::of(
            &self
                .runs
                .iter()
                .filter_map(|r| r.capacity.map(f64::from))
                .collect::<Vec<_>>(),
        )
    }
}

/// Everything `lab scale` measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScaleReport {
    /// When it started (RFC 3339, UTC).
    pub started: String,
    /// The command line.
    pub command: String,
    /// CPU budget per replica in force.
    pub budget_applied: String,
    /// The budget in a sentence.
    pub budget_note: String,
    /// The objective.
    pub slo: Slo,
    /// `users` or `it/s`.
    pub load_unit: String,
    /// One per replica count.
    pub points: Vec<ScalePoint>,
    /// The fit, when three or more runs gave a capacity.
    pub usl: Option<Usl>,
    /// Where the fitted curve peaks.
    pub peak: Option<f64>,
    /// First N whose next replica adds under 10% of one replica's throughput.
    pub stops_paying: Option<u32>,
    /// Ctrl-C or SIGTERM stopped it.
    pub interrupted: bool,
}

/// The USL fit of every run's goodput at its knee (all repeats, so the fit
/// sees the noise too).
fn fit(points: &[ScalePoint]) -> Option<Usl> {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .flat_map(|p| {
            p.runs
                .iter()
                .filter_map(move |r| r.goodput.map(|g| (f64::from(p.replicas), g)))
        })
        .collect();
    Usl::fit(&pts)
}

impl ScaleReport {
    /// The report of `points`, with the fit.
    pub(crate) fn new(
        stack: &Stack,
        started: String,
        points: Vec<ScalePoint>,
        interrupted: bool,
        unit: &str,
        slo: Slo,
    ) -> ScaleReport {
        let usl = fit(&points);
        ScaleReport {
            started,
            command: std::env::args().collect::<Vec<_>>().join(" "),
            budget_applied: stack.budget_applied.to_string(),
            budget_note: stack.budget_note.clone(),
            slo,
            load_unit: unit.into(),
            usl,
            peak: usl.and_then(|u| u.peak()),
            stops_paying: usl.and_then(|u| u.stops_paying(PAYING, 1024)),
            points,
            interrupted,
        }
    }

    /// Writes `scale.json` and (with `html`) `scale.html` into `dir`.
    pub fn write(&self, dir: &Path, html: bool) -> Result<Vec<PathBuf>, Error> {
        let mut out = Vec::new();
        let json = dir.join("scale.json");
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::Usage(format!("cannot serialise the report: {e}")))?;
        std::fs::write(&json, text).map_err(|e| Error::io(&json, e))?;
        out.push(json);
        if html {
            let p = dir.join("scale.html");
            std::fs::write(&p, self.html()).map_err(|e| Error::io(&p, e))?;
            out.push(p);
        }
        Ok(out)
    }

    /// The fit in words.
    pub fn usl_text(&self) -> String {
        let Some(u) = self.usl else {
            return "USL not fitted: it needs capacities at three runs or more, at two counts or more.".into();
        };
        let mut t = format!(
            "USL fit: one replica λ = {:.1} successful req/s, contention σ = {:.4}, coherency κ = {:.5}, fit error {:.1}% (RMS, relative)",
            u.lambda,
            u.sigma,
            u.kappa,
            u.rms_error * 100.0
        );
        match self.peak {
            Some(p) => {
                let _ = write!(t, "; the curve peaks at N ≈ {p:.1}");
            }
            None => t.push_str("; no coherency cost: the curve flattens without a peak"),
        }
        if let Some(n) = self.stops_paying {
            let _ = write!(
                t,
                "; adding replicas stops paying after N = {n} (the next one adds under {:.0}% of one replica's throughput)",
                PAYING * 100.0
            );
        }
        t
    }

    /// The terminal table and the fit.
    pub fn terminal(&self) -> String {
        let mut rows = vec![vec![
            "replicas".to_string(),
            "goodput at the knee (successful req/s)".into(),
            format!("capacity ({})", self.load_unit),
            "vs N × one replica".into(),
        ]];
        let one = self
            .points
            .iter()
            .find(|p| p.replicas == 1)
            .and_then(|p| p.goodput());
        for p in &self.points {
            let g = p.goodput();
            let lower = p.runs.iter().any(|r| r.lower_bound);
            rows.push(vec![
                p.replicas.to_string(),
                g.map_or("-".into(), |s| {
                    format!("{}{}", if lower { "≥ " } else { "" }, s.text(1, ""))
                }),
                p.load().map_or("-".into(), |s| s.text(0, "")),
                match (g, one) {
                    (Some(g), Some(o)) if o.median > 0.0 => format!(
                        "{:.0}%",
                        g.median / (o.median * f64::from(p.replicas)) * 100.0
                    ),
                    _ => "-".into(),
                },
            ]);
        }
        let mut o = String::from("\n");
        if self.interrupted {
            o.push_str("** INTERRUPTED (Ctrl-C or SIGTERM): the figures cover only the searches finished before it **\n");
        }
        let _ = writeln!(o, "== lab scale: capacity by replica count ==");
        let _ = writeln!(o, "CPU budget: {}", self.budget_note);
        let _ = writeln!(o, "objective: {}\n", self.slo.describe());
        o.push_str(&super::terminal::table(&rows));
        let _ = writeln!(o, "{}\n", self.usl_text());
        o
    }

    /// The self-contained HTML page.
    pub fn html(&self) -> String {
        let mut o = String::from(
            r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Market Lab: scaling curve</title><style>body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:900px} .chart{width:100%;height:auto} .title{font-size:12px;font-weight:600} .tick,.legend{font-size:10px} .warn{background:#fbeaea;padding:8px 12px}</style></head><body><h1>Market Lab: capacity by replica count</h1>"#,
        );
        if self.interrupted {
            o.push_str(
                "<p class=\"warn\"><b>Interrupted</b>: only the searches finished before it.</p>",
            );
        }
        let _ = write!(
            o,
            "<p>{}</p><p>Objective: {}. Capacity is goodput (successful requests/s) at the knee fitted to every window of a search (the load at which half of 20 s windows break the objective); each dot is the median of the repeats, the bar their range.</p><p><b>{}</b></p>",
            esc(&self.budget_note),
            esc(&self.slo.describe()),
            esc(&self.usl_text())
        );
        o.push_str(&self.chart());
        let _ = write!(o, "<pre>{}</pre></body></html>", esc(&self.terminal()));
        o
    }

    /// Measured medians with ranges, and the fitted curve (dashed).
    fn chart(&self) -> String {
        let measured: Vec<(u16, Spread)> = self
            .points
            .iter()
            .filter_map(|p| p.goodput().map(|g| (p.replicas, g)))
            .collect();
        let xmax = f64::from(self.points.iter().map(|p| p.replicas).max().unwrap_or(1))
            .max(self.peak.unwrap_or(0.0).min(64.0))
            .max(2.0);
        let mut series = vec![Series::line(
            "measured goodput",
            "#2a7",
            measured
                .iter()
                .map(|(n, s)| (f64::from(*n), s.median))
                .collect(),
        )
        .with_ranges(measured.iter().map(|(_, s)| (s.low, s.high)).collect())];
        if let Some(u) = self.usl {
            let steps = 60;
            let curve = (0..=steps)
                .map(|i| {
                    let n = 1.0 + (xmax - 1.0) * f64::from(i) / f64::from(steps);
                    (n, u.throughput(n))
                })
                .collect();
            series.push(Series::line("USL fit", "#4a7fd4", curve).dashed());
        }
        let top = series
            .iter()
            .flat_map(|s| {
                s.points
                    .iter()
                    .map(|p| p.1)
                    .chain(s.ranges.iter().map(|r| r.1))
            })
            .fold(0.0, f64::max);
        let mut c = LineChart::new(
            "goodput at the knee by replica count",
            "successful req/s",
            xmax,
            nice_max(top),
            series,
        );
        c.x_axis = XAxis::Number;
        c.xmin = 1.0;
        c.x_note = "replicas".into();
        c.render()
    }
}
