use super::*;
use proptest::prelude::*;

fn time(day: u32) -> Timestamp {
    format!("2026-11-{day:02}T00:00:00Z").parse().unwrap()
}

fn bot(n: u32) -> IpAddr {
    IpAddr::V4(std::net::Ipv4Addr::from(0x7f10_0000 + n))
}

fn server(n: u8) -> ServerKey {
    (IpAddr::V4(std::net::Ipv4Addr::new(127, 200, 0, n)), 6667, Transport::Tcp)
}

/// A window whose servers have the given bot ranges.
fn window(day: u32, servers: &[(u8, std::ops::Range<u32>)]) -> WindowInput {
    let mut bots: Vec<IpAddr> = Vec::new();
    let mut index: FxHashMap<IpAddr, u32> = FxHashMap::default();
    let servers = servers
        .iter()
        .map(|(n, range)| ServerInput {
            key: server(*n),
            bots: range
                .clone()
                .map(|b| {
                    *index.entry(bot(b)).or_insert_with(|| {
                        bots.push(bot(b));
                        bots.len() as u32 - 1
                    })
                })
                .collect(),
            reporters: vec![("isp-a".into(), 0.9)],
            family: Some("mirai".into()),
            first_seen: time(day),
            last_seen: time(day),
        })
        .collect();
    WindowInput { start: time(day), end: time(day + 1), bots, servers }
}

fn events(w: &BotnetWindow) -> Vec<Lifecycle> {
    w.events.iter().map(|e| e.event).collect()
}

#[test]
fn servers_sharing_their_bots_are_one_botnet_and_others_are_not() {
    let input = window(1, &[(1, 0..100), (2, 10..100), (3, 200..260)]);
    let out = correlate_window(&input, &[], &mut Serials::default());
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].cnc.len(), 2);
    assert_eq!(out[0].bots.len(), 100);
    assert_eq!(out[1].bots.len(), 60);
    assert_eq!((out[0].serial.as_str(), out[1].serial.as_str()), ("BN-2026-0001", "BN-2026-0002"));
    assert!(out.iter().all(|w| events(w) == [Lifecycle::Emerged]));
}

#[test]
fn bots_in_two_botnets_do_not_merge_them() {
    // 10 of 100 bots are in both: Jaccard 10/190.
    let out = correlate_window(&window(1, &[(1, 0..100), (2, 90..190)]), &[], &mut Serials::default());
    assert_eq!(out.len(), 2);
}

#[test]
fn a_botnet_keeps_its_serial_when_its_cnc_moves() {
    let mut serials = Serials::default();
    let first = correlate_window(&window(1, &[(1, 0..100)]), &[], &mut serials);
    let earlier: Vec<Earlier> = first.iter().map(Earlier::from).collect();
    let second = correlate_window(&window(2, &[(2, 5..100)]), &earlier, &mut serials);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].serial, first[0].serial);
    assert_eq!(events(&second[0]), [Lifecycle::CncChanged]);
    assert!(second[0].events[0].detail.contains("127.200.0.1:6667/tcp -> 127.200.0.2:6667/tcp"));
}

#[test]
fn a_new_botnet_gets_a_new_serial_beside_a_continuing_one() {
    let mut serials = Serials::after(["BN-2026-0007", "BN-2025-0100"]);
    let first = correlate_window(&window(1, &[(1, 0..100)]), &[], &mut serials);
    assert_eq!(first[0].serial, "BN-2026-0008");
    let earlier: Vec<Earlier> = first.iter().map(Earlier::from).collect();
    let second = correlate_window(&window(2, &[(1, 0..150), (9, 500..520)]), &earlier, &mut serials);
    assert_eq!(second[0].serial, "BN-2026-0008");
    assert_eq!(events(&second[0]), [Lifecycle::Grew]);
    assert_eq!(second[1].serial, "BN-2026-0009");
    assert_eq!(events(&second[1]), [Lifecycle::Emerged]);
}

#[test]
fn splits_and_merges_are_recorded_with_the_serials_involved() {
    let mut serials = Serials::default();
    let whole = correlate_window(&window(1, &[(1, 0..100)]), &[], &mut serials);
    let earlier: Vec<Earlier> = whole.iter().map(Earlier::from).collect();
    let parts = correlate_window(&window(2, &[(2, 0..60), (3, 60..100)]), &earlier, &mut serials);
    assert_eq!(parts[0].serial, whole[0].serial, "the larger part keeps the serial");
    assert_eq!(events(&parts[1]), [Lifecycle::Split]);
    assert_eq!(parts[1].events[0].serials, vec![whole[0].serial.clone()]);

    let earlier: Vec<Earlier> = parts.iter().map(Earlier::from).collect();
    let merged = correlate_window(&window(3, &[(4, 0..100)]), &earlier, &mut serials);
    assert_eq!(merged.len(), 1);
    assert_eq!(merged[0].serial, parts[0].serial);
    assert!(events(&merged[0]).contains(&Lifecycle::Merged));
    assert_eq!(
        merged[0].events.iter().find(|e| e.event == Lifecycle::Merged).unwrap().serials,
        vec![parts[1].serial.clone()]
    );
}

#[test]
fn independent_reporters_raise_confidence() {
    let mut input = window(1, &[(1, 0..10)]);
    let alone = correlate_window(&input, &[], &mut Serials::default())[0].confidence;
    input.servers[0].reporters.push(("isp-b".into(), 0.8));
    let together = correlate_window(&input, &[], &mut Serials::default());
    assert_eq!(alone, 0.9);
    assert_eq!(together[0].confidence, 0.98);
    assert_eq!(together[0].reporters, ["isp-a", "isp-b"]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn every_server_lands_in_exactly_one_botnet_with_a_unique_serial(
        ranges in prop::collection::vec((0u32..50, 0u32..40), 0..30),
        earlier_ranges in prop::collection::vec((0u32..50, 0u32..40), 0..10),
    ) {
        let servers: Vec<(u8, std::ops::Range<u32>)> =
            ranges.iter().enumerate().map(|(i, (a, n))| (i as u8, *a..a + n)).collect();
        let mut serials = Serials::default();
        let before: Vec<(u8, std::ops::Range<u32>)> =
            earlier_ranges.iter().enumerate().map(|(i, (a, n))| (100 + i as u8, *a..a + n)).collect();
        let first = correlate_window(&window(1, &before), &[], &mut serials);
        let earlier: Vec<Earlier> = first.iter().map(Earlier::from).collect();
        let out = correlate_window(&window(2, &servers), &earlier, &mut serials);
        let mut seen: Vec<ServerKey> = out.iter().flat_map(|w| w.cnc.iter().map(|c| (c.ip, c.port, c.transport))).collect();
        seen.sort_unstable();
        let mut expected: Vec<ServerKey> = servers.iter().map(|(n, _)| server(*n)).collect();
        expected.sort_unstable();
        prop_assert_eq!(seen, expected);
        let mut names: Vec<&str> = out.iter().map(|w| w.serial.as_str()).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        prop_assert_eq!(before, names.len());
    }
}
