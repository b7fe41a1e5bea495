//! Client sessions: MCP client connections kept by the hub for web apps.
//!
//! A web app's server used to hold, per browser session, the MCP servers
//! its user connected, in process memory: lost on a restart, growing with
//! users, and unknown to the app's other instances. Here the app (or the
//! hub's own [console](crate::console)) asks the hub instead, over a JSON
//! API, and the hub keeps:
//!
//! - the client session, in Redis ([`store`]): an id the hub issues
//!   (`cs_` + 122 random bits) under the caller's user hash, with a
//!   sliding TTL, so another user's id is `404` and nothing is lost when
//!   the replica that served the last request goes away;
//! - its connections, as names of servers and the user's sealed headers
//!   ([`sealing`]), each resolved per request to the hub's upstream
//!   session of that caller ([`connections`]): re-attached by whichever
//!   replica serves the request, re-established when it expired upstream;
//! - nothing in process memory but bounded caches, whatever the number of
//!   users.
//!
//! URLs users connect go through the [egress guard](crate::egress).
//!
//! | method | path | does |
//! |---|---|---|
//! | `GET` | `/api/servers` | the configured servers |
//! | `POST` | `/api/client-sessions` | creates a client session (`201`) |
//! | `GET` | `/api/client-sessions` | the caller's client sessions |
//! | `GET`, `DELETE` | `/api/client-sessions/{id}` | one (renewed), or deletes it |
//! | `POST` | `/api/client-sessions/{id}/connect`, `…/disconnect` | connects or disconnects a server |
//! | `GET`, `POST` | `/api/client-sessions/{id}/tools` | lists tools, calls one |
//! | `GET`, `POST` | `/api/client-sessions/{id}/prompts` | lists prompts, gets one |
//! | `GET`, `POST` | `/api/client-sessions/{id}/resources` | lists resources, reads one |
//! | `GET` | `/api/openapi.json` | this API as OpenAPI 3.1 (public) |
//!
//! `docs/client-sessions.md` is the users' guide.

pub mod api;
pub mod connections;
pub mod error;
pub mod model;
mod requests;
pub mod sealing;
pub mod store;

use std::sync::Arc;

use axum::{
    Json, Router,
    body::{Body, HttpBody as _},
    extract::Request,
    http::{HeaderValue, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use mcp_session::body::{BodyError, read_body};
use utoipa::{
    Modify, OpenApi,
    openapi::{
        ContentBuilder, Ref, ResponseBuilder,
        security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

pub use self::requests::Asker;
use self::{error::ApiError, sealing::Sealer, store::ClientSessionStore};
use crate::{config::ClientSessionSettings, hub::Hub, metrics::HubMetrics};

/// Largest request body accepted (a tool's arguments included); a larger
/// one gets `413 payload_too_large` ([`limit_body`]).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// What the API's handlers share: the hub, the store of client sessions and
/// the sealer of credentials.
pub struct ClientSessions {
    hub: Arc<Hub>,
    store: Arc<dyn ClientSessionStore>,
    sealer: Sealer,
    metrics: HubMetrics,
}

impl ClientSessions {
    /// Client sessions of `hub` kept in `store`, credentials sealed by
    /// `sealer`, events counted in `metrics`.
    pub fn new(
        hub: Arc<Hub>,
        store: Arc<dyn ClientSessionStore>,
        sealer: Sealer,
        metrics: HubMetrics,
    ) -> Arc<Self> {
        Arc::new(Self {
            hub,
            store,
            sealer,
            metrics,
        })
    }

    fn settings(&self) -> &ClientSessionSettings {
        &self.hub.config.client_sessions
    }
}

/// The API's routes, to be served behind authentication
/// (`McpServer::with_routes`).
pub fn routes(state: Arc<ClientSessions>) -> Router {
    Router::new()
        .route("/api/servers", get(api::list_servers))
        .route("/api/client-sessions", post(api::create).get(api::list))
        .route(
            "/api/client-sessions/{id}",
            get(api::get_one).delete(api::delete_one),
        )
        .route("/api/client-sessions/{id}/connect", post(api::connect))
        .route(
            "/api/client-sessions/{id}/disconnect",
            post(api::disconnect),
        )
        .route(
            "/api/client-sessions/{id}/tools",
            get(api::tools).post(api::call_tool),
        )
        .route(
            "/api/client-sessions/{id}/prompts",
            get(api::prompts).post(api::get_prompt),
        )
        .route(
            "/api/client-sessions/{id}/resources",
            get(api::resources).post(api::read_resource),
        )
        .layer(axum::middleware::from_fn(limit_body))
        .layer(axum::middleware::map_response(no_store))
        .with_state(state)
}

/// The public route of the OpenAPI document.
pub fn openapi_routes() -> Router {
    Router::new().route(
        "/api/openapi.json",
        get(|| async { Json(ApiDoc::openapi()) }),
    )
}

/// Reads a request's body, at most [`MAX_BODY_BYTES`], before the handler
/// sees it; a larger one is drained (within mcp-session's bound) before its
/// `413 payload_too_large`, so that the answer reaches a client behind a
/// proxy that streams bodies (nginx, an AWS ALB) instead of a `502`
/// ([`mcp_session::body::read_body`]).
async fn limit_body(request: Request, next: Next) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match read_body(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(BodyError::TooLarge) => return ApiError::payload_too_large().into_response(),
        Err(error) => return ApiError::invalid(error.to_string()).into_response(),
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    next.run(request).await
}

/// Answers about a user's sessions are not to be cached (RFC 9111 §5.2.2.5).
async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The OpenAPI 3.1 document of the client-session API, generated from the
/// handlers' annotations.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "MCP hub: client sessions",
        description = "MCP client connections kept by the hub for web apps: create a client session, connect servers, list and call tools, get prompts, read resources. Every replica serves every client session; state lives in Redis. See docs/client-sessions.md.",
    ),
    paths(
        api::list_servers, api::create, api::list, api::get_one, api::delete_one,
        api::connect, api::disconnect, api::tools, api::call_tool, api::prompts,
        api::get_prompt, api::resources, api::read_resource,
    ),
    modifiers(&Security),
    security(("bearer" = []), ("apiKey" = [])),
)]
pub struct ApiDoc;

/// The schemes `mcp-session` accepts (a JWT bearer token or an API key),
/// and its `401` on every operation.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let unauthorized = ResponseBuilder::new()
            .description("no valid credentials (Authorization: Bearer <JWT>, or an API key)")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            for operation in [&mut item.get, &mut item.post, &mut item.delete]
                .into_iter()
                .flatten()
            {
                operation
                    .responses
                    .responses
                    .insert("401".to_owned(), unauthorized.clone().into());
            }
        }
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}
