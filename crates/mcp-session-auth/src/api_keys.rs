//! API keys: `Authorization: ApiKey <key>` or `X-API-Key: <key>`.
//!
//! Keys are configured by name with the hex SHA-256 of the key, never the key
//! itself (`API_KEYS=ci:9f86d0…,ops:2c26b4…`), so the configuration, a
//! Kubernetes Secret dump or a leaked `.env` does not hand out working keys.
//! Make a key and its entry with:
//!
//! ```sh
//! key=$(openssl rand -hex 32)                 # give this to the client
//! printf %s "$key" | sha256sum | cut -d' ' -f1  # put this in API_KEYS
//! ```
//!
//! Revoking a key is removing its entry. A presented key is hashed and
//! compared with every entry in constant time, so timing tells nothing about
//! how close a guess was.

use sha2::{Digest, Sha256};

use mcp_session_core::config::ConfigError;

/// One configured API key.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyEntry {
    /// The key's name: the caller's subject (`[A-Za-z0-9._-]`, 1 to 64 characters).
    pub name: String,
    /// SHA-256 of the key.
    hash: [u8; 32],
    /// Whether the key grants admin rights (`ADMIN_API_KEYS`).
    pub admin: bool,
}

impl std::fmt::Debug for ApiKeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyEntry")
            .field("name", &self.name)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

/// The hex SHA-256 of `key`: what `API_KEYS` lists for it.
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
}

/// Parses `API_KEYS` (`name:sha256hex,...`); names in `admins` are admin keys.
///
/// # Errors
/// [`ConfigError`] naming `API_KEYS` (or `ADMIN_API_KEYS`) for an entry
/// without a name, a value that is no 64-digit hex SHA-256 (the message
/// never repeats it: it may be a key pasted by mistake), a duplicate name,
/// or an admin name that is not listed.
pub fn parse_api_keys(spec: &str, admins: &[String]) -> Result<Vec<ApiKeyEntry>, ConfigError> {
    let mut entries: Vec<ApiKeyEntry> = Vec::new();
    for (position, item) in spec
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .enumerate()
    {
        let Some((name, hash)) = item.split_once(':') else {
            return Err(ConfigError(format!(
                "API_KEYS: entry {} is not `name:sha256hex`",
                position + 1
            )));
        };
        let name = name.trim();
        if !valid_name(name) {
            return Err(ConfigError(format!(
                "API_KEYS: entry {} has no valid name (letters, digits, `.`, `_`, `-`; at most 64)",
                position + 1
            )));
        }
        let mut digest = [0u8; 32];
        if hex::decode_to_slice(hash.trim(), &mut digest).is_err() {
            return Err(ConfigError(format!(
                "API_KEYS: the value of `{name}` is not a 64-digit hex SHA-256 of the key (store `printf %s \"$KEY\" | sha256sum`, never the key itself)"
            )));
        }
        if entries.iter().any(|entry| entry.name == name) {
            return Err(ConfigError(format!("API_KEYS: `{name}` is listed twice")));
        }
        entries.push(ApiKeyEntry {
            name: name.to_owned(),
            hash: digest,
            admin: admins.iter().any(|admin| admin == name),
        });
    }
    if let Some(unknown) = admins
        .iter()
        .find(|admin| !entries.iter().any(|entry| &entry.name == *admin))
    {
        return Err(ConfigError(format!(
            "ADMIN_API_KEYS: `{unknown}` is not a key name in API_KEYS"
        )));
    }
    Ok(entries)
}

/// Equality of two digests in time independent of where they differ.
fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The entry whose key is `key`, if any. Every entry is compared, whatever
/// matches, in constant time per entry.
pub fn find_api_key<'a>(entries: &'a [ApiKeyEntry], key: &str) -> Option<&'a ApiKeyEntry> {
    let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    let mut found = None;
    for entry in entries {
        if same_digest(&entry.hash, &digest) && found.is_none() {
            found = Some(entry);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_by_their_hash() {
        let spec = format!(
            "ci:{}, ops:{}",
            hash_api_key("ci-key"),
            hash_api_key("ops-key").to_uppercase()
        );
        let entries = parse_api_keys(&spec, &["ops".into()]).unwrap();
        assert_eq!(find_api_key(&entries, "ci-key").unwrap().name, "ci");
        let ops = find_api_key(&entries, "ops-key").unwrap();
        assert!(ops.admin);
        assert!(find_api_key(&entries, "ci-key ").is_none());
        assert!(find_api_key(&entries, "").is_none());
        // The hash itself is not a key.
        assert!(find_api_key(&entries, &hash_api_key("ci-key")).is_none());
    }

    #[test]
    fn bad_entries_are_refused_without_echoing_them() {
        let pasted_key = "sk-live-0123456789";
        for (spec, admins, expected) in [
            (format!("ci:{pasted_key}"), vec![], "API_KEYS"),
            ("justaname".to_owned(), vec![], "API_KEYS"),
            (format!(":{}", hash_api_key("x")), vec![], "API_KEYS"),
            (
                format!("a:{},a:{}", hash_api_key("x"), hash_api_key("y")),
                vec![],
                "twice",
            ),
            (
                format!("a:{}", hash_api_key("x")),
                vec!["b".to_owned()],
                "ADMIN_API_KEYS",
            ),
        ] {
            let message = parse_api_keys(&spec, &admins).unwrap_err().to_string();
            assert!(message.contains(expected), "{message}");
            assert!(!message.contains(pasted_key), "{message}");
        }
    }

    #[test]
    fn debug_output_shows_names_only() {
        let entries = parse_api_keys(&format!("ci:{}", hash_api_key("k")), &[]).unwrap();
        let debug = format!("{entries:?}");
        assert!(debug.contains("ci"));
        assert!(!debug.contains(&hash_api_key("k")[..16]), "{debug}");
    }
}
