//! `botscope lab ...`: the miniature internet on loopback.

mod args;
pub use args::*;

use std::io::Write;
use std::process::{ExitCode, Stdio};

use anyhow::Context;
use botscope_lab::fleet::{self, Device, FleetSpec, PortMap};
use botscope_lab::serve;
use botscope_survey::catalog::{DeviceCatalog, Dictionary};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

pub async fn run(command: LabCommand) -> anyhow::Result<ExitCode> {
    match command {
        LabCommand::Devices(args) => devices(args).await,
        LabCommand::Darknet(args) => {
            let summary = tokio::task::spawn_blocking(move || darknet(args)).await??;
            println!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Flows(args) => {
            let summary = tokio::task::spawn_blocking(move || flows(args)).await??;
            println!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The lab fleet's devices that accept a dictionary pair or no password: the ones that got
/// infected, so the survey, the telescope and the flows see one world.
pub fn vulnerable_pool(seed: u64, fleet_count: usize) -> anyhow::Result<Vec<std::net::Ipv4Addr>> {
    if fleet_count == 0 {
        return Ok(Vec::new());
    }
    let spec = FleetSpec {
        count: fleet_count,
        seed,
        subnet: "127.16.0.0/12".parse().expect("constant"),
        ports: PortMap::default(),
        misbehaving: 0.0,
    };
    let fleet = fleet::build(&spec, &DeviceCatalog::shipped(), &Dictionary::shipped())?;
    Ok(fleet.iter().filter(|d| !matches!(d.credential, fleet::Credential::Strong { .. })).map(|d| d.ip).collect())
}

/// `udp://127.0.0.1:PORT` (or `[::1]:PORT`), loopback only.
fn export_target(url: &str) -> anyhow::Result<std::net::SocketAddr> {
    let rest = url.strip_prefix("udp://").with_context(|| format!("--export {url}: expected udp://127.0.0.1:PORT"))?;
    let target: std::net::SocketAddr =
        rest.parse().with_context(|| format!("--export {url}: expected udp://127.0.0.1:PORT"))?;
    anyhow::ensure!(target.ip().is_loopback(), "--export {url}: the lab only sends to loopback (127.0.0.0/8 or ::1)");
    anyhow::ensure!(target.port() != 0, "--export {url}: give a port");
    Ok(target)
}

/// Writes the synthetic ISP's files; returns the summary as JSON.
pub fn flows(args: LabFlowsArgs) -> anyhow::Result<String> {
    use botscope_flow::export::{Exporter, Format};
    use botscope_lab::flows::{self, FlowTruth, FlowsSpec};
    let start = chrono::DateTime::parse_from_rfc3339(&args.start)
        .with_context(|| format!("--start {}: not an RFC 3339 time", args.start))?;
    anyhow::ensure!(start.timestamp() >= 0, "--start must be after 1970");
    anyhow::ensure!((0.0..1.0).contains(&args.withhold), "--withhold must be at least 0 and below 1");
    let spec = FlowsSpec {
        seed: args.seed,
        subscribers: args.subscribers,
        days: args.days,
        botnets: args.botnets,
        start: start.timestamp(),
        infected_share: args.infected,
    };
    let pool = vulnerable_pool(args.seed, args.fleet_count)?;
    let format: Format = args.format.parse()?;
    let mut file = match &args.out {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => None,
    };
    let export = match &args.export {
        Some(url) => {
            let target = export_target(url)?;
            let bind: std::net::SocketAddr = if target.is_ipv4() { "127.0.0.1:0" } else { "[::1]:0" }.parse()?;
            let socket = std::net::UdpSocket::bind(bind)?;
            socket.connect(target)?;
            Some((socket, Exporter::new(format)))
        }
        None => None,
    };
    let mut export = export;
    let started = std::time::Instant::now();
    let mut sent = 0u64;
    let mut datagrams = Vec::new();
    let (truth, summary) = flows::generate(&spec, &pool, &mut |hour| {
        if let Some(out) = file.as_mut() {
            for flow in hour {
                serde_json::to_writer(&mut *out, &botscope_flow::FlowLine::from(flow))?;
                out.write_all(b"\n")?;
            }
        }
        if let Some((socket, exporter)) = export.as_mut() {
            // Flows are exported when they end, as a router would; datagrams in time order.
            for chunk in hour.chunks(24) {
                let now = chunk.iter().map(|f| f.end_ms).max().unwrap_or(0);
                datagrams.clear();
                exporter.encode(chunk, now, &mut datagrams);
                for d in &datagrams {
                    socket.send(d)?;
                }
                sent += chunk.len() as u64;
                if args.rate > 0 {
                    let due = std::time::Duration::from_secs_f64(sent as f64 / args.rate as f64);
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
            }
        }
        Ok(())
    })?;
    if let Some(out) = file.as_mut() {
        out.flush().context("cannot write the flows")?;
    }
    let write_lines = |path: &std::path::Path, lines: &mut dyn Iterator<Item = String>| -> anyhow::Result<()> {
        let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        for line in lines {
            out.write_all(line.as_bytes())?;
            out.write_all(b"\n")?;
        }
        out.flush().with_context(|| format!("cannot write {}", path.display()))
    };
    if let Some(path) = &args.truth {
        write_lines(path, &mut truth.iter().map(|t| serde_json::to_string(t).expect("serialisable")))?;
    }
    if let Some(path) = &args.seeds {
        let mut bots: Vec<std::net::Ipv4Addr> = truth
            .iter()
            .filter_map(|t| if let FlowTruth::Bot { ip, .. } = t { Some(*ip) } else { None })
            .filter(|ip| {
                let addr = botscope_telescope::packet::Addr::v4(u32::from(*ip));
                !botscope_flow::seeds::withheld(addr, args.withhold)
            })
            .collect();
        bots.sort();
        write_lines(path, &mut bots.iter().map(|b| b.to_string()))?;
    }
    Ok(serde_json::to_string(&summary)?)
}

/// Writes the synthetic darknet's capture and truth; returns the summary as JSON.
pub fn darknet(args: LabDarknetArgs) -> anyhow::Result<String> {
    use botscope_lab::darknet::{self, DarknetSpec};
    let darknet = args.darknet.parse().with_context(|| format!("--darknet {}: not an IPv4 CIDR", args.darknet))?;
    let start = chrono::DateTime::parse_from_rfc3339(&args.start)
        .with_context(|| format!("--start {}: not an RFC 3339 time", args.start))?;
    anyhow::ensure!(start.timestamp() >= 0, "--start must be after 1970");
    anyhow::ensure!(args.hours <= 24 * 366, "--hours is at most a year");
    anyhow::ensure!(args.intensity > 0.0 && args.intensity <= 10_000.0, "--intensity must be in (0, 10000]");
    let pool = vulnerable_pool(args.seed, args.fleet_count)?;
    let spec = DarknetSpec {
        seed: args.seed,
        darknet,
        hours: args.hours,
        sources: args.sources,
        start: start.timestamp() as u64,
        intensity: args.intensity,
        shape: match args.shape {
            DarknetShape::Lab => darknet::Shape::Lab,
            DarknetShape::HeavyTail => darknet::Shape::HeavyTail,
        },
    };
    let file = std::fs::File::create(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let (truth, summary) = darknet::generate(&spec, &pool, &mut std::io::BufWriter::new(file))?;
    if let Some(path) = &args.truth {
        let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        for line in &truth {
            serde_json::to_writer(&mut out, line)?;
            out.write_all(b"\n")?;
        }
        out.flush().with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(serde_json::to_string(&summary)?)
}

async fn devices(args: LabDevicesArgs) -> anyhow::Result<ExitCode> {
    let subnet = args.subnet.parse().with_context(|| format!("--subnet {}: not an IPv4 CIDR", args.subnet))?;
    let ports = match &args.ports {
        Some(list) => PortMap::parse(list)?,
        None => PortMap::default(),
    };
    anyhow::ensure!((0.0..=1.0).contains(&args.misbehaving), "--misbehaving must be between 0 and 1");
    anyhow::ensure!(args.count > 0, "--count must be at least 1");
    let duration = args.duration.map(|d| crate::stop::seconds(d, "--duration", 7.0 * 86400.0)).transpose()?;
    let spec = FleetSpec { count: args.count, seed: args.seed, subnet, ports, misbehaving: args.misbehaving };
    let mut fleet = fleet::build(&spec, &DeviceCatalog::shipped(), &Dictionary::shipped())?;
    for ip in &args.fixed {
        let device = fleet
            .iter_mut()
            .find(|d| d.ip == *ip)
            .with_context(|| format!("--fixed {ip}: no device of the fleet has that address"))?;
        device.fix_password();
    }
    let stop = crate::stop::signal_or_after(duration);

    if let Some(partition) = &args.partition {
        // A worker: serve one share of the fleet until the parent closes our stdin.
        let (index, parts) = parse_partition(partition)?;
        fleet = fleet.into_iter().enumerate().filter(|(i, _)| i % parts == index).map(|(_, d)| d).collect();
        let lab = serve::bind(fleet, args.seed, args.max_open).await?;
        println!("ready");
        std::io::stdout().flush()?;
        let parent_gone = async {
            let mut sink = [0u8; 64];
            let mut stdin = tokio::io::stdin();
            while matches!(stdin.read(&mut sink).await, Ok(n) if n > 0) {}
        };
        lab.run(async {
            tokio::select! { _ = stop => {}, _ = parent_gone => {} }
        })
        .await;
        return Ok(ExitCode::SUCCESS);
    }

    if let Some(path) = &args.truth {
        let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        for device in &fleet {
            serde_json::to_writer(&mut out, &device.truth())?;
            out.write_all(b"\n")?;
        }
        out.flush().with_context(|| format!("cannot write {}", path.display()))?;
    }
    let listening = port_list(&fleet);
    let needed = serve::listeners_needed(&fleet);
    let budget = (open_file_limit() * 6 / 10).max(256);
    let parts = needed.div_ceil(budget);
    let ready = |parts: usize| {
        println!(
            "ready: {} devices in {} on ports {listening} ({parts} process{})",
            args.count,
            args.subnet,
            if parts == 1 { "" } else { "es" }
        );
        println!("survey them with: botscope survey --lab --scope {} --ports {listening}", args.subnet);
        std::io::stdout().flush()
    };
    if parts <= 1 {
        let lab =
            serve::bind(fleet, args.seed, args.max_open.min(open_file_limit().saturating_sub(needed + 64)).max(16))
                .await?;
        let stats = lab.stats();
        ready(1)?;
        lab.run(stop).await;
        tracing::info!(
            accepted = stats.accepted.load(std::sync::atomic::Ordering::Relaxed),
            shed = stats.shed.load(std::sync::atomic::Ordering::Relaxed),
            logins = botscope_lab::devices::LOGIN_ATTEMPTS.load(std::sync::atomic::Ordering::Relaxed),
            "lab stopped"
        );
        return Ok(ExitCode::SUCCESS);
    }

    // Too many listeners for one process's descriptors: one worker process per share.
    drop(fleet);
    let exe = std::env::current_exe().context("cannot find the botscope executable to start lab workers")?;
    let per_worker_open = (open_file_limit().saturating_sub(budget + 64)).clamp(16, args.max_open);
    let mut workers = Vec::new();
    // Held here, not in the Child: tokio closes a child's stdin when waiting on it, and a worker
    // takes a closed stdin as the parent gone.
    let mut lifelines = Vec::new();
    for index in 0..parts {
        let mut command = tokio::process::Command::new(&exe);
        command
            .args(["lab", "devices", "--count", &args.count.to_string(), "--seed", &args.seed.to_string()])
            .args(["--subnet", &args.subnet, "--misbehaving", &args.misbehaving.to_string()])
            .args(["--max-open", &per_worker_open.to_string(), "--partition", &format!("{index}/{parts}")])
            .args(args.fixed.iter().flat_map(|ip| ["--fixed".to_string(), ip.to_string()]))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        if let Some(list) = &args.ports {
            command.args(["--ports", list]);
        }
        let mut child = command.spawn().context("cannot start a lab worker")?;
        lifelines.push(child.stdin.take().expect("piped"));
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        match lines.next_line().await? {
            Some(line) if line == "ready" => {}
            _ => {
                let status = child.wait().await?;
                anyhow::bail!("lab worker {index}/{parts} did not start ({status}); see its errors above");
            }
        }
        workers.push(child);
    }
    ready(parts)?;
    tokio::select! {
        _ = stop => {},
        _ = async {
            for worker in &mut workers {
                let _ = worker.wait().await;
            }
        } => anyhow::bail!("a lab worker stopped unexpectedly"),
    }
    drop(lifelines);
    for mut worker in workers {
        let _ = worker.kill().await;
    }
    Ok(ExitCode::SUCCESS)
}

/// The fleet's ports as `PORT/SERVICE,...`, as `survey --ports` takes them.
pub fn port_list(fleet: &[Device]) -> String {
    let mut ports: Vec<(u16, &'static str)> =
        fleet.iter().flat_map(|d| d.services.iter().map(|(s, p)| (*p, s.as_str()))).collect();
    ports.sort_unstable();
    ports.dedup();
    ports.iter().map(|(port, name)| format!("{port}/{name}")).collect::<Vec<_>>().join(",")
}

fn parse_partition(text: &str) -> anyhow::Result<(usize, usize)> {
    let parsed = text.split_once('/').and_then(|(i, k)| Some((i.parse::<usize>().ok()?, k.parse::<usize>().ok()?)));
    match parsed {
        Some((i, k)) if i < k => Ok((i, k)),
        _ => anyhow::bail!("--partition {text}: expected I/K with I < K"),
    }
}

/// The soft limit on open files (from /proc; 1024 when unknown).
fn open_file_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("Max open files"))?;
            line.split_whitespace().nth(3)?.parse().ok()
        })
        .unwrap_or(1024)
}
