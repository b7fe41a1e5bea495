//! Who is calling: the [`Caller`] resolved once per HTTP request, and the
//! [`UserHash`] that owns sessions.
//!
//! Sessions are stored under `mcp_user_session:<user_hash>:<session_id>`, so a
//! request can only ever find the sessions of the user it authenticated as:
//! another user's session id simply does not exist under its own hash.
//!
//! Until authentication lands (JWT, API keys), every caller is the one
//! anonymous principal [`Caller::anonymous`]. Tool handlers read the caller
//! from the HTTP request parts that rmcp hands them:
//!
//! ```rust,ignore
//! use rmcp::handler::server::tool::Extension;
//! async fn whoami(Extension(parts): Extension<http::request::Parts>) -> String {
//!     let caller = parts.extensions.get::<mcp_session::Caller>().unwrap();
//!     caller.subject.clone()
//! }
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Hex SHA-256 of a canonical principal (64 lowercase hex characters).
///
/// It names a user in Redis keys without revealing who the user is.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserHash(String);

impl UserHash {
    /// Hashes the canonical principal: kind, issuer and subject, each
    /// followed by a NUL byte so that no two principals share an input.
    pub fn of(kind: PrincipalKind, issuer: &str, subject: &str) -> Self {
        let mut hasher = Sha256::new();
        for part in [kind.as_str(), issuer, subject] {
            hasher.update(part.as_bytes());
            hasher.update([0u8]);
        }
        Self(hex::encode(hasher.finalize()))
    }

    /// The 64-character hex form used in store keys.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Short prefix: enough to correlate log lines, short enough to read.
        write!(f, "UserHash({}…)", &self.0[..12.min(self.0.len())])
    }
}

/// How a caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// No credentials.
    Anonymous,
    /// A verified JSON Web Token (`Authorization: Bearer`).
    Jwt,
    /// A configured API key (`Authorization: ApiKey`, `X-API-Key`).
    ApiKey,
}

impl PrincipalKind {
    /// The stable lowercase name, part of the hashed principal.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anonymous => "anonymous",
            Self::Jwt => "jwt",
            Self::ApiKey => "api_key",
        }
    }
}

/// The authenticated principal of one HTTP request.
///
/// Inserted into the request's extensions before any MCP handling, so tool
/// handlers find it in `http::request::Parts::extensions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Caller {
    /// How the caller authenticated.
    pub kind: PrincipalKind,
    /// Token issuer (`iss`), or an empty string when there is none.
    pub issuer: String,
    /// Subject: the JWT `sub`, the API key's name, or `anonymous`.
    pub subject: String,
    /// Owner key of this caller's sessions.
    pub user_hash: UserHash,
    /// Whether the caller may use admin tools and the admin API.
    pub is_admin: bool,
}

impl Caller {
    /// Builds a caller and its [`UserHash`].
    pub fn new(kind: PrincipalKind, issuer: impl Into<String>, subject: impl Into<String>) -> Self {
        let issuer = issuer.into();
        let subject = subject.into();
        let user_hash = UserHash::of(kind, &issuer, &subject);
        Self {
            kind,
            issuer,
            subject,
            user_hash,
            is_admin: false,
        }
    }

    /// The single anonymous principal that every request resolves to while
    /// authentication is not configured.
    pub fn anonymous() -> Self {
        Self::new(PrincipalKind::Anonymous, "", "anonymous")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_hash_is_hex_sha256_of_the_canonical_principal() {
        let hash = UserHash::of(PrincipalKind::Jwt, "https://issuer", "alice");
        assert_eq!(hash.as_str().len(), 64);
        assert!(hash.as_str().chars().all(|c| c.is_ascii_hexdigit()));
        // Field boundaries matter: ("ab", "c") and ("a", "bc") differ.
        assert_ne!(
            UserHash::of(PrincipalKind::Jwt, "ab", "c"),
            UserHash::of(PrincipalKind::Jwt, "a", "bc")
        );
        assert_ne!(
            UserHash::of(PrincipalKind::Jwt, "", "alice"),
            UserHash::of(PrincipalKind::ApiKey, "", "alice")
        );
    }

    #[test]
    fn anonymous_callers_share_one_hash() {
        assert_eq!(Caller::anonymous().user_hash, Caller::anonymous().user_hash);
    }
}
