//! `GET /v1/admin/stats`: what happened over a window (1 h by default): events in, attempts,
//! success rate, attempt latency p50/p95, the queue, dead letters, disabled endpoints and the
//! endpoints failing most. The dashboard's overview reads it.
//!
//! `GET /v1/admin/stats/endpoints`: the same per endpoint asked (a page of the endpoints list):
//! success rate, p95 and attempts per bucket for a sparkline, with its queue.
//!
//! [`summarize`] and [`endpoint_figures`] are pure (samples in, figures out); the handlers only
//! gather through the store interface. Must not: read a backend directly.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AdminState;
use super::api::{ErrorBody, Query, invalid, store_failure};
use super::model::FieldError;
use crate::config::values::parse_duration;
use crate::event::now_millis;
use crate::http_api::ApiError;
use crate::store::{AttemptSample, DeliveryState, EndpointActivity};

/// The window when none is asked for.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(3600);
/// The longest window (retention keeps delivered attempts 7 days by default).
pub const MAX_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);
/// Attempts read for one answer at most; past it the figures cover the newest ones.
pub const MAX_SAMPLES: u32 = 200_000;
/// Endpoints listed under `top_failing`.
const TOP_FAILING: usize = 5;
/// Endpoints one `stats/endpoints` request may ask for.
pub const MAX_ENDPOINTS: usize = 100;
/// Buckets each endpoint's window is cut into (24 over the default 24 h: one an hour).
pub const BUCKETS: u64 = 24;
/// The endpoints list's window when none is asked for.
pub const DEFAULT_ENDPOINT_WINDOW: Duration = Duration::from_secs(24 * 3600);

pub fn router() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new().routes(routes!(get_stats)).routes(routes!(get_endpoint_stats))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatsOptions {
    /// How far back: `15m`, `1h` (default), `24h`, `7d`; at most `30d`.
    window: Option<String>,
}

/// Figures over a window.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Stats {
    /// The window, in seconds.
    pub window_seconds: u64,
    /// Its start (unix ms).
    pub since: u64,
    /// Events received in the window.
    pub events: u64,
    /// Delivery attempts made in the window.
    pub attempts: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// `succeeded / attempts` in percent; absent without attempts.
    pub success_percent: Option<f64>,
    /// Attempt latency, median and 95th percentile, in milliseconds.
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    /// More attempts were made than were read; the figures cover the newest ones.
    pub sampled: bool,
    /// Deliveries waiting for an attempt, now.
    pub pending: u64,
    /// Dead letters, now.
    pub dead_letters: u64,
    /// Deliveries parked behind a disabled endpoint, now.
    pub parked: u64,
    /// Endpoints disabled now, by id.
    pub disabled_endpoints: Vec<String>,
    /// Accepted events that matched no route since this router started (not windowed: the
    /// store keeps no such mark).
    pub unrouted_since_start: u64,
    /// The endpoints with the most failed attempts in the window, most first.
    pub top_failing: Vec<EndpointFailures>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EndpointFailures {
    pub endpoint: String,
    pub attempts: u64,
    pub failed: u64,
}

/// The figures derived from attempts alone.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AttemptFigures {
    pub attempts: u64,
    pub succeeded: u64,
    pub success_percent: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub top_failing: Vec<EndpointFailures>,
}

