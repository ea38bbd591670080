//! [`ResponseBody`]: a complete JSON document, or a server-sent event stream.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::service::ServiceBody;
use crate::task::{Subscription, TaskEvent};

/// The Task API's response body: a complete JSON document for every answer
/// but the event routes, whose body is a `text/event-stream` that ends only
/// when the client goes away or is cut off.
///
/// Other services' bodies ([`ServiceBody`]) convert into it with `From`, so
/// one server can answer with either.
#[derive(Debug)]
pub struct ResponseBody {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Full(ServiceBody),
    Events(Box<EventStream>),
}

impl From<ServiceBody> for ResponseBody {
    fn from(body: ServiceBody) -> Self {
        Self {
            kind: Kind::Full(body),
        }
    }
}

impl ResponseBody {
    pub(crate) fn events(stream: EventStream) -> Self {
        Self {
            kind: Kind::Events(Box::new(stream)),
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.get_mut().kind {
            Kind::Full(full) => Pin::new(full).poll_frame(cx),
            Kind::Events(stream) => stream
                .poll_next(cx)
                .map(|chunk| chunk.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(full) => full.is_end_stream(),
            Kind::Events(stream) => stream.ended,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(full) => full.size_hint(),
            Kind::Events(_) => SizeHint::default(),
        }
    }
}

/// The server-sent event stream over one hub subscription.
#[derive(Debug)]
pub(crate) struct EventStream {
    subscription: Subscription,
    /// Written before anything else (retry hint, resync notice).
    queued: VecDeque<Bytes>,
    keep_alive: tokio::time::Interval,
    ended: bool,
}

impl EventStream {
    /// Streams `subscription`, with a keep-alive comment after every
    /// `keep_alive` without an event.
    pub(crate) fn new(subscription: Subscription, keep_alive: Duration) -> Self {
        let mut queued = VecDeque::new();
        queued.push_back(Bytes::from_static(b"retry: 2000\n\n"));
        if subscription.missed() {
            queued.push_back(Bytes::from_static(
                b"event: resync\ndata: {\"reason\":\"events after Last-Event-ID are no longer buffered\"}\n\n",
            ));
        }
        let keep_alive = keep_alive.max(Duration::from_millis(10));
        let mut interval =
            tokio::time::interval_at(tokio::time::Instant::now() + keep_alive, keep_alive);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self {
            subscription,
            queued,
            keep_alive: interval,
            ended: false,
        }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if let Some(chunk) = self.queued.pop_front() {
            return Poll::Ready(Some(chunk));
        }
        match self.subscription.poll_recv(cx) {
            Poll::Ready(Some(event)) => {
                self.keep_alive.reset();
                return Poll::Ready(Some(format_event(&event)));
            }
            Poll::Ready(None) => {
                self.ended = true;
                return Poll::Ready(self.subscription.is_cut_off().then(|| {
                    Bytes::from_static(
                        b": cut off: this client fell too far behind; reconnect with Last-Event-ID\n\n",
                    )
                }));
            }
            Poll::Pending => {}
        }
        match self.keep_alive.poll_tick(cx) {
            Poll::Ready(_) => Poll::Ready(Some(Bytes::from_static(b": keep-alive\n\n"))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// `id`, `event` and one `data` line (compact JSON has no newline).
fn format_event(event: &TaskEvent) -> Bytes {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".to_owned());
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {data}\n\n",
        event.seq, event.kind
    ))
}
