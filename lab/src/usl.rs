//! The Universal Scalability Law, fitted to measured capacities.
//!
//! Gunther's USL models throughput at N servers as
//! `X(N) = λN / (1 + σ(N−1) + κN(N−1))`: λ is one server's throughput, σ
//! the contention (a share of the work that serialises, e.g. one database
//! file), κ the coherency cost (every server talking to every other). With
//! κ > 0 the curve peaks at `N* = √((1−σ)/κ)` and falls beyond it: adding
//! replicas stops paying there. `lab scale` measures X at a few N and fits
//! the three parameters.
//!
//! The fit: for a given λ the model is linear in σ and κ
//! (`λN/X − 1 = σ(N−1) + κN(N−1)`), so σ and κ come from a least-squares
//! solve (both kept ≥ 0: a negative contention would mean superlinear
//! scaling, which the model cannot express); λ is then chosen by a
//! golden-section search minimising the squared *relative* error of X, so
//! the small N's few hundred req/s weigh as much as the large N's thousands.
//! No external solver: four points and three parameters need none.

use serde::{Deserialize, Serialize};

/// A fitted USL curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Usl {
    /// Throughput of one server (same unit as the points).
    pub lambda: f64,
    /// Contention.
    pub sigma: f64,
    /// Coherency.
    pub kappa: f64,
    /// Root mean square of the relative error at the points (0.05 = 5%).
    pub rms_error: f64,
}

impl Usl {
    /// X(N) on the fitted curve.
    pub fn throughput(&self, n: f64) -> f64 {
        self.lambda * n / (1.0 + self.sigma * (n - 1.0) + self.kappa * n * (n - 1.0))
    }

    /// The N where the curve peaks (`None` without coherency cost: it then
    /// only flattens towards `λ/σ`).
    pub fn peak(&self) -> Option<f64> {
        (self.kappa > 1e-12).then(|| ((1.0 - self.sigma).max(0.0) / self.kappa).sqrt())
    }

    /// The first whole N whose next replica adds less than `fraction` of one
    /// server's throughput (e.g. 0.1: the 9th replica adds under 10% of λ),
    /// searched up to `limit`. Where adding replicas "stops paying".
    pub fn stops_paying(&self, fraction: f64, limit: u32) -> Option<u32> {
        (1..limit).find(|&n| {
            let n = f64::from(n);
            self.throughput(n + 1.0) - self.throughput(n) < fraction * self.lambda
        })
    }

    /// Fits `(N, X)` points; needs at least three points at two or more
    /// distinct N with positive throughput.
    pub fn fit(points: &[(f64, f64)]) -> Option<Usl> {
        let pts: Vec<(f64, f64)> = points
            .iter()
            .copied()
            .filter(|&(n, x)| n >= 1.0 && x > 0.0 && n.is_finite() && x.is_finite())
            .collect();
        let distinct = {
            let mut ns: Vec<f64> = pts.iter().map(|p| p.0).collect();
            ns.sort_by(f64::total_cmp);
            ns.dedup();
            ns.len()
        };
        if pts.len() < 3 || distinct < 2 {
            return None;
        }
        // λ is at least the best per-server throughput seen (σ, κ ≥ 0 make
        // X(N)/N fall with N) and, with these points, not far above it.
        let per_server = pts.iter().map(|&(n, x)| x / n).fold(0.0, f64::max);
        let (mut lo, mut hi) = (per_server, per_server * 3.0);
        let cost = |l: f64| {
            let (s, k) = sigma_kappa(&pts, l);
            relative_sse(&pts, l, s, k)
        };
        let g = (5f64.sqrt() - 1.0) / 2.0;
        for _ in 0..200 {
            let a = hi - g * (hi - lo);
            let b = lo + g * (hi - lo);
            if cost(a) <= cost(b) {
                hi = b;
            } else {
                lo = a;
            }
        }
        let lambda = (lo + hi) / 2.0;
        let (sigma, kappa) = sigma_kappa(&pts, lambda);
        let rms_error = (relative_sse(&pts, lambda, sigma, kappa) / pts.len() as f64).sqrt();
        Some(Usl {
            lambda,
            sigma,
            kappa,
            rms_error,
        })
    }
}

