//! The dashboard's pages and actions: each reads or acts through the admin API ([`Ui::api`])
//! and renders a compiled template (askama escapes every value: keep it so, never `|safe`).
//!
//! Actions are plain form POSTs that answer with a redirect back to the page (303), so they
//! work without JavaScript; the rotated secret is the exception: it is rendered once in the
//! POST's answer and never again.

use std::collections::BTreeMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::view::{self, AttemptRow, BodyView, DeliveryRow, EndpointRow, EventRow};
use super::{CurrentSession, PageError, Ui, api_detail, is_secure, session};
use crate::admin::access::Role;
use crate::admin::model::is_sensitive_header;
use crate::event::now_millis;

/// What the frame of every page needs.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub title: String,
    /// `None` on the login and error pages.
    pub role: Option<&'static str>,
    /// Which navigation entry is current.
    pub section: &'static str,
    /// Shown above the content (the outcome of an action).
    pub notice: Option<String>,
}

impl Chrome {
    pub(super) fn new(
        title: impl Into<String>,
        session: &CurrentSession,
        section: &'static str,
    ) -> Self {
        Self { title: title.into(), role: Some(session.role.as_str()), section, notice: None }
    }

    pub(super) fn with_notice(mut self, done: Option<&str>) -> Self {
        self.notice = done.and_then(notice_text).map(str::to_owned);
        self
    }
}

/// The fixed text of an action's outcome (`?done=` never echoes free text).
fn notice_text(done: &str) -> Option<&'static str> {
    Some(match done {
        "retried" => "Sent again: the delivery is pending and goes out now.",
        "disabled" => "Disabled: its pending deliveries are parked.",
        "enabled" => "Enabled: its parked deliveries are being sent.",
        "redriven" => "Redriven: its dead letters are pending again.",
        "edited" => "Changed: queued deliveries use the new settings from their next attempt.",
        "test-sent" => "Test event sent: this is its delivery, going out now.",
        "test-parked" => {
            "Test event sent: this is its delivery, parked because the endpoint is disabled; it \
             goes out once the endpoint is enabled."
        }
        _ => return None,
    })
}

pub(super) fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => {
            tracing::error!(%error, "a dashboard page failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page failed to render").into_response()
        }
    }
}

/// A path segment with everything but `[A-Za-z0-9_-]` percent-encoded.
pub(super) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A query string of the non-empty pairs.
fn query<'a>(pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        if let Some(value) = value.filter(|value| !value.is_empty()) {
            serializer.append_pair(name, value);
        }
    }
    serializer.finish()
}

/// A form body's fields.
pub(super) fn form(body: &Bytes) -> BTreeMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

// === error and login ===

#[derive(Template)]
#[template(path = "ui/error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    status: u16,
    message: &'a str,
}

pub fn error_page(status: StatusCode, message: &str) -> Response {
    let chrome =
        Chrome { title: format!("{}", status.as_u16()), role: None, section: "", notice: None };
    let page = ErrorPage { chrome, status: status.as_u16(), message };
    (status, render(&page)).into_response()
}

#[derive(Template)]
#[template(path = "ui/login.html")]
struct LoginPage {
    chrome: Chrome,
    failed: bool,
}

fn login_page(failed: bool) -> LoginPage {
    let chrome = Chrome { title: "Sign in".into(), role: None, section: "", notice: None };
    LoginPage { chrome, failed }
}

pub async fn login_form() -> Response {
    render(&login_page(false))
}

