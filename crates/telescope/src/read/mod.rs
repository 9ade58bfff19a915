//! Capture file readers: pcap (either byte order, micro- or nanosecond stamps) and pcapng (any
//! number of sections and interfaces), plain or gzip/zstd compressed, told apart by their first
//! bytes rather than their names.
//!
//! Both readers hand out frames that borrow one large buffer, so a file in the page cache is
//! parsed without a copy per packet. A record whose header cannot be right (a length beyond any
//! snap length, a block that does not end with its own length) is counted as a skip and the reader
//! looks for the next plausible record, so one bad spot never loses the rest of the file.

mod buffer;
pub mod pcap;
pub mod pcapng;

#[cfg(feature = "live")]
pub mod live;

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use buffer::Buffer;

/// One captured frame, borrowed from the reader's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// The link type (LINKTYPE_* number) of the interface the frame came from.
    pub linktype: u32,
    /// The captured bytes (may be shorter than the frame on the wire).
    pub data: &'a [u8],
    /// The frame's length on the wire.
    pub orig_len: u32,
}

/// Why a record was skipped. Each is counted; the reader carries on after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Skip {
    /// A record header that cannot be right; the reader resynchronised after it.
    CorruptRecord,
    /// The file ended inside a record.
    TruncatedRecord,
    /// A pcapng packet block naming an interface that no block described.
    UnknownInterface,
}

impl Skip {
    /// A short name for counters and warnings.
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::CorruptRecord => "corrupt_record",
            Skip::TruncatedRecord => "truncated_record",
            Skip::UnknownInterface => "unknown_interface",
        }
    }
}

/// What the next step of a reader produced.
#[derive(Debug)]
pub enum Next<'a> {
    /// A frame.
    Frame(Frame<'a>),
    /// A skipped record.
    Skipped(Skip),
    /// The end of the capture.
    End,
}

/// Errors that stop a capture from being read at all.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The operating system refused a read.
    #[error("reading the capture: {0}")]
    Io(#[from] io::Error),
    /// The file is neither pcap nor pcapng (nor a compressed one of them).
    #[error("not a pcap or pcapng capture (first bytes {0:02x?})")]
    UnknownFormat(Vec<u8>),
    /// The file header is damaged.
    #[error("bad capture header: {0}")]
    BadHeader(&'static str),
}

/// The container format of a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Classic libpcap files.
    Pcap,
    /// The pcap next-generation block format.
    Pcapng,
}

/// A reader of either format.
pub enum CaptureReader<R: Read> {
    /// A classic pcap file.
    Pcap(pcap::PcapReader<R>),
    /// A pcapng file.
    Pcapng(pcapng::PcapngReader<R>),
}

/// The largest record either reader accepts; real captures stay far below (jumbo frames with a
/// 256 KiB snap length are the most libpcap writes).
pub const MAX_RECORD: usize = 16 << 20;

impl<R: Read> CaptureReader<R> {
    /// Reads the file header and picks the format by its magic number.
    pub fn new(source: R) -> Result<Self, ReadError> {
        let mut buffer = Buffer::new(source);
        buffer.fill(4)?;
        let magic = buffer.peek(4);
        match magic {
            [0xd4, 0xc3, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0xc3, 0xd4]
            | [0x4d, 0x3c, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0x3c, 0x4d] => Ok(CaptureReader::Pcap(pcap::PcapReader::from_buffer(buffer)?)),
            [0x0a, 0x0d, 0x0d, 0x0a] => Ok(CaptureReader::Pcapng(pcapng::PcapngReader::from_buffer(buffer)?)),
            other => Err(ReadError::UnknownFormat(other.to_vec())),
        }
    }

    /// The container format.
    pub fn format(&self) -> Format {
        match self {
            CaptureReader::Pcap(_) => Format::Pcap,
            CaptureReader::Pcapng(_) => Format::Pcapng,
        }
    }

    /// The next frame, skip or end.
    #[inline]
    pub fn next_record(&mut self) -> Result<Next<'_>, ReadError> {
        match self {
            CaptureReader::Pcap(r) => r.next_record(),
            CaptureReader::Pcapng(r) => r.next_record(),
        }
    }

    /// Bytes of the (decompressed) capture consumed so far.
    pub fn position(&self) -> u64 {
        match self {
            CaptureReader::Pcap(r) => r.position(),
            CaptureReader::Pcapng(r) => r.position(),
        }
    }
}

