//! The example lines here are the ones `docs/formats.md` shows; if one changes, change both.
use super::*;
use proptest::prelude::*;

pub(crate) const EXAMPLES: [&str; Kind::ALL.len()] = [
    r#"{"kind":"finding","id":"8d0f3f0e-51b6-5b8e-9d62-2f35a3e0c1a4","observed_at":"2026-11-02T04:12:09Z","ip":"127.16.4.21","port":23,"protocol":"telnet","issue":"default_credential","credential_id":17,"device":{"vendor":"Example Networks","model":"XR-500","type":"router","release_year":2012,"eol":true},"round":"2026-11","sensor":"survey-1"}"#,
    r#"{"kind":"activity","window_start":"2026-11-02T00:00:00Z","window_end":"2026-11-03T00:00:00Z","src":"127.17.9.3","classification":"infected","tags":["mirai","scanner"],"packets":4120,"bytes":164800,"mirai_packets":4120,"distinct_destinations":3987,"top_ports":[{"port":23,"transport":"tcp","packets":3708},{"port":2323,"transport":"tcp","packets":412}],"evidence":[{"rule":"mirai","packets":4120,"detail":"TCP SYN with sequence number = destination address"}],"first_seen":"2026-11-02T00:03:51Z","last_seen":"2026-11-02T23:58:12Z","isp":"hikari-net","sensor":"darknet-a"}"#,
    r#"{"kind":"cnc","window_start":"2026-11-02T09:00:00Z","window_end":"2026-11-02T10:00:00Z","ip":"127.200.0.10","port":6667,"protocol":"tcp","score":0.97,"rank":1,"methods":["graph","model"],"seed_clients":41,"total_clients":58,"flows":1290,"first_seen":"2026-11-02T09:00:03Z","last_seen":"2026-11-02T09:59:41Z","periodicity":60.2,"evidence":["41 of 58 clients are known bots","contacts recur every 60 s (regularity 0.96)"],"family":"mirai","sensor":"isp-hikari"}"#,
    r#"{"kind":"botnet","serial":"BN-2026-0007","family":"mirai","status":"active","first_seen":"2026-10-20T00:00:00Z","last_seen":"2026-11-02T21:40:00Z","members":388,"cnc":[{"ip":"127.64.0.9","port":6667,"transport":"tcp","first_seen":"2026-10-20T00:00:00Z","last_seen":"2026-10-31T12:00:00Z"},{"ip":"127.64.0.10","port":6667,"transport":"tcp","first_seen":"2026-10-31T12:05:00Z","last_seen":"2026-11-02T21:40:00Z"}]}"#,
    r#"{"kind":"notification","isp":"hikari-net","ip":"127.16.4.21","port":23,"protocol":"telnet","reason":"default_credential","created_at":"2026-11-03T01:00:00Z","last_notified":"2026-12-01T01:00:00Z","times_notified":2,"last_period":"month:2026-11","status":"sent","language":"ja","evidence":["8d0f3f0e-51b6-5b8e-9d62-2f35a3e0c1a4"],"device":{"vendor":"Example Networks","model":"XR-500","type":"router","release_year":2012,"eol":true},"guide":"generic"}"#,
    r#"{"kind":"isp","handle":"hikari-net","name":"Hikari Net","asns":[64500,64501],"contact":"abuse@hikari.example","language":"ja","notify":{"daily_infected":true,"monthly_vulnerable":true,"format":"csv"}}"#,
    r#"{"kind":"service","observed_at":"2026-11-02T04:12:07Z","ip":"127.16.4.21","port":23,"protocol":"telnet","status":"success","banner":"XR-500 Broadband Router (firmware 1.0.8)\r\nXR-500 login: ","auth":"password","device":{"vendor":"Example Networks","model":"XR-500","type":"router","firmware":"1.0.8","release_year":2012,"eol":true},"round":"2026-11","sensor":"survey-1"}"#,
    r#"{"kind":"darknet_day","date":"2026-11-02","packets":11167,"sources":60,"mirai_packets":3146,"mirai_sources":18,"infected_sources":26,"research_scanner_sources":6,"ddos_victims":9,"categories":[{"category":"telnet","iot":true,"packets":2559,"share":0.22915733858690784},{"category":"web_admin","iot":true,"packets":1321,"share":0.1182949762693651},{"category":"tr069","iot":true,"packets":589,"share":0.05274469418823319},{"category":"adb","iot":true,"packets":163,"share":0.014596579206590849},{"category":"router_exploit","iot":true,"packets":763,"share":0.0683263186173547},{"category":"ssh","iot":false,"packets":76,"share":0.006805766992030089},{"category":"smb","iot":false,"packets":225,"share":0.020148652279036446},{"category":"rdp","iot":false,"packets":1363,"share":0.12205605802811856},{"category":"https","iot":false,"packets":314,"share":0.028118563624966418},{"category":"database","iot":false,"packets":0,"share":0.0},{"category":"mail","iot":false,"packets":0,"share":0.0},{"category":"vnc","iot":false,"packets":148,"share":0.013253335721321752},{"category":"dns","iot":false,"packets":73,"share":0.00653711829497627},{"category":"ntp","iot":false,"packets":74,"share":0.006626667860660876},{"category":"ssdp","iot":false,"packets":0,"share":0.0},{"category":"snmp","iot":false,"packets":13,"share":0.0011641443538998836},{"category":"memcached","iot":false,"packets":0,"share":0.0},{"category":"backscatter","iot":false,"packets":3470,"share":0.3107369929255843},{"category":"other_tcp","iot":false,"packets":9,"share":0.0008059460911614578},{"category":"other_udp","iot":false,"packets":6,"share":0.0005372973941076386},{"category":"icmp","iot":false,"packets":1,"share":0.00008954956568460644},{"category":"other","iot":false,"packets":0,"share":0.0}],"sensor":"darknet-a"}"#,
    r#"{"kind":"botnet_window","serial":"BN-2026-0007","window_start":"2026-11-02T00:00:00Z","window_end":"2026-11-03T00:00:00Z","family":"mirai","bots":["127.16.4.21","127.17.9.3"],"cnc":[{"ip":"127.200.0.10","port":6667,"transport":"tcp","first_seen":"2026-11-02T00:00:12Z","last_seen":"2026-11-02T23:59:40Z"}],"events":[{"at":"2026-11-02T00:00:00Z","event":"cnc_changed","detail":"127.200.0.9:6667/tcp -> 127.200.0.10:6667/tcp"}],"reporters":["isp-hikari"],"confidence":0.97}"#,
    r#"{"kind":"feed_entry","source":"threatfox","role":"cnc","ip":"127.200.0.10","port":6667,"family":"mirai","first_seen":"2026-11-04T08:00:00Z","reference":"1234567"}"#,
    r#"{"kind":"liveness","ip":"127.200.0.10","port":6667,"protocol":"tcp","checked_at":"2026-11-02T10:00:00Z","alive":true,"outcome":"connected","rtt_ms":0.21,"sensor":"liveness-1"}"#,
    r#"{"kind":"outcome","notification":"190db74e-4ec9-5071-b614-648db3ea71ef","isp":"hikari-net","status":"fixed","at":"2026-11-10T02:00:00Z","source":"isp","note":"subscriber changed the password"}"#,
    r#"{"kind":"taxii_object","collection":"2a6f0b8e-3c1d-4e5f-9a7b-6c5d4e3f2a1b","date_added":"2026-11-05T00:00:00.123Z","added_by":"centre","object":{"type":"malware","spec_version":"2.1","id":"malware--2d7d4a61-7f0b-4b1e-9c2a-5e6f7a8b9c0d","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"mirai","is_family":true}}"#,
];

