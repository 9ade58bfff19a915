//! `botscope isp load` and `botscope isp lookup`.

mod args;
pub use args::*;

use std::io::{BufWriter, Write};
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use botscope_input::{BoundedLines, Line};
use botscope_isp::{Attribution, Attributor, pfx2as, registry};
use botscope_store::Store;
use ipnet::IpNet;
use serde::Serialize;

use crate::settings::Settings;

pub async fn run(command: IspCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    match command {
        IspCommand::Load(args) => load(args, settings).await,
        IspCommand::Lookup(args) => lookup(args, settings).await,
    }
}

async fn load(args: IspLoadArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    // Read and check everything before touching the store, so a bad registry does not leave a
    // half-done load behind.
    let isps = match &args.registry {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            Some(registry::parse(&text).with_context(|| format!("ISP registry {}", path.display()))?)
        }
        None => None,
    };
    let table = match &args.pfx2as {
        Some(path) => Some(read_table(path, settings.show_progress)?),
        None => None,
    };
    let store = settings.open_store().await?;
    if let (Some(path), Some(table)) = (&args.pfx2as, &table) {
        store.replace_routed_prefixes(&table.prefixes, &path.display().to_string()).await?;
        let v6 = table.prefixes.iter().filter(|p| matches!(p.prefix, IpNet::V6(_))).count();
        println!(
            "routing table: {} prefixes ({} IPv4, {} IPv6) from {}; {} malformed lines skipped",
            table.prefixes.len(),
            table.prefixes.len() - v6,
            v6,
            path.display(),
            table.skipped
        );
    }
    if let (Some(path), Some(isps)) = (&args.registry, &isps) {
        store.replace_isps(isps).await?;
        let asns: usize = isps.iter().map(|isp| isp.asns.len()).sum();
        println!("ISP registry: {} ISPs with {} ASNs from {}", isps.len(), asns, path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn read_table(path: &Path, show_progress: bool) -> anyhow::Result<pfx2as::Table> {
    let reader = botscope_input::open(path)?;
    let total = botscope_input::plain_file_size(path);
    let bar = crate::progress::bytes(show_progress, total, format!("reading {}", path.display()));
    let table = pfx2as::read(reader, |bytes| bar.set_position(bytes)).with_context(|| path.display().to_string())?;
    bar.finish_and_clear();
    for problem in &table.problems {
        tracing::warn!("{}:{}: skipped: {}", path.display(), problem.line, problem.reason);
    }
    if table.skipped > table.problems.len() as u64 {
        tracing::warn!("{} more malformed lines skipped", table.skipped - table.problems.len() as u64);
    }
    if table.prefixes.is_empty() {
        bail!("{}: no usable prefix2as line; the stored routing table is left unchanged", path.display());
    }
    Ok(table)
}

#[derive(Serialize)]
struct JsonAnswer<'a> {
    ip: IpAddr,
    attributed: bool,
    prefix: Option<IpNet>,
    asn: Option<String>,
    asns: Vec<u32>,
    isps: &'a [&'a str],
}

async fn lookup(args: IspLookupArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let store = settings.open_store().await?;
    if store.routing_snapshot().await?.is_none() {
        tracing::warn!(
            "no routing table loaded: every address is unattributed (load one with `botscope isp load --pfx2as FILE`)"
        );
    }
    let attributor = Attributor::new(store.routed_prefixes().await?, &store.isps().await?);
    tracing::debug!(prefixes = ?attributor.len(), "routing table loaded");

    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut invalid = 0u64;
    for address in &args.addresses {
        if address == "-" {
            let mut lines = BoundedLines::new(std::io::stdin().lock(), 256);
            while let Some((number, line)) = lines.next_line().context("reading addresses from stdin")? {
                match line {
                    Line::Text(bytes) => {
                        invalid +=
                            u64::from(!answer(&String::from_utf8_lossy(bytes), &attributor, args.json, &mut out)?)
                    }
                    Line::TooLong { .. } => {
                        invalid += 1;
                        tracing::error!("stdin line {number}: too long to be an address");
                    }
                }
            }
        } else {
            invalid += u64::from(!answer(address, &attributor, args.json, &mut out)?);
        }
    }
    out.flush()?;
    Ok(if invalid > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Attributes one address given as text; `Ok(false)` if it is not an address.
fn answer(text: &str, attributor: &Attributor, json: bool, out: &mut impl Write) -> anyhow::Result<bool> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(true);
    }
    match text.parse::<IpAddr>() {
        Ok(ip) => write_answer(out, &attributor.lookup(ip), json).map(|_| true),
        Err(_) => {
            tracing::error!("not an IP address: {:?}", text.chars().take(80).collect::<String>());
            Ok(false)
        }
    }
}

fn write_answer(out: &mut impl Write, found: &Attribution<'_>, json: bool) -> anyhow::Result<()> {
    if json {
        let answer = JsonAnswer {
            ip: found.ip,
            attributed: !found.isps.is_empty(),
            prefix: found.prefix,
            asn: found.origin.map(|o| o.to_string()),
            asns: found.origin.map(|o| o.asns()).unwrap_or_default(),
            isps: &found.isps,
        };
        serde_json::to_writer(&mut *out, &answer)?;
        writeln!(out)?;
        return Ok(());
    }
    match (found.prefix, found.origin) {
        (Some(prefix), Some(origin)) => {
            let isps = if found.isps.is_empty() { "-".to_string() } else { found.isps.join(",") };
            writeln!(out, "{}\t{}\t{}\t{}", found.ip, prefix, origin, isps)?;
        }
        _ => writeln!(out, "{}\t-\t-\tunattributed", found.ip)?,
    }
    Ok(())
}
