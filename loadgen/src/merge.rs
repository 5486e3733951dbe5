//! `loadgen merge A.json B.json …`: exact statistics of a distributed test.
//!
//! Each segment's JSON report carries the serialized HDR histograms and the
//! sums of every row, so merging adds histograms and counters: the merged
//! percentiles are exactly those of one run that saw every request. Rates
//! are divided by the longest segment's duration (segments run side by
//! side). Per-second history is matched by wall-clock second (see
//! `stats::history::merge`).
//!
//! Adding is only right for the segments of one test, each counted once, so
//! the inputs are checked first ([`check`]): the same scenario, host and
//! model; all `I/N` segments of the same N (or all whole runs); no segment
//! or run twice. Missing segments are allowed (a machine may have failed),
//! with a warning in the merged report.

use std::collections::BTreeMap;

use crate::report::{HdrEntry, ReportMeta, RunReport};
use crate::stats::{self, history, Entry, Failures};

/// One input of a merge: a name for messages (the file) and its report.
pub type Input = (String, RunReport);

/// `"2/4"` → `(2, 4)`.
fn parse_segment(s: &str) -> Option<(u32, u32)> {
    let (i, n) = s.split_once('/')?;
    Some((i.trim().parse().ok()?, n.trim().parse().ok()?))
}

/// Refuses inputs whose sum would be wrong: reports of different tests,
/// segments of different splits, a segment or a run given twice. Returns
/// warnings for what is merely incomplete (missing segments).
pub fn check(inputs: &[Input]) -> Result<Vec<String>, String> {
    let (first_name, first) = inputs.first().ok_or("nothing to merge")?;
    for (name, r) in &inputs[1..] {
        for (what, a, b) in [
            ("scenario", &first.meta.scenario, &r.meta.scenario),
            ("host", &first.meta.host, &r.meta.host),
            ("model", &first.meta.model, &r.meta.model),
        ] {
            if a != b {
                return Err(format!(
                    "{first_name} and {name} are not parts of one test: {what} {a:?} vs {b:?}"
                ));
            }
        }
    }
    let mut segments: Vec<Option<(u32, u32)>> = Vec::new();
    for (name, r) in inputs {
        match r.meta.segment.as_deref() {
            None => segments.push(None),
            Some(s) => match parse_segment(s) {
                Some((i, n)) if i >= 1 && i <= n => segments.push(Some((i, n))),
                _ => {
                    return Err(format!(
                        "{name} is not one segment (its segment is {s:?}): merge the segments' own files"
                    ))
                }
            },
        }
    }
    for (k, (name, r)) in inputs.iter().enumerate() {
        for (other, o) in &inputs[..k] {
            if r == o {
                let which = if other == name {
                    format!("{name} is given twice")
                } else {
                    format!("{other} and {name} hold the same run")
                };
                return Err(format!(
                    "{which}: merging it twice would count its requests twice"
                ));
            }
        }
    }
    let Some(Some((_, count))) = segments.first().copied() else {
        if let Some(k) = segments.iter().position(Option::is_some) {
            return Err(format!(
                "{first_name} is a whole run but {} is a segment: merge either the segments of one test or whole runs",
                inputs[k].0
            ));
        }
        return Ok(Vec::new());
    };
    let mut seen: BTreeMap<u32, &str> = BTreeMap::new();
    for ((name, _), seg) in inputs.iter().zip(&segments) {
        let (i, n) = match seg {
            Some(s) => *s,
            None => {
                return Err(format!(
                    "{first_name} is a segment but {name} is a whole run: merge the segments of one test"
                ))
            }
        };
        if n != count {
            return Err(format!(
                "{first_name} is a segment of {count} but {name} is segment {i}/{n}: these are not parts of one test"
            ));
        }
        if let Some(other) = seen.insert(i, name) {
            return Err(format!(
                "{other} and {name} are both segment {i}/{count}: merging it twice would count its requests twice"
            ));
        }
    }
    let missing: Vec<String> = (1..=count)
        .filter(|i| !seen.contains_key(i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    Ok(if missing.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "segment(s) {} missing: the totals cover part of the test",
            missing.join(", ")
        )]
    })
}

