use super::*;
use crate::packet::{Addr, Packet, Transport};

fn syn(src: u32, dst: u32, ip_id: u16, dport: u16, seq: u32) -> Packet {
    Packet {
        src: Addr::v4(src),
        dst: Addr::v4(dst),
        version: 4,
        ttl: 50,
        ip_id,
        protocol: 6,
        ip_len: 40,
        transport: Transport::Tcp { sport: 5000, dport, seq, ack: 0, flags: tcp_flags::SYN, window: 100 },
    }
}

fn tags(c: &Catalogue, mask: u64) -> Vec<&str> {
    c.signature_ids().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, id)| id).collect()
}

#[test]
fn the_shipped_catalogue_loads_and_recognises_each_kind() {
    let c = Catalogue::shipped();
    let dst = 0x7fe0_0102;
    let mirai = tags(&c, c.matches(&syn(1, dst, 9, 23, dst)));
    assert!(mirai.contains(&"mirai") && mirai.contains(&"iot_port_syn"), "{mirai:?}");
    assert!(tags(&c, c.matches(&syn(1, dst, 54321, 443, 5))).contains(&"zmap"));
    let seq = 0xdead_beef;
    let masscan_id = (dst ^ 80 ^ seq) as u16;
    assert!(tags(&c, c.matches(&syn(1, dst, masscan_id, 80, seq))).contains(&"masscan"));
    let mut synack = syn(1, dst, 1, 4000, 5);
    synack.transport = Transport::Tcp { sport: 80, dport: 4000, seq: 5, ack: 9, flags: 0x12, window: 1 };
    assert_eq!(tags(&c, c.matches(&synack)), vec!["backscatter_syn_ack"]);
    // A plain SYN to a non-IoT port matches only the helper signature.
    assert_eq!(tags(&c, c.matches(&syn(1, dst, 1, 445, 5))), vec!["syn"]);
}

#[test]
fn categories_put_iot_first_and_replies_apart() {
    let c = Catalogue::shipped();
    let names = c.categories();
    let first_non_iot = names.iter().position(|(_, iot)| !iot).unwrap();
    assert!(names[..first_non_iot].iter().any(|(n, _)| n == "telnet"));
    assert!(names[first_non_iot..].iter().all(|(_, iot)| !iot));
    let p = syn(1, 2, 1, 2323, 5);
    assert_eq!(names[usize::from(c.category(&p, c.matches(&p)))].0, "telnet");
}

#[test]
fn rule_errors_name_the_file_and_rule() {
    let bad = [
        ("[[signature]]\nid='x'\nclass='infected'\ndescription='d'\nwhen=['tcp.bogus == 1']", "unknown operand"),
        ("[[signature]]\nid='x'\nclass='infected'\ndescription='d'\nwhen=['tcp.dport 23']", "no comparison"),
        ("[[signature]]\nid='x'\nclass='infected'\ndescription='d'\nwhen=['tcp.dport in [30-20]']", "backwards"),
        ("[[signature]]\nid='x'\nclass='infected'\ndescription='d'\nwhen=[]", "at least one"),
        ("[[signature]]\nid='x'\nclass='nasty'\ndescription='d'\nwhen=['ip.ttl == 1']", "nasty"),
        (
            "[[behaviour]]\nid='b'\nclass='infected'\ndescription='d'\nsignature='nope'\nmin_share=0.5",
            "unknown signature",
        ),
    ];
    for (text, expected) in bad {
        let err = Catalogue::from_texts([("f.toml", text)]).err().expect(text).to_string();
        assert!(err.contains(expected) && err.contains("f.toml"), "{text}\n -> {err}");
    }
}

#[test]
fn conditions_compare_lists_ranges_networks_and_masks() {
    let text = r#"
[[signature]]
id = "a"
class = "unknown"
description = "d"
when = ["tcp.dport in [8000-8099, 23]", "ip.src in [127.16.0.0/12]", "tcp.flags & SYN != 0", "ip.ttl >= 50"]
"#;
    let c = Catalogue::from_texts([("t.toml", text)]).unwrap();
    assert_eq!(c.matches(&syn(0x7f10_0001, 2, 1, 8050, 1)), 1);
    assert_eq!(c.matches(&syn(0x7f10_0001, 2, 1, 23, 1)), 1);
    assert_eq!(c.matches(&syn(0x7f10_0001, 2, 1, 8100, 1)), 0);
    assert_eq!(c.matches(&syn(0x7f20_0001, 2, 1, 23, 1)), 0);
    let mut low_ttl = syn(0x7f10_0001, 2, 1, 23, 1);
    low_ttl.ttl = 10;
    assert_eq!(c.matches(&low_ttl), 0);
}
