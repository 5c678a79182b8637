//! The plugins page (`/ui/plugins`): each configured plugin with where it runs and its calls
//! on this node (by outcome, mean, p50 and p95 time, last failure; `GET /v1/admin/plugins`), and the
//! re-run form: the newest stored events through the plugin and a candidate `.wasm` beside
//! it, through the admin API's `POST /v1/admin/plugins/{id}/rerun`, with the events whose
//! answer changes and a JSON diff of each.
//!
//! The candidate is a path on the router's machine or a file picked in the browser (the
//! dashboard's script reads it into a hidden base64 field; without scripts, the path works).

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::pages::{Chrome, form, render, segment};
use super::{CurrentSession, PageError, Ui, api_detail};

/// One configured plugin, as listed.
pub struct PluginRow {
    pub id: String,
    pub path: String,
    /// Where it runs: `verify of app`, `route all`, `transform of shop`.
    pub used_by: Vec<String>,
    /// `(outcome, calls)`.
    pub calls: Vec<(String, u64)>,
    /// Mean call time, e.g. `0.41 ms`, or empty.
    pub mean: String,
    /// Median and 95th-percentile call time, e.g. `0.38 ms`, or empty.
    pub p50: String,
    pub p95: String,
    /// `(when, message)`.
    pub last_error: Option<(String, String)>,
}

/// One changed event of a re-run.
pub struct ChangedRow {
    pub event: String,
    pub old_verdict: String,
    pub new_verdict: String,
    /// `(JSON pointer, old, new)`, the values as JSON text (`(absent)` for none).
    pub changes: Vec<(String, String, String)>,
}

/// What a re-run answered, ready to show.
pub struct RerunView {
    pub plugin: String,
    pub events: u64,
    pub changed: Vec<ChangedRow>,
    pub unchanged: usize,
    pub current_us: u64,
    pub candidate_us: u64,
}

#[derive(Template)]
#[template(path = "ui/plugins.html")]
struct PluginsPage {
    chrome: Chrome,
    plugins: Vec<PluginRow>,
    rerun: Option<RerunView>,
    /// The form's values, shown again after a run.
    chosen: String,
    candidate_path: String,
    config: String,
    limit: String,
    source: String,
}

fn milliseconds(value: &Value) -> String {
    value.as_f64().map_or_else(String::new, |ms| format!("{ms:.2} ms"))
}

fn plugin_rows(answer: &Value) -> Vec<PluginRow> {
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    answer["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|plugin| PluginRow {
            id: text(&plugin["id"]),
            path: text(&plugin["path"]),
            used_by: plugin["used_by"].as_array().into_iter().flatten().map(text).collect(),
            calls: plugin["calls"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(outcome, count)| (outcome.clone(), count.as_u64().unwrap_or(0)))
                .collect(),
            mean: milliseconds(&plugin["mean_call_ms"]),
            p50: milliseconds(&plugin["p50_call_ms"]),
            p95: milliseconds(&plugin["p95_call_ms"]),
            last_error: plugin["last_error"]["message"].as_str().map(|message| {
                (
                    super::view::time(plugin["last_error"]["at"].as_u64().unwrap_or(0)),
                    message.to_owned(),
                )
            }),
        })
        .collect()
}

async fn page(ui: &Ui, session: &CurrentSession) -> Result<PluginsPage, PageError> {
    let answer = ui.read(session.role, "/v1/admin/plugins").await?;
    Ok(PluginsPage {
        chrome: Chrome::new("Plugins", session, "plugins"),
        plugins: plugin_rows(&answer),
        rerun: None,
        chosen: String::new(),
        candidate_path: String::new(),
        config: String::new(),
        limit: "50".to_owned(),
        source: String::new(),
    })
}

pub async fn plugins(State(ui): State<Ui>, session: CurrentSession) -> Result<Response, PageError> {
    Ok(render(&page(&ui, &session).await?))
}

fn json_text(value: &Value) -> String {
    if value.is_null() { "(absent)".to_owned() } else { value.to_string() }
}

fn rerun_view(answer: &Value) -> RerunView {
    let number = |value: &Value| value.as_u64().unwrap_or(0);
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    let changed = answer["changed"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|case| ChangedRow {
            event: text(&case["name"]),
            old_verdict: text(&case["old_verdict"]),
            new_verdict: text(&case["new_verdict"]),
            changes: case["changes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|change| {
                    (text(&change["path"]), json_text(&change["old"]), json_text(&change["new"]))
                })
                .collect(),
        })
        .collect();
    RerunView {
        plugin: text(&answer["plugin"]),
        events: number(&answer["events"]),
        changed,
        unchanged: answer["unchanged"].as_array().map_or(0, Vec::len),
        current_us: number(&answer["current"]["wall_time_us"]),
        candidate_us: number(&answer["candidate"]["wall_time_us"]),
    }
}

/// Runs the re-run form through the admin API and shows the page with its answer.
pub async fn rerun(
    State(ui): State<Ui>,
    session: CurrentSession,
    body: Bytes,
) -> Result<Response, PageError> {
    let fields = form(&body);
    let field =
        |name: &str| fields.get(name).map(|value| value.trim().to_owned()).unwrap_or_default();
    let id = field("plugin");
    let mut request = Map::new();
    let (wasm, path) = (field("candidate_wasm"), field("candidate_path"));
    if !wasm.is_empty() {
        request.insert("candidate_wasm".into(), json!(wasm));
    } else if !path.is_empty() {
        request.insert("candidate_path".into(), json!(path));
    }
    let config: Map<String, Value> = field("config")
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.trim().to_owned(), json!(value.trim())))
        .collect();
    request.insert("config".into(), Value::Object(config));
    if let Ok(limit) = field("limit").parse::<u32>() {
        request.insert("limit".into(), json!(limit));
    }
    if !field("source").is_empty() {
        request.insert("source".into(), json!(field("source")));
    }
    let uri = format!("/v1/admin/plugins/{}/rerun", segment(&id));
    let (status, answer) =
        ui.api(session.role, Method::POST, &uri, Some(Value::Object(request))).await?;
    if !status.is_success() && status != StatusCode::UNPROCESSABLE_ENTITY {
        return Err(PageError::new(status, api_detail(&answer)));
    }
    let mut shown = page(&ui, &session).await?;
    if status.is_success() {
        shown.rerun = Some(rerun_view(&answer));
    } else {
        shown.chrome.notice = Some(format!("the re-run was refused: {}", api_detail(&answer)));
    }
    shown.chosen = id;
    shown.candidate_path = path;
    shown.config = field("config");
    shown.limit = field("limit");
    shown.source = field("source");
    Ok(render(&shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rerun_answer_becomes_rows_with_absent_sides_named() {
        let answer = json!({
            "plugin": "redact", "events": 3, "unchanged": ["a", "b"],
            "current": {"wall_time_us": 10}, "candidate": {"wall_time_us": 12},
            "changed": [{"name": "c", "old_verdict": "pass", "new_verdict": "modify",
                "changes": [{"path": "/patch", "old": null, "new": {"x": 1}}]}],
        });
        let view = rerun_view(&answer);
        assert_eq!((view.events, view.unchanged, view.candidate_us), (3, 2, 12));
        assert_eq!(
            view.changed[0].changes,
            [("/patch".into(), "(absent)".into(), "{\"x\":1}".into())]
        );
    }
}
