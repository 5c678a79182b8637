//! `GET /v1/admin/plugins`: each configured plugin, where it runs, and what this node's
//! metrics say of its calls since start (by outcome, mean, p50 and p95 call time, last
//! failure). Readable
//! with the viewer token; the config values of a plugin are not shown (they may name secrets).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AdminState;
use super::api::ErrorBody;
use crate::config::Topology;

pub fn router() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new().routes(routes!(list_plugins))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PluginView {
    pub id: String,
    /// The component's path on the router's machine.
    pub path: String,
    /// Where it runs: `verify of app`, `route all`, `transform of shop`.
    pub used_by: Vec<String>,
    /// Calls on this node since start, by outcome: `ok`, `retry`, `busy`, `failed`.
    pub calls: std::collections::BTreeMap<String, u64>,
    /// Mean wall time of a call in milliseconds, instantiation included.
    pub mean_call_ms: Option<f64>,
    /// Median and 95th-percentile call time in milliseconds, from a fixed-bucket histogram:
    /// the upper bound of the bucket the rank falls in (less than 19 % above the true value).
    pub p50_call_ms: Option<f64>,
    pub p95_call_ms: Option<f64>,
    pub last_error: Option<PluginError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PluginError {
    /// Unix ms.
    pub at: u64,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PluginList {
    pub data: Vec<PluginView>,
}

/// Where `plugin` runs in `topology`.
pub fn used_by(topology: &Topology, plugin: &str) -> Vec<String> {
    let mut used = Vec::new();
    for source in topology.sources.values() {
        if source.verify.iter().any(|id| id == plugin) {
            used.push(format!("verify of {}", source.id));
        }
    }
    for route in topology.routes.values() {
        if route.spec.plugins.iter().any(|id| id == plugin) {
            used.push(format!("route {}", route.spec.id));
        }
    }
    for endpoint in topology.endpoints.values() {
        if endpoint.transform.as_deref() == Some(plugin) {
            used.push(format!("transform of {}", endpoint.id));
        }
    }
    used
}

#[utoipa::path(
    get, path = "/v1/admin/plugins", tag = "plugins",
    description = "Configured plugins, where each runs, and its calls on this node since start.",
    responses(
        (status = 200, body = PluginList),
        (status = 401, body = ErrorBody),
    ),
)]
async fn list_plugins(State(state): State<AdminState>) -> Json<PluginList> {
    let topology = &state.topology;
    let data = topology
        .plugins
        .values()
        .map(|plugin| {
            let calls = state.metrics.plugin_calls(&plugin.id);
            PluginView {
                id: plugin.id.clone(),
                path: plugin.path.display().to_string(),
                used_by: used_by(topology, &plugin.id),
                calls: calls
                    .by_outcome
                    .into_iter()
                    .map(|(outcome, count)| (outcome.to_owned(), count))
                    .collect(),
                mean_call_ms: calls.mean_seconds.map(|seconds| seconds * 1000.0),
                p50_call_ms: calls.p50_ms,
                p95_call_ms: calls.p95_ms,
                last_error: calls.last_error.map(|(at, message)| PluginError { at, message }),
            }
        })
        .collect();
    Json(PluginList { data })
}
