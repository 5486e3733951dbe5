//! How far along a long command is: windows done of the expected, elapsed
//! time, and an estimate of the time left.
//!
//! A capacity search does not know its length in advance (it grows the load
//! until the objective breaks, then bisects, then confirms), so after every
//! window each search says which windows it still expects ([`Ahead`]: how
//! long each measures and how likely it is to be needed), and the estimate
//! is made anew. A window costs its measuring length plus the mean overhead
//! of the windows so far (ramp, warm-up, a window measured again).
//!
//! Why not the mean time per window times the windows left (the first
//! version): the windows left are the long ones. A search's early growth
//! steps measure 4 s, its bisections 8 s and its confirmations 20 s, and a
//! confirmation that breaks is followed by another one lower. Over fifteen
//! runs of `lab compare --replicas 4` (2026-12-04, sets S, R and T of
//! docs/lab.md) that estimate was short by 63 % on average; this one, over
//! the five runs after it (set V), was 8 % long on average, its median error
//! either way 24 % (the growth steps still to come before the objective
//! breaks cannot be known). The line reads
//! "window 5 of ~9, 1m12s elapsed, about 58s left".

use std::time::Duration;

/// A window a search still expects.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ahead {
    /// How long it measures (the ramp and warm-up come on top).
    pub measure: Duration,
    /// How likely it is to be needed: 1 for the steps a search still has
    /// to take, less for a confirmation that runs only if the one before
    /// it breaks.
    pub odds: f64,
}

impl Ahead {
    /// A window that will surely run.
    pub fn sure(measure: Duration) -> Ahead {
        Ahead { measure, odds: 1.0 }
    }
}

/// The windows of searches measured together: the i-th window of each is
/// one window, measuring as long as the longest and needed if any of them
/// needs it.
pub fn together(lists: &[Vec<Ahead>]) -> Vec<Ahead> {
    let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .map(|i| {
            let here = lists.iter().filter_map(|l| l.get(i));
            let measure = here.clone().map(|a| a.measure).max().unwrap_or_default();
            let none = here.fold(1.0, |p, a| p * (1.0 - a.odds.clamp(0.0, 1.0)));
            Ahead {
                measure,
                odds: 1.0 - none,
            }
        })
        .collect()
}

/// The windows expected, rounded: the sum of their odds.
pub fn expected(ahead: &[Ahead]) -> u32 {
    ahead.iter().map(|a| a.odds).sum::<f64>().round() as u32
}

/// Where a command stands.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pace {
    /// Windows measured so far.
    pub done: u32,
    /// Since the command started measuring.
    pub elapsed: Duration,
    /// Their time beyond the length each was to measure (ramps, warm-ups,
    /// windows measured again), summed.
    pub overhead: Duration,
}

/// Time left: each window `ahead` costs its measuring length and the mean
/// overhead so far, weighted by its odds; each of the `later`
/// searches' windows (repeats, other replica counts) the mean window so
/// far. `None` before the first window ends.
pub fn eta(pace: Pace, ahead: &[Ahead], later: u32) -> Option<Duration> {
    if pace.done == 0 {
        return None;
    }
    let n = f64::from(pace.done);
    let overhead = pace.overhead.as_secs_f64() / n;
    let window = pace.elapsed.as_secs_f64() / n;
    let these: f64 = ahead
        .iter()
        .map(|a| a.odds * (a.measure.as_secs_f64() + overhead))
        .sum();
    Some(Duration::from_secs_f64(these + window * f64::from(later)))
}

/// `window 5 of ~9, 1m12s elapsed, about 58s left`.
pub fn line(pace: Pace, ahead: &[Ahead], later: u32) -> String {
    let total = pace.done + expected(ahead) + later;
    let left = eta(pace, ahead, later).map_or(String::new(), |l| {
        format!(", about {} left", plumbing::svg::fmt_secs(l.as_secs_f64()))
    });
    format!(
        "window {} of ~{total}, {} elapsed{left}",
        pace.done,
        plumbing::svg::fmt_secs(pace.elapsed.as_secs_f64())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_window_costs_its_length_and_the_mean_overhead() {
        let pace = Pace {
            done: 4,
            elapsed: secs(60),
            overhead: secs(32),
        };
        assert_eq!(eta(Pace::default(), &[Ahead::sure(secs(4))], 0), None);
        // Two bisections of 8 s and a confirmation of 20 s, 8 s of overhead each.
        let ahead = [
            Ahead::sure(secs(8)),
            Ahead::sure(secs(8)),
            Ahead::sure(secs(20)),
        ];
        assert_eq!(eta(pace, &ahead, 0), Some(secs(16 + 16 + 28)));
        // A confirmation needed one time in two counts half.
        let maybe = Ahead {
            measure: secs(20),
            odds: 0.5,
        };
        assert_eq!(eta(pace, &[maybe], 0), Some(secs(14)));
        // Later searches' windows cost the mean window so far (15 s).
        assert_eq!(eta(pace, &[], 2), Some(secs(30)));
        assert_eq!(eta(pace, &[], 0), Some(Duration::ZERO));
    }

    #[test]
    fn the_line_counts_windows_by_their_odds() {
        let pace = Pace {
            done: 5,
            elapsed: secs(72),
            overhead: secs(30),
        };
        let ahead = [
            Ahead::sure(secs(8)),
            Ahead::sure(secs(20)),
            Ahead {
                measure: secs(20),
                odds: 0.5,
            },
            Ahead {
                measure: secs(20),
                odds: 0.25,
            },
        ];
        // 2.75 windows expected: ~3 more; 14 + 26 + 13 + 6.5 s left.
        assert_eq!(
            line(pace, &ahead, 0),
            "window 5 of ~8, 1m12s elapsed, about 1m left"
        );
        assert_eq!(
            line(pace, &[], 0),
            "window 5 of ~5, 1m12s elapsed, about 0s left"
        );
    }

    #[test]
    fn windows_measured_together_take_the_longest_and_any_need() {
        let single = vec![Ahead::sure(secs(4)), Ahead::sure(secs(8))];
        let group = vec![
            Ahead::sure(secs(8)),
            Ahead {
                measure: secs(8),
                odds: 0.5,
            },
            Ahead {
                measure: secs(20),
                odds: 0.5,
            },
        ];
        let both = together(&[single, group]);
        assert_eq!(
            both,
            [
                Ahead::sure(secs(8)),
                Ahead::sure(secs(8)),
                Ahead {
                    measure: secs(20),
                    odds: 0.5
                }
            ]
        );
        let two_maybes = together(&[both[2..].to_vec(), both[2..].to_vec()]);
        assert_eq!(two_maybes[0].odds, 0.75);
        assert!(together(&[]).is_empty());
    }
}
