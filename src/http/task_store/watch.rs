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
                let mut parser = SseParser::new(inner.max_event_bytes);
                while let Some(Ok(frame)) = body.frame().await {
                    if let Ok(data) = frame.into_data() {
                        let events = parser.push(&data);
                        let skipped = parser.take_skipped();
                        if skipped > 0 {
                            let error = HttpStoreError::EventTooLarge {
                                limit: inner.max_event_bytes,
                            };
                            tracing::warn!(room = %room, skipped, %error, "watch skipped events");
                        }
                        for event in events {
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

/// A line-by-line reader of `text/event-stream` that buffers at most
/// `limit` bytes of one event (its unfinished line and its `data:`): a
/// longer event is dropped whole, counted in `skipped`, and reading goes on
/// at the next blank line.
pub(super) struct SseParser {
    buffer: Vec<u8>,
    current: SseEvent,
    data: String,
    limit: usize,
    /// Inside an event too long to keep, until its blank line.
    skipping: bool,
    /// While skipping: whether the last byte seen ended a line.
    at_line_start: bool,
    /// Events dropped for their size since the last [`take_skipped`](Self::take_skipped).
    skipped: usize,
}

impl SseParser {
    /// A parser keeping at most `limit` bytes of one event.
    pub(super) fn new(limit: usize) -> Self {
        Self {
            buffer: Vec::new(),
            current: SseEvent::default(),
            data: String::new(),
            limit,
            skipping: false,
            at_line_start: false,
            skipped: 0,
        }
    }

    /// How many bytes of the event being read are held.
    #[cfg(test)]
    pub(super) fn buffered(&self) -> usize {
        self.buffer.len() + self.data.len()
    }

    /// How many events were dropped for their size since the last call.
    pub(super) fn take_skipped(&mut self) -> usize {
        std::mem::take(&mut self.skipped)
    }

    /// The events completed by `bytes`.
    pub(super) fn push(&mut self, mut bytes: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while !bytes.is_empty() {
            if self.skipping {
                bytes = self.skip(bytes);
                continue;
            }
            // Only up to the end of the next line is taken in, so that the
            // buffer never holds more than one line beyond the limit check.
            let take = bytes
                .iter()
                .position(|b| *b == b'\n')
                .map_or(bytes.len(), |end| end + 1);
            if self.buffer.len() + self.data.len() + take > self.limit {
                self.start_skipping(&bytes[..take]);
                bytes = &bytes[take..];
                continue;
            }
            self.buffer.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buffer.last() == Some(&b'\n') {
                let line = std::mem::take(&mut self.buffer);
                if let Some(event) = self.line(&line) {
                    events.push(event);
                }
            }
        }
        events
    }

    /// Drops the event being read; `rest` is the part of a line that did
    /// not fit.
    fn start_skipping(&mut self, rest: &[u8]) {
        self.buffer.clear();
        self.data.clear();
        self.current = SseEvent::default();
        self.skipped += 1;
        self.skipping = true;
        // A line that ends in `rest` is over; one that does not goes on.
        self.at_line_start = rest.last() == Some(&b'\n');
    }

    /// Reads past the dropped event up to its blank line; the bytes after it.
    fn skip<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        for (i, byte) in bytes.iter().enumerate() {
            match byte {
                b'\n' if self.at_line_start => {
                    self.skipping = false;
                    return &bytes[i + 1..];
                }
                b'\n' => self.at_line_start = true,
                b'\r' => {}
                _ => self.at_line_start = false,
            }
        }
        &[]
    }

    /// Handles one whole line (with its line end); the event it completes.
    fn line(&mut self, line: &[u8]) -> Option<SseEvent> {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches(['\n', '\r']);
        if line.is_empty() {
            let mut event = std::mem::take(&mut self.current);
            let data = std::mem::take(&mut self.data);
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&data)
                && value.get("status").and_then(|s| s.as_str()) == Some("PENDING")
            {
                event.pending_task = value.get("id").and_then(|s| s.as_str()).map(TaskId::from);
            }
            return (event != SseEvent::default()).then_some(event);
        } else if let Some(id) = line.strip_prefix("id:") {
            self.current.id = id.trim().parse().ok();
        } else if let Some(data) = line.strip_prefix("data:") {
            self.data.push_str(data.strip_prefix(' ').unwrap_or(data));
        }
        // `event:` names and `:` comments (keep-alives) need nothing.
        None
    }
}
