//! Any bytes as the parts of a page request people control: the query string, the Cookie and
//! Accept-Language headers and a proxy's forwarded-for header. A view or a clear error, never a
//! panic; links built from the view stay on this site and carry nothing that breaks out of an
//! attribute.
#![no_main]

use std::collections::HashMap;

use botscope_web::pages::check::forwarded_client;
use botscope_web::pages::data::View;
use botscope_web::pages::session::session_id;
use http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let query: HashMap<String, String> = text
        .split('&')
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key.to_string(), value.to_string())
        })
        .collect();
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(data) {
        headers.insert(header::COOKIE, value.clone());
        headers.insert(header::ACCEPT_LANGUAGE, value);
    }
    if let Ok(view) = View::parse(&query, &headers) {
        let href = view.state.href("/botnets", &[("format", "csv")]);
        assert!(href.starts_with("/botnets"));
        assert!(!href.contains(['"', '<', '>', ' ', '\'']), "{href}");
    }
    if let Some(id) = session_id(&headers) {
        assert_eq!(id.len(), 64);
    }
    let _ = forwarded_client(&text, &[]);
});
