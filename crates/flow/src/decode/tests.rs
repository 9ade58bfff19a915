use std::net::SocketAddr;

use botscope_telescope::packet::Addr;
use proptest::prelude::*;

use super::*;
use crate::export::{Exporter, Format};

fn exporter() -> SocketAddr {
    "127.0.0.1:40000".parse().unwrap()
}

fn sample_flows(n: usize) -> Vec<Flow> {
    (0..n)
        .map(|i| Flow {
            start_ms: 1_793_577_600_000 + i as i64 * 1_000,
            end_ms: 1_793_577_600_000 + i as i64 * 1_000 + 2_500,
            src: Addr::v4(0x7f10_0000 + i as u32),
            dst: Addr::v4(0x7fc8_0001),
            src_port: 40_000 + i as u16,
            dst_port: 23,
            protocol: 6,
            tcp_flags: 0x1b,
            packets: 10 * (i as u64 + 1),
            bytes: 600 * (i as u64 + 1),
            reply_packets: 0,
            reply_bytes: 0,
        })
        .collect()
}

fn round_trip(format: Format, sampling: u32, flows: &[Flow]) -> (Vec<Flow>, DecodeStats) {
    let mut encoder = Exporter::new(format).with_sampling(sampling);
    let mut datagrams = Vec::new();
    encoder.encode(flows, 1_793_581_200_000, &mut datagrams);
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    for d in &datagrams {
        decoder.decode(exporter(), d, 1_793_581_200_000, &mut out).unwrap();
    }
    (out, decoder.stats)
}

#[test]
fn every_format_round_trips_the_flows() {
    let flows = sample_flows(100);
    for format in [Format::V5, Format::V9, Format::Ipfix] {
        let (out, stats) = round_trip(format, 1, &flows);
        assert_eq!(out, flows, "{format:?}");
        assert_eq!(stats.sequence_lost, 0, "{format:?}");
        assert_eq!(stats.malformed + stats.unknown_template_sets, 0, "{format:?}");
    }
    let (out, _) = round_trip(Format::Sflow, 1, &flows);
    assert_eq!(out.len(), flows.len());
    for (got, want) in out.iter().zip(&flows) {
        assert_eq!(
            (got.src, got.dst, got.dst_port, got.packets, got.bytes),
            (want.src, want.dst, want.dst_port, want.packets, want.bytes)
        );
    }
}

#[test]
fn sampling_rate_is_applied() {
    let flows = sample_flows(10);
    for format in [Format::V5, Format::V9, Format::Ipfix] {
        let (out, _) = round_trip(format, 10, &flows);
        let packets: u64 = out.iter().map(|f| f.packets).sum();
        assert_eq!(packets, flows.iter().map(|f| f.packets).sum::<u64>(), "{format:?}");
    }
}

#[test]
fn data_before_its_template_is_counted_then_decoded_once_the_template_arrives() {
    let flows = sample_flows(60);
    let mut encoder = Exporter::new(Format::Ipfix);
    let mut datagrams = Vec::new();
    encoder.encode(&flows, 1_793_581_200_000, &mut datagrams);
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    // The second datagram carries no template: before the first, it is undecodable.
    decoder.decode(exporter(), &datagrams[1], 0, &mut out).unwrap();
    assert_eq!((out.len(), decoder.stats.unknown_template_sets), (0, 1));
    decoder.decode(exporter(), &datagrams[0], 0, &mut out).unwrap();
    decoder.decode(exporter(), &datagrams[1], 0, &mut out).unwrap();
    assert_eq!(out.len(), 48);
}

#[test]
fn a_changed_template_is_counted_and_used() {
    let flows = sample_flows(30);
    let mut datagrams = Vec::new();
    Exporter::new(Format::V9).encode(&flows, 1_793_581_200_000, &mut datagrams);
    let mut changed = datagrams[0].clone();
    // Template field 7 (source port, at offset 20 + 4 + 4 + 2*4) becomes an ignored element.
    let at = 20 + 8 + 8;
    assert_eq!(u16::from_be_bytes([changed[at], changed[at + 1]]), 7);
    changed[at..at + 2].copy_from_slice(&5u16.to_be_bytes());
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    decoder.decode(exporter(), &datagrams[0], 0, &mut out).unwrap();
    decoder.decode(exporter(), &changed, 0, &mut out).unwrap();
    assert_eq!(decoder.stats.template_changes, 1);
    assert!(out[24..].iter().all(|f| f.src_port == 0));
}

#[test]
fn sequence_gaps_are_counted() {
    let flows = sample_flows(90);
    let mut datagrams = Vec::new();
    Exporter::new(Format::V5).encode(&flows, 1_793_581_200_000, &mut datagrams);
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    decoder.decode(exporter(), &datagrams[0], 0, &mut out).unwrap();
    decoder.decode(exporter(), &datagrams[2], 0, &mut out).unwrap();
    assert_eq!(decoder.stats.sequence_lost, 30);
}

#[test]
fn truncated_v5_keeps_the_whole_records() {
    let flows = sample_flows(30);
    let mut datagrams = Vec::new();
    Exporter::new(Format::V5).encode(&flows, 1_793_581_200_000, &mut datagrams);
    let cut = &datagrams[0][..24 + 48 * 7 + 20];
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    assert!(decoder.decode(exporter(), cut, 0, &mut out).is_err());
    assert_eq!((out.len(), decoder.stats.malformed), (7, 1));
}

