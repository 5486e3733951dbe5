//! nginx's value syntax: times (`500ms`, `10s`, `1m30s`, a bare number is
//! seconds), sizes (`8k`, `1m`, a bare number is bytes) and the `key=value`
//! parameters of `server` and `queue` lines. Shared by the config-file parser
//! and the command-line flags so both accept exactly the same words.

use std::time::Duration;

/// Parses an nginx time such as `10s`, `500ms`, `1m30s`, `2h`, or `30`
/// (seconds). Units: `ms`, `s`, `m`, `h`, `d`, `w`, `M` (30 days), `y` (365 days).
pub fn parse_time(s: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid time value \"{s}\"");
    if s.is_empty() {
        return Err(invalid());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| invalid());
    }
    let bytes = s.as_bytes();
    let mut total_ms: u64 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(invalid());
        }
        let n: u64 = s[start..i].parse().map_err(|_| invalid())?;
        let unit_ms: u64 = if s[i..].starts_with("ms") {
            i += 2;
            1
        } else {
            let u = *bytes.get(i).ok_or_else(invalid)?;
            i += 1;
            match u {
                b's' => 1_000,
                b'm' => 60_000,
                b'h' => 3_600_000,
                b'd' => 86_400_000,
                b'w' => 7 * 86_400_000,
                b'M' => 30 * 86_400_000,
                b'y' => 365 * 86_400_000,
                _ => return Err(invalid()),
            }
        };
        total_ms = n
            .checked_mul(unit_ms)
            .and_then(|v| total_ms.checked_add(v))
            .ok_or_else(invalid)?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Parses an nginx size such as `1m`, `8k`, `1g` or `4096` (bytes).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let invalid = || format!("invalid size value \"{s}\"");
    let (digits, mult) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 1024),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 1024 * 1024),
        Some(b'g' | b'G') => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(invalid)
}

/// Parses a positive integer parameter (`weight=N`, `max_fails=N`, ...).
pub fn parse_number(what: &str, s: &str) -> Result<u32, String> {
    s.parse::<u32>()
        .map_err(|_| format!("invalid {what} value \"{s}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_time("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_time("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_time("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_time("1d").unwrap(), Duration::from_secs(86400));
        assert!(parse_time("").is_err());
        assert!(parse_time("10x").is_err());
        assert!(parse_time("s").is_err());
        assert!(parse_time("-1s").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1m").unwrap(), 1 << 20);
        assert_eq!(parse_size("8k").unwrap(), 8192);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("k").is_err());
        assert!(parse_size("1t").is_err());
    }
}
