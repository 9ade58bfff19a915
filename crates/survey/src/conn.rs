//! One bounded conversation with a device: a deadline for the whole conversation, a timeout per
//! read, and a cap on the bytes it may send us. A hostile device (tarpit, endless output, garbage)
//! costs one small buffer and at most the conversation deadline, never more.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use botscope_scope::{ConnectError, OutOfScope, Scope};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How long and how much one conversation may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// TCP connect timeout.
    pub connect: Duration,
    /// Longest wait for the next bytes.
    pub read: Duration,
    /// Longest a whole conversation (one connection) may last.
    pub conversation: Duration,
    /// Most bytes one conversation may receive.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connect: Duration::from_secs(5),
            read: Duration::from_secs(10),
            conversation: Duration::from_secs(60),
            max_bytes: 256 * 1024,
        }
    }
}

/// Why a conversation ended early.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// Connection refused or reset before it was established.
    #[error("connection refused")]
    Refused,
    /// No answer to the connect in time.
    #[error("connect timed out")]
    ConnectTimeout,
    /// The peer closed the connection.
    #[error("connection closed by peer")]
    Closed,
    /// The peer (or something on the way) reset the connection: unlike an orderly close, not an
    /// answer a login dialogue can be judged by.
    #[error("connection reset by peer")]
    Reset,
    /// No bytes within the read timeout, or the conversation deadline passed.
    #[error("timed out waiting for the peer")]
    Timeout,
    /// The peer sent more than the conversation's byte budget.
    #[error("peer sent more than {0} bytes")]
    TooMuch(usize),
    /// The peer spoke, but not the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A TLS or SSH handshake failed.
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// Any other I/O error (reset mid-conversation, ...).
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The scope does not allow the address; nothing was sent.
    #[error(transparent)]
    OutOfScope(OutOfScope),
}

impl ConnError {
    /// The record status this error maps to.
    pub fn status(&self) -> botscope_model::GrabStatus {
        use botscope_model::GrabStatus;
        match self {
            ConnError::Refused | ConnError::Closed | ConnError::Reset | ConnError::Io(_) => {
                GrabStatus::ConnectionClosed
            }
            ConnError::ConnectTimeout | ConnError::Timeout => GrabStatus::IoTimeout,
            ConnError::TooMuch(_) | ConnError::Protocol(_) | ConnError::OutOfScope(_) => GrabStatus::ProtocolError,
            ConnError::Handshake(_) => GrabStatus::HandshakeError,
        }
    }
}

/// Opens a TCP connection within the connect timeout, through the scope-checked connect: an
/// address outside `scope` is refused before anything is sent.
pub async fn connect(scope: &Scope, addr: SocketAddr, limits: &Limits) -> Result<TcpStream, ConnError> {
    match botscope_scope::connect(scope, addr, limits.connect).await {
        Err(ConnectError::OutOfScope(refused)) => Err(ConnError::OutOfScope(refused)),
        Err(ConnectError::Timeout { .. }) => Err(ConnError::ConnectTimeout),
        Err(ConnectError::Io { source, .. })
            if matches!(source.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset) =>
        {
            Err(ConnError::Refused)
        }
        Err(ConnectError::Io { source, .. }) => Err(ConnError::Io(source)),
        Ok(stream) => {
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
    }
}

/// Any byte stream a module can talk over (plain TCP or TLS).
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A stream with the limits applied.
pub struct Conversation<S> {
    stream: S,
    limits: Limits,
    deadline: Instant,
    received: usize,
}

impl<S: Stream> Conversation<S> {
    /// Starts the clock on `stream`.
    pub fn new(stream: S, limits: Limits) -> Conversation<S> {
        Conversation { stream, deadline: Instant::now() + limits.conversation, limits, received: 0 }
    }

    /// Reads what is available (at least one byte) into `buf`, within the limits.
    pub async fn read_some(&mut self, buf: &mut Vec<u8>) -> Result<usize, ConnError> {
        self.read_some_within(buf, self.limits.read).await
    }

    /// As [`Conversation::read_some`], waiting at most `wait` (and never past the read timeout).
    pub async fn read_some_within(&mut self, buf: &mut Vec<u8>, wait: Duration) -> Result<usize, ConnError> {
        let left = self.limits.max_bytes.saturating_sub(self.received);
        if left == 0 {
            return Err(ConnError::TooMuch(self.limits.max_bytes));
        }
        let mut chunk = [0u8; 4096];
        let want = chunk.len().min(left);
        let wait = wait.min(self.limits.read).min(self.deadline.saturating_duration_since(Instant::now()));
        let read =
            tokio::time::timeout(wait, self.stream.read(&mut chunk[..want])).await.map_err(|_| ConnError::Timeout)?;
        match read {
            Ok(0) => Err(ConnError::Closed),
            Ok(n) => {
                self.received += n;
                buf.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Err(error) if error.kind() == io::ErrorKind::ConnectionReset => Err(ConnError::Reset),
            Err(error) => Err(ConnError::Io(error)),
        }
    }

    /// Writes all of `bytes` within the deadline.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        let wait = self.limits.read.min(self.deadline.saturating_duration_since(Instant::now()));
        match tokio::time::timeout(wait, self.stream.write_all(bytes)).await {
            Err(_) => Err(ConnError::Timeout),
            Ok(Err(error)) if error.kind() == io::ErrorKind::BrokenPipe => Err(ConnError::Closed),
            Ok(Err(error)) if error.kind() == io::ErrorKind::ConnectionReset => Err(ConnError::Reset),
            Ok(result) => result.map_err(ConnError::Io),
        }
    }

    /// Bytes received so far.
    pub fn received(&self) -> usize {
        self.received
    }

    /// The stream, for a protocol library to take over (keeping no limits but its own).
    pub fn into_inner(self) -> S {
        self.stream
    }

    /// Closes the write side politely; errors are irrelevant at this point.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.stream.shutdown()).await;
    }
}

/// A stream that first replays bytes already read from it: the SSH module reads the server's
/// version line itself, then hands the connection to the SSH library as if untouched.
pub struct Rewind<S> {
    prefix: Vec<u8>,
    offset: usize,
    inner: S,
}

impl<S> Rewind<S> {
    /// `inner`, preceded by `prefix`.
    pub fn new(prefix: Vec<u8>, inner: S) -> Rewind<S> {
        Rewind { prefix, offset: 0, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.offset < self.prefix.len() {
            let n = buf.remaining().min(self.prefix.len() - self.offset);
            let start = self.offset;
            buf.put_slice(&self.prefix[start..start + n]);
            self.offset += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Text for a record's `banner`: lossy UTF-8, control characters other than CR/LF/TAB dropped,
/// cut to 1 KiB on a character boundary.
pub fn banner_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    for ch in text.chars().filter(|c| !c.is_control() || matches!(c, '\r' | '\n' | '\t')) {
        if out.len() + ch.len_utf8() > 1024 {
            break;
        }
        out.push(ch);
    }
    out
}
