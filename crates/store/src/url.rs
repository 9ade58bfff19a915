use std::fmt;
use std::path::PathBuf;

use crate::StoreError;

/// Where the store lives: a SQLite file or a PostgreSQL database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// A SQLite database file (created if missing).
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` URL.
    Postgres(String),
}

impl StoreUrl {
    /// Reads `postgres://…`, `postgresql://…`, `sqlite://PATH`, `sqlite:PATH`, or a plain file path.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(StoreError::BadUrl { url: String::new(), reason: "empty".into() });
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(StoreUrl::Postgres(text.to_string()));
        }
        let path = text.strip_prefix("sqlite://").or_else(|| text.strip_prefix("sqlite:")).unwrap_or(text);
        if path.is_empty() || path == ":memory:" {
            return Err(StoreError::BadUrl {
                url: text.into(),
                reason: "needs a file path (an in-memory database would lose everything on exit)".into(),
            });
        }
        if let Some((scheme, _)) = path.split_once("://") {
            return Err(StoreError::BadUrl {
                url: redact(text),
                reason: format!("unsupported scheme {scheme:?}; use a file path, sqlite://PATH or postgres://…"),
            });
        }
        Ok(StoreUrl::Sqlite(PathBuf::from(path)))
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            StoreUrl::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

/// The URL with any password replaced by `***`, for logs and messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_spelling() {
        assert_eq!(StoreUrl::parse("botscope.db").unwrap(), StoreUrl::Sqlite("botscope.db".into()));
        assert_eq!(StoreUrl::parse("sqlite:///tmp/a.db").unwrap(), StoreUrl::Sqlite("/tmp/a.db".into()));
        assert_eq!(StoreUrl::parse("sqlite:a.db").unwrap(), StoreUrl::Sqlite("a.db".into()));
        assert!(matches!(StoreUrl::parse("postgresql://u@h/db").unwrap(), StoreUrl::Postgres(_)));
        assert!(StoreUrl::parse("mysql://u@h/db").is_err());
        assert!(StoreUrl::parse("sqlite::memory:").is_err());
        assert!(StoreUrl::parse("  ").is_err());
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact("postgres://bob:s3cret@db:5432/x"), "postgres://bob:***@db:5432/x");
        assert_eq!(redact("postgres://bob@db/x"), "postgres://bob@db/x");
        let shown = StoreUrl::parse("postgres://bob:s3cret@db/x").unwrap().to_string();
        assert!(!shown.contains("s3cret"));
    }
}
