//! A source's `client_cert.subjects` check: the request must carry the subject of a verified
//! TLS client certificate (put there by [`crate::listener`]) that matches one of them.
//!
//! Owns the check and its `403 client_certificate_refused` answer; nothing else.

use axum::http::{Extensions, StatusCode};

use crate::config::Source;
use crate::http_api::ApiError;
use crate::listener::subject::PeerSubject;

/// Passes when `source` accepts any client or the request's certificate matches.
pub fn check(source: &Source, extensions: &Extensions) -> Result<(), ApiError> {
    let Some(patterns) = &source.client_subjects else { return Ok(()) };
    let wanted = || {
        patterns.iter().map(|pattern| format!("`{}`", pattern.text)).collect::<Vec<_>>().join(", ")
    };
    let refuse = |detail: String| {
        Err(ApiError::new(StatusCode::FORBIDDEN, "client_certificate_refused", detail))
    };
    match extensions.get::<PeerSubject>() {
        None => refuse(format!(
            "source `{}` needs a TLS client certificate with subject {}; none was presented",
            source.id,
            wanted()
        )),
        Some(subject) if patterns.iter().any(|pattern| pattern.matches(subject)) => Ok(()),
        Some(subject) => refuse(format!(
            "source `{}` accepts client certificates with subject {}, not `{subject}`",
            source.id,
            wanted()
        )),
    }
}
