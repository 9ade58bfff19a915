//! `botscope ingest`: JSON Lines files into the store, batch by batch.
//!
//! A batch is one transaction; its "committed batch" log event (debug level) is the
//! acknowledgement: what it covers survives a crash. Malformed lines are reported with file and
//! line number, skipped and counted.

mod args;
pub use args::*;

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use botscope_input::{BoundedLines, Line};
use botscope_model::{Kind, Record, parse_line};
use botscope_store::{AnyStore, PutSummary, Store};
use serde::Serialize;

use crate::config::Bounded;
use crate::settings::Settings;

/// New records from which a load is big enough to refresh the store's planner statistics.
const BULK_LOAD: u64 = 100_000;

/// Malformed lines shown per file; the rest are counted.
const SHOWN_PER_FILE: u64 = 50;

#[derive(Debug, Default, Serialize)]
struct FileSummary {
    file: String,
    lines: u64,
    records: u64,
    inserted: u64,
    duplicates: u64,
    skipped: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Default, Serialize)]
struct Totals {
    files: u64,
    lines: u64,
    records: u64,
    inserted: u64,
    duplicates: u64,
    skipped: u64,
    failed_files: u64,
}

/// One input, with standard input spooled to a file when it must be read twice.
struct Input {
    name: String,
    path: PathBuf,
    _spool: Option<tempfile::NamedTempFile>,
}

