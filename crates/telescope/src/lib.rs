//! botscope's darknet telescope, NICTER's role: read packets arriving at unused address space,
//! recognise who sends them and why, and turn that into per-window source activity (the daily
//! infected-host list each ISP is notified of), DDoS victims seen through backscatter, and the
//! statistics the government's report draws.
//!
//! The pieces: [`read`] (pcap, pcapng, compressed, live), [`packet`] (frame to header fields),
//! [`classify`] (signatures, behaviours and service categories loaded from data), and
//! [`Telescope`], which filters to the darknet, classifies each packet once and aggregates per
//! source per window in bounded memory. [`session`] drives it for a program: captures or a live
//! interface in, records out to any `RecordSink` as windows close.
//!
//! Boundaries: it reads captures and listens on an interface; it never sends a packet and knows
//! no store or centre (records go out through the caller's sink).
#![deny(missing_docs)]

mod aggregate;
pub mod classify;
pub use botscope_net::packet;
pub mod read;
pub mod session;
pub mod sketch;
pub mod stats;

use std::collections::BTreeMap;
use std::net::IpAddr;

use botscope_model::SourceActivity;
use ipnet::IpNet;

pub use classify::{Catalogue, CatalogueError};
use packet::{Addr, PacketSkip, Transport};
use read::{Frame, Skip};
pub use stats::Stats;

const DAY_NS: u64 = 86_400 * 1_000_000_000;

/// The darknet: the prefixes whose traffic is observed.
#[derive(Debug, Clone)]
pub struct Darknet {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
    prefixes: Vec<IpNet>,
}

impl Darknet {
    /// From the prefixes given.
    pub fn new(prefixes: &[IpNet]) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for net in prefixes {
            match net {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.netmask()))),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.netmask()))),
            }
        }
        Darknet { v4, v6, prefixes: prefixes.to_vec() }
    }

    /// Whether an address is in the darknet.
    #[inline]
    pub fn contains(&self, addr: Addr) -> bool {
        match addr.as_v4() {
            Some(a) => self.v4.iter().any(|&(net, mask)| a & mask == net),
            None => self.v6.iter().any(|&(net, mask)| addr.0 & mask == net),
        }
    }

    /// The prefixes.
    pub fn prefixes(&self) -> &[IpNet] {
        &self.prefixes
    }
}

/// How the telescope runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The darknet.
    pub darknet: Darknet,
    /// Window length in seconds (3600 or 86400 usually; windows are aligned to the Unix epoch,
    /// so daily windows are UTC days).
    pub window_seconds: u64,
    /// Telescope name written into records.
    pub sensor: Option<String>,
    /// Most sources kept per window; further new sources only count in the statistics.
    pub max_sources: usize,
    /// Frames stamped after this (ns since the epoch) are skipped as `bad_timestamp`; it moves on
    /// with the wall clock (a day ahead of it), so a long live capture is not cut off.
    pub latest_ns: Option<u64>,
}

/// Sources kept per window unless told otherwise (about 1 GiB at most).
pub const DEFAULT_MAX_SOURCES: usize = 2_000_000;

impl Config {
    /// Daily windows over `darknet`, with the default source cap, skipping frames stamped more
    /// than a day after now (a damaged record or a broken clock would otherwise close every open
    /// window early).
    pub fn new(darknet: Darknet) -> Config {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Config {
            darknet,
            window_seconds: 86_400,
            sensor: None,
            max_sources: DEFAULT_MAX_SOURCES,
            latest_ns: Some((now.as_secs() + 86_400).saturating_mul(1_000_000_000)),
        }
    }
}

/// Who holds an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The ISPs holding it (several when ISPs share the origin AS).
    pub isp: botscope_model::IspHandles,
    /// The ISP's country (ISO 3166-1 alpha-2), when the registry says.
    pub country: Option<String>,
}

/// Maps an address to who holds it.
pub type Attribute = Box<dyn Fn(IpAddr) -> Option<Owner> + Send>;

/// The telescope: feed it frames in time order, collect records as windows close.
pub struct Telescope<'c> {
    catalogue: &'c Catalogue,
    config: Config,
    window_ns: u64,
    windows: BTreeMap<u64, aggregate::Window>,
    days: stats::Days,
    newest_window: Option<u64>,
    category_totals: Vec<u64>,
    totals: stats::Totals,
    attribute: Option<Attribute>,
}

impl<'c> Telescope<'c> {
    /// A telescope with the given rules and settings.
    pub fn new(catalogue: &'c Catalogue, config: Config) -> Self {
        let window_ns = config.window_seconds.max(1).saturating_mul(1_000_000_000);
        Telescope {
            catalogue,
            window_ns,
            config,
            windows: BTreeMap::new(),
            days: stats::Days::default(),
            newest_window: None,
            category_totals: vec![0; catalogue.categories().len()],
            totals: stats::Totals::default(),
            attribute: None,
        }
    }

