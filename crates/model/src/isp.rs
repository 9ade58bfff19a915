use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An ISP taking part: who it is, which ASNs are its, and how it wants to be told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Isp {
    /// Stable id; derived from the handle when absent on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// Short handle used everywhere else (`[a-z0-9][a-z0-9-]*`, at most 63 characters).
    pub handle: String,
    /// Display name.
    pub name: String,
    /// Autonomous systems whose routed prefixes belong to this ISP.
    pub asns: Vec<u32>,
    /// Where notifications go (an abuse mailbox, normally).
    pub contact: String,
    /// Country the ISP serves (ISO 3166-1 alpha-2, e.g. `JP`), for per-country statistics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Language of notifications and guides.
    #[serde(default)]
    pub language: Language,
    /// What to send and how.
    #[serde(default)]
    pub notify: NotifyPreferences,
}

impl Isp {
    pub(crate) fn natural_key(&self) -> String {
        format!("isp|{}", self.handle)
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if !is_valid_handle(&self.handle) {
            return Err(format!(
                "handle {:?} must be 1-63 of a-z, 0-9 and '-', starting with a letter or digit",
                self.handle
            ));
        }
        if self.name.trim().is_empty() {
            return Err("name must not be empty".into());
        }
        if self.asns.is_empty() {
            return Err("asns must name at least one AS (an ISP without one can never be attributed)".into());
        }
        if self.contact.trim().is_empty() {
            return Err("contact must not be empty".into());
        }
        if let Some(country) = &self.country
            && !(country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(format!("country {country:?} must be an ISO 3166-1 alpha-2 code such as JP"));
        }
        Ok(())
    }
}

/// Whether `handle` is a valid ISP handle.
pub fn is_valid_handle(handle: &str) -> bool {
    let bytes = handle.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0] != b'-'
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// Whether `name` may name a sensor: 1-64 of ASCII letters, digits, `-`, `_` and `.`, starting with a
/// letter or digit. Sensor names key records and figures, so they are short and plain.
pub fn is_valid_sensor_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=64).contains(&bytes.len())
        && bytes[0].is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A language botscope writes notifications and guides in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    /// Japanese.
    #[default]
    Ja,
    /// English.
    En,
}

/// What an ISP wants to receive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyPreferences {
    /// Send the daily list of infected hosts.
    #[serde(default = "yes")]
    pub daily_infected: bool,
    /// Send the monthly list of vulnerable devices.
    #[serde(default = "yes")]
    pub monthly_vulnerable: bool,
    /// File format of the lists.
    #[serde(default)]
    pub format: NotifyFormat,
}

fn yes() -> bool {
    true
}

impl Default for NotifyPreferences {
    fn default() -> Self {
        NotifyPreferences { daily_infected: true, monthly_vulnerable: true, format: NotifyFormat::Csv }
    }
}

/// File format of notification lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyFormat {
    /// Shadowserver-style CSV.
    #[default]
    Csv,
    /// JSON Lines.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles() {
        for good in ["a", "example-net", "isp1", "0-9"] {
            assert!(is_valid_handle(good), "{good}");
        }
        for bad in ["", "-a", "Ex", "a b", "a_b", &"a".repeat(64)] {
            assert!(!is_valid_handle(bad), "{bad}");
        }
    }
}

/// The ISPs an address belongs to: usually one, several when ISPs share the origin AS. On the
/// wire (records, CSV) it is the handles joined by commas, as it always was; in code it is a list,
/// so "does this record belong to ISP X" is a membership test and never a string comparison (a
/// comparison silently dropped shared-AS hosts from every ISP's view).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct IspHandles(Vec<String>);

impl IspHandles {
    /// The handles, in order, from any iterator of handles (empty entries dropped, duplicates kept
    /// once).
    pub fn new<I, S>(handles: I) -> IspHandles
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut list: Vec<String> = Vec::new();
        for handle in handles {
            let handle: String = handle.into();
            let handle = handle.trim();
            if !handle.is_empty() && !list.iter().any(|h| h == handle) {
                list.push(handle.to_string());
            }
        }
        IspHandles(list)
    }

    /// Whether the address belongs to `handle`.
    pub fn contains(&self, handle: &str) -> bool {
        self.0.iter().any(|h| h == handle)
    }

    /// The handles, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// The first handle (the one a report that names one ISP shows).
    pub fn first(&self) -> Option<&str> {
        self.0.first().map(String::as_str)
    }

    /// No handle at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every handle well formed ([`is_valid_handle`]).
    pub fn is_valid(&self) -> bool {
        !self.0.is_empty() && self.0.iter().all(|h| is_valid_handle(h))
    }
}

impl std::fmt::Display for IspHandles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

impl From<&str> for IspHandles {
    fn from(joined: &str) -> IspHandles {
        IspHandles::new(joined.split(','))
    }
}

impl From<String> for IspHandles {
    fn from(joined: String) -> IspHandles {
        IspHandles::from(joined.as_str())
    }
}

impl serde::Serialize for IspHandles {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for IspHandles {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<IspHandles, D::Error> {
        let joined = String::deserialize(deserializer)?;
        Ok(IspHandles::from(joined.as_str()))
    }
}

#[cfg(test)]
mod handles_tests {
    use super::IspHandles;

    #[test]
    fn a_shared_prefix_host_belongs_to_each_of_its_isps_and_no_other() {
        let shared = IspHandles::from("hikari-net,sakura-bb");
        assert!(shared.contains("hikari-net") && shared.contains("sakura-bb"));
        assert!(!shared.contains("hikari") && !shared.contains("hikari-net,sakura-bb"));
        assert_eq!(shared.to_string(), "hikari-net,sakura-bb");
        let json = serde_json::to_string(&shared).unwrap();
        assert_eq!(json, "\"hikari-net,sakura-bb\"");
        assert_eq!(serde_json::from_str::<IspHandles>(&json).unwrap(), shared);
        assert_eq!(IspHandles::from(" a ,,a,b"), IspHandles::new(["a", "b"]));
    }
}
