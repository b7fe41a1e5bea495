//! Why a request was not authenticated, in words safe to send and to log.
//!
//! Every reason is a fixed phrase: none repeats a credential or any part of
//! one, so a reason can go into the `WWW-Authenticate` header, the response
//! body and the log line alike.

/// Which credential scheme a failure concerns, for the challenge that
/// carries the error (RFC 7235 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Authorization: Bearer` (a JWT; RFC 6750 §2.1).
    Bearer,
    /// `Authorization: ApiKey` or `X-API-Key`.
    ApiKey,
}

/// An authentication failure: `401 Unauthorized` with a `WWW-Authenticate`
/// challenge (RFC 6750 §3), or `503` when token signing keys cannot be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No credentials, and anonymous callers are not allowed. RFC 6750 §3.1:
    /// no error code.
    #[error("missing credentials")]
    Missing,
    /// The credentials are malformed (`invalid_request`, RFC 6750 §3.1): an
    /// empty header, an unknown scheme, several credentials at once, or a
    /// header longer than the limit.
    #[error("{reason}")]
    InvalidRequest {
        /// What is wrong, e.g. `empty Authorization header`.
        reason: &'static str,
    },
    /// A bearer token that is not accepted (`invalid_token`, RFC 6750 §3.1).
    #[error("{0}")]
    InvalidToken(TokenProblem),
    /// An API key that no `API_KEYS` entry matches (unknown or revoked).
    #[error("unknown API key")]
    UnknownApiKey,
    /// The identity provider's keys (JWKS) cannot be fetched: `503`, the
    /// token may be fine.
    #[error("token signing keys unavailable, retry shortly")]
    KeysUnavailable,
}

/// What is wrong with a bearer token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenProblem {
    /// Not three base64url segments of JSON.
    #[error("malformed token")]
    Malformed,
    /// `alg: none`: an unsigned token (RFC 7519 §6).
    #[error("unsigned token (alg none) refused")]
    Unsigned,
    /// An `alg` this service does not accept (`JWT_ALGORITHM`).
    #[error("token algorithm not accepted")]
    AlgorithmNotAccepted,
    /// The signature does not verify with the configured key.
    #[error("invalid token signature")]
    BadSignature,
    /// No JWKS key matches the token's `kid` and `alg`.
    #[error("unknown token signing key")]
    UnknownKey,
    /// `exp` is past (RFC 7519 §4.1.4).
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (RFC 7519 §4.1.5).
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` differs from `JWT_ISSUER`.
    #[error("wrong token issuer")]
    WrongIssuer,
    /// `aud` (or `client_id`) is not one of `JWT_AUDIENCE`.
    #[error("wrong token audience")]
    WrongAudience,
    /// A required claim (`exp`, `sub`) is absent or not of its type.
    #[error("token lacks a required claim (exp, sub)")]
    MissingClaim,
    /// The header's `crit` lists extensions, none of which this service
    /// understands: RFC 7515 §4.1.11 says such a token MUST be rejected.
    #[error("token header lists critical extensions (crit) this service does not understand")]
    UnknownCritical,
    /// `iat` is later than now, past the leeway: a token from a clock that
    /// is wrong, or minted to outlive its `exp` window (RFC 7519 §4.1.6).
    #[error("token issued in the future (iat)")]
    IssuedInFuture,
    /// A registered claim has the wrong type: `iss` not a single string
    /// (a StringOrURI, RFC 7519 §4.1.1), `iat`/`exp`/`nbf` not a number.
    #[error("token claim of the wrong type (iss must be a string)")]
    BadClaimType,
}

impl AuthError {
    /// The RFC 6750 §3.1 error code, if the failure has one.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Self::Missing | Self::KeysUnavailable => None,
            Self::InvalidRequest { .. } => Some("invalid_request"),
            Self::InvalidToken(_) | Self::UnknownApiKey => Some("invalid_token"),
        }
    }
}
