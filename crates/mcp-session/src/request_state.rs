//! Sealed `requestState` for multi round-trip requests (MRTR), shared by
//! every replica.
//!
//! Protocol 2026-07-28 has no sessions: a tool that needs the client's input
//! (an elicitation form, a sampling answer, the client's roots) returns an
//! `InputRequiredResult` with the requests and an opaque `requestState`; the
//! client fulfils the requests and sends the same `tools/call` again with its
//! `inputResponses` and the `requestState` echoed back (SEP-2322, MCP
//! 2026-07-28, Server Features §Multi Round-Trip Requests). Behind a
//! round-robin load balancer that second round reaches *another replica*, so
//! whatever the first replica put in `requestState` must be readable there,
//! and the client must not be able to change it.
//!
//! This module seals the state with rmcp's [`RequestStateCodec`] (HMAC-SHA256,
//! with an expiry) under a key that comes from configuration, the same on
//! every replica, never from a per-process random value:
//!
//! | variable | meaning |
//! |---|---|
//! | `MCP_REQUEST_STATE_KEY` | the signing key, 32 bytes or more (e.g. `openssl rand -base64 48`) |
//! | `MCP_REQUEST_STATE_PREVIOUS_KEYS` | comma-separated keys still accepted when opening (key rotation) |
//! | `MCP_REQUEST_STATE_TTL_SECONDS` | how long a sealed state stays valid (default 600) |
//!
//! Without `MCP_REQUEST_STATE_KEY`, a service with one replica (no
//! `REDIS_URL`) seals with a random key made at start-up; a fleet (with
//! `REDIS_URL`) refuses to seal, with an error that names the variable,
//! because another replica could not open the state.
//!
//! Every sealed state is bound to the caller's [`UserHash`] and to a
//! `purpose` the service chooses (e.g. the tool name): a state handed to one
//! user cannot be replayed by another, nor fed to another tool.
//!
//! ```rust,ignore
//! // Round 1: ask, and remember what was asked.
//! let state = mcp_session::request_state::seal(&context, "book_flight", &pending)?;
//! return Ok(InputRequiredResult::new(Some(requests), Some(state)).into());
//! // Round 2 (any replica): check and read it back.
//! let pending: Pending = mcp_session::request_state::open(&context, "book_flight", &state)?;
//! ```

use std::{fmt, sync::Arc, time::Duration};

use rmcp::{
    ErrorData, RoleServer,
    model::{RequestStateCodec, RequestStateError, SealOptions},
    service::RequestContext,
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use mcp_session_core::{config::ConfigError, session};

use crate::{identity::UserHash, service_context::ServiceContext};

/// Shortest accepted key, in bytes ([`RequestStateCodec::MIN_KEY_LENGTH`]).
pub const MIN_KEY_BYTES: usize = RequestStateCodec::MIN_KEY_LENGTH;

/// Default validity of a sealed state (`MCP_REQUEST_STATE_TTL_SECONDS`).
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);

/// What the environment says, before validation.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE", default)]
pub(crate) struct RawRequestState {
    mcp_request_state_key: Option<String>,
    mcp_request_state_previous_keys: Option<String>,
    mcp_request_state_ttl_seconds: Option<u64>,
}

/// The `requestState` settings: signing keys and validity.
///
/// Built by [`Config::from_env`](crate::Config::from_env); the `Debug` output
/// shows key ids, never keys.
#[derive(Clone)]
pub struct RequestStateConfig {
    /// The codec, `None` when no key is configured.
    codec: Option<Arc<RequestStateCodec>>,
    /// Key ids: the signing key's first, then the previous keys'.
    key_ids: Vec<String>,
    /// Validity of a sealed state.
    pub ttl: Duration,
}

impl fmt::Debug for RequestStateConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestStateConfig")
            .field("key_ids", &self.key_ids)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl Default for RequestStateConfig {
    fn default() -> Self {
        Self {
            codec: None,
            key_ids: Vec::new(),
            ttl: DEFAULT_TTL,
        }
    }
}

/// The public id of a key: the first 16 hex digits of its SHA-256 (it names
/// the key in sealed values, so that rotation finds the right one, and says
/// nothing usable about the key).
fn key_id(key: &[u8]) -> String {
    hex::encode(&Sha256::digest(key)[..8])
}

