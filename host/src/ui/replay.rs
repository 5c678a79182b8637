//! The replay page (`/ui/replay`): every event received in a time range routed again by the
//! current routes (optionally one route, one endpoint), in two steps as the bulk redrive: a
//! dry run through `POST /v1/admin/replay` shows how many deliveries it would make, then the
//! confirmation replays exactly that range.
//!
//! Decision: times are given as how long ago (`2h`, `30m`; `until` empty is now); the dry run
//! turns them into unix milliseconds, and the confirmation carries those, so the replay covers
//! the range that was counted.

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::pages::{Chrome, form, render};
use super::{CurrentSession, PageError, Ui, api_detail};
use crate::config::values::parse_duration;
use crate::event::now_millis;

#[derive(Template)]
#[template(path = "ui/replay.html")]
struct ReplayPage {
    chrome: Chrome,
    routes: Vec<String>,
    endpoints: Vec<String>,
    since: String,
    until: String,
    route: String,
    endpoint: String,
    /// After a dry run: the range in unix ms and the count.
    counted: Option<Counted>,
    /// After a replay: how many deliveries it made.
    replayed: Option<u64>,
}

struct Counted {
    since_ms: u64,
    until_ms: u64,
    deliveries: u64,
}

fn page(ui: &Ui, session: &CurrentSession) -> ReplayPage {
    let topology = &ui.state.topology;
    ReplayPage {
        chrome: Chrome::new("Replay", session, "replay"),
        routes: topology.routes.keys().cloned().collect(),
        endpoints: topology.endpoints.keys().cloned().collect(),
        since: "1h".to_owned(),
        until: String::new(),
        route: String::new(),
        endpoint: String::new(),
        counted: None,
        replayed: None,
    }
}

pub async fn form_page(State(ui): State<Ui>, session: CurrentSession) -> Response {
    render(&page(&ui, &session))
}

/// `2h` ago in unix ms; empty is `now`.
fn ago(text: &str, now: u64, field: &str) -> Result<u64, PageError> {
    if text.trim().is_empty() {
        return Ok(now);
    }
    let duration = parse_duration(text.trim()).map_err(|problem| {
        PageError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("`{field}`: {problem}"))
    })?;
    Ok(now.saturating_sub(duration.as_millis() as u64))
}

/// Without `confirm`: the dry run. With it: the replay of the counted range.
pub async fn replay(
    State(ui): State<Ui>,
    session: CurrentSession,
    body: Bytes,
) -> Result<Response, PageError> {
    let fields = form(&body);
    let field =
        |name: &str| fields.get(name).map(|text| text.trim().to_owned()).unwrap_or_default();
    let confirm = field("confirm") == "yes";
    let (since_ms, until_ms) = if confirm {
        let number = |name: &str| {
            field(name).parse::<u64>().map_err(|_| {
                PageError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("`{name}` is not a time"))
            })
        };
        (number("since_ms")?, number("until_ms")?)
    } else {
        let now = now_millis();
        (ago(&field("since"), now, "since")?, ago(&field("until"), now, "until")? + 1)
    };
    let mut request = Map::new();
    request.insert("since".into(), json!(since_ms));
    request.insert("until".into(), json!(until_ms));
    request.insert("dry_run".into(), json!(!confirm));
    for name in ["route", "endpoint"] {
        if !field(name).is_empty() {
            request.insert(name.into(), json!(field(name)));
        }
    }
    let (status, answer) = ui
        .api(session.role, Method::POST, "/v1/admin/replay", Some(Value::Object(request)))
        .await?;
    if !status.is_success() {
        return Err(PageError::new(status, api_detail(&answer)));
    }
    let deliveries = answer.get("deliveries").and_then(Value::as_u64).unwrap_or(0);
    let mut shown = page(&ui, &session);
    shown.since = field("since");
    shown.until = field("until");
    shown.route = field("route");
    shown.endpoint = field("endpoint");
    if confirm {
        shown.replayed = Some(deliveries);
    } else {
        shown.counted = Some(Counted { since_ms, until_ms, deliveries });
    }
    Ok(render(&shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ago_is_a_duration_before_now_and_empty_is_now() {
        assert_eq!(ago("2h", 10_000_000, "since").unwrap(), 10_000_000 - 7_200_000);
        assert_eq!(ago(" ", 5, "until").unwrap(), 5);
        assert!(ago("soon", 5, "since").is_err());
    }
}
