//! Any bytes from a telnet device, in any split: never a panic, replies bounded, prompt
//! classification total, and feeding in pieces equals feeding at once, through the telnet
//! decoder and the terminal filter (control sequences removed, queries answered) alike.
#![no_main]

use botscope_survey::modules::telnet::{
    CURSOR_POSITION_REPORT, Decoded, Decoder, MAX_TERMINAL_ANSWERS, Terminal, classify_prompt, says_failure,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cut = data.first().map_or(0, |b| *b as usize).min(data.len());
    let mut whole = Decoded::default();
    let all = Decoder::default().feed(data, &mut whole);
    let mut pieces = Decoded::default();
    let mut decoder = Decoder::default();
    let split = decoder.feed(&data[..cut], &mut pieces).and_then(|_| decoder.feed(&data[cut..], &mut pieces));
    assert_eq!(all.is_ok(), split.is_ok());
    if all.is_ok() {
        assert_eq!(whole, pieces);
    }
    assert!(whole.text.len() <= data.len());
    let _ = classify_prompt(&whole.text);
    let _ = classify_prompt(data);

    let mut seen = Decoded::default();
    Terminal::default().feed(&whole.text, &mut seen);
    let mut seen_in_pieces = Decoded::default();
    let mut terminal = Terminal::default();
    let half = cut.min(whole.text.len());
    terminal.feed(&whole.text[..half], &mut seen_in_pieces);
    terminal.feed(&whole.text[half..], &mut seen_in_pieces);
    assert_eq!(seen, seen_in_pieces);
    assert!(seen.text.len() <= whole.text.len());
    assert!(seen.reply.len() <= 3 * whole.text.len());
    assert!(seen.reply.len() <= MAX_TERMINAL_ANSWERS * CURSOR_POSITION_REPORT.len());
    assert!(!seen.text.contains(&0x1b));
    let _ = classify_prompt(&seen.text);
    let _ = says_failure(&seen.text);
});
