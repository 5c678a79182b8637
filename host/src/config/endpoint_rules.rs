//! The rules an endpoint's delivery settings follow, wherever the endpoint is defined: the
//! config file (`config::validate`) or the admin API (`admin::model`). One set of limits and
//! one wording for both.
//!
//! Pure: [`check`] takes the fields as written and answers the typed settings with every
//! problem found, each a [`Field`] and a [`Problem`]. A problem's `Display` is its wording;
//! each caller only places it for its reader (a config path with an example, or an API
//! field). Must not: resolve host names (delivery checks every address at connect time, and
//! the admin API at creation), read secrets, or know what a config file or a request looks
//! like.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use url::Url;

use super::values::parse_duration;
use crate::egress::{BlockedAddress, EgressPolicy};
use crate::traffic::endpoint::TrafficSettings;

mod ordering;
mod traffic;

pub use ordering::{MAX_ORDER_SOURCE, OrderedByField};
pub use traffic::{BreakerField, MAX_BREAKER_FAILURES, MAX_BURST, MAX_COOLDOWN, MIN_DISABLE_AFTER};

/// An attempt's timeout when the endpoint does not set one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest timeout an endpoint may set.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Attempts under way at once when the endpoint does not say.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 16;
/// The most attempts an endpoint may have under way at once.
pub const MAX_IN_FLIGHT_LIMIT: u32 = 4096;
/// The most steps a retry schedule may have.
pub const MAX_RETRY_STEPS: usize = 50;
/// The longest step of a retry schedule.
pub const MAX_RETRY_STEP: Duration = Duration::from_secs(7 * 24 * 3600);
/// The longest URL, in bytes.
pub const MAX_URL: usize = 2048;
/// The most headers of its own an endpoint may send.
pub const MAX_HEADERS: usize = 50;
/// The longest value of one of those headers, in bytes.
pub const MAX_HEADER_VALUE: usize = 4096;

/// Headers Switchyard sets on every delivery; an endpoint may not override them.
pub const RESERVED_HEADERS: [&str; 8] = [
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-type",
    "content-length",
    "user-agent",
    "host",
    "transfer-encoding",
];

/// An endpoint's delivery settings as written: text not yet checked.
#[derive(Debug, Clone, Default)]
pub struct EndpointFields<'a> {
    /// `None` for endpoints that are not HTTP.
    pub url: Option<&'a str>,
    pub headers: Option<&'a BTreeMap<String, String>>,
    pub timeout: Option<&'a str>,
    pub max_in_flight: Option<i64>,
    pub retry: RetryField<'a>,
    /// Attempts started per unit of time, e.g. `50/s`.
    pub rate: Option<&'a str>,
    pub burst: Option<i64>,
    pub breaker: BreakerField<'a>,
    pub adaptive: Option<bool>,
    /// A duration, or `off`.
    pub disable_after: Option<&'a str>,
    pub ordered_by: OrderedByField<'a>,
}

/// A retry policy as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RetryField<'a> {
    /// Absent, or `"standard"`.
    #[default]
    Standard,
    /// Any other name.
    Named(&'a str),
    /// A schedule's steps; `Err` carries a step that is not text, as written.
    Schedule(Vec<Result<&'a str, String>>),
}

/// The settings that passed, with defaults where a field was absent or wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedEndpoint {
    /// `None` when there is no URL or it cannot be used at all.
    pub url: Option<Url>,
    /// Names in lower case, sorted.
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub max_in_flight: u32,
    /// Delays between attempts; `None` is the standard schedule.
    pub retry_delays: Option<Vec<Duration>>,
    /// Rate, breaker, adaptive concurrency and auto-disable.
    pub traffic: TrafficSettings,
    /// `None`: unordered.
    pub ordered_by: Option<crate::traffic::ordering::OrderedBy>,
}

/// The field a problem is about, named as both the config file and the API name it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    Url,
    Headers,
    /// One header, by its name as written.
    Header(String),
    Timeout,
    MaxInFlight,
    Retry,
    RetrySchedule,
    RetryStep(usize),
    Rate,
    Burst,
    Breaker,
    BreakerFailures,
    BreakerCooldown,
    BreakerMaxCooldown,
    DisableAfter,
    OrderedBy,
    OrderedByJson,
    OrderedByHeader,
}

