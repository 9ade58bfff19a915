//! The shipped catalogues (`data/ports.toml`, `data/credentials.toml`, `data/devices.toml`): what
//! ports to probe and what they speak, which ID/password pairs to try in which order, and what the
//! device models are. The shipped files are compiled in, so the binary works from any directory;
//! operators may point to their own files of the same format.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use botscope_model::{DeviceType, Service};
use serde::Deserialize;

use crate::SurveyError;

/// `data/ports.toml` as shipped.
pub const SHIPPED_PORTS: &str = include_str!("../../../data/ports.toml");
/// `data/credentials.toml` as shipped.
pub const SHIPPED_CREDENTIALS: &str = include_str!("../../../data/credentials.toml");
/// `data/devices.toml` as shipped.
pub const SHIPPED_DEVICES: &str = include_str!("../../../data/devices.toml");

/// One port of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortEntry {
    /// TCP port.
    pub port: u16,
    /// What it speaks.
    pub protocol: Service,
    /// What it is, for people.
    pub description: String,
    /// Whether the survey tries dictionary logins here.
    #[serde(default)]
    pub login: bool,
    /// Whether being reachable is itself a finding (a management interface).
    #[serde(default)]
    pub management: bool,
    /// Named sets the port belongs to.
    #[serde(default)]
    pub sets: Vec<String>,
}

/// The port catalogue.
#[derive(Debug, Clone)]
pub struct PortCatalog {
    entries: Vec<PortEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PortsFile {
    port: Vec<PortEntry>,
}

impl PortCatalog {
    /// The shipped catalogue.
    pub fn shipped() -> PortCatalog {
        PortCatalog::parse(SHIPPED_PORTS, "data/ports.toml").expect("the shipped port catalogue is valid (tested)")
    }

    /// Parses a catalogue; `name` is used in errors.
    pub fn parse(text: &str, name: &str) -> Result<PortCatalog, SurveyError> {
        let file: PortsFile =
            toml::from_str(text).map_err(|e| SurveyError::Invalid { name: name.into(), reason: e.to_string() })?;
        let mut seen = HashSet::new();
        for entry in &file.port {
            if entry.port == 0 || !seen.insert(entry.port) {
                return Err(SurveyError::Invalid {
                    name: name.into(),
                    reason: format!("port {} is 0 or listed twice", entry.port),
                });
            }
        }
        Ok(PortCatalog { entries: file.port })
    }

    /// The entry for `port`, if catalogued.
    pub fn get(&self, port: u16) -> Option<&PortEntry> {
        self.entries.iter().find(|entry| entry.port == port)
    }

    /// Every entry.
    pub fn entries(&self) -> &[PortEntry] {
        &self.entries
    }

    /// The names of every port set.
    pub fn set_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.entries.iter().flat_map(|e| e.sets.iter().cloned()).collect();
        names.sort();
        names.dedup();
        names
    }

    /// The ports of a named set, in catalogue order.
    pub fn set(&self, name: &str) -> Result<Vec<PortEntry>, SurveyError> {
        let ports: Vec<PortEntry> = self.entries.iter().filter(|e| e.sets.iter().any(|s| s == name)).cloned().collect();
        if ports.is_empty() {
            return Err(SurveyError::UnknownPortSet { name: name.into(), known: self.set_names().join(", ") });
        }
        Ok(ports)
    }

    /// Parses a `--ports` list: `23,2323,80` (protocols from the catalogue) or `10023/telnet`
    /// (an explicit protocol, for uncatalogued ports or services on unusual ports).
    pub fn parse_list(&self, list: &str) -> Result<Vec<PortEntry>, SurveyError> {
        let mut out: Vec<PortEntry> = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let invalid = |reason: String| SurveyError::Invalid { name: format!("--ports {item}"), reason };
            let (port, protocol) = match item.split_once('/') {
                Some((port, protocol)) => (port, Some(protocol)),
                None => (item, None),
            };
            let port: u16 =
                port.parse().ok().filter(|p| *p != 0).ok_or_else(|| invalid("not a port 1-65535".into()))?;
            let entry = match (protocol, self.get(port)) {
                (Some(protocol), known) => {
                    let protocol: Service = protocol.parse().map_err(invalid)?;
                    let login = matches!(protocol, Service::Telnet | Service::Ssh | Service::Http | Service::Https);
                    let management = known.is_some_and(|k| k.protocol == protocol && k.management)
                        || matches!(protocol, Service::Cwmp | Service::Adb);
                    PortEntry {
                        port,
                        protocol,
                        description: format!("{} (given)", protocol.as_str()),
                        login,
                        management,
                        sets: vec![],
                    }
                }
                (None, Some(known)) => known.clone(),
                (None, None) => {
                    return Err(invalid(format!(
                        "port {port} is not in the port catalogue; name its protocol, e.g. {port}/telnet"
                    )));
                }
            };
            if out.iter().any(|e| e.port == entry.port) {
                return Err(invalid("listed twice".into()));
            }
            out.push(entry);
        }
        if out.is_empty() {
            return Err(SurveyError::Invalid { name: "--ports".into(), reason: "no ports given".into() });
        }
        Ok(out)
    }
}

