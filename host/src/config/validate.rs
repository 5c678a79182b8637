//! Validation: raw config items → [`Topology`], collecting every error.
//!
//! Pure apart from the [`Environment`] it is handed (environment variables, secret files,
//! plugin files). It never stops at the first problem: each check records an error with its
//! path and an example, and validation goes on with a placeholder value.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use url::Url;

use super::endpoint_rules::{
    HeaderProblem, UrlProblem, check_header, is_header_name, url_problems,
};
use super::raw::{self, SecretConfig};
use super::secret::{Environment, Secret, trim_one_newline};
use super::topology::*;
use super::values::{check_id, parse_duration, parse_size};
use super::{ConfigError, RawDocument};
use crate::egress::EgressPolicy;
use crate::nats::template::SubjectTemplate;
use crate::routing::{Filter, RouteSpec, SubjectPattern, TypePattern};
use crate::signing::SigningKey;

const DEFAULT_PLUGIN_TIMEOUT: Duration = Duration::from_millis(100);
const DEFAULT_PLUGIN_MEMORY: u64 = 64 << 20;
pub(crate) const DEFAULT_ENDPOINT_TIMEOUT: Duration = Duration::from_secs(15);
pub(crate) const DEFAULT_MAX_IN_FLIGHT: u32 = 16;
pub(crate) const MAX_IN_FLIGHT_LIMIT: i64 = 4096;
const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_ACK_PENDING: u32 = 1024;

pub(super) fn validate(
    raw: RawDocument,
    base_dir: &Path,
    environment: &dyn Environment,
    errors: &mut Vec<ConfigError>,
) -> Topology {
    let mut validator = Validator { base_dir, environment, errors, warnings: Vec::new() };
    validator.run(raw)
}

struct Validator<'a> {
    base_dir: &'a Path,
    environment: &'a dyn Environment,
    errors: &'a mut Vec<ConfigError>,
    warnings: Vec<String>,
}

/// The ids defined in each section, including items whose shape was wrong.
struct Ids {
    secrets: Vec<String>,
    plugins: Vec<String>,
    sources: Vec<String>,
    endpoints: Vec<String>,
}

