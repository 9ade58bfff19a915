//! Any text as a signature catalogue file: an error or a catalogue, never a panic.
#![no_main]

use botscope_telescope::Catalogue;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = Catalogue::from_texts([("fuzz.toml", text.as_ref())]);
});
