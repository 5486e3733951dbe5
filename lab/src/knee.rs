//! Where the objective breaks, fitted to every window of a search.
//!
//! Near its knee this scenario breaks the objective in bursts: a login
//! queue wanders past the request timeout and a window catches it, or not.
//! The highest load whose window happened to keep the objective is then a
//! draw, and which loads the search tried decides how coarse a draw
//! (docs/lab.md, "The knee, fitted"). Every window carries some evidence,
//! so the lab fits one curve to all of them and reads the knee off it.
//!
//! The model: breaks come at a rate that grows as a power of the load,
//! `rate(L) = exp(k·(ln L − c))` per second, so a window of `T` seconds
//! breaks with odds `1 − exp(−T·rate(L))`. Longer windows break at lower
//! loads, as measured (20 s windows broke half the time at 0.90–0.96× the
//! load of 8 s ones), with no parameter per length. The slope `k` is fixed ([`SLOPE`]); the position
//! `c` is fitted by maximum likelihood, which is concave in `c`, so a
//! golden-section search finds it. The knee is the load at which a window
//! of [`REFERENCE_SECONDS`] breaks the objective half the time.

use serde::{Deserialize, Serialize};

use crate::step::StepRecord;

/// How steeply the break rate rises with the load, per unit of ln(load).
/// Fixed, not fitted: one run has too few windows near its knee to fit a
/// slope as well as a position. Fitted on 403 windows of 27 runs of the
/// default comparison it is 13 (21 once the knee's drift between runs is
/// allowed for); the spread of the speed-up between runs is the same for
/// any slope from 13 to 45 (docs/lab.md, "The knee, fitted").
pub const SLOPE: f64 = 20.0;

/// The window length the knee is quoted for, seconds: that of the lab's
/// default confirmation window.
pub const REFERENCE_SECONDS: f64 = 20.0;

/// One measured window: its load, its length and whether it broke the objective.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub load: f64,
    pub seconds: f64,
    pub broke: bool,
}

/// A side's knee and its figures there.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Knee {
    /// The load at which a window of [`REFERENCE_SECONDS`] breaks the
    /// objective half the time.
    pub load: f64,
    /// Successful requests/s at that load: the kept windows' goodput per
    /// unit of load near the knee, times `load`.
    pub goodput: f64,
    /// Requests/s at that load, the same way.
    pub rps: f64,
    /// Windows the curve was fitted to.
    pub windows: u32,
}

impl Knee {
    /// The knee of a side's windows, or `None` unless at least one kept the
    /// objective and one broke it (without both the knee is not bracketed).
    pub fn fit(steps: &[StepRecord]) -> Option<Knee> {
        let windows: Vec<Window> = steps
            .iter()
            .filter(|s| s.summary.seconds > 0.0 && s.load > 0)
            .map(|s| Window {
                load: f64::from(s.load),
                seconds: s.summary.seconds,
                broke: !s.kept,
            })
            .collect();
        let load = knee_load(&windows, SLOPE, REFERENCE_SECONDS)?;
        let (goodput, rps) = per_load_near(steps, load)?;
        Some(Knee {
            load,
            goodput: goodput * load,
            rps: rps * load,
            windows: windows.len() as u32,
        })
    }
}

/// The load at which a window of `reference` seconds breaks half the time,
/// on the curve of slope `slope` fitted to `windows`.
/// Windows of no load or no length carry no evidence and are left out.
pub fn knee_load(windows: &[Window], slope: f64, reference: f64) -> Option<f64> {
    let positive = |x: f64| x.is_finite() && x > 0.0;
    let windows: Vec<Window> = (windows.iter())
        .filter(|w| positive(w.load) && positive(w.seconds))
        .copied()
        .collect();
    let bracketed = windows.iter().any(|w| w.broke) && windows.iter().any(|w| !w.broke);
    if !bracketed || !positive(slope) || !positive(reference) {
        return None;
    }
    let ln = |w: &Window| w.load.ln();
    let lo = windows.iter().map(ln).fold(f64::INFINITY, f64::min) - 2.0;
    let hi = windows.iter().map(ln).fold(f64::NEG_INFINITY, f64::max) + 2.0;
    let c = golden_max(|c| log_likelihood(&windows, slope, c), lo, hi);
    Some((c + (std::f64::consts::LN_2 / reference).ln() / slope).exp())
}

/// Log-likelihood of the windows' verdicts for position `c`.
fn log_likelihood(windows: &[Window], slope: f64, c: f64) -> f64 {
    windows
        .iter()
        .map(|w| {
            // Expected breaks in the window; its odds of none are exp(−u).
            let u = (w.seconds * (slope * (w.load.ln() - c)).exp()).clamp(1e-300, 1e300);
            if w.broke {
                (-(-u).exp_m1()).ln()
            } else {
                -u
            }
        })
        .sum()
}

/// The maximum of a concave `f` on `[lo, hi]`, by golden-section search.
fn golden_max(f: impl Fn(f64) -> f64, mut lo: f64, mut hi: f64) -> f64 {
    let r = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = (hi - r * (hi - lo), lo + r * (hi - lo));
    let (mut fa, mut fb) = (f(a), f(b));
    // Each step keeps 0.618 of the bracket: 100 take any bracket of
    // finite loads' logarithms below 1e-9.
    for _ in 0..100 {
        if fa < fb {
            lo = a;
            (a, fa) = (b, fb);
            b = lo + r * (hi - lo);
            fb = f(b);
        } else {
            hi = b;
            (b, fb) = (a, fa);
            a = hi - r * (hi - lo);
            fa = f(a);
        }
    }
    (lo + hi) / 2.0
}