/// Exchanges a token for a session cookie; the same-origin rule applies here too (login
/// forgery).
pub async fn login(State(ui): State<Ui>, request: Request) -> Response {
    let secure = is_secure(&request);
    if !session::same_origin(request.headers(), secure) {
        let message = "refused: this request did not come from a page of this dashboard";
        return PageError::new(StatusCode::FORBIDDEN, message).into_response();
    }
    let body = match axum::body::to_bytes(request.into_body(), 8 * 1024).await {
        Ok(body) => body,
        Err(_) => return PageError::new(StatusCode::PAYLOAD_TOO_LARGE, "too long").into_response(),
    };
    let fields = form(&body);
    let given = fields.get("token").map(String::as_str).unwrap_or_default();
    let Some(role) = ui.tokens.role_of(given.trim().as_bytes()) else {
        return (StatusCode::UNAUTHORIZED, render(&login_page(true))).into_response();
    };
    let cookie = session::set_cookie(Some(&ui.key.issue(role, now_millis())), secure);
    let mut response = Redirect::to("/ui/").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

pub async fn logout(request: Request) -> Response {
    let cookie = session::set_cookie(None, is_secure(&request));
    let mut response = Redirect::to("/ui/login").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

// === overview ===

#[derive(Template)]
#[template(path = "ui/overview.html")]
struct OverviewPage {
    chrome: Chrome,
    window: String,
    stats: Value,
    success: String,
    p50: String,
    p95: String,
    per_minute: String,
    disabled: Vec<String>,
    failing: Vec<(String, u64, u64)>,
}

#[derive(Debug, Deserialize)]
pub struct WindowQuery {
    window: Option<String>,
}

pub async fn overview(
    State(ui): State<Ui>,
    session: CurrentSession,
    Query(options): Query<WindowQuery>,
) -> Result<Response, PageError> {
    let window = options
        .window
        .as_deref()
        .filter(|window| ["15m", "1h", "24h", "7d"].contains(window))
        .unwrap_or("1h");
    let stats = ui.read(session.role, &format!("/v1/admin/stats?window={window}")).await?;
    let number = |key: &str| stats.get(key).and_then(Value::as_f64);
    let milliseconds =
        |key: &str| number(key).map_or_else(|| "–".to_owned(), |ms| format!("{ms:.1} ms"));
    let minutes = number("window_seconds").unwrap_or(3600.0) / 60.0;
    let failing = stats
        .get("top_failing")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|item| {
            let endpoint = view::text(item, "endpoint").unwrap_or_default();
            let count = |key: &str| item.get(key).and_then(Value::as_u64).unwrap_or(0);
            (endpoint, count("failed"), count("attempts"))
        })
        .collect();
    let disabled = stats
        .get("disabled_endpoints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|item| item.as_str().map(str::to_owned))
        .collect();
    let page = OverviewPage {
        chrome: Chrome::new("Overview", &session, "overview"),
        window: window.to_owned(),
        success: number("success_percent").map_or_else(|| "–".into(), |p| format!("{p:.1} %")),
        p50: milliseconds("latency_p50_ms"),
        p95: milliseconds("latency_p95_ms"),
        per_minute: format!("{:.1}", number("events").unwrap_or(0.0) / minutes),
        disabled,
        failing,
        stats,
    };
    Ok(render(&page))
}

// === events ===

#[derive(Template)]
#[template(path = "ui/events.html")]
struct EventsPage {
    chrome: Chrome,
    admin: bool,
    /// HTTP sources, for "Send test event".
    sources: Vec<String>,
    source: String,
    event_type: String,
    rows: Vec<EventRow>,
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    source: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// Search by id: straight to the event.
    id: Option<String>,
    cursor: Option<String>,
}

pub async fn events(
    State(ui): State<Ui>,
    session: CurrentSession,
    Query(filter): Query<EventsQuery>,
) -> Result<Response, PageError> {
    if let Some(id) = filter.id.as_deref().map(str::trim).filter(|id| !id.is_empty()) {
        return Ok(Redirect::to(&format!("/ui/events/{}", segment(id))).into_response());
    }
    let uri = format!(
        "/v1/admin/events?{}",
        query([
            ("source", filter.source.as_deref()),
            ("type", filter.event_type.as_deref()),
            ("cursor", filter.cursor.as_deref()),
        ])
    );
    let answer = ui.read(session.role, &uri).await?;
    let next = view::text(&answer, "next_cursor").map(|cursor| {
        query([
            ("source", filter.source.as_deref()),
            ("type", filter.event_type.as_deref()),
            ("cursor", Some(cursor.as_str())),
        ])
    });
    let sources = ui
        .state
        .topology
        .sources
        .values()
        .filter(|source| matches!(source.kind, crate::config::SourceKind::Http))
        .map(|source| source.id.clone())
        .collect();
    let page = EventsPage {
        chrome: Chrome::new("Events", &session, "events"),
        admin: session.role == Role::Admin,
        sources,
        source: filter.source.unwrap_or_default(),
        event_type: filter.event_type.unwrap_or_default(),
        rows: view::rows(&answer),
        next,
    };
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "ui/event.html")]
struct EventPage {
    chrome: Chrome,
    event: EventRow,
    headers: Vec<(String, String)>,
    body: String,
    body_view: &'static str,
    deliveries: Vec<DeliveryRow>,
}

#[derive(Debug, Deserialize)]
pub struct EventQuery {
    view: Option<String>,
}

pub async fn event(
    State(ui): State<Ui>,
    session: CurrentSession,
    Path(id): Path<String>,
    Query(options): Query<EventQuery>,
) -> Result<Response, PageError> {
    let answer =
        ui.read(session.role, &format!("/v1/admin/events/{}?body=true", segment(&id))).await?;
    let event = EventRow::deserialize(&answer)
        .map_err(|_| PageError::new(StatusCode::BAD_GATEWAY, "the event could not be read"))?;
    // Credential-like headers are redacted on every page, whatever the role.
    let headers = answer
        .get("headers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|pair| {
            let name = pair.get(0)?.as_str()?.to_owned();
            let value = pair.get(1)?.as_str()?;
            let shown = if is_sensitive_header(&name) { "[redacted]" } else { value };
            Some((name, shown.to_owned()))
        })
        .collect();
    let body_view = BodyView::parse(options.view.as_deref());
    let body = view::show_body(
        &view::text(&answer, "body").unwrap_or_default(),
        &view::text(&answer, "body_encoding").unwrap_or_default(),
        body_view,
    );
    let deliveries = answer
        .get("deliveries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|item| DeliveryRow::deserialize(item).ok())
        .collect();
    let page = EventPage {
        chrome: Chrome::new(format!("Event {}", event.id), &session, "events"),
        event,
        headers,
        body,
        body_view: body_view.name(),
        deliveries,
    };
    Ok(render(&page))
}

// === deliveries ===

#[derive(Template)]
#[template(path = "ui/delivery.html")]
struct DeliveryPage {
    chrome: Chrome,
    admin: bool,
    delivery: DeliveryRow,
    attempts: Vec<AttemptRow>,
    /// The delivery as a freshly signed `curl` command, in the answer to "Copy as curl" only.
    curl: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

pub async fn delivery(
    State(ui): State<Ui>,
    session: CurrentSession,
    Path(id): Path<String>,
    Query(done): Query<DoneQuery>,
) -> Result<Response, PageError> {
    delivery_page(&ui, &session, &id, done.done.as_deref(), None).await
}

async fn delivery_page(
    ui: &Ui,
    session: &CurrentSession,
    id: &str,
    notice: Option<&str>,
    curl: Option<String>,
) -> Result<Response, PageError> {
    let answer = ui.read(session.role, &format!("/v1/admin/deliveries/{}", segment(id))).await?;
    let delivery = DeliveryRow::deserialize(&answer)
        .map_err(|_| PageError::new(StatusCode::BAD_GATEWAY, "the delivery could not be read"))?;
    let attempts = answer
        .get("attempt_log")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|item| AttemptRow::deserialize(item).ok())
        .collect();
    let page = DeliveryPage {
        chrome: Chrome::new(format!("Delivery {}", delivery.id), session, "events")
            .with_notice(notice),
        admin: session.role == Role::Admin,
        delivery,
        attempts,
        curl,
    };
    Ok(render(&page))
}

/// The delivery as a `curl` command signed now, shown in this answer.
pub async fn curl(
    State(ui): State<Ui>,
    session: CurrentSession,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let uri = format!("/v1/admin/deliveries/{}/curl", segment(&id));
    let (status, answer) = ui.api(session.role, Method::POST, &uri, Some(json!({}))).await?;
    if !status.is_success() {
        return Err(PageError::new(status, api_detail(&answer)));
    }
    delivery_page(&ui, &session, &id, None, view::text(&answer, "command")).await
}

/// Runs an action through the API and goes back to `back` with `done`, or shows why not.
async fn act(
    ui: &Ui,
    session: &CurrentSession,
    uri: &str,
    body: Value,
    back: &str,
    done: &str,
) -> Result<Response, PageError> {
    let (status, answer) = ui.api(session.role, Method::POST, uri, Some(body)).await?;
    if !status.is_success() {
        return Err(PageError::new(status, api_detail(&answer)));
    }
    Ok(Redirect::to(&format!("{back}?done={done}")).into_response())
}

pub async fn retry(
    State(ui): State<Ui>,
    session: CurrentSession,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = segment(&id);
    let uri = format!("/v1/admin/deliveries/{id}/retry");
    act(&ui, &session, &uri, json!({}), &format!("/ui/deliveries/{id}"), "retried").await
}

// === endpoints ===

/// Endpoints per page of the list: each costs one figures lookup (see `stats/endpoints`).
const ENDPOINTS_PER_PAGE: u32 = 50;

#[derive(Template)]
#[template(path = "ui/endpoints.html")]
struct EndpointsPage {
    chrome: Chrome,
    rows: Vec<(EndpointRow, EndpointFigures)>,
    /// The query of the next page, if any.
    next: Option<String>,
}

/// One endpoint's figures over 24 h, as `stats/endpoints` answers them.
#[derive(Debug, Clone, Default, Deserialize)]
struct EndpointFigures {
    endpoint: String,
    attempts: u64,
    failed: u64,
    success_percent: Option<f64>,
    latency_p95_ms: Option<f64>,
    buckets: Vec<u64>,
    failed_buckets: Vec<u64>,
    pending: u64,
    dead_letters: u64,
}

impl EndpointFigures {
    fn sparkline(&self) -> super::sparkline::Sparkline {
        super::sparkline::sparkline(&self.buckets, &self.failed_buckets)
    }

    fn success_text(&self) -> String {
        self.success_percent.map_or_else(|| "–".to_owned(), |percent| format!("{percent:.1} %"))
    }

    fn p95_text(&self) -> String {
        self.latency_p95_ms.map_or_else(|| "–".to_owned(), |ms| format!("{ms:.0} ms"))
    }
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    cursor: Option<String>,
    /// After a deletion: the endpoint, and how many queued deliveries became dead letters.
    deleted: Option<String>,
    dropped: Option<u64>,
}

pub async fn endpoints(
    State(ui): State<Ui>,
    session: CurrentSession,
    Query(paging): Query<PageQuery>,
) -> Result<Response, PageError> {
    let list = format!(
        "/v1/admin/endpoints?limit={ENDPOINTS_PER_PAGE}&{}",
        query([("cursor", paging.cursor.as_deref())])
    );
    let answer = ui.read(session.role, &list).await?;
    let endpoints: Vec<EndpointRow> = view::rows(&answer);
    let next =
        view::text(&answer, "next_cursor").map(|cursor| query([("cursor", Some(cursor.as_str()))]));
    let ids: Vec<&str> = endpoints.iter().map(|endpoint| endpoint.id.as_str()).collect();
    let mut figures: BTreeMap<String, EndpointFigures> = BTreeMap::new();
    if !ids.is_empty() {
        let uri =
            format!("/v1/admin/stats/endpoints?{}", query([("endpoints", Some(&*ids.join(",")))]));
        let answer = ui.read(session.role, &uri).await?;
        for row in view::rows::<EndpointFigures>(&answer) {
            figures.insert(row.endpoint.clone(), row);
        }
    }
    let rows = endpoints
        .into_iter()
        .map(|endpoint| {
            let row = figures.remove(&endpoint.id).unwrap_or_default();
            (endpoint, row)
        })
        .collect();
    let mut chrome = Chrome::new("Endpoints", &session, "endpoints");
    if let Some(deleted) = paging.deleted.filter(|id| view::is_plain_id(id)) {
        let dropped = paging.dropped.unwrap_or(0);
        chrome.notice = Some(format!(
            "Deleted endpoint {deleted}: {dropped} queued deliveries became dead letters."
        ));
    }
    let page = EndpointsPage { chrome, rows, next };
    Ok(render(&page))
}

/// Pending deliveries and dead letters of one endpoint (through the store interface).
async fn queue_counts(ui: &Ui, endpoint: &str) -> (u64, u64) {
    use crate::store::DeliveryState;
    let store = &ui.state.store;
    let pending = store.count_deliveries(DeliveryState::Pending, Some(endpoint.to_owned())).await;
    let dead = store.count_deliveries(DeliveryState::Dead, Some(endpoint.to_owned())).await;
    (pending.unwrap_or(0), dead.unwrap_or(0))
}

#[derive(Template)]
#[template(path = "ui/endpoint.html")]
struct EndpointPage {
    chrome: Chrome,
    admin: bool,
    endpoint: EndpointRow,
    pending: u64,
    dead: u64,
    deliveries: Vec<DeliveryRow>,
    /// The new secret, in the answer to a rotation only.
    new_secret: Option<String>,
}

async fn endpoint_page(
    ui: &Ui,
    session: &CurrentSession,
    id: &str,
    notice: Option<&str>,
    new_secret: Option<String>,
) -> Result<Response, PageError> {
    let id = segment(id);
    let answer = ui.read(session.role, &format!("/v1/admin/endpoints/{id}")).await?;
    let endpoint = EndpointRow::deserialize(&answer)
        .map_err(|_| PageError::new(StatusCode::BAD_GATEWAY, "the endpoint could not be read"))?;
    let recent =
        ui.read(session.role, &format!("/v1/admin/deliveries?endpoint={id}&limit=20")).await?;
    let (pending, dead) = queue_counts(ui, &endpoint.id).await;
    let page = EndpointPage {
        chrome: Chrome::new(format!("Endpoint {}", endpoint.id), session, "endpoints")
            .with_notice(notice),
        admin: session.role == Role::Admin,
        endpoint,
        pending,
        dead,
        deliveries: view::rows(&recent),
        new_secret,
    };
    Ok(render(&page))
}

pub async fn endpoint(
    State(ui): State<Ui>,
    session: CurrentSession,
    Path(id): Path<String>,
    Query(done): Query<DoneQuery>,
) -> Result<Response, PageError> {
    endpoint_page(&ui, &session, &id, done.done.as_deref(), None).await
}

pub async fn disable(
    State(ui): State<Ui>,
    session: CurrentSession,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = segment(&id);
    let uri = format!("/v1/admin/endpoints/{id}/disable");
    act(&ui, &session, &uri, json!({}), &format!("/ui/endpoints/{id}"), "disabled").await
}

pub async fn enable(
    State(ui): State<Ui>,
    session: CurrentSession,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = segment(&id);
    let uri = format!("/v1/admin/endpoints/{id}/enable");
    act(&ui, &session, &uri, json!({}), &format!("/ui/endpoints/{id}"), "enabled").await
}

/// Rotates the signing secret and shows the new one in this answer, once (never stored for
/// display, never in a URL).
pub async fn rotate(
    State(ui): State<Ui>,
    session: CurrentSession,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let fields = form(&body);
    let overlap = fields.get("overlap").filter(|text| !text.is_empty()).cloned();
    let request = match overlap {
        Some(overlap) => json!({ "overlap": overlap }),
        None => json!({}),
    };
    let uri = format!("/v1/admin/endpoints/{}/secret/rotate", segment(&id));
    let (status, answer) = ui.api(session.role, Method::POST, &uri, Some(request)).await?;
    if !status.is_success() {
        return Err(PageError::new(status, api_detail(&answer)));
    }
    let secret = view::text(&answer, "secret");
    endpoint_page(&ui, &session, &id, None, secret).await
}

/// Sends the endpoint a test event (`POST /v1/admin/endpoints/{id}/test`) and shows its
/// delivery.
pub async fn send_test(
    State(ui): State<Ui>,
    session: CurrentSession,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let uri = format!("/v1/admin/endpoints/{}/test", segment(&id));
    let (status, answer) = ui.api(session.role, Method::POST, &uri, Some(json!({}))).await?;
    if !status.is_success() {
        return Err(PageError::new(status, api_detail(&answer)));
    }
    Ok(Redirect::to(&test_delivery_link("/ui", &answer)?).into_response())
}

/// Where the answer of an endpoint's test event sends the page: `{base}/deliveries/<id>`,
/// saying whether it went out or was parked.
pub(super) fn test_delivery_link(base: &str, answer: &Value) -> Result<String, PageError> {
    let delivery = answer.get("delivery").and_then(Value::as_i64).ok_or_else(|| {
        PageError::new(StatusCode::BAD_GATEWAY, "the test event's delivery could not be read")
    })?;
    let done = match answer.get("status").and_then(Value::as_str) {
        Some("parked") => "test-parked",
        _ => "test-sent",
    };
    Ok(format!("{base}/deliveries/{delivery}?done={done}"))
}

// === dead letters ===

#[derive(Template)]
#[template(path = "ui/dead_letters.html")]
struct DeadLettersPage {
    chrome: Chrome,
    admin: bool,
    endpoint: String,
    rows: Vec<DeliveryRow>,
    next: Option<String>,
    /// After a dry run: how many would be redriven.
    would_redrive: Option<u64>,
    /// The dry run's selection (delivery ids), carried to the confirmation; empty: by filter.
    selected: Vec<String>,
    /// After a redrive: how many were.
    redriven: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct DeadLetterQuery {
    endpoint: Option<String>,
    cursor: Option<String>,
    redriven: Option<u64>,
}

async fn dead_letters_page(
    ui: &Ui,
    session: &CurrentSession,
    endpoint: Option<String>,
    cursor: Option<String>,
    would_redrive: Option<u64>,
    selected: Vec<String>,
    redriven: Option<u64>,
) -> Result<Response, PageError> {
    let uri = format!(
        "/v1/admin/dead-letters?{}",
        query([("endpoint", endpoint.as_deref()), ("cursor", cursor.as_deref())])
    );
    let answer = ui.read(session.role, &uri).await?;
    let next = view::text(&answer, "next_cursor").map(|cursor| {
        query([("endpoint", endpoint.as_deref()), ("cursor", Some(cursor.as_str()))])
    });
    let page = DeadLettersPage {
        chrome: Chrome::new("Dead letters", session, "dead-letters"),
        admin: session.role == Role::Admin,
        endpoint: endpoint.unwrap_or_default(),
        rows: view::rows(&answer),
        next,
        would_redrive,
        selected,
        redriven,
    };
    Ok(render(&page))
}

pub async fn dead_letters(
    State(ui): State<Ui>,
    session: CurrentSession,
    Query(filter): Query<DeadLetterQuery>,
) -> Result<Response, PageError> {
    let endpoint = filter.endpoint.filter(|text| !text.is_empty());
    dead_letters_page(&ui, &session, endpoint, filter.cursor, None, Vec::new(), filter.redriven)
        .await
}

/// Bulk redrive in two steps: without `confirm`, a dry run that shows the count and asks;
/// with it, the redrive.
pub async fn redrive(
    State(ui): State<Ui>,
    session: CurrentSession,
    body: Bytes,
) -> Result<Response, PageError> {
    let fields = form(&body);
    let endpoint = fields.get("endpoint").filter(|text| !text.is_empty()).cloned();
    let dry_run = fields.get("confirm").is_none_or(|confirm| confirm != "yes");
    // Ticked rows: every `id` field (a map keeps only one).
    let selected: Vec<String> = form_urlencoded::parse(&body)
        .filter(|(name, _)| name == "id")
        .map(|(_, value)| value.into_owned())
        .collect();
    if fields.get("selection").is_some_and(|value| value == "yes") && selected.is_empty() {
        let message = "no dead letter was ticked: tick the rows to redrive";
        return Err(PageError::new(StatusCode::UNPROCESSABLE_ENTITY, message));
    }
    let request = json!({ "endpoint": endpoint, "ids": selected, "dry_run": dry_run });
    let uri = "/v1/admin/dead-letters/redrive";
    let (status, answer) = ui.api(session.role, Method::POST, uri, Some(request)).await?;
    if !status.is_success() {
        return Err(PageError::new(status, api_detail(&answer)));
    }
    let count = answer.get("deliveries").and_then(Value::as_u64).unwrap_or(0);
    if dry_run {
        return dead_letters_page(&ui, &session, endpoint, None, Some(count), selected, None).await;
    }
    let back = format!(
        "/ui/dead-letters?{}",
        query([("endpoint", endpoint.as_deref()), ("redriven", Some(count.to_string().as_str()))])
    );
    Ok(Redirect::to(&back).into_response())
}

// === route trace ===

#[derive(Template)]
#[template(path = "ui/trace.html")]
struct TracePage {
    chrome: Chrome,
    id: String,
    trace: crate::route_trace::Trace,
    outcome: String,
}

/// Why (or why not) a stored event goes where it goes under the running config: each verify
/// plugin's verdict, each route's criteria up to the first that says no, each route plugin's
/// verdict and the deliveries it would make. The same core as `switchyard routes test`;
/// plugins run in their sandbox, off the async threads; nothing is stored or sent. Routes of
/// dynamic endpoints are not traced (they are not in the config).
pub async fn trace(
    State(ui): State<Ui>,
    session: CurrentSession,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    use crate::event::EventId;
    use crate::route_trace::Outcome;
    let not_found = || PageError::new(StatusCode::NOT_FOUND, format!("no event `{id}`"));
    let event_id: EventId = id.parse().map_err(|_| not_found())?;
    let stored = ui.state.store.event(event_id).await.map_err(|_| {
        PageError::new(StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable; retry")
    })?;
    let event = stored.ok_or_else(not_found)?;
    let topology = ui.state.topology.clone();
    if !topology.sources.contains_key(&event.source) {
        let message = format!("source `{}` is no longer in the config", event.source);
        return Err(PageError::new(StatusCode::CONFLICT, message));
    }
    let traced = tokio::task::spawn_blocking(move || {
        let cache = crate::plugin::RuntimeOptions::serving(&topology.server.data_dir).cache_dir;
        crate::routes_cli::trace_event(&topology, event, cache.as_deref())
    })
    .await
    .map_err(|_| PageError::new(StatusCode::INTERNAL_SERVER_ERROR, "the trace failed"))?;
    let outcome = match &traced.outcome {
        Outcome::Accepted => "accepted".to_owned(),
        Outcome::Dropped { plugin } => format!("dropped by `{plugin}`"),
        Outcome::Rejected { plugin, status, code, message } => {
            format!("rejected by `{plugin}`: {status} {code}: {message}")
        }
        Outcome::Retry { plugin, reason } => format!("retry asked by `{plugin}`: {reason}"),
    };
    let page = TracePage {
        chrome: Chrome::new(format!("Route trace of {id}"), &session, "events"),
        id: event_id.to_string(),
        trace: traced,
        outcome,
    };
    Ok(render(&page))
}

// === test events ===

#[derive(Template)]
#[template(path = "ui/test_event.html")]
struct TestEventPage {
    chrome: Chrome,
    source: String,
    answer: Value,
    headers: Vec<(String, String)>,
}

/// Sends a provider-signed sample event to a source through the real ingest path, and shows
/// what the provider would have got.
pub async fn test_event(
    State(ui): State<Ui>,
    session: CurrentSession,
    body: Bytes,
) -> Result<Response, PageError> {
    let fields = form(&body);
    let source = fields.get("source").cloned().unwrap_or_default();
    let request = match fields.get("scheme").map(String::as_str) {
        None | Some("" | "auto") => json!({}),
        Some(scheme) => json!({ "scheme": scheme }),
    };
    let uri = format!("/v1/admin/sources/{}/test", segment(&source));
    let (status, answer) = ui.api(session.role, Method::POST, &uri, Some(request)).await?;
    if !status.is_success() {
        return Err(PageError::new(status, api_detail(&answer)));
    }
    let headers = answer
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, value)| (name.clone(), value.as_str().unwrap_or_default().to_owned()))
        .collect();
    let page = TestEventPage {
        chrome: Chrome::new(format!("Test event to {source}"), &session, "events"),
        source,
        answer,
        headers,
    };
    Ok(render(&page))
}
