//! A MISP feed directory: what a MISP instance subscribes to as a "MISP feed".
//!
//! One event per botnet (its C&C servers as `ip-dst|port` attributes), `manifest.json` indexing
//! the events, and `hashes.csv` with the MD5 of every attribute value (composite values hashed part
//! by part), as MISP's feed format has it. Event and attribute uuids are stable, so MISP updates an
//! event it already has instead of adding a copy.

use std::io::Write;
use std::path::{Path, PathBuf};

use botscope_model::Botnet;
use botscope_store::{Store, all_of};
use md5::{Digest, Md5};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::stix::{ShareError, Tlp};

/// Namespace of botscope's MISP uuids (fixed forever).
const NAMESPACE: Uuid = Uuid::from_u128(0x3e1f_7a2c_9b40_4d6e_8a15_2c7d_0f9e_4b3a);

fn stable_uuid(key: &str) -> String {
    uuid::Builder::from_random_bytes(*Uuid::new_v5(&NAMESPACE, key.as_bytes()).as_bytes()).into_uuid().to_string()
}

/// What the feed says about its producer and marking.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// The organisation named as the events' creator (`Orgc`).
    pub producer: String,
    /// The TLP tag on every event.
    pub tlp: Tlp,
}

/// What was written.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FeedWritten {
    /// Events (one per botnet with C&C servers).
    pub events: usize,
    /// Attributes in all.
    pub attributes: usize,
    /// The files, manifest and hashes last.
    pub files: Vec<PathBuf>,
}

fn tlp_tag(tlp: Tlp) -> Value {
    let (name, colour) = match tlp {
        Tlp::White => ("tlp:white", "#ffffff"),
        Tlp::Green => ("tlp:green", "#33ff00"),
        Tlp::Amber => ("tlp:amber", "#ffc000"),
        Tlp::Red => ("tlp:red", "#ff2b2b"),
    };
    json!({ "name": name, "colour": colour, "exportable": true })
}

fn md5_hex(text: &str) -> String {
    Md5::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes the feed into `dir` (created if missing), replacing the files it writes.
pub async fn write_feed(store: &impl Store, dir: &Path, config: &FeedConfig) -> Result<FeedWritten, ShareError> {
    let io = |path: &Path, source: std::io::Error| ShareError::Io { path: path.display().to_string(), source };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut botnets: Vec<Botnet> = all_of::<Botnet>(store).await?.into_iter().filter(|b| !b.cnc.is_empty()).collect();
    botnets.sort_by(|a, b| a.serial.cmp(&b.serial));
    let orgc = json!({ "name": config.producer, "uuid": stable_uuid(&format!("org|{}", config.producer)) });
    let tag = tlp_tag(config.tlp);
    let mut manifest = serde_json::Map::new();
    let mut hashes = String::new();
    let mut written = FeedWritten::default();
    for botnet in &botnets {
        let event_uuid = stable_uuid(&format!("event|{}", botnet.serial));
        let timestamp = botnet.last_seen.timestamp().to_string();
        let info = format!(
            "botscope botnet {}{}: C&C servers",
            botnet.serial,
            botnet.family.as_deref().map(|f| format!(" ({f})")).unwrap_or_default()
        );
        let attributes: Vec<Value> = botnet
            .cnc
            .iter()
            .map(|c| {
                let value = format!("{}|{}", c.ip, c.port);
                for part in [c.ip.to_string(), c.port.to_string()] {
                    hashes.push_str(&format!("{},{event_uuid}\n", md5_hex(&part)));
                }
                json!({
                    "uuid": stable_uuid(&format!("attribute|{}|{}|{}|{}", botnet.serial, c.ip, c.port, c.transport.as_str())),
                    "type": "ip-dst|port",
                    "category": "Network activity",
                    "value": value,
                    "to_ids": true,
                    "timestamp": c.last_seen.timestamp().to_string(),
                    "first_seen": c.first_seen.to_rfc3339(),
                    "last_seen": c.last_seen.to_rfc3339(),
                    "comment": format!("C&C server ({}) of {}", c.transport.as_str(), botnet.serial),
                })
            })
            .collect();
        written.attributes += attributes.len();
        let date = botnet.first_seen.format("%Y-%m-%d").to_string();
        let event = json!({
            "Event": {
                "uuid": event_uuid,
                "info": info,
                "date": date,
                "analysis": "2",
                "threat_level_id": "2",
                "published": true,
                "timestamp": timestamp,
                "publish_timestamp": timestamp,
                "Orgc": orgc,
                "Tag": [tag],
                "Attribute": attributes,
                "Object": [],
            }
        });
        manifest.insert(
            event_uuid.clone(),
            json!({
                "Orgc": orgc,
                "Tag": [tag],
                "info": info,
                "date": date,
                "analysis": 2,
                "threat_level_id": 2,
                "timestamp": timestamp,
            }),
        );
        let path = dir.join(format!("{event_uuid}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&event).unwrap_or_default()).map_err(|e| io(&path, e))?;
        written.files.push(path);
        written.events += 1;
    }
    let path = dir.join("manifest.json");
    std::fs::write(&path, serde_json::to_string_pretty(&Value::Object(manifest)).unwrap_or_default())
        .map_err(|e| io(&path, e))?;
    written.files.push(path);
    let path = dir.join("hashes.csv");
    let mut file = std::fs::File::create(&path).map_err(|e| io(&path, e))?;
    file.write_all(hashes.as_bytes()).map_err(|e| io(&path, e))?;
    written.files.push(path);
    Ok(written)
}
