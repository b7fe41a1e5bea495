//! Who is calling: the [`Caller`] resolved once per HTTP request, and the
//! [`UserHash`] that owns sessions.
//!
//! Sessions are stored under `mcp_user_session:<user_hash>:<session_id>`, so a
//! request can only ever find the sessions of the user it authenticated as:
//! another user's session id simply does not exist under its own hash.
//!
//! The auth layer (`mcp-session-auth`) turns each request's credentials into a
//! `Caller` before any MCP handling: a verified JWT (its issuer and `sub`), a
//! configured API key (its name), or, when anonymous access is allowed, the
//! client's address and `User-Agent`. Tool handlers read it with
//! `mcp_session::session::caller`:
//!
//! ```rust,ignore
//! async fn whoami(&self, context: RequestContext<RoleServer>) -> String {
//!     let caller = mcp_session::session::caller(&context);
//!     format!("{} {}", caller.kind.as_str(), caller.subject)
//! }
//! ```

use std::{fmt, sync::Arc};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Hex SHA-256 of a canonical principal (64 lowercase hex characters).
///
/// It names a user in Redis keys without revealing who the user is.
/// Serialized as its text. Shared, not copied, when cloned: a request
/// clones its caller's hash several times (its caller, its streams' owner,
/// its store lookups).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserHash(Arc<str>);

impl Serialize for UserHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for UserHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|text| Self(text.into()))
    }
}

impl UserHash {
    /// Hashes the canonical principal: kind, issuer and subject, each
    /// followed by a NUL byte so that no two principals share an input.
    pub fn of(kind: PrincipalKind, issuer: &str, subject: &str) -> Self {
        let mut hasher = Sha256::new();
        for part in [kind.as_str(), issuer, subject] {
            hasher.update(part.as_bytes());
            hasher.update([0u8]);
        }
        // Into a buffer: `hex::encode` collects `char`s one by one, a third
        // of the whole (`scripts/callgrind.sh`).
        let mut text = [0u8; 64];
        hex::encode_to_slice(hasher.finalize(), &mut text)
            .expect("a SHA-256 digest is 32 bytes, 64 hex digits");
        Self(
            std::str::from_utf8(&text)
                .expect("hex digits are ASCII")
                .into(),
        )
    }

    /// The 64-character hex form used in store keys.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Reads a user hash given as text (the admin API's `user` parameter):
    /// exactly 64 hex digits, any case; `None` otherwise.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 64 && text.bytes().all(|byte| byte.is_ascii_hexdigit()))
            .then(|| Self(text.to_ascii_lowercase().into()))
    }

    /// The first 12 hex digits: enough to correlate log lines, too short to
    /// stand for the user anywhere else.
    pub fn short(&self) -> &str {
        &self.0[..12.min(self.0.len())]
    }
}

impl fmt::Display for UserHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserHash({}…)", self.short())
    }
}

/// How a caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// No credentials (allowed only with `ALLOW_ANONYMOUS`): identified by
    /// client address and `User-Agent`.
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
    /// Subject: the JWT `sub`, the API key's name, or for an anonymous
    /// caller `<client ip>|<user agent>` (`anonymous` for the shared
    /// anonymous principal).
    pub subject: String,
    /// Owner key of this caller's sessions.
    pub user_hash: UserHash,
    /// Whether the caller may use admin tools and the admin API: a JWT with
    /// one of `JWT_ADMIN_ROLES`, or an API key named in `ADMIN_API_KEYS`.
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

    /// The shared anonymous principal: what a request that carries no
    /// resolved caller at all (a message built outside any HTTP request)
    /// stands for. Requests always carry the caller the
    /// auth layer resolved; see [`Caller::anonymous_client`].
    pub fn anonymous() -> Self {
        Self::new(PrincipalKind::Anonymous, "", "anonymous")
    }

    /// An anonymous caller told apart by its client address `ip` (as the
    /// trusted proxies reported it) and its `User-Agent` (empty when absent):
    /// two clients behind one address with different agents own different
    /// sessions.
    pub fn anonymous_client(ip: &str, user_agent: &str) -> Self {
        Self::new(PrincipalKind::Anonymous, "", format!("{ip}|{user_agent}"))
    }

    /// The same caller, with admin rights or without.
    pub fn with_admin(mut self, is_admin: bool) -> Self {
        self.is_admin = is_admin;
        self
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
    fn a_user_hash_is_serialized_as_its_text() {
        let hash = UserHash::of(PrincipalKind::ApiKey, "", "ci");
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(json, format!("\"{}\"", hash.as_str()));
        assert_eq!(serde_json::from_str::<UserHash>(&json).unwrap(), hash);
    }

    #[test]
    fn anonymous_callers_share_one_hash() {
        assert_eq!(Caller::anonymous().user_hash, Caller::anonymous().user_hash);
    }

    #[test]
    fn anonymous_clients_differ_by_address_and_agent() {
        let a = Caller::anonymous_client("10.0.0.1", "python-httpx/0.28");
        assert_eq!(a, Caller::anonymous_client("10.0.0.1", "python-httpx/0.28"));
        assert_ne!(
            a.user_hash,
            Caller::anonymous_client("10.0.0.2", "python-httpx/0.28").user_hash
        );
        assert_ne!(
            a.user_hash,
            Caller::anonymous_client("10.0.0.1", "node").user_hash
        );
        assert_ne!(a.user_hash, Caller::anonymous().user_hash);
        // Admin rights are not part of who the caller is.
        assert_eq!(a.clone().with_admin(true).user_hash, a.user_hash);
    }

    #[test]
    fn user_hashes_parse_from_hex_only() {
        let hash = UserHash::of(PrincipalKind::ApiKey, "", "ops");
        assert_eq!(UserHash::parse(hash.as_str()), Some(hash.clone()));
        assert_eq!(
            UserHash::parse(&hash.as_str().to_ascii_uppercase()),
            Some(hash.clone())
        );
        assert_eq!(UserHash::parse("abc"), None);
        assert_eq!(UserHash::parse(&"g".repeat(64)), None);
        assert_eq!(hash.short().len(), 12);
    }
}
