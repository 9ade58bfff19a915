//! Any bytes as a credential dictionary, port catalogue, device catalogue or rule file.
#![no_main]

use botscope_survey::catalog::{DeviceCatalog, Dictionary, PortCatalog};
use botscope_survey::fingerprint::parse_rules;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(dictionary) = Dictionary::parse(text, "fuzz") {
        let weights: Vec<u32> = dictionary.ordered().iter().map(|c| c.weight).collect();
        assert!(weights.windows(2).all(|w| w[0] >= w[1]));
    }
    if let Ok(ports) = PortCatalog::parse(text, "fuzz") {
        let _ = ports.parse_list("23,80");
    }
    let _ = DeviceCatalog::parse(text, "fuzz");
    let _ = parse_rules(text, "fuzz", &DeviceCatalog::shipped());
});
