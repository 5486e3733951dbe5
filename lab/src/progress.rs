//! How far along a long command is: windows done of the expected, elapsed
//! time, and an estimate of the time left.
//!
//! A capacity search does not know its length in advance (it grows the load
//! until the objective breaks, then bisects), so the expected count is
//! re-estimated after every window from each search's state
//! ([`crate::capacity::Search::expected_remaining`]); the time left is the
//! mean time per window so far times the windows still expected. The line
//! reads "window 5 of ~9, 1m12s elapsed, about 58s left".

use std::time::Duration;

/// Seconds left: the mean seconds per window done so far times the windows
/// still expected; `None` before the first window ends.
pub fn eta(elapsed: Duration, done: u32, expected: u32) -> Option<Duration> {
    if done == 0 {
        return None;
    }
    let per = elapsed.as_secs_f64() / f64::from(done);
    Some(Duration::from_secs_f64(
        per * f64::from(expected.saturating_sub(done)),
    ))
}

/// `window 5 of ~9, 1m12s elapsed, about 58s left`.
pub fn line(done: u32, expected: u32, elapsed: Duration) -> String {
    let expected = expected.max(done);
    let left = eta(elapsed, done, expected).map_or(String::new(), |l| {
        format!(", about {} left", plumbing::svg::fmt_secs(l.as_secs_f64()))
    });
    format!(
        "window {done} of ~{expected}, {} elapsed{left}",
        plumbing::svg::fmt_secs(elapsed.as_secs_f64())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_is_mean_window_time_times_windows_left() {
        assert_eq!(eta(Duration::from_secs(60), 0, 9), None);
        assert_eq!(
            eta(Duration::from_secs(60), 4, 10),
            Some(Duration::from_secs(90))
        );
        assert_eq!(eta(Duration::from_secs(60), 10, 8), Some(Duration::ZERO));
        assert_eq!(
            line(5, 9, Duration::from_secs(72)),
            "window 5 of ~9, 1m12s elapsed, about 58s left"
        );
        assert_eq!(
            line(3, 2, Duration::from_secs(30)),
            "window 3 of ~3, 30s elapsed, about 0s left"
        );
    }
}
