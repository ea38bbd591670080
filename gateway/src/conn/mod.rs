//! Serving the gateway over HTTP/1 with the limits a public endpoint needs:
//!
//! - header-read timeout: from a connection's first byte (or its opening)
//!   to the end of a request's headers; past it the connection is closed;
//! - whole-request timeout: from the end of the headers to the answer
//!   (reading the body included); past it the answer is
//!   `408 request_timeout` and the connection is closed;
//! - idle keep-alive timeout: between an answer and the next request's
//!   first byte; past it the connection is closed;
//! - a maximum number of open connections: beyond it, new connections wait
//!   in the listen backlog until one closes.
//!
//! Each request gets the socket's peer as [`PeerAddr`].
//!
//! An answer counts as in progress until its body has ended (or was
//! dropped), so a streamed answer (the Task API's server-sent events) is
//! not cut by the idle keep-alive timeout.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tower_service::Service;

use hookroom::service::{IngestError, PeerAddr};

/// The connection limits; [`Limits::default`] is 10 s, 30 s, 60 s, 10 000.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) header_read_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
        }
    }
}

/// Where a connection is in its request cycle, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request's headers (from the first byte, or the opening).
    Head,
    /// Headers read; the gateway is answering (its own timeout applies).
    Busy,
    /// Answered; waiting for the next request's first byte.
    Idle,
}

#[derive(Debug)]
struct Watch {
    phase: Mutex<(Phase, Instant)>,
    changed: Notify,
}

impl Watch {
    fn set(&self, from: Option<Phase>, to: Phase) {
        let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        if from.is_none_or(|from| phase.0 == from) {
            *phase = (to, Instant::now());
            self.changed.notify_one();
        }
    }

    /// When the current phase runs out, if it can.
    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        let (phase, since) = *self.phase.lock().unwrap_or_else(|e| e.into_inner());
        match phase {
            Phase::Head => Some(since + limits.header_read_timeout),
            Phase::Idle => Some(since + limits.idle_timeout),
            Phase::Busy => None,
        }
    }
}

/// The socket, noting the first byte of a request after an idle spell.
struct Watched {
    stream: TcpStream,
    watch: Arc<Watch>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.watch.set(Some(Phase::Idle), Phase::Head);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// An answer's body; the connection goes idle once it has ended or was
/// dropped.
struct Answer<B> {
    body: B,
    watch: Option<Arc<Watch>>,
}

impl<B> Answer<B> {
    fn done(&mut self) {
        if let Some(watch) = self.watch.take() {
            watch.set(Some(Phase::Busy), Phase::Idle);
        }
    }
}

impl<B> Drop for Answer<B> {
    fn drop(&mut self) {
        self.done();
    }
}

impl<B: Body + Unpin> Body for Answer<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.body.is_end_stream() {
            self.done();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Serves `service` (the gateway's router) on `listener` within `limits` until
/// `shutdown` resolves, then lets in-flight requests finish (for at most
/// 10 s).
pub(crate) async fn serve<S>(
    listener: TcpListener,
    service: S,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) where
    S: Service<Request<Incoming>, Response = Response<axum::body::Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A slot first: beyond the limit, connections wait in the backlog.
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    eprintln!("accept: {error}");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let watch = Arc::new(Watch {
            phase: Mutex::new((Phase::Head, Instant::now())),
            changed: Notify::new(),
        });
        let gateway = service.clone();
        let requests = Arc::clone(&watch);
        let handler = service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(PeerAddr(peer));
            requests.set(None, Phase::Busy);
            let answer =
                tokio::time::timeout(limits.request_timeout, gateway.clone().call(request));
            let requests = Arc::clone(&requests);
            async move {
                let response = match answer.await {
                    Ok(Ok(response)) => response,
                    Ok(Err(never)) => match never {},
                    Err(_elapsed) => IngestError::RequestTimeout
                        .to_response()
                        .map(axum::body::Body::new),
                };
                Ok::<_, Infallible>(response.map(|body| Answer {
                    body,
                    watch: Some(requests),
                }))
            }
        });
        let io = TokioIo::new(Watched {
            stream,
            watch: Arc::clone(&watch),
        });
        let connection = graceful.watch(http1::Builder::new().serve_connection(io, handler));
        tokio::spawn(async move {
            let _slot = slot;
            let mut connection = std::pin::pin!(connection);
            loop {
                let deadline = watch.deadline(&limits);
                let expired = async {
                    match deadline {
                        Some(deadline) => tokio::time::sleep_until(deadline).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = &mut connection => break,
                    () = watch.changed.notified() => {}
                    () = expired => {
                        // Re-read: the phase may have moved on meanwhile.
                        if watch.deadline(&limits).is_some_and(|d| d <= Instant::now()) {
                            break; // dropping the connection closes it
                        }
                    }
                }
            }
        });
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(10)) => eprintln!("gave up waiting after 10 s"),
    }
}

#[cfg(test)]
mod tests;
