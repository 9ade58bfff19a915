//! Any bytes as what an SSH server sends first, and any version line through identification.
#![no_main]

use botscope_survey::fingerprint::{Field, Fingerprints};
use botscope_survey::modules::ssh::version_line;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    static RULES: OnceLock<Fingerprints> = OnceLock::new();
    let rules = RULES.get_or_init(Fingerprints::shipped);
    if let Ok(Some(line)) = version_line(data) {
        assert!(line.starts_with("SSH-"));
        let _ = rules.identify(Field::SshBanner, &line);
    }
    let text = String::from_utf8_lossy(data);
    for field in [Field::TelnetBanner, Field::HttpServer, Field::HttpTitle, Field::HttpRealm] {
        let _ = rules.identify(field, &text);
    }
});
