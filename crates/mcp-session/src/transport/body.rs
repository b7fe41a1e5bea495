//! Reading a request body ourselves within a limit in bytes, and refusing a
//! body over it with `413` so that its connection closes cleanly:
//! [`read_limited`] where a transport must see the body before (or instead
//! of) rmcp (an HTTP+SSE `POST /messages`, a `subscriptions/listen`
//! request), [`refuse_oversized`] before rmcp's own `/mcp` limit, and
//! [`read_body`] for services' own routes (the hub's client-session API).
//! The limit is `MAX_REQUEST_BODY_BYTES` on the transports; the answers
//! match rmcp's for the same failures.
//!
//! # Why a refused body is drained
//!
//! A server that answers `413` after reading `limit` bytes leaves the rest
//! of the body unread. hyper then closes the connection, discarding only
//! what it has already buffered, and since unread data is left in the
//! socket's receive buffer the kernel closes it with a TCP RST instead of a
//! FIN (RFC 1122 §4.2.2.13). A proxy that streams the body upstream (nginx with
//! `proxy_request_buffering off`, an AWS ALB) can see the RST, as a failed
//! write of the body, before it reads the `413`, and answers its client
//! `502 Bad Gateway` instead.
//!
//! So the rest of a refused body is read and dropped frame by frame (never
//! held in memory) before the `413` is sent: up to [`DRAIN_LIMITS`] times
//! the limit more bytes, for at most [`DRAIN_TIME`], whichever comes first.
//! The connection then closes cleanly (or stays open for the next request).
//! A body longer than that gets its `413` all the same, and its connection
//! may close abruptly: a client sending more than five times the limit pays
//! for it, not the server. A body whose length (`Content-Length`) is over
//! the limit is refused without keeping any of it, and without reading it
//! when it is over the bound too.

use std::time::Duration;

use axum::{
    body::Body,
    extract::Request,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use http_body::Body as _;
use http_body_util::{BodyExt, LengthLimitError, Limited};

/// After a body went over its limit, at most this many times the limit more
/// bytes of it are read (and dropped) before the `413`: 1 MiB past the hub's
/// 256 KiB, 16 MiB past the default 4 MiB of `MAX_REQUEST_BODY_BYTES`.
pub(crate) const DRAIN_LIMITS: usize = 4;

/// The longest a refused body is drained before the `413` is sent anyway,
/// so that a slow client does not hold the request longer.
pub(crate) const DRAIN_TIME: Duration = Duration::from_secs(2);

/// Why [`read_body`] read no body.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body is over the limit (what could be of the rest was drained).
    #[error("the body is over the limit")]
    TooLarge,
    /// The body could not be read: the client went away mid-body, a broken
    /// chunked encoding.
    #[error("the body could not be read: {0}")]
    Unreadable(axum::BoxError),
}

/// The whole of `body`, at most `limit` bytes; the rest of a body over
/// `limit` is read and dropped (up to 4 times `limit` more bytes, for at most
/// 2 s: `DRAIN_LIMITS`, `DRAIN_TIME`) before the answer, so that the `413`
/// the caller sends reaches the client through a proxy that streams the body
/// (nginx, an AWS ALB) rather than a `502` after a TCP RST (see
/// `transport/body.rs`). Both a `Content-Length` over `limit` (refused without
/// keeping any of the body) and a chunked body that grows over it are
/// [`BodyError::TooLarge`].
///
/// # Errors
/// [`BodyError::TooLarge`] over `limit`, [`BodyError::Unreadable`] when the
/// body could not be read.
pub async fn read_body(mut body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let past_limit = limit.saturating_mul(DRAIN_LIMITS);
    // hyper's body knows its `Content-Length`.
    let length = body.size_hint().lower();
    if length > limit as u64 {
        if length <= limit.saturating_add(past_limit) as u64 {
            drain(&mut body, limit.saturating_add(past_limit)).await;
        }
        return Err(BodyError::TooLarge);
    }
    match Limited::new(&mut body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => {
            drain(&mut body, past_limit).await;
            Err(BodyError::TooLarge)
        }
        Err(error) => Err(BodyError::Unreadable(error)),
    }
}

