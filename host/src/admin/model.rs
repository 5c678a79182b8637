//! What the admin API accepts for a dynamic endpoint, checked field by field, and what the
//! store keeps of one.
//!
//! Pure: no I/O and no clock. [`check_endpoint`] reports every problem at once, each naming its
//! field (`url`, `types[1]`, `retry.schedule[0]`…), so a client can fix a request in one go.
//! The delivery settings follow [`endpoint_rules`], the same rules and words as the config
//! file; this module adds what only the API has (sources, types, filter, description, the
//! key text, size bounds on free-form fields). Name resolution of the URL's host (the SSRF
//! rule for host names) needs the network and lives with the handlers.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Serialize};
use url::Url;
use utoipa::ToSchema;

use crate::config::endpoint_rules::{self, EndpointFields, Field, Problem, RetryField};
use crate::config::{STANDARD_RETRY_DELAYS, Topology};
use crate::delivery::{EndpointKey, EndpointRuntime, Target, retry::RetrySchedule};
use crate::routing::{Filter, RouteSpec, TypePattern};
use crate::signing::SigningKey;

/// Dynamic endpoint ids start with this; config ids are kebab-case (no `_`), so the two
/// never collide.
pub const ENDPOINT_ID_PREFIX: &str = "ep_";
/// Generous bounds on free-form fields, so that one request cannot bloat the store (the URL
/// and headers have theirs in `endpoint_rules`).
const MAX_DESCRIPTION: usize = 1024;
const MAX_LIST_ITEMS: usize = 100;
/// Bytes of a generated `whsec_` key (Standard Webhooks asks for 24 to 64).
const GENERATED_KEY_BYTES: usize = 32;
/// How long a rotated-out key keeps signing when the request does not say.
pub const DEFAULT_ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 3600);
/// The longest overlap a rotation may ask for.
pub const MAX_ROTATION_OVERLAP: Duration = Duration::from_secs(30 * 24 * 3600);

/// The text of a signing key: serialized as is, never shown by `Debug` (so never logged).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
pub struct SecretText(pub String);

impl std::fmt::Debug for SecretText {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("SecretText(redacted)")
    }
}

/// At most this many keys sign at once: each adds a signature to every delivery, and a header
/// that keeps growing would soon be refused by receivers.
pub const MAX_LIVE_KEYS: usize = 5;

/// Header names whose values are credentials; listings show them as `[redacted]`.
const SENSITIVE_HEADER_WORDS: [&str; 6] =
    ["authorization", "cookie", "token", "secret", "key", "password"];

/// `headers` as the API shows them: values of credential-like headers redacted.
pub fn shown_headers<'a>(
    headers: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> BTreeMap<String, String> {
    headers
        .into_iter()
        .map(|(name, value)| {
            let lower = name.to_ascii_lowercase();
            let sensitive = SENSITIVE_HEADER_WORDS.iter().any(|word| lower.contains(word));
            (name.clone(), if sensitive { "[redacted]".to_owned() } else { value.clone() })
        })
        .collect()
}

/// One problem with a request, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Path of the field: `url`, `types[1]`, `retry.schedule[0]`, `headers.x-tenant`.
    pub field: String,
    pub detail: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { field: field.into(), detail: detail.into() }
    }

    /// A problem of an endpoint rule, in the rule's words, at the request's field.
    pub fn from_rule(field: &Field, problem: &Problem) -> Self {
        Self::new(field.to_string(), problem.to_string())
    }
}

/// `"standard"` (10 attempts over about 3 days) or an explicit schedule of delays between
/// attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum RetryInput {
    /// Only `"standard"`.
    Named(String),
    Schedule {
        /// Delays between attempts (`"5s"`, `"5m"`…); the first attempt is immediate, so
        /// three delays make four attempts.
        schedule: Vec<String>,
    },
}

/// A dynamic endpoint's settings, as a request gives them (`POST` creates, `PUT` replaces).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointInput {
    /// Where deliveries are POSTed: an `http` or `https` URL.
    pub url: String,
    pub description: Option<String>,
    /// Source ids whose events it receives; empty or absent: every source.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Event-type globs (`github.*`); empty or absent: every type.
    #[serde(default)]
    pub types: Vec<String>,
    /// A CEL expression over `{id, source, type, subject, headers, body}`.
    pub filter: Option<String>,
    /// Extra headers sent with every delivery.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Per attempt, e.g. `"15s"` (default).
    pub timeout: Option<String>,
    /// Attempts under way at once (default 16).
    pub max_in_flight: Option<u32>,
    pub retry: Option<RetryInput>,
    /// The signing key, `whsec_<base64>`; generated when absent. Only on creation: rotate it
    /// with `POST /v1/admin/endpoints/{id}/secret/rotate`.
    pub secret: Option<SecretText>,
}

