//! The command line. Every flag says what it does; every command ends its help with examples.

use std::path::PathBuf;

use botscope_model::Kind;
use clap::{Args, Parser, Subcommand};

use crate::config::{LogFormat, LogLevel};

const ABOUT: &str = "botscope shrinks IoT botnets: it finds devices with default passwords, spots infected \
hosts in darknet traffic, finds C&C servers in ISP flows, ties them into botnets and tells each ISP what to fix.";

const EXAMPLES: &str = "\
Examples:
  botscope isp load --pfx2as data/examples/pfx2as.txt --registry data/examples/isps.toml
  botscope isp lookup 127.16.4.21 2001:db8:10::5
  botscope ingest data/examples/records.jsonl
  botscope --db postgres://botscope@127.0.0.1/botscope ingest findings.jsonl
  botscope config check

Documentation: docs/formats.md (record formats), docs/configuration.md (botscope.toml).";

#[derive(Debug, Parser)]
#[command(name = "botscope", version, about = ABOUT, after_help = EXAMPLES, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file [default: ./botscope.toml if it exists]
    #[arg(long, global = true, env = "BOTSCOPE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Store: a SQLite file (created if missing) or postgres://USER[:PASS]@HOST[:PORT]/DB
    /// [default: store.url from the configuration, else botscope.db]
    #[arg(long, global = true, env = "BOTSCOPE_DB", value_name = "URL")]
    pub db: Option<String>,

    /// More log output (-v debug, -vv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Less log output (-q warnings and errors only, -qq errors only); also hides progress bars
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub quiet: u8,

    /// Log format: text for people, json for log collectors [default: log.format, else text]
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Least severe level logged, before -v/-q [default: log.level, else info]
    #[arg(long, global = true, value_name = "LEVEL", hide = true)]
    pub log_level: Option<LogLevel>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load record files (JSON Lines) into the store
    #[command(after_help = INGEST_EXAMPLES, long_about = INGEST_ABOUT)]
    Ingest(IngestArgs),

    /// ISP attribution: load routing tables and the ISP registry, look addresses up
    #[command(subcommand)]
    Isp(IspCommand),

    /// Inspect the configuration
    #[command(subcommand)]
    Config(ConfigCommand),
}

const INGEST_ABOUT: &str = "Load record files (JSON Lines) into the store.

Each line is one record (finding, activity, cnc, botnet, notification or isp; see docs/formats.md). \
The kind comes from the record's \"kind\" field, or from --kind for files without one. Records are \
committed in batches, one transaction each; a batch reported as committed survives a crash. Records \
have stable ids, so loading the same file twice stores each record once.

A malformed line is reported with its file and line number, skipped and counted; with --strict \
the first pass checks every line and nothing is written if any is malformed.";

const INGEST_EXAMPLES: &str = "\
Examples:
  botscope ingest findings-2026-11.jsonl activity-*.jsonl
  zcat survey.jsonl.gz | botscope ingest -            # gzip is also read directly
  botscope ingest --kind cnc --strict cnc.jsonl       # lines without \"kind\"; all or nothing
  botscope ingest --json day.jsonl | jq .totals";

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Files to load (JSON Lines, plain or gzip); - reads standard input
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Kind of every record: lines without a "kind" field are read as this, lines naming another
    /// kind are rejected
    #[arg(long, value_name = "KIND", value_parser = parse_kind)]
    pub kind: Option<Kind>,

    /// Treat any malformed line as fatal: check every file first and write nothing if one fails
    #[arg(long)]
    pub strict: bool,

    /// Records per transaction [default: ingest.batch_size, else 1000]
    #[arg(long, value_name = "N")]
    pub batch_size: Option<u64>,

    /// Print the summary as one JSON object instead of text
    #[arg(long)]
    pub json: bool,
}

fn parse_kind(text: &str) -> Result<Kind, String> {
    text.parse()
}

