//! Records belong to the token that sent them: random batches through the real router and a real
//! SQLite store never change what another token wrote, and a re-survey's verdicts move only the
//! cases a re-survey judges, and only to fixed or not_fixed.
#![allow(clippy::unwrap_used, reason = "a test should fail loudly on what it did not expect")]

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::Request;
use botscope_center::tokens::{self, Role};
use botscope_model::{NotificationStatus, Record};
use botscope_store::{RecordQuery, SqliteStore, Store, all_records};
use proptest::prelude::*;
use tower::ServiceExt;

const ISPS: [&str; 2] = ["hikari-net", "sakura-bb"];

struct World {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    router: axum::Router,
    sensor: String,
    surveyor: String,
    /// The cases, with their ids.
    cases: Vec<(uuid::Uuid, botscope_model::Notification)>,
    /// Lines another sensor (`darknet-a`) posted.
    theirs: Vec<String>,
}

async fn token(store: &SqliteStore, role: Role, label: &str) -> String {
    let (token, row) = tokens::issue(role, None, label, &[], chrono::Utc::now()).unwrap();
    store.put_token(&row).await.unwrap();
    token
}

async fn post(router: &axum::Router, token: &str, body: String) -> serde_json::Value {
    let request =
        Request::post("/api/v1/ingest").header("authorization", format!("Bearer {token}")).body(Body::from(body));
    let response = router.clone().oneshot(request.unwrap()).await.unwrap();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("centre.db"), 4).await.unwrap();
    let theirs_token = token(&store, Role::Sensor, "darknet-a").await;
    let sensor = token(&store, Role::Sensor, "isp-b").await;
    let surveyor = token(&store, Role::Surveyor, "survey-1").await;
    let state = botscope_web::AppState::new(botscope_store::AnyStore::Sqlite(store.clone()), Default::default());
    let router = botscope_web::router(state);

    let mut cases = Vec::new();
    let statuses = ["sent", "contacted", "fixed", "not_fixed", "false_positive"];
    for n in 0..10u8 {
        let isp = ISPS[n as usize % 2];
        let status = statuses[n as usize % statuses.len()];
        let line = if n % 4 == 3 {
            format!(
                r#"{{"kind":"notification","isp":"{isp}","ip":"127.16.9.{n}","reason":"infected","created_at":"2026-11-03T01:00:00Z","status":"{status}","language":"ja"}}"#
            )
        } else {
            format!(
                r#"{{"kind":"notification","isp":"{isp}","ip":"127.16.9.{n}","port":23,"protocol":"telnet","reason":"default_credential","created_at":"2026-11-03T01:00:00Z","status":"{status}","language":"ja"}}"#
            )
        };
        let mut record = botscope_model::parse_line(line.as_bytes(), None).unwrap().unwrap();
        let id = record.ensure_id();
        store.put_records(std::slice::from_ref(&record)).await.unwrap();
        let Record::Notification(case) = record else { unreachable!() };
        cases.push((id, case));
    }
    let theirs = vec![
        r#"{"kind":"activity","window_start":"2026-11-02T00:00:00Z","window_end":"2026-11-03T00:00:00Z","src":"127.20.240.35","classification":"infected","packets":98,"distinct_destinations":103,"first_seen":"2026-11-02T00:23:51Z","last_seen":"2026-11-02T01:03:14Z"}"#.to_string(),
        r#"{"kind":"feed_entry","source":"darknet-a","role":"cnc","ip":"127.200.0.10","port":6667,"first_seen":"2026-11-04T08:00:00Z"}"#.to_string(),
        r#"{"kind":"cnc","window_start":"2026-11-02T09:00:00Z","window_end":"2026-11-02T10:00:00Z","ip":"127.200.0.10","port":6667,"protocol":"tcp","score":0.97,"rank":1,"methods":["graph"],"seed_clients":41,"total_clients":58,"flows":1290,"first_seen":"2026-11-02T09:00:03Z","last_seen":"2026-11-02T09:59:41Z"}"#.to_string(),
        r#"{"kind":"finding","observed_at":"2026-11-02T04:12:09Z","ip":"127.16.4.21","port":23,"protocol":"telnet","issue":"default_credential","credential_id":17}"#.to_string(),
    ];
    let reply = post(&router, &theirs_token, theirs.join("\n")).await;
    assert_eq!(reply["inserted"], 4, "{reply}");
    World { _dir: dir, store, router, sensor, surveyor, cases, theirs }
}

/// Every stored record's JSON, by id.
type Snapshot = BTreeMap<uuid::Uuid, String>;

async fn snapshot(store: &SqliteStore) -> Snapshot {
    all_records(store, RecordQuery::default())
        .await
        .unwrap()
        .into_iter()
        .map(|record| (record.id().unwrap(), record.to_json_line()))
        .collect()
}

/// One line of a hostile batch.
#[derive(Debug, Clone)]
enum Line {
    /// A verdict on a case.
    Outcome { case: usize, isp: usize, status: usize, source: usize, days: i64 },
    /// Another sender's record, sent again under some name, maybe with a stored record's id.
    Copy { record: usize, sensor: usize, forge: Option<usize> },
    /// A feed entry under some source name.
    Feed { source: usize, host: u8 },
}

const NAMES: [&str; 5] = ["darknet-a", "isp-b", "survey-1", "threatfox", "fake-1"];
const SOURCES: [&str; 3] = ["recheck", "isp", "centre"];

