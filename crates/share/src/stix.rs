//! STIX 2.1 export.
//!
//! Every object's id is a UUID version 5 of what it is about (a server's address and port, a
//! botnet's serial, a family's name), and its `created`/`modified` times come from the data (first
//! and last seen), never from the clock: exporting an unchanged object again gives the same id and
//! the same version, so a consumer deduplicates it; a changed one keeps its id and gets a newer
//! `modified`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use botscope_model::{Botnet, CncCandidate, DarknetDay, Kind, Liveness, Record, Timestamp, Transport};
use botscope_store::{RecordQuery, Store, StoreError, all_records};
use chrono::SecondsFormat;
use serde_json::{Value, json};
use uuid::Uuid;

/// Namespace of botscope's STIX ids (fixed forever: changing it would change every exported id).
const NAMESPACE: Uuid = Uuid::from_u128(0x8f3c_2a61_5d0e_4b7a_9c1f_6e2d_3b4a_5c6d);

/// Traffic Light Protocol levels, as the TLP 1.0 marking definitions STIX 2.1 predefines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tlp {
    /// May be shared freely.
    White,
    /// Within the community.
    Green,
    /// Within the recipients' organisations.
    Amber,
    /// Only the named recipients.
    Red,
}

impl Tlp {
    /// The official marking-definition id.
    pub fn marking_id(self) -> &'static str {
        match self {
            Tlp::White => "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
            Tlp::Green => "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
            Tlp::Amber => "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
            Tlp::Red => "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
        }
    }
}

