//! The HTTP API conventions every JSON surface shares: ingress, publish and admin.
//!
//! Owns [`ApiError`] (the `{"code", "detail"}` answer, with `errors` by field for 422s and
//! `retry-after` on 503s) and how accept-path errors map onto it, the bearer-token check
//! (compared in constant time), reading a body under a byte limit, and header lists as the
//! accept path takes them. Must not: know any route, or decide about events.

use std::borrow::Cow;

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::config::Secret;
use crate::ingest::{EventTypeError, IngestError};
use crate::pipeline::StageError;
use crate::store::StoreError;

/// Seconds a sender should wait before retrying after a 503.
const RETRY_AFTER_SECONDS: u64 = 1;

/// Reads the whole body, refusing it with 413 as soon as it is known to exceed `limit`:
/// from `content-length` before reading anything, or while reading a chunked body.
///
/// The answer owns an allocation of exactly its length. A body that came in one chunk is
/// otherwise a slice of the connection's read buffer (8 KiB or more), and every pending
/// delivery that keeps the body in memory would keep that whole buffer alive with it.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: u64,
) -> Result<bytes::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than this source's limit of {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(owned_bytes(collected.aggregate())),
        Err(error) if error.is::<LengthLimitError>() => Err(too_large()),
        Err(error) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "body_read_failed",
            format!("the request body could not be read: {error}"),
        )),
    }
}

/// The bytes of `chunks` in one allocation of exactly their length, shared with nothing else.
fn owned_bytes(mut chunks: impl bytes::Buf) -> bytes::Bytes {
    let mut owned = Vec::with_capacity(chunks.remaining());
    while chunks.has_remaining() {
        let chunk = chunks.chunk();
        owned.extend_from_slice(chunk);
        let read = chunk.len();
        chunks.advance(read);
    }
    bytes::Bytes::from(owned)
}

/// Header names come lower-cased from the HTTP parser. Values that are not UTF-8 (obs-text
/// bytes, allowed by HTTP) are decoded as ISO-8859-1, which maps every byte to one character,
/// so nothing is lost and the event is still accepted.
pub fn header_list(headers: &HeaderMap) -> Vec<(String, String)> {
    headers.iter().map(|(name, value)| (name.as_str().to_owned(), header_text(value))).collect()
}

fn header_text(value: &HeaderValue) -> String {
    match value.to_str() {
        Ok(text) => text.to_owned(),
        Err(_) => value.as_bytes().iter().map(|&byte| char::from(byte)).collect(),
    }
}

/// Put in a request's extensions by a listener that accepted it over TLS (the dashboard then
/// marks its cookie `Secure` and expects an `https` origin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverTls;

/// Checks `authorization: Bearer <token>`; 401 otherwise.
pub fn require_bearer(token: &Secret, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    if bool::from(given.as_bytes().ct_eq(token.expose())) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
        ))
    }
}

/// The `code` of an error answer, kept on the response (as an extension) for the layers that
/// record outcomes, such as the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorCode(pub Cow<'static, str>);