    /// Attributes sources to ISPs in records and statistics.
    pub fn with_attribution(mut self, attribute: Attribute) -> Self {
        self.attribute = Some(attribute);
        self
    }

    /// Counts a record the reader skipped.
    pub fn count_skip(&mut self, skip: Skip) {
        *self.totals.skipped.entry(skip.as_str().to_string()).or_default() += 1;
    }

    fn count_packet_skip(&mut self, skip: PacketSkip) {
        *self.totals.skipped.entry(skip.as_str().to_string()).or_default() += 1;
    }

    /// Run counters so far.
    pub fn totals(&self) -> &stats::Totals {
        &self.totals
    }

    /// Sources held in open windows.
    pub fn open_sources(&self) -> usize {
        self.windows.values().map(|w| w.sources.len()).sum()
    }

    /// A frame stamped after `latest_ns`: the limit is a day after the wall clock, and a live
    /// capture runs for months, so it moves on with the clock before the frame is judged.
    #[cold]
    fn later_is_plausible(&mut self, ts_ns: u64) -> bool {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let limit = (now.as_secs() + 86_400).saturating_mul(1_000_000_000);
        if let Some(latest) = self.config.latest_ns.as_mut() {
            *latest = (*latest).max(limit);
            return ts_ns <= *latest;
        }
        true
    }

    /// Takes one frame; records of windows it closes go to `emit`.
    #[inline]
    pub fn observe(&mut self, frame: &Frame<'_>, emit: &mut impl FnMut(SourceActivity)) {
        self.totals.frames += 1;
        if self.config.latest_ns.is_some_and(|latest| frame.ts_ns > latest) && !self.later_is_plausible(frame.ts_ns) {
            *self.totals.skipped.entry("bad_timestamp".to_string()).or_default() += 1;
            return;
        }
        let packet = match packet::parse(frame.linktype, frame.data) {
            Ok(p) => p,
            Err(skip) => return self.count_packet_skip(skip),
        };
        if !self.config.darknet.contains(packet.dst) {
            self.totals.outside_darknet += 1;
            return;
        }
        self.totals.darknet_packets += 1;
        let ts = frame.ts_ns;
        let catalogue = self.catalogue;
        let mask = catalogue.matches(&packet);
        let mirai = mask & catalogue.mirai_mask != 0;
        let category = catalogue.category(&packet, mask);
        self.category_totals[usize::from(category)] += 1;

        let day = self.days.get(ts / DAY_NS);
        day.packets += 1;
        if day.categories.is_empty() {
            day.categories = vec![0; catalogue.categories().len()];
        }
        day.categories[usize::from(category)] += 1;
        day.sources.insert(sketch::mix(packet.src.0));
        if mirai {
            *day.mirai.entry(packet.src).or_default() += 1;
        }
        if mask & catalogue.reply_mask != 0 {
            victim(day, &packet, ts, mask & catalogue.reply_mask);
        }

        let index = ts / self.window_ns;
        if self.newest_window != Some(index) && !self.enter_window(index, emit) {
            self.totals.late_packets += 1;
            return;
        }
        let window = self.windows.get_mut(&index).expect("enter_window opened it");
        let max_sources = self.config.max_sources;
        let is_reply = mask & catalogue.reply_mask != 0;
        let port = match packet.transport {
            Transport::Tcp { sport, dport, .. } => {
                Some((if is_reply { sport } else { dport }, aggregate::transport_code(botscope_model::Transport::Tcp)))
            }
            Transport::Udp { sport, dport } => {
                Some((if is_reply { sport } else { dport }, aggregate::transport_code(botscope_model::Transport::Udp)))
            }
            Transport::Icmp { .. } => Some((0, aggregate::transport_code(botscope_model::Transport::Icmp))),
            Transport::Other | Transport::Truncated => None,
        };
        let len = window.sources.len();
        let state = match window.sources.get_mut(&packet.src) {
            Some(s) => s,
            None if len >= max_sources => {
                self.totals.sources_over_limit += 1;
                return;
            }
            None => window.sources.entry(packet.src).or_default(),
        };
        state.add(ts, packet.ip_len, mask, mirai, sketch::mix(packet.dst.0) as u32, port);
    }

