//! pcapng: blocks of `type, total length, body, total length`. A Section Header Block sets the
//! byte order and forgets earlier interfaces; each Interface Description Block adds an interface
//! with its link type and time resolution; Enhanced, Simple and (obsolete) Packet Blocks carry
//! frames. Every other block type is skipped by its length, as the format asks.

use std::io::Read;

use super::buffer::Buffer;
use super::{Frame, MAX_RECORD, Next, ReadError, Resolution, Skip, stamp_to_ns};

const SECTION_HEADER: u32 = 0x0a0d_0d0a;
const INTERFACE_DESCRIPTION: u32 = 1;
const OBSOLETE_PACKET: u32 = 2;
const SIMPLE_PACKET: u32 = 3;
const ENHANCED_PACKET: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
const OPTION_END: u16 = 0;
const OPTION_TSRESOL: u16 = 9;
const OPTION_TSOFFSET: u16 = 14;
/// A file may describe many interfaces, but not without bound.
const MAX_INTERFACES: usize = 4096;
const RESYNC_WINDOW: usize = 1 << 20;

#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: u32,
    snaplen: u32,
    resolution: Resolution,
    offset_sec: i64,
}

/// Reads a pcapng file.
pub struct PcapngReader<R> {
    buffer: Buffer<R>,
    big_endian: bool,
    interfaces: Vec<Interface>,
    last_ts_ns: u64,
}

impl<R: Read> PcapngReader<R> {
    /// Reads the first section header from `source`.
    pub fn new(source: R) -> Result<Self, ReadError> {
        Self::from_buffer(Buffer::new(source))
    }

    pub(crate) fn from_buffer(mut buffer: Buffer<R>) -> Result<Self, ReadError> {
        if buffer.fill(12)? < 12 {
            return Err(ReadError::BadHeader("pcapng section header is shorter than 12 bytes"));
        }
        let head = buffer.peek(12);
        if u32::from_le_bytes([head[0], head[1], head[2], head[3]]) != SECTION_HEADER {
            return Err(ReadError::BadHeader("pcapng file does not start with a section header block"));
        }
        let big_endian = match u32::from_le_bytes([head[8], head[9], head[10], head[11]]) {
            BYTE_ORDER_MAGIC => false,
            m if m.swap_bytes() == BYTE_ORDER_MAGIC => true,
            _ => return Err(ReadError::BadHeader("pcapng byte-order magic is missing")),
        };
        Ok(PcapngReader { buffer, big_endian, interfaces: Vec::new(), last_ts_ns: 0 })
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.buffer.position()
    }

    /// The interfaces described so far in the current section, as (link type, snap length).
    pub fn interfaces(&self) -> Vec<(u32, u32)> {
        self.interfaces.iter().map(|i| (i.linktype, i.snaplen)).collect()
    }

    fn u32_at(&self, bytes: &[u8], at: usize) -> u32 {
        let b = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        if self.big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
    }

