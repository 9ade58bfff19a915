//! `botscope flow`: collect or read flows, find C&C servers, train and evaluate the model.

mod args;
pub use args::*;

use botscope_deliver::RecordSink;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, Write};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use botscope_flow::analyze::Windows;
use botscope_flow::decode::{DecodeStats, Decoder};
use botscope_flow::detect::{DetectConfig, Detector, Model};
use botscope_flow::exporters::{Exporters, Refused};
use botscope_flow::input::{self, Format};
use botscope_flow::seeds::Seeds;
use botscope_flow::window::{Subscribers, Window, WindowConfig};
use botscope_flow::{Flow, FlowLine};
use botscope_model::{CncCandidate, Record};
use botscope_telescope::packet::Addr;
use serde::Serialize;

use crate::Settings;

pub async fn run(command: FlowCommand, settings: &Settings, db_given: bool) -> anyhow::Result<ExitCode> {
    match command {
        FlowCommand::Collect(args) => collect(args, settings, db_given).await,
        FlowCommand::Analyze(args) => analyze(args, settings, db_given).await,
        FlowCommand::Train(args) => tokio::task::spawn_blocking(move || train(args)).await?,
        FlowCommand::Evaluate(args) => tokio::task::spawn_blocking(move || evaluate(args)).await?,
    }
}

/// Everything the analysis commands share, ready to use.
struct Setup {
    window_config: WindowConfig,
    window_ms: i64,
    grace_ms: i64,
    detect: DetectConfig,
    model: Model,
}

fn setup(args: &FlowAnalysisArgs) -> anyhow::Result<Setup> {
    let window_seconds = super::parse_window(&args.window)?;
    anyhow::ensure!(window_seconds <= 86_400, "--window is at most 1d for flow analysis");
    let window_ms = window_seconds as i64 * 1000;
    let grace_ms = match &args.grace {
        Some(text) => {
            let seconds = super::parse_seconds(text, "--grace")?;
            anyhow::ensure!(seconds <= 86_400, "--grace must be between 0s and 1d");
            seconds as i64 * 1000
        }
        None => window_ms / 4,
    };
    let prefixes = super::parse_prefixes(&args.subscribers, "--subscribers")?;
    anyhow::ensure!((0.0..=1.0).contains(&args.min_score), "--min-score must be between 0 and 1");
    anyhow::ensure!(args.min_seed_clients >= 1, "--min-seed-clients must be at least 1");
    anyhow::ensure!(args.max_servers >= 1, "--max-servers must be at least 1");
    let model = match &args.model {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read the model {}", path.display()))?;
            Model::from_json(&text).with_context(|| format!("model {}", path.display()))?
        }
        None => Model::shipped().context("the shipped model data/flow-model.json")?,
    };
    Ok(Setup {
        window_config: WindowConfig {
            subscribers: Subscribers::new(&prefixes),
            max_servers: args.max_servers,
            ..WindowConfig::default()
        },
        window_ms,
        grace_ms,
        detect: DetectConfig {
            min_score: args.min_score,
            min_seed_clients: args.min_seed_clients,
            sensor: args.sensor.clone(),
            include_private: args.include_private,
        },
        model,
    })
}

fn load_seeds(paths: &[PathBuf]) -> anyhow::Result<Seeds> {
    let mut seeds = Seeds::default();
    for path in paths {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read seeds {}", path.display()))?;
        let report = seeds.add_text(&text);
        for e in &report.errors {
            tracing::warn!(file = %path.display(), line = e.line, "seed line skipped: {}", e.reason);
        }
        if report.bad_lines > report.errors.len() {
            tracing::warn!(file = %path.display(), lines = report.bad_lines, "seed lines skipped in all");
        }
        tracing::info!(file = %path.display(), bots = report.bots, cnc = report.cnc, skipped = report.skipped, "seeds read");
    }
    anyhow::ensure!(
        seeds.bot_count() + seeds.cnc_count() > 0,
        "the seed files hold no infected host and no known C&C: graph mining needs at least one"
    );
    Ok(seeds)
}

/// Writes and stores candidates as windows close.
struct Sink {
    out: Option<botscope_deliver::FileSink>,
    dest: botscope_deliver::Destinations,
    written: u64,
}