    /// Makes window `index` open, closing windows older than the one before it; false when the
    /// packet is older than every open window.
    fn enter_window(&mut self, index: u64, emit: &mut impl FnMut(SourceActivity)) -> bool {
        if let Some(newest) = self.newest_window
            && index > newest
        {
            // Keep the previous window open for slightly reordered input; close older ones.
            self.close_before(index.saturating_sub(1), emit);
        }
        if let Some((&oldest, _)) = self.windows.first_key_value()
            && index < oldest
        {
            return false;
        }
        self.windows.entry(index).or_default();
        self.newest_window = self.windows.last_key_value().map(|(k, _)| *k);
        true
    }

    /// Closes every window that starts before window index `index`.
    fn close_before(&mut self, index: u64, emit: &mut impl FnMut(SourceActivity)) {
        while let Some((&first, _)) = self.windows.first_key_value() {
            if first >= index {
                break;
            }
            let window = self.windows.remove(&first).expect("key just seen");
            self.newest_window = self.windows.last_key_value().map(|(k, _)| *k);
            self.emit_window(first, window, emit);
        }
    }

    fn emit_window(&mut self, index: u64, window: aggregate::Window, emit: &mut impl FnMut(SourceActivity)) {
        let start = index.saturating_mul(self.window_ns);
        let catalogue = self.catalogue;
        let attribute = self.attribute.as_ref();
        let days = &mut self.days;
        let mut forward = |mut record: SourceActivity| {
            if let Some(attribute) = attribute {
                record.isp = attribute(record.src).map(|o| o.isp);
            }
            let day_index = record.first_seen.timestamp().max(0) as u64 / 86_400;
            days.get(day_index).absorb(&record);
            emit(record);
        };
        aggregate::drain_records(catalogue, window, start, self.window_ns, self.config.sensor.as_deref(), &mut forward);
    }

    /// Closes windows that ended before `now_ns` (live capture calls this on a timer).
    pub fn close_ended(&mut self, now_ns: u64, emit: &mut impl FnMut(SourceActivity)) {
        let index = now_ns / self.window_ns;
        self.close_before(index, emit);
    }

    /// Closes every window and returns the statistics.
    pub fn finish(mut self, emit: &mut impl FnMut(SourceActivity)) -> Stats {
        self.close_before(u64::MAX, emit);
        let names = self.catalogue.categories().to_vec();
        let mut days = Vec::new();
        let mut victims = Vec::new();
        for (index, day) in std::mem::take(&mut self.days).into_sorted() {
            let date = date_of(index);
            let mut by_isp: BTreeMap<String, botscope_model::IspDay> = BTreeMap::new();
            let mut by_country: BTreeMap<String, botscope_model::CountryDay> = BTreeMap::new();
            if let Some(attribute) = &self.attribute {
                let mut bump = |addr: Addr, mirai_packets: Option<u64>| {
                    let owner = attribute(addr.to_ip());
                    // A host of a prefix several ISPs share counts in each of their rows.
                    let isps: Vec<String> = match &owner {
                        Some(o) if !o.isp.is_empty() => o.isp.iter().map(String::from).collect(),
                        _ => vec!["unattributed".to_string()],
                    };
                    let country = owner.and_then(|o| o.country).unwrap_or_else(|| "unknown".to_string());
                    for isp in isps {
                        let e = by_isp.entry(isp.clone()).or_insert_with(|| botscope_model::IspDay {
                            isp,
                            mirai_packets: 0,
                            mirai_sources: 0,
                            infected_sources: 0,
                        });
                        match mirai_packets {
                            Some(packets) => {
                                e.mirai_packets += packets;
                                e.mirai_sources += 1;
                            }
                            None => e.infected_sources += 1,
                        }
                    }
                    let c = by_country.entry(country.clone()).or_insert_with(|| botscope_model::CountryDay {
                        country,
                        mirai_packets: 0,
                        mirai_sources: 0,
                        infected_sources: 0,
                    });
                    match mirai_packets {
                        Some(packets) => {
                            c.mirai_packets += packets;
                            c.mirai_sources += 1;
                        }
                        None => c.infected_sources += 1,
                    }
                };
                for (&addr, &packets) in &day.mirai {
                    bump(addr, Some(packets));
                }
                for &addr in &day.infected {
                    bump(addr, None);
                }
            }
            let mut by_country: Vec<_> = by_country.into_values().collect();
            by_country.sort_by(|a, b| b.infected_sources.cmp(&a.infected_sources).then(a.country.cmp(&b.country)));
            let mut by_isp: Vec<_> = by_isp.into_values().collect();
            by_isp.sort_by(|a, b| b.infected_sources.cmp(&a.infected_sources).then(a.isp.cmp(&b.isp)));
            let reply_ids: Vec<(u64, String)> = self
                .catalogue
                .signature_ids()
                .enumerate()
                .filter(|(i, _)| self.catalogue.reply_mask & (1 << i) != 0)
                .map(|(i, id)| (1u64 << i, id.to_string()))
                .collect();
            let mut day_victims: Vec<_> = day
                .victims
                .into_iter()
                // A source counts as a victim only when its replies made it one (min_share etc.).
                .filter(|(addr, v)| {
                    day.backscatter.contains(addr) || v.relayed_by.is_some_and(|r| day.backscatter.contains(&r))
                })
                .map(|(addr, v)| stats::Victim {
                    date: date.clone(),
                    victim: addr.to_ip(),
                    packets: v.packets,
                    first_seen: chrono::DateTime::from_timestamp_nanos(v.first_ns as i64),
                    last_seen: chrono::DateTime::from_timestamp_nanos(v.last_ns as i64),
                    ports: v.ports,
                    kinds: reply_ids.iter().filter(|(bit, _)| v.kinds & bit != 0).map(|(_, id)| id.clone()).collect(),
                    isp: self.attribute.as_ref().and_then(|a| a(addr.to_ip())).map(|o| o.isp),
                })
                .collect();
            day_victims.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.victim.cmp(&b.victim)));
            days.push(botscope_model::DarknetDay {
                id: None,
                date,
                packets: day.packets,
                sources: day.sources.count(),
                mirai_packets: day.mirai.values().sum(),
                mirai_sources: day.mirai.len() as u64,
                infected_sources: day.infected.len() as u64,
                research_scanner_sources: day.research.len() as u64,
                ddos_victims: day_victims.len() as u64,
                categories: stats::category_counts(&names, &day.categories),
                by_isp,
                by_country,
                sensor: self.config.sensor.clone(),
            });
            victims.extend(day_victims);
        }
        Stats {
            sensor: self.config.sensor.clone(),
            darknet: self.config.darknet.prefixes().iter().map(|p| p.to_string()).collect(),
            window_seconds: self.config.window_seconds,
            totals: self.totals,
            categories: stats::category_counts(&names, &self.category_totals),
            days,
            ddos_victims: victims,
        }
    }
}

