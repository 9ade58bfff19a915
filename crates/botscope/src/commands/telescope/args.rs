//! The `botscope telescope` command line: every flag it takes, with its help and examples.

use clap::Args;
use std::path::PathBuf;

pub const TELESCOPE_ABOUT: &str = "Darknet telescope: classify packets sent to unused addresses and list \
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

pub const TELESCOPE_EXAMPLES: &str = "\
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
    #[arg(long, value_name = "N", default_value_t = botscope_telescope::DEFAULT_MAX_SOURCES)]
    pub max_sources: usize,

    /// Live capture: stop after this many seconds [default: until interrupted]
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,

    #[command(flatten)]
    pub center: crate::commands::sink::CenterArgs,
}
