//! The signature helper page (`/ui/signatures`): paste a received request's headers and body
//! and a secret (or pick a config endpoint or source) and see which part of its signature
//! differs, through the admin API's `POST /v1/admin/signatures/check`. The secret field is a
//! password field and is never shown again.

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::pages::{Chrome, form, render};
use super::{CurrentSession, PageError, Ui, api_detail};

#[derive(Template)]
#[template(path = "ui/signatures.html")]
struct SignaturesPage {
    chrome: Chrome,
    endpoints: Vec<String>,
    sources: Vec<String>,
    /// The form's values, shown again (never the secret).
    scheme: String,
    from: String,
    headers: String,
    body: String,
    result: Option<Outcome>,
}

/// What the helper answered, ready to show.
struct Outcome {
    valid: bool,
    signature_matches: bool,
    expected: String,
    /// `(part, detail)`.
    findings: Vec<(String, String)>,
    /// With an endpoint's keys: which one matched, or that none did.
    key: Option<String>,
}

fn page(ui: &Ui, session: &CurrentSession) -> SignaturesPage {
    let topology = &ui.state.topology;
    SignaturesPage {
        chrome: Chrome::new("Signature helper", session, "signatures"),
        endpoints: topology
            .endpoints
            .values()
            .filter(|endpoint| !endpoint.secrets.is_empty())
            .map(|endpoint| endpoint.id.clone())
            // Dynamic endpoints: their current and previous keys are tried.
            .chain(ui.state.registry.list().into_iter().map(|endpoint| endpoint.id))
            .collect(),
        sources: topology
            .sources
            .values()
            .filter(|source| !source.verify.is_empty())
            .map(|source| source.id.clone())
            .collect(),
        scheme: "standard-webhooks".to_owned(),
        from: "secret".to_owned(),
        headers: String::new(),
        body: String::new(),
        result: None,
    }
}

pub async fn form_page(State(ui): State<Ui>, session: CurrentSession) -> Response {
    render(&page(&ui, &session))
}

/// `Name: value` lines as a JSON object of headers.
fn header_lines(text: &str) -> Map<String, Value> {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), json!(value.trim())))
        .filter(|(name, _)| !name.is_empty())
        .collect()
}

fn outcome_of(answer: &Value) -> Outcome {
    Outcome {
        valid: answer["valid"].as_bool().unwrap_or(false),
        signature_matches: answer["signature_matches"].as_bool().unwrap_or(false),
        expected: answer["expected"].as_str().unwrap_or_default().to_owned(),
        findings: answer["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|finding| {
                let text = |key: &str| finding[key].as_str().unwrap_or_default().to_owned();
                (text("part"), text("detail"))
            })
            .collect(),
        key: answer["key"].as_str().map(str::to_owned),
    }
}

pub async fn check(
    State(ui): State<Ui>,
    session: CurrentSession,
    body: Bytes,
) -> Result<Response, PageError> {
    let fields = form(&body);
    let field = |name: &str| fields.get(name).cloned().unwrap_or_default();
    let mut request = Map::new();
    let from = field("from");
    match from.split_once(':') {
        Some(("endpoint", id)) => drop(request.insert("endpoint".into(), json!(id))),
        Some(("source", id)) => drop(request.insert("source".into(), json!(id))),
        _ => {
            request.insert("secret".into(), json!(field("secret")));
            request.insert("scheme".into(), json!(field("scheme")));
        }
    }
    // Form fields arrive with CRLF line ends; the body is what was pasted, with LF.
    let pasted = field("body").replace("\r\n", "\n");
    request.insert("headers".into(), Value::Object(header_lines(&field("headers"))));
    request.insert("body".into(), json!(pasted));
    let uri = "/v1/admin/signatures/check";
    let (status, answer) =
        ui.api(session.role, Method::POST, uri, Some(Value::Object(request))).await?;
    let mut shown = page(&ui, &session);
    if status.is_success() {
        shown.result = Some(outcome_of(&answer));
    } else if status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::NOT_FOUND {
        shown.chrome.notice = Some(format!("the check was refused: {}", api_detail(&answer)));
    } else {
        return Err(PageError::new(status, api_detail(&answer)));
    }
    shown.scheme = field("scheme");
    shown.from = from;
    shown.headers = field("headers");
    shown.body = pasted;
    Ok(render(&shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lines_split_at_the_first_colon_and_lower_case_the_name() {
        let headers =
            header_lines("Webhook-Id: msg_1\r\nstripe-signature: t=1,v1=ab:cd\nnonsense\n");
        assert_eq!(headers["webhook-id"], "msg_1");
        assert_eq!(headers["stripe-signature"], "t=1,v1=ab:cd");
        assert_eq!(headers.len(), 2);
    }
}
