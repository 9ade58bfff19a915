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
use botscope_store::{PutSummary, Store};
use serde::Serialize;

use crate::config::Bounded;
use crate::settings::Settings;

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
    tracing::info!(store = %store.describe(), files = inputs.len(), "ingest started");

    let mut summaries = Vec::new();
    for input in &inputs {
        let summary = load_file(&store, input, args.kind, batch_size, max_line, settings.show_progress).await?;
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
    store: &impl Store,
    input: &Input,
    kind: Option<Kind>,
    batch_size: usize,
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
    let mut batch: Vec<Record> = Vec::with_capacity(batch_size);
    loop {
        let next = match lines.next_line() {
            Ok(next) => next,
            Err(error) => {
                // Keep what was read before the damage: commit it, then report the file as failed.
                let message = format!("{}: read error after line {}: {error}", input.name, summary.lines);
                commit(store, &mut batch, &mut summary).await?;
                tracing::error!("{message}");
                summary.error = Some(message);
                break;
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
            commit(store, &mut batch, &mut summary).await?;
            bar.set_position(lines.bytes_read());
        }
    }
    commit(store, &mut batch, &mut summary).await?;
    bar.finish_and_clear();
    Ok(summary)
}

async fn commit(store: &impl Store, batch: &mut Vec<Record>, summary: &mut FileSummary) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let PutSummary { inserted, duplicates } = store
        .put_records(batch)
        .await
        .with_context(|| format!("{}: storing the batch ending at line {}", summary.file, summary.lines))?;
    summary.inserted += inserted;
    summary.duplicates += duplicates;
    tracing::debug!(
        file = %summary.file,
        through_line = summary.lines,
        batch = batch.len(),
        inserted,
        duplicates,
        committed = summary.inserted + summary.duplicates,
        "committed batch"
    );
    batch.clear();
    Ok(())
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
