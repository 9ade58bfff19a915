//! The centre as a sink. Batches are posted as NDJSON to `/api/v1/ingest`. Every batch is written
//! to the spool (one folder per centre and token) before it is posted and removed once the centre
//! acknowledged it; batches the centre did not take (it is down, unreachable, or busy) are sent
//! again, oldest first, before any newer batch: on the next put, at the end of the run, or on the
//! next run. So nothing is lost while the centre is away, and nothing lands twice in the store
//! (records have stable ids). A batch the centre refuses as malformed (400) is moved to
//! `rejected/` beside it and named in the log; one too large (413) is split in halves until it fits.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use botscope_model::Record;

use botscope_model::RecordSink;

use crate::error::DeliverError;

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

/// Where and as whom a sensor sends its records. Its `Debug` hides the token.
#[derive(Clone)]
pub struct CenterConfig {
    /// The centre's base URL (`http://127.0.0.1:8080`).
    pub url: String,
    /// The sensor's (or surveyor's) token.
    pub token: String,
    /// Where batches the centre has not acknowledged wait.
    pub spool: PathBuf,
    /// At the end of a run, how long to keep retrying spooled batches.
    pub wait: Duration,
    /// The sensor's name: required, so two sensors' records never share ids.
    pub sensor: Option<String>,
}

impl std::fmt::Debug for CenterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CenterConfig")
            .field("url", &self.url)
            .field("token", &"<hidden>")
            .field("spool", &self.spool)
            .field("wait", &self.wait)
            .field("sensor", &self.sensor)
            .finish()
    }
}

/// The centre as a sink.
pub struct CenterSink {
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

impl CenterSink {
    /// A sink for the centre `config` names; refuses a configuration without a sensor name or
    /// an http(s) URL, and makes the spool folder.
    pub fn new(config: &CenterConfig) -> Result<CenterSink, DeliverError> {
        if config.sensor.as_deref().is_none_or(|s| s.trim().is_empty()) {
            return Err(DeliverError::Config(
                "--center needs --sensor NAME: records are told apart by their sensor (two ISPs reporting the same \
                 server in the same window are two records only if they carry different names)"
                    .into(),
            ));
        }
        let base = config.url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(DeliverError::Config(format!(
                "--center {}: expected http://HOST:PORT or https://HOST",
                config.url
            )));
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| DeliverError::Http(format!("cannot make the HTTP client: {e}")))?;
        // One folder per centre and token: sensors sharing a working directory never send each
        // other's batches.
        let digest = ring::digest::digest(&ring::digest::SHA256, format!("{base}\n{}", config.token).as_bytes());
        let folder: String = digest.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect();
        let spool = config.spool.join(folder);
        std::fs::create_dir_all(spool.join("rejected")).map_err(|source| DeliverError::Io {
            what: "cannot create the spool directory",
            path: spool.clone(),
            source,
        })?;
        Ok(CenterSink {
            client,
            ingest: format!("{base}/api/v1/ingest"),
            token: config.token.clone(),
            spool,
            wait: config.wait,
            retry_after: None,
            sequence: 0,
            accepted: 0,
            refused: 0,
        })
    }

    async fn post(&mut self, body: Vec<u8>) -> Result<Delivery, DeliverError> {
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
        let text = crate::read_capped(response, REPLY_MAX_BYTES)
            .await
            .map(|body| String::from_utf8_lossy(&body).into_owned())
            .unwrap_or_default();
        match status.as_u16() {
            200..=299 => {}
            413 => return Ok(Delivery::TooLarge),
            429 | 500..=599 => return Ok(Delivery::Later(format!("the centre answered {status}: {text}"))),
            400 | 415 | 422 => return Ok(Delivery::Refused(format!("{status}: {text}"))),
            // 401, 403, 404: the token or the URL is wrong; the batches wait for the fix.
            _ => return Err(DeliverError::Refused { status: status.as_u16(), body: text, spool: self.spool.clone() }),
        }
        let reply: serde_json::Value = serde_json::from_str(&text).map_err(|e| DeliverError::Reply(e.to_string()))?;
        self.accepted += reply["accepted"].as_u64().unwrap_or(0);
        let refused = reply["error_count"].as_u64().unwrap_or(0);
        if refused > 0 {
            self.refused += refused;
            tracing::warn!(refused, problems = %reply["problems"], "the centre refused some records");
        }
        Ok(Delivery::Done)
    }

    fn spooled(&self) -> Result<Vec<PathBuf>, DeliverError> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.spool)
            .map_err(|source| DeliverError::Io { what: "cannot read", path: self.spool.clone(), source })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
            .collect();
        files.sort();
        Ok(files)
    }

    fn spool(&mut self, body: &[u8]) -> Result<(), DeliverError> {
        self.sequence += 1;
        let now = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f");
        let path = self.spool.join(format!("{now}-{:06}-{}.ndjson", self.sequence, std::process::id()));
        write_durably(&path, body)
    }

    /// Sends spooled batches, oldest first; stops at the first that cannot go yet.
    async fn drain(&mut self) -> Result<bool, DeliverError> {
        if self.retry_after.is_some_and(|t| Instant::now() < t) {
            return Ok(false);
        }
        for path in self.spooled()? {
            let body = match std::fs::read(&path) {
                Ok(body) => body,
                // Another run with this spool sent it meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(DeliverError::Io { what: "cannot read", path, source }),
            };
            if !self.deliver(body).await? {
                self.retry_after = Some(Instant::now() + BACKOFF);
                return Ok(false);
            }
            match std::fs::remove_file(&path) {
                Err(source) if source.kind() != std::io::ErrorKind::NotFound => {
                    return Err(DeliverError::Io { what: "cannot remove", path, source });
                }
                _ => {}
            }
        }
        self.retry_after = None;
        Ok(true)
    }

    /// Posts one batch, splitting it while it is too large; false when it must wait.
    async fn deliver(&mut self, body: Vec<u8>) -> Result<bool, DeliverError> {
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
    fn reject(&mut self, body: &[u8], why: &str) -> Result<(), DeliverError> {
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
}

impl RecordSink for CenterSink {
    type Error = DeliverError;

    /// Sends records (or spools them when the centre is away).
    async fn put(&mut self, records: &[Record]) -> Result<(), DeliverError> {
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

    /// At the end of a run: keeps trying the spool for the configured wait, then leaves the rest.
    async fn finish(&mut self) -> Result<(), DeliverError> {
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
fn write_durably(path: &Path, body: &[u8]) -> Result<(), DeliverError> {
    use std::io::Write;
    let partial = path.with_extension("partial");
    let io = |what, path: &Path, source| DeliverError::Io { what, path: path.to_path_buf(), source };
    let mut file = std::fs::File::create(&partial).map_err(|e| io("cannot create", &partial, e))?;
    file.write_all(body).and_then(|_| file.sync_all()).map_err(|e| io("cannot write", &partial, e))?;
    std::fs::rename(&partial, path).map_err(|e| io("cannot write", path, e))?;
    Ok(())
}
