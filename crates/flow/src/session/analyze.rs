//! Flow files in, C&C candidates out.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use botscope_input::ReadProgress;
use botscope_model::RecordSink;

use super::{AnalysisConfig, SessionError, deliver, explain, io, log_window_stats};
use crate::analyze::{AnalyzeStats, Closed, Windows};
use crate::detect::{DetectStats, Detector};
use crate::input::{self, Format};
use crate::seeds::Seeds;
use crate::window::Window;

/// What an analysis did.
#[derive(Debug, Clone)]
pub struct AnalyzeReport {
    /// Window counters.
    pub windows: AnalyzeStats,
    /// Candidates handed to the sink.
    pub candidates: u64,
    /// What scoring did.
    pub detect: DetectStats,
}

/// Reads `inputs` (each gzipped or not; `-` is standard input) in `format`, scores each window as it
/// closes and puts its candidates into `sink`. `progress`, when given, follows the bytes read.
pub async fn analyze<S: RecordSink>(
    config: AnalysisConfig,
    seeds: Seeds,
    inputs: Vec<PathBuf>,
    format: Format,
    progress: Option<Arc<ReadProgress>>,
    sink: &mut S,
) -> Result<AnalyzeReport, SessionError<S::Error>> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let detect_config = config.detect.clone();
    // Set when the sink fails: the reader then ends its input early (a pipe may never end).
    let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader_failed = failed.clone();
    let worker = tokio::task::spawn_blocking(move || -> Result<(Windows, DetectStats), SessionError<S::Error>> {
        let mut windows = config.windows();
        let mut detector = Detector::new(config.model, config.detect);
        let mut closed = |window: &Window| {
            if tx.blocking_send(detector.candidates(window, &seeds)).is_err() {
                // The receiver went away on an error already being reported.
                reader_failed.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            detector.score_again()
        };
        read_files_until(&inputs, format, &seeds, &mut windows, progress.as_ref(), &reader_failed, &mut closed)?;
        Ok((windows, detector.stats))
    });
    let delivered = deliver(&mut rx, sink).await;
    if delivered.is_err() {
        failed.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    drop(rx);
    let (windows, detect) = worker.await.map_err(|_| SessionError::Worker("analysis"))??;
    let candidates = delivered?;
    log_window_stats(&windows);
    explain(&detect, &detect_config);
    Ok(AnalyzeReport { windows: windows.stats, candidates, detect })
}

/// Opens a flow file (`-` = standard input), gzipped or not: Zeek and nfdump exports usually are.
pub fn open<E: std::error::Error + 'static>(
    path: &Path,
    progress: Option<&Arc<ReadProgress>>,
) -> Result<Box<dyn BufRead + Send>, SessionError<E>> {
    let reader = botscope_input::open(path).map_err(|e| io("cannot open", path, e.source))?;
    Ok(match progress {
        Some(progress) => {
            progress.start(path.display().to_string(), botscope_input::plain_file_size(path));
            // Counted after decompression: a gzipped file's bar is a spinner over its text.
            Box::new(std::io::BufReader::new(progress.counting(reader)))
        }
        None => reader,
    })
}

/// Reads flow files into windows; `closed` gets each window as it closes, the last ones at the end.
pub fn read_files<E: std::error::Error + 'static>(
    paths: &[PathBuf],
    format: Format,
    seeds: &Seeds,
    windows: &mut Windows,
    progress: Option<&Arc<ReadProgress>>,
    closed: &mut Closed,
) -> Result<(), SessionError<E>> {
    read_files_until(paths, format, seeds, windows, progress, &AtomicBool::new(false), closed)
}

/// As [`read_files`], ending every input early once `stop` is set.
fn read_files_until<E: std::error::Error + 'static>(
    paths: &[PathBuf],
    format: Format,
    seeds: &Seeds,
    windows: &mut Windows,
    progress: Option<&Arc<ReadProgress>>,
    stop: &AtomicBool,
    closed: &mut Closed,
) -> Result<(), SessionError<E>> {
    for path in paths {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let reader = Until { inner: open(path, progress)?, stop };
        let report = input::read(reader, format, &mut |flow, initiator_known| {
            windows.add(&flow, seeds, initiator_known, closed)
        })
        .map_err(|source| SessionError::Input { path: path.clone(), source })?;
        for (line, reason) in &report.errors {
            tracing::warn!(file = %path.display(), line, "flow line skipped: {reason}");
        }
        if report.bad_lines > report.errors.len() as u64 {
            tracing::warn!(file = %path.display(), lines = report.bad_lines, "flow lines skipped in all");
        }
        tracing::info!(file = %path.display(), flows = report.flows, bad_lines = report.bad_lines, "flows read");
    }
    windows.finish(closed);
    Ok(())
}

/// A reader that ends (reads nothing more) once `stop` is set.
struct Until<'a, R> {
    inner: R,
    stop: &'a AtomicBool,
}

impl<R: std::io::Read> std::io::Read for Until<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) { Ok(0) } else { self.inner.read(buf) }
    }
}

impl<R: BufRead> BufRead for Until<'_, R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.stop.load(Ordering::Relaxed) { Ok(&[]) } else { self.inner.fill_buf() }
    }

    fn consume(&mut self, amount: usize) {
        self.inner.consume(amount);
    }
}
