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

    /// Authorised survey for default credentials, open admin pages and exposed management ports
    #[command(after_help = SURVEY_EXAMPLES, long_about = SURVEY_ABOUT)]
    Survey(Box<SurveyArgs>),

    /// Check identification rules: run every rule's examples (shipped and --fingerprints DIR)
    #[command(after_help = FINGERPRINTS_EXAMPLES)]
    Fingerprints(FingerprintsArgs),

    /// The login dictionary: validate a revision, list the pairs in trial order
    #[command(subcommand, after_help = CREDENTIALS_EXAMPLES)]
    Credentials(CredentialsCommand),

    /// Darknet telescope: classify packets sent to unused addresses, list infected hosts (NICTER)
    #[command(after_help = TELESCOPE_EXAMPLES, long_about = TELESCOPE_ABOUT)]
    Telescope(Box<TelescopeArgs>),

    /// ISP flow analysis: collect NetFlow/IPFIX/sFlow or read flow files, find botnet C&C servers
    #[command(subcommand)]
    Flow(FlowCommand),

    /// The lab: emulated devices, a synthetic darknet and a synthetic ISP on loopback, with ground truth
    #[command(subcommand)]
    Lab(LabCommand),

    /// Run the centre: the HTTP API for sensors and ISPs, with periodic correlation
    Serve(crate::commands::center::ServeArgs),

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

macro_rules! flow_about_common {
    () => {
        "How C&C servers are found, per --window: flows are oriented (the \
subscriber end is the client: give the ISP's prefixes with --subscribers; without them the \
initiator, a seed bot or the end with the higher port is) and gathered into a graph of clients \
and servers (address, port, protocol). Graph mining scores each server by the share of its \
clients that are bots: the --seeds, plus bots inferred through servers they share with seeds. A \
learned model (logistic regression, data/flow-model.json or --model; retrain with `botscope flow \
train`) combines that score with the server's behaviour: how regularly clients come back, bytes \
and packets per flow, durations, failed connections, port, age, and how many of its clients \
return. Only servers with at least --min-seed-clients seed clients (or known C&C from the \
seeds) are scored; those scoring --min-score or more are written as `cnc` records \
(docs/formats.md). They count clients and never name one: no subscriber address leaves the \
analyser, and servers inside --subscribers or listed as bots in the seeds are never reported.

--seeds takes the telescope's output (activity records classified infected), survey findings, \
cnc records (known C&C), or plain lines: an address (a bot), `cnc ADDRESS[:PORT]`."
    };
}

#[derive(Debug, Subcommand)]
pub enum FlowCommand {
    /// Receive NetFlow v5/v9, IPFIX and sFlow on UDP and report likely C&C servers per window
    #[command(after_help = FLOW_COLLECT_EXAMPLES, long_about = FLOW_COLLECT_ABOUT)]
    Collect(FlowCollectArgs),

    /// Find likely C&C servers in flow files (Zeek conn.log, Argus, nfdump CSV, botscope JSON lines)
    #[command(after_help = FLOW_ANALYZE_EXAMPLES, long_about = FLOW_ANALYZE_ABOUT)]
    Analyze(FlowAnalyzeArgs),

    /// Retrain the C&C model from flows with known truth (the lab's, or your own labelled servers)
    #[command(after_help = FLOW_TRAIN_EXAMPLES, long_about = FLOW_TRAIN_ABOUT)]
    Train(FlowTrainArgs),

    /// Score the analyser against truth: true and false positives per server, detection delay
    #[command(after_help = FLOW_EVALUATE_EXAMPLES, long_about = FLOW_EVALUATE_ABOUT)]
    Evaluate(FlowEvaluateArgs),
}

