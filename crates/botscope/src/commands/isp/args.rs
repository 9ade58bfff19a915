//! The `botscope isp` command line: every flag it takes, with its help and examples.

use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum IspCommand {
    /// Load a routing table (CAIDA prefix2as) and/or the ISP registry into the store
    #[command(after_help = ISP_LOAD_EXAMPLES, long_about = ISP_LOAD_ABOUT)]
    Load(IspLoadArgs),

    /// Attribute addresses: print ip, prefix, asn and isp for each
    #[command(after_help = ISP_LOOKUP_EXAMPLES, long_about = ISP_LOOKUP_ABOUT)]
    Lookup(IspLookupArgs),
}

pub const ISP_LOAD_ABOUT: &str = "Load a routing table (CAIDA prefix2as) and/or the ISP registry into the store.

--pfx2as reads CAIDA RouteViews prefix2as data: \"prefix<TAB>length<TAB>origin\" per line, where \
the origin is an ASN, several ASNs joined by '_' (multi-origin) or an AS set joined by ','. Gzip \
is detected by content. The file replaces the stored table as a whole; malformed lines are \
reported and skipped. A file with no usable line leaves the stored table untouched.

--registry reads isps.toml (see docs/configuration.md#isp-registry) and replaces the stored registry.";

pub const ISP_LOAD_EXAMPLES: &str = "\
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

pub const ISP_LOOKUP_ABOUT: &str = "Attribute addresses: print ip, prefix, asn and isp for each.

One line per address, tab-separated: the address, the most specific routed prefix holding it, \
the origin AS(es) as in prefix2as (64500_64501 multi-origin, 64500,64501 an AS set), and the \
handles of the registry ISPs owning those ASes (comma-separated). An address no prefix holds \
prints \"-\" for prefix and asn and \"unattributed\" for isp; a routed address whose AS is in no \
registry ISP prints \"-\" for isp. IPv4 and IPv6 alike. Exit status 0 unless an argument is not an \
IP address (1).";

pub const ISP_LOOKUP_EXAMPLES: &str = "\
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
