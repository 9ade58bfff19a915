//! `botscope telescope`: darknet packets in, source activity and darknet statistics out.

mod args;
pub use args::*;

use botscope_deliver::RecordSink;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use botscope_model::{Record, SourceActivity};
use botscope_store::Store;
use botscope_telescope::read::{self, Next};
use botscope_telescope::{Catalogue, Config, Darknet, Owner, Stats, Telescope};
use tokio::sync::mpsc;

use crate::Settings;

/// Records go to the writer in batches of this many.
const BATCH: usize = 1000;

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
    // A stamp more than a day after now is a damaged record or a broken clock; taken at face value
    // it would close every open window early.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let config = Config {
        darknet: Darknet::new(&prefixes),
        window_seconds,
        sensor: args.sensor.clone(),
        max_sources: args.max_sources,
        latest_ns: Some((now.as_secs() + 86_400).saturating_mul(1_000_000_000)),
    };

    let mut dest = super::sink::open(settings, db_given, &args.center, args.sensor.as_deref()).await?;
    // With a routing table in the store, records name the ISP and statistics add up per ISP and
    // per country (the registry's `country`).
    let attributor = match dest.store.as_ref().map(|s| &s.store) {
        Some(store) if store.routing_snapshot().await?.is_some() => {
            let isps = store.isps().await?;
            let countries: std::collections::HashMap<String, String> =
                isps.iter().filter_map(|i| Some((i.handle.clone(), i.country.clone()?))).collect();
            Some((botscope_isp::Attributor::new(store.routed_prefixes().await?, &isps), countries))
        }
        _ => None,
    };
    let mut out = super::open_output(&args.out, dest.any())?;

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

    let (tx, mut rx) = mpsc::channel::<Vec<SourceActivity>>(16);
    let show_progress = settings.show_progress;
    let pcaps = args.pcap.clone();
    let interface = args.interface.clone();
    let reader_stop = stop.clone();
    let attribute: Option<botscope_telescope::Attribute> = attributor.map(|(attributor, countries)| {
        Box::new(move |ip| {
            let isps = attributor.lookup(ip).isps;
            let country = isps.first().and_then(|h| countries.get(*h).cloned());
            (!isps.is_empty()).then(|| Owner { isp: botscope_model::IspHandles::new(isps), country })
        }) as botscope_telescope::Attribute
    });
    let worker = tokio::task::spawn_blocking(move || -> anyhow::Result<(Stats, f64)> {
        let started = Instant::now();
        let mut telescope = Telescope::new(&catalogue, config);
        if let Some(attribute) = attribute {
            telescope = telescope.with_attribution(attribute);
        }
        // Live records go out as soon as their window closes; files batch them.
        let batch_size = if interface.is_some() { 1 } else { BATCH };
        let mut batch = Vec::with_capacity(batch_size);
        let mut emit = |record: SourceActivity| {
            batch.push(record);
            if batch.len() >= batch_size {
                // The receiver only goes away on an error already being reported.
                let _ = tx.blocking_send(std::mem::replace(&mut batch, Vec::with_capacity(batch_size)));
            }
        };
        match interface {
            Some(name) => live(&mut telescope, &name, &reader_stop, &mut emit)?,
            None => files(&mut telescope, &pcaps, &reader_stop, show_progress, &mut emit)?,
        }
        let stats = telescope.finish(&mut emit);
        if !batch.is_empty() {
            let _ = tx.blocking_send(batch);
        }
        Ok((stats, started.elapsed().as_secs_f64()))
    });

    let mut by_class = std::collections::BTreeMap::<&str, u64>::new();
    while let Some(batch) = rx.recv().await {
        for record in &batch {
            *by_class.entry(record.classification.as_str()).or_default() += 1;
        }
        let records: Vec<Record> = batch
            .into_iter()
            .map(|r| {
                let mut record = Record::Activity(r);
                record.ensure_id();
                record
            })
            .collect();
        if let Some(out) = out.as_mut() {
            for record in &records {
                out.write_all(record.to_json_line().as_bytes())?;
                out.write_all(b"\n")?;
            }
        }
        dest.put(&records).await?;
    }
    let (stats, seconds) = worker.await??;
    if let Some(out) = out.as_mut() {
        out.flush().context("cannot write the activity records")?;
    }
    if dest.any() {
        let days: Vec<Record> = stats
            .days
            .iter()
            .cloned()
            .map(|d| {
                let mut record = Record::DarknetDay(d);
                record.ensure_id();
                record
            })
            .collect();
        dest.put(&days).await?;
    }
    dest.finish().await?;
    let stored = dest.stored();
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