impl RequestStateConfig {
    pub(crate) fn from_raw(raw: RawRequestState) -> Result<Self, ConfigError> {
        let ttl = match raw.mcp_request_state_ttl_seconds {
            None => DEFAULT_TTL,
            Some(0) => {
                return Err(ConfigError(
                    "MCP_REQUEST_STATE_TTL_SECONDS: must be greater than 0".into(),
                ));
            }
            Some(seconds) => Duration::from_secs(seconds),
        };
        let Some(key) = raw.mcp_request_state_key.filter(|key| !key.is_empty()) else {
            if raw.mcp_request_state_previous_keys.is_some() {
                return Err(ConfigError(
                    "MCP_REQUEST_STATE_PREVIOUS_KEYS: set MCP_REQUEST_STATE_KEY too (the key that signs)"
                        .into(),
                ));
            }
            return Ok(Self {
                ttl,
                ..Self::default()
            });
        };
        let mut keys = vec![("MCP_REQUEST_STATE_KEY", key.into_bytes())];
        for previous in raw
            .mcp_request_state_previous_keys
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|key| !key.is_empty())
        {
            keys.push((
                "MCP_REQUEST_STATE_PREVIOUS_KEYS",
                previous.as_bytes().to_vec(),
            ));
        }
        for (name, key) in &keys {
            if key.len() < MIN_KEY_BYTES {
                return Err(ConfigError(format!(
                    "{name}: a key must have at least {MIN_KEY_BYTES} bytes, this one has {} (make one with `openssl rand -base64 48`)",
                    key.len()
                )));
            }
        }
        let key_ids: Vec<String> = keys.iter().map(|(_, key)| key_id(key)).collect();
        let codec = RequestStateCodec::new_with_keyring(
            key_ids[0].clone(),
            key_ids
                .iter()
                .cloned()
                .zip(keys.into_iter().map(|(_, key)| key)),
        )
        .map_err(|error| ConfigError(format!("MCP_REQUEST_STATE_KEY: {error}")))?;
        Ok(Self {
            codec: Some(Arc::new(codec)),
            key_ids,
            ttl,
        })
    }

    /// The settings for one process with a random key, for a service without
    /// `REDIS_URL` whose operator set no key: valid on this replica only.
    pub(crate) fn random(ttl: Duration) -> Self {
        let key = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let id = key_id(key.as_bytes());
        let codec = RequestStateCodec::new_with_keyring(id.clone(), [(id.clone(), key)])
            .expect("64 random hex digits are a valid key");
        Self {
            codec: Some(Arc::new(codec)),
            key_ids: vec![id],
            ttl,
        }
    }

    /// Whether a key is set (from configuration or, on one replica, at random).
    pub fn has_key(&self) -> bool {
        self.codec.is_some()
    }

    /// The ids of the keys, the signing key's first (for logs: never the keys).
    pub fn key_ids(&self) -> &[String] {
        &self.key_ids
    }
}

/// What a state is bound to: its owner and its purpose.
fn associated_data(user: &UserHash, purpose: &str) -> Vec<u8> {
    let mut data = Vec::with_capacity(user.as_str().len() + 1 + purpose.len());
    data.extend_from_slice(user.as_str().as_bytes());
    data.push(0);
    data.extend_from_slice(purpose.as_bytes());
    data
}

fn settings(context: &RequestContext<RoleServer>) -> Result<Arc<RequestStateConfig>, ErrorData> {
    ServiceContext::lent::<Arc<RequestStateConfig>>(context).ok_or_else(|| {
        ErrorData::internal_error(
            "requestState is only available to requests served over HTTP",
            None,
        )
    })
}

fn codec(settings: &RequestStateConfig) -> Result<&RequestStateCodec, ErrorData> {
    settings.codec.as_deref().ok_or_else(|| {
        ErrorData::internal_error(
            "this service cannot seal requestState: MCP_REQUEST_STATE_KEY is not set, and with \
             REDIS_URL set another replica could not open it; give every replica the same \
             MCP_REQUEST_STATE_KEY (32 bytes or more)",
            None,
        )
    })
}

/// Seals `state` (any serializable value) into a `requestState` string for
/// an `InputRequiredResult`, bound to the caller and to `purpose` (use the
/// tool, prompt or resource name), valid for `MCP_REQUEST_STATE_TTL_SECONDS`.
///
/// The value is authenticated, not encrypted: the client can read it, so
/// keep secrets out of it.
///
/// # Errors
/// `-32603` (internal error) when no key is configured in a fleet, when
/// `state` does not serialize, or outside an HTTP request.
pub fn seal<T: Serialize>(
    context: &RequestContext<RoleServer>,
    purpose: &str,
    state: &T,
) -> Result<String, ErrorData> {
    let settings = settings(context)?;
    let codec = codec(&settings)?;
    let bound = associated_data(&session::caller(context).user_hash, purpose);
    codec
        .seal_json_with(
            state,
            &SealOptions::new().associated_data(&bound).ttl(settings.ttl),
        )
        .map_err(|error| ErrorData::internal_error(format!("requestState: {error}"), None))
}