pub async fn run(args: IngestArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let batch_size = match args.batch_size {
        Some(n) => Bounded::<1, 100_000>::new(n).map_err(|e| anyhow::anyhow!("--batch-size: {e}"))?,
        None => settings.config.ingest.batch_size,
    }
    .get() as usize;
    let max_line = settings.config.ingest.max_line_bytes.get() as usize;
    if args.files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        bail!("standard input (-) can be named only once");
    }
    let inputs = prepare_inputs(&args.files, args.strict)?;
    if args.strict {
        check_all(&inputs, args.kind, max_line)?;
    }
    let store = settings.open_store().await?;
    let parallel = match args.parallel {
        Some(n) => Bounded::<1, 16>::new(n).map_err(|e| anyhow::anyhow!("--parallel: {e}"))?.get() as usize,
        None => store.concurrent_writers(),
    };
    tracing::info!(store = %store.describe(), files = inputs.len(), parallel, "ingest started");

    let mut summaries = Vec::new();
    for input in &inputs {
        let summary =
            load_file(&store, input, args.kind, (batch_size, parallel), max_line, settings.show_progress).await?;
        summaries.push(summary);
    }
    let totals = summaries.iter().fold(Totals::default(), |mut t, s| {
        t.files += 1;
        t.lines += s.lines;
        t.records += s.records;
        t.inserted += s.inserted;
        t.duplicates += s.duplicates;
        t.skipped += s.skipped;
        t.failed_files += u64::from(s.error.is_some());
        t
    });
    if totals.inserted >= BULK_LOAD {
        // Not fatal: everything is stored, and the database analyses by itself in time.
        if let Err(error) = store.refresh_statistics().await {
            tracing::warn!("the load is stored, but the store's statistics were not refreshed: {error}");
        }
    }
    print_summary(&summaries, &totals, args.json)?;
    Ok(if totals.failed_files > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn prepare_inputs(files: &[PathBuf], strict: bool) -> anyhow::Result<Vec<Input>> {
    files
        .iter()
        .map(|path| {
            if path.as_os_str() == "-" {
                let name = "<stdin>".to_string();
                if strict {
                    // --strict reads everything twice (check, then load); a pipe can be read once.
                    let mut spool = tempfile::NamedTempFile::new().context("cannot create a spool file for stdin")?;
                    std::io::copy(&mut std::io::stdin().lock(), spool.as_file_mut()).context("reading stdin")?;
                    spool.as_file_mut().flush()?;
                    return Ok(Input { name, path: spool.path().to_path_buf(), _spool: Some(spool) });
                }
                return Ok(Input { name, path: path.clone(), _spool: None });
            }
            Ok(Input { name: path.display().to_string(), path: path.clone(), _spool: None })
        })
        .collect()
}

/// First pass of --strict: every line of every file must parse, or nothing is written.
fn check_all(inputs: &[Input], kind: Option<Kind>, max_line: usize) -> anyhow::Result<()> {
    let mut bad = 0u64;
    for input in inputs {
        let reader = botscope_input::open(&input.path)?;
        let mut lines = BoundedLines::new(reader, max_line);
        while let Some((number, line)) = lines.next_line().with_context(|| format!("reading {}", input.name))? {
            if let Err(reason) = parse(line, kind) {
                bad += 1;
                if bad <= SHOWN_PER_FILE {
                    tracing::error!(file = %input.name, line = number, "{}:{number}: {reason}", input.name);
                }
            }
        }
    }
    if bad > 0 {
        bail!("{bad} malformed line(s); nothing was written (--strict)");
    }
    Ok(())
}

fn parse(line: Line<'_>, kind: Option<Kind>) -> Result<Option<Record>, String> {
    match line {
        Line::Text(text) => parse_line(text, kind).map_err(|e| e.to_string()),
        Line::TooLong { length } => Err(format!("line of {length} bytes exceeds ingest.max_line_bytes")),
    }
}

async fn load_file(
    store: &AnyStore,
    input: &Input,
    kind: Option<Kind>,
    (batch_size, parallel): (usize, usize),
    max_line: usize,
    show_progress: bool,
) -> anyhow::Result<FileSummary> {
    let mut summary = FileSummary { file: input.name.clone(), ..FileSummary::default() };
    let reader: Box<dyn BufRead + Send> = match botscope_input::open(&input.path) {
        Ok(reader) => reader,
        Err(error) => {
            tracing::error!("{error}");
            summary.error = Some(error.to_string());
            return Ok(summary);
        }
    };
    let bar = crate::progress::bytes(show_progress, botscope_input::plain_file_size(&input.path), input.name.clone());
    let mut lines = BoundedLines::new(reader, max_line);
    let mut commits = Commits::new(store, parallel);
    let mut batch: Vec<Record> = Vec::with_capacity(batch_size);
    loop {
        let next = match lines.next_line() {
            Ok(next) => next,
            Err(error) => {
                // Keep what was read before the damage: commit it, then report the file as failed.
                let message = format!("{}: read error after line {}: {error}", input.name, summary.lines);
                commits.start(std::mem::take(&mut batch), &mut summary).await?;
                commits.finish(&mut summary).await?;
                tracing::error!("{message}");
                summary.error = Some(message);
                bar.finish_and_clear();
                return Ok(summary);
            }
        };
        let Some((number, line)) = next else { break };
        summary.lines = number;
        match parse(line, kind) {
            Ok(Some(record)) => {
                summary.records += 1;
                batch.push(record);
            }
            Ok(None) => {}
            Err(reason) => {
                summary.skipped += 1;
                if summary.skipped <= SHOWN_PER_FILE {
                    tracing::warn!(file = %input.name, line = number, "{}:{number}: skipped: {reason}", input.name);
                } else if summary.skipped == SHOWN_PER_FILE + 1 {
                    tracing::warn!(file = %input.name, "further malformed lines in {} are counted, not shown", input.name);
                }
            }
        }
        if batch.len() >= batch_size {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
            commits.start(full, &mut summary).await?;
            bar.set_position(lines.bytes_read());
        }
    }
    commits.start(batch, &mut summary).await?;
    commits.finish(&mut summary).await?;
    bar.finish_and_clear();
    Ok(summary)
}

/// Batches being committed, oldest first. Reading and parsing the next batch overlaps the
/// commits of the previous ones, and on PostgreSQL up to `parallel` commit side by side (one
/// connection each): a sequential load kept the database busy less than half the time. A batch
/// is acknowledged ("committed batch", through its last line) only once every batch before it
/// has committed too, so an acknowledged line never has an uncommitted one before it.
struct Commits<'a> {
    store: &'a AnyStore,
    parallel: usize,
    pending: std::collections::VecDeque<Pending>,
}

