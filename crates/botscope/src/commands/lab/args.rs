//! The `botscope lab` command line: every flag it takes, with its help and examples.

use clap::{Args, Subcommand};
use std::path::PathBuf;

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

pub const LAB_FLOWS_ABOUT: &str = "Generate a synthetic ISP's flows with the truth about its botnets.

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

pub const LAB_FLOWS_EXAMPLES: &str = "\
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

pub const LAB_DARKNET_ABOUT: &str = "Write a synthetic darknet capture (pcap) with the truth about every source.

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

pub const LAB_DARKNET_EXAMPLES: &str = "\
Examples:
  botscope lab darknet --out darknet.pcap --seed 7 --truth darknet-truth.jsonl
  botscope lab darknet --out big.pcap --seed 1 --hours 24 --sources 5000 --intensity 20   # benchmark input
  botscope lab darknet --out real.pcap --shape heavy-tail --sources 100000 --darknet 127.128.0.0/9   # a real telescope's shape";

/// `--shape` of `lab darknet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DarknetShape {
    /// Every source within its kind's range of rates.
    Lab,
    /// Pareto-distributed packets per source.
    HeavyTail,
}

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

    /// How packets are shared among sources: `lab` (every source within its kind's range of
    /// rates, enough evidence for its truth) or `heavy-tail` (Pareto: a few heavy scanners, many
    /// bots sending a handful; for benchmarks shaped like a real telescope)
    #[arg(long, value_enum, value_name = "SHAPE", default_value = "lab")]
    pub shape: DarknetShape,

    /// Size of the lab fleet whose vulnerable devices become the bots
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub fleet_count: usize,

    /// Write the truth here (one JSON line per source)
    #[arg(long, value_name = "FILE")]
    pub truth: Option<PathBuf>,
}

pub const LAB_DEVICES_ABOUT: &str = "Run emulated IoT devices on loopback until stopped (or for --duration).

A seeded mix of the models in data/devices.toml (routers, cameras, DVRs, NAS, ...) with their \
banners and login dialogues: telnet, ssh (real SSH), http and https (Basic, Digest, login forms, \
open admin pages), TR-069 and ADB ports. Some devices use a dictionary pair, most a strong random \
password, some none at all; --misbehaving of them are slow, lock out after a few failures, \
tarpit, reset, send garbage or negotiate telnet options forever. --truth writes one JSON line per \
device: address, ports, model, firmware, credential kind and dictionary id, and the findings a \
correct survey reports. Addresses are inside --subnet (loopback only); one listener per service \
port on the loopback device serves every device, so 20,000 devices fit in one process. \
Prints `ready` on standard output once listening.";

pub const LAB_DEVICES_EXAMPLES: &str = "\
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
