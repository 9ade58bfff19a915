use std::net::SocketAddr;

use botscope_net::packet::Addr;
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

/// Finding 10 of issue 16: `mutated_exports_never_panic` hit `attempt to multiply with overflow`
/// on flowStartSeconds times 1000 (release builds wrapped to a time in 1706 or 2233). The flips
/// turn the v9 template's octetDeltaCount (8 bytes) into flowStartSeconds and set the top byte of
/// one record's count, which then says 2^56 seconds.
#[test]
fn regression_flow_start_seconds_overflowing_ms_is_a_counted_skip_not_a_wrapped_time() {
    let mut datagrams = Vec::new();
    Exporter::new(Format::V9).encode(&sample_flows(20), 1_793_581_200_000, &mut datagrams);
    assert_eq!(datagrams.len(), 1);
    let mut d = datagrams.remove(0);
    for (at, byte) in [(921usize, 150u8), (278, 1)] {
        let n = d.len();
        d[at % n] = byte;
    }
    assert_eq!(&d[56..58], &[0, 150], "the eighth template field is now flowStartSeconds");
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    decoder.decode(exporter(), &d, 0, &mut out).unwrap();
    assert_eq!(decoder.stats.time_out_of_range, 1, "{:?}", decoder.stats);
    assert_eq!(out.len(), 19, "the other records are kept");
    for flow in &out {
        assert!(crate::time_in_range(flow.start_ms) && flow.start_ms <= flow.end_ms, "{flow:?}");
        // Their "start" is their byte count read as seconds: 600 s per flow number.
        assert_eq!(flow.start_ms % 600_000, 0, "{flow:?}");
    }
}

/// One IPFIX message (export time `secs`, domain 1): a template 256 of source and destination
/// address plus `fields`, then one data record of the addresses plus `values`. With `boot`, an
/// options template 257 and a record giving systemInitTimeMilliseconds come first.
fn ipfix_message(secs: u32, boot: Option<&[u8]>, fields: &[(u16, u16)], values: &[u8]) -> Vec<u8> {
    fn set(m: &mut Vec<u8>, id: u16, body: &[u8]) {
        m.extend_from_slice(&id.to_be_bytes());
        m.extend_from_slice(&(body.len() as u16 + 4).to_be_bytes());
        m.extend_from_slice(body);
    }
    let mut m = vec![0, 10, 0, 0];
    m.extend_from_slice(&secs.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
    if let Some(boot) = boot {
        let mut t = vec![1, 1, 0, 2, 0, 1, 0, 149, 0, 4, 0, 160];
        t.extend_from_slice(&(boot.len() as u16).to_be_bytes());
        set(&mut m, 3, &t);
        let mut r = vec![0, 0, 0, 1];
        r.extend_from_slice(boot);
        set(&mut m, 257, &r);
    }
    let mut t = vec![1, 0];
    t.extend_from_slice(&(fields.len() as u16 + 2).to_be_bytes());
    t.extend_from_slice(&[0, 8, 0, 4, 0, 12, 0, 4]);
    for (id, len) in fields {
        t.extend_from_slice(&id.to_be_bytes());
        t.extend_from_slice(&len.to_be_bytes());
    }
    set(&mut m, 2, &t);
    let mut r = vec![127, 16, 0, 1, 127, 200, 0, 1];
    r.extend_from_slice(values);
    set(&mut m, 256, &r);
    let len = m.len() as u16;
    m[2..4].copy_from_slice(&len.to_be_bytes());
    m
}

fn decode_one(m: &[u8]) -> (Vec<Flow>, DecodeStats) {
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    let _ = decoder.decode(exporter(), m, 0, &mut out);
    (out, decoder.stats)
}

/// What an absolute IPFIX time element with `value` means, computed without overflow; `None`
/// when it is no time botscope accepts.
fn expected_ms(element: u16, value: u64) -> Option<i64> {
    let ms = match element {
        150 | 151 => i128::from(value) * 1000,
        152 | 153 => i128::from(value),
        _ => {
            let secs = i128::from(value >> 32) - 2_208_988_800;
            secs * 1000 + ((i128::from(value & 0xffff_ffff) * 1000) >> 32)
        }
    };
    i64::try_from(ms).ok().filter(|ms| crate::time_in_range(*ms))
}

fn hostile_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(u64::MAX),
        Just(u64::from(u32::MAX)),
        Just(i64::MAX as u64),
        Just(i64::MAX as u64 / 1000 + 1),
        Just(crate::LATEST_MS as u64),
        Just(crate::LATEST_MS as u64 + 1),
        Just(0u64),
        any::<u64>(),
        0u64..1 << 40,
    ]
}

