//! k6-style pass/fail criteria: `p99<300ms`, `fail_ratio<0.01`, `rps>1000`.
//!
//! Syntax: `METRIC OP VALUE[UNIT][@[METHOD ]NAME]`. Metrics: `p50`…`p100`
//! (any percentile, e.g. `p99.9`), `avg`, `med`, `min`, `max` (times; units
//! `us`, `ms` (default), `s`), `fail_ratio`, `failures`, `requests`, `rps`,
//! and `dropped_iterations` (k6's metric: open-model arrivals that found every
//! virtual user busy; a whole-run count, so it takes no `@`).
//! Operators: `<`, `<=`, `>`, `>=`, `==`. Without `@`, the aggregate is
//! checked; `@/api/v1/products/` or `@GET /api/v1/products/` checks one row.
//! Percentiles are taken from the coordinated-omission corrected histogram.

use crate::report::RunReport;
pub use crate::report::ThresholdResult;
use crate::stats::StatsRow;

/// What a threshold measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// Latency percentile (0..=1), ms.
    Percentile(f64),
    /// Average latency, ms.
    Avg,
    /// Median latency, ms.
    Median,
    /// Minimum latency, ms.
    Min,
    /// Maximum latency, ms.
    Max,
    /// failures / requests.
    FailRatio,
    /// Failed requests.
    Failures,
    /// Requests.
    Requests,
    /// Requests per second over the run.
    Rps,
    /// Open-model iterations dropped because every virtual user was busy.
    /// A count rather than a ratio: the report counts requests, not the
    /// iterations that were started, so a ratio would have no honest divisor.
    DroppedIterations,
}

/// Comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
}

/// One parsed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// As written.
    pub text: String,
    /// The metric.
    pub metric: Metric,
    /// The comparison.
    pub op: Op,
    /// The bound (ms for times).
    pub value: f64,
    /// `Some((method, name))` to check one row instead of the aggregate.
    pub endpoint: Option<(Option<String>, String)>,
}

/// `"99.9"` (percent, decimal) → `0.999` exactly: the digits become an
/// integer divided by a power of ten, one correctly rounded division, so the
/// result is the same `f64` as the literal `0.999` and matches `PERCENTILES`
/// (`99.9 / 100.0` would give `0.9990000000000001`).
fn percent_to_quantile(text: &str) -> Option<f64> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    if int.len() > 3 || frac.len() > 12 {
        return None;
    }
    let digits: u64 = format!("{int}{frac}").parse().ok()?;
    let scale = 10u64.checked_pow(frac.len() as u32 + 2)?;
    let q = digits as f64 / scale as f64;
    (q > 0.0 && q <= 1.0).then_some(q)
}

