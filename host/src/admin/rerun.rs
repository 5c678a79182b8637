//! `POST /v1/admin/plugins/{id}/rerun`: the last N stored events run through a configured
//! plugin and through a candidate `.wasm` beside it, and what the candidate would answer
//! differently, event by event (verdict changes and a JSON diff).
//!
//! Both versions run in the plugin sandbox on a blocking thread, with the configured plugin's
//! binding (config, secrets, limits), the candidate's config entries over it when given; their
//! answers are compared by the core of `switchyard plugin diff`
//! ([`crate::plugin_cli::diff::compare`]). Nothing is stored, sent or counted: the answers
//! are only read. Admin only (it is a `POST`, and a candidate is code that runs here): the
//! candidate comes as base64 in the body or as a path on the router's machine.
//!
//! Decisions: the events are the newest stored ones (of one source when `source` is given),
//! whatever stage the plugin runs at, so a route plugin or a transform sees each event as
//! stored; the candidate's timeout is at least [`MINIMUM_TIMEOUT`], as in the route trace,
//! because nobody waits on a webhook here.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AdminState;
use super::api::{Body, ErrorBody, invalid, not_found, store_failure};
use super::model::FieldError;
use crate::config::{Instances, Plugin, Secret};
use crate::event::Event;
use crate::http_api::ApiError;
use crate::plugin::{CallReport, PluginHost, RuntimeOptions};
use crate::plugin_cli::diff::{self, CaseDiff};
use crate::plugin_cli::fixtures;
use crate::store::EventQuery;

/// Events re-run when `limit` is not given, and the most one request runs.
pub const DEFAULT_EVENTS: u32 = 50;
pub const MAX_EVENTS: u32 = 500;
/// Each call may take at least this long here.
const MINIMUM_TIMEOUT: Duration = Duration::from_secs(1);

pub fn router() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new().routes(routes!(rerun))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RerunRequest {
    /// The candidate component as base64 (an upload); exactly one of this and
    /// `candidate_path`.
    pub candidate_wasm: Option<String>,
    /// The candidate component's path on the router's machine.
    pub candidate_path: Option<String>,
    /// Config entries of the candidate over the configured plugin's.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// How many of the newest stored events (default 50, at most 500).
    pub limit: Option<u32>,
    /// Only events of this source.
    pub source: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RerunAnswer {
    pub plugin: String,
    /// Events run through both versions.
    pub events: usize,
    /// The events the candidate answers differently, newest first, named by event id.
    pub changed: Vec<CaseDiff>,
    /// The ids of the events both answer the same.
    pub unchanged: Vec<String>,
    pub current: RunCost,
    pub candidate: RunCost,
}

/// What one version spent over all the events.
#[derive(Debug, Default, Clone, Serialize, ToSchema)]
pub struct RunCost {
    /// Wall time of every call together, in microseconds.
    pub wall_time_us: u64,
    /// The most memory one call's instance held.
    pub peak_memory_bytes: u64,
}

impl RunCost {
    fn add(&mut self, report: &CallReport) {
        self.wall_time_us += report.elapsed.as_micros() as u64;
        self.peak_memory_bytes = self.peak_memory_bytes.max(report.peak_memory);
    }
}

/// Where the candidate is.
enum Candidate {
    Path(PathBuf),
    /// Written to a file that lives as long as the run.
    Upload(tempfile::NamedTempFile),
}

impl Candidate {
    fn path(&self) -> &std::path::Path {
        match self {
            Self::Path(path) => path,
            Self::Upload(file) => file.path(),
        }
    }
}

fn candidate_of(request: &RerunRequest) -> Result<Candidate, ApiError> {
    let field = |name: &str, detail: &str| invalid(vec![FieldError::new(name, detail)]);
    match (&request.candidate_wasm, &request.candidate_path) {
        (Some(_), Some(_)) | (None, None) => Err(field(
            "candidate_wasm",
            "give exactly one of `candidate_wasm` and `candidate_path`",
        )),
        (None, Some(path)) => {
            let path = PathBuf::from(path);
            if !path.is_file() {
                return Err(field("candidate_path", &format!("no file at `{}`", path.display())));
            }
            Ok(Candidate::Path(path))
        }
        (Some(encoded), None) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|error| field("candidate_wasm", &format!("not base64: {error}")))?;
            let mut file = tempfile::Builder::new()
                .prefix("switchyard-candidate-")
                .suffix(".wasm")
                .tempfile()
                .map_err(|error| field("candidate_wasm", &format!("cannot keep it: {error}")))?;
            std::io::Write::write_all(&mut file, &bytes)
                .map_err(|error| field("candidate_wasm", &format!("cannot keep it: {error}")))?;
            Ok(Candidate::Upload(file))
        }
    }
}

