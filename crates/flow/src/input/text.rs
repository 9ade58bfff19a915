//! Line reading with a length bound shared by the text formats.

use std::io::BufRead;

use super::{InputError, InputReport};
use crate::flow::Flow;

pub(crate) struct Lines<'a> {
    input: &'a mut dyn BufRead,
    max: usize,
    buffer: Vec<u8>,
    text: String,
    number: u64,
    pending_first: bool,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(input: &'a mut dyn BufRead, max: usize) -> Self {
        Lines { input, max, buffer: Vec::new(), text: String::new(), number: 0, pending_first: false }
    }

    /// Reads the first non-empty line and keeps it for the next `next_line`.
    pub(crate) fn peek_first(&mut self) -> Result<Option<String>, InputError> {
        let mut scratch = InputReport::default();
        loop {
            match self.read_one(&mut scratch)? {
                None => return Ok(None),
                Some(_) if self.text.trim().is_empty() => continue,
                Some(_) => {
                    self.pending_first = true;
                    return Ok(Some(self.text.clone()));
                }
            }
        }
    }

    /// The next line (without its end of line) and its number; over-long or non-UTF-8 lines are
    /// counted as bad and skipped.
    pub(crate) fn next_line(&mut self, report: &mut InputReport) -> Result<Option<(u64, &str)>, InputError> {
        if self.pending_first {
            self.pending_first = false;
            return Ok(Some((self.number, &self.text)));
        }
        match self.read_one(report)? {
            None => Ok(None),
            Some(n) => Ok(Some((n, &self.text))),
        }
    }

    fn read_one(&mut self, report: &mut InputReport) -> Result<Option<u64>, InputError> {
        loop {
            self.buffer.clear();
            let mut too_long = false;
            loop {
                let chunk = self.input.fill_buf()?;
                if chunk.is_empty() {
                    break;
                }
                let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
                    Some(at) => (at + 1, true),
                    None => (chunk.len(), false),
                };
                if self.buffer.len() + take <= self.max {
                    self.buffer.extend_from_slice(&chunk[..take]);
                } else {
                    too_long = true;
                }
                self.input.consume(take);
                if done {
                    break;
                }
            }
            if self.buffer.is_empty() && !too_long {
                return Ok(None);
            }
            self.number += 1;
            if too_long {
                report.bad(self.number, format!("line longer than {} bytes", self.max));
                continue;
            }
            while matches!(self.buffer.last(), Some(b'\n' | b'\r')) {
                self.buffer.pop();
            }
            match std::str::from_utf8(&self.buffer) {
                Ok(s) => {
                    self.text.clear();
                    self.text.push_str(s);
                    return Ok(Some(self.number));
                }
                Err(_) => report.bad(self.number, "not UTF-8"),
            }
        }
    }
}

/// A CSV row read by header names.
pub(crate) struct Row<'a> {
    names: &'a [String],
    fields: Vec<&'a str>,
}

impl<'a> Row<'a> {
    pub(crate) fn new(names: &'a [String], line: &'a str) -> Self {
        Row { names, fields: line.split(',').collect() }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&'a str> {
        let i = self.names.iter().position(|n| n == name)?;
        self.fields.get(i).map(|s| s.trim())
    }

    pub(crate) fn field(&self, name: &str) -> Result<&'a str, String> {
        self.get(name).ok_or_else(|| format!("missing {name}"))
    }
}

/// Turns one CSV row into a flow and whether its source is the initiator.
pub(crate) type RowToFlow<'f> = &'f dyn Fn(&Row<'_>) -> Result<(Flow, bool), String>;

/// Reads CSV with a header line naming its columns: checks that `required` are there, then turns
/// each data line into a flow with `row` until `end` says the data is over. `what` names the
/// format in errors.
pub(crate) fn read_csv(
    lines: &mut Lines<'_>,
    report: &mut InputReport,
    what: &str,
    required: &[&str],
    end: &dyn Fn(&str) -> bool,
    row: RowToFlow<'_>,
    emit: &mut dyn FnMut(Flow, bool),
) -> Result<(), InputError> {
    let mut header: Option<Vec<String>> = None;
    while let Some((number, line)) = lines.next_line(report)? {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if end(line) {
            break;
        }
        let Some(names) = &header else {
            let names: Vec<String> = line.split(',').map(|s| s.trim().to_string()).collect();
            if let Some(missing) = required.iter().find(|need| !names.iter().any(|n| n == *need)) {
                return Err(InputError::Header(format!("{what} header lacks the {missing} column")));
            }
            header = Some(names);
            continue;
        };
        match row(&Row::new(names, line)) {
            Ok((flow, initiator_known)) => {
                report.flows += 1;
                emit(flow, initiator_known);
            }
            Err(reason) => report.bad(number, reason),
        }
    }
    Ok(())
}
