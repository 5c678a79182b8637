//! `[endpoints.<id>]`: the target (HTTP URL or NATS subject template), signing keys, the
//! transform, and the delivery settings.
//!
//! The delivery settings (URL, headers, timeout, concurrency, retry) follow
//! [`endpoint_rules`], the rules the admin API applies too; this file only turns the file's
//! shapes into [`EndpointFields`] and places each [`Problem`] at a config path with an example
//! ([`config_error`]). Signing keys are parsed here, once, from the resolved secrets.

use std::collections::BTreeMap;

use url::Url;

use super::{Ids, Validator};
use crate::config::ConfigError;
use crate::config::endpoint_rules::{
    self, BreakerField, CheckedEndpoint, EndpointFields, Field, OrderedByField, Problem,
    RetryField, UrlProblem,
};
use crate::config::raw;
use crate::config::secret::Secret;
use crate::config::topology::*;
use crate::egress::EgressPolicy;
use crate::nats::template::SubjectTemplate;
use crate::signing::SigningKey;

const RETRY_EXAMPLE: &str =
    "retry = \"standard\"  or  retry = { schedule = [\"5s\", \"5m\", \"30m\"] }";
const BREAKER_EXAMPLE: &str = "breaker = { failures = 20, cooldown = \"30s\", max_cooldown = \"10m\" }  or  breaker = \"off\"";
const ORDERED_BY_EXAMPLE: &str = "ordered_by = { json = \"/customer/id\" }  or  ordered_by = { header = \"x-order-key\" }  or  ordered_by = \"all\"";
const SUBJECT_EXAMPLE: &str = "subject = \"audit.{source}.{type}\"";

/// What every endpoint is checked against.
pub(super) struct Context<'a> {
    pub ids: &'a Ids,
    pub egress: &'a EgressPolicy,
    pub has_nats: bool,
    /// The secrets that could be read, by name.
    pub secrets: &'a BTreeMap<String, Secret>,
}

/// One problem of an endpoint rule, placed at its config path with an example.
pub(crate) fn config_error(id: &str, field: &Field, problem: &Problem) -> ConfigError {
    let key = match field {
        // Header names may hold anything; the message names the header.
        Field::Header(_) => "headers".to_owned(),
        other => other.to_string(),
    };
    let (message, example) = match problem {
        Problem::Url { problem: UrlProblem::Blocked(_), .. } => (
            format!("{problem}; add its network to `egress.allow_networks` to deliver there"),
            "allow_networks = [\"127.0.0.0/8\"]",
        ),
        _ => (problem.to_string(), example(field)),
    };
    ConfigError {
        path: format!("endpoints.{id}.{key}"),
        message,
        example: Some(example.to_owned()),
    }
}

fn example(field: &Field) -> &'static str {
    match field {
        Field::Url => "url = \"https://example.com/hook\"",
        Field::Headers | Field::Header(_) => "headers = { \"x-tenant\" = \"acme\" }",
        Field::Timeout => "timeout = \"15s\"",
        Field::MaxInFlight => "max_in_flight = 16",
        Field::Retry | Field::RetrySchedule | Field::RetryStep(_) => RETRY_EXAMPLE,
        Field::Rate | Field::Burst => "rate = \"50/s\"\nburst = 10",
        Field::Breaker
        | Field::BreakerFailures
        | Field::BreakerCooldown
        | Field::BreakerMaxCooldown => BREAKER_EXAMPLE,
        Field::DisableAfter => "disable_after = \"5d\"  or  disable_after = \"off\"",
        Field::OrderedBy | Field::OrderedByJson | Field::OrderedByHeader => ORDERED_BY_EXAMPLE,
    }
}