impl fmt::Display for Field {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url => formatter.write_str("url"),
            Self::Headers => formatter.write_str("headers"),
            Self::Header(name) => write!(formatter, "headers.{name}"),
            Self::Timeout => formatter.write_str("timeout"),
            Self::MaxInFlight => formatter.write_str("max_in_flight"),
            Self::Retry => formatter.write_str("retry"),
            Self::RetrySchedule => formatter.write_str("retry.schedule"),
            Self::RetryStep(index) => write!(formatter, "retry.schedule[{index}]"),
            Self::Rate => formatter.write_str("rate"),
            Self::Burst => formatter.write_str("burst"),
            Self::Breaker => formatter.write_str("breaker"),
            Self::BreakerFailures => formatter.write_str("breaker.failures"),
            Self::BreakerCooldown => formatter.write_str("breaker.cooldown"),
            Self::BreakerMaxCooldown => formatter.write_str("breaker.max_cooldown"),
            Self::DisableAfter => formatter.write_str("disable_after"),
            Self::OrderedBy => formatter.write_str("ordered_by"),
            Self::OrderedByJson => formatter.write_str("ordered_by.json"),
            Self::OrderedByHeader => formatter.write_str("ordered_by.header"),
        }
    }
}

/// What is wrong with a field. `Display` is the wording every caller uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    UrlTooLong,
    /// The text, and why the URL parser refused it.
    NotAbsolute {
        text: String,
        reason: String,
    },
    Credentials,
    Url {
        text: String,
        problem: UrlProblem,
    },
    TooManyHeaders,
    /// A header's name is not a name, it is ours, or its value is unsendable; the name is
    /// as written.
    Header {
        name: String,
        problem: HeaderProblem,
    },
    /// A text that is not a duration: the parser's message.
    Duration(String),
    TimeoutOutOfRange(String),
    MaxInFlightOutOfRange(i64),
    UnknownRetryPolicy(String),
    TooManyRetrySteps,
    RetryStepTooLong(String),
    RetryStepNotText(String),
    /// A text that is not a rate: the parser's message.
    Rate(String),
    BurstOutOfRange(i64),
    BurstWithoutRate,
    UnknownBreaker(String),
    BreakerFailuresOutOfRange(i64),
    CooldownOutOfRange(String),
    MaxCooldownBelowCooldown,
    DisableAfterTooShort(String),
    UnknownOrderedBy(String),
    OrderedByBoth,
    OrderedByNeither,
    NotAJsonPointer(String),
    NotAnOrderHeader(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UrlTooLong => write!(formatter, "the URL is longer than {MAX_URL} bytes"),
            Self::NotAbsolute { text, reason } => {
                write!(formatter, "`{text}` is not an absolute URL: {reason}")
            }
            Self::Credentials => {
                formatter.write_str("credentials in the URL are not allowed; use headers")
            }
            Self::Url { text, problem } => match problem {
                UrlProblem::NotHttps => write!(
                    formatter,
                    "`{text}` is not https, and the egress policy is https only \
                     (`egress.https_only`)"
                ),
                UrlProblem::Scheme(other) => write!(
                    formatter,
                    "scheme `{other}` is not supported; expected `https` or `http`"
                ),
                UrlProblem::NoHost => write!(formatter, "`{text}` has no host"),
                UrlProblem::Blocked(blocked) => write!(formatter, "{blocked}"),
            },
            Self::TooManyHeaders => write!(formatter, "more than {MAX_HEADERS} headers"),
            Self::Header { name, problem } => {
                let lower = name.to_ascii_lowercase();
                match problem {
                    HeaderProblem::NotAName => write!(formatter, "`{name}` is not a header name"),
                    HeaderProblem::Reserved => write!(
                        formatter,
                        "header `{lower}` is set by Switchyard and cannot be overridden"
                    ),
                    HeaderProblem::ControlCharacters => {
                        write!(formatter, "the value of header `{lower}` has control characters")
                    }
                    HeaderProblem::ValueTooLong => write!(
                        formatter,
                        "the value of header `{lower}` is longer than {MAX_HEADER_VALUE} bytes"
                    ),
                }
            }
            Self::Duration(message) => formatter.write_str(message),
            Self::TimeoutOutOfRange(text) => {
                write!(
                    formatter,
                    "`{text}` is out of range; a timeout is more than 0 and at most 5m"
                )
            }
            Self::MaxInFlightOutOfRange(n) => {
                write!(formatter, "`{n}` is out of range 1..={MAX_IN_FLIGHT_LIMIT}")
            }
            Self::UnknownRetryPolicy(name) => write!(
                formatter,
                "`{name}` is not a retry policy; expected `standard` or a schedule"
            ),
            Self::TooManyRetrySteps => {
                write!(formatter, "more than {MAX_RETRY_STEPS} steps")
            }
            Self::RetryStepTooLong(text) => {
                write!(formatter, "`{text}` is longer than 7d, the longest step")
            }
            Self::RetryStepNotText(found) => {
                write!(formatter, "expected a duration string, found `{found}`")
            }
            Self::Rate(message) => formatter.write_str(message),
            Self::BurstOutOfRange(n) => write!(formatter, "`{n}` is out of range 1..={MAX_BURST}"),
            Self::BurstWithoutRate => formatter.write_str("`burst` needs a `rate`"),
            Self::UnknownBreaker(text) => write!(
                formatter,
                "`{text}` is not a breaker; expected `off` or `{{ failures, cooldown, max_cooldown }}`"
            ),
            Self::BreakerFailuresOutOfRange(n) => {
                write!(formatter, "`{n}` is out of range 1..={MAX_BREAKER_FAILURES}")
            }
            Self::CooldownOutOfRange(text) => {
                write!(
                    formatter,
                    "`{text}` is out of range; a cooldown is more than 0 and at most 1d"
                )
            }
            Self::MaxCooldownBelowCooldown => {
                formatter.write_str("`max_cooldown` is shorter than `cooldown`")
            }
            Self::DisableAfterTooShort(text) => {
                write!(formatter, "`{text}` is shorter than 1s; use `off` to never disable")
            }
            Self::UnknownOrderedBy(text) => write!(
                formatter,
                "`{text}` is not an ordering; expected `all`, `{{ json = \"/pointer\" }}` or \
                 `{{ header = \"name\" }}`"
            ),
            Self::OrderedByBoth => formatter.write_str("give either `json` or `header`, not both"),
            Self::OrderedByNeither => formatter.write_str("give `json` or `header`"),
            Self::NotAJsonPointer(text) => write!(
                formatter,
                "`{text}` is not a JSON pointer; expected `/` then keys, e.g. `/customer/id`"
            ),
            Self::NotAnOrderHeader(text) => write!(formatter, "`{text}` is not a header name"),
        }
    }
}