impl Sink {
    async fn put(&mut self, candidates: Vec<CncCandidate>) -> anyhow::Result<()> {
        let records: Vec<Record> = candidates
            .into_iter()
            .map(|c| {
                let mut record = Record::Cnc(c);
                record.ensure_id();
                record
            })
            .collect();
        if let Some(out) = self.out.as_mut() {
            out.put(&records).await.context("cannot write the candidates")?;
        }
        self.written += records.len() as u64;
        Ok(self.dest.put(&records).await?)
    }
}

/// Opens a flow file (`-` = standard input), gzipped or not: Zeek and nfdump exports usually are.
fn open_input(path: &Path) -> anyhow::Result<(Box<dyn BufRead + Send>, Option<u64>)> {
    let reader = botscope_input::open(path)?;
    Ok((reader, botscope_input::plain_file_size(path)))
}

/// Reads flow files into windows; `closed` gets each window as it closes.
fn read_files(
    paths: &[PathBuf],
    format: Format,
    seeds: &Seeds,
    windows: &mut Windows,
    show_progress: bool,
    closed: &mut dyn FnMut(Window),
) -> anyhow::Result<()> {
    for path in paths {
        let (reader, size) = open_input(path)?;
        let bar = crate::progress::bytes(show_progress, size, format!("{}", path.display()));
        let reader = bar.wrap_read(reader);
        let report = input::read(std::io::BufReader::new(reader), format, &mut |flow, initiator_known| {
            windows.add(&flow, seeds, initiator_known, closed)
        })
        .with_context(|| format!("{}", path.display()))?;
        bar.finish_and_clear();
        for (line, reason) in &report.errors {
            tracing::warn!(file = %path.display(), line, "flow line skipped: {reason}");
        }
        if report.bad_lines > report.errors.len() as u64 {
            tracing::warn!(file = %path.display(), lines = report.bad_lines, "flow lines skipped in all");
        }
        tracing::info!(file = %path.display(), flows = report.flows, bad_lines = report.bad_lines, "flows read");
    }
    windows.finish(closed);
    Ok(())
}

fn log_window_stats(windows: &Windows) {
    let s = &windows.stats;
    if s.bad_timestamp > 0 {
        tracing::warn!(
            flows = s.bad_timestamp,
            "flows stamped more than a day in the future (broken exporter clock) skipped"
        );
    }
    if s.late > 0 {
        tracing::warn!(flows = s.late, "flows for windows already closed (input out of time order; see --grace)");
    }
    if s.window.servers_over_limit > 0 {
        tracing::warn!(flows = s.window.servers_over_limit, "--max-servers reached: flows to further servers dropped");
    }
    if s.window.transit + s.window.internal > 0 {
        tracing::info!(
            transit = s.window.transit,
            internal = s.window.internal,
            "flows with no or both ends inside --subscribers skipped"
        );
    }
}

