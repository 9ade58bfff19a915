//! `botscope.toml`: every key, its default and its bounds. `docs/configuration.md` documents the
//! same keys; `botscope config check` prints the effective values.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// The whole configuration file. Unknown keys are errors, so a typo never silently falls back to a
/// default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where records are kept.
    #[serde(default)]
    pub store: StoreConfig,
    /// What is logged and how.
    #[serde(default)]
    pub log: LogConfig,
    /// How `botscope ingest` reads and commits.
    #[serde(default)]
    pub ingest: IngestConfig,
    /// How `botscope serve` runs; its flags override these.
    #[serde(default)]
    pub serve: ServeConfig,
    /// The async runtime every command runs on.
    #[serde(default)]
    pub runtime: RuntimeConfig,
}

/// `[serve]`: the centre's settings that are also flags of `botscope serve` (a flag wins).
/// Durations are text: a number and `s`, `m`, `h` or `d`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Address and port to listen on.
    pub listen: String,
    /// Run correlation this often (`0s`: never).
    pub correlate_every: String,
    /// The correlation window.
    pub window: String,
    /// How long after a window's end correlation waits for late reports.
    pub settle: String,
    /// Earlier windows a botnet may be matched across.
    pub lookback: Bounded<1, 1000>,
    /// Largest request body in MiB.
    pub max_body_mib: Bounded<1, 1024>,
    /// Ingest batches in hand before new ones get 503.
    pub max_waiting: Bounded<1, 100_000>,
    /// Time a client has to send a request's head.
    pub header_timeout: String,
    /// Connections served at once.
    pub max_connections: Bounded<1, 1_000_000>,
    /// How long the status of a TAXII POST can be read.
    pub taxii_status_ttl: String,
    /// TAXII POST statuses held in all.
    pub taxii_statuses: Bounded<1, 1_000_000>,
    /// TAXII POST statuses held per token.
    pub taxii_statuses_per_token: Bounded<1, 1_000_000>,
    /// Header in which a trusted reverse proxy passes the visitor's address.
    pub client_ip_header: Option<String>,
    /// Proxies (CIDR or address) whose `client_ip_header` is believed.
    pub trusted_proxies: Vec<String>,
    /// Days the self-check page looks back.
    pub check_days: Bounded<1, 366>,
    /// Self-check answers per visitor address and minute.
    pub check_rate: Bounded<1, 10_000>,
    /// Mark sign-in cookies Secure (the pages are reached over HTTPS).
    pub secure_cookies: bool,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: "127.0.0.1:8080".into(),
            correlate_every: "10m".into(),
            window: "1d".into(),
            settle: "1h".into(),
            lookback: Bounded(7),
            max_body_mib: Bounded(16),
            max_waiting: Bounded(64),
            header_timeout: "10s".into(),
            max_connections: Bounded(1024),
            taxii_status_ttl: "1d".into(),
            taxii_statuses: Bounded(10_000),
            taxii_statuses_per_token: Bounded(1_000),
            client_ip_header: None,
            trusted_proxies: Vec::new(),
            check_days: Bounded(30),
            check_rate: Bounded(20),
            secure_cookies: false,
        }
    }
}

/// `[runtime]`
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Worker threads of the async runtime; 0 means one per core.
    pub workers: Bounded<0, 1024>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig { workers: Bounded(0) }
    }
}

impl RuntimeConfig {
    /// The worker threads to start: the configured number, or one per core (at least two, so a
    /// long request never holds up every other).
    pub fn worker_threads(self) -> usize {
        match self.workers.get() {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()).max(2),
            n => n as usize,
        }
    }
}

/// `[store]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// A SQLite file path (`botscope.db`, `sqlite://PATH`) or a `postgres://` URL.
    #[serde(default = "StoreConfig::default_url")]
    pub url: String,
    /// Connections kept open to the database.
    #[serde(default = "StoreConfig::default_max_connections")]
    pub max_connections: Bounded<1, 64>,
    /// Days of raw observations kept (today included); 0 keeps everything.
    #[serde(default = "StoreConfig::default_retention_days")]
    pub retention_days: Bounded<0, 36500>,
}