struct Pending {
    through_line: u64,
    len: usize,
    task: tokio::task::JoinHandle<Result<PutSummary, botscope_store::StoreError>>,
}

/// Times a batch is tried when the database gives up on it for a conflict with another batch
/// committing at once (a deadlock or serialization failure), which a retry resolves.
const ATTEMPTS: u32 = 3;

impl<'a> Commits<'a> {
    fn new(store: &'a AnyStore, parallel: usize) -> Self {
        Commits { store, parallel: parallel.max(1), pending: std::collections::VecDeque::new() }
    }

    /// Starts committing `batch`, first waiting for the oldest commit if `parallel` are running.
    async fn start(&mut self, batch: Vec<Record>, summary: &mut FileSummary) -> anyhow::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        while self.pending.len() >= self.parallel {
            self.acknowledge_oldest(summary).await?;
        }
        let len = batch.len();
        let store = self.store.clone();
        let task = tokio::spawn(async move {
            let mut attempt = 1;
            loop {
                match store.put_records(&batch).await {
                    Err(error) if error.is_transient() && attempt < ATTEMPTS => attempt += 1,
                    done => return done,
                }
            }
        });
        self.pending.push_back(Pending { through_line: summary.lines, len, task });
        Ok(())
    }

    /// Waits for every commit started.
    async fn finish(&mut self, summary: &mut FileSummary) -> anyhow::Result<()> {
        while !self.pending.is_empty() {
            self.acknowledge_oldest(summary).await?;
        }
        Ok(())
    }

    async fn acknowledge_oldest(&mut self, summary: &mut FileSummary) -> anyhow::Result<()> {
        let Some(Pending { through_line, len, task }) = self.pending.pop_front() else { return Ok(()) };
        let result = task.await.context("a commit task failed")?;
        let PutSummary { inserted, duplicates } = match result {
            Ok(put) => put,
            Err(error) => {
                // What the later batches commit stands (records have stable ids: loading the
                // file again stores nothing twice); wait for them so that none is cut off.
                for later in self.pending.drain(..) {
                    let _ = later.task.await;
                }
                return Err(anyhow::Error::new(error)
                    .context(format!("{}: storing the batch ending at line {through_line}", summary.file)));
            }
        };
        summary.inserted += inserted;
        summary.duplicates += duplicates;
        tracing::debug!(
            file = %summary.file,
            through_line,
            batch = len,
            inserted,
            duplicates,
            committed = summary.inserted + summary.duplicates,
            "committed batch"
        );
        Ok(())
    }
}

fn print_summary(summaries: &[FileSummary], totals: &Totals, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        #[derive(Serialize)]
        struct Report<'a> {
            files: &'a [FileSummary],
            totals: &'a Totals,
        }
        serde_json::to_writer(&mut out, &Report { files: summaries, totals })?;
        writeln!(out)?;
        return Ok(());
    }
    for s in summaries {
        write!(
            out,
            "{}: {} lines, {} records ({} new, {} already stored), {} skipped",
            s.file, s.lines, s.records, s.inserted, s.duplicates, s.skipped
        )?;
        match &s.error {
            Some(error) => writeln!(out, "; FAILED: {error}")?,
            None => writeln!(out)?,
        }
    }
    if summaries.len() > 1 {
        writeln!(
            out,
            "total: {} files, {} lines, {} records ({} new, {} already stored), {} skipped",
            totals.files, totals.lines, totals.records, totals.inserted, totals.duplicates, totals.skipped
        )?;
    }
    Ok(())
}