#[test]
fn every_documented_example_parses_and_round_trips() {
    for (line, kind) in EXAMPLES.iter().zip(Kind::ALL) {
        let record = parse_line(line.as_bytes(), None).unwrap().unwrap();
        assert_eq!(record.kind(), kind);
        let again = parse_line(record.to_json_line().as_bytes(), None).unwrap().unwrap();
        assert_eq!(again, record, "{kind} does not survive a round trip");
    }
}

#[test]
fn ids_are_kept_when_given_and_derived_when_absent() {
    let given = parse_line(EXAMPLES[0].as_bytes(), None).unwrap().unwrap();
    assert_eq!(given.id().unwrap().to_string(), "8d0f3f0e-51b6-5b8e-9d62-2f35a3e0c1a4");
    let a = parse_line(EXAMPLES[2].as_bytes(), None).unwrap().unwrap();
    let b = parse_line(EXAMPLES[2].as_bytes(), None).unwrap().unwrap();
    assert_eq!(a.id(), b.id());
    assert_eq!(a.id(), Some(a.derived_id()));
}

#[test]
fn same_instant_in_another_offset_gets_the_same_id() {
    let utc = EXAMPLES[2];
    let jst = utc.replace("2026-11-02T09:00:03Z", "2026-11-02T18:00:03+09:00");
    let a = parse_line(utc.as_bytes(), None).unwrap().unwrap();
    let b = parse_line(jst.as_bytes(), None).unwrap().unwrap();
    assert_eq!(a.id(), b.id());
    assert!(b.to_json_line().contains("\"first_seen\":\"2026-11-02T09:00:03Z\""));
}

