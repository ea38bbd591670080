//! Reading a request body into memory under a size limit.

use bytes::{Buf, Bytes};
use http::{HeaderMap, header};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::error::IngestError;

/// The most a body buffer reserves before any byte has arrived, whatever
/// `Content-Length` says: a client that declares a large body and sends
/// nothing must not make the server hold the whole limit for it. The buffer
/// grows as bytes arrive.
pub(crate) const INITIAL_BODY_CAPACITY: usize = 16 * 1024;

/// Reads `body`, refusing a declared length over `limit` before reading
/// anything and an undeclared one as soon as it crosses it.
///
/// The bytes are copied into one allocation of exactly their size: a body
/// that arrived as a single chunk is otherwise a view into the connection's
/// read buffer, and keeping it (as a task payload, say) would keep that whole
/// buffer alive.
pub(crate) async fn read_limited<B>(
    headers: &HeaderMap,
    body: B,
    limit: usize,
) -> Result<Bytes, IngestError>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(IngestError::PayloadTooLarge { limit });
    }
    let mut bytes = Vec::with_capacity(initial_capacity(declared));
    let mut body = std::pin::pin!(Limited::new(body, limit));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| {
            if error.is::<LengthLimitError>() {
                IngestError::PayloadTooLarge { limit }
            } else {
                IngestError::BodyRead
            }
        })?;
        if let Ok(mut data) = frame.into_data() {
            while data.has_remaining() {
                let chunk = data.chunk();
                bytes.extend_from_slice(chunk);
                let n = chunk.len();
                data.advance(n);
            }
        }
    }
    if bytes.capacity() != bytes.len() {
        bytes.shrink_to_fit();
    }
    Ok(Bytes::from(bytes))
}

/// What to reserve for a body whose `Content-Length` (already checked against
/// the limit) is `declared`.
fn initial_capacity(declared: Option<u64>) -> usize {
    declared.map_or(0, |len| {
        usize::try_from(len).map_or(INITIAL_BODY_CAPACITY, |len| len.min(INITIAL_BODY_CAPACITY))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declared_length_reserves_at_most_the_initial_capacity() {
        assert_eq!(initial_capacity(None), 0);
        assert_eq!(initial_capacity(Some(100)), 100);
        assert_eq!(initial_capacity(Some(1024 * 1024)), INITIAL_BODY_CAPACITY);
    }

    #[tokio::test]
    async fn a_body_larger_than_the_initial_capacity_is_read_whole() {
        let data = vec![7u8; 3 * INITIAL_BODY_CAPACITY + 5];
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, data.len().into());
        let body = http_body_util::Full::new(Bytes::from(data.clone()));
        let read = read_limited(&headers, body, 1024 * 1024).await.unwrap();
        assert_eq!(read, data);
    }
}
