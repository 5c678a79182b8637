//! Editing and deleting a dynamic endpoint from the dashboard, each behind a confirmation page
//! that counts the endpoint's queued deliveries and says what happens to them, as the admin
//! API does it (`PATCH` and `DELETE /v1/admin/endpoints/{id}`). Config-file endpoints are
//! read-only: the API refuses them (409) and the pages say so.
//!
//! The flow works without JavaScript: form → confirmation (a POST that changes nothing) →
//! the change (a POST carrying the confirmed values) → a redirect.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::pages::{Chrome, form, render, segment};
use super::view::EndpointRow;
use super::{CurrentSession, PageError, Ui, api_detail};
use crate::admin::access::Role;
use crate::store::DeliveryState;

/// An endpoint's deliveries that have not reached it yet, now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Queued {
    pub pending: u64,
    pub parked: u64,
    pub dead: u64,
}

impl Queued {
    pub fn waiting(&self) -> u64 {
        self.pending + self.parked
    }
}

/// What editing does to the queued deliveries, in the API's own terms.
pub fn edit_consequence(queued: Queued, url_changes: bool, verify_endpoints: bool) -> String {
    let counted = format!(
        "Queued deliveries: {} ({} pending, {} parked).",
        queued.waiting(),
        queued.pending,
        queued.parked
    );
    if !url_changes {
        return format!(
            "{counted} They stay queued and are sent with the new settings from their next \
             attempt."
        );
    }
    let mut text = format!(
        "{counted} They go to the new URL from their next attempt; an attempt already under \
         way finishes at the old one."
    );
    if verify_endpoints {
        text.push_str(
            " The new URL must prove ownership first: until it answers its challenge, \
             deliveries wait.",
        );
    }
    text
}

/// What deleting does to them.
pub fn delete_consequence(id: &str, queued: Queued) -> String {
    format!(
        "Queued deliveries: {} ({} pending, {} parked). They will be dropped: they become dead \
         letters with the error \"endpoint `{id}` was deleted\" and are never sent. Its {} \
         dead letters stay listed but cannot be redriven. The id `{id}` is never used again.",
        queued.waiting(),
        queued.pending,
        queued.parked,
        queued.dead
    )
}

async fn queued(ui: &Ui, endpoint: &str) -> Queued {
    let store = &ui.state.store;
    let count = |state| store.count_deliveries(state, Some(endpoint.to_owned()));
    Queued {
        pending: count(DeliveryState::Pending).await.unwrap_or(0),
        parked: count(DeliveryState::Parked).await.unwrap_or(0),
        dead: count(DeliveryState::Dead).await.unwrap_or(0),
    }
}

/// The form's fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EditFields {
    pub url: String,
    pub description: String,
    /// Comma-separated.
    pub types: String,
    pub timeout: String,
}

impl EditFields {
    fn of(endpoint: &EndpointRow) -> Self {
        Self {
            url: endpoint.url.clone().unwrap_or_default(),
            description: endpoint.description.clone().unwrap_or_default(),
            types: endpoint.types.join(", "),
            timeout: endpoint.timeout.clone(),
        }
    }

    fn from_form(body: &Bytes) -> Self {
        let fields = form(body);
        let field = |name: &str| fields.get(name).map(|text| text.trim().to_owned());
        Self {
            url: field("url").unwrap_or_default(),
            description: field("description").unwrap_or_default(),
            types: field("types").unwrap_or_default(),
            timeout: field("timeout").unwrap_or_default(),
        }
    }

    /// The `PATCH` body: only what differs from `current`.
    pub fn changes(&self, current: &EditFields) -> Map<String, Value> {
        let mut patch = Map::new();
        if self.url != current.url {
            patch.insert("url".into(), Value::from(self.url.clone()));
        }
        if self.description != current.description {
            patch.insert("description".into(), Value::from(self.description.clone()));
        }
        if self.types != current.types {
            let types: Vec<Value> = self
                .types
                .split(',')
                .map(str::trim)
                .filter(|glob| !glob.is_empty())
                .map(Value::from)
                .collect();
            patch.insert("types".into(), Value::Array(types));
        }
        if self.timeout != current.timeout && !self.timeout.is_empty() {
            patch.insert("timeout".into(), Value::from(self.timeout.clone()));
        }
        patch
    }
}

#[derive(Template)]
#[template(path = "ui/endpoint_edit.html")]
struct EditPage {
    chrome: Chrome,
    endpoint: EndpointRow,
    fields: EditFields,
    /// On the confirmation: the changed fields and what happens to the queue.
    confirm: Option<(Vec<(String, String)>, String)>,
}

#[derive(Template)]
#[template(path = "ui/endpoint_delete.html")]
struct DeletePage {
    chrome: Chrome,
    endpoint: EndpointRow,
    consequence: String,
    waiting: u64,
}