#[test]
fn an_ipfix_time_at_the_edge_of_the_range_is_kept_and_one_past_it_is_skipped() {
    let last = (crate::LATEST_MS as u64).to_be_bytes();
    let (out, _) = decode_one(&ipfix_message(0, None, &[(153, 8)], &last));
    assert_eq!(out[0].end_ms, crate::LATEST_MS);
    let past = (crate::LATEST_MS as u64 + 1).to_be_bytes();
    let (out, stats) = decode_one(&ipfix_message(0, None, &[(153, 8)], &past));
    assert_eq!((out.len(), stats.time_out_of_range), (0, 1));
    // Seconds whose milliseconds do not fit 64 bits, and milliseconds above i64::MAX (which an
    // `as i64` cast made negative).
    for (element, value) in [(150u16, u64::MAX / 999), (152, u64::MAX)] {
        let (out, stats) = decode_one(&ipfix_message(0, None, &[(element, 8)], &value.to_be_bytes()));
        assert_eq!((out.len(), stats.time_out_of_range), (0, 1), "{element}");
    }
}

#[test]
fn regression_an_ipfix_withdrawal_leaves_netflow_v9_templates_alone() {
    // "Withdraw all templates" (template id 2, no fields) named only the exporter and domain,
    // so an IPFIX message also dropped the same exporter's NetFlow v9 templates.
    let mut datagrams = Vec::new();
    Exporter::new(Format::V9).encode(&sample_flows(48), 1_793_581_200_000, &mut datagrams);
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    decoder.decode(exporter(), &datagrams[0], 0, &mut out).unwrap();
    let withdraw_all = [0, 10, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 0, 8, 0, 2, 0, 0];
    decoder.decode(exporter(), &withdraw_all, 0, &mut out).unwrap();
    decoder.decode(exporter(), &datagrams[1], 0, &mut out).unwrap();
    assert_eq!(decoder.stats.unknown_template_sets, 0);
    assert_eq!(out.len(), 48);
}

