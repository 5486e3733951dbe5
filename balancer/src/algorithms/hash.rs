//! nginx's hash methods, bit for bit where it matters for stability:
//!
//! - `ip_hash` (`ngx_http_upstream_get_ip_hash_peer`): `hash = 89`, then
//!   `hash = (hash * 113 + byte) % 6271` over the first three octets of an
//!   IPv4 address (all 16 bytes of IPv6), `w = hash % total_weight`, walk
//!   the weights; an unavailable pick rehashes; after 20 tries, round robin.
//! - `hash KEY` (`ngx_http_upstream_get_hash_peer`), Cache::Memcached
//!   compatible: `hash += (crc32([tries] KEY) >> 16) & 0x7fff`.
//! - `hash KEY consistent` (ketama, `ngx_http_upstream_init_chash`): 160
//!   points per unit of weight, point `j` of a server is
//!   `crc32(host "\0" port prev_hash_le)`; a key goes to the first point at
//!   or after `crc32(KEY)` and walks the ring past unavailable servers.
//!   Removing one of N servers moves only about 1/N of the keys.

use std::net::IpAddr;
use std::ops::Range;
use std::sync::Arc;

use super::candidate;
use super::round_robin::Swrr;
use crate::upstream::peer::Peer;

/// CRC-32 (IEEE), the one nginx uses (`ngx_crc32_*`), as an update over a
/// running value: start with `!0`, finish with `!`.
fn crc32_update(mut crc: u32, data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *e = c;
        }
        t
    });
    for &b in data {
        crc = table[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// CRC-32 of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    !crc32_update(!0, data)
}

/// Walks the configured weights of `tier` to the peer owning `w`.
fn by_weight(peers: &[Arc<Peer>], tier: &Range<usize>, mut w: u64) -> usize {
    for i in tier.clone() {
        let pw = peers[i].weight() as u64;
        if w < pw {
            return i;
        }
        w -= pw;
    }
    tier.end - 1
}

fn total_weight(peers: &[Arc<Peer>], tier: &Range<usize>) -> u64 {
    tier.clone()
        .map(|i| peers[i].weight() as u64)
        .sum::<u64>()
        .max(1)
}

/// nginx `ip_hash`.
pub fn ip_hash(
    rr: &Swrr,
    peers: &[Arc<Peer>],
    tier: Range<usize>,
    ip: IpAddr,
    skip: u128,
    now: u64,
) -> Option<usize> {
    if tier.len() < 2 {
        return rr.select(peers, tier, skip, now);
    }
    let v4;
    let v6;
    let bytes: &[u8] = match ip {
        IpAddr::V4(a) => {
            v4 = a.octets();
            &v4[..3]
        }
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(m) => {
                v4 = m.octets();
                &v4[..3]
            }
            None => {
                v6 = a.octets();
                &v6[..]
            }
        },
    };
    let total = total_weight(peers, &tier);
    let mut hash: u64 = 89;
    for _ in 0..=20 {
        for &b in bytes {
            hash = (hash * 113 + b as u64) % 6271;
        }
        let i = by_weight(peers, &tier, hash % total);
        if candidate(peers, i, skip, now) {
            return Some(i);
        }
    }
    rr.select(peers, tier, skip, now)
}

/// nginx `hash KEY` (not consistent).
pub fn hash(
    rr: &Swrr,
    peers: &[Arc<Peer>],
    tier: Range<usize>,
    key: &[u8],
    skip: u128,
    now: u64,
) -> Option<usize> {
    if tier.len() < 2 {
        return rr.select(peers, tier, skip, now);
    }
    let total = total_weight(peers, &tier);
    let mut acc: u64 = 0;
    let mut buf = itoa_buf();
    for rehash in 0..=20u32 {
        let mut c = !0u32;
        if rehash > 0 {
            c = crc32_update(c, fmt_u32(&mut buf, rehash));
        }
        c = !crc32_update(c, key);
        acc += ((c >> 16) & 0x7fff) as u64;
        let i = by_weight(peers, &tier, acc % total);
        if candidate(peers, i, skip, now) {
            return Some(i);
        }
    }
    rr.select(peers, tier, skip, now)
}