const FLOW_COLLECT_ABOUT: &str = concat!(
    "Receive NetFlow v5/v9, IPFIX and sFlow on UDP and report likely C&C servers per window.

Any number of exporters may send to any --listen socket; the version is told from each datagram. \
Only the exporters named with --exporter (prefixes or addresses) are decoded; datagrams from any \
other source are dropped before decoding, so they cannot install templates or inject flows, and \
are counted (--stats, with the first 16 sources). Without --exporter only loopback exporters are \
accepted, and a --listen address other hosts can reach is refused: name the exporters. UDP source \
addresses can be forged, so filter them at the network's edge too.

NetFlow v9 and IPFIX templates are kept per exporter and observation domain (options templates \
give sampling rates, which are applied; variable-length and enterprise fields are skipped \
correctly). sFlow v5 flow samples are read from their sampled packet headers and scaled by the \
sampling rate. Malformed datagrams, data before its template, template changes, sequence gaps and \
records whose times or numbers do not fit (a time outside years 0000-9999, a port above 65535) \
are counted (--stats), never fatal. On Ctrl-C or SIGTERM (or after --duration) the open windows \
are closed and written, then it exits.

",
    flow_about_common!()
);

const FLOW_COLLECT_EXAMPLES: &str = "\
Examples:
  botscope flow collect --listen 0.0.0.0:2055 --listen 0.0.0.0:6343 --seeds infected.jsonl \\
      --exporter 192.0.2.0/28 --exporter 2001:db8:ff::1 \\
      --subscribers 198.51.100.0/22,2001:db8:100::/40 --sensor isp-a --out cnc.jsonl
  botscope --db botscope.db flow collect --listen 127.0.0.1:9995 --seeds seeds.txt --window 1h
  botscope flow collect --listen 127.0.0.1:9995 --seeds seeds.txt --flows decoded.jsonl --stats stats.json --duration 60";

