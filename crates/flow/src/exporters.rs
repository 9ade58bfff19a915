//! Which exporters a collector takes datagrams from.
//!
//! A collector that decodes every datagram lets anyone who can reach its port install templates
//! and inject flows, and so choose what is reported as a C&C server. Datagrams from a source
//! outside the allowlist are dropped before the decoder sees them and counted. UDP source
//! addresses can be forged: the allowlist narrows who can feed the collector, it does not
//! authenticate them, so exporters' addresses should also be filtered at the network's edge.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;
use serde::Serialize;

/// Distinct refused sources kept one by one (for the log and the statistics); datagrams from
/// further sources are only counted, so a flood of forged sources costs nothing.
pub const MAX_REFUSED_SOURCES: usize = 16;

/// The addresses whose datagrams a collector accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exporters {
    nets: Vec<IpNet>,
    named: bool,
}

/// Why a collector must not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExporterError {
    /// A listener other hosts can reach, with no exporter named.
    #[error(
        "--listen {0} is not a loopback address, and no --exporter is given: name the exporters whose \
         datagrams to accept with --exporter CIDR (repeat for several). Without --exporter only \
         loopback exporters are accepted, and a collector open to everyone's templates can be fed \
         forged flows"
    )]
    OpenListenerWithoutExporters(SocketAddr),
}

impl Exporters {
    /// The exporters in `nets`; when `nets` is empty, loopback only (127.0.0.0/8 and ::1).
    pub fn new(nets: Vec<IpNet>) -> Self {
        if nets.is_empty() {
            return Exporters::loopback();
        }
        Exporters { nets, named: true }
    }

    /// Loopback exporters only: the default when none is named.
    pub fn loopback() -> Self {
        let v4 = IpNet::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8).expect("valid prefix");
        let v6 = IpNet::from(IpAddr::V6(Ipv6Addr::LOCALHOST));
        Exporters { nets: vec![v4, v6], named: false }
    }

    /// Whether the exporters were named (rather than the loopback default).
    pub fn is_named(&self) -> bool {
        self.named
    }

    /// The accepted prefixes.
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    /// Refuses to listen where other hosts can send while only the loopback default is in
    /// force: the operator has to say whom the collector serves.
    pub fn check_listeners(&self, listen: &[SocketAddr]) -> Result<(), ExporterError> {
        if self.named {
            return Ok(());
        }
        match listen.iter().find(|a| !a.ip().to_canonical().is_loopback()) {
            Some(open) => Err(ExporterError::OpenListenerWithoutExporters(*open)),
            None => Ok(()),
        }
    }

    /// Whether a datagram from `source` may be decoded.
    pub fn allows(&self, source: IpAddr) -> bool {
        // A dual-stack socket reports IPv4 peers as IPv4-mapped IPv6 addresses.
        let source = source.to_canonical();
        self.nets.iter().any(|net| net.contains(&source))
    }
}

/// One refused source and how many of its datagrams were dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusedSource {
    /// The datagrams' source address.
    pub address: IpAddr,
    /// Datagrams dropped.
    pub datagrams: u64,
}

/// Datagrams dropped because their source is not an accepted exporter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Refused {
    /// Datagrams dropped in all.
    pub datagrams: u64,
    /// The first [`MAX_REFUSED_SOURCES`] distinct sources.
    pub sources: Vec<RefusedSource>,
    /// Datagrams dropped from sources beyond those.
    pub other_sources: u64,
}

impl Refused {
    /// Counts `datagrams` dropped from `source`; true when the source is newly kept (worth a log
    /// line: at most [`MAX_REFUSED_SOURCES`] of them).
    pub fn count(&mut self, source: IpAddr, datagrams: u64) -> bool {
        let source = source.to_canonical();
        self.datagrams = self.datagrams.saturating_add(datagrams);
        if let Some(known) = self.sources.iter_mut().find(|s| s.address == source) {
            known.datagrams = known.datagrams.saturating_add(datagrams);
            return false;
        }
        if self.sources.len() < MAX_REFUSED_SOURCES {
            self.sources.push(RefusedSource { address: source, datagrams });
            return true;
        }
        self.other_sources = self.other_sources.saturating_add(datagrams);
        false
    }

