//! Where a sensor's records go. A sensor session (survey, telescope, flow collector or analyser)
//! hands each batch of records to a [`RecordSink`] (the trait is the model's, so the sensor crates
//! need not depend on this one); the sinks here are the local store ([`StoreSink`]), a botscope
//! centre over HTTP with a durable spool ([`CenterSink`]), and a JSON-lines file or standard output
//! ([`FileSink`]). [`Destinations`] fans one batch out to every sink a run asked for; [`Tee`] and
//! [`Only`] combine and filter sinks.
//!
//! Sinks take plain configuration ([`CenterConfig`]), never command-line arguments, so the demo,
//! the tests and the commands build them the same way.
//!
//! Boundaries: this crate moves records; it does not make, judge or change them (ids are the
//! model's, admission rules the centre's). It opens outbound HTTP only to the centre the operator
//! named; it never connects to a survey target.

#![deny(missing_docs)]

mod center;
mod combine;
mod error;
mod file;
mod http;

use botscope_model::Record;
use botscope_store::{AnyStore, Store};

pub use center::{CenterConfig, CenterSink};
pub use combine::{Only, Tee};
pub use error::DeliverError;
pub use file::FileSink;
pub use http::{fetch_text, read_capped};

pub use botscope_model::RecordSink;

/// The local store as a sink; counts the records new to it.
pub struct StoreSink {
    /// The store.
    pub store: AnyStore,
    /// Records that were new to the store.
    pub stored: u64,
}

impl RecordSink for StoreSink {
    type Error = DeliverError;

    async fn put(&mut self, records: &[Record]) -> Result<(), DeliverError> {
        if !records.is_empty() {
            self.stored += self.store.put_records(records).await?.inserted;
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), DeliverError> {
        Ok(())
    }
}

/// Every sink a run asked for: the store, the centre, or both.
#[derive(Default)]
pub struct Destinations {
    /// The local store.
    pub store: Option<StoreSink>,
    /// The centre.
    pub center: Option<CenterSink>,
}

impl Destinations {
    /// Whether records go anywhere.
    pub fn any(&self) -> bool {
        self.store.is_some() || self.center.is_some()
    }

    /// Records new to the local store so far.
    pub fn stored(&self) -> u64 {
        self.store.as_ref().map_or(0, |s| s.stored)
    }
}

impl RecordSink for Destinations {
    type Error = DeliverError;

    async fn put(&mut self, records: &[Record]) -> Result<(), DeliverError> {
        if records.is_empty() {
            return Ok(());
        }
        if let Some(store) = self.store.as_mut() {
            store.put(records).await?;
        }
        if let Some(center) = self.center.as_mut() {
            center.put(records).await?;
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), DeliverError> {
        if let Some(center) = self.center.as_mut() {
            center.finish().await?;
            tracing::info!(accepted = center.accepted, refused = center.refused, "records sent to the centre");
        }
        Ok(())
    }
}
