//! Sinks made of sinks: one batch to two places, or only some records to one.

use botscope_model::Record;

use botscope_model::RecordSink;

use crate::error::DeliverError;

/// Hands every batch to both sinks, the first one first.
pub struct Tee<A, B> {
    /// The first sink (usually the run's file).
    pub first: A,
    /// The second sink (usually the store and the centre).
    pub second: B,
}

impl<A, B> RecordSink for Tee<A, B>
where
    A: RecordSink<Error = DeliverError>,
    B: RecordSink<Error = DeliverError>,
{
    type Error = DeliverError;

    async fn put(&mut self, records: &[Record]) -> Result<(), DeliverError> {
        self.first.put(records).await?;
        self.second.put(records).await
    }

    async fn finish(&mut self) -> Result<(), DeliverError> {
        // Both get their chance to deliver what is pending, even if the first fails.
        let first = self.first.finish().await;
        self.second.finish().await?;
        first
    }
}

/// Passes on only the records `keep` accepts: e.g. a survey's file gets every observation while
/// the store gets only findings and re-survey outcomes.
pub struct Only<S> {
    /// Where kept records go.
    pub sink: S,
    /// Which records to keep.
    pub keep: fn(&Record) -> bool,
}

impl<S: RecordSink<Error = DeliverError>> RecordSink for Only<S> {
    type Error = DeliverError;

    async fn put(&mut self, records: &[Record]) -> Result<(), DeliverError> {
        let kept: Vec<Record> = records.iter().filter(|r| (self.keep)(r)).cloned().collect();
        if kept.is_empty() { Ok(()) } else { self.sink.put(&kept).await }
    }

    async fn finish(&mut self) -> Result<(), DeliverError> {
        self.sink.finish().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink over the in-memory collector, with deliver's error type.
    #[derive(Default)]
    struct Memory(Vec<Record>, bool);

    impl RecordSink for Memory {
        type Error = DeliverError;
        async fn put(&mut self, records: &[Record]) -> Result<(), DeliverError> {
            self.0.extend_from_slice(records);
            Ok(())
        }
        async fn finish(&mut self) -> Result<(), DeliverError> {
            self.1 = true;
            Ok(())
        }
    }

    fn records() -> Vec<Record> {
        let line = r#"{"kind":"isp","handle":"hikari-net","name":"Hikari Net","asns":[64500],"contact":"abuse@hikari.example","language":"ja","notify":{"daily_infected":true,"monthly_vulnerable":true,"format":"csv"}}"#;
        vec![botscope_model::parse_line(line.as_bytes(), None).ok().flatten().expect("a valid isp line")]
    }

    #[tokio::test]
    async fn tee_gives_both_sinks_the_batch_and_only_filters() {
        let batch = records();
        let mut tee = Tee { first: Memory::default(), second: Only { sink: Memory::default(), keep: |_| false } };
        tee.put(&batch).await.unwrap();
        tee.finish().await.unwrap();
        assert_eq!(tee.first.0, batch);
        assert!(tee.second.sink.0.is_empty());
        assert!(tee.first.1 && tee.second.sink.1, "finish reaches both");
    }
}