impl Threshold {
    /// Parses one threshold expression.
    pub fn parse(text: &str) -> Result<Threshold, String> {
        let t = text.trim();
        let (expr, endpoint) = match t.split_once('@') {
            Some((e, ep)) => {
                let ep = ep.trim();
                if ep.is_empty() {
                    return Err(format!("threshold {t:?}: nothing after '@'"));
                }
                let endpoint = match ep.split_once(' ') {
                    Some((m, n)) if m.chars().all(|c| c.is_ascii_uppercase()) => {
                        (Some(m.to_string()), n.trim().to_string())
                    }
                    _ => (None, ep.to_string()),
                };
                (e.trim(), Some(endpoint))
            }
            None => (t, None),
        };
        let pos = expr
            .find(['<', '>', '='])
            .ok_or_else(|| format!("threshold {t:?}: expected METRIC<VALUE (or >, <=, >=, ==)"))?;
        let (metric_s, rest) = expr.split_at(pos);
        let (op, value_s) = if let Some(v) = rest.strip_prefix("<=") {
            (Op::Le, v)
        } else if let Some(v) = rest.strip_prefix(">=") {
            (Op::Ge, v)
        } else if let Some(v) = rest.strip_prefix("==") {
            (Op::Eq, v)
        } else if let Some(v) = rest.strip_prefix('<') {
            (Op::Lt, v)
        } else if let Some(v) = rest.strip_prefix('>') {
            (Op::Gt, v)
        } else {
            return Err(format!("threshold {t:?}: unknown operator"));
        };
        let metric = match metric_s.trim() {
            "avg" => Metric::Avg,
            "med" | "median" => Metric::Median,
            "min" => Metric::Min,
            "max" => Metric::Max,
            "fail_ratio" => Metric::FailRatio,
            "failures" => Metric::Failures,
            "requests" => Metric::Requests,
            "rps" => Metric::Rps,
            "dropped_iterations" => Metric::DroppedIterations,
            m => {
                let p = m
                    .strip_prefix('p')
                    .map(|p| p.trim_start_matches('(').trim_end_matches(')'))
                    .and_then(percent_to_quantile)
                    .ok_or_else(|| {
                        format!("threshold {t:?}: unknown metric {m:?} (p50..p100, avg, med, min, max, fail_ratio, failures, requests, rps, dropped_iterations)")
                    })?;
                Metric::Percentile(p)
            }
        };
        if metric == Metric::DroppedIterations && endpoint.is_some() {
            return Err(format!(
                "threshold {t:?}: dropped_iterations counts the whole run; remove the '@…'"
            ));
        }
        let is_time = matches!(
            metric,
            Metric::Percentile(_) | Metric::Avg | Metric::Median | Metric::Min | Metric::Max
        );
        let v = value_s.trim();
        let (num, scale) = if is_time {
            if let Some(n) = v.strip_suffix("ms") {
                (n, 1.0)
            } else if let Some(n) = v.strip_suffix("us").or_else(|| v.strip_suffix("µs")) {
                (n, 0.001)
            } else if let Some(n) = v.strip_suffix('s') {
                (n, 1000.0)
            } else {
                (v, 1.0)
            }
        } else {
            (v, 1.0)
        };
        let value: f64 = num
            .trim()
            .parse()
            .ok()
            .filter(|n: &f64| n.is_finite())
            .ok_or_else(|| format!("threshold {t:?}: {v:?} is not a number"))?;
        Ok(Threshold {
            text: t.to_string(),
            metric,
            op,
            value: value * scale,
            endpoint,
        })
    }

    /// The measured value in `row`; `None` for a run-wide metric, which no
    /// row holds.
    pub fn measure(&self, row: &StatsRow) -> Option<f64> {
        Some(match self.metric {
            Metric::Percentile(p) => row.percentile(p).unwrap_or_else(|| {
                // Not one of the CSV columns: the nearest reported one above it.
                row.percentiles
                    .iter()
                    .find(|(q, _)| *q >= p)
                    .map(|(_, v)| *v)
                    .unwrap_or(row.max_response_time)
            }),
            Metric::Avg => row.avg_response_time,
            Metric::Median => row.median_response_time,
            Metric::Min => row.min_response_time,
            Metric::Max => row.max_response_time,
            Metric::FailRatio => row.fail_ratio,
            Metric::Failures => row.num_failures as f64,
            Metric::Requests => row.num_requests as f64,
            Metric::Rps => row.total_rps,
            Metric::DroppedIterations => return None,
        })
    }

    /// The measured value in report `r`, `None` when there is nothing to
    /// measure (an endpoint without requests).
    fn actual(&self, r: &RunReport) -> Option<f64> {
        if self.metric == Metric::DroppedIterations {
            return Some(r.dropped_iterations as f64);
        }
        let rows = &r.stats;
        let row = match &self.endpoint {
            None => rows.last(),
            Some((m, n)) => rows[..rows.len().saturating_sub(1)]
                .iter()
                .find(|r| &r.name == n && m.as_ref().is_none_or(|m| &r.method == m)),
        };
        row.filter(|r| {
            r.num_requests > 0 || matches!(self.metric, Metric::Requests | Metric::Failures)
        })
        .and_then(|row| self.measure(row))
    }