const FLOW_ANALYZE_ABOUT: &str = concat!(
    "Find likely C&C servers in flow files.

Formats (--format auto tells them apart from the first line): Zeek conn.log as TSV with #fields \
(IoT-23's label columns are ignored) or as CSV with a header; Argus binetflow CSV (CTU-13); \
`nfdump -o csv` output (run nfdump with TZ=UTC); botscope's flow JSON lines (`flow collect \
--flows`, `lab flows --out`). Several files are read in the order given; flows should be roughly \
in time order (a window closes once flows are --grace past its end; later flows for it are \
counted as late).

",
    flow_about_common!()
);

const FLOW_ANALYZE_EXAMPLES: &str = "\
Examples:
  botscope flow analyze --input conn.log --seeds infected.txt --out cnc.jsonl
  botscope flow analyze --input capture.binetflow --format argus --seeds bots.txt --window 1d
  TZ=UTC nfdump -R /var/cache/nfdump -o csv > flows.csv && botscope flow analyze --input flows.csv --seeds telescope.jsonl \\
      --subscribers 198.51.100.0/22
  botscope lab flows --seed 3 --out isp.jsonl --truth truth.jsonl --seeds seeds.txt && \\
      botscope flow analyze --input isp.jsonl --seeds seeds.txt --subscribers 127.16.0.0/12";

const FLOW_TRAIN_ABOUT: &str = "Retrain the C&C model from flows with known truth.

Each --input is paired with the --truth at the same position (a `botscope lab flows --truth` \
file: its cnc lines are the positives while active; every other scored server is a negative) \
and with --seeds at the same position (or, without --seeds, the truth's bots with --withhold of \
them left out, as a telescope would miss some). The features of every scored server in every \
window become training rows; linfa's logistic regression (L2 penalty --alpha) fits the weights. \
Writes the model as JSON (--out; the shipped one is data/flow-model.json) and prints how it does \
on its own training rows. Judge it with `botscope flow evaluate` on other seeds.";

const FLOW_TRAIN_EXAMPLES: &str = "\
Examples:
  for s in 1 2 3; do botscope lab flows --seed $s --out isp$s.jsonl --truth truth$s.jsonl; done
  botscope flow train --input isp1.jsonl isp2.jsonl isp3.jsonl --truth truth1.jsonl truth2.jsonl truth3.jsonl \\
      --subscribers 127.16.0.0/12 --out data/flow-model.json";

const FLOW_EVALUATE_ABOUT: &str = "Score the analyser against truth.

Runs the same analysis as `flow analyze` and compares every scored server with the truth \
(`botscope lab flows --truth`): per server (address and port), a C&C counts as found when any \
window scores it at --min-score or more; false positives are non-C&C servers so scored, out of \
every non-C&C server a bot contacted, and also out of the harder set a bot contacted and that \
had at least --min-seed-clients seed clients. Detection delay: from a C&C's first use to the end \
of the first window that found it. Prints JSON.";

const FLOW_EVALUATE_EXAMPLES: &str = "\
Examples:
  botscope lab flows --seed 101 --out isp.jsonl --truth truth.jsonl --seeds seeds.txt --withhold 0.3
  botscope flow evaluate --input isp.jsonl --truth truth.jsonl --seeds seeds.txt --subscribers 127.16.0.0/12";

/// The flow files a command reads.
#[derive(Debug, Args)]
pub struct FlowFilesArgs {
    /// Flow files, read in the order given (`-` = standard input; gzipped files are recognised);
    /// for `flow train`, one per --truth
    #[arg(long, value_name = "FILE", required = true, num_args = 1..)]
    pub input: Vec<PathBuf>,

    /// File format: auto, jsonl, zeek, argus, nfdump-csv
    #[arg(long, value_name = "FORMAT", default_value = "auto")]
    pub format: String,
}

/// Settings shared by every flow analysis command.
#[derive(Debug, Args)]
pub struct FlowAnalysisArgs {
    /// The ISP's subscriber prefixes (comma-separated): their end of a flow is the client, and
    /// nothing inside them is ever reported
    #[arg(long, value_name = "CIDR,...", value_delimiter = ',')]
    pub subscribers: Vec<String>,

    /// Window length: 1m to 1d, dividing a day
    #[arg(long, value_name = "DUR", default_value = "1h")]
    pub window: String,

    /// How long after a window's end flows are still accepted for it [default: a quarter of --window]
    #[arg(long, value_name = "DUR")]
    pub grace: Option<String>,

    /// A model file instead of the shipped data/flow-model.json
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,

    /// Report servers scoring at least this (0-1)
    #[arg(long, value_name = "X", default_value_t = 0.5)]
    pub min_score: f64,

    /// Score only servers with at least this many distinct seed clients in the window
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub min_seed_clients: u64,

    /// Servers kept per window at most (memory bound; further ones are counted)
    #[arg(long, value_name = "N", default_value_t = 2_000_000)]
    pub max_servers: usize,

    /// Sensor name written into every record (normally one per ISP)
    #[arg(long, value_name = "NAME")]
    pub sensor: Option<String>,

    /// Also report servers at private (RFC 1918, fc00::/7), CGNAT, link-local and multicast
    /// addresses (normally a home's router or the ISP's own infrastructure)
    #[arg(long)]
    pub include_private: bool,
}

#[derive(Debug, Args)]
pub struct FlowCollectArgs {
    /// UDP address to receive exports on (repeat for several)
    #[arg(long, value_name = "ADDR:PORT", required = true)]
    pub listen: Vec<String>,

    /// Decode datagrams only from this exporter: a prefix or an address, IPv4 or IPv6 (repeat for
    /// several); others are dropped and counted. Default: loopback only, and a loopback --listen
    #[arg(long, value_name = "CIDR")]
    pub exporter: Vec<String>,

    /// Known-infected hosts and known C&C servers (repeat for several files)
    #[arg(long, value_name = "FILE", required = true)]
    pub seeds: Vec<PathBuf>,

    #[command(flatten)]
    pub analysis: FlowAnalysisArgs,

    /// Write C&C candidates here (`-` = standard output) [default: standard output unless --db]
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Also write every decoded flow as JSON lines (botscope's flow format)
    #[arg(long, value_name = "FILE")]
    pub flows: Option<PathBuf>,

    /// Write decoder and window counters as JSON when stopping
    #[arg(long, value_name = "FILE")]
    pub stats: Option<PathBuf>,

    /// Stop after this many seconds
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,

    /// Socket receive buffer per listener, in MiB
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub receive_buffer: usize,

    #[command(flatten)]
    pub center: crate::commands::sink::CenterArgs,
}

#[derive(Debug, Args)]
pub struct FlowAnalyzeArgs {
    #[command(flatten)]
    pub files: FlowFilesArgs,

    /// Known-infected hosts and known C&C servers (repeat for several files)
    #[arg(long, value_name = "FILE", required = true)]
    pub seeds: Vec<PathBuf>,

    #[command(flatten)]
    pub analysis: FlowAnalysisArgs,

    /// Write C&C candidates here (`-` = standard output) [default: standard output unless --db]
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    #[command(flatten)]
    pub center: crate::commands::sink::CenterArgs,
}

#[derive(Debug, Args)]
pub struct FlowTrainArgs {
    #[command(flatten)]
    pub files: FlowFilesArgs,

    /// Truth files (`botscope lab flows --truth`), one per input
    #[arg(long, value_name = "FILE", required = true, num_args = 1..)]
    pub truth: Vec<PathBuf>,

    /// Seed files, one per input [default: the truth's bots minus --withhold]
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub seeds: Vec<PathBuf>,

    /// Without --seeds: share of the truth's bots left out of the seeds
    #[arg(long, value_name = "SHARE", default_value_t = 0.3)]
    pub withhold: f64,

    #[command(flatten)]
    pub analysis: FlowAnalysisArgs,

    /// L2 penalty of the logistic regression
    #[arg(long, value_name = "X", default_value_t = 0.01)]
    pub alpha: f64,

    /// Also learn from this many single-host views per input: the flows of one seed bot alone,
    /// as in a capture of one infected device (IoT-23), where shares say nothing and behaviour
    /// must
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub single_host_views: usize,

    /// Where to write the model
    #[arg(long, value_name = "FILE", default_value = "flow-model.json")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct FlowEvaluateArgs {
    #[command(flatten)]
    pub files: FlowFilesArgs,

    /// The truth (`botscope lab flows --truth`)
    #[arg(long, value_name = "FILE")]
    pub truth: PathBuf,

    /// Known-infected hosts [default: the truth's bots minus --withhold]
    #[arg(long, value_name = "FILE")]
    pub seeds: Vec<PathBuf>,

    /// Without --seeds: share of the truth's bots left out of the seeds
    #[arg(long, value_name = "SHARE", default_value_t = 0.3)]
    pub withhold: f64,

    #[command(flatten)]
    pub analysis: FlowAnalysisArgs,
}

const TELESCOPE_ABOUT: &str = "Darknet telescope: classify packets sent to unused addresses and list \
infected hosts, research scanners and DDoS victims (NICTER).

Reads pcap (either byte order, micro- or nanosecond stamps) and pcapng (any number of \
interfaces), plain or gzip/zstd compressed, with Ethernet (VLAN tags too), Linux cooked v1/v2, \
raw IP or loopback framing, IPv4 and IPv6; or captures live from --interface through libpcap. A \
corrupt or truncated record is counted, skipped with a warning, and the rest of the file is read. \
Packets to addresses outside --darknet are counted and ignored.

Every packet is matched against signatures kept as data (data/signatures/, or --signatures DIR): \
the Mirai fingerprint (TCP sequence number = destination address), research scanners (ZMap, \
masscan), backscatter from DDoS victims (SYN-ACK, RST, ICMP errors), UDP probes; behaviours judge \
whole sources (IoT-port scanning without a fingerprint). Each source gets, per --window, one \
activity record: first/last seen, packets, bytes, distinct destinations, top ports, tags, a \
classification (infected, research_scanner, backscatter, unknown) and the evidence for it; \
the ISP when --db holds a routing table and ISP registry (botscope isp load).

--out writes the records as JSON lines; --stats writes the series the report draws (packets by \
service category, per-day Mirai-fingerprint packets and hosts overall and per ISP, DDoS victims); \
--db stores both (kinds activity and darknet_day). Formats: docs/formats.md.";

const TELESCOPE_EXAMPLES: &str = "\
Examples:
  botscope telescope --pcap darknet-2026-11-02.pcap.zst --darknet 203.0.113.0/24 \\
      --out activity.jsonl --stats stats.json
  botscope telescope --pcap a.pcapng b.pcap.gz --darknet 192.0.2.0/24,2001:db8:ffff::/48 --window 1h --out -
  botscope --db botscope.db telescope --pcap day.pcap --darknet 127.224.0.0/16 --sensor darknet-a
  botscope telescope --interface eth1 --darknet 198.51.100.0/24 --out live.jsonl   # Ctrl-C closes the window and writes it
  botscope lab darknet --out lab.pcap --truth lab-truth.jsonl && botscope telescope --pcap lab.pcap --darknet 127.224.0.0/16";

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("capture").required(true).args(["pcap", "interface"])))]
pub struct TelescopeArgs {
    /// Capture files (pcap or pcapng, plain, .gz or .zst: told apart by content); several are
    /// merged by time, as captures of one darknet from several taps
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub pcap: Vec<PathBuf>,

