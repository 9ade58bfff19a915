//! The `botscope survey` command line: every flag it takes, with its help and examples.

use clap::Args;
use std::path::PathBuf;

pub const SURVEY_ABOUT: &str =
    "Authorised survey for default credentials, open admin pages and exposed management ports (NOTICE).

Only the ranges you are authorised to survey: --scope or --scope-file is required. A built-in \
blocklist of special-purpose ranges (private, loopback, multicast, documentation, ...) and every \
--exclude-file (operator exclusions, opt-outs) are always subtracted; --dry-run shows what is left \
and sends nothing. --lab allows loopback targets only (for the lab fleet). Every connection goes \
through one scope-checked connect, which refuses anything outside before a packet is sent; a \
--recheck is intersected with the scope, and a --checkpoint's entries are checked against it again \
on resume.

Stage 1 connect-probes every address x port in a seeded pseudo-random order (no network sees a \
burst; --shard I/N splits the same order between workers). Stage 2 visits each host with an open \
port: reads banners, identifies the model, and tries the credential dictionary (highest weight \
first) on telnet, ssh, http and https, stopping at the first pair that works. Telnet success is \
confirmed with a harmless `echo`; nothing on a device is ever changed, downloaded or run. By default \
a device that allows it is tried with the whole dictionary on each login port (--max-attempts-per-host \
caps this), paced per host: one conversation with a host at a time, at most \
--per-subnet-concurrency with its /24, within the global --rate. `botscope credentials check` \
validates a dictionary given with --credentials.

--out writes one JSON line per responsive service (kind \"service\") and per finding (kind \
\"finding\": default_credential, no_authentication, exposed_management, outdated_firmware, \
eol_device); see docs/formats.md. --audit records every login attempt with its dictionary id, \
never a password. --db (or BOTSCOPE_DB) also stores the findings, each naming the ISP its address \
belongs to when a routing table and ISP registry are loaded (botscope isp load). Policy: \
docs/scanning-policy.md.";

pub const SURVEY_EXAMPLES: &str = "\
Examples:
  botscope survey --scope-file authorised.txt --exclude-file optout.txt --dry-run
  botscope survey --scope-file authorised.txt --exclude-file optout.txt --round 2026-11 \\
      --out findings.jsonl --audit audit.jsonl --summary run.json
  botscope survey --scope 198.51.100.0/24 --port-set quick --shard 1/4 --out shard1.jsonl
  botscope survey --scope-file authorised.txt --checkpoint round.ckpt --out round.jsonl   # Ctrl-C, then the same again resumes
  botscope survey --lab --scope 127.16.0.0/16 --ports 10023/telnet,10080/http --out lab.jsonl
  botscope survey --recheck --scope-file authorised.txt --sensor recheck-1 --center \"$CENTRE\" --token \"$SURVEYOR_TOKEN\"";

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("scope_source").required(true).multiple(true).args(["scope", "scope_file"])))]
#[command(group(clap::ArgGroup::new("port_source").args(["ports", "port_set"])))]
pub struct SurveyArgs {
    /// An authorised range (IPv4 CIDR or address); repeat for more
    #[arg(long, value_name = "CIDR")]
    pub scope: Vec<String>,

    /// File of authorised ranges, one CIDR per line, # comments
    #[arg(long, value_name = "FILE")]
    pub scope_file: Vec<PathBuf>,

    /// File of ranges never to touch (exclusions, opt-outs), one CIDR per line; the comment after
    /// # is kept as the reason; repeatable
    #[arg(long, value_name = "FILE")]
    pub exclude_file: Vec<PathBuf>,

    /// Ports to probe: 23,2323,80 (protocols from data/ports.toml) or PORT/PROTOCOL (10023/telnet)
    #[arg(long, value_name = "LIST")]
    pub ports: Option<String>,

    /// Named port set from data/ports.toml: notice (39 IoT ports), quick, telnet, web
    #[arg(long, value_name = "NAME", default_value = "notice")]
    pub port_set: String,

