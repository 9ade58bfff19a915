use super::*;
use proptest::prelude::*;

fn options(format: FeedFormat) -> FeedOptions {
    FeedOptions {
        format,
        source: format.default_source().into(),
        plain_role: FeedRole::Cnc,
        now: "2026-11-25T00:00:00Z".parse().unwrap(),
    }
}

fn read_text(format: FeedFormat, text: &str) -> FeedRead {
    read(text.as_bytes(), &options(format)).unwrap()
}

#[test]
fn threatfox_csv_keeps_ip_port_c2_and_download_servers() {
    let text = r#"################################################################
# ThreatFox IOCs: CSV export                                   #
################################################################
#
# "first_seen_utc","ioc_id","ioc_value","ioc_type","threat_type","fk_malware","malware_alias","malware_printable","last_seen_utc","confidence_level","reference","tags","anonymous","reporter"
"2026-11-04 08:00:00", "1234567", "127.200.0.10:6667", "ip:port", "botnet_cc", "elf.mirai", "Katana", "Mirai", "", "100", "None", "Mirai", "0", "someone"
"2026-11-04 09:00:00", "1234568", "127.210.0.1:80", "ip:port", "payload_delivery", "elf.mirai", "", "Mirai", "2026-11-05 00:00:00", "75", "", "", "0", "x"
"2026-11-04 09:00:00", "1234569", "evil.example", "domain", "botnet_cc", "elf.mirai", "", "Mirai", "", "75", "", "", "0", "x"
"2026-11-04 09:00:00", "1234570", "not-an-endpoint", "ip:port", "botnet_cc", "elf.mirai", "", "Mirai", "", "75", "", "", "0", "x"
"broken
"#;
    let read = read_text(FeedFormat::ThreatfoxCsv, text);
    assert_eq!(read.entries.len(), 2);
    let c2 = &read.entries[0];
    assert_eq!((c2.ip.to_string(), c2.port, c2.role), ("127.200.0.10".into(), Some(6667), FeedRole::Cnc));
    assert_eq!(
        (c2.family.as_deref(), c2.reference.as_deref(), c2.source.as_str()),
        (Some("mirai"), Some("1234567"), "threatfox")
    );
    assert_eq!(read.entries[1].role, FeedRole::Download);
    assert!(read.entries[1].last_seen.is_some());
    assert_eq!((read.not_imported, read.bad), (1, 2));
    assert_eq!(read.problems.iter().map(|p| p.at).collect::<Vec<_>>(), [9, 10]);
}

#[test]
fn feodo_csv_reads_old_and_new_last_online() {
    let text = "# Feodo Tracker\n# \"first_seen_utc\",\"dst_ip\",\"dst_port\",\"c2_status\",\"last_online\",\"malware\"\n\
\"2026-10-01 07:30:05\",\"127.200.1.1\",\"443\",\"online\",\"2026-11-20\",\"Pikabot\"\n\
2026-10-02 07:30:05,127.200.1.2,8080,offline,2026-10-03 00:00:00,QakBot\n\
\"2026-10-02 07:30:05\",\"127.200.1.3\",\"99999\",\"online\",\"\",\"QakBot\"\n";
    let read = read_text(FeedFormat::FeodoCsv, text);
    assert_eq!(read.entries.len(), 2);
    assert_eq!(read.entries[0].family.as_deref(), Some("pikabot"));
    assert!(read.entries.iter().all(|e| e.last_seen.is_some()));
    assert_eq!(read.bad, 1, "port 99999 is refused");
}

#[test]
fn stix_indicators_give_addresses_ports_and_the_malware_they_indicate() {
    let bundle = serde_json::json!({
        "type": "bundle", "id": "bundle--1",
        "objects": [
            {"type": "indicator", "spec_version": "2.1", "id": "indicator--a", "pattern_type": "stix",
             "pattern": "[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = '127.200.0.10' AND network-traffic:dst_port = 6667]",
             "valid_from": "2026-11-02T00:00:00Z", "valid_until": "2026-11-09T00:00:00Z"},
            {"type": "indicator", "spec_version": "2.1", "id": "indicator--b", "pattern_type": "stix",
             "pattern": "[ipv4-addr:value = '127.16.4.21']", "indicator_types": ["compromised"],
             "valid_from": "2026-11-02T00:00:00Z"},
            {"type": "indicator", "id": "indicator--c", "pattern": "[file:hashes.MD5 = 'aa']", "valid_from": "2026-11-02T00:00:00Z"},
            {"type": "indicator", "id": "indicator--d", "pattern": "[ipv4-addr:value = '127.1.1.1']"},
            {"type": "malware", "id": "malware--m", "name": "Mirai", "is_family": true},
            {"type": "relationship", "relationship_type": "indicates", "source_ref": "indicator--a", "target_ref": "malware--m"}
        ]
    });
    let read = read_text(FeedFormat::Stix, &bundle.to_string());
    assert_eq!(read.entries.len(), 2);
    let cnc = &read.entries[0];
    assert_eq!((cnc.port, cnc.family.as_deref(), cnc.role), (Some(6667), Some("mirai"), FeedRole::Cnc));
    assert_eq!(read.entries[1].role, FeedRole::Bot);
    assert_eq!((read.not_imported, read.bad), (1, 1));
    assert!(super::read(&b"{\"objects\": 3}"[..], &options(FeedFormat::Stix)).is_err());
    assert!(super::read(&b"not json"[..], &options(FeedFormat::Stix)).is_err());
}

#[test]
fn plain_lists_take_addresses_with_or_without_ports_and_families() {
    let read = read_text(
        FeedFormat::Plain,
        "127.200.0.10:6667 Mirai\n127.200.0.11 # a comment\n\n[::1]:23\nnonsense here too\n",
    );
    assert_eq!(read.entries.len(), 3);
    assert_eq!(read.entries[0].family.as_deref(), Some("mirai"));
    assert_eq!(read.entries[1].port, None);
    assert_eq!(read.bad, 1);
}

#[test]
fn regression_a_line_longer_than_the_bound_is_skipped_and_reading_goes_on() {
    let text = format!("{}\n127.200.0.10:6667\n", "1".repeat(MAX_LINE * 3));
    let read = read_text(FeedFormat::Plain, &text);
    assert_eq!((read.entries.len(), read.bad), (1, 1));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]
    #[test]
    fn arbitrary_bytes_never_panic_in_any_reader(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        for format in [FeedFormat::ThreatfoxCsv, FeedFormat::FeodoCsv, FeedFormat::Stix, FeedFormat::Plain] {
            let _ = read(&bytes[..], &options(format));
        }
    }

    #[test]
    fn csv_fields_survive_quoting(fields in prop::collection::vec("[a-z0-9 ,\"]{0,12}", 1..8)) {
        let line: Vec<String> = fields.iter().map(|f| format!("\"{}\"", f.replace('"', "\"\""))).collect();
        prop_assert_eq!(table::split(&line.join(", ")).unwrap(), fields);
    }
}
