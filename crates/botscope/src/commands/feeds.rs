//! `botscope feeds import` and `botscope liveness`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use botscope_center::feeds::{self, FeedFormat, FeedOptions};
use botscope_center::liveness::{self, ProbeConfig};
use botscope_model::{FeedRole, Record};
use botscope_store::Store;
use clap::{Args, Subcommand};

use crate::Settings;

const IMPORT_ABOUT: &str = "Add an outside list of C&C servers (or bots) to the store as feed_entry records.

Entries keep their source, so the centre can say which C&C servers its flow analysers found before a \
feed listed them, and correlation counts a feed naming a reported server as one more independent \
reporter. Importing the same file again adds nothing. Formats (docs/feeds.md):
  threatfox-csv  abuse.ch ThreatFox CSV export (ip:port IOCs; botnet_cc and payload_delivery)
  feodo-csv      abuse.ch Feodo Tracker IP blocklist CSV
  stix           a STIX 2.1 bundle (indicators with address patterns; the malware they indicate)
  plain          ADDRESS[:PORT] [FAMILY] per line, # comments";

/// `botscope feeds ...`.
#[derive(Debug, Subcommand)]
pub enum FeedsCommand {
    /// Import a feed file (- = standard input)
    #[command(long_about = IMPORT_ABOUT, after_help = "Examples:\n  botscope feeds import --format threatfox-csv threatfox.csv\n  botscope feeds import --format plain --source partner-isp --role cnc cnc.txt\n  botscope feeds import --format stix bundle.json")]
    Import(FeedImportArgs),
}

/// `botscope feeds import`.
#[derive(Debug, Args)]
pub struct FeedImportArgs {
    /// threatfox-csv, feodo-csv, stix or plain
    #[arg(long, value_name = "FORMAT")]
    pub format: FeedFormat,
    /// Source name kept on every entry [default: threatfox, feodo, stix or plain]
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
    /// What the addresses of a plain list are: cnc, bot or download
    #[arg(long, value_name = "ROLE", default_value = "cnc", value_parser = parse_role)]
    pub role: FeedRole,
    /// Print what was read as JSON
    #[arg(long)]
    pub json: bool,
    /// The feed file
    pub file: PathBuf,
}

fn parse_role(text: &str) -> Result<FeedRole, String> {
    match text {
        "cnc" => Ok(FeedRole::Cnc),
        "bot" => Ok(FeedRole::Bot),
        "download" => Ok(FeedRole::Download),
        other => Err(format!("{other:?}: expected cnc, bot or download")),
    }
}

pub async fn run(command: FeedsCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    let FeedsCommand::Import(args) = command;
    let options = FeedOptions {
        format: args.format,
        source: args.source.clone().unwrap_or_else(|| args.format.default_source().into()),
        plain_role: args.role,
        now: chrono::Utc::now(),
    };
    let input = botscope_input::open(&args.file)?;
    let read = feeds::read(input, &options).with_context(|| format!("{}", args.file.display()))?;
    for problem in &read.problems {
        tracing::warn!("{}:{}: skipped: {}", args.file.display(), problem.at, problem.reason);
    }
    let store = settings.open_store().await?;
    let records: Vec<Record> = read.entries.iter().cloned().map(Record::FeedEntry).collect();
    let summary = store.put_records(&records).await?;
    if args.json {
        let mut value = serde_json::to_value(&read)?;
        value["entries"] = records.len().into();
        value["inserted"] = summary.inserted.into();
        value["duplicates"] = summary.duplicates.into();
        println!("{}", serde_json::to_string_pretty(&value)?);
    }
    tracing::info!(
        source = %options.source,
        entries = records.len(),
        inserted = summary.inserted,
        duplicates = summary.duplicates,
        not_imported = read.not_imported,
        bad = read.bad,
        "feed imported"
    );
    anyhow::ensure!(!records.is_empty() || read.bad == 0, "no entry of {} could be read", args.file.display());
    Ok(ExitCode::SUCCESS)
}

const LIVENESS_ABOUT: &str = "Probe the C&C servers flow analysers reported and feeds list: a TCP \
connect, and with --greeting a hello the server must not refuse. A liveness record is stored on \
the first probe of a server and whenever it goes from alive to dead or back, so the records are its \
timeline. After each round the lifetimes are summarised: share dead within 10 days of first report, \
median lifetime.