async fn analyze(args: FlowAnalyzeArgs, settings: &Settings, db_given: bool) -> anyhow::Result<ExitCode> {
    let setup = setup(&args.analysis)?;
    let format: Format = args.files.format.parse().map_err(anyhow::Error::msg)?;
    let seeds = load_seeds(&args.seeds)?;
    let dest = super::sink::open(settings, db_given, &args.center, args.analysis.sensor.as_deref()).await?;
    let mut sink = Sink { out: super::open_file_sink(&args.out, dest.any())?, dest, written: 0 };
    let show_progress = settings.show_progress;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<CncCandidate>>(16);
    let inputs = args.files.input.clone();
    let worker = tokio::task::spawn_blocking(move || -> anyhow::Result<Windows> {
        let mut windows = Windows::new(setup.window_config, setup.window_ms, setup.grace_ms);
        let mut detector = Detector::new(setup.model, setup.detect);
        read_files(&inputs, format, &seeds, &mut windows, show_progress, &mut |window| {
            let _ = tx.blocking_send(detector.candidates(&window, &seeds));
        })?;
        Ok(windows)
    });
    let started = Instant::now();
    while let Some(candidates) = rx.recv().await {
        sink.put(candidates).await?;
    }
    let windows = worker.await??;
    log_window_stats(&windows);
    sink.dest.finish().await?;
    tracing::info!(
        flows = windows.stats.flows,
        windows = windows.stats.windows,
        candidates = sink.written,
        stored = sink.dest.stored(),
        "flow analysis done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct CollectStats {
    listeners: Vec<String>,
    seconds: f64,
    decode: DecodeStats,
    /// Datagrams from sources --exporter does not name, dropped undecoded.
    refused: Refused,
    receive_errors: u64,
    windows: botscope_flow::analyze::AnalyzeStats,
    candidates: u64,
}

fn bind(address: SocketAddr, buffer_mib: usize) -> anyhow::Result<UdpSocket> {
    let domain = if address.is_ipv4() { socket2::Domain::IPV4 } else { socket2::Domain::IPV6 };
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    // A large buffer rides out bursts while a window is being scored; the kernel may cap it
    // (net.core.rmem_max), which is logged.
    let wanted = buffer_mib.clamp(1, 2048) * 1024 * 1024;
    let _ = socket.set_recv_buffer_size(wanted);
    let got = socket.recv_buffer_size().unwrap_or(0);
    if got < wanted {
        tracing::info!(
            listen = %address,
            wanted,
            got,
            "the kernel capped the receive buffer (raise net.core.rmem_max for heavy exporters)"
        );
    }
    socket.bind(&address.into()).with_context(|| format!("cannot listen on {address}"))?;
    let socket: UdpSocket = socket.into();
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    Ok(socket)
}

async fn collect(args: FlowCollectArgs, settings: &Settings, db_given: bool) -> anyhow::Result<ExitCode> {
    let setup = setup(&args.analysis)?;
    let seeds = Arc::new(load_seeds(&args.seeds)?);
    let duration = args.duration.map(|d| crate::stop::seconds(d, "--duration", 366.0 * 86400.0)).transpose()?;
    let listen: Vec<SocketAddr> = args
        .listen
        .iter()
        .map(|a| a.parse().with_context(|| format!("--listen {a}: expected ADDR:PORT")))
        .collect::<anyhow::Result<_>>()?;
    let exporters = Arc::new(Exporters::new(super::parse_prefixes(&args.exporter, "--exporter")?));
    // Before binding: a collector open to everyone must not even start listening.
    exporters.check_listeners(&listen)?;
    let sockets: Vec<UdpSocket> =
        listen.iter().map(|a| bind(*a, args.receive_buffer)).collect::<anyhow::Result<_>>()?;
    let listeners: Vec<String> =
        sockets.iter().map(|s| s.local_addr().map(|a| a.to_string()).unwrap_or_default()).collect();
    let dest = super::sink::open(settings, db_given, &args.center, args.analysis.sensor.as_deref()).await?;
    let mut sink = Sink { out: super::open_file_sink(&args.out, dest.any())?, dest, written: 0 };
    let mut flows_out = match &args.flows {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => None,
    };

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            crate::stop::signal_or_after(duration).await;
            stop.store(true, Ordering::Relaxed);
        });
    }
    // One receiving thread per socket decodes; the analysis thread windows and scores.
    let (flow_tx, flow_rx) = std::sync::mpsc::sync_channel::<Vec<Flow>>(256);
    let mut receivers = Vec::new();
    for socket in sockets {
        let stop = stop.clone();
        let flow_tx = flow_tx.clone();
        let exporters = exporters.clone();
        receivers.push(std::thread::spawn(move || -> (DecodeStats, Refused, u64) {
            let mut decoder = Decoder::new();
            let mut refused = Refused::default();
            // Datagrams from sources --exporter does not name never reach the decoder: they
            // could install templates and inject flows.
            let admit = |from: SocketAddr, refused: &mut Refused| {
                let allowed = exporters.allows(from.ip());
                if !allowed && refused.count(from.ip(), 1) {
                    tracing::warn!(source = %from.ip(), "datagrams from a source no --exporter names are dropped");
                }
                allowed
            };
            let mut buffer = vec![0u8; 65_536];
            let mut batch = Vec::with_capacity(4096);
            let mut errors = 0u64;
            let mut last_send = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                match socket.recv_from(&mut buffer) {
                    Ok((n, from)) => {
                        if admit(from, &mut refused) {
                            let now_ms = chrono::Utc::now().timestamp_millis();
                            // Errors are counted in the decoder's statistics.
                            let _ = decoder.decode(from, &buffer[..n], now_ms, &mut batch);
                        }
                    }
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                    Err(_) => errors += 1,
                }
                if batch.len() >= 4000 || (!batch.is_empty() && last_send.elapsed() > Duration::from_millis(200)) {
                    if flow_tx.send(std::mem::replace(&mut batch, Vec::with_capacity(4096))).is_err() {
                        break;
                    }
                    last_send = Instant::now();
                }
            }
            // Drain what the kernel already holds, so nothing received is lost at shutdown.
            let _ = socket.set_nonblocking(true);
            while let Ok((n, from)) = socket.recv_from(&mut buffer) {
                if admit(from, &mut refused) {
                    let _ = decoder.decode(from, &buffer[..n], chrono::Utc::now().timestamp_millis(), &mut batch);
                }
            }
            if !batch.is_empty() {
                let _ = flow_tx.send(batch);
            }
            (decoder.stats, refused, errors)
        }));
    }
    drop(flow_tx);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<CncCandidate>>(16);
    let analysis_seeds = seeds.clone();
    let write_flows = flows_out.is_some();
    let (flow_line_tx, flow_line_rx) = std::sync::mpsc::sync_channel::<Vec<Flow>>(64);
    let grace_ms = setup.grace_ms;
    let analysis = std::thread::spawn(move || -> Windows {
        let seeds = analysis_seeds;
        let mut windows = Windows::new(setup.window_config, setup.window_ms, setup.grace_ms);
        let mut detector = Detector::new(setup.model, setup.detect);
        // Windows close as flows move past them; when exporters fall silent for a grace period,
        // the wall clock closes what has ended, so results do not wait for the next flow.
        let mut last_flow = Instant::now();
        loop {
            let batch = match flow_rx.recv_timeout(Duration::from_secs(1)) {
                Ok(batch) => batch,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if last_flow.elapsed().as_millis() as i64 >= grace_ms.max(1000) {
                        windows.close_by_clock(chrono::Utc::now().timestamp_millis(), &mut |window| {
                            let _ = tx.blocking_send(detector.candidates(&window, &seeds));
                        });
                    }
                    continue;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            };
            last_flow = Instant::now();
            for flow in &batch {
                windows.add(flow, &seeds, false, &mut |window| {
                    let _ = tx.blocking_send(detector.candidates(&window, &seeds));
                });
            }
            if write_flows {
                let _ = flow_line_tx.send(batch);
            }
        }
        windows.finish(&mut |window| {
            let _ = tx.blocking_send(detector.candidates(&window, &seeds));
        });
        windows
    });
    let flow_writer = std::thread::spawn(move || -> std::io::Result<u64> {
        let mut written = 0;
        for batch in flow_line_rx {
            if let Some(out) = flows_out.as_mut() {
                for flow in &batch {
                    serde_json::to_writer(&mut *out, &FlowLine::from(flow))?;
                    out.write_all(b"\n")?;
                    written += 1;
                }
            }
        }
        if let Some(out) = flows_out.as_mut() {
            out.flush()?;
        }
        Ok(written)
    });
    let accepted: Vec<String> = exporters.nets().iter().map(|n| n.to_string()).collect();
    tracing::info!(
        listen = listeners.join(","),
        exporters = accepted.join(","),
        "collecting{}; Ctrl-C closes the open windows and writes them",
        if exporters.is_named() { "" } else { " from loopback exporters only (no --exporter)" }
    );
    let started = Instant::now();
    while let Some(candidates) = rx.recv().await {
        sink.put(candidates).await?;
    }
    let mut decode = DecodeStats::default();
    let mut refused = Refused::default();
    let mut receive_errors = 0;
    for receiver in receivers {
        let (stats, dropped, errors) = receiver.join().map_err(|_| anyhow::anyhow!("a receiver thread failed"))?;
        decode.merge(&stats);
        refused.merge(&dropped);
        receive_errors += errors;
    }
    let windows = analysis.join().map_err(|_| anyhow::anyhow!("the analysis thread failed"))?;
    let flows_written =
        flow_writer.join().map_err(|_| anyhow::anyhow!("the flow writer failed"))?.context("cannot write --flows")?;
    log_window_stats(&windows);
    let stats = CollectStats {
        listeners,
        seconds: started.elapsed().as_secs_f64(),
        decode,
        refused,
        receive_errors,
        windows: windows.stats.clone(),
        candidates: sink.written,
    };
    if let Some(path) = &args.stats {
        std::fs::write(path, serde_json::to_string_pretty(&stats)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let d = &stats.decode;
    let skipped = d.time_out_of_range + d.value_out_of_range;
    if d.malformed + d.unknown_version + d.unknown_template_sets + d.sequence_lost + skipped > 0 {
        tracing::warn!(
            malformed = d.malformed,
            unknown_version = d.unknown_version,
            unknown_template_sets = d.unknown_template_sets,
            sequence_lost = d.sequence_lost,
            time_out_of_range = d.time_out_of_range,
            value_out_of_range = d.value_out_of_range,
            "export problems counted"
        );
    }
    let r = &stats.refused;
    if r.datagrams > 0 {
        let sources: Vec<String> = r.sources.iter().map(|s| format!("{} ({})", s.address, s.datagrams)).collect();
        tracing::warn!(
            datagrams = r.datagrams,
            from_further_sources = r.other_sources,
            "datagrams from sources no --exporter names dropped: {}",
            sources.join(", ")
        );
    }
    sink.dest.finish().await?;
    tracing::info!(
        datagrams = d.datagrams,
        flows = d.flows,
        flows_written,
        windows = windows.stats.windows,
        candidates = sink.written,
        stored = sink.dest.stored(),
        "collector stopped after {:.1} s",
        stats.seconds
    );
    Ok(ExitCode::SUCCESS)
}

/// The parts of a `lab flows` truth file the model and the evaluation need.
#[derive(Default)]
struct Truth {
    /// (address, port) -> active periods (ms).
    cnc: HashMap<(Addr, u16), Vec<(i64, i64)>>,
    bots: HashSet<Addr>,
    victims: HashSet<(Addr, u16)>,
    downloads: HashSet<(Addr, u16)>,
}

impl Truth {
    fn load(path: &Path) -> anyhow::Result<Truth> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read the truth {}", path.display()))?;
        let mut truth = Truth::default();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("{}:{}: not a truth line", path.display(), i + 1))?;
            let ip = || -> anyhow::Result<Addr> {
                let ip: IpAddr = v["ip"]
                    .as_str()
                    .unwrap_or("")
                    .parse()
                    .with_context(|| format!("{}:{}: bad ip", path.display(), i + 1))?;
                Ok(Addr::from(ip))
            };
            let port = v["port"].as_u64().unwrap_or(0) as u16;
            let time = |key: &str| {
                v[key]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.timestamp_millis())
                    .with_context(|| format!("{}:{}: bad {key}", path.display(), i + 1))
            };
            match v["kind"].as_str() {
                Some("cnc") => truth.cnc.entry((ip()?, port)).or_default().push((time("from")?, time("until")?)),
                Some("bot") => {
                    truth.bots.insert(ip()?);
                }
                Some("victim") => {
                    truth.victims.insert((ip()?, port));
                }
                Some("download") => {
                    truth.downloads.insert((ip()?, port));
                }
                _ => {}
            }
        }
        anyhow::ensure!(
            !truth.cnc.is_empty(),
            "{}: no cnc lines; is it a `botscope lab flows --truth` file?",
            path.display()
        );
        Ok(truth)
    }

    fn is_cnc_in(&self, addr: Addr, port: u16, from: i64, until: i64) -> bool {
        self.cnc.get(&(addr, port)).is_some_and(|periods| periods.iter().any(|(a, b)| *a < until && from < *b))
    }

    /// The truth's bots, less a deterministic `withhold` share (as a telescope would miss some).
    fn seeds(&self, withhold: f64) -> Seeds {
        let mut seeds = Seeds::default();
        for bot in self.bots.iter().filter(|bot| !botscope_flow::seeds::withheld(**bot, withhold)) {
            seeds.insert_bot(*bot);
        }
        seeds
    }
}

