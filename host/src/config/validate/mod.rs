//! Validation: raw config items → [`Topology`], collecting every error.
//!
//! Pure apart from the [`Environment`] it is handed (environment variables, secret files,
//! plugin files). It never stops at the first problem: each check records an error with its
//! path and an example, and validation goes on with a placeholder value.
//!
//! One submodule per part of the file: [`server`] (`[server]`, `[egress]`, `[nats]`),
//! [`plugins`], [`sources`], [`endpoints`] (whose delivery rules are
//! [`super::endpoint_rules`], shared with the admin API) and [`routes`]. This module holds the
//! validator and the checks they share (ids, durations, sizes, references, secrets).

#[cfg(test)]
mod egress_tests;
mod endpoint_tls;
mod endpoints;
mod plugins;
mod routes;
mod server;
mod sources;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::SecretConfig;
use super::secret::{Environment, Secret, trim_one_newline};
use super::topology::*;
use super::values::{check_id, parse_duration, parse_size};
use super::{ConfigError, RawDocument};

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
        let mut raw_server = raw.server;
        let store_key = raw_server.store_key.take();
        let mut server = self.server(raw_server);
        let egress = self.egress(raw.egress);
        let nats = raw.nats.and_then(|nats| self.nats(nats));
        let has_nats = raw.nats_present;
        let store = self.store(raw.store, has_nats, server.durability);
        let mut secrets = BTreeMap::new();
        for (id, item) in raw.secrets {
            self.id(&format!("secrets.{id}"), &id);
            if let Some(secret) = item.and_then(|item| self.secret(&format!("secrets.{id}"), item))
            {
                secrets.insert(id, secret);
            }
        }
        server.store_key = self.store_key(store_key, &ids.secrets, &secrets);
        let plugins = self.each(raw.plugins, "plugins", |v, id, item| v.plugin(id, item, &ids));
        let default_max_body = server.max_body;
        let client_ca = server.tls.as_ref().is_some_and(|tls| tls.client_ca.is_some());
        let sources = self.each(raw.sources, "sources", |v, id, item| {
            v.source(id, item, &ids, has_nats, default_max_body, client_ca)
        });
        let context =
            endpoints::Context { ids: &ids, egress: &egress, has_nats, secrets: &secrets };
        let endpoints =
            self.each(raw.endpoints, "endpoints", |v, id, item| v.endpoint(id, item, &context));
        let routes = self.each(raw.routes, "routes", |v, id, item| v.route(id, item, &ids));
        let telemetry = super::telemetry::validate(raw.telemetry, self.errors);
        Topology {
            server,
            store,
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

    /// Reports each key of `keys` that is set although it belongs to another `type`: keys
    /// present on a `{section}` item whose type is not `kind`.
    fn only_for(
        &mut self,
        at: &dyn Fn(&str) -> String,
        kind: &str,
        section: &str,
        keys: &[(&str, bool)],
    ) {
        for (key, present) in keys {
            if *present {
                self.error(
                    at(key),
                    format!("`{key}` is only for `type = \"{kind}\"` {section}"),
                    &format!("type = \"{kind}\""),
                );
            }
        }
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
}
