//! The telescope as a session a program drives: captures (or a live interface) in, `activity`
//! records out to a [`RecordSink`] as each window closes, then one `darknet_day` record per day
//! for the statistics. The `telescope` command turns its arguments into a [`SessionConfig`]; the
//! demo and the tests call [`run`] the same way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use botscope_input::ReadProgress;
use botscope_model::{Record, RecordSink, SourceActivity};

use crate::read::{self, Next};
use crate::stats::Stats;
use crate::{Attribute, Catalogue, Config, Telescope};

/// Activity records go to the sink in batches of this many when reading files.
const BATCH: usize = 1000;

/// Where packets come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Capture files (pcap, pcapng, gzip/xz/zstd): one read in place, several merged by time.
    Files(Vec<PathBuf>),
    /// A live interface, until `stop` is set.
    Interface(String),
}

/// A telescope session's configuration.
pub struct SessionConfig {
    /// The darknet, window and limits.
    pub telescope: Config,
    /// Signatures, behaviours and service categories.
    pub catalogue: Catalogue,
    /// Where packets come from.
    pub source: Source,
    /// Names the ISP and country of a source, when a routing table is at hand.
    pub attribute: Option<Attribute>,
    /// Set to stop reading; open windows are then closed and delivered.
    pub stop: Arc<AtomicBool>,
    /// Counts bytes read from files, for whoever shows progress.
    pub progress: Option<Arc<ReadProgress>>,
}

/// What a session did.
#[derive(Debug)]
pub struct Report {
    /// The darknet's statistics.
    pub stats: Stats,
    /// Activity records written, by classification.
    pub by_class: BTreeMap<String, u64>,
    /// Seconds spent reading and aggregating.
    pub seconds: f64,
}

/// Why a session stopped.
#[derive(Debug, thiserror::Error)]
pub enum SessionError<E: std::error::Error + 'static> {
    /// A capture file could not be opened.
    #[error("cannot read {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The error.
        source: read::ReadError,
    },
    /// The live capture failed.
    #[error("live capture on {interface}: {message}")]
    Live {
        /// The interface.
        interface: String,
        /// What libpcap said.
        message: String,
    },
    /// The reading thread panicked (a bug; the records already delivered stand).
    #[error("the telescope's reading thread failed")]
    Worker,
    /// The sink refused the records.
    #[error(transparent)]
    Sink(E),
}

/// Reads the source, delivering activity records as windows close and the per-day statistics at
/// the end.
pub async fn run<S: RecordSink>(config: SessionConfig, sink: &mut S) -> Result<Report, SessionError<S::Error>> {
    let SessionConfig { telescope: settings, catalogue, source, attribute, stop, progress } = config;
    let stop_reading = stop.clone();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<SourceActivity>>(16);
    let worker = tokio::task::spawn_blocking(move || -> Result<(Stats, f64), SessionError<S::Error>> {
        let started = Instant::now();
        let mut telescope = Telescope::new(&catalogue, settings);
        if let Some(attribute) = attribute {
            telescope = telescope.with_attribution(attribute);
        }
        // Live records go out as soon as their window closes; files batch them.
        let batch_size = if matches!(source, Source::Interface(_)) { 1 } else { BATCH };
        let mut batch = Vec::with_capacity(batch_size);
        let mut emit = |record: SourceActivity| {
            batch.push(record);
            if batch.len() >= batch_size {
                // The receiver goes away only on an error already being reported.
                let _ = tx.blocking_send(std::mem::replace(&mut batch, Vec::with_capacity(batch_size)));
            }
        };
        match &source {
            Source::Interface(name) => live(&mut telescope, name, &stop, &mut emit)?,
            Source::Files(paths) => files(&mut telescope, paths, &stop, progress.as_ref(), &mut emit)?,
        }
        let stats = telescope.finish(&mut emit);
        if !batch.is_empty() {
            let _ = tx.blocking_send(batch);
        }
        Ok((stats, started.elapsed().as_secs_f64()))
    });
    let mut by_class = BTreeMap::<String, u64>::new();
    let delivered = async {
        while let Some(batch) = rx.recv().await {
            for record in &batch {
                *by_class.entry(record.classification.as_str().to_string()).or_default() += 1;
            }
            sink.put(&with_ids(batch.into_iter().map(Record::Activity))).await.map_err(SessionError::Sink)?;
        }
        Ok::<(), SessionError<S::Error>>(())
    }
    .await;
    if delivered.is_err() {
        // The sink failed: the reader stops at its next look at `stop` (live capture would
        // otherwise run on until Ctrl-C), and its sends fail once nobody receives.
        stop_reading.store(true, Ordering::Relaxed);
    }
    drop(rx);
    let (stats, seconds) = worker.await.map_err(|_| SessionError::Worker)??;
    delivered?;
    sink.put(&with_ids(stats.days.iter().cloned().map(Record::DarknetDay))).await.map_err(SessionError::Sink)?;
    Ok(Report { stats, by_class, seconds })
}

