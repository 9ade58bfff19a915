use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One UTC day of darknet statistics from one telescope: the series the government's report
/// draws (packets by targeted service, Mirai-fingerprint packets and hosts, infected hosts per
/// ISP, DDoS victims).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DarknetDay {
    /// Stable id; derived from the natural key when absent on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// The date (UTC), `YYYY-MM-DD`.
    pub date: String,
    /// Darknet packets.
    pub packets: u64,
    /// Distinct sources (HyperLogLog estimate, about 0.8 % error).
    pub sources: u64,
    /// Packets with the Mirai fingerprint.
    pub mirai_packets: u64,
    /// Distinct sources that sent them.
    pub mirai_sources: u64,
    /// Distinct sources classified infected in some window of the day.
    pub infected_sources: u64,
    /// Distinct research scanners.
    pub research_scanner_sources: u64,
    /// Distinct DDoS victims seen through backscatter.
    pub ddos_victims: u64,
    /// Packets by targeted service category, IoT categories first.
    pub categories: Vec<CategoryCount>,
    /// Per ISP, when attribution is loaded (most infected first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_isp: Vec<IspDay>,
    /// Per country of the attributed ISPs (the registry's `country`), most infected first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_country: Vec<CountryDay>,
    /// Name of the telescope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor: Option<String>,
}

/// Packets to one service category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryCount {
    /// The category (`data/signatures/services.toml`, plus backscatter, other_tcp, other_udp,
    /// icmp and other).
    pub category: String,
    /// Whether IoT malware targets it.
    pub iot: bool,
    /// Packets.
    pub packets: u64,
    /// Share of the period's darknet packets (0..1).
    pub share: f64,
}

/// One ISP's part of a day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IspDay {
    /// ISP handle, or `unattributed`.
    pub isp: String,
    /// Packets with the Mirai fingerprint from the ISP's addresses.
    pub mirai_packets: u64,
    /// Distinct sources with the fingerprint.
    pub mirai_sources: u64,
    /// Distinct sources classified infected.
    pub infected_sources: u64,
}

/// One country's part of a day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountryDay {
    /// ISO 3166-1 alpha-2 code, or `unknown` (unattributed, or an ISP without a country).
    pub country: String,
    /// Packets with the Mirai fingerprint from the country's ISPs' addresses.
    pub mirai_packets: u64,
    /// Distinct sources with the fingerprint.
    pub mirai_sources: u64,
    /// Distinct sources classified infected.
    pub infected_sources: u64,
}

impl DarknetDay {
    pub(crate) fn natural_key(&self) -> String {
        format!("darknet_day|{}|{}", self.date, self.sensor.as_deref().unwrap_or(""))
    }

    /// Midnight UTC of the date, if the date is valid.
    pub fn midnight(&self) -> Option<crate::Timestamp> {
        chrono::NaiveDate::parse_from_str(&self.date, "%Y-%m-%d")
            .ok()
            .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if self.midnight().is_none() {
            return Err(format!("date {:?} is not YYYY-MM-DD", self.date));
        }
        if self.mirai_packets > self.packets {
            return Err("mirai_packets cannot exceed packets".into());
        }
        if self.categories.iter().any(|c| !(0.0..=1.0).contains(&c.share)) {
            return Err("category shares must lie in 0..1".into());
        }
        Ok(())
    }
}