/// A JSON error answer: `{"code": "snake_case", "detail": "…"}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: Cow<'static, str>,
    detail: String,
    /// Seconds for a `Retry-After` header, if the answer has one.
    retry_after: Option<u64>,
    /// Problems by field (`[(field, detail)]`), for 422s that name what to fix.
    fields: Vec<(String, String)>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            detail: detail.into(),
            retry_after: None,
            fields: Vec::new(),
        }
    }

    /// The same error, naming the fields at fault: the answer gains `field` (the first one)
    /// and `errors` (every one, `{field, detail}`).
    pub fn with_fields(mut self, fields: Vec<(String, String)>) -> Self {
        self.fields = fields;
        self
    }

    pub fn unavailable(code: &'static str, detail: &str) -> Self {
        Self {
            retry_after: Some(RETRY_AFTER_SECONDS),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail)
        }
    }

    /// `429 rate_limited` with `Retry-After: <seconds>`.
    pub fn rate_limited(seconds: u64, detail: impl Into<String>) -> Self {
        Self {
            retry_after: Some(seconds),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", detail)
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        match error {
            IngestError::EventType(error @ EventTypeError::Invalid(_)) => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_event_type", error.to_string())
            }
            IngestError::EventType(error) => {
                Self::new(StatusCode::BAD_REQUEST, "missing_event_type", error.to_string())
            }
            IngestError::Rejected(rejection) => {
                // `Verdict::validate` keeps statuses within 4xx.
                let status =
                    StatusCode::from_u16(rejection.status).unwrap_or(StatusCode::BAD_REQUEST);
                Self::new(status, rejection.code, rejection.message)
            }
            IngestError::Plugin(StageError::Busy) => {
                Self::unavailable("overloaded", "every plugin thread is busy; retry")
            }
            IngestError::Plugin(error) => {
                // Plugin ids and reasons are operator business; they are logged, not sent.
                tracing::warn!(%error, "event not accepted: a plugin stage asked for a retry");
                Self::unavailable("plugin_unavailable", "the event could not be processed; retry")
            }
            IngestError::Store(StoreError::Busy) => {
                Self::unavailable("overloaded", "too many events are waiting to be stored; retry")
            }
            IngestError::Store(error) => {
                // Logged here, once; the sender only learns that it should retry.
                crate::health::log_store_error("event not stored", &error);
                Self::unavailable("unavailable", "the event could not be stored; retry")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"code": &self.code, "detail": self.detail});
        if let Some((first, _)) = self.fields.first() {
            body["field"] = json!(first);
            let errors: Vec<_> = self
                .fields
                .iter()
                .map(|(field, detail)| json!({"field": field, "detail": detail}))
                .collect();
            body["errors"] = json!(errors);
        }
        let body = Json(body);
        let mut response = (self.status, body).into_response();
        response.extensions_mut().insert(ErrorCode(self.code));
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn only_the_exact_bearer_token_is_accepted() {
        let token = Secret::new(b"secret".to_vec());
        assert!(require_bearer(&token, &bearer("Bearer secret")).is_ok());
        for refused in ["Bearer secreT", "Bearer secrets", "Bearer ", "secret", "Basic secret"] {
            let error = require_bearer(&token, &bearer(refused)).unwrap_err();
            assert_eq!(error.status, StatusCode::UNAUTHORIZED, "{refused}");
        }
        assert!(require_bearer(&token, &HeaderMap::new()).is_err());
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_with_413() {
        let headers = HeaderMap::new();
        let read = read_body(&headers, Body::from("12345"), 5).await.unwrap();
        assert_eq!(&read[..], b"12345");
        let error = read_body(&headers, Body::from("123456"), 5).await.unwrap_err();
        assert_eq!(error.status, StatusCode::PAYLOAD_TOO_LARGE);
        let mut declared = HeaderMap::new();
        declared.insert(header::CONTENT_LENGTH, HeaderValue::from_static("6"));
        let error = read_body(&declared, Body::empty(), 5).await.unwrap_err();
        assert_eq!(error.status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn a_body_read_in_one_chunk_does_not_keep_the_read_buffer_alive() {
        // As the HTTP server hands a small body over: one slice of a larger read buffer.
        let buffer = bytes::Bytes::from(vec![b'x'; 16 * 1024]);
        let chunk = buffer.slice(100..1_124);
        let read = read_body(&HeaderMap::new(), Body::from(chunk), 1 << 20).await.unwrap();
        assert_eq!(read.len(), 1_024);
        assert!(read.iter().all(|byte| *byte == b'x'));
        let inside = buffer.as_ptr_range();
        assert!(!inside.contains(&read.as_ptr()), "the body is still a slice of the read buffer");
        // Only the buffer's own handle is left: the body shares nothing with it.
        assert!(buffer.is_unique());
        // Bodies of several chunks are joined into one allocation as well.
        let chunks = futures_util::stream::iter(["ab", "cd"].map(|part| {
            Ok::<_, std::convert::Infallible>(bytes::Bytes::from_static(part.as_bytes()))
        }));
        let read = read_body(&HeaderMap::new(), Body::from_stream(chunks), 4).await.unwrap();
        assert_eq!(&read[..], b"abcd");
    }

    #[test]
    fn header_values_that_are_not_utf8_are_kept_as_latin1() {
        let mut headers = HeaderMap::new();
        headers.insert("x-name", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        assert_eq!(header_list(&headers), vec![("x-name".to_owned(), "café".to_owned())]);
    }
}