/// Counts, nearest-rank percentiles and the endpoints failing most (ties by id).
pub fn summarize(samples: &[AttemptSample]) -> AttemptFigures {
    if samples.is_empty() {
        return AttemptFigures::default();
    }
    let attempts = samples.len() as u64;
    let succeeded = samples.iter().filter(|sample| sample.succeeded).count() as u64;
    let mut durations: Vec<u64> = samples.iter().map(|sample| sample.duration_micros).collect();
    durations.sort_unstable();
    let percentile = |p: f64| {
        let rank = ((p / 100.0) * durations.len() as f64).ceil().max(1.0) as usize;
        durations[rank.min(durations.len()) - 1] as f64 / 1000.0
    };
    let mut by_endpoint: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for sample in samples {
        let entry = by_endpoint.entry(&sample.endpoint).or_default();
        entry.0 += 1;
        entry.1 += u64::from(!sample.succeeded);
    }
    let mut top_failing: Vec<EndpointFailures> = by_endpoint
        .into_iter()
        .filter(|(_, (_, failed))| *failed > 0)
        .map(|(endpoint, (attempts, failed))| EndpointFailures {
            endpoint: endpoint.to_owned(),
            attempts,
            failed,
        })
        .collect();
    top_failing.sort_by(|a, b| b.failed.cmp(&a.failed).then_with(|| a.endpoint.cmp(&b.endpoint)));
    top_failing.truncate(TOP_FAILING);
    AttemptFigures {
        attempts,
        succeeded,
        success_percent: Some(succeeded as f64 * 100.0 / attempts as f64),
        latency_p50_ms: Some(percentile(50.0)),
        latency_p95_ms: Some(percentile(95.0)),
        top_failing,
    }
}

/// `window` checked: a duration from 1 s to [`MAX_WINDOW`].
pub fn parse_window(window: Option<&str>) -> Result<Duration, ApiError> {
    let Some(text) = window else { return Ok(DEFAULT_WINDOW) };
    match parse_duration(text) {
        Ok(window) if window >= Duration::from_secs(1) && window <= MAX_WINDOW => Ok(window),
        Ok(_) => Err(invalid(vec![FieldError::new(
            "window",
            format!("`{text}` is not between `1s` and `30d`"),
        )])),
        Err(detail) => Err(invalid(vec![FieldError::new("window", detail)])),
    }
}

#[utoipa::path(
    get, path = "/v1/admin/stats", tag = "log",
    description = "Figures over a window: events in, attempts, success rate, attempt latency, \
                   the queue, dead letters, disabled endpoints and the endpoints failing most.",
    params(StatsOptions),
    responses(
        (status = 200, body = Stats),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
)]
async fn get_stats(
    State(state): State<AdminState>,
    Query(options): Query<StatsOptions>,
) -> Result<Json<Stats>, ApiError> {
    let window = parse_window(options.window.as_deref())?;
    gather(&state, window).await.map(Json)
}

