//! The demo's lab world: its directory, fleet, C&C stand-ins and the ISPs' answers.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use anyhow::Context;
use botscope_center::notify;
use botscope_lab::fleet::{self, FleetSpec};
use botscope_lab::serve;
use botscope_model::Kind;
use botscope_store::Store;
use botscope_survey::catalog::{DeviceCatalog, Dictionary};

/// Marks a directory as the demo's own, so a second run may clear it.
const MARKER: &str = ".botscope-demo";

pub fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?.next().is_none();
        anyhow::ensure!(
            empty || dir.join(MARKER).exists(),
            "{} exists and is not a demo directory; give another --dir",
            dir.display()
        );
        if !empty {
            std::fs::remove_dir_all(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(dir.join(MARKER), "made by botscope demo; it clears this directory when run again\n")?;
    Ok(())
}

/// Writes one JSON line per item.
pub fn write_json_lines<T: serde::Serialize>(path: &Path, items: &[T]) -> anyhow::Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    for item in items {
        serde_json::to_writer(&mut out, item)?;
        out.write_all(b"\n")?;
    }
    out.flush().with_context(|| format!("cannot write {}", path.display()))
}

pub fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str().with_context(|| format!("{} is not UTF-8", path.display()))
}

fn read_json_lines(path: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| Ok(serde_json::from_str(l)?)).collect()
}

/// A lab C&C server, from the flows' truth.
pub struct LabServer {
    pub ip: IpAddr,
    pub port: u16,
    pub botnet: String,
    /// When the botnet started using it.
    pub from: chrono::DateTime<chrono::Utc>,
}

/// The lab's C&C servers from the flows' truth.
pub fn truth_servers(path: &Path) -> anyhow::Result<Vec<LabServer>> {
    let mut servers = Vec::new();
    for line in read_json_lines(path)? {
        if line["kind"] == "cnc" {
            let ip: IpAddr = line["ip"].as_str().context("truth cnc ip")?.parse()?;
            let port = line["port"].as_u64().context("truth cnc port")? as u16;
            let botnet = line["botnet"].as_str().unwrap_or("").to_string();
            let from = line["from"].as_str().context("truth cnc from")?.parse()?;
            servers.push(LabServer { ip, port, botnet, from });
        }
    }
    Ok(servers)
}

/// A running lab fleet, stopped when dropped.
pub struct Fleet {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Fleet {
    pub async fn start(spec: &FleetSpec, fixed: &[std::net::Ipv4Addr]) -> anyhow::Result<(Fleet, Vec<fleet::Device>)> {
        let mut devices = fleet::build(spec, &DeviceCatalog::shipped(), &Dictionary::shipped())?;
        for device in devices.iter_mut().filter(|d| fixed.contains(&d.ip)) {
            device.fix_password();
        }
        let lab = serve::bind(devices.clone(), spec.seed, 512).await?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(lab.run(async {
            let _ = stopped.await;
        }));
        Ok((Fleet { stop: Some(stop), task }, devices))
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Loopback listeners standing in for the C&C servers still in use: liveness finds them alive.
pub async fn alive_servers(servers: &[(IpAddr, u16)]) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut tasks = Vec::new();
    for (ip, port) in servers {
        anyhow::ensure!(ip.is_loopback(), "lab C&C server {ip} is not on loopback");
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(*ip, *port))
            .await
            .with_context(|| format!("cannot listen on lab C&C server {ip}:{port}"))?;
        tasks.push(tokio::spawn(async move {
            while let Ok((connection, _)) = listener.accept().await {
                drop(connection);
            }
        }));
    }
    Ok(tasks)
}

/// Each ISP reports what it did about some infected cases (a re-survey cannot judge those):
/// a few contacted, one unreachable, one it says is fixed, one false positive.
pub async fn isps_answer(store: &botscope_store::AnyStore) -> anyhow::Result<()> {
    use botscope_model::{NotificationReason, NotificationStatus, OutcomeSource, Record};
    let records = botscope_store::all_records(
        store,
        botscope_store::RecordQuery { kind: Some(Kind::Notification), ..Default::default() },
    )
    .await?;
    let mut by_isp: std::collections::BTreeMap<String, Vec<botscope_model::Notification>> = Default::default();
    for record in records {
        if let Record::Notification(case) = record
            && case.reason == NotificationReason::Infected
        {
            by_isp.entry(case.isp.clone()).or_default().push(case);
        }
    }
    let answers = [
        NotificationStatus::Contacted,
        NotificationStatus::Contacted,
        NotificationStatus::Contacted,
        NotificationStatus::Unreachable,
        NotificationStatus::Fixed,
        NotificationStatus::FalsePositive,
    ];
    for cases in by_isp.values_mut() {
        cases.sort_by_key(|c| (c.ip, c.created_at));
        for (case, status) in cases.iter_mut().zip(answers) {
            notify::record_outcome(store, case, status, OutcomeSource::Isp, Some("demo: the ISP's answer".into()))
                .await?;
        }
    }
    Ok(())
}

pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

pub async fn summary(store: &impl Store) -> anyhow::Result<String> {
    let mut parts = Vec::new();
    for (kind, name) in [
        (Kind::Finding, "findings"),
        (Kind::Activity, "activity records"),
        (Kind::Cnc, "C&C reports"),
        (Kind::Botnet, "botnets"),
        (Kind::Notification, "notification cases"),
        (Kind::Outcome, "outcomes"),
    ] {
        parts.push(format!("{} {name}", store.count_records(Some(kind)).await?));
    }
    Ok(parts.join(", "))
}