#[derive(Debug, Subcommand)]
pub enum IspCommand {
    /// Load a routing table (CAIDA prefix2as) and/or the ISP registry into the store
    #[command(after_help = ISP_LOAD_EXAMPLES, long_about = ISP_LOAD_ABOUT)]
    Load(IspLoadArgs),

    /// Attribute addresses: print ip, prefix, asn and isp for each
    #[command(after_help = ISP_LOOKUP_EXAMPLES, long_about = ISP_LOOKUP_ABOUT)]
    Lookup(IspLookupArgs),
}

const ISP_LOAD_ABOUT: &str = "Load a routing table (CAIDA prefix2as) and/or the ISP registry into the store.

--pfx2as reads CAIDA RouteViews prefix2as data: \"prefix<TAB>length<TAB>origin\" per line, where \
the origin is an ASN, several ASNs joined by '_' (multi-origin) or an AS set joined by ','. Gzip \
is detected by content. The file replaces the stored table as a whole; malformed lines are \
reported and skipped. A file with no usable line leaves the stored table untouched.

--registry reads isps.toml (see docs/configuration.md#isp-registry) and replaces the stored registry.";

const ISP_LOAD_EXAMPLES: &str = "\
Examples:
  botscope isp load --pfx2as routeviews-rv2-20261120-1200.pfx2as.gz
  botscope isp load --registry isps.toml
  botscope isp load --pfx2as data/examples/pfx2as.txt --registry data/examples/isps.toml";

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).multiple(true).args(["pfx2as", "registry"])))]
pub struct IspLoadArgs {
    /// CAIDA prefix2as file (plain or gzip); - reads standard input
    #[arg(long, value_name = "FILE")]
    pub pfx2as: Option<PathBuf>,

    /// ISP registry (TOML)
    #[arg(long, value_name = "FILE")]
    pub registry: Option<PathBuf>,
}

const ISP_LOOKUP_ABOUT: &str = "Attribute addresses: print ip, prefix, asn and isp for each.

One line per address, tab-separated: the address, the most specific routed prefix holding it, \
the origin AS(es) as in prefix2as (64500_64501 multi-origin, 64500,64501 an AS set), and the \
handles of the registry ISPs owning those ASes (comma-separated). An address no prefix holds \
prints \"-\" for prefix and asn and \"unattributed\" for isp; a routed address whose AS is in no \
registry ISP prints \"-\" for isp. IPv4 and IPv6 alike. Exit status 0 unless an argument is not an \
IP address (1).";

const ISP_LOOKUP_EXAMPLES: &str = "\
Examples:
  botscope isp lookup 127.16.4.21 2001:db8:10::5
  botscope isp lookup --json 127.16.4.21
  cut -f1 hosts.tsv | botscope isp lookup - > attributed.tsv";

#[derive(Debug, Args)]
pub struct IspLookupArgs {
    /// Addresses to attribute; - reads them from standard input, one per line
    #[arg(required = true, value_name = "IP")]
    pub addresses: Vec<String>,

    /// Print one JSON object per address instead of tab-separated columns
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print the effective values (file, environment and flags
    /// applied)
    #[command(
        after_help = "Examples:\n  botscope config check\n  botscope --config /etc/botscope.toml config check\n  BOTSCOPE_DB=postgres://botscope@127.0.0.1/botscope botscope config check"
    )]
    Check,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_and_flag_is_documented_with_examples() {
        fn walk(command: &clap::Command, path: String) {
            let path = format!("{path} {}", command.get_name());
            if command.get_subcommands().next().is_none() {
                let help = command.get_after_help().map(|h| h.to_string()).unwrap_or_default();
                assert!(help.contains("Examples:"), "`{path}` has no examples");
            }
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" {
                    assert!(arg.get_help().is_some(), "`{path}` flag {id} is undocumented");
                }
            }
            for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
                walk(sub, path.clone());
            }
        }
        walk(&Cli::command(), String::new());
    }
}