fn itoa_buf() -> [u8; 10] {
    [0; 10]
}

fn fmt_u32(buf: &mut [u8; 10], mut n: u32) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// The ketama ring of `hash KEY consistent`.
#[derive(Debug)]
pub struct Ketama {
    /// (point hash, peer index), sorted, duplicates removed.
    points: Vec<(u32, usize)>,
}

impl Ketama {
    /// Builds the ring from the configured weights.
    pub fn new(peers: &[Arc<Peer>]) -> Self {
        let mut points = Vec::new();
        for (idx, p) in peers.iter().enumerate() {
            let name = p.name.as_bytes();
            // nginx splits "host:port" at the last colon followed by digits.
            let (host, port) = match p.name.rfind(':') {
                Some(c) => (&name[..c], &name[c + 1..]),
                None => (name, &b""[..]),
            };
            let mut base = crc32_update(!0, host);
            base = crc32_update(base, b"\0");
            base = crc32_update(base, port);
            let mut prev: u32 = 0;
            for _ in 0..p.weight() * 160 {
                let h = !crc32_update(base, &prev.to_le_bytes());
                points.push((h, idx));
                prev = h;
            }
        }
        points.sort_unstable();
        points.dedup_by_key(|p| p.0);
        Ketama { points }
    }

    /// Picks the server owning `key`, walking the ring past unavailable ones.
    pub fn select(
        &self,
        rr: &Swrr,
        peers: &[Arc<Peer>],
        tier: Range<usize>,
        key: &[u8],
        skip: u128,
        now: u64,
    ) -> Option<usize> {
        if self.points.is_empty() {
            return rr.select(peers, tier, skip, now);
        }
        let h = crc32(key);
        let start = self.points.partition_point(|p| p.0 < h);
        for at in start..=start + 20 {
            let i = self.points[at % self.points.len()].1;
            if tier.contains(&i) && candidate(peers, i, skip, now) {
                return Some(i);
            }
        }
        rr.select(peers, tier, skip, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;

    fn peers(n: usize) -> Vec<Arc<Peer>> {
        (0..n)
            .map(|i| {
                let s = ServerConfig::new(format!("10.0.0.{}:80", i + 1).parse().unwrap());
                Arc::new(Peer::new(&s, 1))
            })
            .collect()
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn ip_hash_uses_first_three_octets() {
        let p = peers(4);
        let rr = Swrr::new(4);
        let a = ip_hash(&rr, &p, 0..4, "192.168.1.10".parse().unwrap(), 0, 1000);
        for last in [1u8, 77, 254] {
            let ip = IpAddr::from([192, 168, 1, last]);
            assert_eq!(ip_hash(&rr, &p, 0..4, ip, 0, 1000), a);
        }
        let spread: std::collections::HashSet<_> = (0..64u8)
            .map(|c| ip_hash(&rr, &p, 0..4, IpAddr::from([10, 1, c, 1]), 0, 1000))
            .collect();
        assert!(spread.len() > 1);
    }

    #[test]
    fn consistent_moves_about_one_nth() {
        let p = peers(4);
        let ring = Ketama::new(&p);
        let rr = Swrr::new(4);
        let keys: Vec<String> = (0..4000).map(|i| format!("/item/{i}")).collect();
        let before: Vec<_> = keys
            .iter()
            .map(|k| ring.select(&rr, &p, 0..4, k.as_bytes(), 0, 1000).unwrap())
            .collect();
        // Server 2 is skipped (as if gone): only its keys move.
        let after: Vec<_> = keys
            .iter()
            .map(|k| {
                ring.select(&rr, &p, 0..4, k.as_bytes(), 1 << 2, 1000)
                    .unwrap()
            })
            .collect();
        let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        assert!(before.iter().zip(&after).all(|(a, b)| a == b || *a == 2));
        let share = moved as f64 / keys.len() as f64;
        assert!((0.15..0.35).contains(&share), "moved {share}");
    }
}
