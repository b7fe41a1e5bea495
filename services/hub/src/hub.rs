//! The hub's routing: which upstreams an endpoint serves, and which
//! upstream a tool, prompt or resource of the downstream client belongs to.
//!
//! | endpoint | serves | names |
//! |---|---|---|
//! | `/mcp`, `/sse` | every upstream | `<server><separator><name>` (`calculator__add`) |
//! | `/mcp/<group>` | the group's upstreams | the same |
//! | `/mcp/<server>` | one upstream, as a transparent proxy | the upstream's own |
//!
//! Aggregated names are split at the first separator; server names cannot
//! contain it ([`config`](crate::config)), so every name has one reading.
//! Resources keep their URIs: a read goes to the upstream whose list has
//! the URI.

use std::sync::Arc;

use futures::future::join_all;
use http::HeaderMap;
use serde_json::Value;

use mcp_session::{UserHash, session_end::SessionEndObserver};

use crate::{
    catalog::{Catalog, ListKind},
    config::{HubConfig, Sharing, Upstream},
    context_key::Principal,
    upstream::{CallError, Route, Upstreams},
};

/// How often expired lists and upstream sessions leave memory.
pub const HOUSEKEEPING: std::time::Duration = std::time::Duration::from_secs(5);

/// The upstreams an endpoint serves.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Several upstreams, their names prefixed (`/mcp`, `/mcp/<group>`).
    Aggregate(&'a [String]),
    /// One upstream, names unchanged (`/mcp/<server>`).
    Transparent(&'a Upstream),
}

/// Why a request cannot be routed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RouteError {
    /// The endpoint names no upstream or group.
    #[error("no upstream or group named `{0}` on this hub (`/mcp` serves them all)")]
    UnknownEndpoint(String),
    /// The name has no upstream of this endpoint.
    #[error("unknown {kind} `{name}`: names on this endpoint are <server>{separator}<name>")]
    UnknownName {
        /// `tool` or `prompt`.
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// The configured separator.
        separator: String,
    },
    /// No upstream of this endpoint lists the resource.
    #[error("no upstream of this endpoint lists the resource `{0}`")]
    UnknownResource(String),
}

/// The hub: configuration, upstream sessions and the lists of the
/// upstreams, shared by every downstream session of this replica.
pub struct Hub {
    /// The configuration.
    pub config: HubConfig,
    /// Upstream sessions and requests.
    pub upstreams: Upstreams,
    /// The upstreams' lists.
    pub catalog: Arc<Catalog>,
    /// Every upstream's name, in order (the scope of `/mcp`).
    all: Vec<String>,
}

/// Ends the `session`-shared upstream sessions of downstream sessions that
/// were deleted on this replica (in the background: the deletion does not
/// wait for the upstreams).
pub struct EndUpstreamSessions(pub std::sync::Weak<Hub>);

impl SessionEndObserver for EndUpstreamSessions {
    fn session_ended(&self, user: &UserHash, session_id: &str) {
        let Some(hub) = self.0.upgrade() else {
            return;
        };
        if !hub
            .config
            .servers
            .values()
            .any(|upstream| upstream.sharing == Sharing::Session)
        {
            return;
        }
        let (user, session_id) = (user.to_string(), session_id.to_owned());
        tokio::spawn(async move {
            // A `session` key depends on the user and the session only.
            let principal = Principal {
                user: &user,
                subject: "",
                session: Some(&session_id),
            };
            for upstream in hub.config.servers.values() {
                if upstream.sharing != Sharing::Session {
                    continue;
                }
                let context = hub.upstreams.context_of(upstream, principal);
                match hub.upstreams.end_session(upstream, &context).await {
                    Ok(Some(_)) => {
                        tracing::info!(upstream = %upstream.name, context_key = %context, "upstream session ended with its downstream session");
                    }
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(upstream = %upstream.name, %error, "could not end the upstream session of an ended downstream session; it expires by itself");
                    }
                }
            }
        });
    }
}

