//! Any text as a model file; an accepted model scores any features within 0..1.
#![no_main]

use botscope_flow::detect::{FEATURE_NAMES, Model};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(model) = Model::from_json(text) {
        let score = model.score(&vec![0.5; FEATURE_NAMES.len()]);
        assert!((0.0..=1.0).contains(&score));
    }
});