    /// Evaluates against a report: its rows (the last is the aggregate) and
    /// its run-wide counters.
    pub fn evaluate(&self, r: &RunReport) -> ThresholdResult {
        let Some(a) = self.actual(r) else {
            return ThresholdResult {
                threshold: self.text.clone(),
                actual: None,
                ok: false,
            };
        };
        let ok = match self.op {
            Op::Lt => a < self.value,
            Op::Le => a <= self.value,
            Op::Gt => a > self.value,
            Op::Ge => a >= self.value,
            Op::Eq => (a - self.value).abs() < 1e-9,
        };
        ThresholdResult {
            threshold: self.text.clone(),
            actual: Some(a),
            ok,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Entry;

    #[test]
    fn parses_k6_style() {
        let t = Threshold::parse("p99<300ms").unwrap();
        assert_eq!(
            (t.metric, t.op, t.value),
            (Metric::Percentile(0.99), Op::Lt, 300.0)
        );
        let t = Threshold::parse("p(99.9) <= 1s").unwrap();
        assert_eq!((t.op, t.value), (Op::Le, 1000.0));
        assert_eq!(t.metric, Metric::Percentile(0.999));
        let t = Threshold::parse("fail_ratio<0.01").unwrap();
        assert_eq!((t.metric, t.value), (Metric::FailRatio, 0.01));
        let t = Threshold::parse("rps>1000@GET /api/v1/products/").unwrap();
        assert_eq!(
            t.endpoint,
            Some((Some("GET".into()), "/api/v1/products/".into()))
        );
        let t = Threshold::parse("avg<20@/x").unwrap();
        assert_eq!(t.endpoint, Some((None, "/x".into())));
        for bad in ["p99", "p0<1", "p101<1", "speed<1", "p99<fast", "rps>1@"] {
            assert!(Threshold::parse(bad).is_err(), "{bad}");
        }
    }

    /// A report with `rows` (the aggregate last) and `dropped` dropped iterations.
    fn report(rows: Vec<StatsRow>, dropped: u64) -> RunReport {
        let mut r = RunReport::from_state(
            &crate::stats::StatsState::new(Default::default()),
            Default::default(),
        );
        r.stats = rows;
        r.dropped_iterations = dropped;
        r
    }

    #[test]
    fn evaluates_rows() {
        let mut e = Entry::new("GET", "/x");
        for ms in 1..=100u64 {
            e.record(ms * 1000, ms * 1000, 0, ms > 98);
        }
        let mut total = e.clone();
        total.method = String::new();
        total.name = "Aggregated".into();
        let r = report(vec![e.row(10.0), total.row(10.0)], 0);
        let holds = |t: &str| Threshold::parse(t).unwrap().evaluate(&r).ok;
        assert!(holds("p50<60ms"));
        assert!(!holds("p99<50ms"));
        assert!(!holds("fail_ratio<0.01"));
        assert!(holds("fail_ratio<0.05"));
        assert!(holds("rps>=10@/x"));
        assert!(!holds("rps>=10@/missing"));
    }

    #[test]
    fn dropped_iterations_are_a_run_wide_count() {
        let t = Threshold::parse("dropped_iterations<1").unwrap();
        assert_eq!(
            (t.metric, t.op, t.value),
            (Metric::DroppedIterations, Op::Lt, 1.0)
        );
        let ok = t.evaluate(&report(Vec::new(), 0));
        assert_eq!((ok.actual, ok.ok), (Some(0.0), true));
        let bad = t.evaluate(&report(Vec::new(), 108));
        assert_eq!((bad.actual, bad.ok), (Some(108.0), false));
        assert!(
            Threshold::parse("dropped_iterations<=10")
                .unwrap()
                .evaluate(&report(Vec::new(), 10))
                .ok
        );
        let err = Threshold::parse("dropped_iterations<1@/x").unwrap_err();
        assert!(err.contains("whole run"), "{err}");
    }
}
