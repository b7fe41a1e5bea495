//! Opening an HTTP+SSE session (MCP 2024-11-05, Transports §HTTP with SSE):
//! the client `GET`s the SSE endpoint, the server names a message endpoint
//! in its first event (`endpoint`), the client POSTs every message there,
//! and every answer comes back on the stream. The stream is read by a task
//! of its own until it ends.

use std::sync::Arc;

use futures::StreamExt;
use http::{HeaderName, HeaderValue, header};
use serde_json::Value;
use sse_stream::SseStream;

use super::{Connection, Outbound};
use crate::{
    config::Upstream,
    upstream::{Route, http::UpstreamError},
};

/// The events of an SSE stream.
type Events = futures::stream::BoxStream<'static, Result<sse_stream::Sse, sse_stream::Error>>;

/// Where an HTTP+SSE session's messages are POSTed, with the headers every
/// request of the route carries.
pub struct MessageEndpoint {
    client: reqwest::Client,
    url: url::Url,
    upstream: Upstream,
    headers: Vec<(HeaderName, HeaderValue)>,
}

fn unreachable(upstream: &Upstream, error: &reqwest::Error) -> UpstreamError {
    UpstreamError::Unreachable(if error.is_timeout() {
        format!("no answer within {} ms", upstream.timeout.as_millis())
    } else if error.is_connect() {
        "cannot connect".to_owned()
    } else {
        "the connection failed".to_owned()
    })
}

impl MessageEndpoint {
    /// POSTs `message`; the session is gone on `404`.
    pub(super) async fn post(&self, message: &Value) -> Result<(), UpstreamError> {
        let mut request = self
            .client
            .post(self.url.clone())
            .timeout(self.upstream.timeout)
            .json(message);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|error| unreachable(&self.upstream, &error))?;
        match response.status().as_u16() {
            200..=299 => Ok(()),
            404 => Err(UpstreamError::SessionGone { status: 404 }),
            status => Err(UpstreamError::Http {
                status,
                message: response
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect(),
            }),
        }
    }
}

/// Opens the route's stream, reads its message endpoint and starts reading
/// it: a connection ready for `initialize`.
///
/// # Errors
/// The upstream could not be reached, refused the stream, or named no
/// usable message endpoint (one on another origin would receive the
/// route's credentials: refused).
pub async fn open(
    client: &reqwest::Client,
    route: &Route<'_>,
) -> Result<Arc<Connection>, UpstreamError> {
    let upstream = route.upstream;
    let headers: Vec<(HeaderName, HeaderValue)> = upstream
        .headers
        .iter()
        .chain(route.forwarded.iter())
        .cloned()
        .collect();
    let mut request = client
        .get(upstream.url.clone())
        .header(header::ACCEPT, "text/event-stream");
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    let timed_out = || {
        UpstreamError::Unreachable(format!(
            "no answer within {} ms",
            upstream.timeout.as_millis()
        ))
    };
    let response = tokio::time::timeout(upstream.timeout, request.send())
        .await
        .map_err(|_| timed_out())?
        .map_err(|error| unreachable(upstream, &error))?;
    if !response.status().is_success() {
        return Err(UpstreamError::Http {
            status: response.status().as_u16(),
            message: "the SSE endpoint refused the stream".to_owned(),
        });
    }
    let mut events: Events = SseStream::from_bytes_stream(response.bytes_stream()).boxed();
    let endpoint = tokio::time::timeout(upstream.timeout, async {
        while let Some(Ok(event)) = events.next().await {
            if event.event.as_deref() == Some("endpoint") {
                return event.data;
            }
        }
        None
    })
    .await
    .map_err(|_| timed_out())?
    .ok_or_else(|| {
        UpstreamError::Protocol("the SSE stream named no message endpoint".to_owned())
    })?;
    let url = upstream.url.join(endpoint.trim()).map_err(|_| {
        UpstreamError::Protocol("the SSE stream named an unusable message endpoint".to_owned())
    })?;
    if url.origin() != upstream.url.origin() {
        return Err(UpstreamError::Protocol(
            "the SSE stream named a message endpoint on another origin".to_owned(),
        ));
    }
    let connection = Connection::new(Outbound::Post(Box::new(MessageEndpoint {
        client: client.clone(),
        url,
        upstream: upstream.clone(),
        headers,
    })));
    tokio::spawn(read(events, connection.clone()));
    Ok(connection)
}

/// Reads the stream until it ends, handing each message to the connection.
async fn read(mut events: Events, connection: Arc<Connection>) {
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            () = connection.closed().cancelled() => None,
        };
        let Some(Ok(event)) = event else { break };
        let Some(data) = event.data.filter(|d| !d.trim().is_empty()) else {
            continue;
        };
        if let Ok(message) = serde_json::from_str::<Value>(&data) {
            connection.dispatch(message).await;
        }
    }
    connection.close();
}
