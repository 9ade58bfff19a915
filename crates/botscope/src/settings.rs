//! The configuration every command runs with, resolved once in `main`.

use anyhow::Context;
use botscope_store::{AnyStore, StoreUrl};

use crate::config::{Config, Source};

/// The configuration every command runs with: the file, then environment and flags on top.
pub struct Settings {
    pub config: Config,
    pub source: Source,
    /// Whether progress bars may be drawn (a terminal, text logs, not quiet).
    pub show_progress: bool,
}

impl Settings {
    /// Opens (and migrates) the configured store.
    pub async fn open_store(&self) -> anyhow::Result<AnyStore> {
        let url = StoreUrl::parse(&self.config.store.url)?;
        let store = AnyStore::open(&url, self.config.store.max_connections.get() as u32)
            .await
            .with_context(|| format!("store {url}"))?;
        tracing::debug!(store = %url, "store open");
        Ok(store)
    }
}
