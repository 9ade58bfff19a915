//! The `botscope flow` command line: every flag it takes, with its help and examples.

use clap::{Args, Subcommand};
use std::path::PathBuf;

macro_rules! flow_about_common {
    () => {
        "How C&C servers are found, per --window: flows are oriented (the \
subscriber end is the client: give the ISP's prefixes with --subscribers; without them the \
initiator, a seed bot or the end with the higher port is) and gathered into a graph of clients \
and servers (address, port, protocol). Graph mining scores each server by the share of its \
clients that are bots: the --seeds, plus bots inferred through servers they share with seeds. A \
learned model (logistic regression, data/flow-model.json or --model; retrain with `botscope flow \
train`) combines that score with the server's behaviour: how regularly clients come back, packet \
sizes and rates, durations, failed connections, what kind of service its port is (DNS/NTP, web, \
IoT cloud, P2P), how many households reach it, and how many of its clients return; the score is \
calibrated (a probability, never 1.0; docs/flow.md says what it means and its limits). Only \
servers with at least --min-seed-clients seed clients over the window and --seed-memory before \
it (or known C&C from the seeds) are scored; those scoring --min-score or more are written as `cnc` records \
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

pub const FLOW_COLLECT_ABOUT: &str = concat!(
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

pub const FLOW_COLLECT_EXAMPLES: &str = "\
Examples:
  botscope flow collect --listen 0.0.0.0:2055 --listen 0.0.0.0:6343 --seeds infected.jsonl \\
      --exporter 192.0.2.0/28 --exporter 2001:db8:ff::1 \\
      --subscribers 198.51.100.0/22,2001:db8:100::/40 --sensor isp-a --out cnc.jsonl
  botscope --db botscope.db flow collect --listen 127.0.0.1:9995 --seeds seeds.txt --window 1h
  botscope flow collect --listen 127.0.0.1:9995 --seeds seeds.txt --flows decoded.jsonl --stats stats.json --duration 60";

pub const FLOW_ANALYZE_ABOUT: &str = concat!(
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

pub const FLOW_ANALYZE_EXAMPLES: &str = "\
Examples:
  botscope flow analyze --input conn.log --seeds infected.txt --out cnc.jsonl
  botscope flow analyze --input capture.binetflow --format argus --seeds bots.txt --window 1d
  TZ=UTC nfdump -R /var/cache/nfdump -o csv > flows.csv && botscope flow analyze --input flows.csv --seeds telescope.jsonl \\
      --subscribers 198.51.100.0/22
  botscope lab flows --seed 3 --out isp.jsonl --truth truth.jsonl --seeds seeds.txt && \\
      botscope flow analyze --input isp.jsonl --seeds seeds.txt --subscribers 127.16.0.0/12";

pub const FLOW_TRAIN_ABOUT: &str = "Retrain the C&C model from flows with known truth.

Each --input is paired with the --truth at the same position (a `botscope lab flows --truth` \
file: its cnc lines are the positives while active; every other scored server is a negative) \
and with --seeds at the same position (or, without --seeds, the truth's bots with --withhold of \
them left out, as a telescope would miss some). The features of every scored server in every \
window become training rows; linfa's logistic regression (L2 penalty --alpha) fits the weights, \
and Platt scaling, fitted on each input's rows scored by a model trained without it, calibrates \
the score (needs two or more inputs with C&C rows). The shipped model: six lab ISPs, --withhold \
0.4 --alpha 10 --min-seed-clients 2 (bench/detection/run repeats it; with 1, the rows are mostly \
scan targets a single bot reached, and the model ranks web sites above rare pollers). Writes the model as JSON (--out; the shipped one is data/flow-model.json) and prints how it does \
on its own training rows. Judge it with `botscope flow evaluate` on other seeds.";

pub const FLOW_TRAIN_EXAMPLES: &str = "\
Examples:
  for s in 1 2 3; do botscope lab flows --seed $s --out isp$s.jsonl --truth truth$s.jsonl; done
  botscope flow train --input isp1.jsonl isp2.jsonl isp3.jsonl --truth truth1.jsonl truth2.jsonl truth3.jsonl \\
      --subscribers 127.16.0.0/12 --out data/flow-model.json";

pub const FLOW_EVALUATE_ABOUT: &str = "Score the analyser against truth.

Runs the same analysis as `flow analyze` and compares every scored server with the truth \
(`botscope lab flows --truth`): per server (address and port), a C&C counts as found when any \
window scores it at --min-score or more; false positives are non-C&C servers so scored, out of \
every non-C&C server a bot contacted, and also out of the harder set a bot contacted and that \
had at least --min-seed-clients seed clients. Detection delay: from a C&C's first use to the end \
of the first window that found it. Prints JSON.";

pub const FLOW_EVALUATE_EXAMPLES: &str = "\
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

    /// How long a closed window is kept: flows that arrive late for it (exporters send long
    /// sessions when their timeouts expire) are added, and bots that come back in the windows
    /// after it count as returning there; it is then scored again and its records are sent again
    /// under the same ids, and the store keeps the latest revision. 0s turns both off
    #[arg(long, value_name = "DUR", default_value = "3h")]
    pub late: String,

    /// A model file instead of the shipped data/flow-model.json
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,

    /// Report servers scoring at least this (0-1)
    #[arg(long, value_name = "X", default_value_t = 0.5)]
    pub min_score: f64,

    /// Score only servers with at least this many distinct seed clients in the window, counting
    /// those seen in the --seed-memory before it too (the server needs one in the window itself).
    /// 1 also scores C&C with a single known bot among their clients, and every host that answered
    /// a known bot's scans: about seven times the false positives (docs/flow.md)
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub min_seed_clients: u64,

    /// How long seed clients count towards --min-seed-clients after their window, and how long
    /// an answered contact makes a bot a returning client (the returning_share feature): a C&C
    /// polled every hour or two seldom sees two known bots, or one bot twice, in one window. `0`
    /// counts each window alone
    #[arg(long, value_name = "DUR", default_value = "24h")]
    pub seed_memory: String,

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

    /// Whose clock stamps the flows: `exporter` (live exporters), or `arrival` for an offline
    /// replay (softflowd -r, nfreplay), whose exporter clock has nothing to do with the packets'
    /// time: each flow then ends when its datagram arrived and keeps its duration
    #[arg(long, value_name = "CLOCK", default_value = "exporter")]
    pub clock: botscope_flow::session::clock::Clock,

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
