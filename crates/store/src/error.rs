use botscope_model::Kind;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store URL could not be understood.
    #[error("store URL {url:?}: {reason}")]
    BadUrl {
        /// The URL, password removed.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The database could not be opened or reached.
    #[error("cannot open store {url}: {source}")]
    Open {
        /// The URL, password removed.
        url: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// The schema could not be brought up to date.
    #[error("cannot migrate store {url}: {source}")]
    Migrate {
        /// The URL, password removed.
        url: String,
        /// The migrator's error.
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("store query failed: {0}")]
    Query(#[from] sqlx::Error),
    /// Something stored no longer reads back.
    #[error("stored {what} is corrupt: {reason}")]
    Corrupt {
        /// Which row.
        what: String,
        /// Why it does not read.
        reason: String,
    },
    /// A record was handed over without its id.
    #[error("a {kind} record has no id; call Record::ensure_id before storing")]
    MissingId {
        /// Its kind.
        kind: Kind,
    },
}
