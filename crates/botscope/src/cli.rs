//! The command line. Every flag says what it does; every command ends its help with examples.

use std::path::PathBuf;

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
#[allow(clippy::large_enum_variant, reason = "one command line is parsed per process; boxing buys nothing")]
pub enum Command {
    /// Load record files (JSON Lines) into the store
    #[command(after_help = crate::commands::ingest::INGEST_EXAMPLES, long_about = crate::commands::ingest::INGEST_ABOUT)]
    Ingest(crate::commands::ingest::IngestArgs),

    /// ISP attribution: load routing tables and the ISP registry, look addresses up
    #[command(subcommand)]
    Isp(crate::commands::isp::IspCommand),

    /// Inspect the configuration
    #[command(subcommand)]
    Config(crate::commands::config::ConfigCommand),

    /// Authorised survey for default credentials, open admin pages and exposed management ports
    #[command(after_help = crate::commands::survey::SURVEY_EXAMPLES, long_about = crate::commands::survey::SURVEY_ABOUT)]
    Survey(Box<crate::commands::survey::SurveyArgs>),

    /// Check identification rules: run every rule's examples (shipped and --fingerprints DIR)
    #[command(after_help = crate::commands::survey::FINGERPRINTS_EXAMPLES)]
    Fingerprints(crate::commands::survey::FingerprintsArgs),

    /// The login dictionary: validate a revision, list the pairs in trial order
    #[command(subcommand, after_help = crate::commands::credentials::CREDENTIALS_EXAMPLES)]
    Credentials(crate::commands::credentials::CredentialsCommand),

    /// Darknet telescope: classify packets sent to unused addresses, list infected hosts (NICTER)
    #[command(after_help = crate::commands::telescope::TELESCOPE_EXAMPLES, long_about = crate::commands::telescope::TELESCOPE_ABOUT)]
    Telescope(Box<crate::commands::telescope::TelescopeArgs>),

    /// ISP flow analysis: collect NetFlow/IPFIX/sFlow or read flow files, find botnet C&C servers
    #[command(subcommand)]
    Flow(crate::commands::flow::FlowCommand),

    /// The lab: emulated devices, a synthetic darknet and a synthetic ISP on loopback, with ground truth
    #[command(subcommand)]
    Lab(crate::commands::lab::LabCommand),

    /// Run the centre: the HTTP API for sensors and ISPs, with periodic correlation
    Serve(crate::commands::center::ServeArgs),

    /// The store's schema: migrations applied and pending, and the upgrade (with a dry run)
    #[command(subcommand)]
    Db(crate::commands::db::DbCommand),

    /// API tokens for sensors, ISPs and analysts
    #[command(subcommand)]
    Token(crate::commands::center::TokenCommand),

    /// Tie bots and C&C servers into botnets with serial numbers (also run periodically by serve)
    Correlate(crate::commands::center::CorrelateArgs),

    /// The botnets correlation found
    #[command(subcommand)]
    Botnets(crate::commands::center::BotnetsCommand),

    /// Outside C&C and bot lists (ThreatFox, Feodo Tracker, STIX, plain)
    #[command(subcommand)]
    Feeds(crate::commands::feeds::FeedsCommand),

    /// Probe reported C&C servers and record when they come and go
    Liveness(crate::commands::feeds::LivenessArgs),

    /// Per-ISP notifications: reports, e-mail, outcomes
    #[command(subcommand)]
    Notify(crate::commands::notify::NotifyCommand),

    /// Reports over the centre's data (remediation)
    #[command(subcommand)]
    Report(crate::commands::notify::ReportCommand),

    /// Share indicators with other centres: STIX 2.1 bundles
    #[command(subcommand)]
    Share(crate::commands::share::ShareCommand),

    /// Run everything on the lab in one process and serve the dashboard (start here)
    Demo(crate::commands::demo::DemoArgs),
}

/// Runs one command. `db_given` says whether `--db` was on the command line (some commands then
/// write only to the store).
pub async fn dispatch(
    command: Command,
    settings: &crate::settings::Settings,
    db_given: bool,
) -> anyhow::Result<std::process::ExitCode> {
    use crate::commands::{
        center, config, credentials, db, demo, feeds, flow, ingest, isp, lab, notify, share, survey, telescope,
    };
    match command {
        Command::Ingest(args) => ingest::run(args, settings).await,
        Command::Isp(command) => isp::run(command, settings).await,
        Command::Config(command) => config::run(command, settings),
        Command::Survey(args) => survey::run(*args, settings, db_given).await,
        Command::Fingerprints(args) => survey::fingerprints(args),
        Command::Credentials(command) => credentials::run(command),
        Command::Telescope(args) => telescope::run(*args, settings, db_given).await,
        Command::Flow(command) => flow::run(command, settings, db_given).await,
        Command::Lab(command) => lab::run(command).await,
        Command::Serve(args) => center::serve(args, settings).await,
        Command::Db(command) => db::run(command, settings).await,
        Command::Token(command) => center::token(command, settings).await,
        Command::Correlate(args) => center::correlate(args, settings).await,
        Command::Botnets(command) => center::botnets(command, settings).await,
        Command::Feeds(command) => feeds::run(command, settings).await,
        Command::Liveness(args) => feeds::liveness(args, settings).await,
        Command::Notify(command) => notify::run(command, settings).await,
        Command::Report(command) => notify::report(command, settings).await,
        Command::Share(command) => share::run(command, settings).await,
        Command::Demo(args) => demo::run(args, settings).await,
    }
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