    fn u16_at(&self, bytes: &[u8], at: usize) -> u16 {
        let b = [bytes[at], bytes[at + 1]];
        if self.big_endian { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) }
    }

    /// The next frame, skip or end. Non-packet blocks are consumed silently.
    pub fn next_record(&mut self) -> Result<Next<'_>, ReadError> {
        loop {
            let available = self.buffer.fill(12)?;
            if available == 0 {
                return Ok(Next::End);
            }
            if available < 12 {
                self.buffer.consume(available);
                return Ok(Next::Skipped(Skip::TruncatedRecord));
            }
            let head = self.buffer.peek(12);
            let raw_type = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
            if raw_type == SECTION_HEADER {
                // A new section may switch byte order; its magic sits after the length.
                let magic = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
                if magic == BYTE_ORDER_MAGIC {
                    self.big_endian = false;
                } else if magic.swap_bytes() == BYTE_ORDER_MAGIC {
                    self.big_endian = true;
                } else {
                    self.resync()?;
                    return Ok(Next::Skipped(Skip::CorruptRecord));
                }
                self.interfaces.clear();
            }
            let block_type = self.u32_at(head, 0);
            let length = self.u32_at(head, 4) as usize;
            if length < 12 || !length.is_multiple_of(4) || length > MAX_RECORD {
                self.resync()?;
                return Ok(Next::Skipped(Skip::CorruptRecord));
            }
            let available = self.buffer.fill(length)?;
            if available < length {
                self.buffer.consume(available);
                return Ok(Next::Skipped(Skip::TruncatedRecord));
            }
            let block = self.buffer.peek(length);
            if self.u32_at(block, length - 4) as usize != length {
                self.resync()?;
                return Ok(Next::Skipped(Skip::CorruptRecord));
            }
            match block_type {
                ENHANCED_PACKET | OBSOLETE_PACKET | SIMPLE_PACKET => return Ok(self.packet_block(block_type, length)),
                INTERFACE_DESCRIPTION => {
                    let interface = self.interface_block(block);
                    self.buffer.consume(length);
                    if self.interfaces.len() >= MAX_INTERFACES {
                        return Ok(Next::Skipped(Skip::CorruptRecord));
                    }
                    // Interfaces are numbered by position: a damaged description still takes its
                    // number (with a link type nothing parses), so later ones keep theirs.
                    let damaged = interface.is_none();
                    self.interfaces.push(interface.unwrap_or(Interface {
                        linktype: u32::MAX,
                        snaplen: 0,
                        resolution: Resolution::Decimal(6),
                        offset_sec: 0,
                    }));
                    if damaged {
                        return Ok(Next::Skipped(Skip::CorruptRecord));
                    }
                }
                _ => self.buffer.consume(length),
            }
        }
    }

    fn packet_block(&mut self, block_type: u32, length: usize) -> Next<'_> {
        let block = self.buffer.peek(length);
        let body = &block[8..length - 4];
        let (interface_id, stamp, captured, orig_len, data_at) = match block_type {
            ENHANCED_PACKET | OBSOLETE_PACKET if body.len() >= 20 => {
                let interface_id = if block_type == ENHANCED_PACKET {
                    self.u32_at(body, 0) as usize
                } else {
                    usize::from(self.u16_at(body, 0))
                };
                let stamp = (u64::from(self.u32_at(body, 4)) << 32) | u64::from(self.u32_at(body, 8));
                (interface_id, Some(stamp), self.u32_at(body, 12) as usize, self.u32_at(body, 16), 20)
            }
            SIMPLE_PACKET if body.len() >= 4 => {
                let orig_len = self.u32_at(body, 0);
                let captured = (orig_len as usize).min(body.len() - 4);
                // A snap length of 0 means "no limit".
                let captured = self.interfaces.first().map_or(captured, |i| match i.snaplen {
                    0 => captured,
                    snaplen => captured.min(snaplen as usize),
                });
                (0, None, captured, orig_len, 4)
            }
            _ => {
                self.buffer.consume(length);
                return Next::Skipped(Skip::CorruptRecord);
            }
        };
        let Some(interface) = self.interfaces.get(interface_id).copied() else {
            self.buffer.consume(length);
            return Next::Skipped(Skip::UnknownInterface);
        };
        if data_at + captured > body.len() {
            self.buffer.consume(length);
            return Next::Skipped(Skip::CorruptRecord);
        }
        // Simple packet blocks carry no time: they take the previous frame's.
        let ts_ns = stamp.map_or(self.last_ts_ns, |s| {
            let ns = stamp_to_ns(s, interface.resolution);
            ns.saturating_add_signed(interface.offset_sec.saturating_mul(1_000_000_000))
        });
        self.last_ts_ns = ts_ns;
        let block = self.buffer.take(length);
        let data = &block[8 + data_at..8 + data_at + captured];
        Next::Frame(Frame { ts_ns, linktype: interface.linktype, data, orig_len })
    }

    fn interface_block(&self, block: &[u8]) -> Option<Interface> {
        let body = &block[8..block.len() - 4];
        if body.len() < 8 {
            return None;
        }
        let linktype = u32::from(self.u16_at(body, 0));
        let snaplen = self.u32_at(body, 4);
        let mut interface = Interface { linktype, snaplen, resolution: Resolution::Decimal(6), offset_sec: 0 };
        let mut options = &body[8..];
        while options.len() >= 4 {
            let code = self.u16_at(options, 0);
            let len = usize::from(self.u16_at(options, 2));
            let padded = len.div_ceil(4) * 4;
            if 4 + padded > options.len() {
                return None;
            }
            let value = &options[4..4 + len];
            match code {
                OPTION_END => break,
                OPTION_TSRESOL if len == 1 => {
                    let v = value[0];
                    interface.resolution =
                        if v & 0x80 == 0 { Resolution::Decimal(v) } else { Resolution::Binary(v & 0x7f) };
                }
                OPTION_TSOFFSET if len == 8 => {
                    let hi = u64::from(self.u32_at(value, 0));
                    let lo = u64::from(self.u32_at(value, 4));
                    interface.offset_sec =
                        if self.big_endian { (hi << 32 | lo) as i64 } else { (lo << 32 | hi) as i64 };
                }
                _ => {}
            }
            options = &options[4 + padded..];
        }
        Some(interface)
    }

    /// Moves to the next offset that holds a known block type whose length field is repeated at
    /// its end.
    fn resync(&mut self) -> Result<(), ReadError> {
        self.buffer.consume(4);
        loop {
            let available = self.buffer.fill(RESYNC_WINDOW)?;
            if available < 12 {
                self.buffer.consume(available);
                return Ok(());
            }
            let window = self.buffer.available();
            let mut found = None;
            let mut at = 0;
            while at + 12 <= window.len() {
                let block_type = self.u32_at(window, at);
                let length = self.u32_at(window, at + 4) as usize;
                let known = matches!(
                    block_type,
                    SECTION_HEADER | INTERFACE_DESCRIPTION | ENHANCED_PACKET | SIMPLE_PACKET | OBSOLETE_PACKET | 4 | 5
                );
                if known
                    && length >= 12
                    && length.is_multiple_of(4)
                    && at + length <= window.len()
                    && self.u32_at(window, at + length - 4) as usize == length
                {
                    found = Some(at);
                    break;
                }
                // Blocks are 32-bit aligned, so only aligned offsets need looking at.
                at += 4;
            }
            match found {
                Some(at) => {
                    self.buffer.consume(at);
                    return Ok(());
                }
                None if self.buffer.source_ended() => {
                    self.buffer.consume(available);
                    return Ok(());
                }
                None => self.buffer.consume((available / 2).max(4) & !3),
            }
        }
    }
}
