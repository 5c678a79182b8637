//! Who an admin request acts as: the full `server.admin_token` or the read-only
//! `server.viewer_token`.
//!
//! Owns [`Role`], [`AccessTokens`] (which token a presented one is, compared in constant time)
//! and the rule that a viewer may read and never change anything. Must not: know routes or
//! sessions (the dashboard's cookie carries a [`Role`] it got from here).

use axum::http::Method;
use subtle::ConstantTimeEq;

use crate::config::{Secret, Server};

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Admin,
    /// Every read; no change, and never a secret.
    Viewer,
}

impl Role {
    /// The role's name, as the dashboard shows it and its session carries it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Self::Admin),
            "viewer" => Some(Self::Viewer),
            _ => None,
        }
    }

    /// Whether this role may make a request with `method`: viewers only read.
    pub fn may(self, method: &Method) -> bool {
        self == Self::Admin || is_read(method)
    }
}

/// `GET` and `HEAD` change nothing; every other method may.
pub fn is_read(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// The configured tokens.
#[derive(Debug, Clone)]
pub struct AccessTokens {
    pub admin: Secret,
    pub viewer: Option<Secret>,
}

impl AccessTokens {
    /// The server's tokens; none without an admin token (then there is no admin side).
    pub fn of(server: &Server) -> Option<Self> {
        let admin = server.admin_token.clone()?;
        Some(Self { admin, viewer: server.viewer_token.clone() })
    }

    /// The role `given` grants, if it is one of the tokens. Both are compared, in constant
    /// time, whatever the first answer.
    pub fn role_of(&self, given: &[u8]) -> Option<Role> {
        let admin = bool::from(given.ct_eq(self.admin.expose()));
        let viewer =
            self.viewer.as_ref().is_some_and(|viewer| bool::from(given.ct_eq(viewer.expose())));
        match (admin, viewer) {
            (true, _) => Some(Role::Admin),
            (false, true) => Some(Role::Viewer),
            (false, false) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(viewer: Option<&str>) -> AccessTokens {
        AccessTokens {
            admin: Secret::new(b"admin-token".to_vec()),
            viewer: viewer.map(|text| Secret::new(text.as_bytes().to_vec())),
        }
    }

    #[test]
    fn roles_of_tokens() {
        let with_viewer = tokens(Some("viewer-token"));
        assert_eq!(with_viewer.role_of(b"admin-token"), Some(Role::Admin));
        assert_eq!(with_viewer.role_of(b"viewer-token"), Some(Role::Viewer));
        assert_eq!(with_viewer.role_of(b"viewer-token-"), None);
        assert_eq!(with_viewer.role_of(b""), None);
        let without = tokens(None);
        assert_eq!(without.role_of(b"viewer-token"), None);
        assert_eq!(without.role_of(b""), None);
    }

    #[test]
    fn viewers_only_read() {
        for method in [Method::GET, Method::HEAD] {
            assert!(Role::Viewer.may(&method));
            assert!(Role::Admin.may(&method));
        }
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            assert!(!Role::Viewer.may(&method));
            assert!(Role::Admin.may(&method));
        }
        assert_eq!(Role::parse(Role::Viewer.as_str()), Some(Role::Viewer));
        assert_eq!(Role::parse("root"), None);
    }
}