    /// Capture live from this interface (libpcap; needs capture rights)
    #[arg(long, value_name = "IFACE")]
    pub interface: Option<String>,

    /// The darknet: prefixes whose traffic is observed (IPv4 or IPv6, comma-separated or repeated)
    #[arg(long, value_name = "CIDR", required = true, value_delimiter = ',')]
    pub darknet: Vec<String>,

    /// Aggregation window: 1h, 1d, or any length from 1m to 1d (s/m/h/d) that divides a day;
    /// windows are aligned to UTC midnight
    #[arg(long, value_name = "DUR", default_value = "1d")]
    pub window: String,

    /// Write activity records (JSON lines) here; - is standard output [default: - unless --db is given]
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Write the darknet statistics (one JSON document) here
    #[arg(long, value_name = "FILE")]
    pub stats: Option<PathBuf>,

    /// Signature directory to use instead of the shipped data/signatures
    #[arg(long, value_name = "DIR")]
    pub signatures: Option<PathBuf>,

    /// Name of this telescope, written into every record
    #[arg(long, value_name = "NAME")]
    pub sensor: Option<String>,

    /// Most sources kept per window; beyond it, new sources count only in the statistics
    #[arg(long, value_name = "N", default_value_t = 2_000_000)]
    pub max_sources: usize,

