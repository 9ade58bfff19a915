//! Android Debug Bridge: the CNXN message both sides of a connection open with. An ADB port that
//! answers a CNXN with its own is a device open to anyone on the network.

/// An ADB message: 24-byte header (command, two arguments, payload length, payload byte sum,
/// command xor all ones; little endian) and the payload.
pub fn message(command: [u8; 4], arg0: u32, arg1: u32, payload: &[u8]) -> Vec<u8> {
    let command = u32::from_le_bytes(command);
    let checksum: u32 = payload.iter().map(|b| u32::from(*b)).sum();
    let mut out = Vec::with_capacity(24 + payload.len());
    for word in [command, arg0, arg1, payload.len() as u32, checksum, command ^ 0xffff_ffff] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    out.extend_from_slice(payload);
    out
}

/// The CNXN a host sends (protocol version 0x01000000, max payload 4096).
pub fn host_connect() -> Vec<u8> {
    message(*b"CNXN", 0x0100_0000, 4096, b"host::\0")
}

/// Length of the payload announced by a header (`None` if shorter than a header).
pub fn payload_length(header: &[u8]) -> Option<usize> {
    let bytes: [u8; 4] = header.get(12..16)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cnxn_header_is_well_formed() {
        let message = host_connect();
        assert_eq!(&message[..4], b"CNXN");
        assert_eq!(payload_length(&message), Some(7));
        assert_eq!(&message[20..24], &(u32::from_le_bytes(*b"CNXN") ^ 0xffff_ffff).to_le_bytes());
        assert_eq!(payload_length(&message[..10]), None);
    }
}
