//! The survey as a session a program drives: the engine's records go to a [`RecordSink`] in
//! batches, login attempts to the audit trail, progress to a [`Checkpoint`] once a host's records
//! are delivered, and a re-survey's cases get their verdicts at the end. The `survey` command turns
//! its arguments into a [`SessionConfig`]; the demo and the tests call [`run`] the same way.

use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use botscope_model::{IspHandles, Record, RecordSink};
use tokio::sync::mpsc;

use crate::SurveyError;
use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::engine::{self, Output, Progress, Resume, Summary};
use crate::recheck::{Case, Seen, Verdicts};
use crate::scope::Scope;

/// Records delivered per batch (one store transaction).
const BATCH: usize = 500;
/// A batch older than this is delivered at the next finished host, so a reader following the
/// output sees records while a long survey runs.
const BATCH_AGE: Duration = Duration::from_secs(2);

/// Names the ISPs an address belongs to, when a routing table is at hand.
pub type Attribute = Box<dyn Fn(IpAddr) -> Option<IspHandles> + Send>;

/// A survey session's configuration.
pub struct SessionConfig {
    /// What may be touched (already narrowed to the cases for a re-survey).
    pub scope: Scope,
    /// Ports, dictionary, identification, pace and limits.
    pub engine: engine::Config,
    /// A re-survey's cases inside the scope; their verdicts are delivered at the end.
    pub cases: Option<Vec<Case>>,
    /// Cases left out because they lie outside the scope (for the summary).
    pub cases_outside_scope: u64,
    /// Where progress is kept, with what an earlier run of the same survey already did.
    pub checkpoint: Option<(Checkpoint, Resume)>,
    /// The audit trail of login attempts (one JSON line each).
    pub audit: Option<Box<dyn Write + Send>>,
    /// Names each finding's ISPs.
    pub attribute: Option<Attribute>,
    /// Set to stop after the conversations in flight.
    pub stop: Arc<AtomicBool>,
    /// Counters for whoever shows progress.
    pub progress: Arc<Progress>,
}

/// What a session did.
#[derive(Debug)]
pub struct SessionReport {
    /// The engine's summary.
    pub summary: Summary,
    /// A re-survey's verdicts (the outcomes are delivered too).
    pub verdicts: Option<Verdicts>,
}

/// Why a session stopped.
#[derive(Debug, thiserror::Error)]
pub enum SessionError<E: std::error::Error + 'static> {
    /// The survey could not run.
    #[error(transparent)]
    Survey(#[from] SurveyError),
    /// The checkpoint could not be written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The audit trail could not be written.
    #[error("cannot write the audit trail: {0}")]
    Audit(std::io::Error),
    /// The engine's task panicked (a bug; the records already delivered stand).
    #[error("the survey task failed")]
    Worker,
    /// The sink refused the records.
    #[error(transparent)]
    Sink(E),
}

/// Runs the survey, delivering every record to `sink`.
pub async fn run<S: RecordSink>(config: SessionConfig, sink: &mut S) -> Result<SessionReport, SessionError<S::Error>> {
    let SessionConfig { scope, engine, cases, cases_outside_scope, checkpoint, mut audit, attribute, stop, progress } =
        config;
    let (mut checkpoint, resume) = match checkpoint {
        Some((checkpoint, resume)) => (Some(checkpoint), resume),
        None => (None, Resume::default()),
    };
    let mut seen = Seen::default();
    if let Some(open) = &resume.open {
        // The port stage of an earlier run of this survey: it is not run (nor reported) again.
        seen.port_stage_done(open);
    }
    let (tx, mut rx) = mpsc::channel::<Output>(1024);
    let survey = tokio::spawn({
        let stop = stop.clone();
        async move { engine::run(&scope, engine, tx, progress, stop, resume).await }
    });
    let delivered = async {
        let mut batch: Vec<Record> = Vec::new();
        let mut batch_started = Instant::now();
        while let Some(item) = rx.recv().await {
            match item {
                Output::Record(mut record) => {
                    seen.record(&record);
                    if let (Some(attribute), Record::Finding(finding)) = (&attribute, record.as_mut())
                        && let Some(isps) = attribute(finding.ip)
                    {
                        finding.isp = Some(isps);
                    }
                    if batch.is_empty() {
                        batch_started = Instant::now();
                    }
                    batch.push(*record);
                    if batch.len() >= BATCH {
                        sink.put(&batch).await.map_err(SessionError::Sink)?;
                        batch.clear();
                    }
                }
                Output::Audit(entry) => {
                    if let Some(audit) = audit.as_mut() {
                        let mut line = serde_json::to_vec(&entry).unwrap_or_default();
                        line.push(b'\n');
                        audit.write_all(&line).map_err(SessionError::Audit)?;
                    }
                }
                Output::PortStageDone(open) => {
                    seen.port_stage_done(&open);
                    if let Some(checkpoint) = checkpoint.as_mut() {
                        checkpoint.port_stage_done(&open)?;
                    }
                }
                Output::HostDone(ip) => {
                    seen.host_done(ip);
                    // The host's records are delivered (and the audit flushed) before the
                    // checkpoint says it is done.
                    if checkpoint.is_some() || (!batch.is_empty() && batch_started.elapsed() >= BATCH_AGE) {
                        sink.put(&batch).await.map_err(SessionError::Sink)?;
                        batch.clear();
                    }
                    if let Some(checkpoint) = checkpoint.as_mut() {
                        if let Some(audit) = audit.as_mut() {
                            audit.flush().map_err(SessionError::Audit)?;
                        }
                        checkpoint.host_done(ip)?;
                    }
                }
            }
        }
        Ok::<_, SessionError<S::Error>>(batch)
    }
    .await;
    if delivered.is_err() {
        // Nothing more can be delivered: stop probing.
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    drop(rx);
    let finished = survey.await;
    let mut batch = delivered?;
    // Verdicts only from a run that ended well: a failed engine proves nothing about the cases.
    let mut summary = match finished {
        Ok(Ok(summary)) => summary,
        failed => {
            sink.put(&batch).await.map_err(SessionError::Sink)?;
            return Err(match failed {
                Ok(Err(error)) => SessionError::Survey(error),
                _ => SessionError::Worker,
            });
        }
    };
    summary.cases_outside_scope = cases_outside_scope;
    let verdicts = cases.as_ref().map(|cases| seen.verdicts(cases, chrono::Utc::now()));
    if let Some(verdicts) = &verdicts {
        batch.extend(verdicts.outcomes.iter().cloned());
    }
    sink.put(&batch).await.map_err(SessionError::Sink)?;
    if let Some(audit) = audit.as_mut() {
        audit.flush().map_err(SessionError::Audit)?;
    }
    if let (Some(verdicts), Some(cases)) = (&verdicts, &cases) {
        tracing::info!(
            cases = cases.len(),
            fixed = verdicts.fixed(),
            not_fixed = verdicts.outcomes.len() - verdicts.fixed(),
            unreachable = verdicts.unreachable,
            not_judged = verdicts.not_judged,
            outside_scope = cases_outside_scope,
            "re-survey verdicts"
        );
    }
    Ok(SessionReport { summary, verdicts })
}
