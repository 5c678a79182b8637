//! Configuration: `switchyard.toml` → validated [`Topology`].
//!
//! Three steps, each owned by a submodule: [`raw`] is the serde schema; loading (here) turns
//! the TOML into raw items one by one, so a broken item costs only its own error; [`validate`]
//! checks everything and resolves references into the typed [`topology`]. Every problem found
//! on the way is collected into [`ConfigErrors`]: users fix a config in one round trip.

pub mod endpoint_rules;
pub mod raw;
pub mod schema;
pub mod secret;
mod telemetry;
pub mod topology;
pub(crate) mod validate;
pub mod values;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub use secret::{Environment, ProcessEnvironment, Secret};
pub use topology::*;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the offending key, e.g. `sources.github.max_body`; empty for the file.
    pub path: String,
    pub message: String,
    /// A good value for that key, as it would be written in the file.
    pub example: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Continuation lines (TOML and CEL excerpts) stay indented under their error.
        let message = self.message.replace('\n', "\n  ");
        if self.path.is_empty() {
            write!(formatter, "{message}")?;
        } else {
            write!(formatter, "{}: {message}", self.path)?;
        }
        if let Some(example) = &self.example {
            // Multi-line examples stay aligned under the first line.
            write!(formatter, "\n  example: {}", example.replace('\n', "\n           "))?;
        }
        Ok(())
    }
}

/// Every problem found in a config file, in file order per section.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        writeln!(formatter, "{count} error{}", if count == 1 { "" } else { "s" })?;
        for error in &self.0 {
            writeln!(formatter, "- {error}")?;
        }
        Ok(())
    }
}

/// Reads, parses and validates the config file at `path`.
pub fn load(path: &Path, environment: &dyn Environment) -> Result<Topology, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        ConfigErrors(vec![ConfigError {
            path: String::new(),
            message: format!("cannot read `{}`: {error}", path.display()),
            example: None,
        }])
    })?;
    let base_dir = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let base_dir = if base_dir.as_os_str().is_empty() { PathBuf::from(".") } else { base_dir };
    parse(&text, &base_dir, environment)
}

/// Parses and validates config text; relative paths resolve against `base_dir`.
pub fn parse(
    text: &str,
    base_dir: &Path,
    environment: &dyn Environment,
) -> Result<Topology, ConfigErrors> {
    let mut errors = Vec::new();
    let document: toml::Table = match text.parse() {
        Ok(table) => table,
        Err(error) => {
            let message = error.to_string().trim_end().to_owned();
            return Err(ConfigErrors(vec![ConfigError {
                path: String::new(),
                message,
                example: None,
            }]));
        }
    };
    let raw = RawDocument::load(document, &mut errors);
    let topology = validate::validate(raw, base_dir, environment, &mut errors);
    if errors.is_empty() { Ok(topology) } else { Err(ConfigErrors(errors)) }
}

/// The file split into its items; `None` marks an item whose shape was wrong (its error is
/// already recorded), so references to its id are not reported again as dangling.
#[derive(Debug, Default)]
pub(crate) struct RawDocument {
    pub server: raw::ServerConfig,
    pub store: raw::StoreConfig,
    pub egress: raw::EgressConfig,
    pub nats: Option<raw::NatsConfig>,
    pub nats_present: bool,
    pub secrets: Vec<(String, Option<raw::SecretConfig>)>,
    pub plugins: Vec<(String, Option<raw::PluginConfig>)>,
    pub sources: Vec<(String, Option<raw::SourceConfig>)>,
    pub endpoints: Vec<(String, Option<raw::EndpointConfig>)>,
    pub routes: Vec<(String, Option<raw::RouteConfig>)>,
    pub telemetry: raw::TelemetryConfig,
}

const SECTIONS: [&str; 10] = [
    "server",
    "store",
    "egress",
    "nats",
    "secrets",
    "plugins",
    "sources",
    "endpoints",
    "routes",
    "telemetry",
];

impl RawDocument {
    fn load(mut document: toml::Table, errors: &mut Vec<ConfigError>) -> Self {
        for key in document.keys() {
            if !SECTIONS.contains(&key.as_str()) {
                errors.push(ConfigError {
                    path: key.clone(),
                    message: format!(
                        "unknown section `{key}`, expected one of {}",
                        SECTIONS.map(|name| format!("`{name}`")).join(", ")
                    ),
                    example: None,
                });
            }
        }
        let mut item = |name: &str| document.remove(name);
        let nats_value = item("nats");
        Self {
            server: item("server")
                .and_then(|v| deserialize(v, "server", errors))
                .unwrap_or_default(),
            store: item("store").and_then(|v| deserialize(v, "store", errors)).unwrap_or_default(),
            egress: item("egress")
                .and_then(|v| deserialize(v, "egress", errors))
                .unwrap_or_default(),
            nats_present: nats_value.is_some(),
            nats: nats_value.and_then(|value| deserialize(value, "nats", errors)),
            secrets: items(item("secrets"), "secrets", errors),
            plugins: items(item("plugins"), "plugins", errors),
            sources: items(item("sources"), "sources", errors),
            endpoints: items(item("endpoints"), "endpoints", errors),
            routes: items(item("routes"), "routes", errors),
            telemetry: item("telemetry")
                .and_then(|v| deserialize(v, "telemetry", errors))
                .unwrap_or_default(),
        }
    }
}

/// Deserializes each entry of a `[section.<id>]` table on its own.
fn items<T: DeserializeOwned>(
    value: Option<toml::Value>,
    section: &str,
    errors: &mut Vec<ConfigError>,
) -> Vec<(String, Option<T>)> {
    let Some(value) = value else { return Vec::new() };
    let toml::Value::Table(table) = value else {
        errors.push(ConfigError {
            path: section.to_owned(),
            message: format!("expected a table of named entries, e.g. `[{section}.my-id]`"),
            example: None,
        });
        return Vec::new();
    };
    table
        .into_iter()
        .map(|(id, value)| {
            let item = deserialize(value, &format!("{section}.{id}"), errors);
            (id, item)
        })
        .collect()
}

fn deserialize<T: DeserializeOwned>(
    value: toml::Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(item) => Some(item),
        Err(error) => {
            let inner = error.path().to_string();
            let path = if inner == "." { path.to_owned() } else { format!("{path}.{inner}") };
            errors.push(ConfigError {
                path,
                message: serde_message(&error.into_inner().to_string()),
                example: None,
            });
            None
        }
    }
}

/// A serde message in our words: its first line only (the TOML deserializer appends the key,
/// which the path already names), and Rust type names replaced by what a user writes.
fn serde_message(message: &str) -> String {
    let first_line = message.lines().next().unwrap_or_default().trim_end();
    let mut message = first_line.replace("expected i64", "expected an integer");
    if let Some(start) = message.find("expected struct ") {
        message.replace_range(start.., "expected a table");
    }
    message
}
