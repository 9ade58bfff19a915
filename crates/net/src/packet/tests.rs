use super::*;
use proptest::prelude::*;

/// IPv4 + TCP SYN, 40 bytes.
fn ipv4_syn(src: [u8; 4], dst: [u8; 4], id: u16, dport: u16, seq: u32) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 40];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0, 0, 64, 6, 0, 0]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&4444u16.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x02, 0x12, 0x34, 0, 0, 0, 0]);
    p
}

fn expect_syn(p: &Packet) {
    assert_eq!(p.src, Addr::v4(0x7f10_0001));
    assert_eq!(p.dst, Addr::v4(0x7fe0_0102));
    assert_eq!(p.ip_id, 7);
    assert_eq!(
        p.transport,
        Transport::Tcp { sport: 4444, dport: 23, seq: 0x7fe0_0102, ack: 0, flags: tcp_flags::SYN, window: 0x1234 }
    );
}

#[test]
fn every_link_type_reaches_the_same_packet() {
    let ip = ipv4_syn([127, 16, 0, 1], [127, 224, 1, 2], 7, 23, 0x7fe0_0102);
    let mut ethernet = vec![0; 12];
    ethernet.extend_from_slice(&[0x08, 0x00]);
    ethernet.extend_from_slice(&ip);
    let mut vlan = vec![0; 12];
    vlan.extend_from_slice(&[0x88, 0xa8, 0, 10, 0x81, 0x00, 0, 20, 0x08, 0x00]);
    vlan.extend_from_slice(&ip);
    let mut sll = vec![0; 14];
    sll.extend_from_slice(&[0x08, 0x00]);
    sll.extend_from_slice(&ip);
    let mut sll2 = vec![0x08, 0x00];
    sll2.extend_from_slice(&[0; 18]);
    sll2.extend_from_slice(&ip);
    let mut null = vec![2, 0, 0, 0];
    null.extend_from_slice(&ip);
    for (linktype, frame) in [
        (linktype::ETHERNET, ethernet),
        (linktype::ETHERNET, vlan),
        (linktype::LINUX_SLL, sll),
        (linktype::LINUX_SLL2, sll2),
        (linktype::NULL, null),
        (linktype::RAW, ip.clone()),
        (linktype::IPV4, ip.clone()),
    ] {
        expect_syn(&parse(linktype, &frame).unwrap_or_else(|e| panic!("linktype {linktype}: {e:?}")));
    }
}

/// Regression: libpcap reinserts a stripped 802.1Q tag after the cooked header (`-i any`).
#[test]
fn cooked_captures_with_vlan_tags() {
    let ip = ipv4_syn([127, 16, 0, 1], [127, 224, 1, 2], 7, 23, 0x7fe0_0102);
    let mut sll = vec![0; 14];
    sll.extend_from_slice(&[0x81, 0x00, 0, 5, 0x08, 0x00]);
    sll.extend_from_slice(&ip);
    expect_syn(&parse(linktype::LINUX_SLL, &sll).unwrap());
}

#[test]
fn ipv6_through_extension_headers() {
    let mut p = vec![0x60, 0, 0, 0, 0, 28, 0, 64];
    p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8].iter().chain(&[0u8; 11]).chain(&[1u8]).copied().collect::<Vec<_>>());
    p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8].iter().chain(&[0u8; 11]).chain(&[2u8]).copied().collect::<Vec<_>>());
    // Hop-by-hop options (8 bytes) then UDP.
    p.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 0]);
    p.extend_from_slice(&[0x04, 0x00, 0x07, 0x6c, 0, 20, 0, 0]);
    let packet = parse(linktype::RAW, &p).unwrap();
    assert_eq!(packet.version, 6);
    assert_eq!(packet.transport, Transport::Udp { sport: 1024, dport: 1900 });
    assert_eq!(packet.dst.to_ip().to_string(), "2001:db8::2");
    assert_eq!(packet.dst.as_v4(), None);
}

#[test]
fn icmp_errors_name_the_quoted_destination() {
    let quoted = ipv4_syn([127, 224, 0, 9], [127, 80, 0, 5], 1, 80, 1);
    let mut p = vec![0x45, 0, 0, 76, 0, 1, 0, 0, 60, 1, 0, 0, 127, 80, 0, 5, 127, 224, 0, 9];
    p.extend_from_slice(&[3, 3, 0, 0, 0, 0, 0, 0]);
    p.extend_from_slice(&quoted[..28]);
    let packet = parse(linktype::RAW, &p).unwrap();
    assert_eq!(packet.transport, Transport::Icmp { kind: 3, code: 3, quoted_dst: Some(Addr::v4(0x7f50_0005)) });
}

#[test]
fn short_frames_are_skipped_or_truncated_never_misread() {
    let ip = ipv4_syn([127, 16, 0, 1], [127, 224, 1, 2], 7, 23, 0);
    assert_eq!(parse(linktype::RAW, &ip[..19]), Err(PacketSkip::Malformed));
    assert_eq!(parse(linktype::RAW, &ip[..30]).unwrap().transport, Transport::Truncated);
    assert_eq!(parse(linktype::ETHERNET, &[0; 10]), Err(PacketSkip::Malformed));
    let arp = [0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x06, 0, 1];
    assert_eq!(parse(linktype::ETHERNET, &arp), Err(PacketSkip::NotIp));
    assert_eq!(parse(147, &ip), Err(PacketSkip::UnsupportedLinktype));
    // A header length below 20 bytes contradicts itself.
    let mut bad = ip.clone();
    bad[0] = 0x44;
    assert_eq!(parse(linktype::RAW, &bad), Err(PacketSkip::Malformed));
}

#[test]
fn later_fragments_have_no_transport_header() {
    let mut ip = ipv4_syn([127, 16, 0, 1], [127, 224, 1, 2], 7, 23, 0);
    ip[7] = 10;
    assert_eq!(parse(linktype::RAW, &ip).unwrap().transport, Transport::Other);
}

proptest! {
    #[test]
    fn any_frame_parses_or_is_skipped(linktype in prop::sample::select(vec![0u32, 1, 12, 101, 108, 113, 228, 229, 276, 9999]),
                                      bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse(linktype, &bytes);
    }

    #[test]
    fn ipv4_addresses_round_trip(src in any::<u32>(), dst in any::<u32>(), seq in any::<u32>()) {
        let ip = ipv4_syn(src.to_be_bytes(), dst.to_be_bytes(), 1, 23, seq);
        let p = parse(linktype::RAW, &ip).unwrap();
        prop_assert_eq!(p.src.as_v4(), Some(src));
        prop_assert_eq!(p.dst.as_v4(), Some(dst));
        prop_assert_eq!(p.src.to_ip(), std::net::IpAddr::V4(std::net::Ipv4Addr::from(src)));
    }
}
