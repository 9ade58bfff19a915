//! One window of flows as a client-server graph.
//!
//! Each flow is oriented (which end is the subscriber, which the server), then counted on the
//! server (port and protocol included: one host may run a C&C on one port and a web site on
//! another) and on the edge between client and server. Memory is bounded: servers beyond
//! `max_servers` are counted and dropped, and a server keeps edges for its first
//! `edges_per_server` clients plus every known bot; further clients only reach its distinct
//! count (a HyperLogLog). A resolver every subscriber uses thus costs a few kilobytes, not a
//! million edges.

use botscope_net::packet::Addr;
use botscope_net::sketch::{Distinct, mix};
use ipnet::IpNet;
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::flow::{Flow, protocol};
use crate::seeds::Seeds;

/// Address ranges of the ISP's own subscribers.
#[derive(Debug, Clone, Default)]
pub struct Subscribers {
    ranges: Vec<(u128, u128)>,
}

impl Subscribers {
    /// From prefixes (IPv4 prefixes match IPv4 addresses only).
    pub fn new(prefixes: &[IpNet]) -> Self {
        let mut ranges: Vec<(u128, u128)> =
            prefixes.iter().map(|p| (Addr::from(p.network()).0, Addr::from(p.broadcast()).0)).collect();
        ranges.sort_unstable();
        // Merged, so the one range starting at or before an address decides.
        let mut merged: Vec<(u128, u128)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            match merged.last_mut() {
                Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        Subscribers { ranges: merged }
    }

    /// Whether any prefix was given.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether `addr` is a subscriber address.
    #[inline]
    pub fn contains(&self, addr: Addr) -> bool {
        let i = self.ranges.partition_point(|(start, _)| *start <= addr.0);
        i > 0 && addr.0 <= self.ranges[i - 1].1
    }
}

/// Limits and orientation for a window.
#[derive(Debug, Clone)]
pub struct WindowConfig {
    /// The ISP's subscriber prefixes. When given, the subscriber end of each flow is the client
    /// and flows with no or both ends inside are skipped; when empty, the initiator (for
    /// bidirectional sources), a known bot, or the end with the lower port is the server side.
    pub subscribers: Subscribers,
    /// Servers kept at most per window.
    pub max_servers: usize,
    /// Clients kept as edges per server (known bots always are).
    pub edges_per_server: usize,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig { subscribers: Subscribers::default(), max_servers: 2_000_000, edges_per_server: 256 }
    }
}

/// A server: an address, a port and a protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerKey {
    /// Address.
    pub addr: Addr,
    /// Port (0 for ICMP and protocols without ports).
    pub port: u16,
    /// IP protocol number.
    pub protocol: u8,
}

/// Per-edge state (one client, one server).
#[derive(Debug, Clone)]
pub(crate) struct Edge {
    pub(crate) client: u32,
    pub(crate) server: u32,
    /// Flows from the client to the server (contacts).
    pub(crate) contacts: u32,
    /// Start times of the first contacts, for periodicity.
    pub(crate) starts: Vec<i64>,
    /// When the first contact started and the last one ended: a session that stays open spans
    /// the window whether an exporter cut it into ten records or Zeek logged it as one.
    pub(crate) first_ms: i64,
    pub(crate) last_end_ms: i64,
    /// A client contact that did not fail: a TCP flow past its handshake, or one with a reply
    /// counted in it.
    pub(crate) completed: bool,
    /// A record from the server that is no refusal (TCP without RST; any UDP).
    pub(crate) replied: bool,
}

impl Edge {
    /// Whether the server answered the client: a reply to a contact the client made. A server's
    /// records alone (a closed port's resets, an inbound scan of the client) are no answer, and
    /// a one-way UDP record says nothing either way.
    pub(crate) fn answered(&self) -> bool {
        self.completed || (self.replied && self.contacts > 0)
    }
}

/// Start times kept per edge.
const STARTS_KEPT: usize = 48;

/// Per-server state.
#[derive(Debug, Clone)]
pub(crate) struct Server {
    pub(crate) key: ServerKey,
    pub(crate) first_ms: i64,
    pub(crate) last_ms: i64,
    pub(crate) contacts: u64,
    pub(crate) packets_up: u64,
    pub(crate) bytes_up: u64,
    pub(crate) packets_down: u64,
    pub(crate) bytes_down: u64,
    pub(crate) duration_ms: u64,
    pub(crate) failed: u64,
    pub(crate) clients: Distinct,
    pub(crate) edges: Vec<u32>,
    pub(crate) edges_full: bool,
}

