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
    /// A query that SQLite can answer only by reading rows one by one (an address prefix) read
    /// its bound without filling a page.
    #[error(
        "the search read {scanned} records without filling a page; narrow it with a kind, a time range or an exact field (SQLite has no address index; PostgreSQL answers prefixes through one)"
    )]
    TooBroad {
        /// Records read.
        scanned: usize,
    },
    /// A search within more prefixes than one query may hold.
    #[error("a search within {prefixes} prefixes; at most {max} (search by prefix instead)", max = crate::MAX_PREFIXES_ANY)]
    TooManyPrefixes {
        /// Prefixes asked for.
        prefixes: usize,
    },
}

impl StoreError {
    /// Whether the same write may succeed if tried again: the database gave it up for a conflict
    /// with another transaction running at once (PostgreSQL's deadlock and serialization
    /// failures, SQLite's busy database), not for anything in the write itself.
    pub fn is_transient(&self) -> bool {
        let StoreError::Query(sqlx::Error::Database(error)) = self else { return false };
        // SQLite's extended codes keep the primary code (SQLITE_BUSY, 5) in their low byte.
        matches!(error.code().as_deref(), Some("40P01" | "40001"))
            || error.code().and_then(|code| code.parse::<u32>().ok()).is_some_and(|code| code & 0xff == 5)
    }

    /// The kind of failure in a few words, with no address, user or database name in it: what a
    /// caller without a token may be told (the whole error belongs in the log).
    pub fn brief(&self) -> &'static str {
        let driver = match self {
            StoreError::Open { source, .. } | StoreError::Query(source) => source,
            StoreError::Migrate { .. } => return "its schema could not be migrated",
            StoreError::Corrupt { .. } => return "a stored row does not read back",
            StoreError::BadUrl { .. } | StoreError::MissingId { .. } => return "it is misconfigured",
            StoreError::TooBroad { .. } | StoreError::TooManyPrefixes { .. } => return "the query was too broad",
        };
        match driver {
            sqlx::Error::Io(e) => match e.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused",
                std::io::ErrorKind::TimedOut => "connection timed out",
                std::io::ErrorKind::NotFound => "no such host or file",
                _ => "a network error",
            },
            sqlx::Error::PoolTimedOut => "no connection became free in time (busy, or unreachable)",
            sqlx::Error::Tls(_) => "TLS failed",
            sqlx::Error::Database(_) => "the database refused the connection or the query",
            _ => "it is unavailable",
        }
    }
}