    /// Live capture: stop after this many seconds [default: until interrupted]
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,

    #[command(flatten)]
    pub center: crate::commands::sink::CenterArgs,
}

const SURVEY_ABOUT: &str =
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

const SURVEY_EXAMPLES: &str = "\
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
    #[arg(long, value_name = "PROBES_PER_S", default_value_t = 200)]
    pub rate: u32,

    /// Conversations open at once
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub concurrency: usize,

    /// Conversations open at once with any one /24
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub per_subnet_concurrency: usize,

    /// Login attempts per host, all its services together [default: the whole dictionary on every
    /// login port surveyed, i.e. pairs x login ports; one conversation with a host at a time]
    #[arg(long, value_name = "K")]
    pub max_attempts_per_host: Option<u32>,

    /// This worker's share of the run: I/N (1-based), same --seed on every worker
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,

    /// Seed of the probe order (every shard of a run must share it)
    #[arg(long, value_name = "S", default_value_t = 2019)]
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

const FINGERPRINTS_EXAMPLES: &str = "\
Examples:
  botscope fingerprints
  botscope fingerprints --fingerprints ~/recog/xml";

#[derive(Debug, Args)]
pub struct FingerprintsArgs {
    /// Also load this directory (*.toml botscope rules, *.xml Recog files)
    #[arg(long, value_name = "DIR")]
    pub fingerprints: Option<PathBuf>,
}

