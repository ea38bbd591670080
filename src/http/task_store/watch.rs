//! `watch`: a room's event stream, reconnecting with `Last-Event-ID`.

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Full};
use tokio::sync::broadcast;

use super::TaskId;

use super::*;

/// Queue length of a watch receiver.
pub(super) const WATCH_CAPACITY: usize = 256;
pub(super) const FIRST_RECONNECT_DELAY: Duration = Duration::from_millis(100);
pub(super) const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(5);

/// Follows `room`'s event stream into `sender` until no receiver is left.
pub(super) async fn follow(inner: Arc<Inner>, room: String, sender: broadcast::Sender<TaskId>) {
    let mut last_event_id: u64 = 0;
    let mut delay = FIRST_RECONNECT_DELAY;
    let url = format!("{}/api/rooms/{}/events", inner.base, segment(&room));
    while sender.receiver_count() > 0 {
        let request = Request::get(url.as_str())
            .header(header::AUTHORIZATION, inner.authorization.as_str())
            .header(header::ACCEPT, "text/event-stream")
            .header("last-event-id", last_event_id.to_string())
            .body(Full::new(Bytes::new()));
        let Ok(request) = request else { break };
        match inner.client.request(request).await {
            Ok(response) if response.status().is_success() => {
                delay = FIRST_RECONNECT_DELAY;
                let mut body = response.into_body();
                let mut parser = SseParser::default();
                while let Some(Ok(frame)) = body.frame().await {
                    if let Ok(data) = frame.into_data() {
                        for event in parser.push(&data) {
                            if let Some(id) = event.id {
                                last_event_id = id;
                            }
                            if let Some(task) = event.pending_task {
                                // No receiver left is seen below.
                                let _ = sender.send(task);
                            }
                        }
                    }
                    if sender.receiver_count() == 0 {
                        break;
                    }
                }
            }
            Ok(response) => {
                tracing::warn!(
                    room = %room,
                    status = response.status().as_u16(),
                    "the Task API refused the room's event stream; watch gets no notifications"
                );
                delay = MAX_RECONNECT_DELAY;
            }
            Err(error) => {
                tracing::debug!(room = %room, %error, "event stream connection failed");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RECONNECT_DELAY);
    }
    let mut watchers = inner
        .watchers
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if watchers.get(&room).is_some_and(|s| s.same_channel(&sender)) {
        watchers.remove(&room);
    }
}

/// One dispatched server-sent event, as `watch` needs it.
#[derive(Debug, Default, PartialEq)]
pub(super) struct SseEvent {
    /// Its `id:`, a sequence number.
    pub(super) id: Option<u64>,
    /// The task of a `data:` whose status is `PENDING`.
    pub(super) pending_task: Option<TaskId>,
}

/// A line-by-line reader of `text/event-stream`.
#[derive(Default)]
pub(super) struct SseParser {
    buffer: Vec<u8>,
    current: SseEvent,
    data: String,
}

impl SseParser {
    /// The events completed by `bytes`.
    pub(super) fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                let mut event = std::mem::take(&mut self.current);
                let data = std::mem::take(&mut self.data);
                if let Ok(value) = serde_json::from_str::<serde_json::Value>(&data)
                    && value.get("status").and_then(|s| s.as_str()) == Some("PENDING")
                {
                    event.pending_task = value.get("id").and_then(|s| s.as_str()).map(TaskId::from);
                }
                if event != SseEvent::default() {
                    events.push(event);
                }
            } else if let Some(id) = line.strip_prefix("id:") {
                self.current.id = id.trim().parse().ok();
            } else if let Some(data) = line.strip_prefix("data:") {
                self.data.push_str(data.strip_prefix(' ').unwrap_or(data));
            }
            // `event:` names and `:` comments (keep-alives) need nothing.
        }
        events
    }
}
