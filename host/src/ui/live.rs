//! The live tail: a page of the newest events that keeps growing, fed by server-sent events
//! from [`crate::tail`], with polling as the fallback.
//!
//! `GET /ui/stream` answers `text/event-stream`: one `accepted` message per event, its `id:`
//! the event id. A browser that reconnects sends `Last-Event-ID`; the events it missed are
//! read from the admin API first (newest 500 at most), then the stream goes on. A watcher
//! that falls behind the broadcast gets a `gap` message and reloads. At most
//! [`MAX_STREAMS`] streams at once (503 beyond).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use askama::Template;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

use super::pages::Chrome;
use super::view::{self, EventRow};
use super::{CurrentSession, PageError, Ui};
use crate::admin::access::Role;
use crate::event::EventId;
use crate::tail::Accepted;

/// Streams open at once, at most.
pub const MAX_STREAMS: usize = 16;
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One event on the tail, as the page's script reads it.
#[derive(Debug, Clone, Serialize)]
pub struct TailItem {
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub received: String,
    pub size: String,
}

impl TailItem {
    fn of_notice(notice: &Accepted) -> Self {
        Self {
            id: notice.id.to_string(),
            source: notice.source.clone(),
            event_type: notice.event_type.clone(),
            received: view::time(notice.received_at),
            size: view::size(notice.body_size),
        }
    }

    fn of_row(row: &EventRow) -> Self {
        Self {
            id: row.id.clone(),
            source: row.source.clone(),
            event_type: row.event_type.clone(),
            received: view::time(row.received_at),
            size: view::size(row.body_size),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct TailFilter {
    source: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// Polling: only events after this id.
    after: Option<String>,
}

impl TailFilter {
    fn admits(&self, source: &str, event_type: &str) -> bool {
        let matches = |wanted: &Option<String>, value: &str| {
            wanted.as_deref().is_none_or(|wanted| wanted.is_empty() || wanted == value)
        };
        matches(&self.source, source) && matches(&self.event_type, event_type)
    }
}

#[derive(Template)]
#[template(path = "ui/live.html")]
struct LivePage {
    chrome: Chrome,
    source: String,
    event_type: String,
    rows: Vec<TailItem>,
}

/// The newest events (filtered), oldest first, after `after` when given.
async fn newest(
    ui: &Ui,
    role: Role,
    filter: &TailFilter,
    after: Option<EventId>,
    limit: u32,
) -> Result<Vec<TailItem>, PageError> {
    let answer = ui.read(role, &format!("/v1/admin/events?limit={limit}")).await?;
    let rows: Vec<EventRow> = view::rows(&answer);
    let mut items: Vec<TailItem> = rows
        .iter()
        .filter(|row| filter.admits(&row.source, &row.event_type))
        .filter(|row| {
            let id = row.id.parse::<EventId>().ok();
            after.is_none_or(|after| id.is_some_and(|id| id > after))
        })
        .map(TailItem::of_row)
        .collect();
    items.reverse();
    Ok(items)
}

pub async fn page(
    State(ui): State<Ui>,
    session: CurrentSession,
    Query(filter): Query<TailFilter>,
) -> Result<Response, PageError> {
    let mut rows = newest(&ui, session.role, &filter, None, 50).await?;
    rows.reverse();
    let page = LivePage {
        chrome: Chrome::new("Live", &session, "live"),
        source: filter.source.unwrap_or_default(),
        event_type: filter.event_type.unwrap_or_default(),
        rows,
    };
    Ok(match page.render() {
        Ok(html) => axum::response::Html(html).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    })
}

/// The polling fallback: events after `after`, oldest first, as JSON.
pub async fn recent(
    State(ui): State<Ui>,
    session: CurrentSession,
    Query(filter): Query<TailFilter>,
) -> Result<Json<Vec<TailItem>>, PageError> {
    let after = filter.after.as_deref().and_then(|id| id.parse::<EventId>().ok());
    Ok(Json(newest(&ui, session.role, &filter, after, 100).await?))
}

/// Releases a stream's slot when the stream ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn message(item: &TailItem) -> SseEvent {
    SseEvent::default()
        .event("accepted")
        .id(item.id.clone())
        .data(serde_json::to_string(item).unwrap_or_default())
}

pub async fn stream(
    State(ui): State<Ui>,
    session: CurrentSession,
    headers: HeaderMap,
    Query(filter): Query<TailFilter>,
) -> Result<Response, PageError> {
    if ui.streams.fetch_add(1, Ordering::AcqRel) >= MAX_STREAMS {
        ui.streams.fetch_sub(1, Ordering::AcqRel);
        return Err(PageError::new(StatusCode::SERVICE_UNAVAILABLE, "too many live streams"));
    }
    let slot = Slot(ui.streams.clone());
    // Watch first, then read what was missed: nothing falls between the two.
    let watcher = ui.state.store.tail().watch();
    let last = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|id| id.parse::<EventId>().ok());
    let missed = match last {
        Some(last) => newest(&ui, session.role, &filter, Some(last), 500).await?,
        None => Vec::new(),
    };
    let mut seen = missed.last().and_then(|item| item.id.parse::<EventId>().ok()).or(last);
    let backlog = stream::iter(missed.into_iter().map(|item| Ok::<_, Infallible>(message(&item))));
    let live = stream::unfold((watcher, slot), move |(mut watcher, slot)| async move {
        match watcher.recv().await {
            Ok(notice) => Some((Some(notice), (watcher, slot))),
            Err(RecvError::Lagged(_)) => Some((None, (watcher, slot))),
            Err(RecvError::Closed) => None,
        }
    })
    .filter_map(move |notice| {
        let item = match notice {
            None => Some(Ok(SseEvent::default().event("gap").data("reload"))),
            Some(notice) => {
                let fresh = seen.is_none_or(|seen| notice.id > seen);
                let admitted = filter.admits(&notice.source, &notice.event_type);
                if fresh {
                    seen = Some(notice.id);
                }
                (fresh && admitted).then(|| Ok(message(&TailItem::of_notice(&notice))))
            }
        };
        std::future::ready(item)
    });
    let events: std::pin::Pin<Box<dyn Stream<Item = Result<SseEvent, Infallible>> + Send>> =
        Box::pin(backlog.chain(live));
    let mut response =
        Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}
