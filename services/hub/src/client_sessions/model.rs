//! The client-session API's JSON shapes, as the OpenAPI document describes
//! them. Names are camelCase; MCP results (`CallToolResult`,
//! `GetPromptResult`, `ReadResourceResult`, and tools, prompts and resources
//! in lists) pass through as the upstream sent them (MCP 2025-11-25,
//! Server Features), with the `server` they came from added to list items.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

/// A client session: what a web app's user has connected, kept by the hub.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientSession {
    /// Its id, `cs_` and 32 hex digits, issued by the hub (122 random bits).
    #[schema(example = "cs_6f1c0e4a9b2d4c8e8f3a5b7c9d1e2f30")]
    pub id: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it expires unless used again (RFC 3339): every request naming
    /// it moves this `CLIENT_SESSION_TTL_SECONDS` ahead.
    pub expires_at: String,
    /// The servers connected in it.
    pub connections: Vec<Connection>,
}

/// Whether a connection is a configured server or a URL the user gave.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionKind {
    /// One of the hub's configured upstreams, by name.
    Configured,
    /// A URL the operator's `allowed_urls` allow.
    Url,
}

/// One server connected in a client session.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// The name requests use for it.
    pub server: String,
    /// A configured server or a URL.
    pub kind: ConnectionKind,
    /// The URL, for a `url` connection.
    pub url: Option<String>,
    /// How the URL is spoken to, for a `url` connection.
    pub transport: Option<UrlTransport>,
    /// When it was connected (RFC 3339).
    pub connected_at: String,
    /// The names of the headers stored (sealed) for it; their values are
    /// never returned.
    pub credential_headers: Vec<String>,
}

/// The caller's client sessions.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientSessionList {
    /// Live client sessions, oldest first.
    pub client_sessions: Vec<ClientSession>,
}

/// A configured server a client session may connect by name.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Server {
    /// Its name.
    pub name: String,
    /// What the operator wrote about it.
    pub description: Option<String>,
    /// `streamable-http`, `stateless`, `sse` or `stdio`.
    pub transport: String,
}

/// The configured servers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServerList {
    /// By name.
    pub servers: Vec<Server>,
}

/// How a URL a user connects is spoken to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum UrlTransport {
    /// Streamable HTTP with `Mcp-Session-Id` sessions (MCP 2025-03-26 to
    /// 2025-11-25), the default.
    #[default]
    StreamableHttp,
    /// Streamable HTTP without sessions (MCP 2026-07-28): every request
    /// carries its `_meta`.
    Stateless,
}

/// `POST …/connect`: a configured server by name, or a URL under a name of
/// the caller's choosing, with headers to send it (stored sealed).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectRequest {
    /// A configured server's name, or the name to give `url`
    /// (`[A-Za-z0-9_-]`, at most 64 characters).
    #[schema(example = "calculator")]
    pub server: String,
    /// An `http`/`https` URL of an MCP server (Streamable HTTP), allowed by
    /// the hub's `client_sessions.allowed_urls`.
    pub url: Option<String>,
    /// How `url` is spoken to (`streamable-http` unless given; only with
    /// `url`).
    pub transport: Option<UrlTransport>,
    /// Headers sent with every request to it (a credential for that
    /// server): for a configured server only those it takes from callers
    /// (`forward_headers`). At most 16, each value at most 8 KiB.
    pub headers: Option<BTreeMap<String, String>>,
}

/// `POST …/disconnect`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisconnectRequest {
    /// The connected server's name.
    pub server: String,
}

/// Which connected servers a list covers.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// One connected server; all of them when absent.
    pub server: Option<String>,
}

/// A connected server left out of a list because it did not answer: its
/// error as the API would answer it alone (the shape of [`super::error::ErrorBody`]).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Unavailable {
    /// The server.
    pub server: String,
    /// The error's code (`upstream_unreachable`, …).
    pub error: String,
    /// Why.
    pub error_description: String,
}

/// Tools of the connected servers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ToolList {
    /// MCP `Tool` objects (name, description, inputSchema, …), each with
    /// its `server`.
    #[schema(value_type = Vec<Object>)]
    pub tools: Vec<Value>,
    /// Servers that could not be listed (only when listing all).
    pub unavailable: Vec<Unavailable>,
}

/// Prompts of the connected servers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PromptList {
    /// MCP `Prompt` objects, each with its `server`.
    #[schema(value_type = Vec<Object>)]
    pub prompts: Vec<Value>,
    /// Servers that could not be listed.
    pub unavailable: Vec<Unavailable>,
}

/// Resources of the connected servers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResourceList {
    /// MCP `Resource` objects, each with its `server`.
    #[schema(value_type = Vec<Object>)]
    pub resources: Vec<Value>,
    /// Servers that could not be listed.
    pub unavailable: Vec<Unavailable>,
}

/// `POST …/tools`: calls a tool (MCP `tools/call`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallToolRequest {
    /// The connected server.
    pub server: String,
    /// The tool's name on that server.
    #[schema(example = "add")]
    pub name: String,
    /// Its arguments, as its `inputSchema` describes.
    #[schema(value_type = Option<Object>)]
    pub arguments: Option<Map<String, Value>>,
}

/// `POST …/prompts`: gets a prompt (MCP `prompts/get`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GetPromptRequest {
    /// The connected server.
    pub server: String,
    /// The prompt's name on that server.
    pub name: String,
    /// Its arguments.
    pub arguments: Option<BTreeMap<String, String>>,
}

/// `POST …/resources`: reads a resource (MCP `resources/read`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadResourceRequest {
    /// The connected server.
    pub server: String,
    /// The resource's URI.
    pub uri: String,
}
