//! The JSON Schema of `switchyard.toml`, derived from the serde types in [`super::raw`].
//!
//! Owns the document's top-level shape for the schema ([`ConfigFile`], which must list the
//! same sections as the loader), the schemas of the scalar value types that stay strings in
//! `raw` (durations, sizes, ids, the closed sets of names) and the rendering that
//! `switchyard config schema` prints and `docs/config.schema.json` holds. It never parses or
//! validates a config: `validate` stays the authority, the schema is what editors complete
//! and check against, so it may be looser than validation but never stricter.
//!
//! Draft 7, because taplo (Even Better TOML) and most editors understand it; TOML has no
//! null, so `Option` fields are written as absent keys, never as `null`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, generate::SchemaSettings, json_schema};
use serde_json::Value;

use super::raw;

/// A kebab-case id: the longest is 64 characters (see `values::check_id`).
const ID_PATTERN: &str = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$";
/// What `values::parse_duration` accepts: one or more number-and-unit pairs.
const DURATION_PATTERN: &str = "^\\s*([0-9]+(ms|s|m|h|d))+\\s*$";
/// What `values::parse_size` accepts: a number and an optional unit.
const SIZE_PATTERN: &str = "^\\s*[0-9]+\\s*(B|KiB|MiB|GiB|KB|kB|MB|GB)?\\s*$";

// The sections must be the loader's (`config::SECTIONS`); a unit test below checks.
/// The configuration file of the Switchyard event router. Every section is optional; ids are
/// kebab-case, durations and sizes are strings such as `"15s"` and `"1MiB"`.
#[derive(Debug, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "switchyard.toml", rename = "SwitchyardConfig")]
pub struct ConfigFile {
    /// Listening address, storage and limits.
    pub server: Option<raw::ServerConfig>,
    /// Where the state is kept: SQLite (one node) or JetStream (a cluster).
    pub store: Option<raw::StoreConfig>,
    /// The SSRF guard for HTTP endpoints.
    pub egress: Option<raw::EgressConfig>,
    /// The NATS connection, needed by nats sources and nats endpoints.
    pub nats: Option<raw::NatsConfig>,
    /// Named secrets; their values never appear in logs, errors or plugin memory.
    #[schemars(extend("propertyNames" = {"$ref": "#/definitions/Id"}))]
    pub secrets: Option<BTreeMap<String, raw::SecretConfig>>,
    /// Wasm plugins by id.
    #[schemars(extend("propertyNames" = {"$ref": "#/definitions/Id"}))]
    pub plugins: Option<BTreeMap<String, raw::PluginConfig>>,
    /// Where events come in, by id (`http` sources are served at `POST /webhooks/<id>`).
    #[schemars(extend("propertyNames" = {"$ref": "#/definitions/Id"}))]
    pub sources: Option<BTreeMap<String, raw::SourceConfig>>,
    /// Where deliveries go, by id.
    #[schemars(extend("propertyNames" = {"$ref": "#/definitions/Id"}))]
    pub endpoints: Option<BTreeMap<String, raw::EndpointConfig>>,
    /// Which events go where, by id.
    #[schemars(extend("propertyNames" = {"$ref": "#/definitions/Id"}))]
    pub routes: Option<BTreeMap<String, raw::RouteConfig>>,
    /// What Switchyard exports besides `GET /metrics` (OpenTelemetry traces).
    pub telemetry: Option<raw::TelemetryConfig>,
}

/// A duration string such as `50ms`, `15s`, `5m`, `2h`, `7d` or `1h30m`.
#[derive(Debug)]
pub struct DurationText;

impl JsonSchema for DurationText {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A duration: a number and a unit (`ms`, `s`, `m`, `h`, `d`), \
                            repeatable, e.g. `15s` or `1h30m`.",
            "type": "string",
            "pattern": DURATION_PATTERN,
            "examples": ["50ms", "15s", "5m", "1h30m", "7d"],
        })
    }
}

/// A size string such as `512KiB`, `1MiB` or `1024` (bytes).
#[derive(Debug)]
pub struct SizeText;

impl JsonSchema for SizeText {
    fn schema_name() -> Cow<'static, str> {
        "Size".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A size in bytes: a number and an optional unit (`B`, `KiB`, `MiB`, \
                            `GiB`, `KB`, `MB`, `GB`), e.g. `1MiB`.",
            "type": "string",
            "pattern": SIZE_PATTERN,
            "examples": ["512KiB", "1MiB", "5MiB"],
        })
    }
}

/// A rate such as `100/s`, `600/m` or `3600/h`.
#[derive(Debug)]
pub struct RateText;