/// Runs `events` through `current` and through `candidate` (the same binding with the
/// candidate's path and config), and compares their answers.
pub fn compare_on_events(
    current: &Plugin,
    candidate: Plugin,
    secrets: &BTreeMap<String, Secret>,
    events: &[Event],
    cache_dir: Option<PathBuf>,
) -> Result<RerunAnswer, String> {
    let options =
        RuntimeOptions { cache_dir, threads: 0, count_instructions: false, emit_logs: false };
    let load = |plugin: Plugin, what: &str| {
        let mut plugin = plugin;
        plugin.timeout = plugin.timeout.max(MINIMUM_TIMEOUT);
        plugin.instances = Instances::Fresh;
        PluginHost::load(&[plugin], secrets, &options)
            .map_err(|error| format!("cannot load the {what} version: {error}"))
    };
    let current_host = load(current.clone(), "current")?;
    let candidate_host = load(candidate, "candidate")?;
    let (mut current_cost, mut candidate_cost) = (RunCost::default(), RunCost::default());
    let mut cases = Vec::with_capacity(events.len());
    for event in events {
        let answer = |host: &PluginHost, cost: &mut RunCost| -> Value {
            let report = host.call_blocking(&current.id, event, None);
            cost.add(&report);
            match &report.answer {
                Ok(answer) => fixtures::answer_json(answer),
                Err(error) => json!({"error": error.to_string()}),
            }
        };
        let old = answer(&current_host, &mut current_cost);
        let new = answer(&candidate_host, &mut candidate_cost);
        cases.push(diff::CaseAnswers { name: event.id.to_string(), old, new });
    }
    let report = diff::compare(cases);
    Ok(RerunAnswer {
        plugin: current.id.clone(),
        events: events.len(),
        changed: report.changed,
        unchanged: report.unchanged,
        current: current_cost,
        candidate: candidate_cost,
    })
}

#[utoipa::path(
    post, path = "/v1/admin/plugins/{id}/rerun", tag = "plugins",
    description = "Runs the newest stored events through the configured plugin `id` and \
                   through a candidate component beside it, in the sandbox, and answers the \
                   events whose answer changes with a JSON diff of each. Nothing is stored or \
                   sent. Admin token only: the candidate is code that runs on the router.",
    params(("id" = String, Path, description = "Plugin id in the config")),
    request_body = RerunRequest,
    responses(
        (status = 200, body = RerunAnswer),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "No candidate, two, or one that does not load"),
    ),
)]
async fn rerun(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    Body(request): Body<RerunRequest>,
) -> Result<Json<RerunAnswer>, ApiError> {
    let topology = state.topology.clone();
    let current = topology.plugins.get(&id).ok_or_else(|| not_found("plugin", &id))?.clone();
    let limit = request.limit.unwrap_or(DEFAULT_EVENTS);
    if limit == 0 || limit > MAX_EVENTS {
        let detail = format!("must be between 1 and {MAX_EVENTS}");
        return Err(invalid(vec![FieldError::new("limit", detail)]));
    }
    let candidate = candidate_of(&request)?;
    let query = EventQuery { source: request.source.clone(), limit, ..Default::default() };
    let summaries = state.store.list_events(query).await.map_err(store_failure)?;
    let mut events = Vec::with_capacity(summaries.len());
    for summary in summaries {
        if let Some(event) = state.store.event(summary.id).await.map_err(store_failure)? {
            events.push(event);
        }
    }
    let answer = tokio::task::spawn_blocking(move || {
        let mut plugin = current.clone();
        plugin.path = candidate.path().to_path_buf();
        plugin.config.extend(request.config);
        let cache = RuntimeOptions::serving(&topology.server.data_dir).cache_dir;
        let answer = compare_on_events(&current, plugin, &topology.secrets, &events, cache);
        drop(candidate);
        answer
    })
    .await
    .map_err(|_| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the re-run failed")
    })?;
    answer.map(Json).map_err(|detail| invalid(vec![FieldError::new("candidate_wasm", detail)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(wasm: Option<&str>, path: Option<&str>) -> RerunRequest {
        RerunRequest {
            candidate_wasm: wasm.map(str::to_owned),
            candidate_path: path.map(str::to_owned),
            config: BTreeMap::new(),
            limit: None,
            source: None,
        }
    }

    #[test]
    fn exactly_one_candidate_is_taken() {
        assert!(candidate_of(&request(None, None)).is_err());
        assert!(candidate_of(&request(Some("AA=="), Some("x.wasm"))).is_err());
        assert!(candidate_of(&request(None, Some("/nonexistent/candidate.wasm"))).is_err());
        assert!(candidate_of(&request(Some("not base64!"), None)).is_err());
    }

    #[test]
    fn an_upload_is_kept_as_a_file_while_the_run_lasts() {
        let candidate = candidate_of(&request(Some("AGFzbQ=="), None)).unwrap();
        let path = candidate.path().to_path_buf();
        assert_eq!(std::fs::read(&path).unwrap(), b"\0asm");
        drop(candidate);
        assert!(!path.exists());
    }
}