#[test]
fn kind_can_come_from_the_caller() {
    let without_kind = EXAMPLES[2].replace(r#""kind":"cnc","#, "");
    assert!(matches!(parse_line(without_kind.as_bytes(), None), Err(LineError::MissingKind)));
    let record = parse_line(without_kind.as_bytes(), Some(Kind::Cnc)).unwrap().unwrap();
    assert_eq!(record.kind(), Kind::Cnc);
    let mismatch = parse_line(EXAMPLES[2].as_bytes(), Some(Kind::Finding));
    assert!(matches!(mismatch, Err(LineError::KindMismatch { found: Kind::Cnc, expected: Kind::Finding })));
}

#[test]
fn unknown_fields_and_kinds_are_rejected_with_their_names() {
    let typo = EXAMPLES[2].replace("\"score\"", "\"scroe\"");
    let err = parse_line(typo.as_bytes(), None).unwrap_err().to_string();
    assert!(err.contains("scroe"), "{err}");
    let err = parse_line(br#"{"kind":"bogus"}"#, None).unwrap_err().to_string();
    assert!(err.contains("bogus") && err.contains("finding"), "{err}");
}

#[test]
fn rules_beyond_types_are_checked() {
    let cases = [
        (EXAMPLES[0].replace(r#""credential_id":17,"#, ""), "needs credential_id"),
        (EXAMPLES[0].replace("\"port\":23", "\"port\":0"), "port"),
        (EXAMPLES[2].replace("0.97", "1.5"), "score"),
        (EXAMPLES[1].replace("\"mirai_packets\":4120", "\"mirai_packets\":9999"), "mirai_packets"),
        (EXAMPLES[3].replace("BN-2026-0007", " "), "serial"),
        (EXAMPLES[4].replace("hikari-net", "Hikari Net"), "handle"),
        (EXAMPLES[5].replace("[64500,64501]", "[]"), "asns"),
        (EXAMPLES[2].replace(r#""sensor""#, r#""revised_at":"2026-11-02T09:30:00Z","sensor""#), "revised_at"),
    ];
    for (line, expected) in cases {
        let err = parse_line(line.as_bytes(), None).unwrap_err().to_string();
        assert!(err.contains(expected), "{line}\n -> {err}");
    }
}

/// The revision example of docs/formats.md: a window scored again after the two that followed it.
const REVISED_CNC: &str = r#"{"kind":"cnc","window_start":"2026-11-02T09:00:00Z","window_end":"2026-11-02T10:00:00Z","ip":"127.200.0.11","port":443,"protocol":"tcp","score":0.81,"rank":2,"methods":["graph","model"],"seed_clients":3,"total_clients":5,"flows":5,"first_seen":"2026-11-02T09:04:09Z","last_seen":"2026-11-02T09:14:12Z","evidence":["3 of 5 clients are known bots","returning_share raises the score by 3.64"],"sensor":"isp-hikari","revised_at":"2026-11-02T12:00:00Z"}"#;

#[test]
fn a_later_revision_orders_after_a_first_report_with_more_flows() {
    assert!(include_str!("../../../../docs/formats.md").contains(REVISED_CNC));
    let Some(Record::Cnc(revised)) = parse_line(REVISED_CNC.as_bytes(), None).unwrap() else { panic!() };
    let mut first = revised.clone();
    first.revised_at = None;
    first.flows = 9;
    assert!(revised.revision_order() > first.revision_order());
    // Of two revisions made at once, the one with more flows.
    let mut fuller = revised.clone();
    fuller.flows = 6;
    assert!(fuller.revision_order() > revised.revision_order());
    let record = Record::Cnc(revised);
    assert_eq!(parse_line(record.to_json_line().as_bytes(), None).unwrap(), Some(record));
}

#[test]
fn blank_lines_are_not_records() {
    assert!(parse_line(b"", None).unwrap().is_none());
    assert!(parse_line(b" \t\r", None).unwrap().is_none());
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_line(&bytes, None);
        let _ = parse_line(&bytes, Some(Kind::Activity));
    }

    #[test]
    fn mangled_examples_never_panic(which in 0usize..6, cut in 0usize..400, byte in any::<u8>()) {
        let mut line = EXAMPLES[which].as_bytes().to_vec();
        let at = cut.min(line.len().saturating_sub(1));
        line[at] = byte;
        let _ = parse_line(&line, None);
        line.truncate(cut.min(line.len()));
        let _ = parse_line(&line, None);
    }

    #[test]
    fn valid_findings_round_trip(
        octets in any::<[u8; 4]>(), port in 1u16.., credential in any::<u32>(), secs in 0i64..4_000_000_000,
    ) {
        let record = Record::Finding(Finding {
            id: None,
            observed_at: chrono::DateTime::from_timestamp(secs, 0).unwrap(),
            ip: std::net::Ipv4Addr::from(octets).into(),
            port,
            service: crate::Service::Telnet,
            issue: crate::FindingIssue::DefaultCredential,
            credential_id: Some(credential),
            device: None,
            round: None,
            sensor: None,
            isp: None,
        });
        let parsed = parse_line(record.to_json_line().as_bytes(), None).unwrap().unwrap();
        prop_assert_eq!(parsed.derived_id(), record.derived_id());
    }
}

#[test]
fn formats_doc_shows_every_example_line() {
    let doc = include_str!("../../../../docs/formats.md");
    for line in EXAMPLES {
        assert!(doc.contains(line), "docs/formats.md lacks the example line {line}");
    }
    let shipped = include_str!("../../../../data/examples/records.jsonl");
    assert_eq!(shipped.lines().collect::<Vec<_>>(), EXAMPLES, "data/examples/records.jsonl drifted");
}

/// A line of `format` with `extra` fields added at its top level.
fn marked(line: &str, format: u64, extra: &str) -> String {
    let comma = if extra.is_empty() { "" } else { "," };
    format!("{},\"format\":{format}{comma}{extra}}}", line.strip_suffix('}').unwrap())
}

#[test]
fn a_newer_formats_unknown_fields_are_ignored_wherever_they_stand_and_named() {
    // Top level, inside a nested object, and inside an element of a list.
    let line = marked(EXAMPLES[1], 2, r#""honeypot":{"sessions":3},"asn":64500"#)
        .replace(r#""port":2323,"transport":"tcp""#, r#""port":2323,"service":"telnet-alt","transport":"tcp""#);
    let mut ignored = Vec::new();
    let record = parse_line_noting(line.as_bytes(), None, &mut ignored).unwrap().unwrap();
    assert_eq!(record, parse_line(EXAMPLES[1].as_bytes(), None).unwrap().unwrap(), "the same record, the same id");
    ignored.sort();
    assert_eq!(ignored, ["asn", "honeypot", "top_ports[1].service"]);
    let line = marked(EXAMPLES[0], 3, "").replace(r#""eol":true"#, r#""eol":true,"antenna":"5 GHz""#);
    let mut ignored = Vec::new();
    let record = parse_line_noting(line.as_bytes(), None, &mut ignored).unwrap().unwrap();
    assert_eq!(record, parse_line(EXAMPLES[0].as_bytes(), None).unwrap().unwrap());
    assert_eq!(ignored, ["device.antenna"]);
}

#[test]
fn todays_format_stays_strict_and_a_newer_one_says_what_to_upgrade() {
    // Format 1, said or not: a typo is still an error.
    let same = parse_line(marked(EXAMPLES[2], 1, "").as_bytes(), None).unwrap().unwrap();
    assert_eq!(same, parse_line(EXAMPLES[2].as_bytes(), None).unwrap().unwrap());
    let typo = parse_line(marked(EXAMPLES[2], 1, r#""scroe":1"#).as_bytes(), None).unwrap_err().to_string();
    assert!(typo.contains("scroe") && !typo.contains("upgrade"), "{typo}");
    // What ignoring cannot fix: a new kind, a new value, a broken rule.
    let cases = [
        (r#"{"kind":"honeypot_session","format":2,"src":"127.0.0.9"}"#.to_string(), "honeypot_session"),
        (marked(EXAMPLES[0], 2, "").replace("default_credential", "known_vulnerability"), "known_vulnerability"),
        (marked(EXAMPLES[2], 2, "").replace("0.97", "1.5"), "score"),
    ];
    for (line, named) in cases {
        let error = parse_line(line.as_bytes(), None).unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, LineError::Newer { format: 2, .. }), "{text}");
        assert!(text.contains(named) && text.contains("format 2") && text.contains("upgrade botscope"), "{text}");
    }
    assert!(matches!(parse_line(marked(EXAMPLES[2], 0, "").as_bytes(), None), Err(LineError::FormatZero)));
    assert!(parse_line(marked(EXAMPLES[2], 1, "").replace(":1}", ":\"1\"}").as_bytes(), None).is_err());
}

proptest! {
    /// Whatever fields a newer format adds, at the top level of any kind, the record this build
    /// reads is the one it would read without them, and each is named once.
    #[test]
    fn added_fields_of_a_newer_format_never_change_the_record(
        which in 0..EXAMPLES.len(),
        added in proptest::collection::btree_map("zz_[a-z_]{1,12}", any::<i64>(), 0..8),
        format in 2u64..1000,
    ) {
        let extra: Vec<String> = added.iter().map(|(name, value)| format!("\"{name}\":{value}")).collect();
        let line = marked(EXAMPLES[which], format, &extra.join(","));
        let mut ignored = Vec::new();
        let record = parse_line_noting(line.as_bytes(), None, &mut ignored).unwrap().unwrap();
        prop_assert_eq!(record, parse_line(EXAMPLES[which].as_bytes(), None).unwrap().unwrap());
        ignored.sort();
        prop_assert_eq!(ignored, added.keys().cloned().collect::<Vec<_>>());
    }
}

/// The newer-format example of docs/formats.md reads as the page says.
#[test]
fn the_documented_newer_format_example_reads_as_documented() {
    const NEWER: &str = r#"{"kind":"finding","format":2,"observed_at":"2026-11-02T04:12:09Z","ip":"127.16.4.21","port":23,"protocol":"telnet","issue":"default_credential","credential_id":17,"device":{"vendor":"Example Networks","model":"XR-500","type":"router","antenna":"5 GHz"},"exploit_maturity":"none"}"#;
    assert!(include_str!("../../../../docs/formats.md").contains(NEWER));
    let mut ignored = Vec::new();
    let Some(Record::Finding(finding)) = parse_line_noting(NEWER.as_bytes(), None, &mut ignored).unwrap() else {
        panic!("not a finding")
    };
    ignored.sort();
    assert_eq!(ignored, ["device.antenna", "exploit_maturity"]);
    assert_eq!(finding.device.and_then(|d| d.model).as_deref(), Some("XR-500"));
}

/// A newer record may leave out at most 16 unknown fields: each costs one more read of it, so a
/// line of hundreds is refused rather than read hundreds of times; nothing of it is named.
#[test]
fn a_newer_record_with_too_many_unknown_fields_is_refused() {
    let fields = |n: usize| (0..n).map(|i| format!("\"zz_{i}\":{i}")).collect::<Vec<_>>().join(",");
    let mut ignored = vec!["from an earlier line".to_string()];
    assert!(parse_line_noting(marked(EXAMPLES[2], 2, &fields(16)).as_bytes(), None, &mut ignored).is_ok());
    assert_eq!(ignored.len(), 17, "sixteen named, after what was there");
    let mut ignored = Vec::new();
    let error = parse_line_noting(marked(EXAMPLES[2], 2, &fields(300)).as_bytes(), None, &mut ignored).unwrap_err();
    assert!(matches!(error, LineError::Newer { .. }) && ignored.is_empty(), "{error}");
}