fn seeds_for(paths: &[PathBuf], truth: &Truth, withhold: f64) -> anyhow::Result<Seeds> {
    anyhow::ensure!((0.0..1.0).contains(&withhold), "--withhold must be at least 0 and below 1");
    if paths.is_empty() { Ok(truth.seeds(withhold)) } else { load_seeds(paths) }
}

fn train(args: FlowTrainArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.files.input.len() == args.truth.len(), "give one --truth per --input");
    anyhow::ensure!(
        args.seeds.is_empty() || args.seeds.len() == args.files.input.len(),
        "give one --seeds per --input, or none"
    );
    anyhow::ensure!(args.alpha >= 0.0 && args.alpha.is_finite(), "--alpha must be a non-negative number");
    let format: Format = args.files.format.parse().map_err(anyhow::Error::msg)?;
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    let setup = setup(&args.analysis)?;
    for (i, input) in args.files.input.iter().enumerate() {
        let truth = Truth::load(&args.truth[i])?;
        let seeds = seeds_for(args.seeds.get(i).map(std::slice::from_ref).unwrap_or(&[]), &truth, args.withhold)?;
        // Held in memory: the single-host views go over the same flows again.
        let mut flows: Vec<(Flow, bool)> = Vec::new();
        let (reader, _) = open_input(input)?;
        input::read(reader, format, &mut |flow, initiator_known| flows.push((flow, initiator_known)))
            .with_context(|| format!("{}", input.display()))?;
        let mut learn = |seeds: &Seeds, flows: &mut dyn Iterator<Item = &(Flow, bool)>, min_seed_clients: u64| {
            let mut windows = Windows::new(setup.window_config.clone(), setup.window_ms, setup.grace_ms);
            let config = DetectConfig { min_seed_clients, ..setup.detect.clone() };
            let mut detector = Detector::new(setup.model.clone(), config);
            let mut closed = |window: Window| {
                for scored in detector.score(&window, seeds) {
                    labels.push(truth.is_cnc_in(scored.key.addr, scored.key.port, window.start_ms, window.end_ms));
                    rows.push(scored.features);
                }
            };
            for (flow, initiator_known) in flows {
                windows.add(flow, seeds, *initiator_known, &mut closed);
            }
            windows.finish(&mut closed);
        };
        learn(&seeds, &mut flows.iter(), setup.detect.min_seed_clients);
        let mut bots: Vec<Addr> = seeds.bots().collect();
        bots.sort();
        let step = (bots.len() / args.single_host_views.max(1)).max(1);
        for bot in bots.iter().step_by(step).take(args.single_host_views) {
            let mut alone = Seeds::default();
            alone.insert_bot(*bot);
            learn(&alone, &mut flows.iter().filter(|(f, _)| f.src == *bot || f.dst == *bot), 1);
        }
    }
    let positives = labels.iter().filter(|l| **l).count();
    tracing::info!(rows = rows.len(), cnc_rows = positives, "training");
    let described = format!(
        "{} flow file(s): {}; {} rows, {} C&C",
        args.files.input.len(),
        args.files
            .input
            .iter()
            .map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(", "),
        rows.len(),
        positives
    );
    let model = Model::train(&rows, &labels, args.alpha, described)?;
    let mut text = serde_json::to_string_pretty(&model)?;
    text.push('\n');
    std::fs::write(&args.out, text).with_context(|| format!("cannot write {}", args.out.display()))?;
    let threshold = args.analysis.min_score;
    let (mut tp, mut fp) = (0, 0);
    for (row, label) in rows.iter().zip(&labels) {
        if model.score(row) >= threshold {
            if *label { tp += 1 } else { fp += 1 }
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "model": args.out.display().to_string(),
            "rows": rows.len(),
            "cnc_rows": positives,
            "training_true_positive_rate": tp as f64 / positives.max(1) as f64,
            "training_false_positives": fp,
        })
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct Evaluation {
    threshold: f64,
    windows: u64,
    flows: u64,
    cnc_servers: usize,
    cnc_found: usize,
    true_positive_rate: f64,
    /// Non-C&C servers any bot contacted.
    negatives: usize,
    false_positives: usize,
    false_positive_rate: f64,
    /// The harder set: negatives scored at all (enough seed clients).
    scored_negatives: usize,
    false_positive_rate_scored: f64,
    false_positives_by_kind: BTreeMap<&'static str, usize>,
    detection_delay_minutes_median: Option<f64>,
    detection_delay_minutes_max: Option<f64>,
    missed: Vec<String>,
    false_positive_servers: Vec<String>,
}