impl JsonSchema for RateText {
    fn schema_name() -> Cow<'static, str> {
        "Rate".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A rate: a positive count, `/`, and a unit (`s`, `m`, `h`), e.g. \
                            `100/s`.",
            "type": "string",
            "pattern": "^\\s*[0-9]+\\s*/\\s*(s|m|h|second|minute|hour)\\s*$",
            "examples": ["100/s", "600/m"],
        })
    }
}

/// An endpoint's `breaker`.
#[derive(Debug)]
pub struct BreakerPolicy;

impl JsonSchema for BreakerPolicy {
    fn schema_name() -> Cow<'static, str> {
        "BreakerPolicy".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let duration = generator.subschema_for::<DurationText>();
        json_schema!({
            "description": "`\"off\"`, or after `failures` consecutive failed attempts no \
                            attempt for `cooldown`, then one probe: its success closes the \
                            breaker, its failure doubles the cooldown up to `max_cooldown`.",
            "oneOf": [
                {"type": "string", "enum": ["off"]},
                {
                    "type": "object",
                    "properties": {
                        "failures": {"type": "integer", "minimum": 1, "maximum": 100_000},
                        "cooldown": duration,
                        "max_cooldown": duration,
                    },
                    "additionalProperties": false,
                },
            ],
        })
    }
}

/// An endpoint's `ordered_by`.
#[derive(Debug)]
pub struct OrderedByPolicy;

impl JsonSchema for OrderedByPolicy {
    fn schema_name() -> Cow<'static, str> {
        "OrderedByPolicy".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "`\"all\"`, or the key deliveries are ordered by: a JSON pointer \
                            into the body (`json`) or a header (`header`), exactly one.",
            "oneOf": [
                {"type": "string", "enum": ["all"]},
                {
                    "type": "object",
                    "properties": {"json": {"type": "string", "pattern": "^/"}},
                    "required": ["json"],
                    "additionalProperties": false,
                },
                {
                    "type": "object",
                    "properties": {"header": {"type": "string"}},
                    "required": ["header"],
                    "additionalProperties": false,
                },
            ],
        })
    }
}

/// An endpoint's `disable_after`.
#[derive(Debug)]
pub struct DisableAfter;

impl JsonSchema for DisableAfter {
    fn schema_name() -> Cow<'static, str> {
        "DisableAfter".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let duration = generator.subschema_for::<DurationText>();
        json_schema!({
            "description": "A duration, or `\"off\"` to never disable an endpoint for failing.",
            "oneOf": [{"type": "string", "enum": ["off"]}, duration],
        })
    }
}

/// A source's `rate_limit.per`.
#[derive(Debug, JsonSchema)]
#[schemars(rename = "RateLimitPer", rename_all = "kebab-case")]
pub enum RateLimitPer {
    /// One bucket for every sender of the source.
    Source,
    /// One bucket per client address.
    Client,
}

/// A kebab-case id of a secret, plugin, source, endpoint or route.
#[derive(Debug)]
pub struct Id;

impl JsonSchema for Id {
    fn schema_name() -> Cow<'static, str> {
        "Id".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A kebab-case id: lowercase letters, digits and single dashes, \
                            starting with a letter, at most 64 characters.",
            "type": "string",
            "pattern": ID_PATTERN,
            "maxLength": 64,
            "examples": ["github", "verify-github"],
        })
    }
}

/// An endpoint's retry policy.
#[derive(Debug)]
pub struct RetryPolicy;

impl JsonSchema for RetryPolicy {
    fn schema_name() -> Cow<'static, str> {
        "RetryPolicy".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let duration = generator.subschema_for::<DurationText>();
        json_schema!({
            "description": "`\"standard\"` (at once, then 5s, 5m, 30m, 2h, 5h, 10h, 14h, 20h and \
                            24h, each ±20 %), or the delays between attempts: the first attempt \
                            is immediate, so `{ schedule = [\"5s\", \"5m\"] }` makes 3 attempts.",
            "oneOf": [
                {"type": "string", "enum": ["standard"]},
                {
                    "type": "object",
                    "properties": {"schedule": {"type": "array", "items": duration}},
                    "required": ["schedule"],
                    "additionalProperties": false,
                },
            ],
        })
    }
}

/// `server.durability`.
#[derive(Debug, JsonSchema)]
#[schemars(rename = "Durability", rename_all = "kebab-case")]
pub enum Durability {
    /// A commit is durable once fsynced.
    Fsync,
    /// A commit is durable once in the OS page cache.
    Os,
}

/// `store.backend`.
#[derive(Debug, JsonSchema)]
#[schemars(rename = "StoreBackend", rename_all = "kebab-case")]
pub enum StoreBackend {
    /// An embedded database in `server.data_dir`: one node.
    Sqlite,
    /// A NATS JetStream cluster: any number of nodes.
    Jetstream,
}

