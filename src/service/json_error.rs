//! One JSON error answer for every HTTP service here:
//! `{"error":{"code":"…","message":"…", …}}` with the headers its status
//! calls for (`Allow` on 405, `WWW-Authenticate` on 401, `Retry-After` on
//! 429, `Connection: close` when the connection ends).
//!
//! Each service keeps its own error enum (its variants, codes and statuses
//! are its contract); this is only how a refusal is written, so the
//! services cannot drift in shape.

use std::time::Duration;

use http::{HeaderValue, Response, StatusCode, header};
use serde::Serialize;

use super::ServiceBody;
use super::error::json_response;

/// No fields beyond `code`, `message` and `request_id`.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct NoDetail {}

/// A JSON error answer being built.
#[derive(Debug)]
pub(crate) struct JsonError<'a, D = NoDetail> {
    status: StatusCode,
    code: &'a str,
    message: &'a str,
    request_id: Option<&'a str>,
    detail: D,
    allow: Option<&'static str>,
    retry_after: Option<Duration>,
    bearer_challenge: bool,
    close: bool,
}

#[derive(Serialize)]
struct Body<'a, D> {
    error: Detail<'a, D>,
}

#[derive(Serialize)]
struct Detail<'a, D> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(flatten)]
    detail: D,
}

impl<'a> JsonError<'a> {
    /// A `status` answer with `code` and `message`.
    pub(crate) fn new(status: StatusCode, code: &'a str, message: &'a str) -> Self {
        Self {
            status,
            code,
            message,
            request_id: None,
            detail: NoDetail {},
            allow: None,
            retry_after: None,
            bearer_challenge: false,
            close: false,
        }
    }
}

impl<'a, D: Serialize> JsonError<'a, D> {
    /// More fields in `error`, beside `code` and `message` (`None` fields
    /// of `detail` should be skipped by its own serde attributes).
    pub(crate) fn detail<E: Serialize>(self, detail: E) -> JsonError<'a, E> {
        JsonError {
            status: self.status,
            code: self.code,
            message: self.message,
            request_id: self.request_id,
            detail,
            allow: self.allow,
            retry_after: self.retry_after,
            bearer_challenge: self.bearer_challenge,
            close: self.close,
        }
    }

    /// The request's id, in the body, so a caller can quote it.
    pub(crate) fn request_id(mut self, id: Option<&'a str>) -> Self {
        self.request_id = id;
        self
    }

    /// `Allow: methods` (a 405).
    pub(crate) fn allow(mut self, methods: &'static str) -> Self {
        self.allow = Some(methods);
        self
    }

    /// `Retry-After` in whole seconds, rounded up, at least 1 (a 429).
    pub(crate) fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// `WWW-Authenticate: Bearer` (a 401).
    pub(crate) fn bearer_challenge(mut self) -> Self {
        self.bearer_challenge = true;
        self
    }

    /// `Connection: close`.
    pub(crate) fn close(mut self) -> Self {
        self.close = true;
        self
    }

    /// The answer.
    pub(crate) fn into_response(self) -> Response<ServiceBody> {
        let mut response = json_response(
            self.status,
            &Body {
                error: Detail {
                    code: self.code,
                    message: self.message,
                    request_id: self.request_id,
                    detail: self.detail,
                },
            },
        );
        let headers = response.headers_mut();
        if let Some(allow) = self.allow {
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if let Some(after) = self.retry_after {
            let seconds = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        if self.bearer_challenge {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.close {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Extra {
        field: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        absent: Option<&'static str>,
    }

    #[tokio::test]
    async fn the_body_and_headers_follow_what_was_asked() {
        let response = JsonError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "no")
            .detail(Extra {
                field: "room",
                absent: None,
            })
            .request_id(Some("r-1"))
            .allow("GET, POST")
            .retry_after(Duration::from_millis(1_500))
            .bearer_challenge()
            .close()
            .into_response();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        let headers = response.headers();
        assert_eq!(headers[header::ALLOW], "GET, POST");
        assert_eq!(headers[header::RETRY_AFTER], "2");
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(headers[header::CONNECTION], "close");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(
            body,
            r#"{"error":{"code":"method_not_allowed","message":"no","request_id":"r-1","field":"room"}}"#
        );
    }
}
