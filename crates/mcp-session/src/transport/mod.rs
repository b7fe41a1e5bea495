//! The two MCP transports over HTTP, served side by side by every service.
//!
//! | path | methods | transport | protocol versions |
//! |---|---|---|---|
//! | `/mcp` | POST, GET, DELETE | [Streamable HTTP](streamable_http) | 2025-03-26 .. 2025-11-25 (sessions), 2026-07-28 (stateless) |
//! | `/sse` | GET | [HTTP+SSE](sse) | 2024-11-05 |
//! | `/messages?session_id=` | POST | [HTTP+SSE](sse) | 2024-11-05 |
//!
//! Both drive the same rmcp [`ServerHandler`](rmcp::ServerHandler) of the
//! service, and both keep their sessions in the
//! [`SessionStore`](crate::store::SessionStore).

pub mod errors;
pub(crate) mod response_stream;
pub(crate) mod sse;
pub mod streamable_http;
