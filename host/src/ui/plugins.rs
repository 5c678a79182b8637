//! The plugins page (`/ui/plugins`): each configured plugin with where it runs, and the
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

fn plugin_rows(ui: &Ui) -> Vec<PluginRow> {
    let topology = &ui.state.topology;
    topology
        .plugins
        .values()
        .map(|plugin| {
            let mut used_by = Vec::new();
            for source in topology.sources.values() {
                if source.verify.contains(&plugin.id) {
                    used_by.push(format!("verify of {}", source.id));
                }
            }
            for route in topology.routes.values() {
                if route.spec.plugins.contains(&plugin.id) {
                    used_by.push(format!("route {}", route.spec.id));
                }
            }
            for endpoint in topology.endpoints.values() {
                if endpoint.transform.as_deref() == Some(plugin.id.as_str()) {
                    used_by.push(format!("transform of {}", endpoint.id));
                }
            }
            PluginRow { id: plugin.id.clone(), path: plugin.path.display().to_string(), used_by }
        })
        .collect()
}

fn page(ui: &Ui, session: &CurrentSession) -> PluginsPage {
    PluginsPage {
        chrome: Chrome::new("Plugins", session, "plugins"),
        plugins: plugin_rows(ui),
        rerun: None,
        chosen: String::new(),
        candidate_path: String::new(),
        config: String::new(),
        limit: "50".to_owned(),
        source: String::new(),
    }
}

pub async fn plugins(State(ui): State<Ui>, session: CurrentSession) -> Response {
    render(&page(&ui, &session))
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
    let mut shown = page(&ui, &session);
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