async fn dynamic(ui: &Ui, session: &CurrentSession, id: &str) -> Result<EndpointRow, PageError> {
    if session.role != Role::Admin {
        return Err(PageError::new(StatusCode::FORBIDDEN, "this session may not do that"));
    }
    let answer = ui.read(session.role, &format!("/v1/admin/endpoints/{}", segment(id))).await?;
    let endpoint = EndpointRow::deserialize(&answer)
        .map_err(|_| PageError::new(StatusCode::BAD_GATEWAY, "the endpoint could not be read"))?;
    if endpoint.origin != "dynamic" {
        let message = format!(
            "endpoint `{id}` is defined in the config file: it is read-only here; change it there"
        );
        return Err(PageError::new(StatusCode::CONFLICT, message));
    }
    Ok(endpoint)
}

fn chrome(title: &str, session: &CurrentSession, id: &str) -> Chrome {
    Chrome::new(format!("{title} {id}"), session, "endpoints")
}

pub async fn edit_form(
    State(ui): State<Ui>,
    session: CurrentSession,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let endpoint = dynamic(&ui, &session, &id).await?;
    let fields = EditFields::of(&endpoint);
    let page = EditPage { chrome: chrome("Edit", &session, &id), endpoint, fields, confirm: None };
    Ok(render(&page))
}

/// `confirm=0`: shows what would change and what happens to the queue; `confirm=1`: changes.
pub async fn edit(
    State(ui): State<Ui>,
    session: CurrentSession,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let endpoint = dynamic(&ui, &session, &id).await?;
    let current = EditFields::of(&endpoint);
    let wanted = EditFields::from_form(&body);
    let changes = wanted.changes(&current);
    let confirmed = form(&body).get("confirm").is_some_and(|value| value == "1");
    if confirmed && !changes.is_empty() {
        let uri = format!("/v1/admin/endpoints/{}", segment(&id));
        let (status, answer) =
            ui.api(session.role, Method::PATCH, &uri, Some(Value::Object(changes))).await?;
        if !status.is_success() {
            return Err(PageError::new(status, api_detail(&answer)));
        }
        return Ok(
            Redirect::to(&format!("/ui/endpoints/{}?done=edited", segment(&id))).into_response()
        );
    }
    let url_changes = changes.contains_key("url");
    let verify = ui.state.topology.server.verify_endpoints;
    let consequence = if changes.is_empty() {
        "Nothing differs from the endpoint's settings.".to_owned()
    } else {
        edit_consequence(queued(&ui, &endpoint.id).await, url_changes, verify)
    };
    let listed = changes
        .iter()
        .map(|(name, value)| {
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            (name.clone(), text)
        })
        .collect();
    let page = EditPage {
        chrome: chrome("Edit", &session, &id),
        endpoint,
        fields: wanted,
        confirm: Some((listed, consequence)),
    };
    Ok(render(&page))
}

pub async fn delete_form(
    State(ui): State<Ui>,
    session: CurrentSession,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let endpoint = dynamic(&ui, &session, &id).await?;
    let queued = queued(&ui, &endpoint.id).await;
    let page = DeletePage {
        chrome: chrome("Delete", &session, &id),
        consequence: delete_consequence(&endpoint.id, queued),
        waiting: queued.waiting(),
        endpoint,
    };
    Ok(render(&page))
}

pub async fn delete(
    State(ui): State<Ui>,
    session: CurrentSession,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    dynamic(&ui, &session, &id).await?;
    let uri = format!("/v1/admin/endpoints/{}", segment(&id));
    let (status, answer) = ui.api(session.role, Method::DELETE, &uri, None).await?;
    if !status.is_success() {
        return Err(PageError::new(status, api_detail(&answer)));
    }
    let dropped = answer.get("dead_lettered").and_then(Value::as_u64).unwrap_or(0);
    Ok(Redirect::to(&format!("/ui/endpoints?deleted={}&dropped={dropped}", segment(&id)))
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_confirmations_count_what_happens_to_the_queue() {
        let queued = Queued { pending: 3, parked: 1, dead: 2 };
        assert_eq!(
            delete_consequence("ep_1", queued),
            "Queued deliveries: 4 (3 pending, 1 parked). They will be dropped: they become dead \
             letters with the error \"endpoint `ep_1` was deleted\" and are never sent. Its 2 \
             dead letters stay listed but cannot be redriven. The id `ep_1` is never used again."
        );
        let one = Queued { pending: 1, parked: 0, dead: 0 };
        assert!(
            edit_consequence(one, true, false)
                .starts_with("Queued deliveries: 1 (1 pending, 0 parked). They go to the new URL")
        );
        assert!(edit_consequence(one, true, true).contains("must prove ownership first"));
        assert!(edit_consequence(one, false, true).contains("stay queued"));
    }

    #[test]
    fn only_the_changed_fields_are_sent() {
        let current = EditFields {
            url: "https://a.example/".into(),
            description: "billing".into(),
            types: "github.*, stripe.*".into(),
            timeout: "15s".into(),
        };
        assert!(current.changes(&current).is_empty());
        let wanted = EditFields {
            url: "https://b.example/".into(),
            types: "github.push,  ,stripe.*".into(),
            timeout: String::new(),
            ..current.clone()
        };
        let changes = Value::Object(wanted.changes(&current));
        assert_eq!(
            changes,
            serde_json::json!({"url": "https://b.example/", "types": ["github.push", "stripe.*"]})
        );
    }
}
