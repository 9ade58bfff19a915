//! One module per command.

pub mod center;
pub mod config;
pub mod credentials;
pub mod db;
pub mod demo;
pub mod feeds;
pub mod flow;
pub mod ingest;
pub mod isp;
pub mod lab;
pub mod notify;
pub mod share;
pub mod sink;
pub mod survey;
pub mod telescope;

use std::path::{Path, PathBuf};

use anyhow::Context;
use ipnet::IpNet;

/// Parses a length of time such as `90`, `90s`, `15m`, `1h` or `1d` into seconds; `flag` names
/// the option in errors.
pub fn parse_seconds(text: &str, flag: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let n: u64 = number.parse().with_context(|| format!("{flag} {text}: expected a number and s, m, h or d"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => anyhow::bail!("{flag} {text}: the unit must be s, m, h or d"),
    };
    n.checked_mul(scale).with_context(|| format!("{flag} {text}: too long"))
}

/// [`parse_seconds`] as a clap value parser (clap names the flag in its message).
pub fn duration_arg(text: &str) -> Result<u64, String> {
    parse_seconds(text, "").map_err(|e| e.to_string().trim_start().to_string())
}

/// Parses prefixes given as CIDR or as single addresses; `flag` names the option in errors.
pub fn parse_prefixes(list: &[String], flag: &str) -> anyhow::Result<Vec<IpNet>> {
    list.iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(IpNet::from))
                .with_context(|| format!("{flag} {p}: not a CIDR prefix"))
        })
        .collect()
}

/// Parses a window length such as `1h`, `1d`, `15m`, `3600s` or `3600` (seconds): 1m to 7d, dividing
/// a day or whole days, so windows line up with UTC days.
pub fn parse_window(text: &str) -> anyhow::Result<u64> {
    let seconds = parse_seconds(text, "--window")?;
    anyhow::ensure!((60..=7 * 86_400).contains(&seconds), "--window must be between 1m and 7d");
    anyhow::ensure!(
        86_400 % seconds == 0 || seconds % 86_400 == 0,
        "--window must divide a day (or be whole days) so windows line up with UTC days"
    );
    Ok(seconds)
}

/// Where records go: `--out FILE` (`-` = standard output), or standard output when neither
/// `--out` nor `--db` is given; nothing when only `--db` is.
/// The `--out` file as a record sink, by the same rule as [`open_output`].
pub fn open_file_sink(path: &Option<PathBuf>, db_given: bool) -> anyhow::Result<Option<botscope_deliver::FileSink>> {
    match (path, db_given) {
        (Some(p), _) => Ok(Some(botscope_deliver::FileSink::create(p)?)),
        (None, false) => Ok(Some(botscope_deliver::FileSink::create(Path::new("-"))?)),
        (None, true) => Ok(None),
    }
}

/// With a routing table in the store, who holds an address (and each ISP's country from the
/// registry), so records name their ISP; `None` without one.
pub async fn attributor(
    store: &botscope_store::AnyStore,
) -> anyhow::Result<Option<(botscope_isp::Attributor, std::collections::HashMap<String, String>)>> {
    use botscope_store::Store;
    if store.routing_snapshot().await?.is_none() {
        return Ok(None);
    }
    let isps = store.isps().await?;
    let countries = isps.iter().filter_map(|i| Some((i.handle.clone(), i.country.clone()?))).collect();
    Ok(Some((botscope_isp::Attributor::new(store.routed_prefixes().await?, &isps), countries)))
}
