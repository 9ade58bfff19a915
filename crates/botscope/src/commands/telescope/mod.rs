//! `botscope telescope`: darknet packets in, source activity and darknet statistics out.

mod args;
pub use args::*;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use botscope_deliver::{Only, RecordSink, Tee};
use botscope_model::Record;
use botscope_telescope::session::{self, SessionConfig, Source};
use botscope_telescope::{Catalogue, Config, Darknet, Owner};

use crate::settings::Settings;

pub async fn run(args: TelescopeArgs, settings: &Settings, db_given: bool) -> anyhow::Result<ExitCode> {
    let prefixes = super::parse_prefixes(&args.darknet, "--darknet")?;
    anyhow::ensure!(!prefixes.is_empty(), "--darknet needs at least one prefix");
    let window_seconds = super::parse_window(&args.window)?;
    anyhow::ensure!(args.max_sources > 0, "--max-sources must be at least 1");
    let catalogue = match &args.signatures {
        Some(dir) => Catalogue::load_dir(dir)?,
        None => Catalogue::shipped(),
    };
    let duration = args.duration.map(|d| crate::stop::seconds(d, "--duration", 366.0 * 86400.0)).transpose()?;
    let config = Config {
        window_seconds,
        sensor: args.sensor.clone(),
        max_sources: args.max_sources,
        ..Config::new(Darknet::new(&prefixes))
    };

    let dest = super::sink::open(settings, db_given, &args.center, args.sensor.as_deref()).await?;
    // With a routing table in the store, records name the ISP and statistics add up per ISP and
    // per country (the registry's `country`).
    let attributor = match dest.store.as_ref() {
        Some(sink) => super::attributor(&sink.store).await?,
        None => None,
    };

    // The file gets the activity records; the store and the centre the statistics too.
    let file = Only { sink: super::open_file_sink(&args.out, dest.any())?, keep: in_file };
    let mut sink = Tee { first: file, second: dest };

    // Ctrl-C / SIGTERM / --duration: stop reading, close the open windows, write them.
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        let limit = if args.interface.is_some() { duration } else { None };
        tokio::spawn(async move {
            crate::stop::signal_or_after(limit).await;
            stop.store(true, Ordering::Relaxed);
        });
    }
    let attribute = attributor.map(attribute);
    let source = match args.interface.clone() {
        Some(name) => Source::Interface(name),
        None => Source::Files(args.pcap.clone()),
    };
    let (watch, progress) = crate::progress::watch_reads(settings.show_progress);
    let config = SessionConfig { telescope: config, catalogue, source, attribute, stop, progress };
    let report = session::run(config, &mut sink).await?;
    drop(watch);
    sink.finish().await?;
    let stored = sink.second.stored();
    let (stats, seconds, by_class) = (report.stats, report.seconds, report.by_class);
    if let Some(path) = &args.stats {
        let text = serde_json::to_string_pretty(&stats)?;
        std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))?;
    }
    let t = &stats.totals;
    let classes: Vec<String> = by_class.iter().map(|(c, n)| format!("{n} {c}")).collect();
    tracing::info!(
        frames = t.frames,
        darknet_packets = t.darknet_packets,
        outside_darknet = t.outside_darknet,
        skipped = t.skipped.values().sum::<u64>(),
        stored,
        "telescope done in {seconds:.1} s ({:.0} frames/s): sources {}",
        t.frames as f64 / seconds.max(1e-9),
        if classes.is_empty() { "none".to_string() } else { classes.join(", ") }
    );
    for (reason, n) in &t.skipped {
        // Taps carry ARP and other non-IP frames as a matter of course; damage deserves a warning.
        if matches!(reason.as_str(), "not_ip" | "unsupported_linktype") {
            tracing::info!(reason = reason.as_str(), count = n, "frames without an IP packet skipped");
        } else {
            tracing::warn!(reason = reason.as_str(), count = n, "skipped records or frames");
        }
    }
    if t.sources_over_limit > 0 {
        tracing::warn!(
            packets = t.sources_over_limit,
            "--max-sources reached: packets of further sources counted only in the statistics"
        );
    }
    if t.late_packets > 0 {
        tracing::warn!(
            packets = t.late_packets,
            "packets older than every open window (input out of time order): counted only in the statistics"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What of the telescope's records its `--out` file gets: the activity (the store and the centre
/// get the daily statistics too).
pub fn in_file(record: &Record) -> bool {
    matches!(record, Record::Activity(_))
}

/// Names each source's ISPs and their country (the registry's `country`), so statistics add up
/// per ISP and per country.
pub fn attribute(
    (attributor, countries): (botscope_isp::Attributor, std::collections::HashMap<String, String>),
) -> botscope_telescope::Attribute {
    Box::new(move |ip| {
        let isp = attributor.handles(ip)?;
        let country = isp.first().and_then(|h| countries.get(h).cloned());
        Some(Owner { isp, country })
    })
}