/// The figures over `window`, ending now.
pub async fn gather(state: &AdminState, window: Duration) -> Result<Stats, ApiError> {
    let store = &state.store;
    let since = now_millis().saturating_sub(window.as_millis() as u64);
    let activity = store.activity_since(since, MAX_SAMPLES).await.map_err(store_failure)?;
    let pending =
        store.count_deliveries(DeliveryState::Pending, None).await.map_err(store_failure)?;
    let dead_letters =
        store.count_deliveries(DeliveryState::Dead, None).await.map_err(store_failure)?;
    let parked =
        store.count_deliveries(DeliveryState::Parked, None).await.map_err(store_failure)?;
    let mut disabled_endpoints: Vec<String> =
        store.disabled_endpoints().await.map_err(store_failure)?.into_keys().collect();
    disabled_endpoints.sort();
    let figures = summarize(&activity.attempts);
    Ok(Stats {
        window_seconds: window.as_secs(),
        since,
        events: activity.events,
        attempts: figures.attempts,
        succeeded: figures.succeeded,
        failed: figures.attempts - figures.succeeded,
        success_percent: figures.success_percent,
        latency_p50_ms: figures.latency_p50_ms,
        latency_p95_ms: figures.latency_p95_ms,
        sampled: activity.truncated,
        pending,
        dead_letters,
        parked,
        disabled_endpoints,
        unrouted_since_start: state.metrics.events_unrouted.get(),
        top_failing: figures.top_failing,
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EndpointStatsOptions {
    /// Endpoint ids, comma-separated, at most 100.
    endpoints: String,
    /// How far back: `24h` (default), at most `30d`.
    window: Option<String>,
}

/// Per endpoint asked.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EndpointStatsList {
    /// The window, in seconds; each endpoint's `buckets` cut it into 24 equal parts.
    pub window_seconds: u64,
    /// Its start (unix ms).
    pub since: u64,
    /// In the order asked.
    pub data: Vec<EndpointStats>,
}

/// One endpoint's figures over the window, and its queue now.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EndpointStats {
    pub endpoint: String,
    pub attempts: u64,
    pub failed: u64,
    /// Absent without attempts.
    pub success_percent: Option<f64>,
    /// Attempt latency, 95th percentile (nearest rank), in milliseconds.
    pub latency_p95_ms: Option<f64>,
    /// Attempts per bucket, oldest first (24 buckets).
    pub buckets: Vec<u64>,
    /// Failed attempts per bucket, oldest first.
    pub failed_buckets: Vec<u64>,
    /// Deliveries waiting for an attempt, now.
    pub pending: u64,
    /// Dead letters, now.
    pub dead_letters: u64,
}

/// An endpoint's figures from what the store counted (absent: no attempts in the window).
pub fn endpoint_figures(endpoint: &str, activity: Option<&EndpointActivity>) -> EndpointStats {
    let mut buckets = vec![0; BUCKETS as usize];
    let mut failed_buckets = vec![0; BUCKETS as usize];
    let (mut attempts, mut failed) = (0, 0);
    for bucket in activity.map(|activity| activity.buckets.as_slice()).unwrap_or_default() {
        // The window ends now: an attempt recorded since `since` was taken lands in the last.
        let index = bucket.index.min(BUCKETS - 1) as usize;
        buckets[index] += bucket.attempts;
        failed_buckets[index] += bucket.failed;
        attempts += bucket.attempts;
        failed += bucket.failed;
    }
    EndpointStats {
        endpoint: endpoint.to_owned(),
        attempts,
        failed,
        success_percent: (attempts > 0)
            .then(|| (attempts - failed) as f64 * 100.0 / attempts as f64),
        latency_p95_ms: activity
            .and_then(|activity| activity.p95_micros)
            .map(|micros| micros as f64 / 1000.0),
        buckets,
        failed_buckets,
        pending: 0,
        dead_letters: 0,
    }
}

#[utoipa::path(
    get, path = "/v1/admin/stats/endpoints", tag = "log",
    description = "Per endpoint asked (at most 100): attempts, success rate and attempt latency \
                   p95 over a window (24 h by default), attempts and failures in 24 buckets, \
                   and its pending deliveries and dead letters now. Reads only the attempts in \
                   the window.",
    params(EndpointStatsOptions),
    responses(
        (status = 200, body = EndpointStatsList),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
)]
async fn get_endpoint_stats(
    State(state): State<AdminState>,
    Query(options): Query<EndpointStatsOptions>,
) -> Result<Json<EndpointStatsList>, ApiError> {
    let window = match options.window.as_deref() {
        None => DEFAULT_ENDPOINT_WINDOW,
        Some(text) => parse_window(Some(text))?,
    };
    let endpoints: Vec<String> =
        options.endpoints.split(',').filter(|id| !id.is_empty()).map(str::to_owned).collect();
    if endpoints.len() > MAX_ENDPOINTS {
        let detail = format!("{} endpoints asked; at most {MAX_ENDPOINTS}", endpoints.len());
        return Err(invalid(vec![FieldError::new("endpoints", detail)]));
    }
    gather_endpoints(&state, endpoints, window).await.map(Json)
}

