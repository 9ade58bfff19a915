//! The one large read buffer both readers parse in place.

use std::io::{self, Read};

const INITIAL: usize = 1 << 20;

pub(crate) struct Buffer<R> {
    source: R,
    data: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    consumed_before: u64,
}

impl<R: Read> Buffer<R> {
    pub(crate) fn new(source: R) -> Self {
        Buffer { source, data: vec![0; INITIAL], start: 0, end: 0, eof: false, consumed_before: 0 }
    }

    /// Makes at least `want` bytes available unless the source ends first; returns how many are.
    #[inline]
    pub(crate) fn fill(&mut self, want: usize) -> io::Result<usize> {
        if self.end - self.start >= want || self.eof {
            return Ok(self.end - self.start);
        }
        self.refill(want)
    }

    #[cold]
    fn refill(&mut self, want: usize) -> io::Result<usize> {
        if self.start + want > self.data.len() {
            self.data.copy_within(self.start..self.end, 0);
            self.consumed_before += self.start as u64;
            self.end -= self.start;
            self.start = 0;
            if want > self.data.len() {
                self.data.resize(want.next_power_of_two(), 0);
            }
        }
        while self.end - self.start < want {
            match self.source.read(&mut self.data[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.start)
    }

    /// Up to `n` available bytes (call `fill` first).
    #[inline]
    pub(crate) fn peek(&self, n: usize) -> &[u8] {
        &self.data[self.start..self.end.min(self.start + n)]
    }

    pub(crate) fn available(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    #[inline]
    pub(crate) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// Consumes `n` bytes and returns them; they stay valid until the next `fill`.
    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> &[u8] {
        let from = self.start;
        self.consume(n);
        &self.data[from..self.start]
    }

    pub(crate) fn position(&self) -> u64 {
        self.consumed_before + self.start as u64
    }

    /// Whether the source has reported its end (what is buffered is all there is).
    pub(crate) fn source_ended(&self) -> bool {
        self.eof
    }
}
