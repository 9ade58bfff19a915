//! A run's progress on disk, so a killed survey resumes where it stopped: a header naming the run,
//! the port stage's open pairs once it is complete, then one line per finished host. Written line
//! by line, so a killed run loses at most the hosts in flight; a line cut by a crash is the last
//! one and is ignored.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};

use crate::catalog::PortEntry;
use crate::engine::Resume;
use crate::scope::Scope;
use crate::targets::Target;

/// A checkpoint file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// It could not be read or written.
    #[error("checkpoint {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A line before the last is not a checkpoint line.
    #[error("{}:{line}: not a checkpoint line", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
    },
    /// It was written by a run with another scope, ports, seed or shard.
    #[error("{} belongs to another run (scope, ports, seed or shard differ); use a new checkpoint file", path.display())]
    OtherRun {
        /// The file.
        path: PathBuf,
    },
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    Run(String),
    Open(Vec<String>),
    Done(Ipv4Addr),
}

/// An open checkpoint, appended to as the run goes.
pub struct Checkpoint {
    file: std::fs::File,
    path: PathBuf,
}

/// What identifies a run: resuming another run's checkpoint would skip hosts it never surveyed.
pub fn run_key(scope: &Scope, ports: &[PortEntry], seed: u64, shard: (u64, u64)) -> String {
    format!(
        "scope={};ports={};seed={seed};shard={}/{}",
        scope.targets().intervals().iter().map(|i| i.to_string()).collect::<Vec<_>>().join(","),
        ports.iter().map(|p| format!("{}/{}", p.port, p.protocol.as_str())).collect::<Vec<_>>().join(","),
        shard.0 + 1,
        shard.1
    )
}

impl Checkpoint {
    /// Opens `path` for the run `run_key`: a new file is started; an existing one of the same run
    /// says what to skip.
    pub fn open(path: &Path, run_key: &str) -> Result<(Checkpoint, Resume), CheckpointError> {
        let io = |source| CheckpointError::Io { path: path.to_path_buf(), source };
        let mut resume = Resume::default();
        let existing = match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => return Err(io(error)),
        };
        if let Some(text) = existing.filter(|t| !t.trim().is_empty()) {
            let lines = text.lines().count();
            for (number, line) in text.lines().enumerate() {
                let Ok(entry) = serde_json::from_str::<Line>(line) else {
                    if number + 1 != lines {
                        return Err(CheckpointError::Damaged { path: path.to_path_buf(), line: number + 1 });
                    }
                    break;
                };
                match entry {
                    Line::Run(key) if key != run_key => {
                        return Err(CheckpointError::OtherRun { path: path.to_path_buf() });
                    }
                    Line::Run(_) => {}
                    Line::Open(pairs) => {
                        let mut open = Vec::with_capacity(pairs.len());
                        for pair in pairs {
                            let addr: SocketAddrV4 = pair
                                .parse()
                                .map_err(|_| CheckpointError::Damaged { path: path.to_path_buf(), line: number + 1 })?;
                            open.push(Target { ip: *addr.ip(), port: addr.port() });
                        }
                        resume.open = Some(open);
                    }
                    Line::Done(ip) => {
                        resume.done.insert(ip);
                    }
                }
            }
            let mut file = std::fs::OpenOptions::new().append(true).open(path).map_err(io)?;
            // A line cut by a crash is dropped, so the next line does not continue it; a whole
            // last line that only lacks its newline is kept and ended.
            let whole = text.rfind('\n').map_or(0, |at| at + 1);
            if whole < text.len() {
                if serde_json::from_str::<Line>(&text[whole..]).is_ok() {
                    file.write_all(b"\n").map_err(io)?;
                } else {
                    file.set_len(whole as u64).map_err(io)?;
                }
            }
            return Ok((Checkpoint { file, path: path.to_path_buf() }, resume));
        }
        let file = std::fs::File::create(path).map_err(io)?;
        let mut checkpoint = Checkpoint { file, path: path.to_path_buf() };
        checkpoint.write(&Line::Run(run_key.to_string()))?;
        Ok((checkpoint, resume))
    }

    fn write(&mut self, line: &Line) -> Result<(), CheckpointError> {
        let mut text = serde_json::to_string(line).unwrap_or_default();
        text.push('\n');
        self.file.write_all(text.as_bytes()).map_err(|source| CheckpointError::Io { path: self.path.clone(), source })
    }

    /// The port stage is complete with these open pairs.
    pub fn port_stage_done(&mut self, open: &[Target]) -> Result<(), CheckpointError> {
        self.write(&Line::Open(open.iter().map(|t| format!("{}:{}", t.ip, t.port)).collect()))
    }

    /// Every record of `ip` is delivered.
    pub fn host_done(&mut self, ip: Ipv4Addr) -> Result<(), CheckpointError> {
        self.write(&Line::Done(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_resumes_its_own_run_and_refuses_another() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.checkpoint");
        let (mut checkpoint, resume) = Checkpoint::open(&path, "run-a").unwrap();
        assert!(resume.open.is_none() && resume.done.is_empty());
        checkpoint.port_stage_done(&[Target { ip: Ipv4Addr::new(127, 0, 0, 9), port: 23 }]).unwrap();
        checkpoint.host_done(Ipv4Addr::new(127, 0, 0, 9)).unwrap();
        drop(checkpoint);
        // A line cut by a crash at the end is ignored.
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"done\":\"127.0.").unwrap();
        let (mut checkpoint, resume) = Checkpoint::open(&path, "run-a").unwrap();
        assert_eq!(resume.open.map(|o| o.len()), Some(1));
        assert!(resume.done.contains(&Ipv4Addr::new(127, 0, 0, 9)));
        checkpoint.host_done(Ipv4Addr::new(127, 0, 0, 10)).unwrap();
        drop(checkpoint);
        assert!(matches!(Checkpoint::open(&path, "run-b"), Err(CheckpointError::OtherRun { .. })));
        // regression: the line written after a cut one used to continue it and damage the file.
        let (_, resume) = Checkpoint::open(&path, "run-a").unwrap();
        assert_eq!(resume.done.len(), 2);
        // A whole last line without its newline counts, and stays when the next is appended.
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"done\":\"127.0.0.11\"}").unwrap();
        let (mut checkpoint, resume) = Checkpoint::open(&path, "run-a").unwrap();
        assert_eq!(resume.done.len(), 3);
        checkpoint.host_done(Ipv4Addr::new(127, 0, 0, 12)).unwrap();
        let (_, resume) = Checkpoint::open(&path, "run-a").unwrap();
        assert_eq!(resume.done.len(), 4);
    }
}
