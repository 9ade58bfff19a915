use super::*;

fn read_all(text: &str, format: Format) -> Result<(Vec<(Flow, bool)>, InputReport), InputError> {
    let mut flows = Vec::new();
    let report = read(text.as_bytes(), format, &mut |f, i| flows.push((f, i)))?;
    Ok((flows, report))
}

const ZEEK_TSV: &str = "#separator \\x09
#set_separator\t,
#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents   label   detailed-label
#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]   string   string
1793577600.250000\tC1\t127.16.0.9\t40112\t127.200.0.1\t6667\ttcp\tirc\t33.5\t120\t340\tS3\t-\t-\t0\tShAdDa\t6\t440\t5\t600\t-   Malicious   C&C
1793577601.000000\tC2\t127.16.0.9\t40113\t127.200.0.1\t6667\ttcp\t-\t-\t-\t-\tS0\t-\t-\t0\tS\t1\t60\t0\t0\t-   Malicious   C&C
1793577602.000000\tC3\tnot-an-ip\t1\t127.200.0.1\t6667\ttcp\t-\t-\t-\t-\tS0\t-\t-\t0\tS\t1\t60\t0\t0\t-   Benign   -
";

#[test]
fn zeek_tsv_with_iot23_labels() {
    let (flows, report) = read_all(ZEEK_TSV, Format::Auto).unwrap();
    assert_eq!((report.flows, report.bad_lines), (2, 1));
    assert_eq!(report.errors[0].0, 7);
    let (first, initiator_known) = flows[0];
    assert!(initiator_known);
    assert_eq!(
        (first.dst_port, first.packets, first.bytes, first.reply_packets, first.reply_bytes),
        (6667, 6, 440, 5, 600)
    );
    assert_eq!(first.end_ms - first.start_ms, 33_500);
    assert_eq!(flows[1].0.tcp_flags, 0x02, "S0 is a handshake that never completed");
}

#[test]
fn zeek_csv_export() {
    let text = "ts,uid,id.orig_h,id.orig_p,id.resp_h,id.resp_p,proto,duration,orig_pkts,orig_ip_bytes,resp_pkts,resp_ip_bytes,conn_state\n\
2026-11-02T00:00:01Z,C1,127.16.0.9,40112,127.200.0.1,23,tcp,2.0,3,180,2,120,SF\n";
    let (flows, report) = read_all(text, Format::Auto).unwrap();
    assert_eq!(report.flows, 1);
    assert_eq!(flows[0].0.start_ms, 1_793_577_601_000);
}

#[test]
fn argus_binetflow_ctu13() {
    let text = "StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport,State,sTos,dTos,TotPkts,TotBytes,SrcBytes,Label\n\
2011/08/10 09:46:59.607825,1.026539,tcp,147.32.84.165,1027,   ->,60.190.222.139,6667,S_RA,0,0,4,244,124,flow=From-Botnet-V42-TCP-CC6-Plain-HTTP-Encrypted-Data\n\
2011/08/10 09:47:00.000000,0.0,icmp,147.32.84.165,0x0008,  <->,147.32.80.9,0x0303,ECO,0,0,2,140,70,flow=Background\n\
2011/08/10 09:47:00.5,0.1,udp,147.32.80.9,53,   <-,147.32.84.165,1030,INT,0,0,1,80,80,flow=Background\n";
    let (flows, report) = read_all(text, Format::Auto).unwrap();
    assert_eq!((report.flows, report.bad_lines), (3, 0));
    let (cc, known) = flows[0];
    assert!(known);
    assert_eq!((cc.dst_port, cc.bytes, cc.reply_bytes, cc.tcp_flags), (6667, 124, 120, 0x02));
    assert_eq!(flows[1].0.dst_port, 0x0303);
    let reversed = flows[2].0;
    assert_eq!((reversed.dst_port, reversed.src_port), (53, 1030), "`<-` flows are turned around");
}