const CREDENTIALS_CHECK_ABOUT: &str = "\
Validate a login dictionary (default: the shipped data/credentials.toml) as a reviewed data set:
ids and pairs unique, every pair names at least one source that the file describes in a
[source.NAME] table, weights 1-100, a `version = N`, and a change log ([[change]], oldest first)
whose entries each say what changed, why, when, who proposed it and who approved it (someone
else), the last one making version N. Every problem is printed as FILE:LINE: what is wrong, and
the exit status is 1; a valid file prints a summary (pairs, per source, per weight, the latest
change). The format is in docs/formats.md; the review rule in docs/scanning-policy.md.";

const CREDENTIALS_EXAMPLES: &str = "\
Examples:
  botscope credentials check
  botscope credentials check my-credentials.toml
  botscope credentials list --limit 20";

#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Validate a dictionary file and summarise it
    #[command(long_about = CREDENTIALS_CHECK_ABOUT, after_help = CREDENTIALS_EXAMPLES)]
    Check(CredentialsCheckArgs),

    /// List the pairs in the order the survey tries them: rank, id, weight, username, sources
    /// (never the password)
    #[command(after_help = CREDENTIALS_EXAMPLES)]
    List(CredentialsListArgs),
}

#[derive(Debug, Args)]
pub struct CredentialsCheckArgs {
    /// Dictionary file [default: the shipped data/credentials.toml]
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CredentialsListArgs {
    /// Dictionary file [default: the shipped data/credentials.toml]
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Show only the first N pairs of the trial order
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Run emulated IoT devices on loopback until stopped (or for --duration)
    #[command(after_help = LAB_DEVICES_EXAMPLES, long_about = LAB_DEVICES_ABOUT)]
    Devices(LabDevicesArgs),

    /// Write a synthetic darknet capture (pcap) with the truth about every source
    #[command(after_help = LAB_DARKNET_EXAMPLES, long_about = LAB_DARKNET_ABOUT)]
    Darknet(LabDarknetArgs),

    /// Generate a synthetic ISP's flows (to a file or exported over UDP) with the truth about its botnets
    #[command(after_help = LAB_FLOWS_EXAMPLES, long_about = LAB_FLOWS_ABOUT)]
    Flows(LabFlowsArgs),
}

const LAB_FLOWS_ABOUT: &str = "Generate a synthetic ISP's flows with the truth about its botnets.

Subscribers (127.16.0.0/12) behave like households: DNS to the ISP's resolvers, NTP at fixed \
intervals, web sites by popularity, CDNs, video, games, P2P, IoT devices heartbeating to their \
vendor's cloud. Some IoT subscribers are bots (the lab fleet's vulnerable devices first, as in \
`lab darknet`), one in ten in two botnets. Bots keep in touch with their C&C server (a \
persistent connection exported once per active timeout, or short polls), retry while it is down, \
fetch the bot from a download server when infected, scan, and flood DDoS victims on command \
(some victims are popular web sites). C&C servers move every 36-96 hours (the first botnet's \
exactly halfway) and, with three or more botnets, the last appears a quarter of the way in. \
Flows come in both directions, as an exporter reports them.

--out writes botscope's flow JSON lines; --export sends them over UDP in --format to a collector \
on loopback (only loopback is accepted), paced at --rate records per second. --truth writes the \
C&C servers (address, port, active period, down periods, botnet), bots, victims and download \
servers; --seeds writes the bots as a seed list with --withhold of them left out. Prints a JSON \
summary.";

const LAB_FLOWS_EXAMPLES: &str = "\
Examples:
  botscope lab flows --seed 3 --out isp.jsonl --truth truth.jsonl --seeds seeds.txt --withhold 0.3
  botscope lab flows --seed 3 --subscribers 2000 --days 3 --botnets 5 --export udp://127.0.0.1:9995 --format ipfix";

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("sink").required(true).args(["out", "export"])))]
pub struct LabFlowsArgs {
    /// Seed: the same seed gives the same ISP
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,