/// Reads and drops `body` to its end: at most `budget` bytes, for at most
/// [`DRAIN_TIME`].
async fn drain(body: &mut Body, budget: usize) {
    let to_end = async {
        let mut left = budget;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            let read = frame.data_ref().map_or(0, Bytes::len);
            let Some(rest) = left.checked_sub(read) else {
                return false;
            };
            left = rest;
        }
        true
    };
    let drained = tokio::time::timeout(DRAIN_TIME, to_end)
        .await
        .unwrap_or(false);
    if !drained {
        tracing::debug!(
            budget,
            "a body over the limit was refused before its end: its connection may close with a reset"
        );
    }
}

/// rmcp's answer to a body over `limit` (`expect_json` in rmcp's
/// `server_side_http`): `413`, plain text, no content type.
fn payload_too_large(limit: usize) -> Response {
    let mut response = Response::new(Body::from(format!(
        "Payload Too Large: request body exceeds {limit} bytes"
    )));
    *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    response
}

fn unreadable(error: &axum::BoxError) -> Response {
    (StatusCode::BAD_REQUEST, format!("Bad Request: {error}")).into_response()
}

/// The whole of `body`, at most `limit` bytes ([`read_body`]).
///
/// # Errors
/// The response to send instead: `413 Payload Too Large` over `limit`,
/// `400 Bad Request` when the body could not be read (the client went away
/// mid-body, a broken chunked encoding).
pub(crate) async fn read_limited(body: Body, limit: usize) -> Result<Bytes, Response> {
    read_body(body, limit).await.map_err(|error| match error {
        BodyError::TooLarge => payload_too_large(limit),
        BodyError::Unreadable(error) => unreadable(&error),
    })
}

