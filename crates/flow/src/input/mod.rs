//! Flow files users already have: Zeek conn.log (TSV or CSV), Argus binetflow (CTU-13), nfdump
//! CSV output, and botscope's own JSON lines.
//!
//! A reader hands each flow to a callback together with whether the file knows which end opened
//! the connection (Zeek and Argus do). Lines that cannot be read are counted with the first few
//! reasons kept; a file in none of the formats is an error.

mod argus;
mod nfdump;
mod text;
mod zeek;

use std::io::BufRead;

use serde::Serialize;

use crate::flow::{Flow, FlowLine};

/// A flow file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Decide from the first line.
    Auto,
    /// botscope's flow JSON lines.
    Jsonl,
    /// Zeek conn.log, TSV with `#fields` or CSV with a header.
    Zeek,
    /// Argus binetflow CSV (CTU-13).
    Argus,
    /// `nfdump -o csv`.
    NfdumpCsv,
}

/// A format name that is not one of [`Format`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown flow file format {0:?} (auto, jsonl, zeek, argus, nfdump-csv)")]
pub struct UnknownFormat(pub String);

impl std::str::FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, UnknownFormat> {
        match s {
            "auto" => Ok(Format::Auto),
            "jsonl" | "json" => Ok(Format::Jsonl),
            "zeek" => Ok(Format::Zeek),
            "argus" | "binetflow" => Ok(Format::Argus),
            "nfdump-csv" | "nfdump" => Ok(Format::NfdumpCsv),
            _ => Err(UnknownFormat(s.to_string())),
        }
    }
}

/// What reading a file found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InputReport {
    /// Flows read.
    pub flows: u64,
    /// Lines skipped as unreadable.
    pub bad_lines: u64,
    /// The first few reasons, with 1-based line numbers.
    pub errors: Vec<(u64, String)>,
}

impl InputReport {
    fn bad(&mut self, line: u64, reason: impl Into<String>) {
        self.bad_lines += 1;
        if self.errors.len() < 5 {
            self.errors.push((line, reason.into()));
        }
    }
}

/// Why a file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Reading failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The format could not be recognised.
    #[error("not a flow file botscope knows (first line: {0:?}); give --format")]
    Unrecognised(String),
    /// A header the format needs is missing or lacks a column.
    #[error("{0}")]
    Header(String),
}

/// Lines longer than this are unreadable, not a reason to grow without bound.
const MAX_LINE: usize = 64 * 1024;

/// Guesses the format from the first non-empty line.
pub fn sniff(first_line: &str) -> Option<Format> {
    let line = first_line.trim_start_matches('\u{feff}').trim();
    if line.starts_with('{') {
        Some(Format::Jsonl)
    } else if line.starts_with("#separator") || line.starts_with("#fields") || line.contains("id.orig_h") {
        Some(Format::Zeek)
    } else if line.contains("StartTime") && line.contains("SrcAddr") {
        Some(Format::Argus)
    } else if line.starts_with("ts,te,td") || line.starts_with("ts,te,") {
        Some(Format::NfdumpCsv)
    } else {
        None
    }
}

/// Reads flows from `input`, calling `emit(flow, initiator_known)` for each.
pub fn read(
    mut input: impl BufRead,
    format: Format,
    emit: &mut dyn FnMut(Flow, bool),
) -> Result<InputReport, InputError> {
    let mut lines = text::Lines::new(&mut input, MAX_LINE);
    let mut report = InputReport::default();
    let Some(first) = lines.peek_first()? else {
        return Ok(report);
    };
    let format = match format {
        Format::Auto => sniff(&first).ok_or_else(|| InputError::Unrecognised(first.chars().take(80).collect()))?,
        other => other,
    };
    match format {
        Format::Jsonl | Format::Auto => jsonl(&mut lines, &mut report, emit)?,
        Format::Zeek => zeek::read(&mut lines, &mut report, emit)?,
        Format::Argus => argus::read(&mut lines, &mut report, emit)?,
        Format::NfdumpCsv => nfdump::read(&mut lines, &mut report, emit)?,
    }
    Ok(report)
}

fn jsonl(
    lines: &mut text::Lines<'_>,
    report: &mut InputReport,
    emit: &mut dyn FnMut(Flow, bool),
) -> Result<(), InputError> {
    while let Some((number, line)) = lines.next_line(report)? {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<FlowLine>(line)
            .map_err(|e| e.to_string())
            .and_then(|l| l.to_flow().map_err(|e| e.to_string()))
        {
            Ok(flow) => {
                report.flows += 1;
                emit(flow, false)
            }
            Err(e) => report.bad(number, e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