#[test]
fn nfdump_csv_with_summary() {
    let text = "ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt,in,out,sas,das,smk,dmk,dtos,dir,nh,nhb,svln,dvln,ismc,odmc,idmc,osmc,mpls1,mpls2,mpls3,mpls4,mpls5,mpls6,mpls7,mpls8,mpls9,mpls10,cl,sl,al,ra,eng,exid,tr\n\
2026-11-02 00:00:01.250,2026-11-02 00:00:31.000,29.750,127.16.0.9,127.200.0.1,40112,23,TCP,...AP.S.,0,0,6,412,0,0,0,0,0,0,0,0,0,0,0.0.0.0,0.0.0.0,0,0,00:00:00:00:00:00,00:00:00:00:00:00,00:00:00:00:00:00,00:00:00:00:00:00,0-0-0,0-0-0,0-0-0,0-0-0,0-0-0,0-0-0,0-0-0,0-0-0,0-0-0,0-0-0,0.000,0.000,0.000,0.0.0.0,0/0,1,1970-01-01 00:00:00.000\n\
Summary\n\
flows,bytes,packets,avg_bps,avg_pps,avg_bpp\n\
1,412,6,110,0,68\n";
    let (flows, report) = read_all(text, Format::Auto).unwrap();
    assert_eq!((report.flows, report.bad_lines), (1, 0));
    let f = flows[0].0;
    assert_eq!(
        (f.start_ms, f.end_ms - f.start_ms, f.tcp_flags, f.packets, f.bytes),
        (1_793_577_601_250, 29_750, 0x1a, 6, 412)
    );
}

#[test]
fn regression_nfdump_ports_out_of_range_are_bad_lines_not_clamped() {
    // `v as u16` made 70000 port 65535 and -5 port 0: plausible ports that were never sent.
    let text = "ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt\n\
2026-11-02 00:00:01,2026-11-02 00:00:02,1.0,127.16.0.9,127.200.0.1,40112,70000,TCP,......S.,0,0,1,60\n\
2026-11-02 00:00:01,2026-11-02 00:00:02,1.0,127.16.0.9,127.200.0.1,-5,23,TCP,......S.,0,0,1,60\n\
2026-11-02 00:00:01,2026-11-02 00:00:02,1.0,127.16.0.9,127.200.0.1,40112,8.0,ICMP,........,0,0,1,60\n";
    let (flows, report) = read_all(text, Format::Auto).unwrap();
    assert_eq!((report.flows, report.bad_lines), (1, 2), "{report:?}");
    assert!(report.errors[0].1.contains("dp 70000"), "{report:?}");
    assert_eq!(flows[0].0.dst_port, 8, "an ICMP type.code keeps its type");
}

#[test]
fn unknown_text_is_an_error_and_empty_input_is_nothing() {
    assert!(matches!(read_all("hello world\n", Format::Auto), Err(InputError::Unrecognised(_))));
    assert_eq!(read_all("", Format::Auto).unwrap().1.flows, 0);
    assert!(matches!(read_all("#fields\tts\tuid\n1\t2\n", Format::Zeek), Err(InputError::Header(_))));
}

#[test]
fn over_long_and_binary_lines_are_counted() {
    let good = r#"{"start":"2026-11-02T00:00:01Z","end":"2026-11-02T00:00:02Z","src":"127.16.0.9","dst":"127.200.0.1","dport":23,"proto":6,"packets":1,"bytes":60}"#;
    let mut text = format!("{good}\n");
    text.push_str(&"x".repeat(MAX_LINE + 10));
    text.push('\n');
    text.push_str(good);
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(b"\n\xff\xfe\n");
    let mut flows = 0;
    let report = read(&bytes[..], Format::Auto, &mut |_, _| flows += 1).unwrap();
    assert_eq!((flows, report.bad_lines), (2, 2));
}

proptest::proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "[ -~\t\n]{0,400}", format in 0u8..5) {
        let format = [Format::Auto, Format::Jsonl, Format::Zeek, Format::Argus, Format::NfdumpCsv][format as usize];
        let _ = read_all(&text, format);
        let _ = read_all(&format!("{}{text}", &ZEEK_TSV[..400]), Format::Auto);
    }
}
