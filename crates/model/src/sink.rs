//! Where a sensor session puts its records.
//!
//! The trait lives here, beside the records, so that the sensor crates (survey, telescope, flow)
//! can write to any destination without depending on one: `botscope-deliver` implements it for
//! the store, the centre and files, and a `Vec<Record>` collects records in memory (the tests').

use std::convert::Infallible;
use std::future::Future;

use crate::Record;

/// A destination for records.
pub trait RecordSink: Send {
    /// Why a batch could not be taken.
    type Error: std::error::Error + Send + Sync + 'static;
    /// Takes a batch. A sink that cannot deliver now keeps the batch (the centre's spool) or fails;
    /// when `put` returns, the batch is as durable as this sink makes anything (a file is flushed,
    /// a store transaction committed), which is what a sensor's checkpoint relies on.
    fn put(&mut self, records: &[Record]) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// At the end of a run: delivers what is still pending, as far as it can.
    fn finish(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

impl RecordSink for Vec<Record> {
    type Error = Infallible;

    async fn put(&mut self, records: &[Record]) -> Result<(), Infallible> {
        self.extend_from_slice(records);
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// No sink: the run was asked for no such destination.
impl<S: RecordSink> RecordSink for Option<S> {
    type Error = S::Error;

    async fn put(&mut self, records: &[Record]) -> Result<(), S::Error> {
        match self {
            Some(sink) => sink.put(records).await,
            None => Ok(()),
        }
    }

    async fn finish(&mut self) -> Result<(), S::Error> {
        match self {
            Some(sink) => sink.finish().await,
            None => Ok(()),
        }
    }
}
