//! Where a sensor's records go: the local store (`--db`), the centre (`--center URL --token T`),
//! or both.
//!
//! Batches for the centre are posted as NDJSON. A batch the centre did not acknowledge (it is
//! down, unreachable, or busy) is written to the spool directory first and sent again, oldest
//! first, before any newer batch: on the next put, at the end of the run, or on the next run. So
//! nothing is lost while the centre is away, and nothing is sent twice into the store (records
//! have stable ids).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use botscope_model::Record;
use botscope_store::{AnyStore, Store};

/// Records per POST: well under the centre's default 16 MiB body bound.
const BATCH: usize = 2_000;
/// After a failed delivery, how long puts go straight to the spool before trying again.
const BACKOFF: Duration = Duration::from_secs(5);

/// The `--center`, `--token` and `--spool` flags every sensor shares.
#[derive(Debug, Clone, clap::Args)]
pub struct CenterArgs {
    /// Also send the records to a botscope centre (`botscope serve`), e.g. http://127.0.0.1:8080
    #[arg(long, value_name = "URL", requires = "token", env = "BOTSCOPE_CENTER")]
    pub center: Option<String>,

    /// The sensor token for --center (`botscope token create --role sensor`)
    #[arg(long, value_name = "TOKEN", env = "BOTSCOPE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Where batches the centre has not acknowledged wait (sent first on the next try or run)
    #[arg(long, value_name = "DIR", default_value = "botscope-spool")]
    pub spool: PathBuf,

    /// At the end of a run, how long to keep retrying spooled batches before leaving them for the next run
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = super::duration_arg)]
    pub center_wait: u64,
}

/// The centre as a destination.
pub struct CenterClient {
    client: reqwest::Client,
    ingest: String,
    token: String,
    spool: PathBuf,
    wait: Duration,
    retry_after: Option<Instant>,
    sequence: u64,
    /// Records the centre acknowledged.
    pub accepted: u64,
    /// Lines it refused (logged).
    pub refused: u64,
}

enum Delivery {
    Done,
    /// Not delivered; try again later (the centre is away or busy).
    Later(String),
}

