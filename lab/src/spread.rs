//! Repeated measurements boiled down to a median and a range.
//!
//! One capacity search is one sample of a noisy quantity (issue 13: five runs
//! of the same command gave 2.6× to 5.6× the req/s). `--repeat K` runs each
//! side's search K times, interleaved, and the report states the median with
//! the range it came from ("3.9×, 3.7–4.1 over 3 runs") instead of one
//! number read as a constant. The median, not the mean: one run spoiled by
//! a neighbour's compile should not move the answer.

use serde::{Deserialize, Serialize};

/// The median and range of K samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Median (the mean of the two middle samples for an even count).
    pub median: f64,
    /// Smallest sample.
    pub low: f64,
    /// Largest sample.
    pub high: f64,
    /// Number of samples.
    pub runs: usize,
}

impl Spread {
    /// The spread of the finite samples in `values`; `None` when there is none.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            low: v[0],
            high: v[n - 1],
            runs: n,
        })
    }

    /// `3.90, 3.70–4.10 over 3 runs` with `decimals` decimals; one run reads
    /// as the bare figure with "(1 run)", since it says nothing about noise.
    pub fn text(&self, decimals: usize, suffix: &str) -> String {
        if self.runs <= 1 {
            return format!("{:.decimals$}{suffix} (1 run)", self.median);
        }
        format!(
            "{:.decimals$}{suffix}, {:.decimals$}–{:.decimals$} over {} runs",
            self.median, self.low, self.high, self.runs
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_range_of_odd_and_even_counts() {
        let s = Spread::of(&[4.1, 3.7, 3.9]).unwrap();
        assert_eq!((s.median, s.low, s.high, s.runs), (3.9, 3.7, 4.1, 3));
        assert_eq!(s.text(1, "×"), "3.9×, 3.7–4.1 over 3 runs");
        let s = Spread::of(&[1.0, 4.0, 2.0, 3.0]).unwrap();
        assert_eq!((s.median, s.low, s.high), (2.5, 1.0, 4.0));
    }

    #[test]
    fn one_outlier_does_not_move_the_median_and_nan_is_ignored() {
        let s = Spread::of(&[4.0, 4.2, 40.0, f64::NAN, 3.9]).unwrap();
        assert_eq!(s.median, 4.1);
        assert_eq!(s.runs, 4);
        assert_eq!(s.high, 40.0);
        assert!(Spread::of(&[]).is_none());
        assert!(Spread::of(&[f64::NAN]).is_none());
        assert_eq!(Spread::of(&[2.0]).unwrap().text(2, "×"), "2.00× (1 run)");
    }
}
