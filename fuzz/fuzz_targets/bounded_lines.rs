//! Any bytes, plain or as a gzip stream: lines never exceed the bound, errors are errors.
#![no_main]

use botscope_input::{BoundedLines, Line, decompressing};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(reader) = decompressing(Box::new(std::io::Cursor::new(data.to_vec()))) else { return };
    let mut lines = BoundedLines::new(reader, 64);
    let mut count = 0u64;
    while let Ok(Some((number, line))) = lines.next_line() {
        count += 1;
        assert_eq!(number, count);
        if let Line::Text(text) = line {
            assert!(text.len() <= 64);
        }
        if count > 1_000_000 {
            break;
        }
    }
});