/// Checks every field; answers the settings (defaults in place of wrong fields) and every
/// problem, in field order.
pub fn check(
    fields: &EndpointFields<'_>,
    egress: &EgressPolicy,
) -> (CheckedEndpoint, Vec<(Field, Problem)>) {
    let mut problems = Vec::new();
    let url = fields.url.and_then(|text| check_url(text, egress, &mut problems));
    let max_in_flight = check_max_in_flight(fields.max_in_flight, &mut problems);
    let headers = fields.headers.map(|headers| check_headers(headers, &mut problems));
    let timeout = check_timeout(fields.timeout, &mut problems);
    let retry_delays = check_retry(&fields.retry, &mut problems);
    let traffic = traffic::check(fields, &mut problems);
    let ordered_by = ordering::check(&fields.ordered_by, &mut problems);
    let checked = CheckedEndpoint {
        url,
        headers: headers.unwrap_or_default(),
        timeout,
        max_in_flight,
        retry_delays,
        traffic,
        ordered_by,
    };
    (checked, problems)
}

/// The URL, unless it cannot be used at all; policy refusals are problems but keep it.
fn check_url(
    text: &str,
    egress: &EgressPolicy,
    problems: &mut Vec<(Field, Problem)>,
) -> Option<Url> {
    if text.len() > MAX_URL {
        problems.push((Field::Url, Problem::UrlTooLong));
        return None;
    }
    let url = match Url::parse(text) {
        Ok(url) => url,
        Err(error) => {
            let reason = error.to_string();
            problems.push((Field::Url, Problem::NotAbsolute { text: text.to_owned(), reason }));
            return None;
        }
    };
    if !url.username().is_empty() || url.password().is_some() {
        problems.push((Field::Url, Problem::Credentials));
    }
    let url_problems = url_problems(&url, egress);
    let fatal = url_problems.iter().any(UrlProblem::is_fatal);
    for problem in url_problems {
        problems.push((Field::Url, Problem::Url { text: text.to_owned(), problem }));
    }
    (!fatal).then_some(url)
}

