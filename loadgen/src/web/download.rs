//! `GET /download/{file}`: the run so far in Locust's file formats, produced
//! by the report writers from [`Controller::report`](crate::control::Controller::report).

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::WebState;
use crate::report::{self, RunReport};

/// Formats a report as one downloadable file.
type Writer = fn(&RunReport) -> String;

/// The downloadable files: name, media type, writer.
const FILES: &[(&str, &str, Writer)] = &[
    ("stats.csv", "text/csv; charset=utf-8", report::stats_csv),
    (
        "stats_history.csv",
        "text/csv; charset=utf-8",
        report::stats_history_csv,
    ),
    (
        "failures.csv",
        "text/csv; charset=utf-8",
        report::failures_csv,
    ),
    (
        "exceptions.csv",
        "text/csv; charset=utf-8",
        report::exceptions_csv,
    ),
    ("report.json", "application/json", report_json),
    (
        "report.html",
        "text/html; charset=utf-8",
        report::html_report,
    ),
];

fn report_json(report: &RunReport) -> String {
    // A RunReport is plain data (strings, numbers, vectors): serialization cannot fail.
    serde_json::to_string_pretty(report).unwrap_or_default()
}

/// `GET /download/{file}`.
pub async fn download(State(state): State<WebState>, Path(file): Path<String>) -> Response {
    let Some((name, content_type, write)) = FILES.iter().find(|(name, _, _)| *name == file) else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({
                "error": format!("no such download {file:?}; try one of: {}", names())
            })),
        )
            .into_response();
    };
    let controller = state.controller.clone();
    let write = *write;
    // Building a report merges histograms and formats every row: keep it off
    // the async workers that serve the event streams.
    let body = match tokio::task::spawn_blocking(move || write(&controller.report())).await {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, file = name, "dashboard: building a download failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "building the report failed\n",
            )
                .into_response();
        }
    };
    let disposition = format!("attachment; filename=\"loadgen_{name}\"");
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition)
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

fn names() -> String {
    FILES
        .iter()
        .map(|(n, _, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}
