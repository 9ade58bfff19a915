//! Any bytes as a record line: never a panic; anything accepted survives its own round trip.
#![no_main]

use botscope_model::{Kind, parse_line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for required in [None, Some(Kind::Finding), Some(Kind::Cnc)] {
        if let Ok(Some(record)) = parse_line(data, required) {
            let again = parse_line(record.to_json_line().as_bytes(), None)
                .expect("a record botscope wrote must read back")
                .expect("not blank");
            assert_eq!(again.id(), record.id());
        }
    }
});
