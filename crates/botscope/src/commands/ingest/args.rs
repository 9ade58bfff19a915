//! The `botscope ingest` command line: every flag it takes, with its help and examples.

use botscope_model::Kind;
use clap::Args;
use std::path::PathBuf;

pub const INGEST_ABOUT: &str = "Load record files (JSON Lines) into the store.

Each line is one record (finding, activity, cnc, botnet, botnet_window, notification, outcome, isp, service, darknet_day, feed_entry or liveness; see docs/formats.md). \
The kind comes from the record's \"kind\" field, or from --kind for files without one. Records are \
committed in batches, one transaction each; a batch reported as committed survives a crash. Records \
have stable ids, so loading the same file twice stores each record once.

A malformed line is reported with its file and line number, skipped and counted; with --strict \
the first pass checks every line and nothing is written if any is malformed.";

pub const INGEST_EXAMPLES: &str = "\
Examples:
  botscope ingest findings-2026-11.jsonl activity-*.jsonl
  zcat survey.jsonl.gz | botscope ingest -            # gzip is also read directly
  botscope ingest --kind cnc --strict cnc.jsonl       # lines without \"kind\"; all or nothing
  botscope ingest --json day.jsonl | jq .totals";

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Files to load (JSON Lines, plain or gzip); - reads standard input
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Kind of every record: lines without a "kind" field are read as this, lines naming another
    /// kind are rejected
    #[arg(long, value_name = "KIND", value_parser = parse_kind)]
    pub kind: Option<Kind>,

    /// Treat any malformed line as fatal: check every file first and write nothing if one fails
    #[arg(long)]
    pub strict: bool,

    /// Records per transaction [default: ingest.batch_size, else 1000]
    #[arg(long, value_name = "N")]
    pub batch_size: Option<u64>,

    /// Batches committed at once [default: 2 on PostgreSQL, 1 on SQLite, which has one writer].
    /// Reading the next batch always overlaps the commits; a batch is acknowledged only after
    /// every batch before it
    #[arg(long, value_name = "N")]
    pub parallel: Option<u64>,

    /// Print the summary as one JSON object instead of text
    #[arg(long)]
    pub json: bool,
}

fn parse_kind(text: &str) -> Result<Kind, String> {
    text.parse()
}