#[test]
fn sflow_fields_wider_than_their_protocol_field_are_counted() {
    let mut datagrams = Vec::new();
    Exporter::new(Format::Sflow).encode(&sample_flows(1), 0, &mut datagrams);
    // Header 28 bytes, sample header 8 + 32, record header 8: the sampled IPv4 record at 76;
    // its destination port at 76 + 20.
    let mut wide_port = datagrams[0].clone();
    wide_port[96..100].copy_from_slice(&70_000u32.to_be_bytes());
    let (out, stats) = decode_one(&wide_port);
    assert_eq!((out.len(), stats.value_out_of_range), (0, 1));
    let mut wide_protocol = datagrams[0].clone();
    wide_protocol[80..84].copy_from_slice(&(256 + 6u32).to_be_bytes());
    let (out, stats) = decode_one(&wide_protocol);
    assert_eq!((out.len(), stats.value_out_of_range), (0, 1));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Absolute time elements with any value: the flow's time is the value's exact meaning, or
    /// the record is a counted skip. A field wider than 8 bytes holds the same number when its
    /// leading bytes are zero, and is a counted skip when they are not.
    #[test]
    fn hostile_ipfix_times_give_the_exact_time_or_a_counted_skip(
        element in prop_oneof![Just(150u16), Just(151), Just(152), Just(153), Just(154), Just(155), Just(156), Just(157)],
        value in hostile_u64(),
        wide in prop_oneof![Just(None), Just(Some(0u8)), Just(Some(1u8))],
        secs in any::<u32>(),
    ) {
        let mut bytes = Vec::new();
        if let Some(high) = wide {
            bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, high]);
        }
        bytes.extend_from_slice(&value.to_be_bytes());
        let (out, stats) = decode_one(&ipfix_message(secs, None, &[(element, bytes.len() as u16)], &bytes));
        let export_ms = i64::from(secs) * 1000;
        match (wide, expected_ms(element, value)) {
            (Some(1), _) => prop_assert_eq!((out.len(), stats.value_out_of_range), (0, 1)),
            (_, None) => prop_assert_eq!((out.len(), stats.time_out_of_range), (0, 1)),
            (_, Some(ms)) => {
                prop_assert_eq!(out.len(), 1);
                let f = out[0];
                if matches!(element, 150 | 152 | 154 | 156) {
                    prop_assert_eq!((f.start_ms, f.end_ms), (ms.min(export_ms), export_ms));
                } else {
                    prop_assert_eq!((f.start_ms, f.end_ms), (ms, ms));
                }
            }
        }
    }

    /// systemInitTimeMilliseconds from options data plus 32-bit uptime stamps.
    #[test]
    fn hostile_boot_times_and_uptimes_give_the_exact_time_or_a_counted_skip(
        boot in hostile_u64(),
        start in any::<u32>(),
        end in prop_oneof![Just(u32::MAX), any::<u32>()],
    ) {
        let mut values = start.to_be_bytes().to_vec();
        values.extend_from_slice(&end.to_be_bytes());
        let m = ipfix_message(7, Some(&boot.to_be_bytes()), &[(22, 4), (21, 4)], &values);
        let (out, stats) = decode_one(&m);
        match i64::try_from(boot).ok().filter(|b| crate::time_in_range(*b)) {
            None => {
                // The options record is skipped; without a boot time the stamps mean nothing and
                // the flow takes the export time.
                prop_assert_eq!(stats.time_out_of_range, 1);
                prop_assert_eq!((out[0].start_ms, out[0].end_ms), (7_000, 7_000));
            }
            Some(boot) => {
                let at = |stamp: u32| i64::try_from(i128::from(boot) + i128::from(stamp)).ok().filter(|ms| crate::time_in_range(*ms));
                match (at(start), at(end)) {
                    (Some(s), Some(e)) => prop_assert_eq!((out[0].start_ms, out[0].end_ms), (s.min(e), e)),
                    _ => prop_assert_eq!((out.len(), stats.time_out_of_range), (0, 1)),
                }
            }
        }
    }

    /// NetFlow v5 and v9 place uptime stamps against the header's export time and uptime: any
    /// values give times in range, end not before start, and the modular distance exactly.
    #[test]
    fn hostile_v5_and_v9_header_times_never_wrap(
        secs in prop_oneof![Just(u32::MAX), Just(0u32), any::<u32>()],
        nsecs in prop_oneof![Just(u32::MAX), any::<u32>()],
        uptime in prop_oneof![Just(u32::MAX), Just(0u32), any::<u32>()],
        first in prop_oneof![Just(u32::MAX), Just(0u32), any::<u32>()],
        last in prop_oneof![Just(u32::MAX), Just(0u32), any::<u32>()],
        v9 in any::<bool>(),
    ) {
        let mut datagrams = Vec::new();
        Exporter::new(if v9 { Format::V9 } else { Format::V5 }).encode(&sample_flows(1), 1_793_581_200_000, &mut datagrams);
        let mut d = datagrams.remove(0);
        d[4..8].copy_from_slice(&uptime.to_be_bytes());
        d[8..12].copy_from_slice(&secs.to_be_bytes());
        if v9 {
            // Header 20, templates 48 and 20, options data 12, data set header 4: the record at
            // 104, its uptime stamps 30 bytes in.
            d[134..138].copy_from_slice(&first.to_be_bytes());
            d[138..142].copy_from_slice(&last.to_be_bytes());
        } else {
            d[12..16].copy_from_slice(&nsecs.to_be_bytes());
            d[24 + 24..24 + 28].copy_from_slice(&first.to_be_bytes());
            d[24 + 28..24 + 32].copy_from_slice(&last.to_be_bytes());
        }
        let (out, stats) = decode_one(&d);
        prop_assert_eq!(out.len(), 1, "{:?}", stats);
        let export_ms = i128::from(secs) * 1000 + if v9 { 0 } else { i128::from(nsecs.min(999_999_999) / 1_000_000) };
        let at = |stamp: u32| export_ms - i128::from(uptime.wrapping_sub(stamp) as i32);
        prop_assert_eq!(i128::from(out[0].end_ms), at(last));
        prop_assert_eq!(i128::from(out[0].start_ms), at(first).min(at(last)));
        prop_assert!(crate::time_in_range(out[0].start_ms) && crate::time_in_range(out[0].end_ms));
    }

    /// A count times the sampling rate is exact or a counted skip, never wrapped or clamped.
    #[test]
    fn hostile_counts_and_sampling_rates_never_wrap(
        packets in hostile_u64(),
        rate in prop_oneof![Just(u64::MAX), Just(u64::from(u32::MAX)), Just(0u64), Just(1u64), any::<u64>()],
        space in prop_oneof![Just(None), Just(Some(u64::MAX)), any::<u64>().prop_map(Some)],
    ) {
        // With a packet space, the rate comes from samplingPacketInterval and Space.
        let (fields, values): (Vec<(u16, u16)>, Vec<u8>) = match space {
            None => (vec![(2, 8), (34, 8)], [packets.to_be_bytes(), rate.to_be_bytes()].concat()),
            Some(space) => (
                vec![(2, 8), (305, 8), (306, 8)],
                [packets.to_be_bytes(), rate.to_be_bytes(), space.to_be_bytes()].concat(),
            ),
        };
        let (out, stats) = decode_one(&ipfix_message(0, None, &fields, &values));
        let effective = match space {
            None => u128::from(rate.max(1)),
            Some(_) if rate == 0 => 1,
            // A rate beyond 64 bits is taken as 2^64 - 1.
            Some(space) => (u128::from(space / rate) + 1).min(u128::from(u64::MAX)),
        };
        match u64::try_from(u128::from(packets) * effective) {
            Ok(total) => prop_assert_eq!(out[0].packets, total),
            Err(_) => prop_assert_eq!((out.len(), stats.value_out_of_range), (0, 1)),
        }
    }

    /// Templates of any shape (field counts that lie, zero and 65535 lengths, enterprise bits,
    /// variable-length fields) followed by any data: no panic in a debug build, and every flow
    /// that comes out has its times in range.
    #[test]
    fn hostile_templates_never_panic_or_give_a_time_out_of_range(
        fields in proptest::collection::vec(
            (prop_oneof![any::<u16>(), 0u16..200, Just(0x8000 | 150)], prop_oneof![Just(0u16), Just(1), Just(4), Just(8), Just(16), Just(65_535), any::<u16>()]),
            0..40,
        ),
        declared in prop_oneof![Just(None), Just(Some(u16::MAX)), Just(Some(0u16)), any::<u16>().prop_map(Some)],
        data in proptest::collection::vec(prop_oneof![Just(0xffu8), Just(0u8), any::<u8>()], 0..1400),
        ipfix in any::<bool>(),
    ) {
        let mut template = vec![1, 0];
        template.extend_from_slice(&declared.unwrap_or(fields.len() as u16).to_be_bytes());
        for (id, len) in &fields {
            template.extend_from_slice(&id.to_be_bytes());
            template.extend_from_slice(&len.to_be_bytes());
            if ipfix && id & 0x8000 != 0 {
                template.extend_from_slice(&u32::MAX.to_be_bytes());
            }
        }
        let mut m = if ipfix {
            vec![0, 10, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1]
        } else {
            vec![0, 9, 0, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1]
        };
        for (id, body) in [(if ipfix { 2u16 } else { 0 }, &template), (256, &data)] {
            m.extend_from_slice(&id.to_be_bytes());
            m.extend_from_slice(&((body.len() + 4).min(65_535) as u16).to_be_bytes());
            m.extend_from_slice(body);
        }
        if ipfix {
            let len = m.len().min(65_535) as u16;
            m[2..4].copy_from_slice(&len.to_be_bytes());
        }
        let (out, _) = decode_one(&m);
        for f in &out {
            prop_assert!(crate::time_in_range(f.start_ms) && crate::time_in_range(f.end_ms) && f.start_ms <= f.end_ms);
        }
    }
}

