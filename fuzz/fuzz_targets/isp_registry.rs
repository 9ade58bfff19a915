//! Any text as an ISP registry: an error or a checked registry, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(isps) = botscope_isp::registry::parse(text)
    {
        assert!(!isps.is_empty());
        assert!(isps.iter().all(|isp| isp.id.is_some() && botscope_model::is_valid_handle(&isp.handle)));
    }
});
