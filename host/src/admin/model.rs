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

use crate::config::endpoint_rules::{
    self, BreakerField, EndpointFields, Field, OrderedByField, Problem, RetryField,
};
use crate::config::{STANDARD_RETRY_DELAYS, Topology};
use crate::delivery::http::{EndpointTls, TlsField};
use crate::delivery::{EndpointKey, EndpointRuntime, Target, retry::RetrySchedule};
use crate::routing::{Filter, RouteSpec, TypePattern};
use crate::signing::SigningKey;
use crate::store::lifecycle::{EndpointStatus, Ownership, ownership_status};
use crate::traffic::breaker::BreakerSettings;
use crate::traffic::endpoint::{DeliveryRate, TrafficSettings};
use crate::traffic::ordering::OrderedBy;
use crate::traffic::rate::Rate;

/// Dynamic endpoint ids start with this; config ids are kebab-case (no `_`), so the two
/// never collide.
pub const ENDPOINT_ID_PREFIX: &str = "ep_";
/// Generous bounds on free-form fields, so that one request cannot bloat the store (the URL
/// and headers have theirs in `endpoint_rules`).
const MAX_DESCRIPTION: usize = 1024;
const MAX_LIST_ITEMS: usize = 100;
/// Bytes of one PEM text in `tls` (a certificate chain is a few KiB).
const MAX_PEM: usize = 64 * 1024;
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
            let sensitive = is_sensitive_header(name);
            (name.clone(), if sensitive { "[redacted]".to_owned() } else { value.clone() })
        })
        .collect()
}

/// Whether a header's value is credential-like (its name holds `authorization`, `cookie`,
/// `token`, `secret`, `key` or `password`), so shown `[redacted]`.
pub fn is_sensitive_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SENSITIVE_HEADER_WORDS.iter().any(|word| lower.contains(word))
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
    /// Attempts started per unit of time, spaced evenly, e.g. `"50/s"`; absent: unlimited.
    pub rate: Option<String>,
    /// Attempts that may start at once after a quiet spell, with `rate` (default 1).
    pub burst: Option<u32>,
    /// `"off"`, or the circuit breaker's settings (default: 20 failures, 30s, 10m).
    pub breaker: Option<BreakerInput>,
    /// Adapt the in-flight limit to overload signals (default true).
    pub adaptive: Option<bool>,
    /// Disable after this long without a success while failing, or `"off"` (default `"5d"`).
    pub disable_after: Option<String>,
    /// Ordering per key: `"all"`, `{"json": "/customer/id"}` or `{"header": "x-order-key"}`;
    /// absent: unordered.
    pub ordered_by: Option<OrderedByInput>,
    /// TLS settings of an `https` endpoint: a private CA, a client certificate.
    pub tls: Option<TlsInput>,
}

/// `"all"`, or the key deliveries are ordered by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum OrderedByInput {
    /// Only `"all"`.
    Named(String),
    Settings(OrderedBySettingsInput),
}

/// Exactly one of a JSON pointer into the body and a header name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderedBySettingsInput {
    pub json: Option<String>,
    pub header: Option<String>,
}

/// `"off"`, or a breaker's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum BreakerInput {
    /// Only `"off"`.
    Named(String),
    Settings(BreakerSettingsInput),
}

/// After `failures` consecutive failed attempts, none for `cooldown`, then one probe; a
/// failed probe doubles the cooldown up to `max_cooldown`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakerSettingsInput {
    pub failures: Option<u32>,
    pub cooldown: Option<String>,
    pub max_cooldown: Option<String>,
}

/// An endpoint's TLS settings as PEM text. The key is stored sealed (with `server.store_key`)
/// and never shown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsInput {
    /// The CA certificates to trust for this endpoint (only these, not the system's roots).
    pub ca: Option<String>,
    /// The client certificate (and its chain) to present; needs `client_key`.
    pub client_cert: Option<String>,
    /// The client certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub client_key: Option<SecretText>,
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
    /// Absent in records stored before traffic control: the defaults.
    #[serde(default)]
    pub traffic: TrafficRecord,
    /// Ordering per key; absent: unordered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordered_by: Option<OrderedBy>,
    /// PEM text, checked; absent in records stored before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsInput>,
}

