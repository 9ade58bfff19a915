//! What can go wrong delivering records.

use std::path::PathBuf;

use botscope_store::StoreError;

/// Why records could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    /// A file or directory of the spool or the output could not be used.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done (`cannot write`, `cannot read`, ...).
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The centre's configuration cannot work (no URL scheme, no sensor name).
    #[error("{0}")]
    Config(String),
    /// The centre refused the batch for a reason sending it again cannot fix (a wrong token or
    /// URL); the batches stay in the spool.
    #[error("the centre refused the batch ({status}): {body}; the batches stay in {}", spool.display())]
    Refused {
        /// HTTP status.
        status: u16,
        /// What it said (capped).
        body: String,
        /// Where the batches wait.
        spool: PathBuf,
    },
    /// The centre answered something that is not its ingest reply.
    #[error("the centre's reply is not JSON: {0}")]
    Reply(String),
    /// The centre answered a request with an error status.
    #[error("{url} answered {status}: {body}")]
    Answered {
        /// What was asked.
        url: String,
        /// HTTP status.
        status: u16,
        /// What it said (capped).
        body: String,
    },
    /// A response body passed its size cap.
    #[error("{0}")]
    TooLarge(String),
    /// The HTTP client failed outside a delivery attempt (building it, reading a body).
    #[error("HTTP: {0}")]
    Http(String),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