/// Goodput and req/s per unit of load of the windows that kept the
/// objective within a factor two of `knee` (of all kept windows when none
/// is that near), weighted by their length. Below the knee both grow in
/// proportion to the load in this closed model; far below it users wait
/// less for their logins, which is why only the nearest windows count.
fn per_load_near(steps: &[StepRecord], knee: f64) -> Option<(f64, f64)> {
    let kept: Vec<&StepRecord> = (steps.iter())
        .filter(|s| s.kept && s.summary.seconds > 0.0)
        .collect();
    let near: Vec<&StepRecord> = (kept.iter().copied())
        .filter(|s| (knee / 2.0..=knee * 2.0).contains(&f64::from(s.load)))
        .collect();
    let chosen = if near.is_empty() { kept } else { near };
    let weight: f64 = chosen
        .iter()
        .map(|s| f64::from(s.load) * s.summary.seconds)
        .sum();
    (weight > 0.0).then(|| {
        let sum = |f: fn(&StepRecord) -> f64| {
            chosen.iter().map(|s| f(s) * s.summary.seconds).sum::<f64>() / weight
        };
        (sum(|s| s.summary.goodput()), sum(|s| s.summary.rps))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(load: f64, seconds: f64, broke: bool) -> Window {
        Window {
            load,
            seconds,
            broke,
        }
    }

    /// Odds that a window breaks on the model's curve with knee `knee` for
    /// windows of `REFERENCE_SECONDS`.
    fn odds(knee: f64, load: f64, seconds: f64) -> f64 {
        let rate = std::f64::consts::LN_2 / REFERENCE_SECONDS * (load / knee).powf(SLOPE);
        1.0 - (-rate * seconds).exp()
    }

    #[test]
    fn recovers_a_known_knee_from_windows_drawn_on_its_curve() {
        // A deterministic generator: windows at loads 50..=100 and three
        // lengths, broken when a uniform draw falls under their odds.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut uniform = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for knee in [70.0, 280.0] {
            let mut ws = Vec::new();
            for i in 0..600 {
                let load = knee * (0.7 + 0.6 * (i % 25) as f64 / 24.0);
                let seconds = [4.0, 8.0, 20.0][i % 3];
                ws.push(w(load, seconds, uniform() < odds(knee, load, seconds)));
            }
            let fitted = knee_load(&ws, SLOPE, REFERENCE_SECONDS).unwrap();
            assert!(
                (fitted / knee - 1.0).abs() < 0.02,
                "knee {knee}: fitted {fitted:.1}"
            );
        }
    }

    #[test]
    fn a_clean_break_puts_the_knee_between_the_last_hold_and_the_first_break() {
        let ws = [
            w(40.0, 4.0, false),
            w(60.0, 8.0, false),
            w(70.0, 8.0, false),
            w(80.0, 8.0, true),
            w(90.0, 8.0, true),
        ];
        let k = knee_load(&ws, SLOPE, 8.0).unwrap();
        assert!(70.0 < k && k < 80.0, "knee {k:.1}");
    }

    #[test]
    fn a_short_window_that_broke_says_more_than_a_long_one() {
        let base = [w(60.0, 8.0, false), w(80.0, 8.0, true)];
        let with = |seconds: f64| {
            let mut ws = base.to_vec();
            ws.push(w(70.0, seconds, true));
            knee_load(&ws, SLOPE, REFERENCE_SECONDS).unwrap()
        };
        // A short window breaking at 70 says more about 70 than a long one:
        // the long one had more time to catch a burst.
        assert!(with(4.0) < with(20.0), "{} vs {}", with(4.0), with(20.0));
    }

    #[test]
    fn the_figures_at_the_knee_scale_the_kept_windows_near_it() {
        use crate::report::fixture::step;
        let slo = crate::capacity::Slo::default();
        let mut steps = vec![
            step(1, 10, 0.0, 90.0, &slo),
            step(2, 40, 0.0, 90.0, &slo),
            step(3, 80, 0.071, 400.0, &slo),
            step(4, 60, 0.0, 100.0, &slo),
            step(5, 70, 0.0, 100.0, &slo),
        ];
        for s in &mut steps {
            s.summary.seconds = 8.0;
        }
        // Far below the knee a user does more (10 req/s a user at 10 users,
        // 8 near it): only the windows near the knee count.
        steps[0].summary.rps = 100.0;
        for s in &mut steps[1..] {
            s.summary.rps = f64::from(s.load) * 8.0;
        }
        let k = Knee::fit(&steps).unwrap();
        assert!(70.0 < k.load && k.load < 80.0, "knee {:.1}", k.load);
        assert!((k.rps / k.load - 8.0).abs() < 1e-9, "{} req/s", k.rps);
        assert!(
            (k.goodput - k.rps).abs() < 1e-9,
            "kept windows failed nothing"
        );
        assert_eq!(k.windows, 5);
        assert_eq!(Knee::fit(&steps[..2]), None, "nothing broke");
    }

    #[test]
    fn no_knee_without_both_a_hold_and_a_break() {
        let held = [w(10.0, 4.0, false), w(20.0, 4.0, false)];
        let broke = [w(10.0, 4.0, true)];
        assert_eq!(knee_load(&held, SLOPE, 8.0), None);
        assert_eq!(knee_load(&broke, SLOPE, 8.0), None);
        assert_eq!(knee_load(&[], SLOPE, 8.0), None);
        let empty = [
            w(0.0, 4.0, true),
            w(50.0, 0.0, false),
            w(f64::NAN, 8.0, false),
        ];
        assert_eq!(knee_load(&empty, SLOPE, 8.0), None, "no evidence in these");
    }
}
