//! Exports in over UDP, C&C candidates out.

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use botscope_model::RecordSink;
use serde::Serialize;

use super::clock::{Clock, ClockCheck};
use super::{AnalysisConfig, SessionError, deliver, explain, io, log_window_stats};
use crate::analyze::AnalyzeStats;
use crate::decode::{DecodeStats, Decoder, Timeouts};
use crate::detect::{DetectStats, Detector};
use crate::exporters::{Exporters, Refused};
use crate::seeds::Seeds;
use crate::{Flow, FlowLine};

/// A collector's configuration.
pub struct CollectConfig {
    /// Windowing and scoring.
    pub analysis: AnalysisConfig,
    /// Known bots and C&C servers.
    pub seeds: Seeds,
    /// UDP addresses to listen on.
    pub listen: Vec<SocketAddr>,
    /// Whose datagrams are decoded; with none named, loopback only.
    pub exporters: Exporters,
    /// Receive buffer wanted per socket, in MiB (the kernel may cap it).
    pub receive_buffer_mib: usize,
    /// Also write every decoded flow as a JSON line here.
    pub flows_out: Option<PathBuf>,
    /// Set to stop: the open windows are then closed and delivered.
    pub stop: Arc<AtomicBool>,
    /// Whose clock stamps the flows.
    pub clock: Clock,
}

/// What a collector did.
#[derive(Debug, Clone, Serialize)]
pub struct CollectStats {
    /// The addresses it listened on.
    pub listeners: Vec<String>,
    /// How long it ran.
    pub seconds: f64,
    /// Decoder counters, summed over the sockets.
    pub decode: DecodeStats,
    /// Datagrams from sources --exporter does not name, dropped undecoded.
    pub refused: Refused,
    /// Errors receiving datagrams.
    pub receive_errors: u64,
    /// Exporters whose flows were stamped implausibly far ahead (dropped).
    pub clocks: ClockCheck,
    /// The flow timeouts exporters announced in their options data.
    pub exporter_timeouts: std::collections::BTreeMap<std::net::IpAddr, Timeouts>,
    /// Window counters.
    pub windows: AnalyzeStats,
    /// Candidates handed to the sink.
    pub candidates: u64,
    /// What scoring did.
    pub detect: DetectStats,
    /// Flows written to `flows_out`.
    pub flows_written: u64,
}

fn bind<E: std::error::Error + 'static>(address: SocketAddr, buffer_mib: usize) -> Result<UdpSocket, SessionError<E>> {
    let listen = |source| SessionError::Listen { address, source };
    let domain = if address.is_ipv4() { socket2::Domain::IPV4 } else { socket2::Domain::IPV6 };
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP)).map_err(listen)?;
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
    socket.bind(&address.into()).map_err(listen)?;
    let socket: UdpSocket = socket.into();
    socket.set_read_timeout(Some(Duration::from_millis(100))).map_err(listen)?;
    Ok(socket)
}

/// One socket's receiving loop: decodes what admitted exporters send until `stop`, then drains
/// what the kernel already holds, so nothing received is lost at shutdown.
fn receive(
    socket: UdpSocket,
    exporters: &Exporters,
    clock: Clock,
    stop: &AtomicBool,
    flow_tx: &std::sync::mpsc::SyncSender<Vec<Flow>>,
) -> (DecodeStats, Refused, u64, ClockCheck, std::collections::BTreeMap<std::net::IpAddr, Timeouts>) {
    let mut decoder = Decoder::new();
    let mut clocks = ClockCheck::default();
    // Decodes one datagram into the batch, then checks or restamps what it added.
    let mut decode = |decoder: &mut Decoder, from: SocketAddr, datagram: &[u8], batch: &mut Vec<Flow>| {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let before = batch.len();
        // Errors are counted in the decoder's statistics.
        let _ = decoder.decode(from, datagram, now_ms, batch);
        match clock {
            Clock::Exporter => clocks.check(from.ip(), &batch[before..], now_ms),
            Clock::Arrival => clock.apply(&mut batch[before..], now_ms),
        }
    };
    let mut refused = Refused::default();
    // Datagrams from sources --exporter does not name never reach the decoder: they could
    // install templates and inject flows.
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
                    decode(&mut decoder, from, &buffer[..n], &mut batch);
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
    let _ = socket.set_nonblocking(true);
    while let Ok((n, from)) = socket.recv_from(&mut buffer) {
        if admit(from, &mut refused) {
            decode(&mut decoder, from, &buffer[..n], &mut batch);
        }
    }
    if !batch.is_empty() {
        let _ = flow_tx.send(batch);
    }
    let timeouts = decoder.timeouts();
    (decoder.stats, refused, errors, clocks, timeouts)
}

/// Names each exporter that may send flows later than a closed window takes them.
fn warn_of_timeouts(timeouts: &std::collections::BTreeMap<std::net::IpAddr, Timeouts>, grace_ms: i64, late_ms: i64) {
    let allowed_s = (grace_ms.max(0) + late_ms.max(0)) / 1000;
    for (exporter, announced) in timeouts {
        if let Some(longest) = announced.longest_s().filter(|s| *s as i64 > allowed_s) {
            tracing::warn!(
                %exporter,
                active_timeout_s = announced.active_s,
                idle_timeout_s = announced.idle_s,
                "this exporter may send a flow {longest} s after it began, later than --grace plus --late ({allowed_s} s): \
                 such flows are lost; raise --late"
            );
        }
    }
}