    /// Credential dictionary (TOML, format of data/credentials.toml) [default: the shipped one]
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,

    /// Extra identification rules: *.toml in botscope's format, *.xml in Rapid7 Recog's
    #[arg(long, value_name = "DIR")]
    pub fingerprints: Option<PathBuf>,

    /// New connections per second, all stages together
    #[arg(long, value_name = "PROBES_PER_S", default_value_t = botscope_survey::engine::DEFAULT_RATE)]
    pub rate: u32,

    /// Conversations open at once
    #[arg(long, value_name = "N", default_value_t = botscope_survey::engine::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,

    /// Conversations open at once with any one /24
    #[arg(long, value_name = "N", default_value_t = botscope_survey::engine::DEFAULT_PER_SUBNET_CONCURRENCY)]
    pub per_subnet_concurrency: usize,

    /// Login attempts per host, all its services together [default: the whole dictionary on every
    /// login port surveyed, i.e. pairs x login ports; one conversation with a host at a time]
    #[arg(long, value_name = "K")]
    pub max_attempts_per_host: Option<u32>,

    /// This worker's share of the run: I/N (1-based), same --seed on every worker
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,

    /// Seed of the probe order (every shard of a run must share it)
    #[arg(long, value_name = "S", default_value_t = botscope_survey::engine::DEFAULT_SEED)]
    pub seed: u64,

    /// Write service and finding records here (JSON Lines); - for standard output
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Write every login attempt here (JSON Lines: time, target, port, protocol, credential id,
    /// outcome; never a password)
    #[arg(long, value_name = "FILE")]
    pub audit: Option<PathBuf>,

    /// Write the run summary (JSON) here
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,

    /// Keep progress here so an interrupted run can be resumed: run the same command again and it
    /// skips the finished port stage and every finished host, appending to --out and --audit
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,

    /// Show targets, exclusions and the plan; send nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Lab mode: loopback (127.0.0.0/8) targets only, nothing else is accepted
    #[arg(long)]
    pub lab: bool,

    /// Survey round written into records, e.g. 2026-11
    #[arg(long, value_name = "ROUND")]
    pub round: Option<String>,

    /// Worker name written into records
    #[arg(long, value_name = "NAME")]
    pub sensor: Option<String>,

    /// Seconds to wait for a connection
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub connect_timeout: f64,

    /// Seconds to wait for a device's next bytes
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub read_timeout: f64,

    /// Seconds one conversation (connection) may last at most
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub conversation_timeout: f64,

    /// Re-survey notified devices: exactly the address and port of each vulnerable case, read from
    /// FILE (notification records as JSON lines), else the store (--db), else the centre (--center
    /// and --token: GET /api/v1/recheck; at most 64 MiB within 120 s). Writes one outcome record
    /// per case: fixed (the service answered and the problem is gone) or not_fixed. --scope or
    /// --scope-file is required: only cases inside it (minus the blocklist and --exclude-file) are
    /// re-surveyed; the others are skipped and counted (cases_outside_scope in --summary)
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    pub recheck: Option<Option<PathBuf>>,

    /// With --recheck: only cases last notified at least this long ago (time for the ISP to act)
    #[arg(long, value_name = "DURATION", default_value = "0s", requires = "recheck", value_parser = crate::commands::duration_arg)]
    pub recheck_min_age: u64,

    #[command(flatten)]
    pub center: crate::commands::sink::CenterArgs,
}

pub const FINGERPRINTS_EXAMPLES: &str = "\
Examples:
  botscope fingerprints
  botscope fingerprints --fingerprints ~/recog/xml";

#[derive(Debug, Args)]
pub struct FingerprintsArgs {
    /// Also load this directory (*.toml botscope rules, *.xml Recog files)
    #[arg(long, value_name = "DIR")]
    pub fingerprints: Option<PathBuf>,
}