fn evaluate(args: FlowEvaluateArgs) -> anyhow::Result<ExitCode> {
    let setup = setup(&args.analysis)?;
    let threshold = setup.detect.min_score;
    let format: Format = args.files.format.parse().map_err(anyhow::Error::msg)?;
    let truth = Truth::load(&args.truth)?;
    let seeds = seeds_for(&args.seeds, &truth, args.withhold)?;
    let mut windows = Windows::new(setup.window_config, setup.window_ms, setup.grace_ms);
    let mut detector = Detector::new(setup.model, setup.detect);
    // Per server: contacted by a bot; scored; first window end at which it was found.
    let mut contacted: HashSet<(Addr, u16)> = HashSet::new();
    let mut scored: HashSet<(Addr, u16)> = HashSet::new();
    let mut found: HashMap<(Addr, u16), i64> = HashMap::new();
    read_files(&args.files.input, format, &seeds, &mut windows, false, &mut |window| {
        for (key, _) in window.servers_with_bot_clients(|a| truth.bots.contains(&a)) {
            contacted.insert((key.addr, key.port));
        }
        for s in detector.score(&window, &seeds) {
            let key = (s.key.addr, s.key.port);
            scored.insert(key);
            if s.score >= threshold {
                let at = found.entry(key).or_insert(window.end_ms);
                *at = (*at).min(window.end_ms);
            }
        }
    })?;
    let cnc: Vec<&(Addr, u16)> = truth.cnc.keys().collect();
    let cnc_found = cnc.iter().filter(|k| found.contains_key(**k)).count();
    let mut delays: Vec<f64> = cnc
        .iter()
        .filter_map(|k| {
            let from = truth.cnc[*k].iter().map(|p| p.0).min()?;
            found.get(*k).map(|at| (*at - from) as f64 / 60_000.0)
        })
        .collect();
    delays.sort_by(f64::total_cmp);
    let is_cnc = |k: &(Addr, u16)| truth.cnc.contains_key(k);
    let negatives = contacted.iter().filter(|k| !is_cnc(k)).count();
    let scored_negatives = scored.iter().filter(|k| !is_cnc(k)).count();
    let false_positive_keys: Vec<&(Addr, u16)> = found.keys().filter(|k| !is_cnc(k)).collect();
    let mut by_kind = BTreeMap::new();
    for k in &false_positive_keys {
        let kind = if truth.victims.contains(*k) {
            "ddos_victim"
        } else if truth.downloads.contains(*k) {
            "download_server"
        } else {
            "other"
        };
        *by_kind.entry(kind).or_insert(0) += 1;
    }
    let name = |k: &(Addr, u16)| format!("{}:{}", k.0.to_ip(), k.1);
    let evaluation = Evaluation {
        threshold,
        windows: windows.stats.windows,
        flows: windows.stats.flows,
        cnc_servers: cnc.len(),
        cnc_found,
        true_positive_rate: cnc_found as f64 / cnc.len().max(1) as f64,
        negatives,
        false_positives: false_positive_keys.len(),
        false_positive_rate: false_positive_keys.len() as f64 / negatives.max(1) as f64,
        scored_negatives,
        false_positive_rate_scored: false_positive_keys.len() as f64 / scored_negatives.max(1) as f64,
        false_positives_by_kind: by_kind,
        detection_delay_minutes_median: delays.get(delays.len() / 2).copied(),
        detection_delay_minutes_max: delays.last().copied(),
        missed: cnc.iter().filter(|k| !found.contains_key(**k)).map(|k| name(k)).collect(),
        false_positive_servers: false_positive_keys.iter().map(|k| name(k)).collect(),
    };
    println!("{}", serde_json::to_string(&evaluation)?);
    Ok(ExitCode::SUCCESS)
}
