//! Any bytes as a frame of any supported link type, then through the shipped signatures.
#![no_main]

use botscope_telescope::{Catalogue, packet};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const LINKTYPES: [u32; 10] = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276];

fuzz_target!(|data: &[u8]| {
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    let catalogue = CATALOGUE.get_or_init(Catalogue::shipped);
    let Some((&selector, frame)) = data.split_first() else { return };
    let linktype = LINKTYPES[usize::from(selector) % LINKTYPES.len()];
    if let Ok(p) = packet::parse(linktype, frame) {
        let _ = catalogue.matches(&p);
        let _ = p.src.to_ip();
    }
});
