//! Failures grouped by (method, name, kind, message), with occurrence counts
//! and when each group was first and last seen (Locust's `_failures.csv`
//! columns `First Seen` and `Last Seen`).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Why a request counted as failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// The TCP connection could not be made (refused, unreachable, DNS).
    Connect,
    /// No complete response within the per-request timeout.
    Timeout,
    /// The response status was 400 or above (Locust's rule) or not the expected one.
    Status,
    /// A `check` on the body failed.
    Check,
    /// A `capture` found nothing at its JSON path.
    Capture,
    /// The connection broke while sending or receiving.
    Io,
}

impl FailureKind {
    /// The lowercase word used in reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            FailureKind::Connect => "connect",
            FailureKind::Timeout => "timeout",
            FailureKind::Status => "status",
            FailureKind::Check => "check",
            FailureKind::Capture => "capture",
            FailureKind::Io => "io",
        }
    }
}

/// What went wrong with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The kind.
    pub kind: FailureKind,
    /// Details (`HTTP 503 Service Unavailable`, `connection refused`, …).
    pub message: String,
}

/// One grouped failure (a row of `_failures.csv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureRow {
    /// HTTP method.
    pub method: String,
    /// Request name.
    pub name: String,
    /// The kind, separately, for filtering.
    pub kind: FailureKind,
    /// `kind: message`, as shown in the `Error` column.
    pub error: String,
    /// How many times it happened.
    pub occurrences: u64,
    /// First occurrence, Unix seconds.
    #[serde(default)]
    pub first_seen: Option<u64>,
    /// Last occurrence, Unix seconds.
    #[serde(default)]
    pub last_seen: Option<u64>,
}

/// Occurrences of one group and when they happened (Unix seconds).
#[derive(Debug, Clone, Copy)]
struct Seen {
    count: u64,
    first: Option<u64>,
    last: Option<u64>,
}

impl Seen {
    fn add(&mut self, n: u64, first: Option<u64>, last: Option<u64>) {
        self.count += n;
        self.first = match (self.first, first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last = self.last.max(last);
    }
}

/// The failure table.
#[derive(Debug, Default, Clone)]
pub struct Failures {
    map: HashMap<(String, String, FailureKind, String), Seen>,
}

impl Failures {
    /// Counts `n` occurrences of one failure, seen at `now_s` (Unix seconds).
    pub fn add(&mut self, method: &str, name: &str, f: &Failure, n: u64, now_s: u64) {
        self.add_seen(method, name, f, n, Some(now_s), Some(now_s));
    }

    fn add_seen(
        &mut self,
        method: &str,
        name: &str,
        f: &Failure,
        n: u64,
        first: Option<u64>,
        last: Option<u64>,
    ) {
        // Look up by reference first: allocating the key only for a new group.
        if let Some(c) = self.map.iter_mut().find_map(|(k, v)| {
            (k.2 == f.kind && k.0 == method && k.1 == name && k.3 == f.message).then_some(v)
        }) {
            c.add(n, first, last);
            return;
        }
        self.map.insert(
            (
                method.to_string(),
                name.to_string(),
                f.kind,
                f.message.clone(),
            ),
            Seen {
                count: n,
                first,
                last,
            },
        );
    }

    /// The rows, most frequent first (ties by name).
    pub fn rows(&self) -> Vec<FailureRow> {
        let mut rows: Vec<FailureRow> = self
            .map
            .iter()
            .map(|((m, n, k, msg), seen)| FailureRow {
                method: m.clone(),
                name: n.clone(),
                kind: *k,
                error: format!("{}: {msg}", k.as_str()),
                occurrences: seen.count,
                first_seen: seen.first,
                last_seen: seen.last,
            })
            .collect();
        rows.sort_by(|a, b| {
            b.occurrences
                .cmp(&a.occurrences)
                .then_with(|| a.name.cmp(&b.name))
                .then_with(|| a.error.cmp(&b.error))
        });
        rows
    }

    /// Adds rows read back from a report (merge).
    pub fn add_row(&mut self, r: &FailureRow) {
        let prefix = format!("{}: ", r.kind.as_str());
        let msg = r
            .error
            .strip_prefix(&prefix)
            .unwrap_or(&r.error)
            .to_string();
        self.add_seen(
            &r.method,
            &r.name,
            &Failure {
                kind: r.kind,
                message: msg,
            },
            r.occurrences,
            r.first_seen,
            r.last_seen,
        );
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_round_trips() {
        let mut f = Failures::default();
        let refused = Failure {
            kind: FailureKind::Connect,
            message: "connection refused".into(),
        };
        f.add("GET", "/", &refused, 1, 100);
        f.add("GET", "/", &refused, 2, 105);
        f.add(
            "GET",
            "/",
            &Failure {
                kind: FailureKind::Status,
                message: "HTTP 503".into(),
            },
            1,
            101,
        );
        let rows = f.rows();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].occurrences, 3);
        assert_eq!(rows[0].error, "connect: connection refused");
        assert_eq!(
            (rows[0].first_seen, rows[0].last_seen),
            (Some(100), Some(105))
        );
        let mut g = Failures::default();
        for r in &rows {
            g.add_row(r);
        }
        assert_eq!(g.rows(), rows);
    }
}
