//! Paging through the keys that match a pattern, on one Redis server or on
//! every primary of a Redis Cluster, with `SCAN MATCH` (never `KEYS`, which
//! blocks Redis while it walks the whole keyspace).
//!
//! Admin APIs list what lives in Redis with it: the session store's
//! `mcp_user_session:*` and the hub's `mcp:upstream:session:*`. A cluster's
//! keys are spread over its primaries, and `SCAN` walks one node, so a
//! page's cursor is `<node index>:<SCAN cursor>`: pages go node after node,
//! in the stable order of the cluster's primaries.

use fred::{prelude::*, types::config::Server};

use crate::{
    connection::{RedisConnection, unavailable},
    metrics::RedisOp,
    store::StoreError,
};

/// Most `SCAN` calls one page makes (a page over a sparse keyspace may come
/// back short, with a cursor to go on).
const MAX_SCAN_CALLS: usize = 64;

/// One page of keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPage {
    /// The keys found, in no particular order; a key may appear on two
    /// pages when Redis rehashed between them (`SCAN`'s guarantee).
    pub keys: Vec<String>,
    /// The cursor of the next page, `None` after the last one.
    pub next_cursor: Option<String>,
}

/// `text` with the glob characters of `SCAN MATCH` escaped, for a pattern
/// that must match `text` literally.
pub fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn bad_cursor() -> StoreError {
    StoreError::Corrupt("not a cursor of this listing (pass back `next_cursor` as given)".into())
}

/// Parses a page cursor: the node index and the `SCAN` cursor.
fn parse_cursor(cursor: Option<&str>) -> Result<(usize, String), StoreError> {
    let Some(cursor) = cursor else {
        return Ok((0, "0".to_owned()));
    };
    let (node, redis_cursor) = cursor.split_once(':').ok_or_else(bad_cursor)?;
    let node = node.parse().map_err(|_| bad_cursor())?;
    if redis_cursor.is_empty() || !redis_cursor.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_cursor());
    }
    Ok((node, redis_cursor.to_owned()))
}

impl RedisConnection {
    /// The nodes to `SCAN`: each primary of a cluster (in a stable order),
    /// or the one server (`None`).
    fn scan_nodes(&self) -> Vec<Option<Server>> {
        match self.pool().next().cached_cluster_state() {
            Some(state) if self.is_clustered() => {
                state.unique_primary_nodes().into_iter().map(Some).collect()
            }
            _ => vec![None],
        }
    }

    /// One `SCAN` call on `node`: the next cursor and the keys found.
    async fn scan_once(
        &self,
        op: RedisOp,
        node: Option<&Server>,
        cursor: &str,
        pattern: &str,
        count: u32,
    ) -> Result<(String, Vec<String>), StoreError> {
        let client = self.pool().next();
        self.round_trip(op);
        let reply: Value = match node {
            Some(server) => {
                client
                    .with_cluster_node(server.clone())
                    .scan_page(cursor.to_owned(), pattern.to_owned(), Some(count), None)
                    .await
            }
            None => {
                client
                    .scan_page(cursor.to_owned(), pattern.to_owned(), Some(count), None)
                    .await
            }
        }
        .map_err(unavailable)?;
        let mut parts = reply.into_array().into_iter();
        let next = parts
            .next()
            .and_then(|cursor| cursor.as_string())
            .ok_or_else(|| StoreError::Corrupt("SCAN reply without a cursor".into()))?;
        let keys = parts
            .next()
            .map(|keys| {
                keys.into_array()
                    .into_iter()
                    .filter_map(|key| key.as_string())
                    .collect()
            })
            .unwrap_or_default();
        Ok((next, keys))
    }

    /// About `limit` keys matching `pattern` (a `SCAN MATCH` glob; escape
    /// literal parts with [`glob_escape`]), from `cursor` (`None`: the
    /// first page). Each `SCAN` call is one round trip counted for `op`; a
    /// page makes at most 64.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis does not answer;
    /// [`StoreError::Corrupt`] for a cursor this listing did not hand out.
    pub async fn scan_keys(
        &self,
        op: RedisOp,
        cursor: Option<&str>,
        pattern: &str,
        limit: usize,
    ) -> Result<KeyPage, StoreError> {
        let (mut node, mut redis_cursor) = parse_cursor(cursor)?;
        let nodes = self.scan_nodes();
        if node >= nodes.len() {
            return Ok(KeyPage::default());
        }
        let limit = limit.max(1);
        let count = limit.clamp(10, 1000) as u32;
        let mut keys = Vec::new();
        let mut done = false;
        for _ in 0..MAX_SCAN_CALLS {
            let (next, found) = self
                .scan_once(op, nodes[node].as_ref(), &redis_cursor, pattern, count)
                .await?;
            keys.extend(found);
            if next == "0" {
                node += 1;
                redis_cursor = "0".to_owned();
                if node >= nodes.len() {
                    done = true;
                    break;
                }
            } else {
                redis_cursor = next;
            }
            if keys.len() >= limit {
                break;
            }
        }
        let next_cursor = (!done).then(|| format!("{node}:{redis_cursor}"));
        Ok(KeyPage { keys, next_cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_patterns_escape_globs() {
        assert_eq!(glob_escape("ab-12"), "ab-12");
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }

    #[test]
    fn cursors_are_node_and_scan_cursor() {
        assert_eq!(parse_cursor(None).unwrap(), (0, "0".to_owned()));
        assert_eq!(
            parse_cursor(Some("2:1536")).unwrap(),
            (2, "1536".to_owned())
        );
        for bad in ["", "1", "x:1", "1:", "1:a", "1:-2"] {
            assert!(parse_cursor(Some(bad)).is_err(), "{bad}");
        }
    }
}