/// Combines the reports of the segments of one test (see [`check`]).
pub fn merge(inputs: &[Input]) -> Result<RunReport, String> {
    let mut warnings = check(inputs)?;
    let reports: Vec<&RunReport> = inputs.iter().map(|(_, r)| r).collect();
    let first = reports[0];
    let mut rows: BTreeMap<(String, String), Entry> = BTreeMap::new();
    let mut total = Entry::new("", "Aggregated");
    let mut failures = Failures::default();
    let mut codes: BTreeMap<u16, u64> = BTreeMap::new();
    let mut duration: f64 = 0.0;
    let mut started = u64::MAX;
    let mut max_users = 0u32;
    let mut dropped = 0u64;
    let mut upstreams = None;
    for (i, r) in reports.iter().enumerate() {
        let Some((agg, per)) = r.hdr.split_last() else {
            return Err(format!("{} has no histograms", inputs[i].0));
        };
        if agg.name != "Aggregated" {
            return Err(format!(
                "{}: the last histogram is not the aggregate",
                inputs[i].0
            ));
        }
        let bad = |e: String| format!("{}: {e}", inputs[i].0);
        total.add(&agg.to_entry().map_err(bad)?);
        for h in per {
            let e = h.to_entry().map_err(bad)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{sample, Key, Names, StatsState};

    /// A one-request report of segment `segment` against `host`, started at `at`.
    fn report(host: &str, segment: Option<&str>, at: u64) -> RunReport {
        let mut names = Names::default();
        let id = names.intern("GET", "/a");
        let mut st = StatsState::new(names);
        st.record(sample(Key::Id(id), 10, false));
        let meta = ReportMeta {
            scenario: "demo".into(),
            host: host.into(),
            model: "closed".into(),
            segment: segment.map(str::to_string),
            started_at: at,
            duration_s: 1.0,
            max_users: 1,
        };
        RunReport::from_state(&st, meta)
    }

    fn inputs(reports: Vec<RunReport>) -> Vec<Input> {
        reports
            .into_iter()
            .enumerate()
            .map(|(i, r)| (format!("r{}.json", i + 1), r))
            .collect()
    }

    const HOST: &str = "http://127.0.0.1:1";

    #[test]
    fn segments_of_one_test_add_up() {
        let m = merge(&inputs(vec![
            report(HOST, Some("1/2"), 10),
            report(HOST, Some("2/2"), 11),
        ]))
        .unwrap();
        assert_eq!(m.counts(), (2, 0));
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        // Whole runs of the same test may be added too (each ran the full plan).
        let m = merge(&inputs(vec![
            report(HOST, None, 10),
            report(HOST, None, 20),
        ]))
        .unwrap();
        assert_eq!(m.counts(), (2, 0));
    }

    #[test]
    fn a_missing_segment_is_a_warning() {
        let m = merge(&inputs(vec![
            report(HOST, Some("1/3"), 10),
            report(HOST, Some("3/3"), 11),
        ]))
        .unwrap();
        assert_eq!(
            m.warnings,
            ["segment(s) 2/3 missing: the totals cover part of the test"]
        );
    }

    #[test]
    fn duplicates_and_strangers_are_refused() {
        let refused = |reports: Vec<RunReport>, want: &str| {
            let e = merge(&inputs(reports)).unwrap_err();
            assert!(e.contains(want), "{e:?} should say {want:?}");
        };
        let seg1 = report(HOST, Some("1/2"), 10);
        refused(
            vec![seg1.clone(), seg1.clone()],
            "r1.json and r2.json hold the same run",
        );
        refused(
            vec![seg1.clone(), report(HOST, Some("1/2"), 99)],
            "r1.json and r2.json are both segment 1/2",
        );
        let whole = report(HOST, None, 10);
        refused(vec![whole.clone(), whole.clone()], "the same run");
        refused(
            vec![seg1.clone(), report("http://127.0.0.1:2", Some("2/2"), 10)],
            "host \"http://127.0.0.1:1\" vs \"http://127.0.0.1:2\"",
        );
        let mut other = report(HOST, Some("2/2"), 10);
        other.meta.scenario = "shop".into();
        refused(vec![seg1.clone(), other], "scenario");
        refused(
            vec![seg1.clone(), report(HOST, Some("2/3"), 10)],
            "segment of 2 but r2.json is segment 2/3",
        );
        refused(vec![seg1.clone(), whole.clone()], "is a whole run");
        refused(vec![whole, seg1.clone()], "is a segment");
        refused(
            vec![seg1, report(HOST, Some("merged from 2"), 10)],
            "r2.json is not one segment",
        );
    }
}
