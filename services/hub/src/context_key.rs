//! Context keys: which upstream session a request of a caller uses.
//!
//! Upstream sessions are stored under
//! `mcp:upstream:session:<serverName>:<contextKey>`. The context key says
//! who shares the session:
//!
//! | sharing | context key |
//! |---|---|
//! | `shared` | `shared` |
//! | `user` | `u-` + 32 hex digits of HMAC-SHA256(secret, user hash, credential values sent upstream) |
//! | `session` | `s-` + 32 hex digits of HMAC-SHA256(secret, user hash, downstream session id) |
//!
//! The users' first hub built the key from the *names* of the caller's
//! token headers (`tok:<sorted names>`), so two users who both sent a
//! `GITHUB_TOKEN` shared one upstream session, and whatever state the
//! upstream kept for one was the other's. Here the key covers the user and
//! the *values* of every credential the hub sends upstream, so two callers
//! share an upstream session only where the upstream is declared `shared`.
//! A `session` key needs no credentials: a downstream session belongs to
//! one user (`mcp-session` answers `404` to anyone else), and a client that
//! refreshes its token keeps its upstream session; the hub ends that
//! upstream session when the downstream one is deleted.
//! A keyed hash (not a plain SHA-256) because the key is visible in Redis
//! and in the admin API: without the secret, nobody can test a guessed
//! credential against it.
//!
//! The secret (`HUB_CONTEXT_KEY_SECRET`) must be the same on every hub
//! replica, or each would make its own upstream sessions.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::config::Sharing;

/// A context key: `shared`, `u-<hex>` or `s-<hex>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContextKey(String);

impl ContextKey {
    /// The key of `shared` upstreams.
    pub fn shared() -> Self {
        Self("shared".to_owned())
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `text` if it has the shape of a context key (what the admin API
    /// accepts), else `None`.
    pub fn parse(text: &str) -> Option<Self> {
        let valid = text == "shared"
            || (text.len() == 34
                && (text.starts_with("u-") || text.starts_with("s-"))
                && text[2..].bytes().all(|b| b.is_ascii_hexdigit()));
        valid.then(|| Self(text.to_owned()))
    }
}

impl std::fmt::Display for ContextKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who is asking, as far as the context key is concerned.
#[derive(Debug, Clone, Copy)]
pub struct Principal<'a> {
    /// The caller's user hash (`mcp-session`'s owner key).
    pub user: &'a str,
    /// The caller's subject: the JWT `sub` or the API key's name (which
    /// `user_headers` are keyed by).
    pub subject: &'a str,
    /// The downstream session, when the request has one (none for a
    /// 2026-07-28 stateless request).
    pub session: Option<&'a str>,
}

/// Derives context keys with one secret.
#[derive(Clone)]
pub struct ContextKeys {
    secret: Vec<u8>,
}

impl std::fmt::Debug for ContextKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContextKeys(<secret>)")
    }
}

impl ContextKeys {
    /// Keys derived with `secret` (any length; 32 random bytes or more).
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self {
            secret: secret.into(),
        }
    }

    /// A random secret, for a hub alone (no other replica has to agree).
    pub fn random() -> Self {
        let bytes: Vec<u8> = uuid::Uuid::new_v4()
            .as_bytes()
            .iter()
            .chain(uuid::Uuid::new_v4().as_bytes())
            .copied()
            .collect();
        Self::new(bytes)
    }

    /// The context key of `principal` on an upstream shared as `sharing`,
    /// sending `credentials` (header name, value) upstream (a `session` key
    /// leaves them out). A `session` upstream reached without a downstream
    /// session (a stateless request) is keyed as `user`.
    pub fn derive(
        &self,
        sharing: Sharing,
        principal: Principal<'_>,
        credentials: &[(&str, &[u8])],
    ) -> ContextKey {
        let (prefix, session) = match (sharing, principal.session) {
            (Sharing::Shared, _) => return ContextKey::shared(),
            (Sharing::Session, Some(session)) => ("s-", session),
            (Sharing::User | Sharing::Session, _) => ("u-", ""),
        };
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes keys of any length");
        // Length-prefixed fields: no two different inputs hash alike.
        let mut field = |bytes: &[u8]| {
            mac.update(&(bytes.len() as u64).to_be_bytes());
            mac.update(bytes);
        };
        field(prefix.as_bytes());
        field(principal.user.as_bytes());
        field(session.as_bytes());
        let mut credentials = if prefix == "s-" {
            Vec::new()
        } else {
            credentials.to_vec()
        };
        credentials.sort();
        for (name, value) in credentials {
            field(name.as_bytes());
            field(value);
        }
        let digest = mac.finalize().into_bytes();
        ContextKey(format!("{prefix}{}", hex::encode(&digest[..16])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: Principal<'static> = Principal {
        user: "alice-hash",
        subject: "alice",
        session: Some("s1"),
    };
    const BOB: Principal<'static> = Principal {
        user: "bob-hash",
        subject: "bob",
        session: Some("s2"),
    };

    #[test]
    fn two_users_with_the_same_token_names_never_share() {
        let keys = ContextKeys::new("secret");
        let alice = keys.derive(Sharing::User, ALICE, &[("authorization", b"Bearer a")]);
        let bob = keys.derive(Sharing::User, BOB, &[("authorization", b"Bearer b")]);
        assert_ne!(alice, bob);
        // Even with the same credential value, users stay apart.
        let bob_same = keys.derive(Sharing::User, BOB, &[("authorization", b"Bearer a")]);
        assert_ne!(alice, bob_same);
        // One user with another credential value gets another session.
        let alice_other = keys.derive(Sharing::User, ALICE, &[("authorization", b"Bearer c")]);
        assert_ne!(alice, alice_other);
    }

    #[test]
    fn keys_are_stable_and_shaped() {
        let keys = ContextKeys::new("secret");
        let creds: [(&str, &[u8]); 2] = [("b", b"2"), ("a", b"1")];
        let reversed: [(&str, &[u8]); 2] = [("a", b"1"), ("b", b"2")];
        let one = keys.derive(Sharing::User, ALICE, &creds);
        assert_eq!(one, keys.derive(Sharing::User, ALICE, &reversed));
        assert!(ContextKey::parse(one.as_str()).is_some(), "{one}");
        let session = keys.derive(Sharing::Session, ALICE, &[]);
        assert!(session.as_str().starts_with("s-"));
        // A refreshed token keeps the downstream session's upstream session.
        assert_eq!(session, keys.derive(Sharing::Session, ALICE, &creds));
        assert_ne!(session, keys.derive(Sharing::Session, BOB, &[]));
        assert_eq!(
            keys.derive(Sharing::Shared, ALICE, &creds),
            ContextKey::shared()
        );
        let stateless = Principal {
            session: None,
            ..ALICE
        };
        assert_eq!(
            keys.derive(Sharing::Session, stateless, &[]),
            keys.derive(Sharing::User, ALICE, &[])
        );
        // Another secret, other keys.
        assert_ne!(
            one,
            ContextKeys::new("other").derive(Sharing::User, ALICE, &creds)
        );
    }

    #[test]
    fn only_context_keys_parse() {
        for bad in ["", "tok:GITHUB_TOKEN", "u-xyz", "shared ", "u-../../x"] {
            assert!(ContextKey::parse(bad).is_none(), "{bad}");
        }
    }
}
