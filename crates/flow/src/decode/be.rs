//! Bounds-checked big-endian reads: every decoder reads through these, so a short datagram is an
//! error value, never a panic.

pub(crate) fn u8_at(b: &[u8], at: usize) -> Option<u8> {
    b.get(at).copied()
}

pub(crate) fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// An unsigned integer of 1 to 8 bytes (IPFIX reduced-size encoding); longer fields keep their
/// last 8 bytes.
pub(crate) fn uint(field: &[u8]) -> u64 {
    let tail = &field[field.len().saturating_sub(8)..];
    tail.iter().fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte))
}
