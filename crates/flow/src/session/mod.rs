//! The flow sensor as sessions a program drives: [`analyze`] reads flow files, [`collect`] listens
//! for NetFlow/IPFIX/sFlow exports; both window the flows, score the servers and hand `cnc`
//! records to a [`RecordSink`] as each window closes. A command turns its arguments into an
//! [`AnalysisConfig`] and calls one of them; the demo and the tests call them the same way.

mod analyze;
pub mod clock;
mod collect;

use std::path::{Path, PathBuf};

use botscope_model::{CncCandidate, Record, RecordSink};

use crate::analyze::Windows;
use crate::detect::{DetectConfig, Model};
use crate::seeds::Seeds;
use crate::window::WindowConfig;

pub use analyze::{AnalyzeReport, analyze, open as open_input, read_files};
pub use collect::{CollectConfig, CollectStats, collect};

/// How long a closed window takes late flows unless told otherwise: three hours covers the
/// one-hour idle timeout of softflowd and the 30-minute active timeout routers commonly use, and
/// keeps a window for the two after it, whose returning bots revise it (hindsight).
pub const DEFAULT_LATE_MS: i64 = 3 * 3_600_000;

/// What the analysis sessions share: how flows are windowed and servers scored.
#[derive(Debug, Clone)]
pub struct AnalysisConfig {
    /// How one window is built (subscriber prefixes, server cap).
    pub window: WindowConfig,
    /// Window length.
    pub window_ms: i64,
    /// How long a window stays open after its end for flows that arrive late.
    pub grace_ms: i64,
    /// How long a closed window still takes late flows (then scored again, its records sent
    /// again under the same ids); 0 drops them.
    pub late_ms: i64,
    /// Scoring thresholds and the sensor name.
    pub detect: DetectConfig,
    /// The scoring model.
    pub model: Model,
}

impl AnalysisConfig {
    /// Hourly windows with a quarter-hour grace, the default thresholds and no subscriber
    /// prefixes, scored by `model`.
    pub fn new(model: Model) -> AnalysisConfig {
        AnalysisConfig {
            window: WindowConfig::default(),
            window_ms: 3_600_000,
            grace_ms: 900_000,
            late_ms: DEFAULT_LATE_MS,
            detect: DetectConfig::default(),
            model,
        }
    }

    /// Empty windows of this configuration.
    pub fn windows(&self) -> Windows {
        Windows::new(self.window.clone(), self.window_ms, self.grace_ms).with_late_horizon(self.late_ms)
    }
}

/// Why a session stopped.
#[derive(Debug, thiserror::Error)]
pub enum SessionError<E: std::error::Error + 'static> {
    /// A file could not be opened, read or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A flow file is not in the format it was read as.
    #[error("{}: {source}", path.display())]
    Input {
        /// The file.
        path: PathBuf,
        /// The error.
        source: crate::input::InputError,
    },
    /// The seed files name no host to start from.
    #[error("the seed files hold no infected host and no known C&C: graph mining needs at least one")]
    NoSeeds,
    /// The collector refuses to start (e.g. open to everyone with no `--exporter`).
    #[error(transparent)]
    Exporters(#[from] crate::exporters::ExporterError),
    /// A listening socket could not be opened.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: std::net::SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// A worker thread panicked (a bug; the records already delivered stand).
    #[error("the {0} thread failed")]
    Worker(&'static str),
    /// The sink refused the records.
    #[error(transparent)]
    Sink(E),
}

/// Reads seed files (activity records, feed entries, plain address lists); lines that cannot be
/// read are logged and skipped.
pub fn read_seeds<E: std::error::Error + 'static>(paths: &[PathBuf]) -> Result<Seeds, SessionError<E>> {
    let mut seeds = Seeds::default();
    for path in paths {
        let text = std::fs::read_to_string(path).map_err(|source| io("cannot read seeds", path, source))?;
        let report = seeds.add_text(&text);
        for e in &report.errors {
            tracing::warn!(file = %path.display(), line = e.line, "seed line skipped: {}", e.reason);
        }
        if report.bad_lines > report.errors.len() {
            tracing::warn!(file = %path.display(), lines = report.bad_lines, "seed lines skipped in all");
        }
        tracing::info!(file = %path.display(), bots = report.bots, cnc = report.cnc, skipped = report.skipped, "seeds read");
    }
    if seeds.bot_count() + seeds.cnc_count() == 0 {
        return Err(SessionError::NoSeeds);
    }
    Ok(seeds)
}

fn io<E: std::error::Error + 'static>(what: &'static str, path: &Path, source: std::io::Error) -> SessionError<E> {
    SessionError::Io { what, path: path.to_path_buf(), source }
}

/// Candidates as records with their ids, ready for a sink.
fn records(candidates: Vec<CncCandidate>) -> Vec<Record> {
    candidates
        .into_iter()
        .map(|c| {
            let mut record = Record::Cnc(c);
            record.ensure_id();
            record
        })
        .collect()
}

/// Says what the windows dropped or skipped and why.
pub fn log_window_stats(windows: &Windows) {
    let s = &windows.stats;
    if s.bad_timestamp > 0 {
        tracing::warn!(
            flows = s.bad_timestamp,
            "flows stamped more than a day in the future (broken exporter clock) skipped"
        );
    }
    if s.late > 0 {
        tracing::warn!(
            flows = s.late,
            "flows for windows already closed and past --late dropped (input out of time order, or exporter \
             timeouts longer than --grace plus --late)"
        );
    }
    if s.revisions > 0 {
        tracing::info!(
            flows = s.late_kept,
            windows = s.revisions,
            "late flows added to closed windows, which were scored again (records sent again under the same ids)"
        );
    }
    if s.window.servers_over_limit > 0 {
        tracing::warn!(flows = s.window.servers_over_limit, "--max-servers reached: flows to further servers dropped");
    }
    if s.window.transit + s.window.internal > 0 {
        tracing::info!(
            transit = s.window.transit,
            internal = s.window.internal,
            "flows with no or both ends inside --subscribers skipped"
        );
    }
}

/// Says why nothing was reported, when nothing was.
fn explain(stats: &crate::detect::DetectStats, config: &DetectConfig) {
    if let Some(why) = stats.why_nothing(config) {
        tracing::warn!("no C&C candidate: {why}");
    }
}

/// Delivers each batch of candidates as it arrives; counts them.
async fn deliver<S: RecordSink>(
    rx: &mut tokio::sync::mpsc::Receiver<Vec<CncCandidate>>,
    sink: &mut S,
) -> Result<u64, SessionError<S::Error>> {
    let mut written = 0;
    while let Some(candidates) = rx.recv().await {
        let batch = records(candidates);
        written += batch.len() as u64;
        sink.put(&batch).await.map_err(SessionError::Sink)?;
    }
    Ok(written)
}