/// A subscription: a callback URL and the events it wants.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionInput {
    pub url: String,
    /// Event-type globs; empty or absent: every type.
    #[serde(default)]
    pub types: Vec<String>,
    pub filter: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub description: Option<String>,
    /// `whsec_<base64>`; generated when absent.
    pub secret: Option<SecretText>,
}

impl From<SubscriptionInput> for EndpointInput {
    fn from(input: SubscriptionInput) -> Self {
        Self {
            url: input.url,
            description: input.description,
            types: input.types,
            filter: input.filter,
            headers: input.headers,
            secret: input.secret,
            ..Self::default()
        }
    }
}

/// How a dynamic endpoint was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndpointKind {
    Endpoint,
    Subscription,
}

impl EndpointKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Endpoint => "endpoint",
            Self::Subscription => "subscription",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Endpoint, Self::Subscription].into_iter().find(|kind| kind.as_str() == text)
    }
}

/// A dynamic endpoint's checked settings; also its stored form (inside [`EndpointRecord`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSettings {
    pub url: String,
    pub description: Option<String>,
    pub sources: Vec<String>,
    pub types: Vec<String>,
    pub filter: Option<String>,
    /// Names in lower case.
    pub headers: BTreeMap<String, String>,
    pub timeout_ms: u64,
    pub max_in_flight: u32,
    /// Delays between attempts in milliseconds; `None` is the standard schedule.
    pub retry_ms: Option<Vec<u64>>,
}

/// A signing key as stored, with the end of its overlap once rotated out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub secret: SecretText,
    pub created_at: u64,
    pub expires_at: Option<u64>,
}

/// What the store keeps of a dynamic endpoint (the `spec` JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub settings: EndpointSettings,
    /// Newest first; the newest signs first.
    pub keys: Vec<KeyRecord>,
}

/// What a check needs to know about the running configuration.
#[derive(Debug, Clone, Copy)]
pub struct CheckContext<'a> {
    pub topology: &'a Topology,
}

/// Checks `input` and answers its settings, or every problem found.
pub fn check_endpoint(
    input: &EndpointInput,
    context: CheckContext<'_>,
) -> Result<EndpointSettings, Vec<FieldError>> {
    let fields = EndpointFields {
        url: Some(&input.url),
        headers: Some(&input.headers),
        timeout: input.timeout.as_deref(),
        max_in_flight: input.max_in_flight.map(i64::from),
        retry: retry_field(input.retry.as_ref()),
    };
    let (checked, problems) = endpoint_rules::check(&fields, &context.topology.egress);
    let mut errors: Vec<FieldError> =
        problems.iter().map(|(field, problem)| FieldError::from_rule(field, problem)).collect();
    check_routing(input, context, &mut errors);
    if let Some(Err(error)) = input.secret.as_ref().map(|secret| SigningKey::parse(&secret.0)) {
        errors.push(FieldError::new("secret", error.to_string()));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(EndpointSettings {
        url: input.url.clone(),
        description: input.description.clone(),
        sources: input.sources.clone(),
        types: input.types.clone(),
        filter: input.filter.clone(),
        headers: checked.headers.into_iter().collect(),
        timeout_ms: millis(checked.timeout),
        max_in_flight: checked.max_in_flight,
        retry_ms: checked.retry_delays.map(|delays| delays.into_iter().map(millis).collect()),
    })
}

/// What only the API has: the description and the endpoint's own route (sources, types,
/// filter).
fn check_routing(input: &EndpointInput, context: CheckContext<'_>, errors: &mut Vec<FieldError>) {
    if input.description.as_ref().is_some_and(|text| text.len() > MAX_DESCRIPTION) {
        errors.push(FieldError::new("description", format!("longer than {MAX_DESCRIPTION} bytes")));
    }
    check_list_length("sources", &input.sources, errors);
    for (index, source) in input.sources.iter().enumerate() {
        if !context.topology.sources.contains_key(source) && source != crate::notify::SOURCE {
            errors.push(FieldError::new(
                format!("sources[{index}]"),
                format!("`{source}` is not a configured source"),
            ));
        }
    }
    check_list_length("types", &input.types, errors);
    for (index, pattern) in input.types.iter().enumerate() {
        if let Err(error) = TypePattern::parse(pattern) {
            errors.push(FieldError::new(format!("types[{index}]"), error.to_string()));
        }
    }
    if let Some(Err(error)) = input.filter.as_deref().map(Filter::compile) {
        errors.push(FieldError::new("filter", error.to_string()));
    }
}

fn check_list_length(field: &str, items: &[String], errors: &mut Vec<FieldError>) {
    if items.len() > MAX_LIST_ITEMS {
        errors.push(FieldError::new(field, format!("more than {MAX_LIST_ITEMS} entries")));
    }
}

/// The request's retry shapes as the rules take them.
fn retry_field(retry: Option<&RetryInput>) -> RetryField<'_> {
    match retry {
        None => RetryField::Standard,
        Some(RetryInput::Named(name)) if name == "standard" => RetryField::Standard,
        Some(RetryInput::Named(name)) => RetryField::Named(name),
        Some(RetryInput::Schedule { schedule }) => {
            RetryField::Schedule(schedule.iter().map(|step| Ok(step.as_str())).collect())
        }
    }
}