/// One ID/password pair of the dictionary.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// Stable id: what findings, audit lines and truth files name instead of the password.
    pub id: u32,
    /// Login name.
    pub username: String,
    /// Password (may be empty).
    pub password: String,
    /// Prevalence: higher is tried first.
    pub weight: u32,
    /// Where the pair is known from: names of the file's `[source.NAME]` tables.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Which maker or product the pair belongs to, for people.
    #[serde(default)]
    pub note: Option<String>,
    /// Products a public list names the pair for (provenance; the survey does not use it).
    #[serde(default)]
    pub products: Vec<String>,
}

impl std::fmt::Debug for Credential {
    // Passwords must not reach logs, even through a stray `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential").field("id", &self.id).field("username", &self.username).finish_non_exhaustive()
    }
}

/// Where pairs of a dictionary are known from (`[source.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialSource {
    /// What the source is.
    #[serde(default)]
    pub description: String,
    /// Where to read it (a URL or a file of this repository).
    #[serde(default)]
    pub reference: Option<String>,
}

/// One entry of a dictionary's change log (`[[change]]`): a reviewed revision.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DictionaryChange {
    /// The dictionary version this change made.
    pub version: u32,
    /// When it was approved (YYYY-MM-DD).
    #[serde(default)]
    pub date: String,
    /// What changed (ids added, reweighted, sources).
    #[serde(default)]
    pub what: String,
    /// Why.
    #[serde(default)]
    pub why: String,
    /// Who proposed it.
    #[serde(default)]
    pub proposed_by: String,
    /// Who reviewed and approved it.
    #[serde(default)]
    pub approved_by: String,
}

/// The credential dictionary, in the order the survey tries it.
#[derive(Debug, Clone)]
pub struct Dictionary {
    ordered: Vec<Credential>,
    version: Option<u32>,
}

/// The file as written. Provenance (`version`, `[source.*]`, `[[change]]`) is optional here so
/// that an operator's own list of pairs still loads; `botscope credentials check` requires it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    #[serde(default)]
    version: Option<u32>,
    #[serde(default)]
    #[allow(dead_code)]
    source: std::collections::BTreeMap<String, CredentialSource>,
    #[serde(default)]
    #[allow(dead_code)]
    change: Vec<DictionaryChange>,
    credential: Vec<Credential>,
}

impl Dictionary {
    /// The shipped dictionary.
    pub fn shipped() -> Dictionary {
        Dictionary::parse(SHIPPED_CREDENTIALS, "data/credentials.toml")
            .expect("the shipped dictionary is valid (tested)")
    }

    /// Reads a dictionary file.
    pub fn load(path: &Path) -> Result<Dictionary, SurveyError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SurveyError::Read { name: name.clone(), source })?;
        Dictionary::parse(&text, &name)
    }

    /// Parses a dictionary: ids unique, pairs unique; ordered by weight (descending), then id.
    pub fn parse(text: &str, name: &str) -> Result<Dictionary, SurveyError> {
        let invalid = |reason: String| SurveyError::Invalid { name: name.into(), reason };
        let file: CredentialsFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut ids = HashSet::new();
        let mut pairs = HashSet::new();
        for credential in &file.credential {
            if !ids.insert(credential.id) {
                return Err(invalid(format!("credential id {} is used twice", credential.id)));
            }
            if !pairs.insert((credential.username.as_str(), credential.password.as_str())) {
                return Err(invalid(format!("credential {} repeats the pair of another entry", credential.id)));
            }
            if credential.username.contains(['\r', '\n', '\0']) || credential.password.contains(['\r', '\n', '\0']) {
                return Err(invalid(format!("credential {} contains a line break or NUL", credential.id)));
            }
        }
        let mut ordered = file.credential;
        ordered.sort_by(|a, b| b.weight.cmp(&a.weight).then(a.id.cmp(&b.id)));
        Ok(Dictionary { ordered, version: file.version })
    }

    /// The dictionary's version (`version = N`), if the file states one.
    pub fn version(&self) -> Option<u32> {
        self.version
    }

    /// The pairs in trial order.
    pub fn ordered(&self) -> &[Credential] {
        &self.ordered
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.ordered.len()
    }

    /// Whether the dictionary is empty.
    pub fn is_empty(&self) -> bool {
        self.ordered.is_empty()
    }

    /// The pair with this id.
    pub fn by_id(&self, id: u32) -> Option<&Credential> {
        self.ordered.iter().find(|c| c.id == id)
    }

    /// The position (0-based) at which the survey tries the pair with this id.
    pub fn rank(&self, id: u32) -> Option<usize> {
        self.ordered.iter().position(|c| c.id == id)
    }
}