/// Counts a reply toward the DDoS victim it reveals: the sender of SYN-ACKs and RSTs, or the
/// destination of the packet an ICMP error quotes.
fn victim(day: &mut stats::DayState, packet: &packet::Packet, ts: u64, kinds: u64) {
    let (victim, port) = match packet.transport {
        Transport::Tcp { sport, .. } | Transport::Udp { sport, .. } => (packet.src, sport),
        Transport::Icmp { quoted_dst, .. } => (quoted_dst.unwrap_or(packet.src), 0),
        Transport::Other | Transport::Truncated => (packet.src, 0),
    };
    let relayed_by = (victim != packet.src).then_some(packet.src);
    day.victims.entry(victim).or_default().add(ts, port, kinds, relayed_by);
}

fn date_of(day_index: u64) -> String {
    chrono::DateTime::from_timestamp(i64::try_from(day_index.saturating_mul(86_400)).unwrap_or(0), 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet frame carrying a TCP SYN from 127.17.0.9 to 127.224.1.2 port 23.
    fn syn() -> Vec<u8> {
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&[0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, 127, 17, 0, 9, 127, 224, 1, 2]);
        frame.extend_from_slice(&[0x9c, 0x40, 0, 23, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0x40, 0, 0, 0, 0, 0]);
        frame
    }

    #[test]
    fn regression_a_live_capture_older_than_a_day_still_takes_frames() {
        let catalogue = Catalogue::shipped();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        let now_ns = u64::try_from(now.as_nanos()).unwrap();
        let day_ns = 86_400 * 1_000_000_000;
        let mut config = Config::new(Darknet::new(&["127.224.0.0/16".parse().unwrap()]));
        // As set when the capture started ten days ago: then a day ahead, now long past.
        config.latest_ns = Some(now_ns - 9 * day_ns);
        let mut telescope = Telescope::new(&catalogue, config);
        let data = syn();
        let mut emit = |_: SourceActivity| {};
        telescope.observe(&Frame { ts_ns: now_ns, linktype: 1, data: &data, orig_len: 54 }, &mut emit);
        // A frame days ahead of the wall clock is still a bad timestamp.
        telescope.observe(&Frame { ts_ns: now_ns + 3 * day_ns, linktype: 1, data: &data, orig_len: 54 }, &mut emit);
        let stats = telescope.finish(&mut emit);
        assert_eq!(stats.totals.darknet_packets, 1, "{:?}", stats.totals);
        assert_eq!(stats.totals.skipped.get("bad_timestamp"), Some(&1), "{:?}", stats.totals.skipped);
    }
}