/// An endpoint's traffic settings as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrafficRecord {
    /// As [`Rate`]'s text, e.g. `50/s`.
    pub rate: Option<String>,
    pub burst: u32,
    /// `None`: off.
    pub breaker: Option<BreakerRecord>,
    pub adaptive: bool,
    /// `None`: off.
    pub disable_after_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerRecord {
    pub failures: u32,
    pub cooldown_ms: u64,
    pub max_cooldown_ms: u64,
}

impl Default for TrafficRecord {
    fn default() -> Self {
        Self::from(TrafficSettings::default())
    }
}

impl From<TrafficSettings> for TrafficRecord {
    fn from(settings: TrafficSettings) -> Self {
        Self {
            rate: settings.rate.map(|rate| rate.rate.to_string()),
            burst: settings.rate.map_or(1, |rate| rate.burst),
            breaker: settings.breaker.map(|breaker| BreakerRecord {
                failures: breaker.failures,
                cooldown_ms: millis(breaker.cooldown),
                max_cooldown_ms: millis(breaker.max_cooldown),
            }),
            adaptive: settings.adaptive,
            disable_after_ms: settings.disable_after.map(millis),
        }
    }
}

impl TrafficRecord {
    /// The settings; fails only if a stored rate no longer parses.
    pub fn settings(&self) -> Result<TrafficSettings, String> {
        let rate = match &self.rate {
            None => None,
            Some(text) => {
                let rate = Rate::parse(text).map_err(|error| format!("stored rate: {error}"))?;
                Some(DeliveryRate { rate, burst: self.burst.max(1) })
            }
        };
        Ok(TrafficSettings {
            rate,
            breaker: self.breaker.as_ref().map(|breaker| BreakerSettings {
                failures: breaker.failures.max(1),
                cooldown: Duration::from_millis(breaker.cooldown_ms),
                max_cooldown: Duration::from_millis(breaker.max_cooldown_ms),
            }),
            adaptive: self.adaptive,
            disable_after: self.disable_after_ms.map(Duration::from_millis),
        })
    }
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
    /// Its ownership check; absent for endpoints created while `server.verify_endpoints` was
    /// off (they count as verified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationRecord>,
}

/// An endpoint's ownership check, as stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationRecord {
    pub state: Ownership,
    /// The random text the endpoint must answer with. Never shown.
    pub challenge: String,
    /// When the check started (unix ms).
    pub started_at: u64,
    /// When an unanswered check expires (unix ms).
    pub deadline: u64,
    /// When the endpoint answered (unix ms).
    pub verified_at: Option<u64>,
}

impl std::fmt::Debug for VerificationRecord {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("VerificationRecord")
            .field("state", &self.state)
            .field("started_at", &self.started_at)
            .field("deadline", &self.deadline)
            .field("verified_at", &self.verified_at)
            .finish_non_exhaustive()
    }
}

/// Bytes of a verification challenge.
const CHALLENGE_BYTES: usize = 24;

