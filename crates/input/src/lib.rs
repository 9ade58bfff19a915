//! Reading files that botscope does not control.
//!
//! Input comes from sensors, feeds and operators' exports: it may be gzipped or not, may be a
//! pipe, and may hold a line of gigabytes. [`open`] hides compression; [`BoundedLines`] yields
//! lines with their numbers and never holds more than its limit of one line in memory, reporting
//! an over-long line as such instead of growing without bound.
//!
//! Boundaries: reads the files and pipes it is handed; it knows no record format and opens no
//! connection.
#![deny(missing_docs)]

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

/// The gzip magic number.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// An input could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open {name}: {source}")]
pub struct OpenError {
    /// The path as given.
    pub name: String,
    /// Why.
    pub source: io::Error,
}

/// Opens `path` for reading (`-` is standard input), decompressing it if it starts with the gzip
/// magic number, whatever its name.
pub fn open(path: &Path) -> Result<Box<dyn BufRead + Send>, OpenError> {
    let name = path.display().to_string();
    let raw: Box<dyn Read + Send> = if path == Path::new("-") {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(path).map_err(|source| OpenError { name: name.clone(), source })?)
    };
    decompressing(raw).map_err(|source| OpenError { name, source })
}

/// The size of `path` when it is a plain (uncompressed) regular file: the total that progress over
/// decompressed bytes can be measured against. `None` for stdin, pipes and gzip files, whose size
/// says nothing about how many bytes they decompress to.
pub fn plain_file_size(path: &Path) -> Option<u64> {
    let meta = std::fs::metadata(path).ok().filter(|meta| meta.is_file())?;
    let mut magic = [0u8; 2];
    let gzipped = File::open(path).and_then(|mut file| file.read_exact(&mut magic)).is_ok() && magic == GZIP_MAGIC;
    (!gzipped).then_some(meta.len())
}

/// Wraps a reader so that gzip input is decompressed and anything else passes through.
pub fn decompressing(raw: Box<dyn Read + Send>) -> io::Result<Box<dyn BufRead + Send>> {
    let mut buffered = BufReader::with_capacity(256 * 1024, raw);
    let head = buffered.fill_buf()?;
    if head.starts_with(&GZIP_MAGIC) {
        Ok(Box::new(BufReader::with_capacity(256 * 1024, MultiGzDecoder::new(buffered))))
    } else {
        Ok(Box::new(buffered))
    }
}

/// One line of input.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// The line's bytes, without the line ending (`\n` or `\r\n`).
    Text(&'a [u8]),
    /// The line was longer than the limit; its bytes were read and dropped.
    TooLong {
        /// How long it really was.
        length: u64,
    },
}

/// Lines of a reader, numbered from 1, none held longer than a limit.
pub struct BoundedLines<R> {
    reader: R,
    buffer: Vec<u8>,
    max_line: usize,
    line_number: u64,
    bytes_read: u64,
}

impl<R: BufRead> BoundedLines<R> {
    /// Reads lines of at most `max_line` bytes from `reader`.
    pub fn new(reader: R, max_line: usize) -> Self {
        BoundedLines { reader, buffer: Vec::new(), max_line, line_number: 0, bytes_read: 0 }
    }