fn line_strategy() -> impl Strategy<Value = Line> {
    prop_oneof![
        3 => (0..10usize, 0..2usize, 0..7usize, 0..3usize, -20..3i64)
            .prop_map(|(case, isp, status, source, days)| Line::Outcome { case, isp, status, source, days }),
        1 => (0..4usize, 0..6usize, proptest::option::of(0..14usize))
            .prop_map(|(record, sensor, forge)| Line::Copy { record, sensor, forge }),
        1 => (0..5usize, any::<u8>()).prop_map(|(source, host)| Line::Feed { source, host }),
    ]
}

fn render(world: &World, ids: &[uuid::Uuid], line: &Line) -> String {
    match line {
        Line::Outcome { case, isp, status, source, days } => {
            let at = chrono::Utc::now() + chrono::Duration::days(*days);
            serde_json::json!({
                "kind": "outcome",
                "notification": world.cases[*case].0,
                "isp": ISPS[*isp],
                "status": NotificationStatus::ALL[*status].as_str(),
                "source": SOURCES[*source],
                "at": at.to_rfc3339(),
            })
            .to_string()
        }
        Line::Copy { record, sensor, forge } => {
            let mut value: serde_json::Value = serde_json::from_str(&world.theirs[*record]).unwrap();
            let object = value.as_object_mut().unwrap();
            if let Some(name) = NAMES.get(*sensor) {
                let field = if object["kind"] == "feed_entry" { "source" } else { "sensor" };
                object.insert(field.into(), (*name).into());
            }
            if let Some(forge) = forge {
                object.insert("id".into(), ids[*forge % ids.len()].to_string().into());
            }
            value.to_string()
        }
        Line::Feed { source, host } => format!(
            r#"{{"kind":"feed_entry","source":"{}","role":"cnc","ip":"127.200.0.{host}","port":6667,"first_seen":"2026-11-04T08:00:00Z"}}"#,
            NAMES[*source]
        ),
    }
}

/// A fresh world, the batch `lines` sent with the token `sender` picks, and the store before and
/// after with the reply.
async fn send(lines: &[Line], sender: impl Fn(&World) -> &String) -> (World, Snapshot, Snapshot, serde_json::Value) {
    let world = world().await;
    let before = snapshot(&world.store).await;
    let ids: Vec<uuid::Uuid> = before.keys().copied().collect();
    let batch: Vec<String> = lines.iter().map(|l| render(&world, &ids, l)).collect();
    let reply = post(&world.router, sender(&world), batch.join("\n")).await;
    let after = snapshot(&world.store).await;
    (world, before, after, reply)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn no_batch_from_a_sensor_token_changes_what_another_token_wrote(
        lines in proptest::collection::vec(line_strategy(), 1..24)
    ) {
        let rt = runtime();
        rt.block_on(async {
            let (_world, before, after, reply) = send(&lines, |world| &world.sensor).await;
            for (id, was) in &before {
                prop_assert_eq!(Some(was), after.get(id), "record {} changed; reply {}", id, reply);
            }
            // What the sensor added is its own: named after it, under ids the centre derives.
            for (id, line) in after.iter().filter(|(id, _)| !before.contains_key(id)) {
                let record = botscope_model::parse_line(line.as_bytes(), None).unwrap().unwrap();
                prop_assert_eq!(record.derived_id(), *id);
                let mut record = record;
                let own = match &mut record {
                    Record::FeedEntry(entry) => entry.source == "isp-b",
                    other => other.sensor_mut().is_some_and(|s| s.as_deref() == Some("isp-b")),
                };
                prop_assert!(own, "{} is not the sensor's own", line);
            }
            Ok(())
        })?;
    }

    #[test]
    fn a_surveyors_verdicts_move_only_cases_a_resurvey_judges(
        lines in proptest::collection::vec(line_strategy(), 1..24)
    ) {
        let rt = runtime();
        rt.block_on(async {
            let (world, before, after, reply) = send(&lines, |world| &world.surveyor).await;
            for (id, was) in &before {
                let now = &after[id];
                if now == was {
                    continue;
                }
                let Some((_, case)) = world.cases.iter().find(|(case, _)| case == id) else {
                    prop_assert!(false, "record {} changed; reply {}", id, reply);
                    unreachable!()
                };
                let Some(Record::Notification(moved)) = botscope_model::parse_line(now.as_bytes(), None).unwrap() else {
                    unreachable!()
                };
                prop_assert!(botscope_center::admit::recheckable(case), "{:?} moved to {:?}", case, moved.status);
                prop_assert!(
                    matches!(moved.status, NotificationStatus::Fixed | NotificationStatus::NotFixed),
                    "a re-survey moved {} to {:?}", id, moved.status
                );
                let named = lines.iter().any(|line| matches!(line,
                    Line::Outcome { case: c, isp, status, source: 0, .. }
                        if world.cases[*c].0 == *id && ISPS[*isp] == case.isp && NotificationStatus::ALL[*status] == moved.status));
                prop_assert!(named, "{} moved to {:?} without a verdict naming its own ISP", id, moved.status);
                let mut unmoved = moved.clone();
                unmoved.status = case.status;
                prop_assert_eq!(&unmoved, case, "only the status moves");
            }
            Ok(())
        })?;
    }
}