fn with_ids(records: impl Iterator<Item = Record>) -> Vec<Record> {
    records
        .map(|mut record| {
            record.ensure_id();
            record
        })
        .collect()
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
fn files<E: std::error::Error + 'static>(
    telescope: &mut Telescope<'_>,
    paths: &[PathBuf],
    stop: &AtomicBool,
    progress: Option<&Arc<ReadProgress>>,
    emit: &mut impl FnMut(SourceActivity),
) -> Result<(), SessionError<E>> {
    match paths {
        [path] => single_file(telescope, path, stop, progress, emit),
        _ => merged_files(telescope, paths, stop, progress, emit),
    }
}

/// A capture being read.
type Capture = read::CaptureReader<Box<dyn std::io::Read + Send>>;

/// Opens a capture; its size too when it is not compressed (for progress).
fn open<E: std::error::Error + 'static>(path: &Path) -> Result<(Capture, Option<u64>), SessionError<E>> {
    let (reader, compression) =
        read::open(path).map_err(|source| SessionError::Open { path: path.to_path_buf(), source })?;
    let size = match compression {
        read::Compression::None => std::fs::metadata(path).ok().map(|m| m.len()),
        _ => None,
    };
    Ok((reader, size))
}

/// Reads one capture, frames straight from the reader's buffer (the fast path).
fn single_file<E: std::error::Error + 'static>(
    telescope: &mut Telescope<'_>,
    path: &Path,
    stop: &AtomicBool,
    progress: Option<&Arc<ReadProgress>>,
    emit: &mut impl FnMut(SourceActivity),
) -> Result<(), SessionError<E>> {
    let (mut reader, size) = open(path)?;
    let name = path.display().to_string();
    if let Some(progress) = progress {
        progress.start(name.clone(), size);
    }
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
        if checkpoint(&mut since_update, progress, || reader.position(), stop) {
            break;
        }
    }
    skips.finish();
    Ok(())
}

/// Every 65,536 frames: reports the position and says whether to stop (Ctrl-C, SIGTERM).
fn checkpoint(
    count: &mut u32,
    progress: Option<&Arc<ReadProgress>>,
    position: impl FnOnce() -> u64,
    stop: &AtomicBool,
) -> bool {
    *count += 1;
    if *count < 1 << 16 {
        return false;
    }
    *count = 0;
    if let Some(progress) = progress {
        progress.set(position());
    }
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
fn merged_files<E: std::error::Error + 'static>(
    telescope: &mut Telescope<'_>,
    paths: &[PathBuf],
    stop: &AtomicBool,
    progress: Option<&Arc<ReadProgress>>,
    emit: &mut impl FnMut(SourceActivity),
) -> Result<(), SessionError<E>> {
    let mut readers = Vec::new();
    let mut total = Some(0u64);
    for path in paths {
        let (reader, size) = open(path)?;
        total = total.zip(size).map(|(t, s)| t + s);
        readers.push(reader);
    }
    if let Some(progress) = progress {
        progress.start(format!("{} captures", paths.len()), total);
    }
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
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
        let Some(pending) = slots[i].as_ref() else { break };
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
        if checkpoint(&mut since_update, progress, || readers.iter().map(|r| r.position()).sum(), stop) {
            break;
        }
    }
    skips.finish();
    Ok(())
}

#[cfg(feature = "live")]
fn live<E: std::error::Error + 'static>(
    telescope: &mut Telescope<'_>,
    interface: &str,
    stop: &AtomicBool,
    emit: &mut impl FnMut(SourceActivity),
) -> Result<(), SessionError<E>> {
    use crate::read::live::{LiveCapture, Poll};
    let failed = |message: String| SessionError::Live { interface: interface.to_string(), message };
    let mut capture = LiveCapture::open(interface, 5).map_err(|e| failed(e.to_string()))?;
    tracing::info!(interface, linktype = capture.linktype(), "capturing");
    let mut last_tick = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match capture.poll() {
            Ok(Poll::Frame(frame)) => telescope.observe(&frame, emit),
            Ok(Poll::Idle) => {}
            Err(e) => return Err(failed(e.to_string())),
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
fn live<E: std::error::Error + 'static>(
    _: &mut Telescope<'_>,
    interface: &str,
    _: &AtomicBool,
    _: &mut impl FnMut(SourceActivity),
) -> Result<(), SessionError<E>> {
    Err(SessionError::Live {
        interface: interface.to_string(),
        message: "this botscope was built without live capture (feature `live`, which needs libpcap)".into(),
    })
}