/// A new check, pending from `now` until `now + timeout`, with a fresh random challenge.
pub fn new_verification(
    now: u64,
    timeout: Duration,
) -> Result<VerificationRecord, getrandom::Error> {
    let mut bytes = [0u8; CHALLENGE_BYTES];
    getrandom::fill(&mut bytes)?;
    Ok(VerificationRecord {
        state: Ownership::PendingVerification,
        challenge: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        started_at: now,
        deadline: now.saturating_add(millis(timeout)),
        verified_at: None,
    })
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
        rate: input.rate.as_deref(),
        burst: input.burst.map(i64::from),
        breaker: match &input.breaker {
            None => BreakerField::Default,
            Some(BreakerInput::Named(name)) => BreakerField::Named(name),
            Some(BreakerInput::Settings(settings)) => BreakerField::Settings {
                failures: settings.failures.map(i64::from),
                cooldown: settings.cooldown.as_deref(),
                max_cooldown: settings.max_cooldown.as_deref(),
            },
        },
        adaptive: input.adaptive,
        disable_after: input.disable_after.as_deref(),
        ordered_by: match &input.ordered_by {
            None => OrderedByField::Absent,
            Some(OrderedByInput::Named(name)) => OrderedByField::Named(name),
            Some(OrderedByInput::Settings(settings)) => OrderedByField::Settings {
                json: settings.json.as_deref(),
                header: settings.header.as_deref(),
            },
        },
    };
    let (checked, problems) = endpoint_rules::check(&fields, &context.topology.egress);
    let mut errors: Vec<FieldError> =
        problems.iter().map(|(field, problem)| FieldError::from_rule(field, problem)).collect();
    check_routing(input, context, &mut errors);
    if let Some(Err(error)) = input.secret.as_ref().map(|secret| SigningKey::parse(&secret.0)) {
        errors.push(FieldError::new("secret", error.to_string()));
    }
    if let Some(tls) = &input.tls {
        check_tls(&input.url, tls, &mut errors);
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
        traffic: TrafficRecord::from(checked.traffic),
        ordered_by: checked.ordered_by,
        tls: input.tls.clone(),
    })
}

/// `tls`: each PEM text within bounds and holding what its name says, on an `https` URL.
fn check_tls(url: &str, tls: &TlsInput, errors: &mut Vec<FieldError>) {
    if Url::parse(url).is_ok_and(|url| url.scheme() != "https") {
        errors.push(FieldError::new("tls", "`tls` applies to `https` URLs"));
    }
    let texts = [
        (TlsField::Ca, tls.ca.as_deref()),
        (TlsField::ClientCert, tls.client_cert.as_deref()),
        (TlsField::ClientKey, tls.client_key.as_ref().map(|key| key.0.as_str())),
    ];
    let mut too_long = false;
    for (field, text) in texts {
        if text.is_some_and(|text| text.len() > MAX_PEM) {
            errors.push(FieldError::new(
                format!("tls.{}", field.key()),
                format!("longer than {MAX_PEM} bytes"),
            ));
            too_long = true;
        }
    }
    if texts.iter().all(|(_, text)| text.is_none()) {
        errors.push(FieldError::new("tls", "set `ca`, or `client_cert` and `client_key`, or both"));
    } else if !too_long && let Err(problems) = endpoint_tls(tls) {
        for problem in problems {
            let what = if problem.field == TlsField::ClientKey { "the key" } else { "the text" };
            errors.push(FieldError::new(
                format!("tls.{}", problem.field.key()),
                problem.describe(what),
            ));
        }
    }
}

/// The delivery side's form of `tls`.
fn endpoint_tls(tls: &TlsInput) -> Result<EndpointTls, Vec<crate::delivery::http::TlsProblem>> {
    EndpointTls::new(
        tls.ca.as_deref().map(str::as_bytes),
        tls.client_cert.as_deref().map(str::as_bytes),
        tls.client_key.as_ref().map(|key| key.0.as_bytes()),
    )
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
        let tls = match &settings.tls {
            Some(tls) => Some(endpoint_tls(tls).map_err(|problems| {
                let reasons: Vec<String> = problems
                    .iter()
                    .map(|problem| format!("`tls.{}` {}", problem.field.key(), problem.message))
                    .collect();
                format!("stored TLS settings: {}", reasons.join("; "))
            })?),
            None => None,
        };
        Ok(EndpointRuntime {
            tls,
            id: id.to_owned(),
            target: Target::Http(url),
            timeout: Duration::from_millis(settings.timeout_ms),
            max_in_flight: settings.max_in_flight,
            schedule: RetrySchedule::custom(delays),
            headers: settings.headers.clone().into_iter().collect(),
            signing_keys,
            traffic: settings.traffic.settings()?,
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

    /// Its ownership: verified unless a check is pending or expired.
    pub fn ownership(&self) -> Ownership {
        self.verification.as_ref().map_or(Ownership::Verified, |check| check.state)
    }

    /// Whether its deliveries wait for it to prove ownership (it counts as disabled).
    pub fn awaits_owner(&self) -> bool {
        ownership_status(self.ownership()) != EndpointStatus::Enabled
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
