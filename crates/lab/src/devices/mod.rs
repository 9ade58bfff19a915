//! The device side of each emulated protocol, and the manners that make devices hard to survey.

pub mod http;
pub mod ssh;
pub mod telnet;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use botscope_net::splitmix;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fleet::{Behaviour, Device};

/// Login attempts judged by every device of this process (benchmarks compare tools by it).
pub static LOGIN_ATTEMPTS: AtomicU64 = AtomicU64::new(0);

/// A device and what it remembers while the lab runs.
#[derive(Debug)]
pub struct DeviceState {
    /// The device.
    pub device: Device,
    /// Failed logins per service family (0 telnet, 1 web, 2 ssh), for lockout.
    failures: [AtomicU32; 3],
    connections: AtomicU64,
}

impl DeviceState {
    /// A fresh state.
    pub fn new(device: Device) -> DeviceState {
        DeviceState { device, failures: Default::default(), connections: AtomicU64::new(0) }
    }

    /// Whether a login on `family` may still succeed (false once locked out).
    pub fn login_allowed(&self, family: usize) -> bool {
        LOGIN_ATTEMPTS.fetch_add(1, Ordering::Relaxed);
        match self.device.behaviour {
            Behaviour::Lockout { after } => self.failures[family].load(Ordering::Relaxed) < after,
            _ => true,
        }
    }

    /// Counts a failed login.
    pub fn login_failed(&self, family: usize) {
        self.failures[family].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection; returns how many came before.
    pub fn connections(&self) -> u64 {
        self.connections.fetch_add(1, Ordering::Relaxed)
    }
}

/// The device's think time before a prompt or page.
pub async fn pause(device: &Device) {
    if let Behaviour::SlowPrompt { delay_ms } = device.behaviour {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
}

/// The hostile manners; returns when the connection is over.
pub async fn misbehave(state: &DeviceState, mut stream: TcpStream, telnet: bool) -> std::io::Result<()> {
    let mut seed = state.device.seed ^ state.connections();
    match state.device.behaviour {
        Behaviour::Reset => {
            // Linger zero: close with RST. Never blocks (only non-zero linger does).
            #[allow(deprecated)]
            stream.set_linger(Some(Duration::ZERO))?;
            Ok(())
        }
        Behaviour::Tarpit => {
            // One byte every few seconds for up to ten minutes, reading and dropping input.
            let mut sink = [0u8; 256];
            for _ in 0..200 {
                tokio::select! {
                    read = stream.read(&mut sink) => if read? == 0 { return Ok(()) },
                    _ = tokio::time::sleep(Duration::from_secs(3)) => stream.write_all(b"\0").await?,
                }
            }
            Ok(())
        }
        Behaviour::EndlessNegotiation if telnet => {
            // Option requests without end, each a different option so no answer can settle them.
            for round in 0u32..1_000_000 {
                let option = (round % 250) as u8;
                stream.write_all(&[255, 253, option, 255, 251, option]).await?;
                if round % 64 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            Ok(())
        }
        _ => {
            // Garbage: up to 16 MiB of random bytes.
            let mut chunk = [0u8; 4096];
            for _ in 0..4096 {
                for byte in chunk.iter_mut() {
                    *byte = splitmix(&mut seed) as u8;
                }
                stream.write_all(&chunk).await?;
            }
            Ok(())
        }
    }
}

/// ADB: answers a CNXN with its own, naming the product.
pub async fn adb(state: &DeviceState, mut stream: TcpStream) -> std::io::Result<()> {
    let mut header = [0u8; 24];
    stream.read_exact(&mut header).await?;
    let length = botscope_net::wire::adb::payload_length(&header).unwrap_or(0).min(4096);
    let mut payload = vec![0u8; length];
    stream.read_exact(&mut payload).await?;
    if &header[..4] != b"CNXN" {
        return Ok(());
    }
    let model = &state.device.model.model;
    let banner = format!("device::ro.product.name={model};ro.product.model={model};ro.product.device={model};\0");
    let reply = botscope_net::wire::adb::message(*b"CNXN", 0x0100_0000, 4096, banner.as_bytes());
    stream.write_all(&reply).await
}
