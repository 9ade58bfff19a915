//! Any bytes as an HTTP or RTSP response head, WWW-Authenticate parameters and an HTML body: never a
//! panic; a parsed head never claims more bytes than it was given.
#![no_main]

use botscope_survey::modules::http::{auth_params, challenge, html_title, parse_head};
use botscope_survey::modules::rtsp::parse_reply;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((head, used))) = parse_head(data) {
        assert!(used <= data.len());
        let _ = challenge(&head);
    }
    if let Ok(Some((_, used))) = parse_reply(data) {
        assert!(used <= data.len());
    }
    let text = String::from_utf8_lossy(data);
    let _ = auth_params(&text);
    let _ = html_title(data);
});