    /// Subscriber lines
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub subscribers: usize,

    /// Days of traffic
    #[arg(long, value_name = "D", default_value_t = 2)]
    pub days: u32,

    /// Botnets
    #[arg(long, value_name = "B", default_value_t = 3)]
    pub botnets: usize,

    /// Share of subscribers that are bots
    #[arg(long, value_name = "SHARE", default_value_t = 0.08)]
    pub infected: f64,

    /// Start (RFC 3339)
    #[arg(long, value_name = "TIME", default_value = "2026-11-02T00:00:00Z")]
    pub start: String,

    /// Write the flows as JSON lines here
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Send the flows to a collector: udp://127.0.0.1:PORT (loopback only)
    #[arg(long, value_name = "URL")]
    pub export: Option<String>,

    /// Export format: v5, v9, ipfix, sflow
    #[arg(long, value_name = "FORMAT", default_value = "ipfix")]
    pub format: String,

    /// Export pace in flow records per second (0 = as fast as possible)
    #[arg(long, value_name = "N", default_value_t = 200_000)]
    pub rate: u64,

    /// Write the truth here (JSON lines)
    #[arg(long, value_name = "FILE")]
    pub truth: Option<PathBuf>,

    /// Write the bots as a seed list here (one address per line)
    #[arg(long, value_name = "FILE")]
    pub seeds: Option<PathBuf>,

    /// Share of bots left out of --seeds
    #[arg(long, value_name = "SHARE", default_value_t = 0.0)]
    pub withhold: f64,

    /// Size of the lab fleet whose vulnerable devices become the bots
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub fleet_count: usize,
}

const LAB_DARKNET_ABOUT: &str = "Write a synthetic darknet capture (pcap) with the truth about every source.