What may be probed: with --lab only loopback servers (127.0.0.0/8, ::1), every other address \
skipped; without it never loopback, private, shared or other special-purpose ranges (the survey's \
built-in blocklist), and only at --rate probes per second.";

/// `botscope liveness`.
#[derive(Debug, Args)]
#[command(long_about = LIVENESS_ABOUT, after_help = "Examples:\n  botscope liveness --once --lab\n  botscope liveness --interval 1h --rate 20 --greeting 00000001\n  botscope liveness --once --json")]
pub struct LivenessArgs {
    /// One round, then exit
    #[arg(long)]
    pub once: bool,
    /// Time between rounds
    #[arg(long, default_value = "1h", value_name = "DURATION", value_parser = super::duration_arg)]
    pub interval: u64,
    /// Probes started per second at most
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub rate: u32,
    /// Connect timeout (and how long a greeted server must keep the connection)
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = super::duration_arg)]
    pub timeout: u64,
    /// Hex bytes to send after connecting (Mirai's bot hello is 00000001)
    #[arg(long, value_name = "HEX")]
    pub greeting: Option<String>,
    /// Lab mode: probe loopback servers only
    #[arg(long)]
    pub lab: bool,
    /// Name written as the records' sensor
    #[arg(long, value_name = "NAME")]
    pub sensor: Option<String>,
    /// Print each round's report and the lifetimes as JSON
    #[arg(long)]
    pub json: bool,
}

fn hex(text: &str) -> anyhow::Result<Vec<u8>> {
    let text = text.trim();
    anyhow::ensure!(
        text.len().is_multiple_of(2) && text.len() <= 512,
        "--greeting: an even number of hex digits, at most 256 bytes"
    );
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).with_context(|| format!("--greeting {text}: not hex")))
        .collect()
}

/// Whether liveness may probe `ip`: loopback only in the lab, never a special-purpose range outside it.
fn probe_allowed(ip: IpAddr, lab: bool) -> bool {
    if lab {
        return ip.is_loopback();
    }
    match ip {
        IpAddr::V4(v4) => {
            let blocked = botscope_survey::scope::BUILTIN_BLOCKLIST
                .iter()
                .any(|(range, _)| range.parse::<ipnet::Ipv4Net>().is_ok_and(|net| net.contains(&v4)));
            !blocked
        }
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            // Global unicast only (2000::/3), and not documentation (2001:db8::/32).
            (segments[0] & 0xe000) == 0x2000 && !(segments[0] == 0x2001 && segments[1] == 0x0db8)
        }
    }
}

pub async fn liveness(args: LivenessArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let store = settings.open_store().await?;
    let config = ProbeConfig {
        timeout: std::time::Duration::from_secs(args.timeout.max(1)),
        greeting: args.greeting.as_deref().map(hex).transpose()?,
        rate: args.rate,
        concurrency: 256,
        sensor: args.sensor.clone(),
    };
    let lab = args.lab;
    let allowed = move |ip: IpAddr| probe_allowed(ip, lab);
    loop {
        let targets = liveness::targets(&store).await?;
        let report = liveness::round(&store, &targets, &config, &allowed).await?;
        let lives = liveness::lifetimes(&store, chrono::Utc::now()).await?;
        if args.json {
            println!("{}", serde_json::json!({ "round": report, "lifetimes": lives }));
        }
        tracing::info!(
            probed = report.probed,
            alive = report.alive,
            dead = report.dead,
            changes = report.changes,
            skipped = report.skipped,
            dead_within_10_days = format!("{:.0} %", lives.share_dead_within_10_days * 100.0),
            median_lifetime_hours =
                lives.median_lifetime_hours.map(|h| format!("{h:.1}")).unwrap_or_else(|| "-".into()),
            "liveness round finished"
        );
        if args.once {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(args.interval.max(1))) => {}
            _ = crate::stop::shutdown_signal() => return Ok(ExitCode::SUCCESS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lab_probes_loopback_only_and_the_field_never_special_ranges() {
        let allowed = |ip: &str, lab| probe_allowed(ip.parse().unwrap(), lab);
        assert!(allowed("127.200.0.10", true) && allowed("::1", true));
        assert!(!allowed("192.0.2.1", true) && !allowed("10.0.0.1", true) && !allowed("8.8.8.8", true));
        assert!(!allowed("127.200.0.10", false) && !allowed("10.1.2.3", false) && !allowed("192.168.1.1", false));
        assert!(!allowed("100.64.0.1", false) && !allowed("2001:db8::1", false) && !allowed("fe80::1", false));
        assert!(allowed("8.8.8.8", false) && allowed("2606:4700::1", false));
    }
}
