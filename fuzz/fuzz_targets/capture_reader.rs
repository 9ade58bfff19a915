//! Any bytes as a capture file: pcap (with each magic) or pcapng. The reader must end, never
//! panic, and make progress on every call; each frame it yields goes through the packet parser.
#![no_main]

use botscope_telescope::packet;
use botscope_telescope::read::{CaptureReader, Next};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let magic: &[u8] = match selector % 5 {
        0 => &[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0],
        1 => &[0xa1, 0xb2, 0xc3, 0xd4, 0, 2, 0, 4],
        2 => &[0x4d, 0x3c, 0xb2, 0xa1, 2, 0, 4, 0],
        3 => &[0x0a, 0x0d, 0x0d, 0x0a],
        _ => &[],
    };
    let input: Vec<u8> = magic.iter().chain(rest).copied().collect();
    let Ok(mut reader) = CaptureReader::new(&input[..]) else { return };
    let mut calls = 0usize;
    loop {
        calls += 1;
        assert!(calls <= input.len() + 2, "the reader stopped making progress");
        match reader.next_record() {
            Ok(Next::Frame(frame)) => {
                assert!(frame.data.len() <= input.len());
                let _ = packet::parse(frame.linktype, frame.data);
            }
            Ok(Next::Skipped(_)) => {}
            Ok(Next::End) | Err(_) => break,
        }
    }
});
