//! The one scope-checked TCP connect. Every outbound connection of the survey, the re-survey and
//! liveness goes through [`connect`]; the workspace's clippy policy (`clippy.toml`,
//! `disallowed-methods`) refuses every other way of opening one outside tests and the lab.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::scope::{OutOfScope, Scope};

/// Why a guarded connect did not give a connection.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The scope does not allow the target; no packet was sent.
    #[error(transparent)]
    OutOfScope(#[from] OutOfScope),
    /// No answer within the connect timeout.
    #[error("connect to {target} timed out after {after:?}")]
    Timeout {
        /// The target.
        target: SocketAddr,
        /// The timeout.
        after: Duration,
    },
    /// The connect failed (refused, reset, unreachable, ...).
    #[error("connect to {target}: {source}")]
    Io {
        /// The target.
        target: SocketAddr,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// Opens a TCP connection to `target` within `timeout`, if and only if `scope` allows its address.
/// A target outside the scope is refused before anything is sent.
pub async fn connect(scope: &Scope, target: SocketAddr, timeout: Duration) -> Result<TcpStream, ConnectError> {
    scope.check(target.ip())?;
    #[allow(clippy::disallowed_methods, reason = "the one guarded connect: the scope was checked on the line above")]
    let connecting = TcpStream::connect(target);
    match tokio::time::timeout(timeout, connecting).await {
        Err(_) => Err(ConnectError::Timeout { target, after: timeout }),
        Ok(Err(source)) => Err(ConnectError::Io { target, source }),
        Ok(Ok(stream)) => Ok(stream),
    }
}