/// What a window skipped, for the statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WindowStats {
    /// Flows added.
    pub flows: u64,
    /// Flows with both ends inside the subscriber prefixes.
    pub internal: u64,
    /// Flows with neither end inside them.
    pub transit: u64,
    /// Flows to servers beyond `max_servers`.
    pub servers_over_limit: u64,
}

/// One window under construction.
pub struct Window {
    config: WindowConfig,
    /// Inclusive start, milliseconds.
    pub start_ms: i64,
    /// Exclusive end, milliseconds.
    pub end_ms: i64,
    pub(crate) clients: Vec<(Addr, bool)>,
    client_index: FxHashMap<Addr, u32>,
    pub(crate) servers: Vec<Server>,
    server_index: FxHashMap<ServerKey, u32>,
    pub(crate) edges: Vec<Edge>,
    edge_index: FxHashMap<(u32, u32), u32>,
    /// Counters.
    pub stats: WindowStats,
    /// Set when the window is scored again (it took late flows, or the window after it changed
    /// its scores): the end of the latest window closed by then, in flow time.
    pub revised_at_ms: Option<i64>,
}

/// TCP flag bits.
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const RST: u8 = 0x04;

impl Window {
    /// An empty window over `[start_ms, end_ms)`.
    pub fn new(config: WindowConfig, start_ms: i64, end_ms: i64) -> Self {
        Window {
            config,
            start_ms,
            end_ms,
            clients: Vec::new(),
            client_index: FxHashMap::default(),
            servers: Vec::new(),
            server_index: FxHashMap::default(),
            edges: Vec::new(),
            edge_index: FxHashMap::default(),
            stats: WindowStats::default(),
            revised_at_ms: None,
        }
    }

    /// Whether `addr` is inside the subscriber prefixes.
    pub fn is_subscriber(&self, addr: Addr) -> bool {
        self.config.subscribers.contains(addr)
    }

    /// For evaluation: every server with the number of its kept clients that `is_bot` says are
    /// bots (servers without such clients are left out).
    pub fn servers_with_bot_clients(&self, is_bot: impl Fn(Addr) -> bool) -> Vec<(ServerKey, u64)> {
        self.servers
            .iter()
            .filter_map(|s| {
                let bots =
                    s.edges.iter().filter(|e| is_bot(self.clients[self.edges[**e as usize].client as usize].0)).count()
                        as u64;
                (bots > 0).then_some((s.key, bots))
            })
            .collect()
    }

    /// Servers held.
    pub fn server_count(&self) -> usize {
        self.servers.len()
    }

