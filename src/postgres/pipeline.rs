//! Pipelining on a tokio-postgres connection: a request is sent when its
//! future is first polled, so requests polled once in order go out in that
//! order, and the server answers them in that order, in one round trip.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// A request polled once, so that the driver has sent it: requests sent
/// one after another go out in that order and the server answers them in
/// that order (pipelining), while each is awaited in turn.
pub(crate) enum Sent<F: Future> {
    Waiting(Pin<Box<F>>),
    Answered(Option<F::Output>),
}

/// Sends `request` now (tokio-postgres queues a request to its connection
/// when the request's future is first polled) and returns it to await.
pub(crate) fn send<F: Future>(request: F) -> Sent<F> {
    let mut request = Box::pin(request);
    match request
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(out) => Sent::Answered(Some(out)),
        Poll::Pending => Sent::Waiting(request),
    }
}

impl<F: Future> Future for Sent<F>
where
    F::Output: Unpin,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        match self.get_mut() {
            Sent::Waiting(request) => request.as_mut().poll(cx),
            // Polled again after its answer: never ready again.
            Sent::Answered(out) => out.take().map_or(Poll::Pending, Poll::Ready),
        }
    }
}