fn check_headers(
    headers: &BTreeMap<String, String>,
    problems: &mut Vec<(Field, Problem)>,
) -> Vec<(String, String)> {
    if headers.len() > MAX_HEADERS {
        problems.push((Field::Headers, Problem::TooManyHeaders));
    }
    let mut checked = Vec::new();
    for (name, value) in headers {
        match check_header(name, value) {
            Ok(lower) => checked.push((lower, value.clone())),
            Err(problem) => problems.push((
                Field::Header(name.clone()),
                Problem::Header { name: name.clone(), problem },
            )),
        }
    }
    checked.sort();
    checked
}

fn check_timeout(text: Option<&str>, problems: &mut Vec<(Field, Problem)>) -> Duration {
    let Some(text) = text else { return DEFAULT_TIMEOUT };
    match parse_duration(text) {
        Ok(timeout) if !timeout.is_zero() && timeout <= MAX_TIMEOUT => timeout,
        Ok(_) => {
            problems.push((Field::Timeout, Problem::TimeoutOutOfRange(text.to_owned())));
            DEFAULT_TIMEOUT
        }
        Err(message) => {
            problems.push((Field::Timeout, Problem::Duration(message)));
            DEFAULT_TIMEOUT
        }
    }
}

fn check_max_in_flight(value: Option<i64>, problems: &mut Vec<(Field, Problem)>) -> u32 {
    let Some(value) = value else { return DEFAULT_MAX_IN_FLIGHT };
    match u32::try_from(value) {
        Ok(n) if (1..=MAX_IN_FLIGHT_LIMIT).contains(&n) => n,
        _ => {
            problems.push((Field::MaxInFlight, Problem::MaxInFlightOutOfRange(value)));
            DEFAULT_MAX_IN_FLIGHT
        }
    }
}

fn check_retry(
    retry: &RetryField<'_>,
    problems: &mut Vec<(Field, Problem)>,
) -> Option<Vec<Duration>> {
    let steps = match retry {
        RetryField::Standard => return None,
        RetryField::Named(name) => {
            problems.push((Field::Retry, Problem::UnknownRetryPolicy((*name).to_owned())));
            return None;
        }
        RetryField::Schedule(steps) => steps,
    };
    if steps.len() > MAX_RETRY_STEPS {
        problems.push((Field::RetrySchedule, Problem::TooManyRetrySteps));
    }
    let mut delays = Vec::with_capacity(steps.len());
    for (index, step) in steps.iter().enumerate() {
        let field = Field::RetryStep(index);
        let text = match step {
            Ok(text) => *text,
            Err(found) => {
                problems.push((field, Problem::RetryStepNotText(found.clone())));
                continue;
            }
        };
        match parse_duration(text) {
            Ok(delay) if delay <= MAX_RETRY_STEP => delays.push(delay),
            Ok(_) => problems.push((field, Problem::RetryStepTooLong(text.to_owned()))),
            Err(message) => problems.push((field, Problem::Duration(message))),
        }
    }
    Some(delays)
}

/// Why an endpoint's own header cannot be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderProblem {
    NotAName,
    /// One of [`RESERVED_HEADERS`].
    Reserved,
    ControlCharacters,
    /// Longer than [`MAX_HEADER_VALUE`].
    ValueTooLong,
}

