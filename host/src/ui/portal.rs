//! The endpoint portal at `/portal/<token>`: one endpoint shown to its owner, from a link the
//! admin API made (`POST /v1/admin/endpoints/{id}/portal`). Its deliveries and their attempts,
//! retry, sending it a test event, and rotating its secret (dynamic endpoints); every other id answers 404, and so does
//! the link once expired.
//!
//! Its changes are recorded in the audit log with role `portal` and the link's id (the token
//! without its signature) as the credential.
//!
//! Reads and acts through the admin API like the dashboard, then checks that what it got
//! belongs to the link's endpoint before showing or changing it. Changes pass the same-origin
//! rule.

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::pages::{Chrome, render};
use super::view::{self, AttemptRow, DeliveryRow, EndpointRow};
use super::{PageError, Ui, api_detail, is_secure, session};
use crate::admin::access::Role;
use crate::admin::audit::Credential;
use crate::event::now_millis;

fn gone() -> PageError {
    PageError::new(StatusCode::NOT_FOUND, "this link is not valid, or it has expired")
}

/// The endpoint `token` opens.
fn endpoint_of(ui: &Ui, token: &str) -> Result<String, PageError> {
    ui.key.check_portal(token, now_millis()).ok_or_else(gone)
}

/// Who the portal's actions are recorded as: role `portal`, the link's id.
fn as_link(token: &str) -> Credential {
    Credential { role: "portal".to_owned(), id: session::portal_link_id(token).to_owned() }
}

fn chrome(title: String) -> Chrome {
    Chrome { title, role: None, section: "", notice: None }
}

#[derive(Template)]
#[template(path = "ui/portal.html")]
struct PortalPage {
    chrome: Chrome,
    token: String,
    endpoint: EndpointRow,
    deliveries: Vec<DeliveryRow>,
    new_secret: Option<String>,
    notice: Option<&'static str>,
}

async fn portal_page(
    ui: &Ui,
    token: &str,
    new_secret: Option<String>,
    notice: Option<&'static str>,
) -> Result<Response, PageError> {
    let id = endpoint_of(ui, token)?;
    let answer = ui.read(Role::Admin, &format!("/v1/admin/endpoints/{id}")).await?;
    let endpoint = EndpointRow::deserialize(&answer).map_err(|_| gone())?;
    let recent =
        ui.read(Role::Admin, &format!("/v1/admin/deliveries?endpoint={id}&limit=50")).await?;
    let page = PortalPage {
        chrome: chrome(format!("Endpoint {id}")),
        token: token.to_owned(),
        endpoint,
        deliveries: view::rows(&recent),
        new_secret,
        notice,
    };
    Ok(render(&page))
}

pub async fn home(State(ui): State<Ui>, Path(token): Path<String>) -> Result<Response, PageError> {
    portal_page(&ui, &token, None, None).await
}

#[derive(Template)]
#[template(path = "ui/portal_delivery.html")]
struct PortalDeliveryPage {
    chrome: Chrome,
    token: String,
    delivery: DeliveryRow,
    attempts: Vec<AttemptRow>,
    notice: Option<&'static str>,
}

/// The delivery `id` if it is the link's endpoint's; 404 otherwise (whether or not it exists).
async fn own_delivery(ui: &Ui, token: &str, id: &str) -> Result<(DeliveryRow, Value), PageError> {
    let endpoint = endpoint_of(ui, token)?;
    let id: u64 = id.parse().map_err(|_| gone())?;
    let (status, answer) =
        ui.api(Role::Admin, Method::GET, &format!("/v1/admin/deliveries/{id}"), None).await?;
    if !status.is_success() {
        return Err(gone());
    }
    let delivery = DeliveryRow::deserialize(&answer).map_err(|_| gone())?;
    if delivery.endpoint != endpoint {
        return Err(gone());
    }
    Ok((delivery, answer))
}

#[derive(Debug, Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

pub async fn delivery(
    State(ui): State<Ui>,
    Path((token, id)): Path<(String, String)>,
    axum::extract::Query(done): axum::extract::Query<DoneQuery>,
) -> Result<Response, PageError> {
    let (delivery, answer) = own_delivery(&ui, &token, &id).await?;
    let attempts = answer
        .get("attempt_log")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|item| AttemptRow::deserialize(item).ok())
        .collect();
    let notice = done.done.as_deref().and_then(|done| match done {
        "retried" => Some("Sent again: the delivery is pending and goes out now."),
        "test-sent" => Some("Test event sent: this is its delivery, going out now."),
        "test-parked" => {
            Some("Test event sent: this is its delivery, parked because the endpoint is disabled.")
        }
        _ => None,
    });
    let page = PortalDeliveryPage {
        chrome: chrome(format!("Delivery {}", delivery.id)),
        token,
        delivery,
        attempts,
        notice,
    };
    Ok(render(&page))
}

fn same_origin(request: &Request) -> Result<(), PageError> {
    if session::same_origin(request.headers(), is_secure(request)) {
        Ok(())
    } else {
        let message = "refused: this request did not come from a page of this portal";
        Err(PageError::new(StatusCode::FORBIDDEN, message))
    }
}

pub async fn retry(
    State(ui): State<Ui>,
    Path((token, id)): Path<(String, String)>,
    request: Request,
) -> Result<Response, PageError> {
    same_origin(&request)?;
    let (delivery, _) = own_delivery(&ui, &token, &id).await?;
    let uri = format!("/v1/admin/deliveries/{}/retry", delivery.id);
    let (status, answer) =
        ui.api_as(Role::Admin, Some(as_link(&token)), Method::POST, &uri, Some(json!({}))).await?;
    if !status.is_success() {
        return Err(PageError::new(status, api_detail(&answer)));
    }
    let back = format!("/portal/{token}/deliveries/{}?done=retried", delivery.id);
    Ok(Redirect::to(&back).into_response())
}

pub async fn rotate(
    State(ui): State<Ui>,
    Path(token): Path<String>,
    request: Request,
) -> Result<Response, PageError> {
    same_origin(&request)?;
    let id = endpoint_of(&ui, &token)?;
    let uri = format!("/v1/admin/endpoints/{id}/secret/rotate");
    let (status, answer) =
        ui.api_as(Role::Admin, Some(as_link(&token)), Method::POST, &uri, Some(json!({}))).await?;
    if !status.is_success() {
        return Err(PageError::new(status, api_detail(&answer)));
    }
    let secret = view::text(&answer, "secret");
    let notice =
        Some("Rotated: the previous secret keeps signing for 24 hours beside the new one.");
    portal_page(&ui, &token, secret, notice).await
}

/// Sends the link's endpoint a test event and shows its delivery.
pub async fn send_test(
    State(ui): State<Ui>,
    Path(token): Path<String>,
    request: Request,
) -> Result<Response, PageError> {
    same_origin(&request)?;
    let id = endpoint_of(&ui, &token)?;
    let uri = format!("/v1/admin/endpoints/{}/test", super::pages::segment(&id));
    let (status, answer) =
        ui.api_as(Role::Admin, Some(as_link(&token)), Method::POST, &uri, Some(json!({}))).await?;
    if !status.is_success() {
        return Err(PageError::new(status, api_detail(&answer)));
    }
    let back = super::pages::test_delivery_link(&format!("/portal/{token}"), &answer)?;
    Ok(Redirect::to(&back).into_response())
}
