//! The SSE response bodies of `/mcp`, watched for what resumption needs
//! (MCP 2025-06-18, Transports §Resumability and Redelivery):
//!
//! - **who owns a request's stream**: at the body's first event id, before
//!   the frame carrying it reaches the client, a `POST`'s response stream is
//!   bound to the session that sent it (`Mcp-Session-Id`, already checked),
//!   or marked as a request without a session (protocol 2026-07-28). Only
//!   that owner may resume it ([`events`](crate::events));
//! - **a client that left**: a body dropped before its end (the connection
//!   broke, the client went away) flushes the stream's events to Redis, and
//!   its later ones go there too, so that the client can resume it on any
//!   replica. A body that ended (its stream's response was written) changes
//!   nothing: the events stay in this replica's memory.
//! - **the events' JSON**: each event frame of a request stream carries its
//!   message as rmcp serialized it; the buffer keeps that JSON for the event
//!   instead of serializing the message again
//!   ([`Payload`](crate::events::buffer::Payload));
//! - **a stream the server closes**: when the request's tool asks for it
//!   (the `close` token; MCP 2025-11-25, Transports §Resumability, SEP-1699:
//!   a server may close a stream after its priming event, and the client
//!   polls it back with `Last-Event-ID`), the body ends as soon as at least
//!   one event went out, and the stream is treated as a client that left:
//!   what the request sends later waits in Redis for the client's `GET`,
//!   which any replica serves.
//!
//! The stream is known by the first `id:` field of the body's frames: our
//! event ids are `<stream_id>#<nonce>-<sequence>` (standalone streams'
//! `<session_id>:common#…` and the `initialize` answer's `0` are left
//! alone). Each frame is one whole SSE event whose `data:` is one line of
//! JSON, so an `id:` at the start of a line is the event's id field.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Response, header};
use http_body::{Body, Frame, SizeHint};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::{
    Fleet, StreamOwner,
    events::{is_standalone, stream_of},
};

impl Fleet {
    /// Watches `response`'s body if it is an SSE stream: when this replica
    /// shares its streams with a fleet, for its stream id and a client that
    /// leaves; `owner` (for a `POST`) is who may resume the request stream
    /// it carries. `close`, once cancelled, ends an SSE body after its first
    /// event (see the module docs). Other bodies pass unchanged.
    pub fn watch_response<B: Body>(
        &self,
        response: Response<B>,
        owner: Option<StreamOwner>,
        close: Option<CancellationToken>,
    ) -> Response<WatchedBody<B>> {
        let is_sse = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("text/event-stream"));
        let shared = is_sse && self.shares_streams();
        let fleet = self.clone();
        response.map(|inner| WatchedBody {
            inner,
            fleet,
            owner,
            stream: if shared { Seen::Looking } else { Seen::Other },
            ended: false,
            close: close
                .filter(|_| is_sse)
                .map(|token| Box::pin(token.cancelled_owned())),
            sent: false,
        })
    }
}

/// What the body has shown of its stream so far.
enum Seen {
    /// No event id yet.
    Looking,
    /// A request's response stream.
    Request(String),
    /// Another stream (standalone, or not ours): nothing to do.
    Other,
}

/// A response body watched for its stream's id and for a client that
/// leaves before its end (see the module docs).
pub struct WatchedBody<B: Body> {
    inner: B,
    fleet: Fleet,
    owner: Option<StreamOwner>,
    stream: Seen,
    ended: bool,
    /// Resolves when the request's tool closes its stream.
    close: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    /// Whether a frame went out yet.
    sent: bool,
}

/// The value of the first `id:` field in `frame`.
fn event_id(frame: &[u8]) -> Option<&str> {
    field(frame, b"id:")
}

/// The value of the first `name` field (`id:`, `data:`) in `frame`. Lines
/// are found with `memchr` (a frame's data line is an answer's whole JSON,
/// and every frame of a request stream is read here).
fn field<'a>(frame: &'a [u8], name: &[u8]) -> Option<&'a str> {
    let mut start = 0;
    let mut ends = memchr::memchr_iter(b'\n', frame).chain(std::iter::once(frame.len()));
    ends.find_map(|end| {
        let line = &frame[start..end];
        start = end + 1;
        let value = line.strip_prefix(name)?;
        let value = value.strip_prefix(b" ").unwrap_or(value);
        std::str::from_utf8(value).ok()
    })
}

impl<B: Body> WatchedBody<B> {
    /// Hands a request stream's event `frame` with id `id` (its message's
    /// JSON) to the buffer, which keeps that JSON for the event.
    fn framed(&self, id: &str, frame: &[u8]) {
        let Seen::Request(stream_id) = &self.stream else {
            return;
        };
        if let Some(data) = field(frame, b"data:")
            && !data.is_empty()
        {
            self.fleet.event_framed(stream_id, id, data);
        }
    }

    fn look(&mut self, id: &str) {
        self.stream = match stream_of(id) {
            Some(stream_id) if !is_standalone(stream_id) => {
                if let Some(owner) = self.owner.take() {
                    self.fleet.stream_opened(stream_id, owner);
                }
                Seen::Request(stream_id.to_owned())
            }
            _ => Seen::Other,
        };
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for WatchedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if self.sent
            && let Some(close) = &mut self.close
            && close.as_mut().poll(cx).is_ready()
        {
            // The server closes the stream: as if the client left, so that
            // the rest of it waits for the client's resumption.
            self.close = None;
            if let Seen::Request(stream_id) = &self.stream {
                self.fleet.stream_disconnected(stream_id);
            }
            self.stream = Seen::Other;
            self.ended = true;
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.ended = true,
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref()
                    && let Some(id) = event_id(data)
                {
                    if matches!(self.stream, Seen::Looking) {
                        self.look(id);
                    }
                    self.framed(id, data);
                }
                self.sent = true;
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: Body> Drop for WatchedBody<B> {
    fn drop(&mut self) {
        if !self.ended
            && !self.inner.is_end_stream()
            && let Seen::Request(stream_id) = &self.stream
        {
            self.fleet.stream_disconnected(stream_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{event_id, field};

    #[test]
    fn the_event_id_is_the_id_field_of_a_frame() {
        assert_eq!(
            event_id(b"data: \nid: 5c1d#ab12-7\nretry: 3000\n\n"),
            Some("5c1d#ab12-7")
        );
        assert_eq!(
            event_id(b"data: {\"jsonrpc\":\"2.0\",\"id\":1}\nid: s#n-1\n\n"),
            Some("s#n-1")
        );
        // A JSON-RPC "id" inside the data line is not the event's id.
        assert_eq!(event_id(b"data: {\"id: 3\"}\n\n"), None);
        assert_eq!(event_id(b":\n\n"), None);
        assert_eq!(event_id(b"id:x#n-0\n\n"), Some("x#n-0"));
    }

    #[test]
    fn the_data_is_the_data_field_of_a_frame() {
        let frame = b"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\nid: s#n-1\n\n";
        assert_eq!(
            field(frame, b"data:"),
            Some(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#)
        );
        // A priming event: an empty data field.
        assert_eq!(
            field(b"data: \nid: s#n-0\nretry: 3000\n\n", b"data:"),
            Some("")
        );
        assert_eq!(field(b":\n\n", b"data:"), None);
    }
}