/// rmcp's `413` for a `/mcp` body over `limit` (`MAX_REQUEST_BODY_BYTES`),
/// given before rmcp reads the body, with the body drained first (see the
/// module documentation): rmcp stops reading at the limit. A request whose
/// length (`Content-Length`) is known and within `limit`, or that has no
/// body, passes untouched; one of unknown length (chunked) is read here,
/// within `limit`, and passes with the bytes read.
///
/// # Errors
/// The response to send instead: `413` with rmcp's text over `limit`, `400`
/// when a chunked body could not be read.
pub(crate) async fn refuse_oversized(request: Request, limit: usize) -> Result<Request, Response> {
    let hint = request.body().size_hint();
    if request.body().is_end_stream() || hint.upper().is_some_and(|upper| upper <= limit as u64) {
        return Ok(request);
    }
    let (parts, body) = request.into_parts();
    match read_body(body, limit).await {
        Ok(bytes) => Ok(Request::from_parts(parts, Body::from(bytes))),
        Err(BodyError::TooLarge) => Err(payload_too_large(limit)),
        Err(BodyError::Unreadable(error)) => Err(unreadable(&error)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use futures::{Stream, StreamExt, stream};

    use super::*;

    const LIMIT: usize = 1024;
    const FRAME: usize = 256;

    /// A body of unknown length (chunked) made of `frames`, and the bytes
    /// the server read of it so far.
    fn counted(frames: impl Stream<Item = Bytes> + Send + 'static) -> (Body, Arc<AtomicUsize>) {
        let read = Arc::new(AtomicUsize::new(0));
        let counter = read.clone();
        let body = Body::from_stream(frames.map(move |frame| {
            counter.fetch_add(frame.len(), Ordering::SeqCst);
            Ok::<_, std::io::Error>(frame)
        }));
        (body, read)
    }

    fn frames(bytes: usize) -> impl Stream<Item = Bytes> + Send + 'static {
        stream::iter(
            (0..bytes.div_ceil(FRAME))
                .map(move |index| Bytes::from(vec![b'x'; FRAME.min(bytes - index * FRAME)])),
        )
    }

    /// A body of `Content-Length: bytes`, and the bytes read of it.
    fn sized(bytes: usize) -> (Body, Arc<AtomicUsize>) {
        struct Sized<S>(S, u64);
        impl<S: Stream<Item = Bytes> + Unpin> http_body::Body for Sized<S> {
            type Data = Bytes;
            type Error = std::io::Error;
            fn poll_frame(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
                self.0
                    .poll_next_unpin(cx)
                    .map(|frame| frame.map(|data| Ok(http_body::Frame::data(data))))
            }
            fn size_hint(&self) -> http_body::SizeHint {
                http_body::SizeHint::with_exact(self.1)
            }
        }
        let read = Arc::new(AtomicUsize::new(0));
        let counter = read.clone();
        let frames = frames(bytes).map(move |frame| {
            counter.fetch_add(frame.len(), Ordering::SeqCst);
            frame
        });
        (Body::new(Sized(Box::pin(frames), bytes as u64)), read)
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole() {
        let (body, _) = counted(frames(LIMIT));
        assert_eq!(read_body(body, LIMIT).await.unwrap().len(), LIMIT);
        let (body, _) = sized(LIMIT);
        assert_eq!(read_body(body, LIMIT).await.unwrap().len(), LIMIT);
    }

    #[tokio::test]
    async fn a_body_slightly_over_the_limit_is_drained_to_its_end() {
        let (body, read) = counted(frames(LIMIT + 3 * FRAME));
        assert!(matches!(
            read_body(body, LIMIT).await,
            Err(BodyError::TooLarge)
        ));
        assert_eq!(read.load(Ordering::SeqCst), LIMIT + 3 * FRAME);
        // Up to the bound, with a length: nothing kept, everything read.
        let bound = LIMIT * (1 + DRAIN_LIMITS);
        let (body, read) = sized(bound);
        assert!(matches!(
            read_body(body, LIMIT).await,
            Err(BodyError::TooLarge)
        ));
        assert_eq!(read.load(Ordering::SeqCst), bound);
    }

    #[tokio::test]
    async fn a_body_over_the_bound_is_refused_without_reading_it_all() {
        let (endless, read) = counted(stream::repeat(Bytes::from(vec![b'x'; FRAME])));
        assert!(matches!(
            read_body(endless, LIMIT).await,
            Err(BodyError::TooLarge)
        ));
        let read = read.load(Ordering::SeqCst);
        assert!(
            (LIMIT * (1 + DRAIN_LIMITS)..=LIMIT * (1 + DRAIN_LIMITS) + 2 * FRAME).contains(&read),
            "{read} bytes read"
        );
        // A length over the bound: not read at all.
        let (body, read) = sized(LIMIT * (1 + DRAIN_LIMITS) + 1);
        assert!(matches!(
            read_body(body, LIMIT).await,
            Err(BodyError::TooLarge)
        ));
        assert_eq!(read.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_over_the_limit_is_refused_after_the_drain_time() {
        let (stalled, read) = counted(frames(LIMIT + 3 * FRAME).chain(stream::pending()));
        let started = tokio::time::Instant::now();
        assert!(matches!(
            read_body(stalled, LIMIT).await,
            Err(BodyError::TooLarge)
        ));
        assert_eq!(started.elapsed(), DRAIN_TIME);
        assert_eq!(read.load(Ordering::SeqCst), LIMIT + 3 * FRAME);
    }

    #[tokio::test]
    async fn refuse_oversized_answers_as_rmcp_and_passes_the_rest() {
        let request = |body| Request::post("/mcp").body(body).unwrap();
        // Within the limit, with a length: untouched, unread.
        let (body, read) = sized(LIMIT);
        let passed = refuse_oversized(request(body), LIMIT).await.unwrap();
        assert_eq!(read.load(Ordering::SeqCst), 0);
        assert_eq!(
            passed.into_body().collect().await.unwrap().to_bytes().len(),
            LIMIT
        );
        // Chunked within the limit: read, and passed on.
        let (body, _) = counted(frames(LIMIT));
        let passed = refuse_oversized(request(body), LIMIT).await.unwrap();
        assert_eq!(
            passed.into_body().collect().await.unwrap().to_bytes().len(),
            LIMIT
        );
        // Over it, with a length or chunked: rmcp's 413, the body drained.
        let over = LIMIT + FRAME + 1;
        for (body, read) in [sized(over), counted(frames(over))] {
            let refused = refuse_oversized(request(body), LIMIT).await.unwrap_err();
            assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
            assert!(refused.headers().get("content-type").is_none());
            let text = refused.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(text, "Payload Too Large: request body exceeds 1024 bytes");
            assert_eq!(read.load(Ordering::SeqCst), over);
        }
    }
}
