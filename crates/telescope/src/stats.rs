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
    /// The victim's address (the source of the backscatter).
    pub victim: std::net::IpAddr,
    /// Backscatter packets received from it.
    pub packets: u64,
    /// First backscatter packet.
    pub first_seen: Timestamp,
    /// Last backscatter packet.
    pub last_seen: Timestamp,
    /// The attacked services: the victim's own ports the replies came from.
    pub ports: Vec<u16>,
    /// Which backscatter signatures matched.
    pub kinds: Vec<String>,
    /// ISP handle, when attribution is loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isp: Option<String>,
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

/// Accumulates one day.
#[derive(Default)]
pub(crate) struct DayState {
    pub(crate) packets: u64,
    pub(crate) categories: Vec<u64>,
    pub(crate) sources: LargeDistinct,
    pub(crate) mirai: FxHashMap<Addr, u64>,
    pub(crate) infected: FxHashSet<Addr>,
    pub(crate) research: FxHashSet<Addr>,
    pub(crate) victims: FxHashMap<Addr, Victim>,
}

impl DayState {
    /// Folds one window's finished records into the day.
    pub(crate) fn absorb(&mut self, record: &SourceActivity, date: &str) {
        let addr = Addr::from(record.src);
        match record.classification {
            ActivityClass::Infected => {
                self.infected.insert(addr);
            }
            ActivityClass::ResearchScanner => {
                self.research.insert(addr);
            }
            ActivityClass::Backscatter => {
                let kinds: Vec<String> = record.tags.iter().filter(|t| t.starts_with("backscatter")).cloned().collect();
                let v = self.victims.entry(addr).or_insert_with(|| Victim {
                    date: date.to_string(),
                    victim: record.src,
                    packets: 0,
                    first_seen: record.first_seen,
                    last_seen: record.last_seen,
                    ports: Vec::new(),
                    kinds: Vec::new(),
                    isp: record.isp.clone(),
                });
                v.packets += record.packets;
                v.first_seen = v.first_seen.min(record.first_seen);
                v.last_seen = v.last_seen.max(record.last_seen);
                for p in &record.top_ports {
                    if !v.ports.contains(&p.port) {
                        v.ports.push(p.port);
                    }
                }
                for k in kinds {
                    if !v.kinds.contains(&k) {
                        v.kinds.push(k);
                    }
                }
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