impl std::str::FromStr for Tlp {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.to_ascii_lowercase().as_str() {
            "white" | "clear" => Ok(Tlp::White),
            "green" => Ok(Tlp::Green),
            "amber" => Ok(Tlp::Amber),
            "red" => Ok(Tlp::Red),
            other => Err(format!("unknown TLP level {other:?} (expected white, green, amber or red)")),
        }
    }
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportConfig {
    /// The producer's name (the `identity` every object is created by).
    pub producer: String,
    /// Only objects modified at or after this time.
    pub since: Option<Timestamp>,
    /// The marking on every object.
    pub tlp: Tlp,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// A stable id: the name-based hash of what the object is about, in the version-4 layout STIX
/// requires of domain objects (so consumers see a well-formed id that never changes).
fn stix_id(kind: &str, key: &str) -> String {
    let hashed = Uuid::new_v5(&NAMESPACE, format!("{kind}|{key}").as_bytes());
    format!("{kind}--{}", uuid::Builder::from_random_bytes(*hashed.as_bytes()).into_uuid())
}

/// STIX timestamps: RFC 3339 in UTC with milliseconds.
fn time(t: Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The producer's identity; its version never changes.
fn identity(producer: &str) -> Value {
    let epoch = "2026-01-01T00:00:00.000Z";
    json!({
        "type": "identity",
        "spec_version": "2.1",
        "id": stix_id("identity", producer),
        "created": epoch,
        "modified": epoch,
        "name": producer,
        "identity_class": "organization",
    })
}

/// A server as reported: first and last use, family, and when it was found dead.
struct Server {
    ip: IpAddr,
    port: u16,
    transport: Transport,
    first_seen: Timestamp,
    last_seen: Timestamp,
    family: Option<String>,
    died: Option<Timestamp>,
}

fn pattern(server: &Server) -> String {
    let kind = if server.ip.is_ipv4() { "ipv4-addr" } else { "ipv6-addr" };
    format!(
        "[network-traffic:dst_ref.type = '{kind}' AND network-traffic:dst_ref.value = '{}' AND network-traffic:dst_port = {} AND network-traffic:protocols[*] = '{}']",
        server.ip,
        server.port,
        server.transport.as_str()
    )
}

/// The bundle: every C&C server reported (indicator and infrastructure), every botnet
/// (infrastructure), the families, their relationships, and the darknet's daily sightings.
pub async fn export(store: &impl Store, config: &ExportConfig) -> Result<Value, ShareError> {
    let of_kind = |kind| RecordQuery { kind: Some(kind), ..Default::default() };
    let mut servers: BTreeMap<(IpAddr, u16, Transport), Server> = BTreeMap::new();
    for record in all_records(store, of_kind(Kind::Cnc)).await? {
        if let Record::Cnc(c) = record {
            note_server(&mut servers, &c);
        }
    }
    let botnets: Vec<Botnet> = all_records(store, of_kind(Kind::Botnet))
        .await?
        .into_iter()
        .filter_map(Record::into_payload::<Botnet>)
        .collect();
    for botnet in &botnets {
        for c in &botnet.cnc {
            let server = servers.entry((c.ip, c.port, c.transport)).or_insert(Server {
                ip: c.ip,
                port: c.port,
                transport: c.transport,
                first_seen: c.first_seen,
                last_seen: c.last_seen,
                family: None,
                died: None,
            });
            if server.family.is_none() {
                server.family = botnet.family.clone();
            }
        }
    }
    // The latest liveness state: a dead server's indicator is valid until it died.
    let mut last: BTreeMap<(IpAddr, u16, Transport), Liveness> = BTreeMap::new();
    for record in all_records(store, of_kind(Kind::Liveness)).await? {
        if let Record::Liveness(l) = record {
            let key = (l.ip, l.port, l.protocol);
            if last.get(&key).is_none_or(|seen| seen.checked_at <= l.checked_at) {
                last.insert(key, l);
            }
        }
    }
    for (key, state) in last {
        if let Some(server) = servers.get_mut(&key)
            && !state.alive
            && state.checked_at > server.first_seen
        {
            server.died = Some(state.checked_at);
        }
    }
    let days: Vec<DarknetDay> = all_records(store, of_kind(Kind::DarknetDay))
        .await?
        .into_iter()
        .filter_map(Record::into_payload::<DarknetDay>)
        .collect();

    let producer = identity(&config.producer);
    let producer_id = producer["id"].as_str().unwrap_or_default().to_string();
    let marking = config.tlp.marking_id();
    let mut objects: Vec<Value> = Vec::new();
    let mut keep = |mut object: Value, modified: Timestamp| {
        if config.since.is_some_and(|since| modified < since) {
            return;
        }
        object["spec_version"] = "2.1".into();
        object["created_by_ref"] = producer_id.clone().into();
        object["object_marking_refs"] = json!([marking]);
        objects.push(object);
    };
    let families: BTreeSet<String> = servers
        .values()
        .filter_map(|s| s.family.clone())
        .chain(botnets.iter().filter_map(|b| b.family.clone()))
        .chain(days.iter().filter(|d| d.mirai_sources > 0).map(|_| "mirai".to_string()))
        .collect();
    let epoch: Timestamp = "2026-01-01T00:00:00Z".parse().expect("constant");
    for family in &families {
        keep(
            json!({
                "type": "malware",
                "id": stix_id("malware", family),
                "created": time(epoch),
                "modified": time(epoch),
                "name": family,
                "is_family": true,
                "malware_types": ["bot"],
            }),
            epoch,
        );
    }
    for server in servers.values() {
        let key = format!("{}|{}|{}", server.ip, server.port, server.transport.as_str());
        let name = format!("{}:{}/{}", server.ip, server.port, server.transport.as_str());
        let modified = server.died.unwrap_or(server.last_seen).max(server.first_seen);
        let indicator = stix_id("indicator", &key);
        let infrastructure = stix_id("infrastructure", &key);
        let mut object = json!({
            "type": "indicator",
            "id": indicator,
            "created": time(server.first_seen),
            "modified": time(modified),
            "name": format!("C&C server {name}"),
            "description": format!(
                "Botnet command-and-control server {name}{}, found by ISP flow analysis (botscope).",
                server.family.as_deref().map(|f| format!(" ({f})")).unwrap_or_default()
            ),
            "indicator_types": ["malicious-activity"],
            "pattern": pattern(server),
            "pattern_type": "stix",
            "valid_from": time(server.first_seen),
        });
        if let Some(died) = server.died {
            object["valid_until"] = time(died).into();
        }
        keep(object, modified);
        keep(
            json!({
                "type": "infrastructure",
                "id": infrastructure,
                "created": time(server.first_seen),
                "modified": time(modified),
                "name": name,
                "infrastructure_types": ["command-and-control"],
                "first_seen": time(server.first_seen),
                "last_seen": time(server.last_seen.max(server.first_seen)),
            }),
            modified,
        );
        keep(relationship("indicates", &indicator, &infrastructure, server.first_seen, modified), modified);
        if let Some(family) = &server.family {
            let malware = stix_id("malware", family);
            keep(relationship("indicates", &indicator, &malware, server.first_seen, modified), modified);
            keep(relationship("uses", &malware, &infrastructure, server.first_seen, modified), modified);
        }
    }
    for botnet in &botnets {
        let id = stix_id("infrastructure", &format!("botnet|{}", botnet.serial));
        let modified = botnet.last_seen.max(botnet.first_seen);
        keep(
            json!({
                "type": "infrastructure",
                "id": id,
                "created": time(botnet.first_seen),
                "modified": time(modified),
                "name": botnet.serial,
                "description": format!("botnet {} as botscope tracks it: {} known members at last sight", botnet.serial, botnet.members),
                "infrastructure_types": ["botnet"],
                "first_seen": time(botnet.first_seen),
                "last_seen": time(modified),
            }),
            modified,
        );
        for c in &botnet.cnc {
            let server = stix_id("infrastructure", &format!("{}|{}|{}", c.ip, c.port, c.transport.as_str()));
            keep(relationship("controls", &server, &id, c.first_seen.max(botnet.first_seen), modified), modified);
        }
        if let Some(family) = &botnet.family {
            keep(relationship("hosts", &id, &stix_id("malware", family), botnet.first_seen, modified), modified);
        }
    }
    for day in &days {
        let (Some(start), true) = (day.midnight(), day.mirai_sources > 0) else { continue };
        let end = start + chrono::Duration::days(1) - chrono::Duration::milliseconds(1);
        let sensor = day.sensor.clone().unwrap_or_else(|| "telescope".into());
        keep(
            json!({
                "type": "sighting",
                "id": stix_id("sighting", &format!("darknet|{sensor}|{}|mirai", day.date)),
                "created": time(end),
                "modified": time(end),
                "sighting_of_ref": stix_id("malware", "mirai"),
                "first_seen": time(start),
                "last_seen": time(end),
                "count": day.mirai_sources.min(999_999_999),
                "description": format!("{} distinct hosts sent Mirai-fingerprint packets to darknet {sensor} on {}", day.mirai_sources, day.date),
                "where_sighted_refs": [producer_id.clone()],
            }),
            end,
        );
    }
    objects.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    objects.insert(0, producer);
    let digest: String = objects.iter().map(|o| format!("{}{}", o["id"], o["modified"])).collect();
    Ok(json!({
        "type": "bundle",
        "id": format!("bundle--{}", uuid::Builder::from_random_bytes(*Uuid::new_v5(&NAMESPACE, digest.as_bytes()).as_bytes()).into_uuid()),
        "objects": objects,
    }))
}

fn relationship(kind: &str, source: &str, target: &str, created: Timestamp, modified: Timestamp) -> Value {
    json!({
        "type": "relationship",
        "id": stix_id("relationship", &format!("{source}|{kind}|{target}")),
        "created": time(created),
        "modified": time(modified.max(created)),
        "relationship_type": kind,
        "source_ref": source,
        "target_ref": target,
    })
}

fn note_server(servers: &mut BTreeMap<(IpAddr, u16, Transport), Server>, c: &CncCandidate) {
    let server = servers.entry((c.ip, c.port, c.protocol)).or_insert(Server {
        ip: c.ip,
        port: c.port,
        transport: c.protocol,
        first_seen: c.first_seen,
        last_seen: c.last_seen,
        family: c.family.clone(),
        died: None,
    });
    server.first_seen = server.first_seen.min(c.first_seen);
    server.last_seen = server.last_seen.max(c.last_seen);
    if server.family.is_none() {
        server.family = c.family.clone();
    }
}
