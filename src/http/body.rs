//! Reading an answer's body within a size limit, so that a server (or
//! anything pretending to be one) cannot make a client buffer without end.

use bytes::{Bytes, BytesMut};
use http_body::Body;
use http_body_util::BodyExt;

/// The largest answer body an HTTP client of this crate reads, unless told
/// otherwise: 16 MiB. A Task API page of tasks or a Jobs API job view is
/// far below it; an agent endpoint's result above it is refused.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Why an answer's body could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum ResponseBodyError {
    /// The body is longer than the client's limit; reading stopped there.
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The connection failed while the body was read.
    Read(Box<dyn std::error::Error + Send + Sync>),
}

impl std::fmt::Display for ResponseBodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLarge { limit } => {
                write!(
                    f,
                    "the answer's body is larger than the limit of {limit} bytes"
                )
            }
            Self::Read(e) => write!(f, "reading the answer's body failed: {e}"),
        }
    }
}

impl std::error::Error for ResponseBodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read(e) => Some(e.as_ref()),
            Self::TooLarge { .. } => None,
        }
    }
}

/// Reads `body` whole if it is at most `limit` bytes. A `Content-Length`
/// above the limit is not needed to refuse: the count is of bytes
/// received, so a body without a length is bounded the same way.
///
/// # Errors
/// [`ResponseBodyError::TooLarge`] as soon as more than `limit` bytes
/// arrived; [`ResponseBodyError::Read`] when the body fails.
pub(crate) async fn read_limited<B>(mut body: B, limit: usize) -> Result<Bytes, ResponseBodyError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if body.size_hint().lower() > limit as u64 {
        return Err(ResponseBodyError::TooLarge { limit });
    }
    let mut buffer = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ResponseBodyError::Read(e.into()))?;
        if let Ok(data) = frame.into_data() {
            if data.len() > limit - buffer.len() {
                return Err(ResponseBodyError::TooLarge { limit });
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(buffer.freeze())
}
