//! Test helpers shared by botscope's crates.
//!
//! [`PgCluster`] starts a real, throw-away PostgreSQL server from Debian's `initdb` and `pg_ctl`,
//! listening only on 127.0.0.1 at a free port, and removes it when dropped.
//!
//! [`records::week`] is a seeded week of records for tests that compute one figure two ways.
//!
//! Boundaries: for tests only; every server it starts listens on 127.0.0.1.
#![deny(missing_docs)]

pub mod records;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};

/// A PostgreSQL cluster living in a temporary directory for the length of a test.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    run_as: Option<String>,
}

/// Superuser of the throw-away cluster (trust authentication; it only listens on loopback).
const SUPERUSER: &str = "botscope";

impl PgCluster {
    /// Creates and starts a cluster.
    ///
    /// Finds the server binaries in `$BOTSCOPE_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`.
    /// PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user.
    /// Panics with a message saying what to install when PostgreSQL is missing: the suite must
    /// really run against PostgreSQL, never skip it silently.
    pub fn start() -> PgCluster {
        let bin = find_bin_dir().unwrap_or_else(|| {
            panic!(
                "PostgreSQL server binaries not found: install Debian's `postgresql` package \
                 (scripts/test does) or set BOTSCOPE_PG_BIN to the directory holding initdb and pg_ctl"
            )
        });
        let run_as = is_root().then(|| "postgres".to_string());
        let dir = tempfile::Builder::new().prefix("botscope-pg-").tempdir().expect("temporary directory");
        if let Some(user) = &run_as {
            run(Command::new("chown").arg(format!("{user}:")).arg(dir.path()), "chown");
        }
        let cluster = PgCluster { port: free_loopback_port(), dir, bin, run_as };
        let data = cluster.data_dir();
        cluster.pg("initdb", |c| {
            c.arg("-D").arg(&data).args([
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ]);
        });
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c full_page_writes=off -c max_connections=200",
            cluster.port,
            cluster.dir.path().display()
        );
        let log = cluster.dir.path().join("server.log");
        cluster.pg("pg_ctl", |c| {
            c.arg("-D").arg(&data).arg("-l").arg(&log).arg("-o").arg(&options).args(["-w", "-t", "60", "start"]);
        });
        cluster
    }

    /// Stops the server at once (as a crash or an operator would), keeping its files.
    pub fn stop(&self) {
        self.pg("pg_ctl", |c| {
            c.arg("-D").arg(self.data_dir()).args(["-m", "immediate", "-w", "stop"]);
        });
    }

    /// The cluster's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for the `postgres` database.
    pub fn url(&self) -> String {
        self.database_url("postgres")
    }

    /// A URL for database `name` (which must exist).
    pub fn database_url(&self, name: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates an empty database and returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "plain names only");
        let port = self.port.to_string();
        let sql = format!("CREATE DATABASE {name}");
        self.pg("psql", |c| {
            c.args(["-h", "127.0.0.1", "-p", &port, "-U", SUPERUSER, "-d", "postgres", "-q", "-c", &sql]);
        });
        self.database_url(name)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A PostgreSQL tool from the cluster's bin directory, run as the cluster's owner.
    fn tool(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        let program = if program.exists() { program } else { PathBuf::from(tool) };
        let mut command = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(program);
                c
            }
            None => Command::new(program),
        };
        command.current_dir(self.dir.path());
        command
    }

    fn pg(&self, tool: &str, configure: impl FnOnce(&mut Command)) -> Output {
        let mut command = self.tool(tool);
        configure(&mut command);
        run(&mut command, tool)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Best effort: a failed stop must not turn a passing test into a panic during unwinding.
        let _ = self.tool("pg_ctl").arg("-D").arg(self.data_dir()).args(["-m", "immediate", "-w", "stop"]).output();
    }
}

fn run(command: &mut Command, what: &str) -> Output {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn find_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("BOTSCOPE_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.trim_ascii() == b"0").unwrap_or(false)
}

/// A port free on 127.0.0.1 right now (the OS picks it).
pub fn free_loopback_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("bind 127.0.0.1:0")
}