impl CenterClient {
    /// A client for `args` (none when --center is absent).
    pub fn new(args: &CenterArgs) -> anyhow::Result<Option<CenterClient>> {
        let (Some(url), Some(token)) = (&args.center, &args.token) else { return Ok(None) };
        let base = url.trim_end_matches('/');
        anyhow::ensure!(
            base.starts_with("http://") || base.starts_with("https://"),
            "--center {url}: expected http://HOST:PORT or https://HOST"
        );
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(120))
            .build()
            .context("cannot make the HTTP client")?;
        std::fs::create_dir_all(&args.spool)
            .with_context(|| format!("cannot create the spool directory {}", args.spool.display()))?;
        Ok(Some(CenterClient {
            client,
            ingest: format!("{base}/api/v1/ingest"),
            token: token.clone(),
            spool: args.spool.clone(),
            wait: Duration::from_secs(args.center_wait),
            retry_after: None,
            sequence: 0,
            accepted: 0,
            refused: 0,
        }))
    }

    async fn post(&mut self, body: Vec<u8>) -> anyhow::Result<Delivery> {
        let response = match self
            .client
            .post(&self.ingest)
            .bearer_auth(&self.token)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
        {
            Ok(response) => response,
            Err(error) => return Ok(Delivery::Later(format!("{error}"))),
        };
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_server_error() || status.as_u16() == 429 {
            return Ok(Delivery::Later(format!("the centre answered {status}: {text}")));
        }
        if !status.is_success() {
            bail!("the centre refused the batch ({status}): {text}");
        }
        let reply: serde_json::Value = serde_json::from_str(&text).context("the centre's reply is not JSON")?;
        self.accepted += reply["accepted"].as_u64().unwrap_or(0);
        let refused = reply["error_count"].as_u64().unwrap_or(0);
        if refused > 0 {
            self.refused += refused;
            tracing::warn!(refused, problems = %reply["problems"], "the centre refused some records");
        }
        Ok(Delivery::Done)
    }

    fn spooled(&self) -> anyhow::Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.spool)
            .with_context(|| format!("cannot read {}", self.spool.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
            .collect();
        files.sort();
        Ok(files)
    }

    fn spool(&mut self, body: &[u8]) -> anyhow::Result<()> {
        self.sequence += 1;
        let now = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f");
        let path = self.spool.join(format!("{now}-{:06}-{}.ndjson", self.sequence, std::process::id()));
        write_durably(&path, body)
    }

    /// Sends spooled batches, oldest first; stops at the first that cannot go yet.
    async fn drain(&mut self) -> anyhow::Result<bool> {
        if self.retry_after.is_some_and(|t| Instant::now() < t) {
            return Ok(false);
        }
        for path in self.spooled()? {
            let body = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            match self.post(body).await? {
                Delivery::Done => {
                    std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?
                }
                Delivery::Later(why) => {
                    self.retry_after = Some(Instant::now() + BACKOFF);
                    tracing::warn!(%why, spool = %self.spool.display(), "the centre did not take a batch; keeping it on disk");
                    return Ok(false);
                }
            }
        }
        self.retry_after = None;
        Ok(true)
    }

    /// Sends records (or spools them when the centre is away).
    pub async fn put(&mut self, records: &[Record]) -> anyhow::Result<()> {
        for chunk in records.chunks(BATCH) {
            let mut body = Vec::with_capacity(chunk.len() * 400);
            for record in chunk {
                body.extend_from_slice(record.to_json_line().as_bytes());
                body.push(b'\n');
            }
            // Order matters to no one, but older batches going first keeps the spool short.
            self.spool(&body)?;
            self.drain().await?;
        }
        Ok(())
    }

    /// At the end of a run: keeps trying the spool for `--center-wait`, then leaves the rest.
    pub async fn finish(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + self.wait;
        loop {
            self.retry_after = None;
            if self.drain().await? {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let left = self.spooled()?.len();
                tracing::warn!(
                    batches = left,
                    spool = %self.spool.display(),
                    "the centre is unreachable; batches stay in the spool and go first on the next run with this --spool"
                );
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500).min(deadline - Instant::now())).await;
        }
    }
}

/// Writes a file so that it is complete on disk before this returns (or absent).
fn write_durably(path: &Path, body: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let partial = path.with_extension("partial");
    let mut file = std::fs::File::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    file.write_all(body)
        .and_then(|_| file.sync_all())
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The store and/or the centre.
pub struct Destinations {
    /// The local store.
    pub store: Option<AnyStore>,
    /// The centre.
    pub center: Option<CenterClient>,
    /// Records new to the store.
    pub stored: u64,
}

impl Destinations {
    /// Opens what the flags ask for.
    pub async fn open(settings: &crate::Settings, db_given: bool, center: &CenterArgs) -> anyhow::Result<Destinations> {
        let store = if db_given { Some(settings.open_store().await?) } else { None };
        Ok(Destinations { store, center: CenterClient::new(center)?, stored: 0 })
    }

    /// Whether records go anywhere.
    pub fn any(&self) -> bool {
        self.store.is_some() || self.center.is_some()
    }

    /// Puts records into every destination.
    pub async fn put(&mut self, records: &[Record]) -> anyhow::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        if let Some(store) = &self.store {
            self.stored += store.put_records(records).await?.inserted;
        }
        if let Some(center) = self.center.as_mut() {
            center.put(records).await?;
        }
        Ok(())
    }

    /// Flushes the centre's spool as far as it goes.
    pub async fn finish(&mut self) -> anyhow::Result<()> {
        if let Some(center) = self.center.as_mut() {
            center.finish().await?;
            tracing::info!(accepted = center.accepted, refused = center.refused, "records sent to the centre");
        }
        Ok(())
    }
}
