//! `botscope share ...`: the centre's knowledge in the formats other centres read.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use botscope_share::stix::{self, ExportConfig, Tlp};
use botscope_share::taxii;
use clap::{Args, Subcommand};

use crate::settings::Settings;

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
    /// Import indicators from another TAXII 2.1 server's collection (only what is new since the last pull)
    #[command(long_about = PULL_ABOUT, after_help = "Examples:\n  botscope share pull --taxii https://taxii.partner.example/taxii2/ --collection 5b2f8c1e-7d3a-4e9b-8f60-2a1c3d4e5f6a --user me --password secret\n  botscope share pull --taxii http://127.0.0.1:8080/taxii2/ --collection ID --token $TOKEN --state pull-state.json")]
    Pull(PullArgs),
}

const PULL_ABOUT: &str = "Import the C&C indicators of another TAXII 2.1 server's collection as feed_entry records \
(source `taxii:HOST/COLLECTION`, or --source), so correlation counts them and `botscope report feeds` \
compares them. Incremental: the last pull's X-TAXII-Date-Added-Last is kept in --state and sent as \
added_after, so each pull fetches only what the collection got since; pages are followed with `next`. \
Indicators without an address pattern are counted, not imported.";

/// `botscope share pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// The server's discovery URL or API root (…/taxii2/ or …/taxii2/api1/)
    #[arg(long, value_name = "URL")]
    pub taxii: String,
    /// The collection's id
    #[arg(long, value_name = "ID")]
    pub collection: String,
    /// HTTP Basic user
    #[arg(long, value_name = "USER", requires = "password", conflicts_with = "token")]
    pub user: Option<String>,
    /// HTTP Basic password
    #[arg(long, value_name = "PASSWORD", env = "BOTSCOPE_TAXII_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Bearer token (a botscope centre's token)
    #[arg(long, value_name = "TOKEN", env = "BOTSCOPE_TAXII_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Where the last pull's position is kept [default: taxii-pull-<hash>.json]
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Source name of the imported entries [default: taxii:HOST/COLLECTION]
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
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
        ShareCommand::Pull(args) => return pull(args, settings).await,
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
            taxii::SHARED_COLLECTION.to_string()
        } else {
            let isps = botscope_store::Store::isps(&store).await?;
            anyhow::ensure!(
                isps.iter().any(|i| &i.handle == target),
                "--publish {target}: not `shared` and not an ISP of the registry"
            );
            taxii::isp_collection(target)
        };
        let records = taxii::publication(&bundle, &collection, chrono::Utc::now());
        // Versions already published keep their date_added: only new ones are added.
        let summary = botscope_store::Store::put_records(&store, &records).await?;
        tracing::info!(collection = %target, new_versions = summary.inserted, unchanged = summary.duplicates, "published to the TAXII server");
    }
    tracing::info!(objects = count, tlp = ?args.tlp, "STIX bundle written");
    Ok(ExitCode::SUCCESS)
}

async fn pull(args: PullArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let mut config = taxii::PullConfig::new(&args.taxii, &args.collection);
    config.auth = match (&args.user, &args.password, &args.token) {
        (Some(user), password, _) => taxii::Auth::Basic { user: user.clone(), password: password.clone() },
        (None, _, Some(token)) => taxii::Auth::Bearer(token.clone()),
        _ => taxii::Auth::None,
    };
    let root = taxii::resolve_root(&config).await.with_context(|| format!("--taxii {}", args.taxii))?;
    config.url = root.clone();
    // The position is kept per API root and collection.
    let state_path = args.state.clone().unwrap_or_else(|| {
        let digest = ring::digest::digest(&ring::digest::SHA256, format!("{root}|{}", args.collection).as_bytes());
        PathBuf::from(format!(
            "taxii-pull-{}.json",
            digest.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect::<String>()
        ))
    });
    config.added_after = std::fs::read_to_string(&state_path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["added_after"].as_str().map(String::from));
    let pulled = taxii::pull(&config).await.with_context(|| format!("--taxii {}", args.taxii))?;
    let host = reqwest::Url::parse(&root).ok().and_then(|u| u.host_str().map(String::from)).unwrap_or_default();
    let source = args.source.clone().unwrap_or_else(|| format!("taxii:{host}/{}", args.collection));
    let objects = pulled.objects;
    let last_added = pulled.last_added;
    let bundle = serde_json::json!({ "type": "bundle", "objects": objects });
    let options = botscope_center::feeds::FeedOptions {
        format: botscope_center::feeds::FeedFormat::Stix,
        source: source.clone(),
        plain_role: botscope_model::FeedRole::Cnc,
        now: chrono::Utc::now(),
    };
    let read = botscope_center::feeds::read(bundle.to_string().as_bytes(), &options)?;
    let store = settings.open_store().await?;
    let records: Vec<botscope_model::Record> =
        read.entries.into_iter().map(botscope_model::Record::FeedEntry).collect();
    let summary = botscope_store::Store::put_records(&store, &records).await?;
    if let Some(last) = last_added {
        let state = serde_json::json!({ "taxii": root, "collection": args.collection, "added_after": last });
        std::fs::write(&state_path, state.to_string() + "\n")
            .with_context(|| format!("cannot write {}", state_path.display()))?;
    }
    tracing::info!(
        objects = objects.len(),
        imported = summary.inserted,
        already = summary.duplicates,
        not_imported = read.not_imported,
        bad = read.bad,
        %source,
        state = %state_path.display(),
        "TAXII pull finished"
    );
    Ok(ExitCode::SUCCESS)
}
