use botscope_store::StoreError;

/// Why a centre operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CenterError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A parameter or input was not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}
