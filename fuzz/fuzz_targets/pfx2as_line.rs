//! Any bytes as a prefix2as file: never a panic, and every accepted prefix has no host bits.
#![no_main]

use botscope_isp::pfx2as;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(table) = pfx2as::read(data, |_| {}) {
        for routed in &table.prefixes {
            assert_eq!(routed.prefix.trunc(), routed.prefix);
            assert_eq!(routed.origin.to_string().parse::<botscope_model::Origin>().as_ref(), Ok(&routed.origin));
        }
    }
});