/// An item of an aggregated list: its upstream and its own name.
pub struct Named<'a> {
    /// The upstream.
    pub upstream: &'a Upstream,
    /// The name on the upstream.
    pub name: &'a str,
}

impl Hub {
    /// A hub of `config`'s upstreams.
    pub fn new(config: HubConfig, upstreams: Upstreams) -> Self {
        let all = config.servers.keys().cloned().collect();
        let catalog = Arc::new(Catalog::new(config.list_ttl));
        Self {
            config,
            upstreams,
            catalog,
            all,
        }
    }

    /// Every [`HOUSEKEEPING`] until `hub` is dropped, removes from memory
    /// the lists and upstream sessions that expired (the caches remove
    /// them only when used otherwise): a replica gives back the memory of
    /// users who went away.
    pub fn keep_house(hub: &Arc<Self>) {
        let hub = Arc::downgrade(hub);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(HOUSEKEEPING);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let Some(hub) = hub.upgrade() else { return };
                hub.catalog.run_pending_tasks().await;
                hub.upstreams.run_pending_tasks().await;
            }
        });
    }

    /// The scope of the endpoint at `path`.
    ///
    /// # Errors
    /// [`RouteError::UnknownEndpoint`] for `/mcp/<x>` naming nothing.
    pub fn scope(&self, path: &str) -> Result<Scope<'_>, RouteError> {
        let Some(name) = path.strip_prefix("/mcp/").filter(|n| !n.is_empty()) else {
            return Ok(Scope::Aggregate(&self.all));
        };
        if let Some(upstream) = self.config.servers.get(name) {
            return Ok(Scope::Transparent(upstream));
        }
        match self.config.groups.get(name) {
            Some(members) => Ok(Scope::Aggregate(members)),
            None => Err(RouteError::UnknownEndpoint(name.to_owned())),
        }
    }

    /// Splits an aggregated `name` into its upstream (one of `members`)
    /// and the upstream's own name.
    ///
    /// # Errors
    /// [`RouteError::UnknownName`] when no upstream of `members` has it.
    pub fn split<'a>(
        &'a self,
        members: &[String],
        kind: &'static str,
        name: &'a str,
    ) -> Result<Named<'a>, RouteError> {
        let unknown = || RouteError::UnknownName {
            kind,
            name: name.to_owned(),
            separator: self.config.name_separator.clone(),
        };
        let (server, own) = name
            .split_once(&self.config.name_separator)
            .ok_or_else(unknown)?;
        if own.is_empty() || !members.iter().any(|m| m == server) {
            return Err(unknown());
        }
        let upstream = self.config.servers.get(server).ok_or_else(unknown)?;
        Ok(Named {
            upstream,
            name: own,
        })
    }

    /// The aggregated name of `name` on `server`.
    pub fn join(&self, server: &str, name: &str) -> String {
        format!("{server}{}{name}", self.config.name_separator)
    }

    /// The route of a request of `principal` with `headers` to `upstream`.
    pub fn route<'a>(
        &self,
        upstream: &'a Upstream,
        principal: Principal<'_>,
        headers: &HeaderMap,
    ) -> Route<'a> {
        self.upstreams.route(upstream, principal, headers)
    }

    /// The items of `kind` of every upstream of `members`, each paired with
    /// its upstream's name; an upstream that cannot be listed is left out
    /// (and logged) rather than failing the whole list.
    pub async fn aggregate(
        &self,
        members: &[String],
        kind: ListKind,
        principal: Principal<'_>,
        headers: &HeaderMap,
    ) -> Vec<(String, Value)> {
        let lists = join_all(
            members
                .iter()
                .filter_map(|name| self.config.servers.get(name))
                .map(|upstream| async move {
                    let route = self.route(upstream, principal, headers);
                    (
                        upstream.name.clone(),
                        self.catalog.items(&self.upstreams, &route, kind).await,
                    )
                }),
        )
        .await;
        let mut items = Vec::new();
        for (server, list) in lists {
            match list {
                Ok(list) => items.extend(list.iter().map(|item| (server.clone(), item.clone()))),
                Err(error) => {
                    tracing::warn!(upstream = %server, %error, list = kind.method(), "upstream left out of the list")
                }
            }
        }
        items
    }

    /// The upstream of `members` whose resources (or, failing that,
    /// resource templates' URI prefixes) include `uri`.
    ///
    /// # Errors
    /// [`RouteError::UnknownResource`] when none does.
    pub async fn resource_owner(
        &self,
        members: &[String],
        uri: &str,
        principal: Principal<'_>,
        headers: &HeaderMap,
    ) -> Result<&Upstream, RouteError> {
        let owner = |items: Vec<(String, Value)>, matches: &dyn Fn(&Value) -> bool| {
            items
                .into_iter()
                .find(|(_, item)| matches(item))
                .and_then(|(server, _)| self.config.servers.get(&server))
        };
        let listed = self
            .aggregate(members, ListKind::Resources, principal, headers)
            .await;
        if let Some(upstream) = owner(listed, &|item| {
            item.get("uri").and_then(Value::as_str) == Some(uri)
        }) {
            return Ok(upstream);
        }
        let templates = self
            .aggregate(members, ListKind::ResourceTemplates, principal, headers)
            .await;
        let by_prefix = |item: &Value| {
            item.get("uriTemplate")
                .and_then(Value::as_str)
                .map(|template| template.split('{').next().unwrap_or(template))
                .is_some_and(|prefix| !prefix.is_empty() && uri.starts_with(prefix))
        };
        owner(templates, &by_prefix).ok_or_else(|| RouteError::UnknownResource(uri.to_owned()))
    }

    /// Sends `method` with `params` through `route` (see
    /// [`Upstreams::request`]).
    ///
    /// # Errors
    /// See [`CallError`].
    pub async fn forward(
        &self,
        route: &Route<'_>,
        method: &str,
        params: Value,
        relay: Arc<dyn crate::upstream::http::Relay>,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Result<Value, CallError> {
        self.upstreams
            .request(route, method, params, relay, cancel)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> Hub {
        let config = HubConfig::from_json(
            r#"{"servers": {"calc": {"url": "http://c/mcp"}, "pg": {"url": "http://p/mcp"}},
                "groups": {"math": ["calc"]}}"#,
            &|_| None,
            false,
        )
        .unwrap();
        let upstreams = Upstreams::in_memory(&config);
        Hub::new(config, upstreams)
    }

    #[test]
    fn endpoints_name_scopes() {
        let hub = hub();
        assert!(matches!(hub.scope("/mcp"), Ok(Scope::Aggregate(all)) if all.len() == 2));
        assert!(matches!(hub.scope("/sse"), Ok(Scope::Aggregate(all)) if all.len() == 2));
        assert!(matches!(hub.scope("/mcp/math"), Ok(Scope::Aggregate(m)) if m == ["calc"]));
        assert!(matches!(hub.scope("/mcp/pg"), Ok(Scope::Transparent(u)) if u.name == "pg"));
        assert!(matches!(
            hub.scope("/mcp/nope"),
            Err(RouteError::UnknownEndpoint(_))
        ));
    }

    #[test]
    fn aggregated_names_split_at_the_first_separator() {
        let hub = hub();
        let all = ["calc".to_owned(), "pg".to_owned()];
        let named = hub.split(&all, "tool", "calc__add").unwrap();
        assert_eq!((named.upstream.name.as_str(), named.name), ("calc", "add"));
        let named = hub.split(&all, "tool", "pg__run__query").unwrap();
        assert_eq!(named.name, "run__query");
        assert_eq!(hub.join("calc", "add"), "calc__add");
        for bad in ["add", "calc__", "nope__add", "__add"] {
            assert!(hub.split(&all, "tool", bad).is_err(), "{bad}");
        }
        // A group's endpoint does not reach upstreams outside it.
        assert!(
            hub.split(&["calc".to_owned()], "tool", "pg__query")
                .is_err()
        );
    }
}
