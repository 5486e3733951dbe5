//! `loadgen merge A.json B.json …`: exact statistics of a distributed test.
//!
//! Each segment's JSON report carries the serialized HDR histograms and the
//! sums of every row, so merging adds histograms and counters: the merged
//! percentiles are exactly those of one run that saw every request. Rates
//! are divided by the longest segment's duration (segments run side by
//! side). Per-second history is matched by wall-clock second (see
//! `stats::history::merge`).

use std::collections::BTreeMap;

use crate::report::{HdrEntry, ReportMeta, RunReport};
use crate::stats::{self, history, Entry, Failures};

/// Combines reports of segments of one test.
pub fn merge(reports: &[RunReport]) -> Result<RunReport, String> {
    let first = reports.first().ok_or("nothing to merge")?;
    let mut rows: BTreeMap<(String, String), Entry> = BTreeMap::new();
    let mut total = Entry::new("", "Aggregated");
    let mut failures = Failures::default();
    let mut codes: BTreeMap<u16, u64> = BTreeMap::new();
    let mut warnings = Vec::new();
    let mut duration: f64 = 0.0;
    let mut started = u64::MAX;
    let mut max_users = 0u32;
    let mut dropped = 0u64;
    let mut upstreams = None;
    for (i, r) in reports.iter().enumerate() {
        let Some((agg, per)) = r.hdr.split_last() else {
            return Err(format!("report {} has no histograms", i + 1));
        };
        if agg.name != "Aggregated" {
            return Err(format!(
                "report {}: the last histogram is not the aggregate",
                i + 1
            ));
        }
        total.add(&agg.to_entry()?);
        for h in per {
            let e = h.to_entry()?;
            rows.entry((h.name.clone(), h.method.clone()))
                .and_modify(|x| x.add(&e))
                .or_insert(e);
        }
        for f in &r.failures {
            failures.add_row(f);
        }
        for (c, n) in &r.status_codes {
            *codes.entry(*c).or_insert(0) += n;
        }
        for w in &r.warnings {
            let w = format!("{}: {w}", r.meta.segment.as_deref().unwrap_or("segment"));
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
        duration = duration.max(r.meta.duration_s);
        started = started.min(r.meta.started_at);
        max_users += r.meta.max_users;
        dropped += r.dropped_iterations;
        if r.upstreams.is_some() {
            upstreams = r.upstreams.clone();
        }
    }
    let mut stats_rows: Vec<_> = rows.values().map(|e| e.row(duration)).collect();
    stats_rows.push(total.row(duration));
    let mut hdr: Vec<HdrEntry> = rows.values().map(HdrEntry::from_entry).collect();
    hdr.push(HdrEntry::from_entry(&total));
    let series: Vec<&[stats::HistoryPoint]> =
        reports.iter().map(|r| r.history.as_slice()).collect();
    Ok(RunReport {
        loadgen_version: env!("CARGO_PKG_VERSION").to_string(),
        meta: ReportMeta {
            segment: Some(format!("merged from {}", reports.len())),
            started_at: if started == u64::MAX { 0 } else { started },
            duration_s: duration,
            max_users,
            ..first.meta.clone()
        },
        stats: stats_rows,
        failures: failures.rows(),
        status_codes: codes.into_iter().collect(),
        history: history::merge(&series),
        histogram: stats::buckets(&total.hist),
        dropped_iterations: dropped,
        thresholds: Vec::new(),
        warnings,
        upstreams,
        hdr,
    })
}