/// Listens on `config.listen` until `config.stop` is set, then closes the open windows; the
/// candidates of every window go to `sink` as it closes. One thread per socket decodes, one
/// windows and scores, one writes `flows_out`.
pub async fn collect<S: RecordSink>(
    config: CollectConfig,
    sink: &mut S,
) -> Result<CollectStats, SessionError<S::Error>> {
    let CollectConfig { analysis, seeds, listen, exporters, receive_buffer_mib, flows_out, stop, clock } = config;
    // Before binding: a collector open to everyone must not even start listening.
    exporters.check_listeners(&listen)?;
    let sockets: Vec<UdpSocket> =
        listen.iter().map(|a| bind(*a, receive_buffer_mib)).collect::<Result<_, SessionError<S::Error>>>()?;
    let listeners: Vec<String> =
        sockets.iter().map(|s| s.local_addr().map(|a| a.to_string()).unwrap_or_default()).collect();
    let mut flows_file = match &flows_out {
        Some(path) => {
            Some(std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| io("cannot create", path, e))?))
        }
        None => None,
    };
    let exporters = Arc::new(exporters);
    let (flow_tx, flow_rx) = std::sync::mpsc::sync_channel::<Vec<Flow>>(256);
    let receivers: Vec<_> = sockets
        .into_iter()
        .map(|socket| {
            let (stop, flow_tx, exporters) = (stop.clone(), flow_tx.clone(), exporters.clone());
            std::thread::spawn(move || receive(socket, &exporters, clock, &stop, &flow_tx))
        })
        .collect();
    drop(flow_tx);

    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let write_flows = flows_file.is_some();
    let (flow_line_tx, flow_line_rx) = std::sync::mpsc::sync_channel::<Vec<Flow>>(64);
    let (grace_ms, late_ms) = (analysis.grace_ms, analysis.late_ms);
    let detect_config = analysis.detect.clone();
    let analysis = std::thread::spawn(move || {
        let mut windows = analysis.windows();
        let mut detector = Detector::new(analysis.model, analysis.detect);
        // Windows close as flows move past them; when exporters fall silent for a grace period,
        // the wall clock closes what has ended, so results do not wait for the next flow.
        let mut last_flow = Instant::now();
        loop {
            let batch = match flow_rx.recv_timeout(Duration::from_secs(1)) {
                Ok(batch) => batch,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if last_flow.elapsed().as_millis() as i64 >= grace_ms.max(1000) {
                        windows.close_by_clock(chrono::Utc::now().timestamp_millis(), &mut |window| {
                            let _ = tx.blocking_send(detector.candidates(window, &seeds));
                            detector.score_again()
                        });
                    }
                    continue;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            };
            last_flow = Instant::now();
            for flow in &batch {
                windows.add(flow, &seeds, false, &mut |window| {
                    let _ = tx.blocking_send(detector.candidates(window, &seeds));
                    detector.score_again()
                });
            }
            if write_flows {
                let _ = flow_line_tx.send(batch);
            }
        }
        windows.finish(&mut |window| {
            let _ = tx.blocking_send(detector.candidates(window, &seeds));
            detector.score_again()
        });
        (windows, detector.stats)
    });
    let flow_writer = std::thread::spawn(move || -> std::io::Result<u64> {
        let mut written = 0;
        for batch in flow_line_rx {
            if let Some(out) = flows_file.as_mut() {
                for flow in &batch {
                    serde_json::to_writer(&mut *out, &FlowLine::from(flow))?;
                    out.write_all(b"\n")?;
                    written += 1;
                }
            }
        }
        if let Some(out) = flows_file.as_mut() {
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
    let delivered = deliver(&mut rx, sink).await;
    if delivered.is_err() {
        // The sink failed: stop receiving, so the threads below end.
        stop.store(true, Ordering::Relaxed);
    }
    drop(rx);
    let mut decode = DecodeStats::default();
    let mut refused = Refused::default();
    let mut receive_errors = 0;
    let mut clocks = ClockCheck::default();
    let mut exporter_timeouts: std::collections::BTreeMap<std::net::IpAddr, Timeouts> = Default::default();
    for receiver in receivers {
        let (stats, dropped, errors, clock, timeouts) =
            receiver.join().map_err(|_| SessionError::Worker("receiver"))?;
        decode.merge(&stats);
        refused.merge(&dropped);
        receive_errors += errors;
        clocks.merge(&clock);
        for (exporter, announced) in timeouts {
            let entry = exporter_timeouts.entry(exporter).or_default();
            entry.active_s = entry.active_s.max(announced.active_s);
            entry.idle_s = entry.idle_s.max(announced.idle_s);
        }
    }
    warn_of_timeouts(&exporter_timeouts, grace_ms, late_ms);
    let (windows, detect) = analysis.join().map_err(|_| SessionError::Worker("analysis"))?;
    let flows_written = flow_writer
        .join()
        .map_err(|_| SessionError::Worker("flow writer"))?
        .map_err(|e| io("cannot write", flows_out.as_deref().unwrap_or(std::path::Path::new("--flows")), e))?;
    let candidates = delivered?;
    log_window_stats(&windows);
    explain(&detect, &detect_config);
    Ok(CollectStats {
        listeners,
        seconds: started.elapsed().as_secs_f64(),
        decode,
        refused,
        receive_errors,
        clocks,
        exporter_timeouts,
        windows: windows.stats,
        candidates,
        detect,
        flows_written,
    })
}