/// How a capture file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Not compressed.
    None,
    /// gzip (one or more members).
    Gzip,
    /// Zstandard.
    Zstd,
}

/// Tells compression from a file's first bytes.
pub fn sniff_compression(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Opens a capture file, decompressing gzip or zstd when its content says so.
pub fn open(path: &Path) -> Result<(CaptureReader<Box<dyn Read + Send>>, Compression), ReadError> {
    let mut file = File::open(path)?;
    let mut head = [0u8; 4];
    let got = read_up_to(&mut file, &mut head)?;
    let compression = sniff_compression(&head[..got]);
    let rest = io::Cursor::new(head[..got].to_vec()).chain(file);
    let source: Box<dyn Read + Send> = match compression {
        Compression::None => Box::new(rest),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::with_capacity(1 << 20, rest))),
        Compression::Zstd => Box::new(ZstdFrames::new(rest)?),
    };
    Ok((CaptureReader::new(source)?, compression))
}

/// Decodes every frame of a zstd stream, as `zstd -d` does: concatenated files and pzstd output
/// hold several frames, and skippable frames carry metadata to step over.
struct ZstdFrames<R: Read> {
    current: Option<ruzstd::decoding::StreamingDecoder<io::BufReader<R>, ruzstd::decoding::FrameDecoder>>,
}

fn zstd_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}"))
}

impl<R: Read> ZstdFrames<R> {
    fn new(source: R) -> io::Result<Self> {
        let mut frames = ZstdFrames { current: None };
        frames.start_frame(io::BufReader::with_capacity(1 << 20, source))?;
        Ok(frames)
    }

    /// Starts the next data frame, stepping over skippable ones; at the end leaves `current` empty.
    fn start_frame(&mut self, mut source: io::BufReader<R>) -> io::Result<()> {
        use io::BufRead;
        loop {
            let head = source.fill_buf()?;
            if head.is_empty() {
                self.current = None;
                return Ok(());
            }
            let mut magic = [0u8; 8];
            if head.len() >= 4 && u32::from_le_bytes([head[0], head[1], head[2], head[3]]) & 0xffff_fff0 == 0x184d_2a50
            {
                source.read_exact(&mut magic)?;
                let length = u64::from(u32::from_le_bytes([magic[4], magic[5], magic[6], magic[7]]));
                let skipped = io::copy(&mut (&mut source).take(length), &mut io::sink())?;
                if skipped < length {
                    return Err(zstd_error("file ends inside a skippable frame"));
                }
                continue;
            }
            self.current = Some(ruzstd::decoding::StreamingDecoder::new(source).map_err(zstd_error)?);
            return Ok(());
        }
    }
}

impl<R: Read> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(decoder) = self.current.as_mut() else { return Ok(0) };
            let n = decoder.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let decoder = self.current.take().expect("checked above");
            self.start_frame(decoder.into_inner())?;
        }
    }
}

fn read_up_to(source: &mut impl Read, out: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < out.len() {
        match source.read(&mut out[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Converts a stamp in units of `10^-digits` or `2^-bits` seconds to nanoseconds, saturating.
pub(crate) fn stamp_to_ns(stamp: u64, resolution: Resolution) -> u64 {
    match resolution {
        Resolution::Decimal(digits) if digits <= 9 => stamp.saturating_mul(10u64.pow(9 - u32::from(digits))),
        Resolution::Decimal(digits) => {
            let divisor = 10u128.checked_pow(u32::from(digits) - 9).unwrap_or(u128::MAX);
            (u128::from(stamp) / divisor) as u64
        }
        Resolution::Binary(bits) => {
            let ns = (u128::from(stamp) * 1_000_000_000) >> u32::from(bits).min(127);
            u64::try_from(ns).unwrap_or(u64::MAX)
        }
    }
}

/// A timestamp resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolution {
    /// 10^-n seconds.
    Decimal(u8),
    /// 2^-n seconds.
    Binary(u8),
}

#[cfg(test)]
mod tests;
