//! Any bytes from a telnet device, in any split: never a panic, replies bounded, prompt
//! classification total, and feeding in pieces equals feeding at once.
#![no_main]

use botscope_survey::modules::telnet::{Decoded, Decoder, classify_prompt};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cut = data.first().map_or(0, |b| *b as usize).min(data.len());
    let mut whole = Decoded::default();
    let all = Decoder::default().feed(data, &mut whole);
    let mut pieces = Decoded::default();
    let mut decoder = Decoder::default();
    let split = decoder.feed(&data[..cut], &mut pieces).and_then(|_| decoder.feed(&data[cut..], &mut pieces));
    assert_eq!(all.is_ok(), split.is_ok());
    if all.is_ok() {
        assert_eq!(whole, pieces);
    }
    assert!(whole.text.len() <= data.len());
    let _ = classify_prompt(&whole.text);
    let _ = classify_prompt(data);
});
