//! Credentials at rest: the headers a user gives for a connection (an API
//! key, a bearer token for that server) are sealed with AES-256-GCM before
//! they reach Redis, and opened only to send them upstream. They are never
//! logged and never returned by the API (which shows their names only).
//!
//! A sealed value is `<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`: a
//! random 96-bit nonce per value (NIST SP 800-38D §8.2.2), and as
//! associated data the record it belongs to (`<user hash>:<client session
//! id>:<server>`), so a value copied into another user's record does not
//! open. The key id (the first 8 hex digits of the key's SHA-256) names
//! the key that sealed it: with `CLIENT_SESSION_ENCRYPTION_KEY_PREVIOUS`
//! set during a rotation, values sealed with the previous key still open.

use aes_gcm::{
    Aes256Gcm, Nonce,
    aead::{Aead, Generate, KeyInit, Payload},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

/// The environment variable holding the key: 32 bytes, base64 or hex.
pub const KEY_VARIABLE: &str = "CLIENT_SESSION_ENCRYPTION_KEY";
/// The previous key, during a rotation.
pub const PREVIOUS_KEY_VARIABLE: &str = "CLIENT_SESSION_ENCRYPTION_KEY_PREVIOUS";

const NONCE_LEN: usize = 12;

/// Why a value cannot be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The hub has no key: it stores no credentials.
    #[error(
        "this hub stores no credentials: {KEY_VARIABLE} is not set (32 random bytes, base64: `openssl rand -base64 32`)"
    )]
    NoKey,
    /// Sealed with a key this hub does not have.
    #[error("sealed with key {0}, which this hub does not have")]
    UnknownKey(String),
    /// Altered, cut, or sealed for another record.
    #[error("the sealed value does not open (altered, or not this record's)")]
    Corrupt,
}

/// A key in a variable could not be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{variable}: expected 32 bytes as base64 (44 characters) or hex (64 digits)")]
pub struct KeyError {
    /// The variable.
    pub variable: &'static str,
}

struct Key {
    id: String,
    cipher: Aes256Gcm,
}

impl Key {
    fn parse(variable: &'static str, text: &str) -> Result<Self, KeyError> {
        use base64::engine::general_purpose::STANDARD;
        let text = text.trim();
        let bytes = if text.len() == 64 {
            hex::decode(text).ok()
        } else {
            STANDARD.decode(text).ok()
        }
        .filter(|bytes| bytes.len() == 32)
        .ok_or(KeyError { variable })?;
        Ok(Self::from_bytes(&bytes))
    }

    fn from_bytes(bytes: &[u8]) -> Self {
        let id = hex::encode(&Sha256::digest(bytes)[..4]);
        let cipher = Aes256Gcm::new_from_slice(bytes).expect("a 32-byte key");
        Self { id, cipher }
    }
}

/// Seals and opens credentials; with no key ([`Sealer::without_key`]) it
/// refuses to seal, so that no credential is stored unprotected.
pub struct Sealer {
    keys: Vec<Key>,
}

impl Sealer {
    /// The sealer of the keys in `env`'s [`KEY_VARIABLE`] and
    /// [`PREVIOUS_KEY_VARIABLE`]; without a key, one made up for this
    /// process when `random_if_unset` (a hub alone, whose records live in
    /// its memory), else none.
    ///
    /// # Errors
    /// A variable that is set but not a 32-byte key.
    pub fn from_env(
        env: &dyn Fn(&str) -> Option<String>,
        random_if_unset: bool,
    ) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        for variable in [KEY_VARIABLE, PREVIOUS_KEY_VARIABLE] {
            if let Some(text) = env(variable).filter(|text| !text.trim().is_empty()) {
                keys.push(Key::parse(variable, &text)?);
            }
        }
        if keys.is_empty() && random_if_unset {
            let random = aes_gcm::Key::<Aes256Gcm>::generate();
            keys.push(Key::from_bytes(&random));
        }
        Ok(Self { keys })
    }

    /// A sealer with no key: every [`seal`](Self::seal) fails with
    /// [`SealError::NoKey`].
    pub fn without_key() -> Self {
        Self { keys: Vec::new() }
    }

    /// Seals `plaintext` for the record named by `context`.
    ///
    /// # Errors
    /// [`SealError::NoKey`].
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<String, SealError> {
        let key = self.keys.first().ok_or(SealError::NoKey)?;
        let nonce = Nonce::generate();
        let sealed = key
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Corrupt)?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!("{}.{}", key.id, URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Opens a value [`seal`](Self::seal) made for `context`.
    ///
    /// # Errors
    /// [`SealError::UnknownKey`] or [`SealError::Corrupt`].
    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
        let (id, body) = sealed.split_once('.').ok_or(SealError::Corrupt)?;
        let key = self
            .keys
            .iter()
            .find(|key| key.id == id)
            .ok_or_else(|| SealError::UnknownKey(id.chars().take(8).collect()))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SealError::Corrupt)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::Corrupt);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).map_err(|_| SealError::Corrupt)?;
        key.cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    const OTHER: &str = "6162636465666768696a6b6c6d6e6f707172737475767778797a303132333435";

    fn sealer(current: &str, previous: Option<&str>) -> Sealer {
        Sealer::from_env(
            &|var| match var {
                KEY_VARIABLE => Some(current.to_owned()),
                PREVIOUS_KEY_VARIABLE => previous.map(str::to_owned),
                _ => None,
            },
            false,
        )
        .unwrap()
    }

    #[test]
    fn values_open_only_for_their_record_and_key() {
        let sealer = sealer(KEY, None);
        let sealed = sealer.seal("u:cs_1:gh", b"Bearer secret").unwrap();
        assert!(!sealed.contains("secret"));
        assert_ne!(
            sealed,
            sealer.seal("u:cs_1:gh", b"Bearer secret").unwrap(),
            "fresh nonce"
        );
        assert_eq!(sealer.open("u:cs_1:gh", &sealed).unwrap(), b"Bearer secret");
        assert_eq!(sealer.open("v:cs_1:gh", &sealed), Err(SealError::Corrupt));
        let mut altered = sealed.clone();
        altered.pop();
        assert!(sealer.open("u:cs_1:gh", &altered).is_err());
        assert!(matches!(
            self::sealer(OTHER, None).open("u:cs_1:gh", &sealed),
            Err(SealError::UnknownKey(_))
        ));
        // Rotation: the previous key still opens what it sealed.
        let rotated = self::sealer(OTHER, Some(KEY));
        assert_eq!(
            rotated.open("u:cs_1:gh", &sealed).unwrap(),
            b"Bearer secret"
        );
        assert!(
            rotated
                .seal("x", b"y")
                .unwrap()
                .starts_with(&rotated.keys[0].id)
        );
    }

    #[test]
    fn keys_are_checked_and_none_means_nothing_is_sealed() {
        assert!(Sealer::from_env(&|_| Some("short".to_owned()), false).is_err());
        assert_eq!(Sealer::without_key().seal("x", b"y"), Err(SealError::NoKey));
        assert_eq!(
            Sealer::from_env(&|_| None, false).unwrap().seal("x", b"y"),
            Err(SealError::NoKey)
        );
        assert!(
            Sealer::from_env(&|_| None, true)
                .unwrap()
                .seal("x", b"y")
                .is_ok()
        );
    }
}