/// What the lab shows for a model (banners, prompts): the fingerprint rules are checked against it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabPresentation {
    /// Services the model offers: telnet, ssh, http, https, cwmp, adb.
    #[serde(default)]
    pub services: Vec<String>,
    /// Telnet line before the login prompt (`{firmware}` is substituted).
    #[serde(default)]
    pub telnet_banner: String,
    /// Telnet login prompt.
    #[serde(default)]
    pub telnet_login_prompt: String,
    /// Telnet password prompt.
    #[serde(default)]
    pub telnet_password_prompt: String,
    /// Shell prompt after login.
    #[serde(default)]
    pub shell_prompt: String,
    /// SSH identification string.
    #[serde(default)]
    pub ssh_version: String,
    /// HTTP `Server` header ("" for none).
    #[serde(default)]
    pub http_server: String,
    /// HTML title of the login or admin page.
    #[serde(default)]
    pub http_title: String,
    /// `basic`, `digest` or `form`.
    #[serde(default)]
    pub http_auth: String,
    /// Realm for Basic/Digest.
    #[serde(default)]
    pub http_realm: String,
}

/// Remediation steps for a member of the public, per language.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remediation {
    /// English steps.
    #[serde(default)]
    pub en: Vec<String>,
    /// Japanese steps.
    #[serde(default)]
    pub ja: Vec<String>,
}

/// One device model of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceModel {
    /// Unique slug.
    pub id: String,
    /// Manufacturer.
    pub vendor: String,
    /// Model name.
    pub model: String,
    /// Broad class.
    #[serde(rename = "type")]
    pub device_type: DeviceType,
    /// Year the model was released.
    pub release_year: u16,
    /// Whether the vendor ended support.
    pub eol: bool,
    /// Newest firmware the vendor released.
    pub latest_firmware: String,
    /// Firmware versions seen in the field, oldest first.
    #[serde(default)]
    pub firmware: Vec<String>,
    /// What lab devices of this model show.
    #[serde(default)]
    pub lab: LabPresentation,
    /// What the owner should do.
    #[serde(default)]
    pub remediation: Remediation,
}

/// The device catalogue.
#[derive(Debug, Clone)]
pub struct DeviceCatalog {
    models: Vec<DeviceModel>,
    index: HashMap<String, usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DevicesFile {
    device: Vec<DeviceModel>,
}

impl DeviceCatalog {
    /// The shipped catalogue.
    pub fn shipped() -> DeviceCatalog {
        DeviceCatalog::parse(SHIPPED_DEVICES, "data/devices.toml")
            .expect("the shipped device catalogue is valid (tested)")
    }

    /// Parses a catalogue.
    pub fn parse(text: &str, name: &str) -> Result<DeviceCatalog, SurveyError> {
        let invalid = |reason: String| SurveyError::Invalid { name: name.into(), reason };
        let file: DevicesFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut index = HashMap::new();
        for (position, model) in file.device.iter().enumerate() {
            if index.insert(model.id.clone(), position).is_some() {
                return Err(invalid(format!("device id {} is used twice", model.id)));
            }
            if parse_version(&model.latest_firmware).is_none() {
                return Err(invalid(format!(
                    "device {}: latest_firmware {:?} is not a dotted version",
                    model.id, model.latest_firmware
                )));
            }
        }
        Ok(DeviceCatalog { models: file.device, index })
    }

    /// The model with this id.
    pub fn get(&self, id: &str) -> Option<&DeviceModel> {
        self.index.get(id).map(|position| &self.models[*position])
    }