#[test]
fn an_options_record_is_not_skipped_for_fields_it_is_not_read_for() {
    // NetFlow v9 scope field types share numbers with element ids (1 is both "system" and
    // octetDeltaCount): a scope that reads as a port above 65535 must not cost the sampling rate.
    let flows = sample_flows(10);
    let mut datagrams = Vec::new();
    Exporter::new(Format::V9).with_sampling(10).encode(&flows, 1_793_581_200_000, &mut datagrams);
    let mut d = datagrams.remove(0);
    // Options template at 68: its scope field type at 78; the options record's scope value at 92.
    assert_eq!((&d[78..80], &d[82..84]), (&[0u8, 1][..], &[0u8, 34][..]));
    d[78..80].copy_from_slice(&7u16.to_be_bytes());
    d[92..96].copy_from_slice(&70_000u32.to_be_bytes());
    let (out, stats) = decode_one(&d);
    assert_eq!(stats.value_out_of_range, 0);
    assert_eq!(out.iter().map(|f| f.packets).sum::<u64>(), flows.iter().map(|f| f.packets).sum::<u64>());
}

/// Juniper and Cisco announce their flow timeouts in options data (flowActiveTimeout 36,
/// flowIdleTimeout 37, RFC 7012; FLOW_ACTIVE_TIMEOUT and FLOW_INACTIVE_TIMEOUT in NetFlow v9):
/// how late a flow may come. They are read per exporter; options records never become flows.
#[test]
fn an_exporters_flow_timeouts_are_read_from_its_options_data() {
    fn set(m: &mut Vec<u8>, id: u16, body: &[u8]) {
        m.extend_from_slice(&id.to_be_bytes());
        m.extend_from_slice(&(body.len() as u16 + 4).to_be_bytes());
        m.extend_from_slice(body);
    }
    let mut m = vec![0, 10, 0, 0, 0x6a, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1];
    // Options template 258: scope observationDomainId (149), then active and idle timeouts.
    set(&mut m, 3, &[1, 2, 0, 3, 0, 1, 0, 149, 0, 4, 0, 36, 0, 2, 0, 37, 0, 2]);
    set(&mut m, 258, &[0, 0, 0, 1, 0x07, 0x08, 0x00, 0x0f]);
    let len = m.len() as u16;
    m[2..4].copy_from_slice(&len.to_be_bytes());
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    decoder.decode(exporter(), &m, 0, &mut out).unwrap();
    assert!(out.is_empty());
    assert_eq!(decoder.stats.options_records, 1);
    let timeouts = decoder.timeouts();
    let announced = timeouts[&exporter().ip()];
    assert_eq!((announced.active_s, announced.idle_s, announced.longest_s()), (Some(1800), Some(15), Some(1800)));
    // An exporter that announces nothing is not listed.
    assert_eq!(Decoder::new().timeouts().len(), 0);
}

