//! The darknet statistics the government's report draws: packets by targeted service category,
//! per-day Mirai-fingerprint packets and unique hosts (overall and per ISP), and DDoS victims seen
//! through backscatter.

use std::collections::BTreeMap;

use botscope_model::{ActivityClass, CategoryCount, DarknetDay, SourceActivity, Timestamp};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use crate::packet::Addr;
use crate::sketch::LargeDistinct;

/// Counters over the whole run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Totals {
    /// Frames read from the captures.
    pub frames: u64,
    /// IP packets addressed to the darknet (the rest of the statistics count only these).
    pub darknet_packets: u64,
    /// IP packets addressed elsewhere, ignored.
    pub outside_darknet: u64,
    /// Records and frames skipped, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Darknet packets from new sources that arrived after `--max-sources` was reached in their
    /// window: in the statistics but in no activity record.
    pub sources_over_limit: u64,
    /// Packets older than every open window (badly ordered input): in the statistics only.
    pub late_packets: u64,
}

/// A DDoS victim on one day.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Victim {
    /// The date (UTC).
    pub date: String,
    /// The victim's address: the source of SYN-ACK or RST backscatter, or the destination of
    /// the packet an ICMP error quotes (the sender may be a router in front of the victim).
    pub victim: std::net::IpAddr,
    /// Backscatter packets received from it.
    pub packets: u64,
    /// First backscatter packet.
    pub first_seen: Timestamp,
    /// Last backscatter packet.
    pub last_seen: Timestamp,
    /// The attacked services: the victim's own ports the replies came from (0 for ICMP).
    pub ports: Vec<u16>,
    /// Which backscatter signatures matched.
    pub kinds: Vec<String>,
    /// The ISPs holding the victim's address, when attribution is loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isp: Option<botscope_model::IspHandles>,
}

/// The whole `--stats` document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Stats {
    /// Telescope name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor: Option<String>,
    /// The darknet prefixes watched.
    pub darknet: Vec<String>,
    /// Window length in seconds.
    pub window_seconds: u64,
    /// Run counters.
    pub totals: Totals,
    /// Packets by category over the whole run, IoT categories first.
    pub categories: Vec<CategoryCount>,
    /// One entry per UTC day with packets (also stored as `darknet_day` records).
    pub days: Vec<DarknetDay>,
    /// DDoS victims per day, most packets first.
    pub ddos_victims: Vec<Victim>,
}

/// Backscatter seen from one victim in a day.
#[derive(Default)]
pub(crate) struct VictimState {
    pub(crate) packets: u64,
    pub(crate) first_ns: u64,
    pub(crate) last_ns: u64,
    /// Attacked ports seen, at most 16 kept.
    pub(crate) ports: Vec<u16>,
    /// Reply signatures that matched.
    pub(crate) kinds: u64,
    /// For ICMP errors sent by another host (a router before the victim): that sender.
    pub(crate) relayed_by: Option<Addr>,
}

impl VictimState {
    #[inline]
    pub(crate) fn add(&mut self, ts_ns: u64, port: u16, kinds: u64, relayed_by: Option<Addr>) {
        if relayed_by.is_some() {
            self.relayed_by = relayed_by;
        }
        if self.packets == 0 || ts_ns < self.first_ns {
            self.first_ns = ts_ns;
        }
        self.last_ns = self.last_ns.max(ts_ns);
        self.packets += 1;
        self.kinds |= kinds;
        if self.ports.len() < 16 && !self.ports.contains(&port) {
            self.ports.push(port);
        }
    }
}

/// The days seen, in date order; the current day is the last, so finding it is one comparison.
#[derive(Default)]
pub(crate) struct Days(Vec<(u64, DayState)>);

impl Days {
    /// The state of day `index` (days since the epoch), made when first asked for.
    #[inline]
    pub(crate) fn get(&mut self, index: u64) -> &mut DayState {
        let at = match self.0.last() {
            Some((last, _)) if *last == index => self.0.len() - 1,
            _ => match self.0.binary_search_by_key(&index, |(i, _)| *i) {
                Ok(at) => at,
                Err(at) => {
                    self.0.insert(at, (index, DayState::default()));
                    at
                }
            },
        };
        &mut self.0[at].1
    }

    pub(crate) fn into_sorted(self) -> Vec<(u64, DayState)> {
        self.0
    }
}

/// Accumulates one day.
#[derive(Default)]
pub(crate) struct DayState {
    pub(crate) packets: u64,
    pub(crate) categories: Vec<u64>,
    pub(crate) sources: LargeDistinct,
    pub(crate) mirai: FxHashMap<Addr, u64>,
    pub(crate) infected: FxHashSet<Addr>,
    pub(crate) research: FxHashSet<Addr>,
    pub(crate) victims: FxHashMap<Addr, VictimState>,
    /// Sources classified backscatter in some window of the day.
    pub(crate) backscatter: FxHashSet<Addr>,
}

impl DayState {
    /// Folds one window's finished records into the day.
    pub(crate) fn absorb(&mut self, record: &SourceActivity) {
        let addr = Addr::from(record.src);
        match record.classification {
            ActivityClass::Infected => {
                self.infected.insert(addr);
            }
            ActivityClass::ResearchScanner => {
                self.research.insert(addr);
            }
            ActivityClass::Backscatter => {
                self.backscatter.insert(addr);
            }
            ActivityClass::Unknown => {}
        }
    }
}

pub(crate) fn category_counts(names: &[(String, bool)], counts: &[u64]) -> Vec<CategoryCount> {
    let total: u64 = counts.iter().sum();
    names
        .iter()
        .enumerate()
        .map(|(i, (category, iot))| {
            let packets = counts.get(i).copied().unwrap_or(0);
            CategoryCount {
                category: category.clone(),
                iot: *iot,
                packets,
                share: if total == 0 { 0.0 } else { packets as f64 / total as f64 },
            }
        })
        .collect()
}
