//! `botscope share ...`: the centre's knowledge in the formats other centres read.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use botscope_share::stix::{self, ExportConfig, Tlp};
use clap::{Args, Subcommand};

use crate::Settings;

const STIX_ABOUT: &str = "Write a STIX 2.1 bundle of what the centre knows: the producer's identity; \
for every reported C&C server an indicator (its address and port as a network-traffic pattern, \
valid from its first report until liveness found it dead) and a command-and-control \
infrastructure; every botnet as a botnet infrastructure named by its serial; malware families; \
the relationships between them (indicates, uses, controls, hosts); and the darknet's daily \
Mirai sightings.

Ids are stable: an object exported again unchanged has the same id and version, so consumers \
deduplicate it; a changed one keeps its id with a newer `modified`. Every object carries the \
--tlp marking by its official marking-definition id. No subscriber address is exported: bots \
appear only as counts.";

/// `botscope share ...`.
#[derive(Debug, Subcommand)]
pub enum ShareCommand {
    /// Write a STIX 2.1 bundle of C&C servers, botnets, families and darknet sightings
    #[command(long_about = STIX_ABOUT, after_help = "Examples:\n  botscope share stix --out bundle.json\n  botscope share stix --since 2026-11-01T00:00:00Z --tlp amber --out new.json")]
    Stix(StixArgs),
    /// Write a MISP feed directory (manifest.json, one event per botnet, hashes.csv)
    #[command(long_about = MISP_ABOUT, after_help = "Examples:\n  botscope share misp --out feed/\n  botscope share misp --out /var/www/misp-feed --tlp amber --producer \"JP centre\"")]
    Misp(MispArgs),
}

const MISP_ABOUT: &str = "Write a MISP feed directory that a MISP instance can subscribe to (Sync \
Actions > Feeds, format MISP Feed): one event per botnet with its C&C servers as ip-dst|port \
attributes (to_ids), manifest.json indexing the events, and hashes.csv with the MD5 of every \
attribute value. Event and attribute uuids are stable, so MISP updates the events it already has. \
No subscriber address is written.";

/// `botscope share misp`.
#[derive(Debug, Args)]
pub struct MispArgs {
    /// The feed directory (created if missing)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// TLP tag on every event: white, green, amber or red
    #[arg(long, default_value = "green", value_name = "LEVEL")]
    pub tlp: Tlp,
    /// The organisation named as the events' creator
    #[arg(long, default_value = "botscope centre", value_name = "NAME")]
    pub producer: String,
}

/// `botscope share stix`.
#[derive(Debug, Args)]
pub struct StixArgs {
    /// Only objects modified at or after this time (RFC 3339)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// TLP marking on every object: white, green, amber or red
    #[arg(long, default_value = "green", value_name = "LEVEL")]
    pub tlp: Tlp,
    /// The producer's name (the identity every object is created by)
    #[arg(long, default_value = "botscope centre", value_name = "NAME")]
    pub producer: String,
    /// Write the bundle here (- = standard output)
    #[arg(long, default_value = "-", value_name = "FILE")]
    pub out: PathBuf,
    /// Also publish the objects in a collection of the centre's TAXII server: `shared` (TLP:WHITE,
    /// GREEN, AMBER) or an ISP's handle (its own collection; the only place for TLP:RED)
    #[arg(long, value_name = "COLLECTION")]
    pub publish: Option<String>,
}

pub async fn run(command: ShareCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    let args = match command {
        ShareCommand::Stix(args) => args,
        ShareCommand::Misp(args) => {
            let store = settings.open_store().await?;
            let config = botscope_share::misp::FeedConfig { producer: args.producer.clone(), tlp: args.tlp };
            let written = botscope_share::misp::write_feed(&store, &args.out, &config).await?;
            tracing::info!(events = written.events, attributes = written.attributes, dir = %args.out.display(), "MISP feed written");
            return Ok(ExitCode::SUCCESS);
        }
    };
    let since = args
        .since
        .as_deref()
        .map(|t| chrono::DateTime::parse_from_rfc3339(t).map(|t| t.to_utc()))
        .transpose()
        .with_context(|| format!("--since {}: not an RFC 3339 time", args.since.as_deref().unwrap_or("")))?;
    let store = settings.open_store().await?;
    let config = ExportConfig { producer: args.producer.clone(), since, tlp: args.tlp };
    let bundle = stix::export(&store, &config).await?;
    let text = serde_json::to_string_pretty(&bundle)? + "\n";
    if args.out.as_os_str() == "-" {
        std::io::stdout().write_all(text.as_bytes())?;
    } else {
        std::fs::write(&args.out, &text).with_context(|| format!("cannot write {}", args.out.display()))?;
    }
    let count = bundle["objects"].as_array().map_or(0, Vec::len);
    if let Some(target) = &args.publish {
        let collection = if target == "shared" {
            anyhow::ensure!(
                args.tlp != Tlp::Red,
                "TLP:RED objects go only to their audience's collection: --publish HANDLE"
            );
            botscope_web::taxii::SHARED_COLLECTION.to_string()
        } else {
            let isps = botscope_store::Store::isps(&store).await?;
            anyhow::ensure!(
                isps.iter().any(|i| &i.handle == target),
                "--publish {target}: not `shared` and not an ISP of the registry"
            );
            botscope_web::taxii::isp_collection(target)
        };
        let now = chrono::Utc::now();
        let records: Vec<botscope_model::Record> = bundle["objects"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|object| {
                let mut record = botscope_model::Record::TaxiiObject(botscope_model::TaxiiObject {
                    id: None,
                    collection: collection.clone(),
                    date_added: now,
                    added_by: "centre".into(),
                    object: object.clone(),
                });
                record.ensure_id();
                record
            })
            .collect();
        // Versions already published keep their date_added: only new ones are added.
        let summary = botscope_store::Store::put_records(&store, &records).await?;
        tracing::info!(collection = %target, new_versions = summary.inserted, unchanged = summary.duplicates, "published to the TAXII server");
    }
    tracing::info!(objects = count, tlp = ?args.tlp, "STIX bundle written");
    Ok(ExitCode::SUCCESS)
}
