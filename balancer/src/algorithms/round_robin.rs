//! nginx's smooth weighted round robin (`ngx_http_upstream_get_peer`): each
//! pick adds every candidate's effective weight to its current weight, takes
//! the highest (the first on ties), and subtracts the total from the winner.
//! Weights 5,1,1 give `a a b a c a a`. Also the tie-breaker of `least_conn`
//! and `least_time`, and the fallback of the hash methods, as in nginx.
//!
//! The current weights sit behind a `std::sync::Mutex` (nginx takes its
//! peers lock for the same reason): the update must be atomic as a whole,
//! the critical section is a short loop with no `.await`, and with one
//! worker thread it is never contended.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use super::candidate;
use crate::upstream::peer::Peer;

/// Smooth weighted round robin state.
#[derive(Debug)]
pub struct Swrr {
    current: Mutex<Vec<i64>>,
}

impl Swrr {
    /// State for `n` peers.
    pub fn new(n: usize) -> Self {
        Swrr {
            current: Mutex::new(vec![0; n]),
        }
    }

    /// Picks among all candidates of `tier`.
    pub fn select(
        &self,
        peers: &[Arc<Peer>],
        tier: Range<usize>,
        skip: u128,
        now: u64,
    ) -> Option<usize> {
        self.select_where(peers, tier, now, |i| candidate(peers, i, skip, now))
    }

    /// Picks among the peers of `tier` accepted by `filter`.
    pub fn select_where(
        &self,
        peers: &[Arc<Peer>],
        tier: Range<usize>,
        now: u64,
        filter: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let mut cw = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let mut best: Option<usize> = None;
        let mut total: i64 = 0;
        for i in tier {
            if !filter(i) {
                continue;
            }
            let ew = peers[i].effective_weight(now) as i64;
            cw[i] += ew;
            total += ew;
            if best.is_none_or(|b| cw[i] > cw[b]) {
                best = Some(i);
            }
        }
        let b = best?;
        cw[b] -= total;
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;

    pub(crate) fn peers(weights: &[u32]) -> Vec<Arc<Peer>> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let mut s = ServerConfig::new(format!("127.0.0.1:{}", 9000 + i).parse().unwrap());
                s.weight = *w;
                Arc::new(Peer::new(&s, 1))
            })
            .collect()
    }

    #[test]
    fn nginx_sequence_5_1_1() {
        let p = peers(&[5, 1, 1]);
        let rr = Swrr::new(3);
        let seq: String = (0..14)
            .map(|_| (b'a' + rr.select(&p, 0..3, 0, 1000).unwrap() as u8) as char)
            .collect();
        assert_eq!(seq, "aabacaaaabacaa");
    }

    #[test]
    fn skips_tried() {
        let p = peers(&[1, 1]);
        let rr = Swrr::new(2);
        for _ in 0..5 {
            assert_eq!(rr.select(&p, 0..2, 0b01, 1000), Some(1));
        }
        assert_eq!(rr.select(&p, 0..2, 0b11, 1000), None);
    }
}