/// Opens a `requestState` echoed by the client, checking that this fleet
/// sealed it, for this caller and `purpose`, and that it has not expired;
/// returns the value given to [`seal`].
///
/// # Errors
/// `-32602` (invalid params) naming the reason when the state was altered,
/// sealed for another caller or purpose, sealed with a key this fleet no
/// longer holds, or expired; `-32603` as for [`seal`].
pub fn open<T: DeserializeOwned>(
    context: &RequestContext<RoleServer>,
    purpose: &str,
    sealed: &str,
) -> Result<T, ErrorData> {
    let settings = settings(context)?;
    let codec = codec(&settings)?;
    let bound = associated_data(&session::caller(context).user_hash, purpose);
    let payload = codec.open_with(sealed, &bound).map_err(invalid_state)?;
    serde_json::from_slice(&payload).map_err(|error| {
        ErrorData::invalid_params(
            format!("requestState does not hold what {purpose} expects: {error}"),
            None,
        )
    })
}

fn invalid_state(error: RequestStateError) -> ErrorData {
    let reason = match error {
        RequestStateError::Expired => {
            "requestState has expired: start the request again without it"
        }
        RequestStateError::UnknownKeyId => {
            "requestState was sealed with a key this service no longer holds: start the request again without it"
        }
        RequestStateError::IntegrityCheckFailed => {
            "requestState failed its integrity check: it was altered, or sealed for another user or request"
        }
        _ => "requestState is malformed: send back exactly the value the server returned",
    };
    ErrorData::invalid_params(reason, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::PrincipalKind;

    fn raw(key: Option<&str>, previous: Option<&str>) -> RawRequestState {
        RawRequestState {
            mcp_request_state_key: key.map(str::to_owned),
            mcp_request_state_previous_keys: previous.map(str::to_owned),
            mcp_request_state_ttl_seconds: None,
        }
    }

    const KEY: &str = "0123456789abcdef0123456789abcdef-current";
    const OLD: &str = "fedcba9876543210fedcba9876543210-previous";

    #[test]
    fn short_keys_are_refused_naming_the_variable_not_the_key() {
        let error = RequestStateConfig::from_raw(raw(Some("short-secret"), None))
            .unwrap_err()
            .to_string();
        assert!(error.contains("MCP_REQUEST_STATE_KEY"), "{error}");
        assert!(!error.contains("short-secret"), "{error}");
        let error = RequestStateConfig::from_raw(raw(Some(KEY), Some("tiny-old-secret")))
            .unwrap_err()
            .to_string();
        assert!(error.contains("MCP_REQUEST_STATE_PREVIOUS_KEYS"), "{error}");
        assert!(!error.contains("tiny-old-secret"), "{error}");
    }

    #[test]
    fn debug_output_shows_key_ids_only() {
        let config = RequestStateConfig::from_raw(raw(Some(KEY), Some(OLD))).unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains(KEY) && !debug.contains(OLD), "{debug}");
        assert_eq!(config.key_ids().len(), 2);
        assert!(debug.contains(&config.key_ids()[0]), "{debug}");
    }

    #[test]
    fn a_rotated_key_still_opens_what_it_sealed() {
        let old = RequestStateConfig::from_raw(raw(Some(OLD), None)).unwrap();
        let rotated = RequestStateConfig::from_raw(raw(Some(KEY), Some(OLD))).unwrap();
        let bound = associated_data(&UserHash::of(PrincipalKind::Jwt, "iss", "alice"), "tool");
        let sealed = old
            .codec
            .as_ref()
            .unwrap()
            .seal_json_with(&"pending", &SealOptions::new().associated_data(&bound))
            .unwrap();
        let opened = rotated
            .codec
            .as_ref()
            .unwrap()
            .open_with(&sealed, &bound)
            .unwrap();
        assert_eq!(opened, b"\"pending\"");
        let unrelated = RequestStateConfig::from_raw(raw(Some(KEY), None)).unwrap();
        assert!(matches!(
            unrelated.codec.as_ref().unwrap().open_with(&sealed, &bound),
            Err(RequestStateError::UnknownKeyId)
        ));
    }

    #[test]
    fn a_state_is_bound_to_its_user_and_purpose() {
        let config = RequestStateConfig::from_raw(raw(Some(KEY), None)).unwrap();
        let codec = config.codec.as_ref().unwrap();
        let alice = UserHash::of(PrincipalKind::Jwt, "iss", "alice");
        let bob = UserHash::of(PrincipalKind::Jwt, "iss", "bob");
        let sealed = codec
            .seal_json_with(
                &1,
                &SealOptions::new().associated_data(&associated_data(&alice, "a")),
            )
            .unwrap();
        for bound in [associated_data(&bob, "a"), associated_data(&alice, "b")] {
            assert!(matches!(
                codec.open_with(&sealed, &bound),
                Err(RequestStateError::IntegrityCheckFailed)
            ));
        }
    }

    #[test]
    fn no_key_means_no_codec_and_previous_keys_need_a_current_one() {
        assert!(
            !RequestStateConfig::from_raw(raw(None, None))
                .unwrap()
                .has_key()
        );
        assert!(RequestStateConfig::from_raw(raw(None, Some(OLD))).is_err());
        assert!(RequestStateConfig::random(DEFAULT_TTL).has_key());
    }
}