/// The figures of `endpoints` over `window`, ending now.
pub async fn gather_endpoints(
    state: &AdminState,
    endpoints: Vec<String>,
    window: Duration,
) -> Result<EndpointStatsList, ApiError> {
    let store = &state.store;
    let since = now_millis().saturating_sub(window.as_millis() as u64);
    let width = (window.as_millis() as u64).div_ceil(BUCKETS).max(1);
    let activity =
        store.endpoint_activity(endpoints.clone(), since, width).await.map_err(store_failure)?;
    let by_endpoint: BTreeMap<&str, &EndpointActivity> =
        activity.iter().map(|activity| (activity.endpoint.as_str(), activity)).collect();
    let mut data = Vec::with_capacity(endpoints.len());
    for endpoint in &endpoints {
        let mut figures = endpoint_figures(endpoint, by_endpoint.get(endpoint.as_str()).copied());
        figures.pending = store
            .count_deliveries(DeliveryState::Pending, Some(endpoint.clone()))
            .await
            .map_err(store_failure)?;
        figures.dead_letters = store
            .count_deliveries(DeliveryState::Dead, Some(endpoint.clone()))
            .await
            .map_err(store_failure)?;
        data.push(figures);
    }
    Ok(EndpointStatsList { window_seconds: window.as_secs(), since, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(endpoint: &str, micros: u64, succeeded: bool) -> AttemptSample {
        AttemptSample {
            endpoint: endpoint.into(),
            attempted_at: 1,
            duration_micros: micros,
            succeeded,
        }
    }

    #[test]
    fn nothing_gives_no_rates() {
        assert_eq!(summarize(&[]), AttemptFigures::default());
    }

    #[test]
    fn counts_percentiles_and_the_worst_endpoints() {
        let mut samples: Vec<AttemptSample> =
            (1..=100).map(|n| sample("billing", n * 1000, true)).collect();
        samples.extend((0..3).map(|_| sample("audit", 500, false)));
        samples.extend((0..7).map(|_| sample("crm", 500, false)));
        samples.push(sample("aaa", 500, false));
        let figures = summarize(&samples);
        assert_eq!(figures.attempts, 111);
        assert_eq!(figures.succeeded, 100);
        let percent = figures.success_percent.unwrap();
        assert!((percent - 90.09).abs() < 0.01, "{percent}");
        // 11 fast failures first, then 1..=100 ms: rank 56 is 45 ms, rank 106 is 95 ms.
        assert_eq!(figures.latency_p50_ms, Some(45.0));
        assert_eq!(figures.latency_p95_ms, Some(95.0));
        let order: Vec<(&str, u64)> =
            figures.top_failing.iter().map(|f| (f.endpoint.as_str(), f.failed)).collect();
        assert_eq!(order, [("crm", 7), ("audit", 3), ("aaa", 1)]);
    }

    #[test]
    fn one_sample_is_every_percentile() {
        let figures = summarize(&[sample("billing", 2500, true)]);
        assert_eq!(figures.latency_p50_ms, Some(2.5));
        assert_eq!(figures.latency_p95_ms, Some(2.5));
        assert_eq!(figures.success_percent, Some(100.0));
        assert!(figures.top_failing.is_empty());
    }

    #[test]
    fn windows() {
        assert_eq!(parse_window(None).unwrap(), DEFAULT_WINDOW);
        assert_eq!(parse_window(Some("24h")).unwrap(), Duration::from_secs(86_400));
        assert!(parse_window(Some("31d")).is_err());
        assert!(parse_window(Some("0s")).is_err());
        assert!(parse_window(Some("soon")).is_err());
    }

    #[test]
    fn endpoint_figures_fill_24_buckets_and_rate_the_attempts() {
        use crate::store::ActivityBucket;
        let activity = EndpointActivity {
            endpoint: "billing".into(),
            buckets: vec![
                ActivityBucket { index: 0, attempts: 3, failed: 1 },
                ActivityBucket { index: 23, attempts: 1, failed: 0 },
                // Recorded after the window's end was computed: counted in the last bucket.
                ActivityBucket { index: 24, attempts: 4, failed: 3 },
            ],
            p95_micros: Some(2500),
        };
        let figures = endpoint_figures("billing", Some(&activity));
        assert_eq!((figures.attempts, figures.failed), (8, 4));
        assert_eq!(figures.success_percent, Some(50.0));
        assert_eq!(figures.latency_p95_ms, Some(2.5));
        assert_eq!(figures.buckets.len(), 24);
        assert_eq!((figures.buckets[0], figures.buckets[23]), (3, 5));
        assert_eq!((figures.failed_buckets[0], figures.failed_buckets[23]), (1, 3));
        let quiet = endpoint_figures("quiet", None);
        assert_eq!((quiet.attempts, quiet.success_percent, quiet.latency_p95_ms), (0, None, None));
        assert_eq!(quiet.buckets, vec![0; 24]);
    }
}
