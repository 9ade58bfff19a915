//! Where a sensor's records go: the local store (`--db`), the centre (`--center URL --token T`),
//! or both.
//!
//! Batches for the centre are posted as NDJSON. Every batch is written to the spool (one folder per
//! centre and token under `--spool`) before it is posted and removed once the centre acknowledged
//! it; batches the centre did not take (it is down, unreachable, or busy) are sent again, oldest
//! first, before any newer batch: on the next put, at the end of the run, or on the next run. So
//! nothing is lost while the centre is away, and nothing lands twice in the store (records have
//! stable ids). A batch the centre refuses as malformed (400) is moved to `rejected/` beside it and
//! named in the log; one too large (413) is split in halves until it fits.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use botscope_model::Record;
use botscope_store::{AnyStore, Store};

/// Records per POST at most.
const BATCH: usize = 2_000;
/// Bytes per POST at most: well under the centre's default 16 MiB body bound (a `cnc` record
/// citing 10,000 seed records is about 400 KiB).
const BATCH_BYTES: usize = 4 << 20;
/// Most bytes of the centre's reply to a batch read (a reply naming a problem on every line of a
/// full batch is well under 1 MiB).
const REPLY_MAX_BYTES: usize = 8 << 20;
/// After a failed delivery, how long puts go straight to the spool before trying again.
const BACKOFF: Duration = Duration::from_secs(5);

/// The `--center`, `--token` and `--spool` flags every sensor shares.
#[derive(Debug, Clone, clap::Args)]
pub struct CenterArgs {
    /// Also send the records to a botscope centre (`botscope serve`), e.g. http://127.0.0.1:8080
    #[arg(long, value_name = "URL", requires = "token", env = "BOTSCOPE_CENTER")]
    pub center: Option<String>,

    /// The token for --center (`botscope token create --role sensor`; survey workers that fetch
    /// re-survey cases need --role surveyor)
    #[arg(long, value_name = "TOKEN", env = "BOTSCOPE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Where batches the centre has not acknowledged wait (sent first on the next try or run)
    #[arg(long, value_name = "DIR", default_value = "botscope-spool")]
    pub spool: PathBuf,

    /// At the end of a run, how long to keep retrying spooled batches before leaving them for the next run
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = super::duration_arg)]
    pub center_wait: u64,
}

/// Refuses --center without --sensor: records are told apart by their sensor.
pub fn require_sensor(args: &CenterArgs, sensor: Option<&str>) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.center.is_none() || sensor.is_some_and(|s| !s.trim().is_empty()),
        "--center needs --sensor NAME: records are told apart by their sensor (two ISPs reporting the same \
         server in the same window are two records only if they carry different names)"
    );
    Ok(())
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
    /// Too large for the centre: split it.
    TooLarge,
    /// Refused as malformed: sending it again cannot help.
    Refused(String),
}

impl CenterClient {
    /// A client for `args` (none when --center is absent). `sensor` is the sensor's --sensor: it
    /// must be given, so two sensors' records never share ids.
    pub fn new(args: &CenterArgs, sensor: Option<&str>) -> anyhow::Result<Option<CenterClient>> {
        let (Some(url), Some(token)) = (&args.center, &args.token) else { return Ok(None) };
        require_sensor(args, sensor)?;
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
        // One folder per centre and token: sensors sharing a working directory never send each
        // other's batches.
        let digest = ring::digest::digest(&ring::digest::SHA256, format!("{base}\n{token}").as_bytes());
        let folder: String = digest.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect();
        let spool = args.spool.join(folder);
        std::fs::create_dir_all(spool.join("rejected"))
            .with_context(|| format!("cannot create the spool directory {}", spool.display()))?;
        Ok(Some(CenterClient {
            client,
            ingest: format!("{base}/api/v1/ingest"),
            token: token.clone(),
            spool,
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
        let text = super::fetch::read_capped(response, REPLY_MAX_BYTES)
            .await
            .map(|body| String::from_utf8_lossy(&body).into_owned())
            .unwrap_or_default();
        match status.as_u16() {
            200..=299 => {}
            413 => return Ok(Delivery::TooLarge),
            429 | 500..=599 => return Ok(Delivery::Later(format!("the centre answered {status}: {text}"))),
            400 | 415 | 422 => return Ok(Delivery::Refused(format!("{status}: {text}"))),
            // 401, 403, 404: the token or the URL is wrong; the batches wait for the fix.
            _ => bail!("the centre refused the batch ({status}): {text}; the batches stay in {}", self.spool.display()),
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
            let body = match std::fs::read(&path) {
                Ok(body) => body,
                // Another run with this spool sent it meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
            };
            if !self.deliver(body).await? {
                self.retry_after = Some(Instant::now() + BACKOFF);
                return Ok(false);
            }
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("cannot remove {}", path.display()));
                }
                _ => {}
            }
        }
        self.retry_after = None;
        Ok(true)
    }

    /// Posts one batch, splitting it while it is too large; false when it must wait.
    async fn deliver(&mut self, body: Vec<u8>) -> anyhow::Result<bool> {
        let mut pending = vec![body];
        while let Some(body) = pending.pop() {
            match self.post(body.clone()).await? {
                Delivery::Done => {}
                Delivery::Later(why) => {
                    // The whole file stays; parts already taken are duplicates next time, which
                    // the centre counts and ignores (records have stable ids).
                    tracing::warn!(%why, spool = %self.spool.display(), "the centre did not take a batch; keeping it on disk");
                    return Ok(false);
                }
                Delivery::TooLarge => {
                    let lines: Vec<&[u8]> = body.split_inclusive(|b| *b == b'\n').collect();
                    if lines.len() <= 1 {
                        self.reject(&body, "one record is larger than the centre accepts (413)")?;
                        continue;
                    }
                    let (first, second) = lines.split_at(lines.len() / 2);
                    pending.push(second.concat());
                    pending.push(first.concat());
                }
                Delivery::Refused(why) => self.reject(&body, &why)?,
            }
        }
        Ok(true)
    }

    /// Sets a batch the centre refused aside, where an operator can look at it.
    fn reject(&mut self, body: &[u8], why: &str) -> anyhow::Result<()> {
        self.sequence += 1;
        let path = self.spool.join("rejected").join(format!(
            "{}-{:06}-{}.ndjson",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f"),
            self.sequence,
            std::process::id()
        ));
        write_durably(&path, body)?;
        tracing::error!(%why, batch = %path.display(), "the centre refused a batch; it is set aside");
        Ok(())
    }

    /// Sends records (or spools them when the centre is away).
    pub async fn put(&mut self, records: &[Record]) -> anyhow::Result<()> {
        let mut body = Vec::new();
        let mut count = 0;
        for record in records {
            body.extend_from_slice(record.to_json_line().as_bytes());
            body.push(b'\n');
            count += 1;
            if count >= BATCH || body.len() >= BATCH_BYTES {
                self.spool(&body)?;
                body.clear();
                count = 0;
            }
        }
        if !body.is_empty() {
            self.spool(&body)?;
        }
        self.drain().await?;
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
    /// Opens what the flags ask for; `sensor` is the command's --sensor.
    pub async fn open(
        settings: &crate::Settings,
        db_given: bool,
        center: &CenterArgs,
        sensor: Option<&str>,
    ) -> anyhow::Result<Destinations> {
        let center = CenterClient::new(center, sensor)?;
        let store = if db_given { Some(settings.open_store().await?) } else { None };
        Ok(Destinations { store, center, stored: 0 })
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
