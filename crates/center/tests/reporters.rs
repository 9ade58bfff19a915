//! Independent reporters raise a botnet's confidence, so they are counted by token: issue 16
//! found 1,500 invented sensor names making a botnet with 1,500 "independent" reporters at
//! confidence 1.0.
#![allow(clippy::unwrap_used, reason = "a test should fail loudly on what it did not expect")]

use botscope_center::correlate::{self, CorrelateConfig};
use botscope_center::tokens::{self, Role};
use botscope_model::{Kind, Record, parse_line};
use botscope_store::{RecordQuery, SqliteStore, Store, all_records};

fn report(sensor: &str, score: f64) -> Record {
    let line = format!(
        r#"{{"kind":"cnc","window_start":"2026-11-02T09:00:00Z","window_end":"2026-11-02T10:00:00Z","ip":"127.200.0.10","port":6667,"protocol":"tcp","score":{score},"rank":1,"methods":["graph"],"seed_clients":3,"total_clients":3,"flows":90,"first_seen":"2026-11-02T09:00:03Z","last_seen":"2026-11-02T09:59:41Z","sensor":"{sensor}"}}"#
    );
    parse_line(line.as_bytes(), None).unwrap().unwrap()
}

#[tokio::test]
async fn regression_every_name_of_one_token_made_another_independent_reporter() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("c.db"), 2).await.unwrap();
    let names: Vec<String> = (2..=15).map(|n| format!("isp-hikari-{n}")).collect();
    let (_, hikari) = tokens::issue(Role::Sensor, None, "isp-hikari", &names, chrono::Utc::now()).unwrap();
    let (_, sakura) = tokens::issue(Role::Sensor, None, "isp-sakura", &[], chrono::Utc::now()).unwrap();
    store.put_token(&hikari).await.unwrap();
    store.put_token(&sakura).await.unwrap();
    let mut records: Vec<Record> = names.iter().map(|name| report(name, 0.5)).collect();
    records.push(report("isp-hikari", 0.5));
    records.push(report("isp-sakura", 0.5));
    store.put_records(&records).await.unwrap();
    let config = CorrelateConfig {
        window_secs: 86_400,
        lookback: 7,
        settle_secs: 0,
        now: "2026-11-20T00:00:00Z".parse().unwrap(),
    };
    let run = correlate::run(&store, &config).await.unwrap();
    assert_eq!(run.per_reporter.len(), 2, "{:?}", run.per_reporter);
    let botnets: Vec<_> = all_records(&store, RecordQuery { kind: Some(Kind::Botnet), ..Default::default() })
        .await
        .unwrap()
        .into_iter()
        .filter_map(Record::into_payload::<botscope_model::Botnet>)
        .collect();
    assert_eq!(botnets.len(), 1);
    assert_eq!(botnets[0].reporters, ["isp-hikari", "isp-sakura"]);
    // Two independent reporters at 0.5 each: 1 - 0.5 * 0.5.
    assert_eq!(botnets[0].confidence, Some(0.75));
}
