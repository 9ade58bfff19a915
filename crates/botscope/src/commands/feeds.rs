//! `botscope feeds import` and `botscope liveness`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use botscope_center::feeds::{self, FeedFormat, FeedOptions};
use botscope_center::liveness::{self, ProbeConfig};
use botscope_model::{FeedRole, Record};
use botscope_scope::Scope;
use botscope_store::Store;
use clap::{Args, Subcommand};

use crate::settings::Settings;

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

What may be probed (the scope, docs/scanning-policy.md): every public address by default, or only \
the --scope ranges, always minus the built-in blocklists (loopback, private, shared, documentation, \
multicast and the other special-purpose ranges, IPv4 and IPv6) and minus every --exclude-file; \
with --lab only loopback (127.0.0.0/8, ::1). A server a sensor or feed reported outside the scope \
is counted (outside_scope) and never contacted. At most --rate probes per second.";

/// `botscope liveness`.
#[derive(Debug, Args)]
#[command(long_about = LIVENESS_ABOUT, after_help = "Examples:\n  botscope liveness --once --lab\n  botscope liveness --interval 1h --rate 20 --greeting 00000001 --exclude-file optout.txt\n  botscope liveness --once --json --scope 198.51.100.0/22 --scope 2001:db8:100::/40")]
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
    /// Probe only servers in this range (IPv4 or IPv6 CIDR or address); repeatable [default:
    /// every public address]
    #[arg(long, value_name = "CIDR")]
    pub scope: Vec<String>,
    /// File of ranges to probe, one CIDR per line, # comments; repeatable
    #[arg(long, value_name = "FILE")]
    pub scope_file: Vec<PathBuf>,
    /// File of ranges never to probe (exclusions, opt-outs), one CIDR per line; repeatable
    #[arg(long, value_name = "FILE")]
    pub exclude_file: Vec<PathBuf>,
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

/// What liveness may probe: the --scope ranges (every public address when none is given) minus
/// the built-in blocklists and the --exclude-file ranges; loopback only with --lab.
fn liveness_scope(args: &LivenessArgs) -> anyhow::Result<Scope> {
    let mut requested = Vec::new();
    for text in &args.scope {
        requested.push(botscope_scope::parse_net(text).map_err(|e| anyhow::anyhow!("--scope {e}"))?);
    }
    for path in &args.scope_file {
        requested.extend(botscope_scope::read_net_file(path)?.into_iter().map(|(net, _)| net));
    }
    let mut excluded = Vec::new();
    for path in &args.exclude_file {
        excluded.extend(botscope_scope::read_net_file(path)?);
    }
    if args.scope.is_empty() && args.scope_file.is_empty() {
        return Ok(Scope::public(&excluded, args.lab));
    }
    Ok(Scope::build_any(&requested, &excluded, args.lab)?)
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
    let scope = liveness_scope(&args)?;
    loop {
        let targets = liveness::targets(&store).await?;
        let report = liveness::round(&store, &targets, &config, &scope).await?;
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
            outside_scope = report.outside_scope,
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
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: LivenessArgs,
    }

    fn scope(flags: &[&str]) -> anyhow::Result<Scope> {
        let cli = Cli::try_parse_from(std::iter::once("liveness").chain(flags.iter().copied()))?;
        liveness_scope(&cli.args)
    }

    fn allowed(scope: &Scope, ip: &str) -> bool {
        scope.contains(ip.parse().unwrap())
    }

    #[test]
    fn the_lab_probes_loopback_only_and_the_field_never_special_ranges() {
        let lab = scope(&["--lab"]).unwrap();
        assert!(allowed(&lab, "127.200.0.10") && allowed(&lab, "::1"));
        assert!(!allowed(&lab, "192.0.2.1") && !allowed(&lab, "10.0.0.1") && !allowed(&lab, "8.8.8.8"));
        let field = scope(&[]).unwrap();
        assert!(!allowed(&field, "127.200.0.10") && !allowed(&field, "10.1.2.3") && !allowed(&field, "192.168.1.1"));
        assert!(!allowed(&field, "100.64.0.1") && !allowed(&field, "2001:db8::1") && !allowed(&field, "fe80::1"));
        assert!(allowed(&field, "8.8.8.8") && allowed(&field, "2606:4700::1"));
    }

    #[test]
    fn scope_and_exclusions_narrow_what_liveness_probes() {
        let dir = tempfile::tempdir().unwrap();
        let optout = dir.path().join("optout.txt");
        std::fs::write(
            &optout,
            "8.8.8.0/24 # asked
2606:4700:10::/48
",
        )
        .unwrap();
        let optout = optout.to_str().unwrap();
        let narrowed =
            scope(&["--scope", "8.8.0.0/16", "--scope", "2606:4700::/32", "--exclude-file", optout]).unwrap();
        assert!(allowed(&narrowed, "8.8.4.4") && allowed(&narrowed, "2606:4700::1"));
        assert!(!allowed(&narrowed, "8.8.8.8") && !allowed(&narrowed, "2606:4700:10::1"));
        assert!(!allowed(&narrowed, "1.1.1.1"), "outside --scope");
        let excluded = scope(&["--exclude-file", optout]).unwrap();
        assert!(!allowed(&excluded, "8.8.8.8") && allowed(&excluded, "1.1.1.1"));
        let lab = scope(&["--lab", "--scope", "127.201.0.0/24"]).unwrap();
        assert!(allowed(&lab, "127.201.0.1") && !allowed(&lab, "127.202.0.1") && !allowed(&lab, "::1"));
        let error = scope(&["--lab", "--scope", "8.8.8.0/24"]).unwrap_err();
        assert!(error.to_string().contains("loopback"), "{error}");
        assert!(scope(&["--scope", "8.8.8.1/24"]).unwrap_err().to_string().contains("did you mean"));
    }
}