The same seed gives the same file. Sources: Mirai-family bots (SYN whose sequence number is the \
destination address; ports 23 and 2323 about 9:1, or a variant's port such as 37215, 52869, 5555, \
7547, 8080), other IoT scanners without the fingerprint, scanners of non-IoT ports, research \
scanners (ZMap's IP id 54321, masscan's id = destination ^ port ^ sequence), DDoS victims \
answering spoofed traffic (SYN-ACK, RST, ICMP port unreachable), UDP probes (SSDP, DNS, NTP, \
SNMP) and stray noise, plus a few ARP frames and packets to just outside the darknet. Bots are the \
lab fleet's vulnerable devices first (same --seed and --fleet-count as `botscope lab devices`), so \
the survey and the telescope see one world. --truth writes one JSON line per source: address, \
kind, the class and tags a correct telescope gives, packets and ports. Prints a JSON summary. \
Every address is inside 127.0.0.0/8.";

const LAB_DARKNET_EXAMPLES: &str = "\
Examples:
  botscope lab darknet --out darknet.pcap --seed 7 --truth darknet-truth.jsonl
  botscope lab darknet --out big.pcap --seed 1 --hours 24 --sources 5000 --intensity 20   # benchmark input";

#[derive(Debug, Args)]
pub struct LabDarknetArgs {
    /// The pcap to write
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,

    /// Seed: the same seed gives the same capture
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,

    /// The darknet prefix (inside 127.0.0.0/8, at least a /24)
    #[arg(long, value_name = "CIDR", default_value = "127.224.0.0/16")]
    pub darknet: String,

    /// Hours of traffic, starting at --start
    #[arg(long, value_name = "H", default_value_t = 24)]
    pub hours: u32,

    /// Number of sources
    #[arg(long, value_name = "N", default_value_t = 400)]
    pub sources: usize,

    /// Start of the capture (RFC 3339) [default: 2026-11-02T00:00:00Z]
    #[arg(long, value_name = "TIME", default_value = "2026-11-02T00:00:00Z")]
    pub start: String,

    /// Multiplies every scanner's packet rate (benchmarks use large values)
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    pub intensity: f64,

    /// Size of the lab fleet whose vulnerable devices become the bots
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub fleet_count: usize,

    /// Write the truth here (one JSON line per source)
    #[arg(long, value_name = "FILE")]
    pub truth: Option<PathBuf>,
}

const LAB_DEVICES_ABOUT: &str = "Run emulated IoT devices on loopback until stopped (or for --duration).

A seeded mix of the models in data/devices.toml (routers, cameras, DVRs, NAS, ...) with their \
banners and login dialogues: telnet, ssh (real SSH), http and https (Basic, Digest, login forms, \
open admin pages), TR-069 and ADB ports. Some devices use a dictionary pair, most a strong random \
password, some none at all; --misbehaving of them are slow, lock out after a few failures, \
tarpit, reset, send garbage or negotiate telnet options forever. --truth writes one JSON line per \
device: address, ports, model, firmware, credential kind and dictionary id, and the findings a \
correct survey reports. Addresses are inside --subnet (loopback only); one listener per service \
port on the loopback device serves every device, so 20,000 devices fit in one process. \
Prints `ready` on standard output once listening.";

const LAB_DEVICES_EXAMPLES: &str = "\
Examples:
  botscope lab devices --count 1000 --seed 7 --truth truth.jsonl
  botscope lab devices --count 200 --seed 1 --subnet 127.20.0.0/16 \\
      --ports telnet=10023,ssh=10022,http=10080,https=10443,cwmp=17547,adb=15555 --duration 300";

#[derive(Debug, Args)]
pub struct LabDevicesArgs {
    /// Number of devices
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub count: usize,

    /// Seed: the same seed gives the same fleet
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,

    /// Where the devices live; must be inside 127.0.0.0/8
    #[arg(long, value_name = "CIDR", default_value = "127.16.0.0/12")]
    pub subnet: String,

    /// Service ports: SERVICE=PORT,... (telnet, ssh, http, https, cwmp, adb) [default: 23, 22, 80, 443, 7547, 5555]
    #[arg(long, value_name = "LIST")]
    pub ports: Option<String>,

    /// Write the truth here (one JSON line per device)
    #[arg(long, value_name = "FILE")]
    pub truth: Option<PathBuf>,

    /// Stop after this many seconds [default: run until interrupted]
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,

    /// Share of devices that misbehave (slow, lockout, tarpit, reset, garbage, endless negotiation)
    #[arg(long, value_name = "FRACTION", default_value_t = 0.15)]
    pub misbehaving: f64,

    /// Most conversations open at once (beyond it new connections are dropped)
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_open: usize,

    /// Devices whose owners fixed them: their passwords are strong now (comma-separated addresses);
    /// the truth file says so
    #[arg(long, value_name = "ADDRESSES", value_delimiter = ',')]
    pub fixed: Vec<std::net::Ipv4Addr>,

    /// Serve only this partition of the fleet (used by the lab itself for large fleets)
    #[arg(long, value_name = "I/K", hide = true)]
    pub partition: Option<String>,
}

const INGEST_ABOUT: &str = "Load record files (JSON Lines) into the store.

Each line is one record (finding, activity, cnc, botnet, botnet_window, notification, outcome, isp, service, darknet_day, feed_entry or liveness; see docs/formats.md). \
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