/// A new random `whsec_` signing key.
pub fn generate_secret() -> Result<SecretText, getrandom::Error> {
    let mut bytes = [0u8; GENERATED_KEY_BYTES];
    getrandom::fill(&mut bytes)?;
    Ok(SecretText(format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(bytes))))
}

/// A new dynamic endpoint id: `ep_` and a lower-case ULID (time-ordered, so ids sort by
/// creation).
pub fn new_endpoint_id() -> String {
    format!("{ENDPOINT_ID_PREFIX}{}", ulid::Ulid::new().to_string().to_ascii_lowercase())
}

// === impl EndpointRecord ===

impl EndpointRecord {
    /// What the delivery workers need. Fails only if a stored key no longer parses.
    pub fn runtime(&self, id: &str) -> Result<EndpointRuntime, String> {
        let settings = &self.settings;
        let url = Url::parse(&settings.url).map_err(|error| format!("stored URL: {error}"))?;
        let mut signing_keys = Vec::with_capacity(self.keys.len());
        for key in &self.keys {
            let parsed = SigningKey::parse(&key.secret.0).map_err(|error| error.to_string())?;
            signing_keys.push(EndpointKey { key: parsed, expires_at: key.expires_at });
        }
        let delays = match &settings.retry_ms {
            None => STANDARD_RETRY_DELAYS.to_vec(),
            Some(delays) => delays.iter().copied().map(Duration::from_millis).collect(),
        };
        Ok(EndpointRuntime {
            id: id.to_owned(),
            target: Target::Http(url),
            timeout: Duration::from_millis(settings.timeout_ms),
            max_in_flight: settings.max_in_flight,
            schedule: RetrySchedule::custom(delays),
            headers: settings.headers.clone().into_iter().collect(),
            signing_keys,
        })
    }

    /// The endpoint's own route: its sources, types and filter, to itself alone. Its id is the
    /// endpoint's, which no config route can have.
    pub fn route(&self, id: &str) -> Result<RouteSpec, String> {
        let settings = &self.settings;
        let types = settings
            .types
            .iter()
            .map(|pattern| TypePattern::parse(pattern).map_err(|error| error.to_string()))
            .collect::<Result<_, _>>()?;
        let filter = match &settings.filter {
            Some(expression) => {
                Some(Filter::compile(expression).map_err(|error| error.to_string())?)
            }
            None => None,
        };
        Ok(RouteSpec {
            id: id.to_owned(),
            sources: settings.sources.clone(),
            types,
            subjects: Vec::new(),
            filter,
            plugins: Vec::new(),
            endpoints: vec![id.to_owned()],
        })
    }

    /// Keys still signing at `now`, newest first.
    pub fn live_keys(&self, now: u64) -> impl Iterator<Item = &KeyRecord> {
        self.keys.iter().filter(move |key| key.expires_at.is_none_or(|at| now < at))
    }
}

/// A duration as the API writes it: `"15s"`, or `"1500ms"` when not whole seconds.
pub fn format_duration(duration: Duration) -> String {
    let millis = millis(duration);
    if millis.is_multiple_of(1000) { format!("{}s", millis / 1000) } else { format!("{millis}ms") }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
