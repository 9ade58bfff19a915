//! Classic libpcap files: a 24-byte file header, then records of a 16-byte header and the
//! captured bytes. The magic number gives the byte order and whether the sub-second field counts
//! micro- or nanoseconds.

use std::io::Read;

use super::buffer::Buffer;
use super::{Frame, MAX_RECORD, Next, ReadError, Resolution, Skip};

const FILE_HEADER: usize = 24;
const RECORD_HEADER: usize = 16;
/// How far a resynchronisation looks in one go before giving the bytes up.
const RESYNC_WINDOW: usize = 1 << 20;
/// libpcap's largest snap length; writers with a smaller one still may not exceed this.
const LIBPCAP_MAX_SNAPLEN: u32 = 262_144;

/// Reads a classic pcap file.
pub struct PcapReader<R> {
    buffer: Buffer<R>,
    big_endian: bool,
    resolution: Resolution,
    linktype: u32,
    max_record: u32,
}

#[derive(Clone, Copy)]
struct RecordHeader {
    ts_sec: u32,
    ts_frac: u32,
    incl_len: u32,
    orig_len: u32,
}

impl<R: Read> PcapReader<R> {
    /// Reads the file header from `source`.
    pub fn new(source: R) -> Result<Self, ReadError> {
        Self::from_buffer(Buffer::new(source))
    }