/// σ, κ ≥ 0 minimising `Σ (λN/X − 1 − σ(N−1) − κN(N−1))²` for a fixed λ.
fn sigma_kappa(pts: &[(f64, f64)], lambda: f64) -> (f64, f64) {
    let rows: Vec<(f64, f64, f64)> = pts
        .iter()
        .map(|&(n, x)| (n - 1.0, n * (n - 1.0), lambda * n / x - 1.0))
        .collect();
    let (mut aa, mut ab, mut bb, mut ay, mut by) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(a, b, y) in &rows {
        aa += a * a;
        ab += a * b;
        bb += b * b;
        ay += a * y;
        by += b * y;
    }
    let det = aa * bb - ab * ab;
    let both = (det.abs() > 1e-12).then(|| ((ay * bb - by * ab) / det, (aa * by - ab * ay) / det));
    match both {
        Some((s, k)) if s >= 0.0 && k >= 0.0 => (s, k),
        _ => {
            // One parameter at zero: keep whichever single fit explains more.
            let s_only = if aa > 0.0 { (ay / aa).max(0.0) } else { 0.0 };
            let k_only = if bb > 0.0 { (by / bb).max(0.0) } else { 0.0 };
            let sse = |s: f64, k: f64| {
                rows.iter()
                    .map(|&(a, b, y)| (y - s * a - k * b).powi(2))
                    .sum::<f64>()
            };
            if sse(s_only, 0.0) <= sse(0.0, k_only) {
                (s_only, 0.0)
            } else {
                (0.0, k_only)
            }
        }
    }
}

fn relative_sse(pts: &[(f64, f64)], lambda: f64, sigma: f64, kappa: f64) -> f64 {
    let u = Usl {
        lambda,
        sigma,
        kappa,
        rms_error: 0.0,
    };
    pts.iter()
        .map(|&(n, x)| ((u.throughput(n) - x) / x).powi(2))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(lambda: f64, sigma: f64, kappa: f64) -> Usl {
        Usl {
            lambda,
            sigma,
            kappa,
            rms_error: 0.0,
        }
    }

    #[test]
    fn recovers_known_parameters_from_exact_points() {
        let truth = curve(500.0, 0.08, 0.01);
        let pts: Vec<(f64, f64)> = [1.0, 2.0, 4.0, 8.0]
            .iter()
            .map(|&n| (n, truth.throughput(n)))
            .collect();
        let f = Usl::fit(&pts).unwrap();
        assert!((f.lambda - 500.0).abs() < 0.5, "{f:?}");
        assert!((f.sigma - 0.08).abs() < 1e-3, "{f:?}");
        assert!((f.kappa - 0.01).abs() < 1e-4, "{f:?}");
        assert!(f.rms_error < 1e-4, "{f:?}");
        // N* = √(0.92 / 0.01) ≈ 9.6.
        assert!((f.peak().unwrap() - 9.59).abs() < 0.05, "{f:?}");
        // X(7) − X(6) = 77 > 50 (10% of λ); X(8) − X(7) = 45 < 50.
        assert_eq!(truth.stops_paying(0.1, 64), Some(7));
    }

    #[test]
    fn contention_only_has_no_peak() {
        let truth = curve(100.0, 0.2, 0.0);
        let pts: Vec<(f64, f64)> = [1.0, 2.0, 4.0, 8.0]
            .iter()
            .map(|&n| (n, truth.throughput(n)))
            .collect();
        let f = Usl::fit(&pts).unwrap();
        assert!((f.sigma - 0.2).abs() < 1e-3 && f.kappa < 1e-6, "{f:?}");
        assert!(f.peak().is_none());
    }

    #[test]
    fn noisy_points_give_close_parameters_and_an_honest_error() {
        let truth = curve(400.0, 0.05, 0.02);
        // ±4% of fixed, alternating noise, two samples per N.
        let noise = [1.04, 0.96, 0.97, 1.03, 1.02, 0.98, 0.96, 1.04];
        let ns = [1.0, 1.0, 2.0, 2.0, 4.0, 4.0, 8.0, 8.0];
        let pts: Vec<(f64, f64)> = ns
            .iter()
            .zip(noise)
            .map(|(&n, e)| (n, truth.throughput(n) * e))
            .collect();
        let f = Usl::fit(&pts).unwrap();
        assert!((f.lambda - 400.0).abs() / 400.0 < 0.1, "{f:?}");
        assert!((f.sigma - 0.05).abs() < 0.05, "{f:?}");
        assert!((f.kappa - 0.02).abs() < 0.01, "{f:?}");
        assert!(f.rms_error > 0.01 && f.rms_error < 0.06, "{f:?}");
        let peak = f.peak().unwrap();
        assert!((5.0..9.0).contains(&peak), "{peak}");
    }

    #[test]
    fn too_few_points_give_no_fit() {
        assert!(Usl::fit(&[(1.0, 10.0), (2.0, 19.0)]).is_none());
        assert!(Usl::fit(&[(4.0, 10.0), (4.0, 11.0), (4.0, 12.0)]).is_none());
        assert!(Usl::fit(&[(1.0, 0.0), (2.0, 0.0), (4.0, 0.0)]).is_none());
    }
}
