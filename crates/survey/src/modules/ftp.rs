//! FTP (port 21): the greeting only. The survey reads the server's first reply, says `QUIT` and
//! leaves; it never logs in here. Cameras, NAS boxes and routers with a USB port name their
//! firmware in this line (`220 (vsFTPd 3.0.3)`, `220 DVR FTP server ready`).
//!
//! The parser is a pure function over bytes (fuzzed in `fuzz/fuzz_targets/ftp_greeting.rs`).

/// Longest greeting read; a multi-line greeting that has not ended by then is cut here.
pub const MAX_GREETING: usize = 4096;

/// A server's first reply (RFC 959 4.2: one line `220 text`, or `220-text` ... `220 text`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// The reply code: 220 ready, 120 ready soon, 421 refused.
    pub code: u16,
    /// The text of every line, the code and its separator removed from the first and the last.
    pub lines: Vec<String>,
}

impl Greeting {
    /// The texts fingerprints match, most telling first: the first line, then the last if it
    /// differs (multi-line greetings put the product on either).
    pub fn texts(&self) -> Vec<&str> {
        let mut texts: Vec<&str> = self.lines.first().map(String::as_str).into_iter().collect();
        if let Some(last) = self.lines.last().filter(|_| self.lines.len() > 1) {
            texts.push(last);
        }
        texts
    }
}

/// Why bytes are not an FTP greeting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FtpError {
    /// The first line does not start with a three-digit code and a space or hyphen.
    #[error("not an FTP reply")]
    NotFtp,
    /// The greeting did not end within [`MAX_GREETING`] bytes.
    #[error("greeting longer than {MAX_GREETING} bytes")]
    TooLong,
}

/// The greeting at the start of `bytes`: `Ok(None)` while it is still incomplete.
pub fn parse_greeting(bytes: &[u8]) -> Result<Option<Greeting>, FtpError> {
    let head = &bytes[..bytes.len().min(MAX_GREETING)];
    if head.len() < 4 {
        // Too short to judge yet.
        return Ok(None);
    }
    let code = reply_code(head).ok_or(FtpError::NotFtp)?;
    let mut lines = Vec::new();
    let mut rest = head;
    while let Some(end) = rest.iter().position(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(&rest[..end]).trim_end_matches('\r').to_string();
        rest = &rest[end + 1..];
        let last = lines.is_empty() && head[3] == b' '
            || line.len() >= 4 && line.as_bytes()[..3] == head[..3] && line.as_bytes()[3] == b' ';
        let text = if lines.is_empty() || last { line.get(4..).unwrap_or("").to_string() } else { line };
        lines.push(text);
        if last {
            return Ok(Some(Greeting { code, lines }));
        }
    }
    if bytes.len() >= MAX_GREETING { Err(FtpError::TooLong) } else { Ok(None) }
}

fn reply_code(bytes: &[u8]) -> Option<u16> {
    let digits = bytes.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) || !matches!(bytes.get(3)?, b' ' | b'-') {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_greeting() {
        let greeting = parse_greeting(b"220 (vsFTPd 3.0.3)\r\n").unwrap().unwrap();
        assert_eq!(greeting.code, 220);
        assert_eq!(greeting.texts(), vec!["(vsFTPd 3.0.3)"]);
    }

    #[test]
    fn multi_line_greeting_ends_at_code_and_space() {
        let bytes = b"220-Welcome\r\n 220 inside is not the end\r\n220-still going\r\n220 NAS FTP ready\r\n";
        let greeting = parse_greeting(bytes).unwrap().unwrap();
        assert_eq!(greeting.lines, vec!["Welcome", " 220 inside is not the end", "220-still going", "NAS FTP ready"]);
        assert_eq!(greeting.texts(), vec!["Welcome", "NAS FTP ready"]);
    }

    #[test]
    fn incomplete_and_foreign_replies() {
        assert_eq!(parse_greeting(b"22"), Ok(None));
        assert_eq!(parse_greeting(b"220-half\r\n"), Ok(None));
        assert_eq!(parse_greeting(b"SSH-2.0-dropbear\r\n"), Err(FtpError::NotFtp));
        let endless = [b"220-".as_slice(), &[b'x'; MAX_GREETING]].concat();
        assert_eq!(parse_greeting(&endless), Err(FtpError::TooLong));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_give_a_greeting_an_error_or_a_wait(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            match parse_greeting(&bytes) {
                Ok(Some(greeting)) => proptest::prop_assert!(!greeting.lines.is_empty()),
                Ok(None) => proptest::prop_assert!(bytes.len() < MAX_GREETING),
                Err(_) => {}
            }
        }

        #[test]
        fn a_greeting_cut_anywhere_is_never_judged_complete_early(text in "[ -~]{0,60}", cut in 0usize..70) {
            let whole = format!("220-first\r\n{text}\r\n220 last\r\n");
            let cut = cut.min(whole.len() - 1);
            let early = parse_greeting(&whole.as_bytes()[..cut]).unwrap();
            // A cut prefix can complete only on a line that itself ends the greeting.
            if let Some(greeting) = early {
                proptest::prop_assert!(text.starts_with("220 "));
                proptest::prop_assert_eq!(greeting.code, 220);
            }
        }
    }
}
