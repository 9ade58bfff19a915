//! Any text as a seed file.
#![no_main]

use botscope_flow::seeds::Seeds;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let mut seeds = Seeds::default();
        let report = seeds.add_text(text);
        assert!(report.errors.len() <= 5);
    }
});
