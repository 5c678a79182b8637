//! Dashboard sessions: a token exchanged at login for a signed cookie holding a role and an
//! expiry, and the same-origin check every state-changing request passes.
//!
//! Pure: time is passed in. The signing key is derived from the configured tokens, so every
//! node with the same config accepts a session any of them issued, and changing a token ends
//! every session. Must not: store sessions anywhere (the cookie is the session) or log a
//! cookie's value.

use std::time::Duration;

use axum::http::HeaderMap;
use axum::http::header;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::admin::access::{AccessTokens, Role};

/// The cookie's name; it is sent only under `/ui`.
pub const COOKIE: &str = "switchyard_session";
/// How long a session lasts.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// The version prefix of a cookie's value, so that the format can change.
const VERSION: &str = "v1";

/// The key sessions are signed with.
#[derive(Clone)]
pub struct SessionKey([u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("SessionKey(<redacted>)")
    }
}

/// A valid session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub role: Role,
    /// Unix ms.
    pub expires_at: u64,
}

impl SessionKey {
    /// HMAC-SHA256 under a fixed label over both tokens, each length-prefixed.
    pub fn derive(tokens: &AccessTokens) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"switchyard dashboard session key")
            .expect("HMAC takes a key of any length");
        let admin = tokens.admin.expose();
        mac.update(&(admin.len() as u64).to_be_bytes());
        mac.update(admin);
        if let Some(viewer) = &tokens.viewer {
            let viewer = viewer.expose();
            mac.update(&(viewer.len() as u64).to_be_bytes());
            mac.update(viewer);
        }
        Self(mac.finalize().into_bytes().into())
    }

    fn sign(&self, text: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("any key length");
        mac.update(text.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The cookie value of a new session for `role`, starting at `now` (unix ms).
    pub fn issue(&self, role: Role, now: u64) -> String {
        let expires_at = now + LIFETIME.as_millis() as u64;
        let text = format!("{VERSION}.{}.{expires_at}", role.as_str());
        let signature = URL_SAFE_NO_PAD.encode(self.sign(&text));
        format!("{text}.{signature}")
    }

    /// The session a cookie value holds, if it is signed by this key and not expired at `now`.
    pub fn check(&self, value: &str, now: u64) -> Option<Session> {
        let (text, signature) = value.rsplit_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        if !bool::from(self.sign(text).as_slice().ct_eq(&signature)) {
            return None;
        }
        let mut parts = text.split('.');
        let (version, role, expires_at) = (parts.next()?, parts.next()?, parts.next()?);
        if version != VERSION || parts.next().is_some() {
            return None;
        }
        let role = Role::parse(role)?;
        let expires_at = expires_at.parse::<u64>().ok()?;
        (now < expires_at).then_some(Session { role, expires_at })
    }
}

impl SessionKey {
    /// An endpoint portal link's token for `endpoint`, valid until `expires_at` (unix ms).
    /// Its own prefix keeps a portal token from passing as a session, and back.
    pub fn issue_portal(&self, endpoint: &str, expires_at: u64) -> String {
        let text = format!("p1.{endpoint}.{expires_at}");
        let signature = URL_SAFE_NO_PAD.encode(self.sign(&text));
        format!("{text}.{signature}")
    }

    /// The endpoint a portal token opens, if this key signed it and it has not expired.
    pub fn check_portal(&self, token: &str, now: u64) -> Option<String> {
        let (text, signature) = token.rsplit_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        if !bool::from(self.sign(text).as_slice().ct_eq(&signature)) {
            return None;
        }
        let rest = text.strip_prefix("p1.")?;
        let (endpoint, expires_at) = rest.rsplit_once('.')?;
        let expires_at = expires_at.parse::<u64>().ok()?;
        (now < expires_at && !endpoint.is_empty()).then(|| endpoint.to_owned())
    }
}

/// A portal link's id, as the audit log names it: its token without the signature (the
/// endpoint and the expiry, which grant nothing alone).
pub fn portal_link_id(token: &str) -> &str {
    token.rsplit_once('.').map_or(token, |(text, _)| text)
}

/// The session cookie's value among a request's cookies.
pub fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// The `set-cookie` line of a session (`value`), or of its removal (`None`).
pub fn set_cookie(value: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match value {
        Some(value) => format!(
            "{COOKIE}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            LIFETIME.as_secs()
        ),
        None => format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

/// Whether a request comes from a page of this very origin: its `Origin` header names the
/// scheme and the `Host` it was sent to. Browsers send `Origin` with every POST; a request
/// without one, or from another site, is refused (cross-site request forgery).
pub fn same_origin(headers: &HeaderMap, secure: bool) -> bool {
    let origin = headers.get(header::ORIGIN).and_then(|value| value.to_str().ok());
    let host = headers.get(header::HOST).and_then(|value| value.to_str().ok());
    let (Some(origin), Some(host)) = (origin, host) else { return false };
    let scheme = if secure { "https" } else { "http" };
    origin.eq_ignore_ascii_case(&format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::config::Secret;

    fn tokens(admin: &str, viewer: Option<&str>) -> AccessTokens {
        AccessTokens {
            admin: Secret::new(admin.as_bytes().to_vec()),
            viewer: viewer.map(|text| Secret::new(text.as_bytes().to_vec())),
        }
    }

    const NOW: u64 = 1_700_000_000_000;

    #[test]
    fn a_session_is_checked_by_any_node_with_the_same_tokens() {
        let issued = SessionKey::derive(&tokens("a", Some("v"))).issue(Role::Viewer, NOW);
        let other_node = SessionKey::derive(&tokens("a", Some("v")));
        let session = other_node.check(&issued, NOW + 1).unwrap();
        assert_eq!(session.role, Role::Viewer);
        assert_eq!(session.expires_at, NOW + LIFETIME.as_millis() as u64);
    }

    #[test]
    fn changed_tokens_forged_roles_and_old_sessions_are_refused() {
        let key = SessionKey::derive(&tokens("a", Some("v")));
        let issued = key.issue(Role::Viewer, NOW);
        assert!(SessionKey::derive(&tokens("a", Some("w"))).check(&issued, NOW).is_none());
        assert!(SessionKey::derive(&tokens("a", None)).check(&issued, NOW).is_none());
        let forged = issued.replacen("viewer", "admin", 1);
        assert!(key.check(&forged, NOW).is_none());
        let expiry = NOW + LIFETIME.as_millis() as u64;
        assert!(key.check(&issued, expiry - 1).is_some());
        assert!(key.check(&issued, expiry).is_none());
        for junk in ["", ".", "v1.admin.1", "v1.admin.x.AAAA", "v2.admin.1.AAAA"] {
            assert!(key.check(junk, NOW).is_none(), "{junk}");
        }
    }

    #[test]
    fn portal_tokens_open_one_endpoint_until_they_expire() {
        let key = SessionKey::derive(&tokens("a", None));
        let token = key.issue_portal("ep_01abc", NOW + 1000);
        assert_eq!(key.check_portal(&token, NOW).as_deref(), Some("ep_01abc"));
        assert_eq!(key.check_portal(&token, NOW + 1000), None);
        assert_eq!(key.check_portal(&token.replace("ep_01abc", "ep_01abd"), NOW), None);
        assert!(key.check(&token, NOW).is_none(), "not a session");
        let session = key.issue(Role::Admin, NOW);
        assert_eq!(key.check_portal(&session, NOW), None, "a session is not a portal token");
        assert_eq!(SessionKey::derive(&tokens("b", None)).check_portal(&token, NOW), None);
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; switchyard_session=abc.def"),
        );
        assert_eq!(cookie_value(&headers), Some("abc.def"));
        assert_eq!(cookie_value(&HeaderMap::new()), None);
        let line = set_cookie(Some("x"), true);
        for part in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Secure", "Max-Age=43200"] {
            assert!(line.contains(part), "{line}");
        }
        assert!(!set_cookie(Some("x"), false).contains("Secure"));
        assert!(set_cookie(None, false).contains("Max-Age=0"));
    }

    #[test]
    fn only_this_origin_may_change_things() {
        let headers = |origin: Option<&'static str>| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
            if let Some(origin) = origin {
                headers.insert(header::ORIGIN, HeaderValue::from_static(origin));
            }
            headers
        };
        assert!(same_origin(&headers(Some("http://127.0.0.1:8080")), false));
        assert!(!same_origin(&headers(Some("https://127.0.0.1:8080")), false));
        assert!(same_origin(&headers(Some("https://127.0.0.1:8080")), true));
        assert!(!same_origin(&headers(Some("http://evil.example")), false));
        assert!(!same_origin(&headers(Some("null")), false));
        assert!(!same_origin(&headers(None), false));
    }
}
