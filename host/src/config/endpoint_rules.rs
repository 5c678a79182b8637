//! The rules an HTTP endpoint's URL and own headers follow, wherever the endpoint is defined:
//! the config file (`config::validate`) or the admin API (`admin::model`).
//!
//! Pure: typed problems, no messages. Each caller words them for its reader (a config path and
//! an example, or an API field).

use std::net::IpAddr;

use url::Url;

use crate::egress::{BlockedAddress, EgressPolicy};

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

/// Why an endpoint's own header cannot be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderProblem {
    NotAName,
    /// One of [`RESERVED_HEADERS`].
    Reserved,
    ControlCharacters,
}

/// Checks one of an endpoint's own headers; answers its name in lower case.
pub fn check_header(name: &str, value: &str) -> Result<String, HeaderProblem> {
    let lower = name.to_ascii_lowercase();
    if !is_header_name(name) {
        Err(HeaderProblem::NotAName)
    } else if RESERVED_HEADERS.contains(&lower.as_str()) {
        Err(HeaderProblem::Reserved)
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
        let egress =
            EgressPolicy { allow_networks: vec!["127.0.0.0/8".parse().unwrap()], https_only };
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
