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

/// An unsigned big-endian integer of any length (IPFIX reduced-size encoding makes it 1 to 8
/// bytes). A longer field is read when its leading bytes are zero; a value that needs more than 64
/// bits is `None`, not its last 8 bytes: a cut-off number would be a different, wrong number.
pub(crate) fn uint(field: &[u8]) -> Option<u64> {
    let split = field.len().saturating_sub(8);
    let (high, low) = field.split_at(split);
    if high.iter().any(|b| *b != 0) {
        return None;
    }
    Some(low.iter().fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_wider_than_64_bits_are_refused_not_cut() {
        assert_eq!(uint(&[]), Some(0));
        assert_eq!(uint(&[1, 2]), Some(0x0102));
        assert_eq!(uint(&[0xff; 8]), Some(u64::MAX));
        assert_eq!(uint(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 7]), Some(7));
        assert_eq!(uint(&[1, 0, 0, 0, 0, 0, 0, 0, 7]), None);
    }
}
