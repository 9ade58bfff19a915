//! Any bytes as an FTP server's greeting: a greeting, an error or "read more", never a panic; a
//! "read more" only while the bytes are shorter than the greeting cap.
#![no_main]

use botscope_survey::modules::ftp::{MAX_GREETING, parse_greeting};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_greeting(data) {
        Ok(None) => assert!(data.len() < MAX_GREETING),
        Ok(Some(greeting)) => assert!(!greeting.lines.is_empty()),
        Err(_) => {}
    }
});
