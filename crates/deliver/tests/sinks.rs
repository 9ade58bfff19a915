//! The sinks on their own: a centre that does not answer keeps every batch in the spool (nothing is
//! lost, nothing is sent twice), and a file sink writes one JSON line per record.

use std::time::Duration;

use botscope_deliver::{CenterConfig, CenterSink, DeliverError, FileSink, RecordSink};
use botscope_model::{Record, parse_line};

fn finding(port: u16) -> Record {
    let line = format!(
        r#"{{"kind":"finding","observed_at":"2026-11-02T04:12:09Z","ip":"127.16.4.21","port":{port},"protocol":"telnet","issue":"default_credential","credential_id":1,"sensor":"survey-1"}}"#
    );
    let mut record = parse_line(line.as_bytes(), None).expect("valid line").expect("a record");
    record.ensure_id();
    record
}

fn spooled(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for folder in std::fs::read_dir(dir).expect("spool") {
        let folder = folder.expect("entry").path();
        for file in std::fs::read_dir(&folder).expect("folder") {
            let path = file.expect("entry").path();
            if path.extension().is_some_and(|x| x == "ndjson") {
                files.push(path);
            }
        }
    }
    files
}

#[tokio::test]
async fn an_unreachable_centre_keeps_every_batch_in_the_spool() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let config = CenterConfig {
        url: "http://127.0.0.1:1".into(),
        token: "bst_test".into(),
        spool: dir.path().to_path_buf(),
        wait: Duration::ZERO,
        sensor: Some("survey-1".into()),
    };
    let mut sink = CenterSink::new(&config).expect("sink");
    sink.put(&[finding(23), finding(2323)]).await.expect("spooled, not failed");
    sink.put(&[finding(80)]).await.expect("spooled, not failed");
    sink.finish().await.expect("leaves the rest for the next run");
    let files = spooled(dir.path());
    assert_eq!(files.len(), 2, "{files:?}");
    let lines: usize = files.iter().map(|f| std::fs::read_to_string(f).expect("read").lines().count()).sum();
    assert_eq!(lines, 3);
    assert_eq!(sink.accepted, 0);
}

#[test]
fn a_centre_without_a_sensor_name_or_scheme_is_refused() {
    let mut config = CenterConfig {
        url: "127.0.0.1:8080".into(),
        token: "t".into(),
        spool: std::env::temp_dir(),
        wait: Duration::ZERO,
        sensor: Some("s".into()),
    };
    assert!(matches!(CenterSink::new(&config), Err(DeliverError::Config(m)) if m.contains("http://")));
    config.url = "http://127.0.0.1:8080".into();
    config.sensor = None;
    assert!(matches!(CenterSink::new(&config), Err(DeliverError::Config(m)) if m.contains("--sensor")));
}

#[tokio::test]
async fn a_file_sink_writes_one_line_per_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("out.jsonl");
    let mut sink = FileSink::create(&path).expect("create");
    sink.put(&[finding(23), finding(80)]).await.expect("write");
    sink.finish().await.expect("flush");
    let text = std::fs::read_to_string(&path).expect("read");
    let back: Vec<Record> =
        text.lines().map(|l| parse_line(l.as_bytes(), None).expect("line").expect("record")).collect();
    assert_eq!(back, vec![finding(23), finding(80)]);
    assert_eq!(sink.written, 2);
}
