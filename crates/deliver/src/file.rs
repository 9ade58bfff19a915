//! Records as JSON lines into a file or standard output (`-`), flushed after every batch so a
//! reader following the file sees whole lines as they come.

use std::io::Write;
use std::path::{Path, PathBuf};

use botscope_model::Record;

use botscope_model::RecordSink;

use crate::error::DeliverError;

/// A JSON-lines file (or standard output) as a sink.
pub struct FileSink {
    out: Box<dyn Write + Send>,
    path: PathBuf,
    /// Records written.
    pub written: u64,
}

impl FileSink {
    /// Creates (truncates) `path`; `-` is standard output.
    pub fn create(path: &Path) -> Result<FileSink, DeliverError> {
        let out: Box<dyn Write + Send> = if path == Path::new("-") {
            Box::new(std::io::BufWriter::new(std::io::stdout()))
        } else {
            let file = std::fs::File::create(path).map_err(|source| DeliverError::Io {
                what: "cannot create",
                path: path.to_path_buf(),
                source,
            })?;
            Box::new(std::io::BufWriter::new(file))
        };
        Ok(FileSink { out, path: path.to_path_buf(), written: 0 })
    }

    /// Appends to `path` (creating it): a resumed run adds to what it wrote before.
    pub fn append(path: &Path) -> Result<FileSink, DeliverError> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(|source| DeliverError::Io { what: "cannot open", path: path.to_path_buf(), source })?;
        Ok(FileSink { out: Box::new(std::io::BufWriter::new(file)), path: path.to_path_buf(), written: 0 })
    }

    fn write(&mut self, records: &[Record]) -> std::io::Result<()> {
        for record in records {
            self.out.write_all(record.to_json_line().as_bytes())?;
            self.out.write_all(b"\n")?;
        }
        self.out.flush()
    }
}

impl RecordSink for FileSink {
    type Error = DeliverError;

    async fn put(&mut self, records: &[Record]) -> Result<(), DeliverError> {
        self.write(records).map_err(|source| DeliverError::Io {
            what: "cannot write",
            path: self.path.clone(),
            source,
        })?;
        self.written += records.len() as u64;
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), DeliverError> {
        self.out.flush().map_err(|source| DeliverError::Io { what: "cannot write", path: self.path.clone(), source })
    }
}