impl Validator<'_> {
    pub(super) fn endpoint(
        &mut self,
        id: &str,
        endpoint: raw::EndpointConfig,
        context: &Context<'_>,
    ) -> Endpoint {
        let at = |key: &str| format!("endpoints.{id}.{key}");
        let is_http = matches!(endpoint.kind.as_deref(), None | Some("http"));
        let retry = self.retry_field(&at("retry"), endpoint.retry.as_ref());
        let fields = EndpointFields {
            url: endpoint.url.as_deref().filter(|_| is_http),
            headers: Some(&endpoint.headers),
            timeout: endpoint.timeout.as_deref(),
            max_in_flight: endpoint.max_in_flight,
            retry,
            rate: endpoint.rate.as_deref(),
            burst: endpoint.burst,
            breaker: self.breaker_field(&at("breaker"), endpoint.breaker.as_ref()),
            adaptive: endpoint.adaptive,
            disable_after: endpoint.disable_after.as_deref(),
            ordered_by: self.ordered_by_field(&at("ordered_by"), endpoint.ordered_by.as_ref()),
        };
        let (checked, problems) = endpoint_rules::check(&fields, context.egress);
        let (url_problems, other_problems): (Vec<_>, Vec<_>) =
            problems.into_iter().partition(|(field, _)| *field == Field::Url);
        let target = self.target(&at, &endpoint, checked.url.clone(), context.has_nats);
        for (field, problem) in &url_problems {
            self.errors.push(config_error(id, field, problem));
        }
        let (secrets, signing_keys) =
            self.signing_keys(&at, endpoint.secret, endpoint.secrets, context);
        if let Some(transform) = &endpoint.transform {
            let plugins = &context.ids.plugins;
            self.references(&at("transform"), std::slice::from_ref(transform), plugins, "plugin");
        }
        for (field, problem) in &other_problems {
            self.errors.push(config_error(id, field, problem));
        }
        let tls = endpoint.tls.and_then(|tls| self.endpoint_tls(&at, tls, is_http, &target));
        let CheckedEndpoint {
            headers,
            timeout,
            max_in_flight,
            retry_delays,
            traffic,
            ordered_by,
            ..
        } = checked;
        Endpoint {
            id: id.to_owned(),
            target,
            secrets,
            signing_keys,
            timeout,
            max_in_flight,
            retry_delays: retry_delays.unwrap_or_else(|| STANDARD_RETRY_DELAYS.to_vec()),
            headers,
            transform: endpoint.transform,
            traffic,
            ordered_by,
            tls,
        }
    }

    /// The file's `ordered_by` shapes as the rules take them; a shape that is neither a name
    /// nor a table of `json` or `header` is reported here.
    fn ordered_by_field<'v>(
        &mut self,
        path: &str,
        ordered_by: Option<&'v toml::Value>,
    ) -> OrderedByField<'v> {
        match ordered_by {
            None => OrderedByField::Absent,
            Some(toml::Value::String(name)) => OrderedByField::Named(name),
            Some(toml::Value::Table(table)) => {
                let known = ["json", "header"];
                for key in table.keys().filter(|key| !known.contains(&key.as_str())) {
                    self.error(
                        format!("{path}.{key}"),
                        format!("unknown field `{key}`, expected one of `json`, `header`"),
                        ORDERED_BY_EXAMPLE,
                    );
                }
                let mut text = |key: &str| match table.get(key) {
                    None => None,
                    Some(toml::Value::String(text)) => Some(text.as_str()),
                    Some(other) => {
                        let message = format!("expected a string, found `{other}`");
                        self.error(format!("{path}.{key}"), message, ORDERED_BY_EXAMPLE);
                        None
                    }
                };
                let json = text("json");
                let header = text("header");
                if json.is_none() && header.is_none() && !table.is_empty() {
                    // Already reported: the keys given were wrong.
                    return OrderedByField::Absent;
                }
                OrderedByField::Settings { json, header }
            }
            Some(other) => {
                self.error(path, format!("`{other}` is not an ordering"), ORDERED_BY_EXAMPLE);
                OrderedByField::Absent
            }
        }
    }

    /// The file's breaker shapes as the rules take them; a shape that is neither a name nor
    /// a table of settings is reported here.
    fn breaker_field<'v>(
        &mut self,
        path: &str,
        breaker: Option<&'v toml::Value>,
    ) -> BreakerField<'v> {
        match breaker {
            None => BreakerField::Default,
            Some(toml::Value::String(name)) => BreakerField::Named(name),
            Some(toml::Value::Table(table)) => {
                let known = ["failures", "cooldown", "max_cooldown"];
                for key in table.keys().filter(|key| !known.contains(&key.as_str())) {
                    self.error(
                        format!("{path}.{key}"),
                        format!("unknown field `{key}`, expected one of `failures`, `cooldown`, `max_cooldown`"),
                        BREAKER_EXAMPLE,
                    );
                }
                let failures = match table.get("failures") {
                    None => None,
                    Some(toml::Value::Integer(failures)) => Some(*failures),
                    Some(other) => {
                        let message = format!("expected a whole number, found `{other}`");
                        self.error(format!("{path}.failures"), message, BREAKER_EXAMPLE);
                        None
                    }
                };
                let mut text = |key: &str| match table.get(key) {
                    None => None,
                    Some(toml::Value::String(text)) => Some(text.as_str()),
                    Some(other) => {
                        let message = format!("expected a duration string, found `{other}`");
                        self.error(format!("{path}.{key}"), message, BREAKER_EXAMPLE);
                        None
                    }
                };
                let cooldown = text("cooldown");
                let max_cooldown = text("max_cooldown");
                BreakerField::Settings { failures, cooldown, max_cooldown }
            }
            Some(other) => {
                self.error(path, format!("`{other}` is not a breaker"), BREAKER_EXAMPLE);
                BreakerField::Default
            }
        }
    }

    fn target(
        &mut self,
        at: &dyn Fn(&str) -> String,
        endpoint: &raw::EndpointConfig,
        url: Option<Url>,
        has_nats: bool,
    ) -> EndpointTarget {
        match endpoint.kind.as_deref() {
            None | Some("http") => {
                let keys = [
                    ("subject", endpoint.subject.is_some()),
                    ("jetstream", endpoint.jetstream.is_some()),
                ];
                self.only_for(at, "nats", "endpoints", &keys);
                if endpoint.url.is_none() {
                    self.error(at("url"), "http endpoints need a `url`", example(&Field::Url));
                }
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
                self.only_for(at, "http", "endpoints", &[("url", endpoint.url.is_some())]);
                let subject = self.subject_template(&at("subject"), endpoint.subject.as_deref());
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
        }
    }

    /// The parsed template; a placeholder when it is missing or wrong (the error is recorded).
    fn subject_template(&mut self, path: &str, text: Option<&str>) -> SubjectTemplate {
        let parsed = match text {
            None => Err("nats endpoints need a `subject`".to_owned()),
            Some(text) => SubjectTemplate::parse(text).map_err(|error| error.to_string()),
        };
        parsed.unwrap_or_else(|message| {
            self.error(path, message, SUBJECT_EXAMPLE);
            SubjectTemplate::parse("invalid").expect("a constant, valid template")
        })
    }

    /// The names of the endpoint's signing secrets, and the keys parsed from those that
    /// could be read.
    fn signing_keys(
        &mut self,
        at: &dyn Fn(&str) -> String,
        secret: Option<String>,
        secrets: Option<Vec<String>>,
        context: &Context<'_>,
    ) -> (Vec<String>, Vec<SigningKey>) {
        let names = match (secret, secrets) {
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
        self.references(&at("secrets"), &names, &context.ids.secrets, "secret");
        let mut keys = Vec::with_capacity(names.len());
        for name in &names {
            let Some(secret) = context.secrets.get(name) else { continue };
            let parsed = std::str::from_utf8(secret.expose())
                .map_err(|_| "it is not UTF-8 text".to_owned())
                .and_then(|text| SigningKey::parse(text).map_err(|error| error.to_string()));
            match parsed {
                Ok(key) => keys.push(key),
                Err(reason) => self.error(
                    at("secrets"),
                    format!("secret `{name}` is not a signing key: {reason}"),
                    "[secrets]\nbilling-signing = { env = \"BILLING_WHSEC\" }  # whsec_<base64>",
                ),
            }
        }
        (names, keys)
    }

    /// The file's retry shapes as the rules take them; a shape that is neither a name nor a
    /// schedule is reported here.
    fn retry_field<'v>(&mut self, path: &str, retry: Option<&'v toml::Value>) -> RetryField<'v> {
        match retry {
            None => RetryField::Standard,
            Some(toml::Value::String(name)) if name == "standard" => RetryField::Standard,
            Some(toml::Value::String(name)) => RetryField::Named(name),
            Some(toml::Value::Table(table))
                if table.len() == 1 && table.contains_key("schedule") =>
            {
                let Some(toml::Value::Array(steps)) = table.get("schedule") else {
                    let message = "expected a list of durations";
                    self.error(format!("{path}.schedule"), message, RETRY_EXAMPLE);
                    return RetryField::Standard;
                };
                let steps = steps.iter().map(|step| step.as_str().ok_or_else(|| step.to_string()));
                RetryField::Schedule(steps.collect())
            }
            Some(other) => {
                self.error(path, format!("`{other}` is not a retry policy"), RETRY_EXAMPLE);
                RetryField::Standard
            }
        }
    }
}

fn placeholder_url() -> Url {
    Url::parse("http://invalid.invalid/").expect("a constant, valid URL")
}
