//! Any bytes as a flow file in each format the analyser reads.
#![no_main]

use botscope_flow::input::{self, Format};
use libfuzzer_sys::fuzz_target;

const FORMATS: [Format; 5] = [Format::Auto, Format::Jsonl, Format::Zeek, Format::Argus, Format::NfdumpCsv];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, text)) = data.split_first() else { return };
    let mut count = 0u64;
    if let Ok(report) = input::read(text, FORMATS[usize::from(selector) % FORMATS.len()], &mut |_, _| count += 1) {
        assert_eq!(report.flows, count);
    }
});