/// Counts and logs what the readers skip: the first few one by one, then only a total.
#[derive(Default)]
struct SkipLog {
    logged: u32,
}

impl SkipLog {
    const ONE_BY_ONE: u32 = 10;

    fn skipped(&mut self, telescope: &mut Telescope<'_>, file: &str, offset: u64, skip: read::Skip) {
        telescope.count_skip(skip);
        self.logged += 1;
        if self.logged <= Self::ONE_BY_ONE {
            tracing::warn!(file, offset, reason = skip.as_str(), "skipped a capture record");
        }
    }

    /// A file cut short (still being written, a broken download): everything read so far is kept
    /// and the other files go on.
    fn failed(&mut self, telescope: &mut Telescope<'_>, file: &str, offset: u64, error: &read::ReadError) {
        telescope.count_skip(read::Skip::TruncatedRecord);
        tracing::warn!(file, offset, "stopped reading this capture: {error}");
    }

    fn finish(self) {
        if self.logged > Self::ONE_BY_ONE {
            tracing::warn!(skipped = self.logged, "further skipped records were not logged one by one");
        }
    }
}

/// Reads the capture files: one in place, several merged by time.
fn files(
    telescope: &mut Telescope<'_>,
    paths: &[PathBuf],
    stop: &AtomicBool,
    show_progress: bool,
    emit: &mut impl FnMut(SourceActivity),
) -> anyhow::Result<()> {
    match paths {
        [path] => single_file(telescope, path, stop, show_progress, emit),
        _ => merged_files(telescope, paths, stop, show_progress, emit),
    }
}

/// Reads one capture, frames straight from the reader's buffer (the fast path).
fn single_file(
    telescope: &mut Telescope<'_>,
    path: &Path,
    stop: &AtomicBool,
    show_progress: bool,
    emit: &mut impl FnMut(SourceActivity),
) -> anyhow::Result<()> {
    let (mut reader, compression) = read::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let total = match compression {
        read::Compression::None => std::fs::metadata(path).ok().map(|m| m.len()),
        _ => None,
    };
    let name = path.display().to_string();
    let bar = crate::progress::bytes(show_progress, total, format!("reading {name}"));
    let mut skips = SkipLog::default();
    let mut since_update = 0u32;
    loop {
        match reader.next_record() {
            Ok(Next::Frame(frame)) => telescope.observe(&frame, emit),
            Ok(Next::Skipped(skip)) => skips.skipped(telescope, &name, reader.position(), skip),
            Ok(Next::End) => break,
            Err(error) => {
                skips.failed(telescope, &name, reader.position(), &error);
                break;
            }
        }
        if checkpoint(&mut since_update, &bar, || reader.position(), stop) {
            break;
        }
    }
    bar.finish_and_clear();
    skips.finish();
    Ok(())
}

/// Every 65,536 frames: moves the progress bar and says whether to stop (Ctrl-C, SIGTERM).
fn checkpoint(
    count: &mut u32,
    bar: &indicatif::ProgressBar,
    position: impl FnOnce() -> u64,
    stop: &AtomicBool,
) -> bool {
    *count += 1;
    if *count < 1 << 16 {
        return false;
    }
    *count = 0;
    bar.set_position(position());
    let stopping = stop.load(Ordering::Relaxed);
    if stopping {
        tracing::warn!("interrupted: writing what was read so far");
    }
    stopping
}

/// One capture's next frame, copied out of its reader so several captures can be merged.
struct Pending {
    ts_ns: u64,
    linktype: u32,
    orig_len: u32,
    data: Vec<u8>,
}

