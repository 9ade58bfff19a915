//! Any bytes as a feed file in each format: counted skips or a clear error, never a panic.
#![no_main]

use botscope_center::feeds::{FeedFormat, FeedOptions, read};
use botscope_model::FeedRole;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in [FeedFormat::ThreatfoxCsv, FeedFormat::FeodoCsv, FeedFormat::Stix, FeedFormat::Plain] {
        let options = FeedOptions {
            format,
            source: "fuzz".into(),
            plain_role: FeedRole::Cnc,
            now: chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap(),
        };
        if let Ok(read) = read(data, &options) {
            assert!(read.problems.len() <= 20);
            for entry in &read.entries {
                assert!(entry.port != Some(0));
            }
        }
    }
});
