//! What the upstreams offer: their tools, prompts, resources and resource
//! templates, listed through their sessions and kept in memory for
//! `list_ttl_seconds` (60 s), or for the `ttlMs` a 2026-07-28 upstream
//! gives with the list (SEP-2549) when that is shorter, so that a client's
//! `tools/list` does not cost a round trip to every upstream.
//!
//! Lists are kept per upstream and per [`ContextKey`] (an upstream may
//! offer each user other tools), and dropped early when the upstream sends
//! `notifications/tools/list_changed` (or the prompts' or resources')
//! during a request. All of an upstream's pages are read (`nextCursor`, at
//! most 100 pages).

use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{
    context_key::ContextKey,
    upstream::{CallError, Route, Upstreams, http::NoRelay},
};

/// Most pages read from one upstream for one list.
const MAX_PAGES: usize = 100;

/// Most bytes of lists (as JSON) one replica keeps: the cache is bounded by
/// what the lists weigh, not by their number, so that many users with
/// their own lists (one per context key) cannot grow a replica's memory
/// past it; the least used go first.
pub const MAX_LIST_BYTES: u64 = 64 * 1024 * 1024;

/// One of the lists an MCP server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// `tools/list` → `tools`.
    Tools,
    /// `prompts/list` → `prompts`.
    Prompts,
    /// `resources/list` → `resources`.
    Resources,
    /// `resources/templates/list` → `resourceTemplates`.
    ResourceTemplates,
}

impl ListKind {
    /// The method that lists it.
    pub fn method(self) -> &'static str {
        match self {
            Self::Tools => "tools/list",
            Self::Prompts => "prompts/list",
            Self::Resources => "resources/list",
            Self::ResourceTemplates => "resources/templates/list",
        }
    }

    /// The field of the result that holds the items.
    pub fn field(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Prompts => "prompts",
            Self::Resources => "resources",
            Self::ResourceTemplates => "resourceTemplates",
        }
    }

    /// The lists a `notifications/<…>/list_changed` method invalidates.
    pub fn changed_by(method: &str) -> &'static [Self] {
        match method {
            "notifications/tools/list_changed" => &[Self::Tools],
            "notifications/prompts/list_changed" => &[Self::Prompts],
            "notifications/resources/list_changed" => &[Self::Resources, Self::ResourceTemplates],
            _ => &[],
        }
    }
}

/// One list as read: its items, how long the upstream said it holds, and
/// its weight in the cache (its JSON's length).
struct Listed {
    items: Arc<Vec<Value>>,
    ttl: Option<Duration>,
    bytes: u32,
}

/// Each list expires after the upstream's `ttlMs`, if it gave one (the
/// cache's own TTL bounds it anyway).
struct UpstreamTtl;

impl moka::Expiry<(String, ContextKey, ListKind), Arc<Listed>> for UpstreamTtl {
    fn expire_after_create(
        &self,
        _key: &(String, ContextKey, ListKind),
        value: &Arc<Listed>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        value.ttl
    }
}

/// The lists of every upstream, per context key.
pub struct Catalog {
    lists: moka::future::Cache<(String, ContextKey, ListKind), Arc<Listed>>,
}

impl Catalog {
    /// Lists kept for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            lists: moka::future::Cache::builder()
                .max_capacity(MAX_LIST_BYTES)
                .weigher(
                    |key: &(String, ContextKey, ListKind), listed: &Arc<Listed>| {
                        listed.bytes.saturating_add(key.0.len() as u32 + 64)
                    },
                )
                .time_to_live(ttl)
                .expire_after(UpstreamTtl)
                .support_invalidation_closures()
                .build(),
        }
    }

    /// The items of `kind` the route's upstream offers in its context.
    ///
    /// # Errors
    /// The [`CallError`] of the upstream's answer.
    pub async fn items(
        &self,
        upstreams: &Upstreams,
        route: &Route<'_>,
        kind: ListKind,
    ) -> Result<Arc<Vec<Value>>, CallError> {
        let key = (route.upstream.name.clone(), route.context.clone(), kind);
        self.lists
            .try_get_with(key, async {
                Ok::<_, CallError>(Arc::new(read_all(upstreams, route, kind).await?))
            })
            .await
            .map(|listed| listed.items.clone())
            .map_err(|error| (*error).clone())
    }

    /// Removes the lists that expired. The cache removes them only when it
    /// is used; run every few seconds ([`crate::hub::Hub::new`]), so that
    /// a replica whose users went away gives their lists' memory back.
    pub async fn run_pending_tasks(&self) {
        self.lists.run_pending_tasks().await;
    }

    /// Drops the lists `method` (a `list_changed` notification of
    /// `server`) says changed, in every context.
    pub fn changed(&self, server: &str, method: &str) {
        for kind in ListKind::changed_by(method) {
            let (server, kind) = (server.to_owned(), *kind);
            // Only fails without `support_invalidation_closures`, set above.
            let _ = self
                .lists
                .invalidate_entries_if(move |(name, _, k), _| *name == server && *k == kind);
        }
    }
}

/// Every page of `kind` from the route's upstream.
async fn read_all(
    upstreams: &Upstreams,
    route: &Route<'_>,
    kind: ListKind,
) -> Result<Listed, CallError> {
    let mut items = Vec::new();
    let mut ttl: Option<Duration> = None;
    let mut cursor: Option<String> = None;
    let never = CancellationToken::new();
    for _ in 0..MAX_PAGES {
        let params = match &cursor {
            Some(cursor) => json!({"cursor": cursor}),
            None => json!({}),
        };
        let mut result = upstreams
            .request(route, kind.method(), params, Arc::new(NoRelay), &never)
            .await?;
        if let Some(Value::Array(page)) = result.get_mut(kind.field()).map(Value::take) {
            items.extend(page);
        }
        if let Some(ms) = result.get("ttlMs").and_then(Value::as_u64) {
            let page_ttl = Duration::from_millis(ms);
            ttl = Some(ttl.map_or(page_ttl, |ttl| ttl.min(page_ttl)));
        }
        cursor = result
            .get("nextCursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    let bytes = serde_json::to_vec(&items).map_or(0, |json| json.len());
    Ok(Listed {
        items: Arc::new(items),
        ttl,
        bytes: u32::try_from(bytes).unwrap_or(u32::MAX),
    })
}