    /// Bytes consumed so far (decompressed), for progress reporting.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The next line and its number, or `None` at the end of input.
    pub fn next_line(&mut self) -> io::Result<Option<(u64, Line<'_>)>> {
        self.buffer.clear();
        let mut length: u64 = 0;
        let mut saw_any = false;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                break;
            }
            saw_any = true;
            let (taken, done) = match available.iter().position(|b| *b == b'\n') {
                Some(at) => (at + 1, true),
                None => (available.len(), false),
            };
            let body = if done { &available[..taken - 1] } else { available };
            length += body.len() as u64;
            if self.buffer.len() + body.len() <= self.max_line {
                self.buffer.extend_from_slice(body);
            }
            self.reader.consume(taken);
            self.bytes_read += taken as u64;
            if done {
                break;
            }
        }
        if !saw_any {
            return Ok(None);
        }
        self.line_number += 1;
        if length > self.max_line as u64 {
            return Ok(Some((self.line_number, Line::TooLong { length })));
        }
        if self.buffer.last() == Some(&b'\r') {
            self.buffer.pop();
        }
        Ok(Some((self.line_number, Line::Text(&self.buffer))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    fn collect(input: &[u8], max: usize) -> Vec<(u64, Result<Vec<u8>, u64>)> {
        let mut lines = BoundedLines::new(input, max);
        let mut out = Vec::new();
        while let Some((n, line)) = lines.next_line().unwrap() {
            out.push((
                n,
                match line {
                    Line::Text(t) => Ok(t.to_vec()),
                    Line::TooLong { length } => Err(length),
                },
            ));
        }
        out
    }

    #[test]
    fn numbers_lines_and_strips_endings() {
        let got = collect(b"a\r\nbb\n\nlast", 10);
        assert_eq!(
            got,
            vec![(1, Ok(b"a".to_vec())), (2, Ok(b"bb".to_vec())), (3, Ok(vec![])), (4, Ok(b"last".to_vec()))]
        );
    }

    #[test]
    fn over_long_line_is_reported_and_the_next_one_still_read() {
        let mut input = vec![b'x'; 100_000];
        input.extend_from_slice(b"\nok\n");
        let got = collect(&input, 1_000);
        assert_eq!(got, vec![(1, Err(100_000)), (2, Ok(b"ok".to_vec()))]);
    }

    #[test]
    fn gzip_is_recognised_by_content_not_name() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(b"one\ntwo\n").unwrap();
        let compressed = encoder.finish().unwrap();
        let mut reader = decompressing(Box::new(io::Cursor::new(compressed))).unwrap();
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        assert_eq!(text, "one\ntwo\n");
        let mut plain = decompressing(Box::new(io::Cursor::new(b"plain".to_vec()))).unwrap();
        text.clear();
        plain.read_to_string(&mut text).unwrap();
        assert_eq!(text, "plain");
    }

    #[test]
    fn only_plain_files_have_a_progress_total() {
        let dir = std::env::temp_dir().join(format!("botscope-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let plain = dir.join("plain.gz"); // the name lies; the content decides
        std::fs::write(&plain, b"hello\n").unwrap();
        let gzipped = dir.join("data.txt");
        std::fs::write(&gzipped, [0x1f, 0x8b, 8, 0]).unwrap();
        assert_eq!(plain_file_size(&plain), Some(6));
        assert_eq!(plain_file_size(&gzipped), None);
        assert_eq!(plain_file_size(Path::new("-")), None);
        assert_eq!(plain_file_size(&dir), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn broken_gzip_is_an_error_not_a_panic() {
        let mut reader = decompressing(Box::new(io::Cursor::new(vec![0x1f, 0x8b, 8, 0, 1, 2, 3]))).unwrap();
        let mut lines = BoundedLines::new(&mut reader, 100);
        assert!(lines.next_line().is_err());
    }

    proptest! {
        #[test]
        fn lines_rejoin_to_the_input(input in prop::collection::vec(prop::sample::select(b"ab\r\n".to_vec()), 0..200)) {
            let lines = collect(&input, usize::MAX);
            let mut total = 0u64;
            for (_, line) in &lines {
                total += line.as_ref().unwrap().len() as u64;
            }
            let newlines = input.iter().filter(|b| **b == b'\n').count() as u64;
            let crlf = input.windows(2).filter(|w| w == b"\r\n").count() as u64;
            let trailing_cr = u64::from(!input.ends_with(b"\n") && input.ends_with(b"\r"));
            prop_assert_eq!(total, input.len() as u64 - newlines - crlf - trailing_cr);
        }

        #[test]
        fn memory_stays_bounded(len in 0usize..5_000, max in 1usize..100) {
            let input = vec![b'y'; len];
            let mut lines = BoundedLines::new(&input[..], max);
            while let Some((_, line)) = lines.next_line().unwrap() {
                if let Line::Text(t) = line { prop_assert!(t.len() <= max); }
            }
            prop_assert!(lines.buffer.capacity() <= max.max(8) * 2 + 64);
        }
    }
}

/// How far a long read has come: the reading session counts, whoever shows progress (a bar on a
/// terminal, a status line in a log) looks. Shared behind an `Arc`; all updates are relaxed
/// atomics, cheap enough to make every 64 KiB.
#[derive(Debug, Default)]
pub struct ReadProgress {
    read: std::sync::atomic::AtomicU64,
    /// The total in bytes plus one; 0 while unknown (a pipe, a compressed file).
    total_plus_one: std::sync::atomic::AtomicU64,
    /// Bumped by `start`, so a watcher knows a new input began.
    input: std::sync::atomic::AtomicU64,
    label: std::sync::Mutex<String>,
}

/// One look at a [`ReadProgress`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSnapshot {
    /// What is being read.
    pub label: String,
    /// Bytes read of it.
    pub read: u64,
    /// Its size, when known.
    pub total: Option<u64>,
    /// Counts the inputs begun.
    pub input: u64,
}

impl ReadProgress {
    /// A new input begins: `total` is its size where known.
    pub fn start(&self, label: impl Into<String>, total: Option<u64>) {
        use std::sync::atomic::Ordering::Relaxed;
        if let Ok(mut slot) = self.label.lock() {
            *slot = label.into();
        }
        self.read.store(0, Relaxed);
        self.total_plus_one.store(total.map_or(0, |t| t.saturating_add(1)), Relaxed);
        self.input.fetch_add(1, Relaxed);
    }

    /// Sets the bytes read of the current input.
    pub fn set(&self, read: u64) {
        self.read.store(read, std::sync::atomic::Ordering::Relaxed);
    }

    /// Adds to the bytes read of the current input.
    pub fn add(&self, bytes: u64) {
        self.read.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Where the read stands.
    pub fn snapshot(&self) -> ReadSnapshot {
        use std::sync::atomic::Ordering::Relaxed;
        let total = self.total_plus_one.load(Relaxed);
        ReadSnapshot {
            label: self.label.lock().map(|l| l.clone()).unwrap_or_default(),
            read: self.read.load(Relaxed),
            total: total.checked_sub(1),
            input: self.input.load(Relaxed),
        }
    }

    /// Wraps `inner` so that every byte read from it counts here.
    pub fn counting<R: Read>(self: &std::sync::Arc<Self>, inner: R) -> Counting<R> {
        Counting { inner, progress: self.clone() }
    }
}

/// A reader that counts what passes through it into a [`ReadProgress`].
pub struct Counting<R> {
    inner: R,
    progress: std::sync::Arc<ReadProgress>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod progress_tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counting_reader_reports_every_byte_and_start_resets() {
        let progress = Arc::new(ReadProgress::default());
        progress.start("a", Some(5));
        let mut text = String::new();
        progress.counting(&b"hello"[..]).read_to_string(&mut text).unwrap();
        let seen = progress.snapshot();
        assert_eq!((seen.label.as_str(), seen.read, seen.total, seen.input), ("a", 5, Some(5), 1));
        progress.start("b", None);
        let seen = progress.snapshot();
        assert_eq!((seen.read, seen.total, seen.input), (0, None, 2));
    }
}
