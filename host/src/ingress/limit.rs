//! A source's `rate_limit` at the HTTP door: which client a request is from, and the 429 past
//! the limit.
//!
//! Owns [`peer_address`], the one place that reads the connection's peer address (axum's
//! `ConnectInfo<SocketAddr>`, which whatever accepts connections provides), and [`admit`],
//! which the webhook and publish handlers call before anything is stored. The buckets and the
//! reading of `x-forwarded-for` are [`crate::traffic::ingest`]'s.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap};

use super::HttpState;
use crate::config::Source;
use crate::http_api::ApiError;
use crate::telemetry::IngestOutcome;
use crate::traffic::ingest::{Per, client_address, retry_after_seconds};

/// The connection's peer address; unspecified when the connection gave none (a router
/// driven without a socket), so that such requests share one client bucket.
pub fn peer_address(extensions: &Extensions) -> IpAddr {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(address)| address.ip())
}

/// Takes a token from `source`'s bucket for this request, or answers `429 rate_limited`
/// with `Retry-After` (counted as `rate_limited` in `switchyard_ingest_events_total`).
pub fn admit(
    state: &HttpState,
    source: &Source,
    headers: &HeaderMap,
    extensions: &Extensions,
) -> Result<(), ApiError> {
    let Some(rule) = &source.rate_limit else { return Ok(()) };
    let client = match rule.per {
        Per::Source => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Per::Client => {
            let forwarded: Vec<&str> = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|value| value.to_str().ok())
                .collect();
            let trusted = &state.topology.server.trusted_proxies;
            client_address(peer_address(extensions), &forwarded, trusted)
        }
    };
    state.limits.check(&source.id, rule, client, Instant::now()).map_err(|wait| {
        state.metrics.count_ingest(&source.id, IngestOutcome::RateLimited);
        let scope = match rule.per {
            Per::Source => "this source",
            Per::Client => "this client",
        };
        // The storm guard lets one notification through per window; the rest are counted.
        let mut extra = serde_json::Map::new();
        extra.insert("rate".to_owned(), rule.rate.to_string().into());
        extra.insert("per".to_owned(), scope.trim_start_matches("this ").into());
        let details = crate::notify::Details { extra, ..Default::default() };
        state.notifier.raise(crate::notify::NoticeKind::SourceRateLimited, &source.id, details);
        ApiError::rate_limited(
            retry_after_seconds(wait),
            format!("{scope} sends more than `{}` allows; retry later", rule.rate),
        )
    })
}
