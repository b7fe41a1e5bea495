//! A cap on the size of each message the database sends, enforced on the
//! connection's byte stream before tokio-postgres buffers the message.
//!
//! tokio-postgres reads a whole backend message into memory before anything
//! else sees it: one `SELECT repeat('x', 300000000)` costs the service a
//! 300 MB buffer, whatever the result caps do afterwards, and a few at once
//! can kill the pod. So every connection of the service's pools is made here
//! ([`GuardedConnect`]): the socket (and, with TLS, the decrypted stream
//! inside it) is wrapped in a [`GuardedStream`] that follows the protocol's
//! message framing (PostgreSQL docs, "Frontend/Backend Protocol", Message
//! Formats: a type byte, then a 4-byte big-endian length that counts itself) and fails the connection, with an
//! I/O error naming the size, as soon as a message header announces more
//! than the cap. Only that connection is lost (the pool replaces it); the
//! statement that produced the message is cancelled with it.
//!
//! The stream understands the one place where the protocol is not framed:
//! the server's one-byte answer to an `SSLRequest` (`S`: TLS follows, so
//! framing is followed inside TLS instead; `N`: plain messages follow).

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use deadpool_postgres::Connect;
use futures::future::BoxFuture;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_postgres::{
    Client, Config, Error,
    config::Host,
    tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream},
};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The `SSLRequest` code (PostgreSQL docs, "Frontend/Backend Protocol",
/// SSL Session Encryption).
const SSL_REQUEST_CODE: u32 = 80_877_103;

/// Counts the messages refused for their size, over every connection of a
/// [`Database`](crate::Database): a query whose connection failed while the
/// count grew was most likely the one that asked for the huge value.
#[derive(Debug, Default)]
pub struct Oversized(AtomicU64);

impl Oversized {
    /// Messages refused so far.
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Where the reader is in the server's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Before the first message: decided by what the client sends first.
    Start,
    /// The next byte is the server's answer to an `SSLRequest`.
    SslAnswer,
    /// TLS follows: encrypted bytes, not framed here.
    Encrypted,
    /// `have` bytes of a message header read so far (`header`).
    Header { have: usize },
    /// `left` bytes of the current message body still to pass.
    Body { left: usize },
}

/// A stream that fails when the server sends a message over `cap` bytes.
pub struct GuardedStream<S> {
    inner: S,
    cap: usize,
    reading: Reading,
    header: [u8; 5],
    /// The client's first 8 bytes (to recognise an `SSLRequest`).
    first: [u8; 8],
    first_len: usize,
    oversized: Arc<Oversized>,
}

impl<S> GuardedStream<S> {
    /// Wraps `inner`; `framed` when the stream starts with framed messages
    /// (inside TLS), `false` for a socket (an `SSLRequest` may come first).
    fn new(inner: S, cap: usize, framed: bool, oversized: Arc<Oversized>) -> Self {
        Self {
            inner,
            cap,
            reading: if framed {
                Reading::Header { have: 0 }
            } else {
                Reading::Start
            },
            header: [0; 5],
            first: [0; 8],
            first_len: 0,
            oversized,
        }
    }

    /// Follows the framing over `bytes`, just read from the server.
    fn follow(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match self.reading {
                Reading::Encrypted => return Ok(()),
                Reading::Start => {
                    // The client writes first; without an SSLRequest the
                    // stream is framed from its first byte.
                    self.reading = if self.sent_ssl_request() {
                        Reading::SslAnswer
                    } else {
                        Reading::Header { have: 0 }
                    };
                }
                Reading::SslAnswer => match bytes[0] {
                    b'S' => self.reading = Reading::Encrypted,
                    b'N' => {
                        self.reading = Reading::Header { have: 0 };
                        bytes = &bytes[1..];
                    }
                    // An old server's ErrorResponse: a framed message.
                    _ => self.reading = Reading::Header { have: 0 },
                },
                Reading::Header { have } => {
                    let take = (5 - have).min(bytes.len());
                    self.header[have..have + take].copy_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if have + take < 5 {
                        self.reading = Reading::Header { have: have + take };
                        continue;
                    }
                    let length = u32::from_be_bytes([
                        self.header[1],
                        self.header[2],
                        self.header[3],
                        self.header[4],
                    ]) as usize;
                    if length > self.cap {
                        self.oversized.0.fetch_add(1, Ordering::Relaxed);
                        return Err(io::Error::other(format!(
                            "the database sent a {length}-byte message (type {:?}), over the \
                             {}-byte cap (PG_MAX_RESULT_BYTES)",
                            char::from(self.header[0]),
                            self.cap
                        )));
                    }
                    self.reading = Reading::Body {
                        left: length.saturating_sub(4),
                    };
                }
                Reading::Body { left } => {
                    let take = left.min(bytes.len());
                    bytes = &bytes[take..];
                    self.reading = Reading::Body { left: left - take };
                }
            }
            if self.reading == (Reading::Body { left: 0 }) {
                self.reading = Reading::Header { have: 0 };
            }
        }
        Ok(())
    }

    fn sent_ssl_request(&self) -> bool {
        self.first_len == 8
            && self.first[..4] == 8u32.to_be_bytes()
            && self.first[4..] == SSL_REQUEST_CODE.to_be_bytes()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for GuardedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = buf.filled()[before..].to_vec();
                if let Err(error) = this.follow(&read) {
                    buf.set_filled(before);
                    return Poll::Ready(Err(error));
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GuardedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(count)) = written
            && this.first_len < this.first.len()
        {
            let take = (this.first.len() - this.first_len).min(count);
            this.first[this.first_len..this.first_len + take].copy_from_slice(&data[..take]);
            this.first_len += take;
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S: TlsStream + Unpin> TlsStream for GuardedStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        self.inner.channel_binding()
    }
}

/// The socket of a connection: TCP, or a Unix-domain socket (a `host` that
/// is a directory, as libpq reads it).
pub enum Socket {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix-domain socket.
    Unix(tokio::net::UnixStream),
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_read(cx, buf),
            Self::Unix(stream) => Pin::new(stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_write(cx, data),
            Self::Unix(stream) => Pin::new(stream).poll_write(cx, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_flush(cx),
            Self::Unix(stream) => Pin::new(stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_shutdown(cx),
            Self::Unix(stream) => Pin::new(stream).poll_shutdown(cx),
        }
    }
}

/// A TLS connector whose streams are guarded inside the encryption.
pub struct GuardedTls<T> {
    inner: T,
    cap: usize,
    oversized: Arc<Oversized>,
}

impl<S, T> TlsConnect<S> for GuardedTls<T>
where
    T: TlsConnect<S>,
    T::Future: Send + 'static,
    T::Stream: Send + 'static,
{
    type Stream = GuardedStream<T::Stream>;
    type Error = T::Error;
    type Future = BoxFuture<'static, Result<Self::Stream, T::Error>>;

    fn connect(self, stream: S) -> Self::Future {
        let (cap, oversized) = (self.cap, self.oversized);
        let handshake = self.inner.connect(stream);
        Box::pin(async move {
            let stream = handshake.await?;
            Ok(GuardedStream::new(stream, cap, true, oversized))
        })
    }
}

/// Makes the pools' connections: its own socket, guarded, then
/// tokio-postgres's start-up (TLS as `sslmode` says) over it.
pub struct GuardedConnect {
    tls: MakeRustlsConnect,
    cap: usize,
    oversized: Arc<Oversized>,
}

impl GuardedConnect {
    /// Connections over `tls` whose messages may not exceed `cap` bytes;
    /// refusals are counted in `oversized`.
    pub fn new(tls: MakeRustlsConnect, cap: usize, oversized: Arc<Oversized>) -> Self {
        Self {
            tls,
            cap,
            oversized,
        }
    }
}

/// Opens a socket to the first of `config`'s hosts that answers; returns it
/// with the host's name (for TLS), or `None` when none does.
async fn open_socket(config: &Config) -> Option<(Socket, String)> {
    let ports = config.get_ports();
    let timeout = config
        .get_connect_timeout()
        .copied()
        .unwrap_or(Duration::from_secs(30));
    for (index, host) in config.get_hosts().iter().enumerate() {
        let port = ports.get(index).or(ports.first()).copied().unwrap_or(5432);
        let opened = match host {
            Host::Tcp(name) => {
                tokio::time::timeout(timeout, TcpStream::connect((name.as_str(), port)))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .map(|stream| {
                        let _ = stream.set_nodelay(true);
                        (Socket::Tcp(stream), name.clone())
                    })
            }
            Host::Unix(directory) => {
                let path = directory.join(format!(".s.PGSQL.{port}"));
                tokio::time::timeout(timeout, tokio::net::UnixStream::connect(path))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .map(|stream| (Socket::Unix(stream), String::new()))
            }
        };
        if opened.is_some() {
            return opened;
        }
    }
    None
}

impl Connect for GuardedConnect {
    fn connect(
        &self,
        config: &Config,
    ) -> BoxFuture<'_, Result<(Client, tokio::task::JoinHandle<()>), Error>> {
        let config = config.clone();
        let mut tls = self.tls.clone();
        let (cap, oversized) = (self.cap, self.oversized.clone());
        Box::pin(async move {
            let Some((socket, host)) = open_socket(&config).await else {
                // No host answered: tokio-postgres tries them again and
                // reports why, in its own words.
                let (client, connection) = config.connect(tls).await?;
                return Ok((client, spawn(connection)));
            };
            // A host name rustls cannot use fails the handshake (with
            // sslmode=require or verify-*), as with tokio-postgres's connect.
            let inner = MakeTlsConnect::<GuardedStream<Socket>>::make_tls_connect(&mut tls, &host)
                .unwrap_or_else(|never| match never {});
            let guarded = GuardedStream::new(socket, cap, false, oversized.clone());
            let tls = GuardedTls {
                inner,
                cap,
                oversized,
            };
            let (client, connection) = config.connect_raw(guarded, tls).await?;
            Ok((client, spawn(connection)))
        })
    }
}

/// Runs a connection's I/O until it ends, saying why when it failed.
fn spawn<F, E>(connection: F) -> tokio::task::JoinHandle<()>
where
    F: std::future::Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display,
{
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::info!(%error, "database connection closed");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(framed: bool) -> GuardedStream<()> {
        GuardedStream::new((), 100, framed, Arc::default())
    }

    fn message(kind: u8, body: usize) -> Vec<u8> {
        let mut bytes = vec![kind];
        bytes.extend_from_slice(&u32::try_from(body + 4).unwrap().to_be_bytes());
        bytes.extend(std::iter::repeat_n(b'x', body));
        bytes
    }

    #[test]
    fn messages_under_the_cap_pass_in_any_split() {
        let mut bytes = message(b'D', 90);
        bytes.extend(message(b'C', 10));
        bytes.extend(message(b'Z', 1));
        for split in 1..bytes.len() {
            let mut guard = stream(true);
            for chunk in bytes.chunks(split) {
                guard.follow(chunk).unwrap();
            }
            assert_eq!(guard.reading, Reading::Header { have: 0 }, "split {split}");
        }
    }

    #[test]
    fn a_header_over_the_cap_fails_whatever_its_split() {
        let mut bytes = message(b'D', 10);
        bytes.extend(&message(b'D', 200)[..5]);
        for split in 1..bytes.len() {
            let mut guard = stream(true);
            let failed = bytes
                .chunks(split)
                .any(|chunk| guard.follow(chunk).is_err());
            assert!(failed, "split {split}");
            assert_eq!(guard.oversized.count(), 1);
        }
    }

    #[test]
    fn the_answer_to_an_ssl_request_is_not_framed() {
        let ssl_request = [&8u32.to_be_bytes()[..], &SSL_REQUEST_CODE.to_be_bytes()].concat();
        // `N`: plain messages follow, guarded.
        let mut plain = stream(false);
        plain.first.copy_from_slice(&ssl_request);
        plain.first_len = 8;
        let mut bytes = vec![b'N'];
        bytes.extend(message(b'R', 8));
        plain.follow(&bytes).unwrap();
        assert!(plain.follow(&message(b'D', 500)[..5]).is_err());
        // `S`: TLS follows; the bytes are not framed here.
        let mut tls = stream(false);
        tls.first.copy_from_slice(&ssl_request);
        tls.first_len = 8;
        tls.follow(&[b'S', 0x16, 0x03, 0x03, 0xff, 0xff]).unwrap();
        assert_eq!(tls.reading, Reading::Encrypted);
        // No SSLRequest: framed from the first byte.
        let mut direct = stream(false);
        direct.first_len = 8;
        assert!(direct.follow(&message(b'E', 500)[..5]).is_err());
    }
}