    /// Every model.
    pub fn models(&self) -> &[DeviceModel] {
        &self.models
    }
}

/// A dotted numeric version as comparable numbers (`"2.1.10"` > `"2.1.9"`).
pub fn parse_version(text: &str) -> Option<Vec<u32>> {
    let text = text.trim().trim_start_matches(['v', 'V']);
    if text.is_empty() {
        return None;
    }
    text.split('.').map(|part| part.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_catalogues_are_valid() {
        let ports = PortCatalog::shipped();
        let notice = ports.set("notice").unwrap();
        assert!((35..=45).contains(&notice.len()), "notice set has {} ports", notice.len());
        let dictionary = Dictionary::shipped();
        assert!(dictionary.len() >= 600, "{} pairs", dictionary.len());
        let catalog = DeviceCatalog::shipped();
        assert!(catalog.models().len() >= 10);
    }

    #[test]
    fn the_62_mirai_pairs_are_in_the_dictionary_with_their_weights() {
        let facts = include_str!("../../../data/mirai-credentials.tsv");
        let dictionary = Dictionary::shipped();
        let mut count = 0;
        for line in facts.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let mut fields = line.split('\t');
            let (user, pass, weight) = (fields.next().unwrap(), fields.next().unwrap(), fields.next().unwrap());
            let found = dictionary.ordered().iter().find(|c| c.username == user && c.password == pass);
            let found = found.unwrap_or_else(|| panic!("mirai pair {user}/{pass:?} missing"));
            assert_eq!(found.weight.to_string(), weight.trim());
            assert!(found.sources.iter().any(|s| s == "mirai"));
            count += 1;
        }
        assert_eq!(count, 62);
    }

    #[test]
    fn dictionary_orders_by_weight_then_id_and_scales_to_600_pairs() {
        let mut text = String::new();
        for id in 1..=650u32 {
            text.push_str(&format!(
                "[[credential]]\nid = {id}\nusername = \"u{id}\"\npassword = \"p{id}\"\nweight = {}\n",
                id % 7
            ));
        }
        let dictionary = Dictionary::parse(&text, "t").unwrap();
        assert_eq!(dictionary.len(), 650);
        let weights: Vec<u32> = dictionary.ordered().iter().map(|c| c.weight).collect();
        assert!(weights.windows(2).all(|w| w[0] >= w[1]));
        assert_eq!(dictionary.ordered()[0].id, 6);
        assert_eq!(dictionary.rank(6), Some(0));
    }

    #[test]
    fn regression_ids_1_to_192_keep_the_pairs_findings_recorded_under_them() {
        // Findings and truth files name pairs by id only: a revision that renumbered or changed
        // one of dictionary version 1's pairs would silently change what old findings mean.
        // FNV-1a over "id<TAB>username<TAB>password<LF>" of ids 1-192 as version 1 had them.
        let dictionary = Dictionary::shipped();
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for id in 1..=192 {
            let c = dictionary.by_id(id).unwrap_or_else(|| panic!("id {id} is gone"));
            for byte in format!("{}\t{}\t{}\n", c.id, c.username, c.password).bytes() {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        assert_eq!(hash, 0x1580_3522_d9b1_c78c);
    }

    #[test]
    fn dictionary_rejects_repeated_ids_and_pairs() {
        let twice = "[[credential]]\nid=1\nusername=\"a\"\npassword=\"b\"\nweight=1\n[[credential]]\nid=1\nusername=\"c\"\npassword=\"d\"\nweight=1\n";
        assert!(Dictionary::parse(twice, "t").unwrap_err().to_string().contains("used twice"));
        let same = "[[credential]]\nid=1\nusername=\"a\"\npassword=\"b\"\nweight=1\n[[credential]]\nid=2\nusername=\"a\"\npassword=\"b\"\nweight=1\n";
        assert!(Dictionary::parse(same, "t").unwrap_err().to_string().contains("repeats"));
    }

    #[test]
    fn credential_debug_never_shows_the_password() {
        let c = Credential {
            id: 3,
            username: "root".into(),
            password: "xc3511".into(),
            weight: 1,
            sources: vec![],
            note: None,
            products: vec![],
        };
        assert!(!format!("{c:?}").contains("xc3511"));
    }

    #[test]
    fn port_lists_name_unknown_ports_protocols() {
        let ports = PortCatalog::shipped();
        assert_eq!(ports.parse_list("23,80").unwrap()[0].protocol, Service::Telnet);
        assert_eq!(ports.parse_list("10023/telnet").unwrap()[0].protocol, Service::Telnet);
        assert!(ports.parse_list("10023").unwrap_err().to_string().contains("10023/telnet"));
        assert!(ports.parse_list("23,23").is_err());
        assert!(ports.set("nope").unwrap_err().to_string().contains("notice"));
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(parse_version("2.1.10") > parse_version("2.1.9"));
        assert_eq!(parse_version("v1.0"), Some(vec![1, 0]));
        assert_eq!(parse_version("1.x"), None);
    }
}