/// A NetFlow v9 datagram of one template (`fields`) and one data set (`values`, padded to 4).
fn v9_datagram(template_id: u16, fields: &[(u16, u16)], values: &[u8]) -> Vec<u8> {
    let mut d = vec![0, 9, 0, 2, 0, 0, 0x27, 0x10, 0x6a, 0xe0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
    let mut template = vec![0, 0, 0, 0];
    template.extend_from_slice(&template_id.to_be_bytes());
    template.extend_from_slice(&(fields.len() as u16).to_be_bytes());
    for (id, len) in fields {
        template.extend_from_slice(&id.to_be_bytes());
        template.extend_from_slice(&len.to_be_bytes());
    }
    let len = template.len() as u16;
    template[2..4].copy_from_slice(&len.to_be_bytes());
    d.extend_from_slice(&template);
    let mut data = template_id.to_be_bytes().to_vec();
    data.extend_from_slice(&[0, 0]);
    data.extend_from_slice(values);
    while !data.len().is_multiple_of(4) {
        data.push(0);
    }
    let len = data.len() as u16;
    data[2..4].copy_from_slice(&len.to_be_bytes());
    d.extend_from_slice(&data);
    d
}

/// NetFlow v9 has no variable-length fields in RFC 3954, but H3C NetStream sends IPFIX's marker
/// (length 65535) for its strings: the value is read with IPFIX's length prefix, short or long,
/// and the fields after it stay in place. Regression: the record was lost (read as 65535 bytes).
#[test]
fn regression_a_netflow_v9_field_of_length_65535_is_variable_length() {
    let fields = [(8, 4), (236, 65535), (12, 4), (2, 4), (4, 1)];
    for string in [&b"vrf-a"[..], &[b'x'; 300][..], &[][..]] {
        let mut values = vec![127, 16, 0, 1];
        if string.len() < 255 {
            values.push(string.len() as u8);
        } else {
            values.push(255);
            values.extend_from_slice(&(string.len() as u16).to_be_bytes());
        }
        values.extend_from_slice(string);
        values.extend_from_slice(&[127, 200, 0, 1, 0, 0, 0, 9, 17]);
        let (out, stats) = decode_one(&v9_datagram(300, &fields, &values));
        assert_eq!(out.len(), 1, "{} bytes: {stats:?}", string.len());
        assert_eq!(
            (out[0].src, out[0].dst, out[0].packets, out[0].protocol),
            (Addr::v4(0x7f10_0001), Addr::v4(0x7fc8_0001), 9, 17)
        );
        assert_eq!(stats.malformed, 0);
    }
}

/// A record that names no pair of addresses (a wireless controller's per-station counts) gives no
/// flow and is counted, never an error; the records beside it are decoded.
#[test]
fn records_without_addresses_are_counted() {
    // Two records of a station's address (staIPv4Address, 366) and packets.
    let station = v9_datagram(300, &[(366, 4), (2, 4)], &[127, 16, 0, 7, 0, 0, 0, 3, 127, 16, 0, 8, 0, 0, 0, 4]);
    let (out, stats) = decode_one(&station);
    assert_eq!((out.len(), stats.no_addresses, stats.malformed), (0, 2, 0));
    // A flow's two addresses: a flow, nothing counted.
    let flow = v9_datagram(301, &[(8, 4), (12, 4), (2, 4)], &[127, 16, 0, 7, 127, 200, 0, 1, 0, 0, 0, 3]);
    let (out, stats) = decode_one(&flow);
    assert_eq!((out.len(), stats.no_addresses), (1, 0));
}

/// One datagram holding several NetFlow v5 export packets one after another (nfcapd reads them
/// all): every packet's records, the sequence followed across them; zero padding after the last
/// is no damage, other bytes are (the records before them kept). Regression: only the first
/// packet's records were read.
#[test]
fn regression_a_datagram_of_several_v5_packets_gives_every_packet_s_records() {
    let flows = sample_flows(45);
    let mut packets = Vec::new();
    Exporter::new(Format::V5).encode(&flows, 1_793_581_200_000, &mut packets);
    assert_eq!(packets.len(), 2, "30 records and 15");
    let mut joined = packets.concat();
    let (out, stats) = decode_one(&joined);
    assert_eq!(out, flows);
    assert_eq!((stats.malformed, stats.sequence_lost, stats.sequence_resets), (0, 0, 0));
    joined.extend_from_slice(&[0; 7]);
    let (out, stats) = decode_one(&joined);
    assert_eq!((out.len(), stats.malformed), (45, 0), "zero padding");
    joined.extend_from_slice(b"junk");
    let (out, stats) = decode_one(&joined);
    assert_eq!((out.len(), stats.malformed), (45, 1), "bytes that are no packet");
}

proptest! {
    /// However several v5 packets are cut and joined, every whole record before the cut is read,
    /// in order, and a cut inside a packet is counted as damage.
    #[test]
    fn joined_v5_packets_give_every_whole_record(
        counts in proptest::collection::vec(1usize..=30, 1..5),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut flows_of_packets = Vec::new();
        let mut joined = Vec::new();
        let mut offset = 0;
        for count in &counts {
            let flows: Vec<Flow> = sample_flows(offset + count).split_off(offset);
            offset += count;
            let mut packet = Vec::new();
            Exporter::new(Format::V5).encode(&flows, 1_793_581_200_000, &mut packet);
            joined.extend_from_slice(&packet[0]);
            flows_of_packets.push(flows);
        }
        let cut = 1 + cut.index(joined.len());
        let (out, stats) = decode_one(&joined[..cut]);
        // Whole packets before the cut, then the whole records of the cut one.
        let mut expected = Vec::new();
        let mut at = 0;
        let mut damaged = false;
        for flows in &flows_of_packets {
            let size = 24 + 48 * flows.len();
            if at + size <= cut {
                expected.extend_from_slice(flows);
            } else if at < cut {
                if cut - at >= 24 {
                    expected.extend_from_slice(&flows[..(cut - at - 24) / 48]);
                }
                // After a whole packet, zeros (a version's first byte) read as padding.
                damaged = at == 0 || joined[at..cut].iter().any(|b| *b != 0);
            }
            at += size;
        }
        prop_assert_eq!(out, expected);
        prop_assert_eq!(stats.malformed, u64::from(damaged));
    }
}

/// A bidirectional record's other direction becomes the flow's reply counts: Cisco ASA's
/// initiator and responder counts (IANA 231, 232, 298, 299; the initiator's are the flow's own
/// when the plain counts are absent) and RFC 5103's reverse elements (enterprise 29305, as YAF
/// sends them), both scaled by the sampling rate like the flow's own.
#[test]
fn a_biflow_s_other_direction_becomes_the_reply_counts() {
    let fields = [(231, 8), (232, 8), (298, 4), (299, 4)];
    let values = [[0, 0, 0, 0, 0, 0, 0x10, 0].as_slice(), &[0, 0, 0, 0, 0, 0, 0x20, 0], &[0, 0, 0, 7], &[0, 0, 0, 9]];
    let (out, stats) = decode_one(&ipfix_message(1_793_581_200, None, &fields, &values.concat()));
    assert_eq!(out.len(), 1, "{stats:?}");
    let f = &out[0];
    assert_eq!((f.packets, f.bytes, f.reply_packets, f.reply_bytes), (7, 0x1000, 9, 0x2000));

    // packetDeltaCount, octetDeltaCount, then their reverse elements (the enterprise bit, PEN 29305).
    let mut m = vec![0, 10, 0, 0, 0x6a, 0xe0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
    m.extend_from_slice(&[0, 2, 0, 40, 1, 0, 0, 6, 0, 8, 0, 4, 0, 12, 0, 4, 0, 2, 0, 4, 0, 1, 0, 4]);
    m.extend_from_slice(&[0x80, 2, 0, 4, 0, 0, 0x72, 0x79, 0x80, 1, 0, 4, 0, 0, 0x72, 0x79]);
    m.extend_from_slice(&[1, 0, 0, 28, 127, 16, 0, 1, 127, 200, 0, 1, 0, 0, 0, 3, 0, 0, 0, 180]);
    m.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 96]);
    let len = m.len() as u16;
    m[2..4].copy_from_slice(&len.to_be_bytes());
    let (out, stats) = decode_one(&m);
    assert_eq!(out.len(), 1, "{stats:?}");
    let f = &out[0];
    assert_eq!((f.packets, f.bytes, f.reply_packets, f.reply_bytes), (3, 180, 2, 96));
}

/// flowStartDeltaMicroseconds and flowEndDeltaMicroseconds (158, 159) count back from the
/// export time; a delta reaching before year 0000 is a counted skip.
#[test]
fn start_and_end_deltas_count_back_from_the_export_time() {
    let fields = [(158, 4), (159, 4)];
    let values = [(2_500_000u32).to_be_bytes(), 500_000u32.to_be_bytes()].concat();
    let (out, _) = decode_one(&ipfix_message(1_793_581_200, None, &fields, &values));
    assert_eq!((out[0].start_ms, out[0].end_ms), (1_793_581_200_000 - 2_500, 1_793_581_200_000 - 500));
    let fields = [(158, 8)];
    let (out, stats) = decode_one(&ipfix_message(0, None, &fields, &u64::MAX.to_be_bytes()));
    assert_eq!((out.len(), stats.time_out_of_range), (0, 1));
}