    /// Adds another receiver's counts (one receiver runs per listening socket).
    pub fn merge(&mut self, other: &Refused) {
        for source in &other.sources {
            self.count(source.address, source.datagrams);
        }
        self.datagrams = self.datagrams.saturating_add(other.other_sources);
        self.other_sources = self.other_sources.saturating_add(other.other_sources);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn sock(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn named(prefixes: &[&str]) -> Exporters {
        Exporters::new(prefixes.iter().map(|p| p.parse().unwrap()).collect())
    }

    #[test]
    fn without_exporters_only_loopback_sources_are_accepted() {
        let e = Exporters::new(Vec::new());
        assert!(!e.is_named());
        for accepted in ["127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.2"] {
            assert!(e.allows(ip(accepted)), "{accepted}");
        }
        for refused in ["192.0.2.1", "10.0.0.1", "::2", "2001:db8::1", "::ffff:192.0.2.1", "0.0.0.0"] {
            assert!(!e.allows(ip(refused)), "{refused}");
        }
    }

    #[test]
    fn named_exporters_replace_the_loopback_default() {
        let e = named(&["192.0.2.0/24", "2001:db8::7/128", "127.0.0.1/32"]);
        assert!(e.is_named());
        assert!(e.allows(ip("192.0.2.200")) && e.allows(ip("2001:db8::7")) && e.allows(ip("127.0.0.1")));
        // A dual-stack socket reports IPv4 peers as mapped IPv6 addresses.
        assert!(e.allows(ip("::ffff:192.0.2.5")));
        assert!(!e.allows(ip("192.0.3.1")) && !e.allows(ip("2001:db8::8")));
        assert!(!e.allows(ip("127.0.0.2")) && !e.allows(ip("::1")), "loopback is no longer implied");
    }

    #[test]
    fn a_listener_others_can_reach_needs_named_exporters() {
        let default = Exporters::loopback();
        assert_eq!(default.check_listeners(&[sock("127.0.0.1:2055"), sock("[::1]:2055")]), Ok(()));
        for open in ["0.0.0.0:2055", "[::]:2055", "192.0.2.1:2055"] {
            let err = default.check_listeners(&[sock("127.0.0.1:9995"), sock(open)]).unwrap_err();
            assert_eq!(err, ExporterError::OpenListenerWithoutExporters(sock(open)));
            assert!(err.to_string().contains("--exporter"), "{err}");
        }
        assert_eq!(named(&["192.0.2.0/24"]).check_listeners(&[sock("0.0.0.0:2055")]), Ok(()));
    }

    #[test]
    fn refused_sources_are_bounded_and_counted_exactly() {
        let mut refused = Refused::default();
        assert!(refused.count(ip("192.0.2.1"), 1));
        assert!(!refused.count(ip("::ffff:192.0.2.1"), 1), "the same source, seen by a dual-stack socket");
        for i in 0..100u8 {
            refused.count(IpAddr::V4(Ipv4Addr::new(198, 51, 100, i)), 1);
        }
        assert_eq!(refused.datagrams, 102);
        assert_eq!(refused.sources.len(), MAX_REFUSED_SOURCES);
        assert_eq!(refused.sources[0], RefusedSource { address: ip("192.0.2.1"), datagrams: 2 });
        assert_eq!(refused.other_sources, 102 - 2 - (MAX_REFUSED_SOURCES as u64 - 1));
        let mut total = Refused::default();
        total.count(ip("192.0.2.1"), 5);
        total.merge(&refused);
        assert_eq!(total.datagrams, 107);
        assert_eq!(total.sources[0].datagrams, 7);
        assert_eq!(total.sources.len(), MAX_REFUSED_SOURCES);
        assert_eq!(total.datagrams, total.sources.iter().map(|s| s.datagrams).sum::<u64>() + total.other_sources);
    }
}