#[test]
fn unknown_versions_and_scraps_are_errors() {
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    assert!(decoder.decode(exporter(), b"", 0, &mut out).is_err());
    assert!(decoder.decode(exporter(), b"\x00\x07abcdefgh", 0, &mut out).is_err());
    assert!(decoder.decode(exporter(), b"\x00\x00\x00\x04abcdefgh", 0, &mut out).is_err());
    assert_eq!(decoder.stats.unknown_version, 2);
    assert_eq!(decoder.stats.malformed, 1);
}

#[test]
fn ipfix_variable_length_and_enterprise_fields_are_skipped_correctly() {
    // Template 300: sourceIPv4Address, an enterprise field (variable length), destinationIPv4Address,
    // packetDeltaCount (4 bytes, reduced-size encoding), a variable-length standard field.
    let mut m = vec![0, 10, 0, 0, 0x6a, 0xe0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
    let template: &[u8] = &[
        0, 2, 0, 32, 1, 44, 0, 5, 0, 8, 0, 4, 0x80, 1, 0xff, 0xff, 0, 0, 0x9e, 0x6a, 0, 12, 0, 4, 0, 2, 0, 4, 0, 82,
        0xff, 0xff,
    ];
    m.extend_from_slice(template);
    let mut data = vec![1, 44, 0, 0];
    data.extend_from_slice(&[127, 16, 0, 1, 3, b'a', b'b', b'c', 127, 200, 0, 1, 0, 0, 0, 9, 255, 1, 44]);
    data.extend(std::iter::repeat_n(b'x', 300));
    data.extend_from_slice(&[127, 16, 0, 2, 0, 127, 200, 0, 2, 0, 0, 0, 4, 1, b'e']);
    while data.len() % 4 != 0 {
        data.push(0);
    }
    let len = data.len() as u16;
    data[2..4].copy_from_slice(&len.to_be_bytes());
    m.extend_from_slice(&data);
    let total = m.len() as u16;
    m[2..4].copy_from_slice(&total.to_be_bytes());
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    decoder.decode(exporter(), &m, 0, &mut out).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!((out[0].dst, out[0].packets), (Addr::v4(0x7fc8_0001), 9));
    assert_eq!((out[1].src, out[1].packets), (Addr::v4(0x7f10_0002), 4));
    assert_eq!(decoder.stats.malformed, 0);
}

#[test]
fn templates_are_bounded() {
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    for port in 0..(MAX_TEMPLATES / 200 + 2) as u16 {
        // One IPFIX message with 200 templates of one field each.
        let mut m = vec![0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let mut set = vec![0, 2, 0, 0];
        for id in 256..456u16 {
            set.extend_from_slice(&id.to_be_bytes());
            set.extend_from_slice(&[0, 1, 0, 8, 0, 4]);
        }
        let len = set.len() as u16;
        set[2..4].copy_from_slice(&len.to_be_bytes());
        m.extend_from_slice(&set);
        let total = m.len() as u16;
        m[2..4].copy_from_slice(&total.to_be_bytes());
        let from = SocketAddr::from(([127, 0, 0, 1], 1000 + port));
        decoder.decode(from, &m, 0, &mut out).unwrap();
    }
    assert_eq!(decoder.template_count(), MAX_TEMPLATES);
    assert!(decoder.stats.templates_refused > 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1600), version in 0u8..4) {
        let mut datagram = bytes;
        // Steer a share of the inputs into each decoder.
        let header: &[u8] = match version { 0 => &[0, 5], 1 => &[0, 9], 2 => &[0, 10], _ => &[0, 0, 0, 5] };
        datagram.splice(0..datagram.len().min(header.len()), header.iter().copied());
        let mut decoder = Decoder::new();
        let mut out = Vec::new();
        let _ = decoder.decode(exporter(), &datagram, 0, &mut out);
        prop_assert!(out.len() <= datagram.len());
    }

    #[test]
    fn mutated_exports_never_panic(flip in proptest::collection::vec((0usize..1500, any::<u8>()), 1..8), format in 0u8..4) {
        let format = [Format::V5, Format::V9, Format::Ipfix, Format::Sflow][format as usize];
        let mut datagrams = Vec::new();
        Exporter::new(format).encode(&sample_flows(20), 1_793_581_200_000, &mut datagrams);
        let mut decoder = Decoder::new();
        let mut out = Vec::new();
        for mut d in datagrams {
            for (at, byte) in &flip {
                let n = d.len();
                d[at % n] = *byte;
            }
            let _ = decoder.decode(exporter(), &d, 0, &mut out);
        }
    }
}

#[test]
fn regression_a_flow_ending_after_the_export_second_keeps_its_time() {
    // NetFlow v9 headers carry whole seconds; a flow ending 0.9 s into that second lies "after"
    // the export time and must not be read as 49.7 days (2^32 ms) earlier.
    let mut flows = sample_flows(1);
    let now = 1_793_581_200_000 + 999;
    flows[0].start_ms = now - 3_000;
    flows[0].end_ms = now - 50;
    for format in [Format::V5, Format::V9] {
        let mut datagrams = Vec::new();
        Exporter::new(format).encode(&flows, now, &mut datagrams);
        let mut decoder = Decoder::new();
        let mut out = Vec::new();
        decoder.decode(exporter(), &datagrams[0], 0, &mut out).unwrap();
        assert_eq!(out, flows, "{format:?}");
    }
}
