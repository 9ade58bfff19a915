//! Running a fleet: one listener per device and service, on the device's own loopback address.
//!
//! Ports a device does not offer are closed, as on a real device: the kernel answers a connect
//! with a reset. A process may hold only so many descriptors, so large fleets are served by
//! several processes, each holding a partition of the devices (see `botscope lab devices`).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use botscope_model::Service;
use russh::keys::PrivateKey;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::LabError;
use crate::devices::{self, DeviceState, http::Flavour};
use crate::fleet::Device;

/// Longest any one conversation may last before the lab hangs up.
const CONVERSATION_LIMIT: Duration = Duration::from_secs(600);

/// Counters of a running lab.
#[derive(Debug, Default)]
pub struct LabStats {
    /// Connections accepted and handed to a device.
    pub accepted: AtomicU64,
    /// Connections dropped because too many were open.
    pub shed: AtomicU64,
}

struct Shared {
    ssh: HashMap<String, Arc<russh::server::Config>>,
    tls: TlsAcceptor,
    open: Arc<Semaphore>,
    stats: Arc<LabStats>,
}

/// Bound listeners, ready to serve.
pub struct Lab {
    listeners: Vec<(Service, TcpListener, Arc<DeviceState>)>,
    shared: Arc<Shared>,
}

/// Listeners a fleet needs (one per device and service).
pub fn listeners_needed(devices: &[Device]) -> usize {
    devices.iter().map(|d| d.services.len()).sum()
}

/// Binds one listener per device and service. `max_open` caps live conversations.
pub async fn bind(devices: Vec<Device>, seed: u64, max_open: usize) -> Result<Lab, LabError> {
    let key = host_key(seed)?;
    let mut ssh = HashMap::new();
    for device in &devices {
        if device.services.iter().any(|(s, _)| *s == Service::Ssh) {
            ssh.entry(device.model.id.clone())
                .or_insert_with(|| devices::ssh::config(&device.model.lab.ssh_version, &key));
        }
    }
    let mut listeners = Vec::new();
    for device in devices {
        let services = device.services.clone();
        let ip = device.ip;
        let state = Arc::new(DeviceState::new(device));
        for (service, port) in services {
            listeners.push((service, listen(SocketAddr::new(IpAddr::V4(ip), port))?, state.clone()));
        }
    }
    let shared = Shared {
        ssh,
        tls: tls_acceptor()?,
        open: Arc::new(Semaphore::new(max_open.max(1))),
        stats: Arc::new(LabStats::default()),
    };
    Ok(Lab { listeners, shared: Arc::new(shared) })
}

impl Lab {
    /// The service ports listened on (each on many addresses).
    pub fn ports(&self) -> Vec<(Service, u16)> {
        let mut ports: Vec<(Service, u16)> =
            self.listeners.iter().map(|(s, l, _)| (*s, l.local_addr().map(|a| a.port()).unwrap_or(0))).collect();
        ports.sort_by_key(|(_, port)| *port);
        ports.dedup();
        ports
    }

    /// The counters.
    pub fn stats(&self) -> Arc<LabStats> {
        self.shared.stats.clone()
    }

    /// Serves until `stop` completes.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        let mut tasks = tokio::task::JoinSet::new();
        for (service, listener, state) in self.listeners {
            let shared = self.shared.clone();
            tasks.spawn(accept_loop(service, listener, state, shared));
        }
        stop.await;
        tasks.abort_all();
        // Wait until every accept loop is gone: only then are the listeners closed, so a fleet
        // started next in the same process can bind the same addresses.
        while tasks.join_next().await.is_some() {}
    }
}

fn listen(addr: SocketAddr) -> Result<TcpListener, LabError> {
    let port = addr.port();
    let fail = |source: std::io::Error, hint: &'static str| LabError::Listen { port, source, hint };
    let socket = TcpSocket::new_v4().map_err(|e| fail(e, " (out of file descriptors? fewer devices per process)"))?;
    socket.set_reuseaddr(true).map_err(|e| fail(e, ""))?;
    socket
        .bind(addr)
        .map_err(|e| fail(e, " (is another program or lab using this port? choose others with --ports)"))?;
    socket.listen(1024).map_err(|e| fail(e, ""))
}

async fn accept_loop(service: Service, listener: TcpListener, state: Arc<DeviceState>, shared: Arc<Shared>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of descriptors or similar: back off instead of spinning.
                tracing::warn!(%error, "lab accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = shared.open.clone().try_acquire_owned() else {
            shared.stats.shed.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        shared.stats.accepted.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let (shared, state) = (shared.clone(), state.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let _ = tokio::time::timeout(CONVERSATION_LIMIT, converse(service, state, stream, &shared)).await;
        });
    }
}

async fn converse(service: Service, state: Arc<DeviceState>, stream: tokio::net::TcpStream, shared: &Shared) {
    if state.device.behaviour.hostile() {
        let _ = devices::misbehave(&state, stream, service == Service::Telnet).await;
        return;
    }
    let _ = match service {
        Service::Telnet => devices::telnet::serve(&state, stream).await,
        Service::Http => devices::http::serve(&state, stream, Flavour::Web).await,
        Service::Cwmp => devices::http::serve(&state, stream, Flavour::Cwmp).await,
        Service::Https => match tokio::time::timeout(Duration::from_secs(10), shared.tls.accept(stream)).await {
            Ok(Ok(tls)) => devices::http::serve(&state, tls, Flavour::Web).await,
            _ => Ok(()),
        },
        Service::Ssh => {
            let Some(config) = shared.ssh.get(&state.device.model.id).cloned() else { return };
            let _ = devices::ssh::serve(state.clone(), config, stream).await;
            Ok(())
        }
        Service::Adb => devices::adb(&state, stream).await,
        _ => Ok(()),
    };
}

fn host_key(seed: u64) -> Result<PrivateKey, LabError> {
    let mut state = seed ^ 0x55_4a_6b_65_79;
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(8) {
        chunk.copy_from_slice(&botscope_net::splitmix(&mut state).to_le_bytes());
    }
    let keypair = russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&bytes);
    Ok(PrivateKey::from(keypair))
}

fn tls_acceptor() -> Result<TlsAcceptor, LabError> {
    let keys = |e: &dyn std::fmt::Display| LabError::Keys(e.to_string());
    let certified =
        rcgen::generate_simple_self_signed(vec!["lab.botscope.invalid".to_string()]).map_err(|e| keys(&e))?;
    let cert = certified.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| keys(&e))?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|e| keys(&e))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
