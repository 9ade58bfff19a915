use super::*;
use proptest::prelude::*;

/// A pcap file of `records` (ts_sec, ts_frac, data) in the given byte order and resolution.
pub(crate) fn pcap_bytes(big_endian: bool, nano: bool, linktype: u32, records: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
    let u16b = |v: u16| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let u32b = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut out = Vec::new();
    out.extend_from_slice(&u32b(if nano { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    out.extend_from_slice(&u16b(2));
    out.extend_from_slice(&u16b(4));
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&u32b(65_535));
    out.extend_from_slice(&u32b(linktype));
    for (sec, frac, data) in records {
        out.extend_from_slice(&u32b(*sec));
        out.extend_from_slice(&u32b(*frac));
        out.extend_from_slice(&u32b(data.len() as u32));
        out.extend_from_slice(&u32b(data.len() as u32 + 10));
        out.extend_from_slice(data);
    }
    out
}

/// (stamp, link type, bytes) of each frame read.
type Frames = Vec<(u64, u32, Vec<u8>)>;

fn collect(bytes: &[u8]) -> (Frames, Vec<Skip>) {
    let mut reader = CaptureReader::new(bytes).expect("header");
    let mut frames = Vec::new();
    let mut skips = Vec::new();
    for _ in 0..100_000 {
        match reader.next_record().expect("no io error") {
            Next::Frame(f) => frames.push((f.ts_ns, f.linktype, f.data.to_vec())),
            Next::Skipped(s) => skips.push(s),
            Next::End => return (frames, skips),
        }
    }
    panic!("reader did not end");
}

#[test]
fn pcap_in_both_byte_orders_and_resolutions() {
    let records = vec![(1_700_000_000, 250_000, vec![1, 2, 3]), (1_700_000_001, 999_999, vec![4; 60])];
    for big in [false, true] {
        let (frames, skips) = collect(&pcap_bytes(big, false, 1, &records));
        assert!(skips.is_empty());
        assert_eq!(frames[0], (1_700_000_000_250_000_000, 1, vec![1, 2, 3]));
        assert_eq!(frames[1].0, 1_700_000_001_999_999_000);
        let nano = vec![(1_700_000_000, 123_456_789, vec![9])];
        let (frames, _) = collect(&pcap_bytes(big, true, 101, &nano));
        assert_eq!(frames, vec![(1_700_000_000_123_456_789, 101, vec![9])]);
    }
}

#[test]
fn a_corrupt_pcap_record_is_skipped_and_the_rest_is_read() {
    let records: Vec<_> = (0..20).map(|i| (1_700_000_000 + i, 0, vec![i as u8; 40])).collect();
    let mut bytes = pcap_bytes(false, false, 1, &records);
    // Record 5's length field becomes absurd.
    let record_size = 16 + 40;
    let at = 24 + 5 * record_size + 8;
    bytes[at..at + 4].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let (frames, skips) = collect(&bytes);
    assert_eq!(skips, vec![Skip::CorruptRecord]);
    assert_eq!(frames.len(), 19, "only the damaged record is lost");
    assert_eq!(frames.last().unwrap().2, vec![19u8; 40]);
}

#[test]
fn a_truncated_last_record_is_counted() {
    let records: Vec<_> = (0..3).map(|i| (1_700_000_000 + i, 0, vec![7; 40])).collect();
    let bytes = pcap_bytes(false, false, 1, &records);
    let (frames, skips) = collect(&bytes[..bytes.len() - 10]);
    assert_eq!(frames.len(), 2);
    assert_eq!(skips, vec![Skip::TruncatedRecord]);
}

#[test]
fn not_a_capture_is_an_error() {
    assert!(matches!(CaptureReader::new(&b"hello world, not pcap"[..]), Err(ReadError::UnknownFormat(_))));
    assert!(CaptureReader::new(&[0xd4, 0xc3, 0xb2, 0xa1, 2][..]).is_err());
}

fn block(big: bool, kind: u32, body: &[u8]) -> Vec<u8> {
    let u32b = |v: u32| if big { v.to_be_bytes() } else { v.to_le_bytes() };
    let padded = body.len().div_ceil(4) * 4;
    let total = (12 + padded) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(&u32b(kind));
    out.extend_from_slice(&u32b(total));
    out.extend_from_slice(body);
    out.resize(8 + padded, 0);
    out.extend_from_slice(&u32b(total));
    out
}

pub(crate) fn pcapng_bytes(big: bool, interfaces: &[(u16, Option<u8>)], packets: &[(u32, u64, Vec<u8>)]) -> Vec<u8> {
    let u16b = |v: u16| if big { v.to_be_bytes() } else { v.to_le_bytes() };
    let u32b = |v: u32| if big { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut shb = Vec::new();
    shb.extend_from_slice(&u32b(0x1a2b_3c4d));
    shb.extend_from_slice(&u16b(1));
    shb.extend_from_slice(&u16b(0));
    shb.extend_from_slice(&[0xff; 8]);
    let mut out = block(big, 0x0a0d_0d0a, &shb);
    for (linktype, tsresol) in interfaces {
        let mut idb = Vec::new();
        idb.extend_from_slice(&u16b(*linktype));
        idb.extend_from_slice(&u16b(0));
        idb.extend_from_slice(&u32b(0));
        if let Some(r) = tsresol {
            idb.extend_from_slice(&u16b(9));
            idb.extend_from_slice(&u16b(1));
            idb.extend_from_slice(&[*r, 0, 0, 0]);
            idb.extend_from_slice(&[0; 4]);
        }
        out.extend(block(big, 1, &idb));
    }
    // A block type the reader does not know (name resolution) is skipped by its length.
    out.extend(block(big, 4, &[0; 8]));
    for (interface, stamp, data) in packets {
        let mut epb = Vec::new();
        epb.extend_from_slice(&u32b(*interface));
        epb.extend_from_slice(&u32b((stamp >> 32) as u32));
        epb.extend_from_slice(&u32b(*stamp as u32));
        epb.extend_from_slice(&u32b(data.len() as u32));
        epb.extend_from_slice(&u32b(data.len() as u32));
        epb.extend_from_slice(data);
        out.extend(block(big, 6, &epb));
    }
    out
}

#[test]
fn pcapng_with_several_interfaces_resolutions_and_byte_orders() {
    for big in [false, true] {
        let bytes = pcapng_bytes(
            big,
            &[(1, None), (113, Some(9))],
            &[(0, 1_700_000_000_000_001, vec![1, 2, 3, 4, 5]), (1, 1_700_000_000_000_000_002, vec![6])],
        );
        let (frames, skips) = collect(&bytes);
        assert!(skips.is_empty(), "{skips:?}");
        assert_eq!(frames[0], (1_700_000_000_000_001_000, 1, vec![1, 2, 3, 4, 5]));
        assert_eq!(frames[1], (1_700_000_000_000_000_002, 113, vec![6]));
    }
}

#[test]
fn pcapng_packet_for_an_undescribed_interface_is_skipped() {
    let bytes = pcapng_bytes(false, &[(1, None)], &[(3, 5, vec![1]), (0, 5, vec![2])]);
    let (frames, skips) = collect(&bytes);
    assert_eq!(skips, vec![Skip::UnknownInterface]);
    assert_eq!(frames.len(), 1);
}

#[test]
fn a_corrupt_pcapng_block_is_skipped_and_the_rest_is_read() {
    let packets: Vec<_> = (0..10).map(|i| (0, 1_000_000 * i as u64, vec![i as u8; 20])).collect();
    let mut bytes = pcapng_bytes(false, &[(1, None)], &packets);
    // Damage the length of the fourth packet block (each is 12 + 20 + 20 = 52 bytes).
    let header = 28 + 20 + 20;
    let at = header + 3 * 52 + 4;
    bytes[at..at + 4].copy_from_slice(&13u32.to_le_bytes());
    let (frames, skips) = collect(&bytes);
    assert_eq!(skips, vec![Skip::CorruptRecord]);
    assert_eq!(frames.len(), 9);
}

#[test]
fn stamps_convert_at_every_resolution() {
    assert_eq!(stamp_to_ns(5, Resolution::Decimal(0)), 5_000_000_000);
    assert_eq!(stamp_to_ns(5, Resolution::Decimal(12)), 0);
    assert_eq!(stamp_to_ns(5_000, Resolution::Decimal(12)), 5);
    assert_eq!(stamp_to_ns(1 << 20, Resolution::Binary(20)), 1_000_000_000);
    assert_eq!(stamp_to_ns(u64::MAX, Resolution::Decimal(0)), u64::MAX);
}

proptest! {
    #[test]
    fn any_bytes_end_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        for magic in [&[0xd4u8, 0xc3, 0xb2, 0xa1][..], &[0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a][..]] {
            let mut input = magic.to_vec();
            input.extend_from_slice(&bytes);
            if let Ok(mut reader) = CaptureReader::new(&input[..]) {
                let mut steps = 0;
                while !matches!(reader.next_record(), Ok(Next::End) | Err(_)) {
                    steps += 1;
                    prop_assert!(steps <= input.len() + 2, "the reader must make progress");
                }
            }
        }
    }

    #[test]
    fn damage_loses_at_most_the_damaged_records(
        count in 2usize..40,
        hit in any::<prop::sample::Index>(),
        value in any::<u8>(),
    ) {
        let records: Vec<_> = (0..count).map(|i| (1_700_000_000 + i as u32, 0, vec![i as u8; 30])).collect();
        let mut bytes = pcap_bytes(false, false, 1, &records);
        let at = 24 + hit.index(bytes.len() - 24);
        bytes[at] = value;
        let (frames, skips) = collect(&bytes);
        prop_assert!(frames.len() + 2 >= count, "{} of {count} frames, skips {skips:?}", frames.len());
    }
}

/// Regression: zero-filled payload once looked like a run of empty records and the resync then
/// settled one byte before a real header, losing the whole file.
#[test]
fn damage_at_any_offset_loses_at_most_two_records() {
    let count = 24;
    let records: Vec<_> = (0..count).map(|i| (1_700_000_000 + i as u32, 0, vec![i as u8; 30])).collect();
    let base = pcap_bytes(false, false, 1, &records);
    for at in 24..base.len() {
        for value in [0, 16, 0xff] {
            let mut bytes = base.clone();
            bytes[at] = value;
            let (frames, skips) = collect(&bytes);
            let intact = frames.iter().filter(|f| f.2.len() == 30).count();
            assert!(intact + 2 >= count, "byte {at} = {value}: {intact} intact frames, skips {skips:?}");
        }
    }
}

/// Regression: the FCS bits above the 16-bit link type made every frame "unsupported".
#[test]
fn pcap_link_type_ignores_the_fcs_bits() {
    let bytes = pcap_bytes(false, false, 0x4400_0001, &[(1, 0, vec![1])]);
    assert_eq!(collect(&bytes).0[0].1, 1);
}

/// Regression: a damaged interface description used to shift every later interface's number.
#[test]
fn a_damaged_interface_keeps_its_number() {
    let mut bytes = pcapng_bytes(false, &[(101, Some(6)), (1, None)], &[(1, 7, vec![9])]);
    // Give the first description's time-resolution option a length beyond its block.
    let option = 28 + 8 + 8;
    bytes[option..option + 4].copy_from_slice(&[9, 0, 0x00, 0xff]);
    let (frames, skips) = collect(&bytes);
    assert_eq!(skips, vec![Skip::CorruptRecord]);
    assert_eq!(frames, vec![(7_000, 1, vec![9])]);
}

/// Regression (proptest seed d883f81e): a captured length one short made the next header read one
/// byte off; its length pointed past the end of the file and every later record was dropped as
/// "truncated".
#[test]
fn a_length_pointing_past_the_end_does_not_lose_the_records_after_it() {
    let count = 16;
    let records: Vec<_> = (0..count).map(|i| (1_700_000_000 + i as u32, 0, vec![i as u8; 30])).collect();
    let base = pcap_bytes(false, false, 1, &records);
    for record in 0..count {
        let mut bytes = base.clone();
        bytes[24 + record * 46 + 8] = 29;
        let (frames, skips) = collect(&bytes);
        assert!(frames.len() + 2 >= count, "record {record}: {} frames, skips {skips:?}", frames.len());
    }
    // A file really cut short inside its last record still ends with one truncated record.
    let (frames, skips) = collect(&base[..base.len() - 5]);
    assert_eq!((frames.len(), skips), (count - 1, vec![Skip::TruncatedRecord]));
}