    pub(crate) fn from_buffer(mut buffer: Buffer<R>) -> Result<Self, ReadError> {
        if buffer.fill(FILE_HEADER)? < FILE_HEADER {
            return Err(ReadError::BadHeader("pcap file header is shorter than 24 bytes"));
        }
        let header = buffer.take(FILE_HEADER);
        let (big_endian, resolution) = match header[..4] {
            [0xd4, 0xc3, 0xb2, 0xa1] => (false, Resolution::Decimal(6)),
            [0x4d, 0x3c, 0xb2, 0xa1] => (false, Resolution::Decimal(9)),
            [0xa1, 0xb2, 0xc3, 0xd4] => (true, Resolution::Decimal(6)),
            [0xa1, 0xb2, 0x3c, 0x4d] => (true, Resolution::Decimal(9)),
            _ => return Err(ReadError::BadHeader("not a pcap magic number")),
        };
        let u16_at = |at: usize| {
            let b = [header[at], header[at + 1]];
            if big_endian { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) }
        };
        let u32_at = |at: usize| {
            let b = [header[at], header[at + 1], header[at + 2], header[at + 3]];
            if big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
        };
        if u16_at(4) != 2 {
            return Err(ReadError::BadHeader("unsupported pcap major version (only 2 exists)"));
        }
        let snaplen = u32_at(16);
        // Only the low 16 bits are the link type; the upper ones say whether frames carry an FCS.
        let linktype = u32_at(20) & 0xffff;
        let max_record = snaplen.max(LIBPCAP_MAX_SNAPLEN).min(MAX_RECORD as u32);
        Ok(PcapReader { buffer, big_endian, resolution, linktype, max_record })
    }

    /// The file's link type.
    pub fn linktype(&self) -> u32 {
        self.linktype
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.buffer.position()
    }

    #[inline]
    fn header_at(&self, bytes: &[u8]) -> RecordHeader {
        let u32_at = |at: usize| {
            let b = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
            if self.big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
        };
        RecordHeader { ts_sec: u32_at(0), ts_frac: u32_at(4), incl_len: u32_at(8), orig_len: u32_at(12) }
    }

    #[inline]
    fn plausible(&self, h: RecordHeader) -> bool {
        let frac_limit = match self.resolution {
            Resolution::Decimal(9) => 1_000_000_000,
            _ => 1_000_000,
        };
        // A captured length above the wire length is how a damaged length field usually shows.
        h.incl_len <= self.max_record && h.incl_len <= h.orig_len && h.ts_frac < frac_limit
    }

    /// Stricter test used while hunting for the next record: no empty records (runs of zero
    /// bytes inside a damaged record look like them).
    fn plausible_resync(&self, h: RecordHeader) -> bool {
        self.plausible(h) && h.incl_len > 0
    }

    /// The next frame, skip or end.
    #[inline]
    pub fn next_record(&mut self) -> Result<Next<'_>, ReadError> {
        let available = self.buffer.fill(RECORD_HEADER)?;
        if available == 0 {
            return Ok(Next::End);
        }
        if available < RECORD_HEADER {
            self.buffer.consume(available);
            return Ok(Next::Skipped(Skip::TruncatedRecord));
        }
        let header = self.header_at(self.buffer.peek(RECORD_HEADER));
        if !self.plausible(header) {
            self.resync()?;
            return Ok(Next::Skipped(Skip::CorruptRecord));
        }
        let total = RECORD_HEADER + header.incl_len as usize;
        let available = self.buffer.fill(total)?;
        if available < total {
            // Past the end of the file: either the file was cut short, or a damaged length (or a
            // record read one byte off after one) points beyond it while real records follow at
            // another offset. Those are read on from there rather than lost.
            let window = self.buffer.available();
            let found = (1..=window.len().saturating_sub(RECORD_HEADER)).find(|&at| self.chain_holds(window, at));
            if let Some(at) = found {
                self.buffer.consume(at);
                return Ok(Next::Skipped(Skip::CorruptRecord));
            }
            self.buffer.consume(available);
            return Ok(Next::Skipped(Skip::TruncatedRecord));
        }
        // Fractions are below a second (checked by `plausible`), so this cannot overflow.
        let frac_ns = match self.resolution {
            Resolution::Decimal(9) => u64::from(header.ts_frac),
            _ => u64::from(header.ts_frac) * 1_000,
        };
        let ts_ns = u64::from(header.ts_sec) * 1_000_000_000 + frac_ns;
        let linktype = self.linktype;
        let record = self.buffer.take(total);
        Ok(Next::Frame(Frame { ts_ns, linktype, data: &record[RECORD_HEADER..], orig_len: header.orig_len }))
    }

    /// Moves past a bad record header to the next offset where a plausible header is followed by
    /// another plausible header (or the end of the file).
    fn resync(&mut self) -> Result<(), ReadError> {
        self.buffer.consume(1);
        loop {
            let available = self.buffer.fill(RESYNC_WINDOW)?;
            if available < RECORD_HEADER {
                self.buffer.consume(available);
                return Ok(());
            }
            let window = self.buffer.available();
            let mut found = None;
            for at in 0..=window.len() - RECORD_HEADER {
                if self.chain_holds(window, at) {
                    found = Some(at);
                    break;
                }
            }
            match found {
                Some(at) => {
                    self.buffer.consume(at);
                    return Ok(());
                }
                None if self.buffer_is_final() => {
                    self.buffer.consume(available);
                    return Ok(());
                }
                // Keep the tail: a header may straddle the window's end.
                None => self.buffer.consume(available - RECORD_HEADER.max(available / 2).min(available - 1)),
            }
        }
    }

    /// Whether three plausible records follow each other from `at` (or fewer that end the file):
    /// runs of zero bytes inside a damaged record look like empty records, a chain of them rarely
    /// lines up with real ones.
    fn chain_holds(&self, window: &[u8], at: usize) -> bool {
        let mut position = at;
        for _ in 0..3 {
            if position == window.len() {
                return self.buffer_is_final();
            }
            if position + RECORD_HEADER > window.len() {
                // Past the end of the file the chain is broken; past the end of the buffer it
                // cannot be judged, so what was seen decides.
                return !self.buffer_is_final() && position > at;
            }
            let h = self.header_at(&window[position..]);
            if !self.plausible_resync(h) {
                return false;
            }
            position += RECORD_HEADER + h.incl_len as usize;
        }
        position <= window.len() || !self.buffer_is_final()
    }

    /// Whether the buffered bytes are all the file has left (`fill` reads until its want or the end).
    fn buffer_is_final(&self) -> bool {
        self.buffer.source_ended()
    }
}
