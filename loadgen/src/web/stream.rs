//! `GET /api/stream`: the controller's snapshots as Server-Sent Events.
//!
//! One small task per open page waits on the controller's `watch` channel
//! and writes an event each time a new snapshot is published (about once a
//! second while running, and on every state change). The first event of a
//! connection carries the whole history (`"history_full": true`); later ones
//! carry only the points from the last one sent on, so an hour-long run does
//! not resend an hour of history every second. The page merges them.
//!
//! The body is a plain [`hyper::body::Body`] over an mpsc receiver, so no
//! stream-combinator crate is needed. The task ends when the page goes away
//! (the receiver is dropped), when the controller is dropped, or when the
//! server shuts down; a comment line every 15 s keeps idle proxies from
//! closing the connection and notices a vanished client.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use hyper::body::Frame;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use super::WebState;
use crate::snapshot::Snapshot;

/// Interval of the keep-alive comment when no snapshot arrives.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The response body: whatever the pump task sends, as data frames.
struct EventBody {
    rx: mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for EventBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

/// `GET /api/stream`.
pub async fn stream(State(state): State<WebState>) -> Response {
    // Two chunks of buffer: a page that stops reading holds back its own
    // task only; snapshots are never queued up behind it.
    let (tx, rx) = mpsc::channel(2);
    tokio::spawn(pump(state.controller.subscribe(), tx, state.shutdown));
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            // Ask reverse proxies (nginx) not to buffer the stream.
            (
                header::HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        Body::new(EventBody { rx }),
    )
        .into_response()
}

/// Writes one event per published snapshot until the page, the controller or
/// the server goes away.
async fn pump(
    mut snapshots: watch::Receiver<std::sync::Arc<Snapshot>>,
    tx: mpsc::Sender<Bytes>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Reconnect after 2 s instead of the browser's default 3 s.
    if tx
        .send(Bytes::from_static(b"retry: 2000\n\n"))
        .await
        .is_err()
    {
        return;
    }
    let mut cursor = HistoryCursor::default();
    loop {
        let snap = snapshots.borrow_and_update().clone();
        let event = match encode(&snap, &mut cursor) {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(error = %e, "dashboard: cannot encode a snapshot");
                return;
            }
        };
        if tx.send(event).await.is_err() {
            return;
        }
        // Wait for the next snapshot, sending keep-alives meanwhile. The
        // keep-alive is sent after `select!` so that no branch future (the
        // shutdown `wait_for` holds a non-`Send` guard) is alive across it.
        loop {
            let keep_alive = tokio::select! {
                changed = snapshots.changed() => {
                    if changed.is_err() {
                        return; // controller dropped: nothing more will come
                    }
                    false
                }
                () = tx.closed() => return,
                _ = shutdown.wait_for(|stop| *stop) => return,
                () = tokio::time::sleep(KEEP_ALIVE) => true,
            };
            if !keep_alive {
                break;
            }
            if tx
                .send(Bytes::from_static(b": keep-alive\n\n"))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// Where the last event of a connection ended in the snapshot history.
#[derive(Default)]
struct HistoryCursor {
    /// `time` of the newest history point sent, if any was.
    last_time: Option<Value>,
}

/// Encodes `snap` as one `data:` event, with only the history the page does
/// not have yet. The newest point already sent is sent again, since the
/// newest second may have been updated since.
fn encode(snap: &Snapshot, cursor: &mut HistoryCursor) -> Result<Bytes, serde_json::Error> {
    let mut value = serde_json::to_value(snap)?;
    if let Value::Object(map) = &mut value {
        let mut full = true;
        if let Some(Value::Array(history)) = map.get_mut("history") {
            let resume_at = cursor
                .last_time
                .as_ref()
                .and_then(|last| history.iter().rposition(|p| p.get("time") == Some(last)));
            if let Some(i) = resume_at {
                history.drain(..i);
                full = false;
            }
            cursor.last_time = history.last().and_then(|p| p.get("time")).cloned();
        }
        map.insert("history_full".into(), Value::Bool(full));
    }
    // `serde_json` writes no raw newlines, so the whole snapshot fits one `data:` line.
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(b"data: ");
    serde_json::to_writer(&mut out, &value)?;
    out.extend_from_slice(b"\n\n");
    Ok(Bytes::from(out))
}