impl StoreConfig {
    fn default_url() -> String {
        "botscope.db".into()
    }
    fn default_max_connections() -> Bounded<1, 64> {
        Bounded(4)
    }
    fn default_retention_days() -> Bounded<0, 36500> {
        Bounded(0)
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: Self::default_url(),
            max_connections: Self::default_max_connections(),
            retention_days: Self::default_retention_days(),
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Least severe level written: error, warn, info, debug or trace. `-v`/`-q` move it.
    #[serde(default)]
    pub level: LogLevel,
    /// `text` for people, `json` (one object per line) for log collectors.
    #[serde(default)]
    pub format: LogFormat,
}

/// A log level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Only errors.
    Error,
    /// Errors and warnings (e.g. skipped lines).
    Warn,
    /// Progress milestones and summaries.
    #[default]
    Info,
    /// Every committed batch.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    const ORDER: [LogLevel; 5] = [LogLevel::Error, LogLevel::Warn, LogLevel::Info, LogLevel::Debug, LogLevel::Trace];

    /// Moves the level by `steps` (positive: more verbose), staying within error..trace.
    pub fn shifted(self, steps: i8) -> LogLevel {
        let at = Self::ORDER.iter().position(|l| *l == self).unwrap_or(2) as i16;
        Self::ORDER[(at + i16::from(steps)).clamp(0, 4) as usize]
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[ingest]`
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Records committed per transaction. Larger is faster; each commit is a point a crash cannot
    /// undo.
    #[serde(default = "IngestConfig::default_batch_size")]
    pub batch_size: Bounded<1, 100_000>,
    /// Longest line accepted, in bytes; longer lines are skipped and counted, never buffered whole.
    #[serde(default = "IngestConfig::default_max_line_bytes")]
    pub max_line_bytes: Bounded<1_024, 67_108_864>,
}

impl IngestConfig {
    fn default_batch_size() -> Bounded<1, 100_000> {
        Bounded(1_000)
    }
    fn default_max_line_bytes() -> Bounded<1_024, 67_108_864> {
        Bounded(1_048_576)
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig { batch_size: Self::default_batch_size(), max_line_bytes: Self::default_max_line_bytes() }
    }
}

/// An integer that must lie in `MIN..=MAX`; out-of-range values are rejected while the file is
/// read, so the error carries the key and line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Bounded<const MIN: u64, const MAX: u64>(pub u64);

impl<const MIN: u64, const MAX: u64> Bounded<MIN, MAX> {
    /// Checks a value given elsewhere than the file (a flag).
    pub fn new(value: u64) -> Result<Self, String> {
        if (MIN..=MAX).contains(&value) {
            Ok(Bounded(value))
        } else {
            Err(format!("{value} is out of range: expected {MIN} to {MAX}"))
        }
    }

    /// The value.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Bounded<MIN, MAX> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = i64::deserialize(deserializer)?;
        u64::try_from(value)
            .map_err(|_| format!("{value} is negative: expected {MIN} to {MAX}"))
            .and_then(Bounded::new)
            .map_err(serde::de::Error::custom)
    }
}

impl<const MIN: u64, const MAX: u64> fmt::Display for Bounded<MIN, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where the configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// No file: built-in defaults (plus flags and environment).
    Defaults,
    /// This file.
    File(PathBuf),
}

/// The file looked for when neither `--config` nor `BOTSCOPE_CONFIG` names one.
pub const DEFAULT_PATH: &str = "botscope.toml";

/// Loads the configuration: the file named explicitly (which must exist), else `./botscope.toml`
/// if present, else the defaults.
pub fn load(explicit: Option<&Path>) -> anyhow::Result<(Config, Source)> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None if Path::new(DEFAULT_PATH).exists() => PathBuf::from(DEFAULT_PATH),
        None => return Ok((Config::default(), Source::Defaults)),
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("cannot read configuration {}", path.display()))?;
    let config = parse(&text).with_context(|| format!("invalid configuration {}", path.display()))?;
    Ok((config, Source::File(path)))
}

/// Parses configuration text; errors name the key and line.
pub fn parse(text: &str) -> anyhow::Result<Config> {
    let config: Config = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
    if config.store.url.trim().is_empty() {
        bail!("key store.url: must not be empty");
    }
    botscope_store::StoreUrl::parse(&config.store.url).map_err(|e| anyhow::anyhow!("key store.url: {e}"))?;
    let serve = &config.serve;
    for (key, text) in [
        ("serve.correlate_every", &serve.correlate_every),
        ("serve.window", &serve.window),
        ("serve.settle", &serve.settle),
        ("serve.header_timeout", &serve.header_timeout),
        ("serve.taxii_status_ttl", &serve.taxii_status_ttl),
    ] {
        crate::commands::duration_arg(text).map_err(|e| anyhow::anyhow!("key {key}: {e}"))?;
    }
    // As --listen: an address or a host name, and a port (resolved when the server binds).
    let port = serve.listen.rsplit_once(':').map(|(host, port)| (host, port.parse::<u16>()));
    if !matches!(port, Some((host, Ok(_))) if !host.is_empty()) {
        bail!("key serve.listen: {:?} is not ADDR:PORT", serve.listen);
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_means_defaults() {
        assert_eq!(parse("").unwrap(), Config::default());
    }

    #[test]
    fn errors_name_key_and_line() {
        let err = parse("[store]\nurl = \"x.db\"\nmax_conections = 3\n").unwrap_err().to_string();
        assert!(err.contains("max_conections") && err.contains("line 3"), "{err}");
        let err = parse("[ingest]\n\nbatch_size = 0\n").unwrap_err().to_string();
        assert!(err.contains("batch_size") && err.contains("line 3") && err.contains("1 to 100000"), "{err}");
        let err = parse("[log]\nlevel = \"loud\"\n").unwrap_err().to_string();
        assert!(err.contains("loud") && err.contains("line 2"), "{err}");
        let err = parse("[store]\nurl = \"mysql://x/y\"\n").unwrap_err().to_string();
        assert!(err.contains("store.url") && err.contains("mysql"), "{err}");
        let err = parse("[ingest]\nbatch_size = -5\n").unwrap_err().to_string();
        assert!(err.contains("negative"), "{err}");
        let err = parse("[serve]\nheader_timeout = \"soon\"\n").unwrap_err().to_string();
        assert!(err.contains("serve.header_timeout"), "{err}");
        let err = parse("[serve]\nlisten = \"everywhere\"\n").unwrap_err().to_string();
        assert!(err.contains("serve.listen"), "{err}");
        assert!(parse("[serve]\nlisten = \"localhost:8080\"\n").is_ok());
        assert!(parse("[serve]\nlisten = \"[::1]:8080\"\n").is_ok());
        let err = parse("[serve]\ntaxii_status_ttl = \"a while\"\n").unwrap_err().to_string();
        assert!(err.contains("serve.taxii_status_ttl"), "{err}");
        let err = parse("[serve]\ncheck_days = 400\n").unwrap_err().to_string();
        assert!(err.contains("check_days") && err.contains("1 to 366"), "{err}");
        let err = parse("[serve]\nmax_connections = 0\n").unwrap_err().to_string();
        assert!(err.contains("max_connections") && err.contains("1 to 1000000"), "{err}");
    }

    #[test]
    fn effective_configuration_round_trips() {
        let text = toml::to_string_pretty(&Config::default()).unwrap();
        assert_eq!(parse(&text).unwrap(), Config::default());
    }

    #[test]
    fn verbosity_moves_within_bounds() {
        assert_eq!(LogLevel::Info.shifted(1), LogLevel::Debug);
        assert_eq!(LogLevel::Info.shifted(9), LogLevel::Trace);
        assert_eq!(LogLevel::Warn.shifted(-5), LogLevel::Error);
    }
}

#[cfg(test)]
mod documentation {
    use super::*;

    #[test]
    fn every_key_is_documented_in_configuration_md() {
        let doc = include_str!("../../../docs/configuration.md");
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        for (section, keys) in &defaults {
            for (key, value) in keys.as_table().unwrap() {
                let row = format!("| `{section}.{key}` | `{value}` |");
                assert!(doc.contains(&row), "docs/configuration.md lacks the row starting {row}");
            }
        }
        let full_example = toml::to_string_pretty(&Config::default()).unwrap();
        assert!(doc.contains(full_example.trim()), "the complete example in docs/configuration.md drifted");
    }
}