/// A plugin's `instances`.
#[derive(Debug, JsonSchema)]
#[schemars(rename = "Instances", rename_all = "kebab-case")]
pub enum Instances {
    /// A new instance per event.
    Fresh,
    /// A small recycled pool of instances per thread.
    Warm,
}

/// A plugin's `on_error`.
#[derive(Debug, JsonSchema)]
#[schemars(rename = "OnError", rename_all = "kebab-case")]
pub enum OnError {
    /// Refuse the event: 503 to the sender, or a nak.
    FailClosed,
    /// Continue with the event unchanged.
    FailOpen,
    /// Store the event as a dead letter with the error, for replay.
    DeadLetter,
}

/// `[telemetry] otlp.protocol`.
#[derive(Debug, JsonSchema)]
#[schemars(rename = "OtlpProtocol", rename_all = "kebab-case")]
pub enum OtlpProtocol {
    /// OTLP/HTTP with protobuf bodies, posted to `<endpoint>/v1/traces`.
    Http,
    /// OTLP/gRPC over plain-text HTTP/2, to a local collector or agent.
    Grpc,
}

/// A source's `type`.
#[derive(Debug, JsonSchema)]
#[schemars(rename = "SourceType", rename_all = "kebab-case")]
pub enum SourceKind {
    /// Webhooks at `POST /webhooks/<id>`.
    Http,
    /// Events published through `POST /v1/events`.
    Api,
    /// A NATS subject, core or JetStream.
    Nats,
}

/// An endpoint's `type`.
#[derive(Debug, JsonSchema)]
#[schemars(rename = "EndpointType", rename_all = "kebab-case")]
pub enum EndpointKind {
    /// A signed HTTP POST to `url`.
    Http,
    /// A message on the subject template `subject`.
    Nats,
}

/// The schema as a JSON value.
pub fn config_schema() -> Value {
    let generator = SchemaSettings::draft07().into_generator();
    let mut schema = generator.into_root_schema_for::<ConfigFile>().to_value();
    remove_null(&mut schema);
    schema
}

/// The schema as `switchyard config schema` prints it and `docs/config.schema.json` holds:
/// pretty JSON ending with a newline.
pub fn config_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&config_schema()).expect("JSON values serialize");
    text.push('\n');
    text
}

/// Drops the `null` alternatives serde's `Option` adds: TOML cannot write a null.
fn remove_null(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if let Some(Value::Array(types)) = object.get_mut("type") {
                types.retain(|kind| kind != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    object.insert("type".into(), only);
                }
            }
            for key in ["anyOf", "oneOf"] {
                if let Some(Value::Array(alternatives)) = object.get_mut(key) {
                    alternatives
                        .retain(|alternative| alternative.get("type") != Some(&"null".into()));
                    if alternatives.len() == 1 {
                        let only = alternatives.remove(0);
                        object.remove(key);
                        match only {
                            // Draft 7 ignores keywords beside `$ref`, descriptions included.
                            Value::Object(only) if only.contains_key("$ref") => {
                                object.insert("allOf".into(), Value::Array(vec![only.into()]));
                            }
                            Value::Object(only) => object.extend(only),
                            other => {
                                object.insert(key.into(), Value::Array(vec![other]));
                            }
                        }
                    }
                }
            }
            object.values_mut().for_each(remove_null);
        }
        Value::Array(items) => items.iter_mut().for_each(remove_null),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sections_are_the_loaders() {
        let schema = config_schema();
        let sections: Vec<&str> =
            schema["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = super::super::SECTIONS.to_vec();
        expected.sort_unstable();
        assert_eq!(sections, expected);
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    }

    #[test]
    fn every_table_denies_unknown_keys() {
        let schema = config_schema();
        for (name, definition) in schema["definitions"].as_object().unwrap() {
            if definition["type"] == "object" {
                assert_eq!(definition["additionalProperties"], false, "{name}");
            }
        }
    }

    #[test]
    fn no_null_remains() {
        let text = config_schema_text();
        assert!(!text.contains("\"null\""), "{text}");
    }

    #[test]
    fn descriptions_come_from_doc_comments() {
        let schema = config_schema();
        let listen = &schema["definitions"]["ServerConfig"]["properties"]["listen"];
        assert!(listen["description"].as_str().unwrap().starts_with("Address for webhook"));
        let timeout = &schema["definitions"]["PluginConfig"]["properties"]["timeout"];
        assert!(timeout.to_string().contains("#/definitions/Duration"), "{timeout}");
    }
}
