//! Any bytes as a Recog fingerprint file: a clear error or rules whose examples can be run.
#![no_main]

use botscope_survey::fingerprint::recog;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(rules) = recog::parse(text, "fuzz.xml") {
        for rule in &rules {
            for example in rule.examples() {
                let _ = rule.apply(&example.text);
            }
        }
    }
});