    /// Adds a flow. `initiator_known` says the source is the side that opened the connection
    /// (Zeek, Argus), which decides orientation when no subscriber prefixes are given.
    pub fn add(&mut self, flow: &Flow, seeds: &Seeds, initiator_known: bool) {
        let Some(forward) = self.orient(flow, seeds, initiator_known) else {
            return;
        };
        self.stats.flows += 1;
        let (client, server_addr, server_port) =
            if forward { (flow.src, flow.dst, flow.dst_port) } else { (flow.dst, flow.src, flow.src_port) };
        let port = match flow.protocol {
            protocol::TCP | protocol::UDP => server_port,
            _ => 0,
        };
        let key = ServerKey { addr: server_addr, port, protocol: flow.protocol };
        let server_id = match self.server_index.get(&key) {
            Some(id) => *id,
            None => {
                if self.servers.len() >= self.config.max_servers {
                    self.stats.servers_over_limit += 1;
                    return;
                }
                let id = self.servers.len() as u32;
                self.servers.push(Server {
                    key,
                    first_ms: flow.start_ms,
                    last_ms: flow.end_ms,
                    contacts: 0,
                    packets_up: 0,
                    bytes_up: 0,
                    packets_down: 0,
                    bytes_down: 0,
                    duration_ms: 0,
                    failed: 0,
                    clients: Distinct::default(),
                    edges: Vec::new(),
                    edges_full: false,
                });
                self.server_index.insert(key, id);
                id
            }
        };
        let is_bot = seeds.is_bot(client);
        let failed = forward
            && if flow.protocol == protocol::TCP {
                // A handshake that never completed: SYN without ACK, or no reply at all from a
                // bidirectional source.
                (flow.tcp_flags & SYN != 0 && flow.tcp_flags & ACK == 0) || (initiator_known && flow.reply_packets == 0)
            } else {
                initiator_known && flow.reply_packets == 0
            };
        let server = &mut self.servers[server_id as usize];
        server.first_ms = server.first_ms.min(flow.start_ms);
        server.last_ms = server.last_ms.max(flow.end_ms);
        // Counts come from exporters and files: a forged 2^64-1 must not wrap a server's totals.
        if forward {
            server.contacts += 1;
            server.packets_up = server.packets_up.saturating_add(flow.packets);
            server.bytes_up = server.bytes_up.saturating_add(flow.bytes);
            server.packets_down = server.packets_down.saturating_add(flow.reply_packets);
            server.bytes_down = server.bytes_down.saturating_add(flow.reply_bytes);
            let duration = flow.end_ms.saturating_sub(flow.start_ms).max(0) as u64;
            server.duration_ms = server.duration_ms.saturating_add(duration);
            server.failed += u64::from(failed);
        } else {
            server.packets_down = server.packets_down.saturating_add(flow.packets);
            server.bytes_down = server.bytes_down.saturating_add(flow.bytes);
        }
        server.clients.insert(mix(client.0) as u32);
        let keep_edge = is_bot || server.edges.len() < self.config.edges_per_server;
        if !keep_edge {
            server.edges_full = true;
            return;
        }
        let client_id = match self.client_index.get(&client) {
            Some(id) => *id,
            None => {
                let id = self.clients.len() as u32;
                self.clients.push((client, is_bot));
                self.client_index.insert(client, id);
                id
            }
        };
        let edge_id = match self.edge_index.get(&(client_id, server_id)) {
            Some(id) => *id,
            None => {
                let id = self.edges.len() as u32;
                self.edges.push(Edge {
                    client: client_id,
                    server: server_id,
                    contacts: 0,
                    starts: Vec::new(),
                    first_ms: flow.start_ms,
                    last_end_ms: flow.end_ms,
                    completed: false,
                    replied: false,
                });
                self.edge_index.insert((client_id, server_id), id);
                self.servers[server_id as usize].edges.push(id);
                id
            }
        };
        let edge = &mut self.edges[edge_id as usize];
        edge.first_ms = edge.first_ms.min(flow.start_ms);
        edge.last_end_ms = edge.last_end_ms.max(flow.end_ms);
        if forward {
            edge.completed |= !failed && (flow.protocol == protocol::TCP || initiator_known || flow.reply_packets > 0);
        } else {
            edge.replied |= flow.protocol != protocol::TCP || flow.tcp_flags & RST == 0;
        }
        if forward {
            edge.contacts = edge.contacts.saturating_add(1);
            if edge.starts.len() < STARTS_KEPT {
                edge.starts.push(flow.start_ms);
            }
        }
    }

    /// Some(true) when `src` is the client, Some(false) when `dst` is, None to skip.
    fn orient(&mut self, flow: &Flow, seeds: &Seeds, initiator_known: bool) -> Option<bool> {
        let subscribers = &self.config.subscribers;
        if !subscribers.is_empty() {
            return match (subscribers.contains(flow.src), subscribers.contains(flow.dst)) {
                (true, false) => Some(true),
                (false, true) => Some(false),
                (true, true) => {
                    self.stats.internal += 1;
                    None
                }
                (false, false) => {
                    self.stats.transit += 1;
                    None
                }
            };
        }
        if initiator_known {
            return Some(true);
        }
        match (seeds.is_bot(flow.src), seeds.is_bot(flow.dst)) {
            (true, false) => return Some(true),
            (false, true) => return Some(false),
            _ => {}
        }
        if !matches!(flow.protocol, protocol::TCP | protocol::UDP) {
            return Some(true);
        }
        // An exporter's reply flow comes from the service port, which is usually the lower one.
        Some(flow.dst_port <= flow.src_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriber_ranges_match_nested_and_adjacent_prefixes() {
        let prefixes: Vec<IpNet> =
            ["127.16.0.0/12", "127.17.0.0/16", "127.40.0.0/16", "::1/128"].iter().map(|p| p.parse().unwrap()).collect();
        let s = Subscribers::new(&prefixes);
        let at = |a: &str| Addr::from(a.parse::<std::net::IpAddr>().unwrap());
        assert!(s.contains(at("127.31.255.255")));
        assert!(s.contains(at("127.17.3.3")));
        assert!(s.contains(at("127.40.0.1")));
        assert!(!s.contains(at("127.32.0.0")));
        assert!(!s.contains(at("127.41.0.0")));
        assert!(s.contains(at("::1")));
    }
}
