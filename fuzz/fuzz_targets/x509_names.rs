//! Any bytes as the DER certificate a TLS server presents: names or an error, never a panic.
#![no_main]

use botscope_survey::x509::{certificate_names, name_string};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(names) = certificate_names(data) {
        // Every name is built from bytes of the input: it cannot outgrow a fixed multiple of it
        // (escapes, `#`-hex values and dotted identifiers at most triple a byte, plus separators).
        assert!(names.subject.len() + names.issuer.len() <= 8 * data.len() + 16);
    }
    let _ = name_string(data);
});