impl Validator<'_> {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>, example: &str) {
        let example = (!example.is_empty()).then(|| example.to_owned());
        self.errors.push(ConfigError { path: path.into(), message: message.into(), example });
    }

    fn run(&mut self, raw: RawDocument) -> Topology {
        let ids = Ids {
            secrets: raw.secrets.iter().map(|(id, _)| id.clone()).collect(),
            plugins: raw.plugins.iter().map(|(id, _)| id.clone()).collect(),
            sources: raw.sources.iter().map(|(id, _)| id.clone()).collect(),
            endpoints: raw.endpoints.iter().map(|(id, _)| id.clone()).collect(),
        };
        let server = self.server(raw.server);
        let egress = self.egress(raw.egress);
        let nats = raw.nats.and_then(|nats| self.nats(nats));
        let has_nats = raw.nats_present;
        let mut secrets = BTreeMap::new();
        for (id, item) in raw.secrets {
            self.id(&format!("secrets.{id}"), &id);
            if let Some(secret) = item.and_then(|item| self.secret(&format!("secrets.{id}"), item))
            {
                secrets.insert(id, secret);
            }
        }
        let plugins = self.each(raw.plugins, "plugins", |v, id, item| v.plugin(id, item, &ids));
        let default_max_body = server.max_body;
        let sources = self.each(raw.sources, "sources", |v, id, item| {
            v.source(id, item, &ids, has_nats, default_max_body)
        });
        let endpoints = self.each(raw.endpoints, "endpoints", |v, id, item| {
            v.endpoint(id, item, &ids, &egress, has_nats, &secrets)
        });
        let routes = self.each(raw.routes, "routes", |v, id, item| v.route(id, item, &ids));
        let telemetry = super::telemetry::validate(raw.telemetry, self.errors);
        Topology {
            server,
            egress,
            nats,
            secrets,
            plugins,
            sources,
            endpoints,
            routes,
            telemetry,
            warnings: std::mem::take(&mut self.warnings),
        }
    }

    /// Validates every well-shaped item of a section, checking its id too.
    fn each<Raw, Typed>(
        &mut self,
        items: Vec<(String, Option<Raw>)>,
        section: &str,
        mut check: impl FnMut(&mut Self, &str, Raw) -> Typed,
    ) -> BTreeMap<String, Typed> {
        let mut typed = BTreeMap::new();
        for (id, item) in items {
            self.id(&format!("{section}.{id}"), &id);
            if let Some(item) = item {
                let value = check(self, &id, item);
                typed.insert(id, value);
            }
        }
        typed
    }

    fn id(&mut self, path: &str, id: &str) {
        if let Err(message) = check_id(id) {
            self.error(path, format!("invalid id: {message}"), "[sources.github-app]");
        }
    }

    fn duration(&mut self, path: &str, text: Option<&str>, default: Duration) -> Duration {
        let Some(text) = text else { return default };
        parse_duration(text).unwrap_or_else(|message| {
            let key = path.rsplit('.').next().unwrap_or(path);
            self.error(path, message, &format!("{key} = \"15s\""));
            default
        })
    }

    fn size(&mut self, path: &str, text: Option<&str>, default: u64) -> u64 {
        let Some(text) = text else { return default };
        match parse_size(text) {
            Ok(0) => {
                self.error(path, "must be more than zero bytes", "max_body = \"1MiB\"");
                default
            }
            Ok(bytes) => bytes,
            Err(message) => {
                let key = path.rsplit('.').next().unwrap_or(path);
                self.error(path, message, &format!("{key} = \"1MiB\""));
                default
            }
        }
    }

    fn resolve_path(&self, relative: &str) -> PathBuf {
        self.base_dir.join(relative)
    }

    fn references(&mut self, path: &str, names: &[String], defined: &[String], what: &str) {
        for name in names {
            if !defined.contains(name) {
                let known = if defined.is_empty() {
                    "none is defined".to_owned()
                } else {
                    format!(
                        "defined: {}",
                        defined.iter().map(|d| format!("`{d}`")).collect::<Vec<_>>().join(", ")
                    )
                };
                self.error(
                    path,
                    format!("unknown {what} `{name}` ({known})"),
                    &format!("[{what}s.{name}] …"),
                );
            }
        }
    }

    // === sections ===

    fn server(&mut self, server: raw::ServerConfig) -> Server {
        let default_listen = SocketAddr::from(([127, 0, 0, 1], 8080));
        let listen = match server.listen.as_deref() {
            None => default_listen,
            Some(text) => text.parse().unwrap_or_else(|_| {
                self.error(
                    "server.listen",
                    format!("`{text}` is not an IP address and port"),
                    "listen = \"127.0.0.1:8080\"",
                );
                default_listen
            }),
        };
        let durability = match server.durability.as_deref() {
            None | Some("fsync") => Durability::Fsync,
            Some("os") => Durability::Os,
            Some(other) => {
                self.error(
                    "server.durability",
                    format!("`{other}` is not a durability level; expected `fsync` or `os`"),
                    "durability = \"fsync\"",
                );
                Durability::Fsync
            }
        };
        let admin_token =
            server.admin_token.and_then(|token| self.secret("server.admin_token", token));
        let publish_token =
            server.publish_token.and_then(|token| self.secret("server.publish_token", token));
        Server {
            listen,
            data_dir: self.resolve_path(server.data_dir.as_deref().unwrap_or("switchyard-data")),
            durability,
            retention: self.duration(
                "server.retention",
                server.retention.as_deref(),
                DEFAULT_RETENTION,
            ),
            admin_token,
            publish_token,
            max_body: self.size("server.max_body", server.max_body.as_deref(), DEFAULT_MAX_BODY),
        }
    }

    fn egress(&mut self, egress: raw::EgressConfig) -> EgressPolicy {
        let mut allow_networks = Vec::new();
        for (index, text) in egress.allow_networks.iter().enumerate() {
            let parsed = text
                .parse::<IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                .map(|network| network.trunc());
            match parsed {
                Ok(network) => allow_networks.push(network),
                Err(_) => self.error(
                    format!("egress.allow_networks[{index}]"),
                    format!("`{text}` is not a network in CIDR notation"),
                    "allow_networks = [\"127.0.0.0/8\"]",
                ),
            }
        }
        EgressPolicy { allow_networks, https_only: egress.https_only }
    }

    fn nats(&mut self, nats: raw::NatsConfig) -> Option<Nats> {
        let url = match nats.url {
            Some(url) => {
                let scheme_ok = ["nats://", "tls://", "ws://", "wss://"]
                    .iter()
                    .any(|scheme| url.starts_with(scheme));
                if !scheme_ok {
                    self.error(
                        "nats.url",
                        format!("`{url}` is not a NATS URL (nats://, tls://, ws:// or wss://)"),
                        "url = \"nats://127.0.0.1:4222\"",
                    );
                }
                url
            }
            None => {
                self.error("nats.url", "missing field `url`", "url = \"nats://127.0.0.1:4222\"");
                String::new()
            }
        };
        let credentials = nats.credentials.and_then(|s| self.secret("nats.credentials", s));
        let nkey = nats.nkey.and_then(|s| self.secret("nats.nkey", s));
        let token = nats.token.and_then(|s| self.secret("nats.token", s));
        let password = nats.password.and_then(|s| self.secret("nats.password", s));
        let mut methods = Vec::new();
        if let Some(secret) = credentials {
            methods.push(NatsAuth::Credentials(secret));
        }
        if let Some(secret) = nkey {
            methods.push(NatsAuth::Nkey(secret));
        }
        if let Some(secret) = token {
            methods.push(NatsAuth::Token(secret));
        }
        match (nats.user, password) {
            (Some(user), Some(password)) => methods.push(NatsAuth::UserPassword { user, password }),
            (None, None) => {}
            (Some(_), None) => self.error(
                "nats.password",
                "`user` needs a `password`",
                "password = { env = \"NATS_PASSWORD\" }",
            ),
            (None, Some(_)) => {
                self.error("nats.user", "`password` needs a `user`", "user = \"switchyard\"")
            }
        }
        if methods.len() > 1 {
            self.error(
                "nats",
                "set one way to authenticate: `credentials`, `nkey`, `token` or `user` + `password`",
                "credentials = { file = \"switchyard.creds\" }",
            );
        }
        Some(Nats { url, auth: methods.pop().unwrap_or(NatsAuth::None), outcomes: nats.outcomes })
    }

    /// Reads a secret's bytes from where it says; an unreadable secret is a config error.
    fn secret(&mut self, path: &str, secret: SecretConfig) -> Option<Secret> {
        let example = "{ env = \"GITHUB_WEBHOOK_SECRET\" }";
        let bytes = match (secret.env, secret.file, secret.value) {
            (Some(name), None, None) => match self.environment.var(&name) {
                Some(value) => value.into_bytes(),
                None => {
                    self.error(path, format!("environment variable `{name}` is not set"), "");
                    return None;
                }
            },
            (None, Some(file), None) => {
                let resolved = self.resolve_path(&file);
                match self.environment.read_file(&resolved) {
                    Ok(bytes) => trim_one_newline(bytes),
                    Err(error) => {
                        self.error(path, format!("cannot read secret file `{file}`: {error}"), "");
                        return None;
                    }
                }
            }
            (None, None, Some(value)) => {
                self.warnings.push(format!(
                    "{path}: the secret is inline in the config file; use `env` or `file` \
                     outside local development"
                ));
                value.into_bytes()
            }
            _ => {
                self.error(path, "a secret needs exactly one of `env`, `file` or `value`", example);
                return None;
            }
        };
        if bytes.is_empty() {
            self.error(path, "the secret is empty", "");
            return None;
        }
        Some(Secret::new(bytes))
    }

    fn plugin(&mut self, id: &str, plugin: raw::PluginConfig, ids: &Ids) -> Plugin {
        let at = |key: &str| format!("plugins.{id}.{key}");
        let path = self.resolve_path(&plugin.path);
        if !self.environment.is_file(&path) {
            self.error(
                at("path"),
                format!("no file at `{}` (build the plugin first)", plugin.path),
                "path = \"plugins/target/wasm32-wasip2/release/verify_github.wasm\"",
            );
        }
        self.references(&at("secrets"), &plugin.secrets, &ids.secrets, "secret");
        let instances = match plugin.instances.as_deref() {
            None | Some("fresh") => Instances::Fresh,
            Some("warm") => Instances::Warm,
            Some(other) => {
                self.error(
                    at("instances"),
                    format!("`{other}` is not an instance mode; expected `fresh` or `warm`"),
                    "instances = \"fresh\"",
                );
                Instances::Fresh
            }
        };
        let on_error = match plugin.on_error.as_deref() {
            None | Some("fail-closed") => OnError::FailClosed,
            Some("fail-open") => OnError::FailOpen,
            Some("dead-letter") => OnError::DeadLetter,
            Some(other) => {
                self.error(
                    at("on_error"),
                    format!(
                        "`{other}` is not an error policy; expected `fail-closed`, `fail-open` \
                         or `dead-letter`"
                    ),
                    "on_error = \"fail-closed\"",
                );
                OnError::FailClosed
            }
        };
        Plugin {
            id: id.to_owned(),
            path,
            secrets: plugin.secrets,
            config: plugin.config,
            timeout: self.duration(
                &at("timeout"),
                plugin.timeout.as_deref(),
                DEFAULT_PLUGIN_TIMEOUT,
            ),
            memory: self.size(&at("memory"), plugin.memory.as_deref(), DEFAULT_PLUGIN_MEMORY),
            instances,
            on_error,
        }
    }

    fn source(
        &mut self,
        id: &str,
        source: raw::SourceConfig,
        ids: &Ids,
        has_nats: bool,
        default_max_body: u64,
    ) -> Source {
        let at = |key: &str| format!("sources.{id}.{key}");
        self.references(&at("verify"), &source.verify, &ids.plugins, "plugin");
        let kind = match source.kind.as_deref() {
            kind @ (None | Some("http") | Some("api")) => {
                for (key, present) in [
                    ("subject", source.subject.is_some()),
                    ("queue_group", source.queue_group.is_some()),
                    ("jetstream", source.jetstream.is_some()),
                ] {
                    if present {
                        self.error(
                            at(key),
                            format!("`{key}` is only for `type = \"nats\"` sources"),
                            "type = \"nats\"",
                        );
                    }
                }
                if kind == Some("api") { SourceKind::Api } else { SourceKind::Http }
            }
            Some("nats") => {
                if !has_nats {
                    self.error(
                        at("type"),
                        "nats sources need a `[nats]` section",
                        "[nats]\nurl = \"nats://127.0.0.1:4222\"",
                    );
                }
                let subject = source.subject.unwrap_or_else(|| {
                    self.error(
                        at("subject"),
                        "nats sources need a `subject`",
                        "subject = \"orders.>\"",
                    );
                    String::new()
                });
                if !subject.is_empty() && SubjectPattern::parse(&subject).is_err() {
                    self.error(
                        at("subject"),
                        format!("`{subject}` is not a NATS subject"),
                        "subject = \"orders.>\"",
                    );
                }
                let jetstream = source.jetstream.map(|jetstream| JetStreamConsumer {
                    stream: jetstream.stream,
                    durable: jetstream.durable,
                    ack_wait: self.duration(
                        &at("jetstream.ack_wait"),
                        jetstream.ack_wait.as_deref(),
                        DEFAULT_ACK_WAIT,
                    ),
                    max_ack_pending: match jetstream.max_ack_pending {
                        None => DEFAULT_MAX_ACK_PENDING,
                        Some(n) if (1..=65_536).contains(&n) => n as u32,
                        Some(n) => {
                            self.error(
                                at("jetstream.max_ack_pending"),
                                format!("`{n}` is out of range 1..=65536"),
                                "max_ack_pending = 1024",
                            );
                            DEFAULT_MAX_ACK_PENDING
                        }
                    },
                });
                SourceKind::Nats { subject, queue_group: source.queue_group, jetstream }
            }
            Some(other) => {
                self.error(
                    at("type"),
                    format!("`{other}` is not a source type; expected `http`, `nats` or `api`"),
                    "type = \"http\"",
                );
                SourceKind::Http
            }
        };
        let event_type =
            source.event_type.and_then(|rule| self.event_type(&at("event_type"), rule));
        let dedupe = source.dedupe.map(|dedupe| {
            if !is_header_name(&dedupe.header) {
                self.error(
                    at("dedupe.header"),
                    format!("`{}` is not a header name", dedupe.header),
                    "dedupe = { header = \"x-github-delivery\" }",
                );
            }
            DedupeRule {
                header: dedupe.header.to_ascii_lowercase(),
                window: self.duration(
                    &at("dedupe.window"),
                    dedupe.window.as_deref(),
                    DEFAULT_DEDUPE_WINDOW,
                ),
            }
        });
        Source {
            id: id.to_owned(),
            kind,
            verify: source.verify,
            event_type,
            dedupe,
            max_body: self.size(&at("max_body"), source.max_body.as_deref(), default_max_body),
        }
    }

    fn event_type(&mut self, path: &str, rule: raw::EventTypeConfig) -> Option<EventTypeRule> {
        let example = "event_type = { header = \"x-github-event\", prefix = \"github.\" }";
        if rule.prefix.is_some() && rule.header.is_none() {
            self.error(format!("{path}.prefix"), "`prefix` goes with `header` only", example);
        }
        let rule = match (rule.header, rule.json, rule.value) {
            (Some(header), None, None) => {
                if !is_header_name(&header) {
                    self.error(
                        format!("{path}.header"),
                        format!("`{header}` is not a header name"),
                        example,
                    );
                }
                EventTypeRule::Header {
                    name: header.to_ascii_lowercase(),
                    prefix: rule.prefix.unwrap_or_default(),
                }
            }
            (None, Some(pointer), None) => {
                if !pointer.starts_with('/') {
                    self.error(
                        format!("{path}.json"),
                        format!("`{pointer}` is not a JSON pointer; it starts with `/`"),
                        "event_type = { json = \"/type\" }",
                    );
                }
                EventTypeRule::JsonPointer(pointer)
            }
            (None, None, Some(value)) if !value.is_empty() => EventTypeRule::Constant(value),
            _ => {
                self.error(
                    path,
                    "set exactly one of `header`, `json` or `value` (non-empty)",
                    example,
                );
                return None;
            }
        };
        Some(rule)
    }

    fn endpoint(
        &mut self,
        id: &str,
        endpoint: raw::EndpointConfig,
        ids: &Ids,
        egress: &EgressPolicy,
        has_nats: bool,
        resolved_secrets: &BTreeMap<String, Secret>,
    ) -> Endpoint {
        let at = |key: &str| format!("endpoints.{id}.{key}");
        let target = match endpoint.kind.as_deref() {
            None | Some("http") => {
                for (key, present) in [
                    ("subject", endpoint.subject.is_some()),
                    ("jetstream", endpoint.jetstream.is_some()),
                ] {
                    if present {
                        self.error(
                            at(key),
                            format!("`{key}` is only for `type = \"nats\"` endpoints"),
                            "type = \"nats\"",
                        );
                    }
                }
                let url = match endpoint.url.as_deref() {
                    Some(text) => self.endpoint_url(&at("url"), text, egress),
                    None => {
                        self.error(
                            at("url"),
                            "http endpoints need a `url`",
                            "url = \"https://example.com/hook\"",
                        );
                        None
                    }
                };
                EndpointTarget::Http { url: url.unwrap_or_else(placeholder_url) }
            }
            Some("nats") => {
                if !has_nats {
                    self.error(
                        at("type"),
                        "nats endpoints need a `[nats]` section",
                        "[nats]\nurl = \"nats://127.0.0.1:4222\"",
                    );
                }
                if endpoint.url.is_some() {
                    self.error(
                        at("url"),
                        "`url` is only for `type = \"http\"` endpoints",
                        "subject = \"audit.{source}.{type}\"",
                    );
                }
                let subject = endpoint.subject.unwrap_or_else(|| {
                    self.error(
                        at("subject"),
                        "nats endpoints need a `subject`",
                        "subject = \"audit.{source}.{type}\"",
                    );
                    String::new()
                });
                if !subject.is_empty()
                    && let Err(error) = SubjectTemplate::parse(&subject)
                {
                    self.error(
                        at("subject"),
                        error.to_string(),
                        "subject = \"audit.{source}.{type}\"",
                    );
                }
                EndpointTarget::Nats { subject, jetstream: endpoint.jetstream.unwrap_or(false) }
            }
            Some(other) => {
                self.error(
                    at("type"),
                    format!("`{other}` is not an endpoint type; expected `http` or `nats`"),
                    "type = \"http\"",
                );
                EndpointTarget::Http { url: placeholder_url() }
            }
        };
        let secrets = match (endpoint.secret, endpoint.secrets) {
            (Some(_), Some(_)) => {
                self.error(
                    at("secrets"),
                    "set `secret` or `secrets`, not both",
                    "secrets = [\"new-key\", \"old-key\"]",
                );
                Vec::new()
            }
            (Some(secret), None) => vec![secret],
            (None, secrets) => secrets.unwrap_or_default(),
        };
        self.references(&at("secrets"), &secrets, &ids.secrets, "secret");
        for name in &secrets {
            let Some(secret) = resolved_secrets.get(name) else { continue };
            let parsed = std::str::from_utf8(secret.expose())
                .map_err(|_| "it is not UTF-8 text".to_owned())
                .and_then(|text| SigningKey::parse(text).map_err(|error| error.to_string()));
            if let Err(reason) = parsed {
                self.error(
                    at("secrets"),
                    format!("secret `{name}` is not a signing key: {reason}"),
                    "[secrets]\nbilling-signing = { env = \"BILLING_WHSEC\" }  # whsec_<base64>",
                );
            }
        }
        if let Some(transform) = &endpoint.transform {
            self.references(
                &at("transform"),
                std::slice::from_ref(transform),
                &ids.plugins,
                "plugin",
            );
        }
        let max_in_flight = match endpoint.max_in_flight {
            None => DEFAULT_MAX_IN_FLIGHT,
            Some(n) if (1..=MAX_IN_FLIGHT_LIMIT).contains(&n) => n as u32,
            Some(n) => {
                self.error(
                    at("max_in_flight"),
                    format!("`{n}` is out of range 1..={MAX_IN_FLIGHT_LIMIT}"),
                    "max_in_flight = 16",
                );
                DEFAULT_MAX_IN_FLIGHT
            }
        };
        let mut headers = Vec::new();
        for (name, value) in endpoint.headers {
            let lower = name.to_ascii_lowercase();
            let message = match check_header(&name, &value) {
                Ok(lower) => {
                    headers.push((lower, value));
                    continue;
                }
                Err(HeaderProblem::NotAName) => format!("`{name}` is not a header name"),
                Err(HeaderProblem::Reserved) => {
                    format!("header `{lower}` is set by Switchyard and cannot be overridden")
                }
                Err(HeaderProblem::ControlCharacters) => {
                    format!("the value of header `{lower}` has control characters")
                }
            };
            self.error(at("headers"), message, "headers = { \"x-tenant\" = \"acme\" }");
        }
        Endpoint {
            id: id.to_owned(),
            target,
            secrets,
            timeout: self.duration(
                &at("timeout"),
                endpoint.timeout.as_deref(),
                DEFAULT_ENDPOINT_TIMEOUT,
            ),
            max_in_flight,
            retry_delays: self.retry(&at("retry"), endpoint.retry),
            headers,
            transform: endpoint.transform,
        }
    }

    fn endpoint_url(&mut self, path: &str, text: &str, egress: &EgressPolicy) -> Option<Url> {
        let example = "url = \"https://example.com/hook\"";
        let url = match Url::parse(text) {
            Ok(url) => url,
            Err(error) => {
                self.error(path, format!("`{text}` is not an absolute URL: {error}"), example);
                return None;
            }
        };
        let problems = url_problems(&url, egress);
        for problem in &problems {
            match problem {
                UrlProblem::NotHttps => self.error(
                    path,
                    format!("`{text}` is not https, and `egress.https_only` is set"),
                    example,
                ),
                UrlProblem::Scheme(other) => self.error(
                    path,
                    format!("scheme `{other}` is not supported; expected `https` or `http`"),
                    example,
                ),
                UrlProblem::NoHost => self.error(path, format!("`{text}` has no host"), example),
                UrlProblem::Blocked(blocked) => self.error(
                    path,
                    format!(
                        "{blocked}; add its network to `egress.allow_networks` to deliver there"
                    ),
                    "allow_networks = [\"127.0.0.0/8\"]",
                ),
            }
        }
        if problems.iter().any(UrlProblem::is_fatal) {
            return None;
        }
        Some(url)
    }

    fn retry(&mut self, path: &str, retry: Option<toml::Value>) -> Vec<Duration> {
        let example = "retry = \"standard\"  or  retry = { schedule = [\"5s\", \"5m\", \"30m\"] }";
        let standard = STANDARD_RETRY_DELAYS.to_vec();
        match retry {
            None => standard,
            Some(toml::Value::String(name)) if name == "standard" => standard,
            Some(toml::Value::Table(mut table))
                if table.len() == 1 && table.contains_key("schedule") =>
            {
                let Some(toml::Value::Array(steps)) = table.remove("schedule") else {
                    self.error(format!("{path}.schedule"), "expected a list of durations", example);
                    return standard;
                };
                let mut delays = Vec::with_capacity(steps.len());
                for (index, step) in steps.iter().enumerate() {
                    let step_path = format!("{path}.schedule[{index}]");
                    match step.as_str().map(parse_duration) {
                        Some(Ok(delay)) => delays.push(delay),
                        Some(Err(message)) => self.error(step_path, message, example),
                        None => self.error(
                            step_path,
                            format!("expected a duration string, found `{step}`"),
                            example,
                        ),
                    }
                }
                delays
            }
            Some(other) => {
                self.error(path, format!("`{other}` is not a retry policy"), example);
                standard
            }
        }
    }

    fn route(&mut self, id: &str, route: raw::RouteConfig, ids: &Ids) -> Route {
        let at = |key: &str| format!("routes.{id}.{key}");
        self.references(&at("from"), &route.from, &ids.sources, "source");
        self.references(&at("plugins"), &route.plugins, &ids.plugins, "plugin");
        if route.to.is_empty() {
            self.error(at("to"), "a route needs at least one endpoint", "to = [\"billing\"]");
        }
        self.references(&at("to"), &route.to, &ids.endpoints, "endpoint");
        let mut types = Vec::new();
        for (index, pattern) in route.types.iter().enumerate() {
            match TypePattern::parse(pattern) {
                Ok(pattern) => types.push(pattern),
                Err(error) => self.error(
                    format!("{}[{index}]", at("types")),
                    error.to_string(),
                    "types = [\"github.*\"]",
                ),
            }
        }
        let mut subjects = Vec::new();
        for (index, pattern) in route.subjects.iter().enumerate() {
            match SubjectPattern::parse(pattern) {
                Ok(pattern) => subjects.push(pattern),
                Err(error) => self.error(
                    format!("{}[{index}]", at("subjects")),
                    error.to_string(),
                    "subjects = [\"orders.*.created\"]",
                ),
            }
        }
        let filter = route.filter.as_deref().and_then(|source| match Filter::compile(source) {
            Ok(filter) => Some(filter),
            Err(error) => {
                self.error(
                    at("filter"),
                    format!("invalid CEL expression:\n{error}"),
                    "filter = 'body.repository.private == false'",
                );
                None
            }
        });
        Route {
            spec: RouteSpec {
                id: id.to_owned(),
                sources: route.from,
                types,
                subjects,
                filter,
                plugins: route.plugins,
                endpoints: route.to,
            },
        }
    }
}

fn placeholder_url() -> Url {
    Url::parse("http://invalid.invalid/").expect("a constant, valid URL")
}
