//! Any bytes as a Recog fingerprint file: a clear error, or rules (and reported fingerprints that
//! could not load) whose examples can be run, each within the backtracking bound.
#![no_main]

use botscope_survey::fingerprint::recog;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(parsed) = recog::parse_file(text, "fuzz/telnet_banners.xml") {
        assert!(parsed.skipped.is_none() || parsed.rules.is_empty());
        for rule in &parsed.rules {
            for example in rule.examples() {
                let _ = rule.apply(&example.text);
                let _ = rule.recog_match(&example.text);
            }
        }
    }
});
