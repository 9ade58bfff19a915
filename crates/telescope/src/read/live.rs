//! Live capture from a network interface through libpcap.

use super::Frame;

/// An open capture on one interface.
pub struct LiveCapture {
    capture: pcap::Capture<pcap::Active>,
    linktype: u32,
    idle_wait: std::time::Duration,
}

/// Errors from libpcap.
#[derive(Debug, thiserror::Error)]
#[error("live capture on {interface}: {message}")]
pub struct LiveError {
    /// The interface asked for.
    pub interface: String,
    /// libpcap's words.
    pub message: String,
}

/// What a poll of the capture produced.
pub enum Poll<'a> {
    /// A frame.
    Frame(Frame<'a>),
    /// Nothing arrived within the poll interval.
    Idle,
}

impl LiveCapture {
    /// Opens `interface` in promiscuous mode with libpcap's largest snap length; `poll_ms` bounds
    /// how long one poll waits, so the caller can check for a stop request between polls.
    pub fn open(interface: &str, poll_ms: i32) -> Result<Self, LiveError> {
        let error = |e: pcap::Error| LiveError { interface: interface.to_string(), message: e.to_string() };
        let capture = pcap::Capture::from_device(interface)
            .map_err(error)?
            .promisc(true)
            .snaplen(262_144)
            .timeout(poll_ms)
            .immediate_mode(true)
            .buffer_size(32 << 20)
            .open()
            .map_err(error)?
            // Non-blocking: with immediate mode libpcap may ignore the read timeout, and a stop
            // request must not wait for the next packet.
            .setnonblock()
            .map_err(error)?;
        let linktype = capture.get_datalink().0 as u32;
        Ok(LiveCapture {
            capture,
            linktype,
            idle_wait: std::time::Duration::from_millis(poll_ms.clamp(1, 1000) as u64),
        })
    }

    /// The interface's link type.
    pub fn linktype(&self) -> u32 {
        self.linktype
    }

    /// The next frame, or `Idle` after waiting a poll interval (at most) when none is queued.
    pub fn poll(&mut self) -> Result<Poll<'_>, pcap::Error> {
        match self.capture.next_packet() {
            Ok(packet) => {
                let header = packet.header;
                let ts_ns = (header.ts.tv_sec as u64)
                    .saturating_mul(1_000_000_000)
                    .saturating_add((header.ts.tv_usec as u64).saturating_mul(1_000));
                Ok(Poll::Frame(Frame { ts_ns, linktype: self.linktype, data: packet.data, orig_len: header.len }))
            }
            Err(pcap::Error::TimeoutExpired) => {
                std::thread::sleep(self.idle_wait);
                Ok(Poll::Idle)
            }
            Err(e) => Err(e),
        }
    }

    /// Packets the kernel and libpcap dropped so far.
    pub fn dropped(&mut self) -> Option<u64> {
        self.capture.stats().ok().map(|s| u64::from(s.dropped) + u64::from(s.if_dropped))
    }
}