/// Checks one of an endpoint's own headers; answers its name in lower case.
pub fn check_header(name: &str, value: &str) -> Result<String, HeaderProblem> {
    let lower = name.to_ascii_lowercase();
    if !is_header_name(name) {
        Err(HeaderProblem::NotAName)
    } else if RESERVED_HEADERS.contains(&lower.as_str()) {
        Err(HeaderProblem::Reserved)
    } else if value.len() > MAX_HEADER_VALUE {
        Err(HeaderProblem::ValueTooLong)
    } else if value.bytes().any(|byte| byte < 0x20 && byte != b'\t' || byte == 0x7f) {
        Err(HeaderProblem::ControlCharacters)
    } else {
        Ok(lower)
    }
}

/// An HTTP header name: a non-empty RFC 9110 token.
pub fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

/// What is wrong with an endpoint's URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlProblem {
    /// `http`, and the egress policy is https only.
    NotHttps,
    /// Neither `https` nor `http`.
    Scheme(String),
    NoHost,
    /// A literal address the egress policy refuses.
    Blocked(BlockedAddress),
}

impl UrlProblem {
    /// Whether the URL cannot be used at all (rather than only refused by the policy).
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::Scheme(_) | Self::NoHost)
    }
}

/// Every problem of `url` under `egress`, in order; a wrong scheme or a missing host ends the
/// check. Host names are not resolved here (delivery checks every address at connect time).
pub fn url_problems(url: &Url, egress: &EgressPolicy) -> Vec<UrlProblem> {
    let mut problems = Vec::new();
    match url.scheme() {
        "https" => {}
        "http" if egress.https_only => problems.push(UrlProblem::NotHttps),
        "http" => {}
        other => return vec![UrlProblem::Scheme(other.to_owned())],
    }
    match url_host(url) {
        UrlHost::Address(address) => {
            if let Err(blocked) = egress.check(address) {
                problems.push(UrlProblem::Blocked(blocked));
            }
        }
        UrlHost::Name(_) => {}
        UrlHost::Missing => problems.push(UrlProblem::NoHost),
    }
    problems
}

/// The host of a URL: an address, a name, or none at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlHost<'a> {
    Address(IpAddr),
    Name(&'a str),
    Missing,
}

pub fn url_host(url: &Url) -> UrlHost<'_> {
    match url.host() {
        Some(url::Host::Ipv4(v4)) => UrlHost::Address(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => UrlHost::Address(IpAddr::V6(v6)),
        Some(url::Host::Domain(name)) => UrlHost::Name(name),
        None => UrlHost::Missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str, https_only: bool) -> Vec<UrlProblem> {
        let egress = EgressPolicy {
            allow_networks: vec!["127.0.0.0/8".parse().unwrap()],
            https_only,
            proxy: None,
        };
        url_problems(&Url::parse(text).unwrap(), &egress)
    }

    #[test]
    fn urls_are_held_to_the_egress_policy() {
        assert_eq!(problems("https://example.com/hook", true), vec![]);
        assert_eq!(problems("http://127.0.0.1:9/hook", false), vec![]);
        assert_eq!(problems("http://example.com/", true), vec![UrlProblem::NotHttps]);
        assert_eq!(problems("ftp://[::1]/", false), vec![UrlProblem::Scheme("ftp".into())]);
        let blocked = problems("http://[::1]:9/", true);
        assert!(matches!(blocked.as_slice(), [UrlProblem::NotHttps, UrlProblem::Blocked(_)]));
        assert!(!blocked.iter().any(UrlProblem::is_fatal), "usable, only refused");
    }

    #[test]
    fn headers_are_names_not_ours_and_without_control_characters() {
        assert_eq!(check_header("X-Tenant", "acme\tco"), Ok("x-tenant".to_owned()));
        assert_eq!(check_header("x tenant", "a"), Err(HeaderProblem::NotAName));
        assert_eq!(check_header("Webhook-Signature", "v1,x"), Err(HeaderProblem::Reserved));
        assert_eq!(check_header("x-tenant", "a\r\nb"), Err(HeaderProblem::ControlCharacters));
    }
}