/// Reads several captures at once, always taking the earliest pending frame: captures of the same
/// darknet from several taps or interfaces overlap in time, and reading them one after another
/// would make most of the second one "late".
fn merged_files(
    telescope: &mut Telescope<'_>,
    paths: &[PathBuf],
    stop: &AtomicBool,
    show_progress: bool,
    emit: &mut impl FnMut(SourceActivity),
) -> anyhow::Result<()> {
    let mut readers = Vec::new();
    let mut total = Some(0u64);
    for path in paths {
        let (reader, compression) = read::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        total = match (total, compression) {
            (Some(t), read::Compression::None) => std::fs::metadata(path).ok().map(|m| t + m.len()),
            _ => None,
        };
        readers.push(reader);
    }
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let bar = crate::progress::bytes(show_progress, total, format!("reading {} captures", paths.len()));
    let mut skips = SkipLog::default();
    // Advances one reader to its next frame; false at its end.
    let mut advance = |telescope: &mut Telescope<'_>,
                       i: usize,
                       reader: &mut read::CaptureReader<_>,
                       slot: &mut Option<Pending>| loop {
        match reader.next_record() {
            Ok(Next::Frame(frame)) => {
                let pending =
                    slot.get_or_insert_with(|| Pending { ts_ns: 0, linktype: 0, orig_len: 0, data: Vec::new() });
                pending.ts_ns = frame.ts_ns;
                pending.linktype = frame.linktype;
                pending.orig_len = frame.orig_len;
                pending.data.clear();
                pending.data.extend_from_slice(frame.data);
                return true;
            }
            Ok(Next::Skipped(skip)) => skips.skipped(telescope, &names[i], reader.position(), skip),
            Ok(Next::End) => return false,
            Err(error) => {
                skips.failed(telescope, &names[i], reader.position(), &error);
                return false;
            }
        }
    };
    let mut slots: Vec<Option<Pending>> = (0..readers.len()).map(|_| None).collect();
    for (i, reader) in readers.iter_mut().enumerate() {
        if !advance(telescope, i, reader, &mut slots[i]) {
            slots[i] = None;
        }
    }
    let mut since_update = 0u32;
    while let Some(i) =
        (0..slots.len()).filter(|&i| slots[i].is_some()).min_by_key(|&i| slots[i].as_ref().map(|p| p.ts_ns))
    {
        let pending = slots[i].as_ref().expect("picked a pending frame");
        let frame = read::Frame {
            ts_ns: pending.ts_ns,
            linktype: pending.linktype,
            data: &pending.data,
            orig_len: pending.orig_len,
        };
        telescope.observe(&frame, emit);
        if !advance(telescope, i, &mut readers[i], &mut slots[i]) {
            slots[i] = None;
        }
        if checkpoint(&mut since_update, &bar, || readers.iter().map(|r| r.position()).sum(), stop) {
            break;
        }
    }
    bar.finish_and_clear();
    skips.finish();
    Ok(())
}

#[cfg(feature = "live")]
fn live(
    telescope: &mut Telescope<'_>,
    interface: &str,
    stop: &AtomicBool,
    emit: &mut impl FnMut(SourceActivity),
) -> anyhow::Result<()> {
    use botscope_telescope::read::live::{LiveCapture, Poll};
    let mut capture = LiveCapture::open(interface, 5)?;
    tracing::info!(interface, linktype = capture.linktype(), "capturing");
    let mut last_tick = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match capture.poll() {
            Ok(Poll::Frame(frame)) => telescope.observe(&frame, emit),
            Ok(Poll::Idle) => {}
            Err(e) => anyhow::bail!("live capture on {interface}: {e}"),
        }
        if last_tick.elapsed() >= std::time::Duration::from_secs(1) {
            last_tick = Instant::now();
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            // A window closes a little after its end, so late frames still land in it.
            telescope.close_ended(now.as_nanos().saturating_sub(5_000_000_000) as u64, emit);
        }
    }
    if let Some(dropped) = capture.dropped().filter(|d| *d > 0) {
        tracing::warn!(dropped, "the kernel or libpcap dropped packets");
    }
    Ok(())
}

#[cfg(not(feature = "live"))]
fn live(_: &mut Telescope<'_>, _: &str, _: &AtomicBool, _: &mut impl FnMut(SourceActivity)) -> anyhow::Result<()> {
    anyhow::bail!("this botscope was built without live capture (feature `live`, which needs libpcap)")
}
