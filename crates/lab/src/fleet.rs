//! The fleet: which devices exist, at which loopback addresses, as which models, with which
//! credentials and manners, all decided by one seed, and the truth about each.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use botscope_model::{DeviceType, Service};
use botscope_net::permutation::Permutation;
use botscope_net::splitmix;
use botscope_survey::catalog::{DeviceCatalog, DeviceModel, Dictionary};
use ipnet::Ipv4Net;
use serde::Serialize;

use crate::LabError;

/// Which port each emulated service listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMap {
    ports: BTreeMap<&'static str, u16>,
}

/// The services the lab emulates, with their usual ports.
pub const DEFAULT_PORTS: &[(&str, u16)] =
    &[("telnet", 23), ("ssh", 22), ("http", 80), ("https", 443), ("cwmp", 7547), ("adb", 5555)];

impl Default for PortMap {
    fn default() -> Self {
        PortMap { ports: DEFAULT_PORTS.iter().copied().collect() }
    }
}

impl PortMap {
    /// Parses `telnet=10023,http=10080`: services not named keep their usual port.
    pub fn parse(text: &str) -> Result<PortMap, LabError> {
        let mut map = PortMap::default();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, port) = item.split_once('=').ok_or_else(|| {
                LabError::Invalid(format!("--ports {item}: expected SERVICE=PORT, e.g. telnet=10023"))
            })?;
            let key = DEFAULT_PORTS.iter().find(|(n, _)| *n == name.trim()).map(|(n, _)| *n).ok_or_else(|| {
                let names: Vec<_> = DEFAULT_PORTS.iter().map(|(n, _)| *n).collect();
                LabError::Invalid(format!("--ports {item}: unknown service (known: {})", names.join(", ")))
            })?;
            let port: u16 = port
                .trim()
                .parse()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| LabError::Invalid(format!("--ports {item}: not a port 1-65535")))?;
            map.ports.insert(key, port);
        }
        let mut seen: Vec<u16> = map.ports.values().copied().collect();
        seen.sort_unstable();
        if seen.windows(2).any(|w| w[0] == w[1]) {
            return Err(LabError::Invalid("--ports: two services on one port".into()));
        }
        Ok(map)
    }

    /// The port of a service.
    pub fn port(&self, service: &str) -> u16 {
        self.ports[service]
    }

    /// Every (service, port).
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u16)> + '_ {
        self.ports.iter().map(|(name, port)| (*name, *port))
    }

    /// The survey's `--ports` list for this map (`10023/telnet,...`).
    pub fn survey_list(&self) -> String {
        self.iter().map(|(name, port)| format!("{port}/{name}")).collect::<Vec<_>>().join(",")
    }
}

/// How a device logs people in.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Credential {
    /// A dictionary pair: the survey should find it.
    Dictionary {
        /// The dictionary id.
        credential_id: u32,
        /// Login name (kept out of the truth file).
        #[serde(skip)]
        username: String,
        /// Password (kept out of the truth file).
        #[serde(skip)]
        password: String,
    },
    /// A strong random password: the survey must not find anything.
    Strong {
        /// Login name (kept out of the truth file).
        #[serde(skip)]
        username: String,
        /// Password (kept out of the truth file).
        #[serde(skip)]
        password: String,
    },
    /// No authentication at all.
    None,
}

impl std::fmt::Debug for Credential {
    // Never print a password, even in a stray `{:?}` of a device.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Dictionary { credential_id, .. } => write!(f, "Dictionary({credential_id})"),
            Credential::Strong { .. } => f.write_str("Strong"),
            Credential::None => f.write_str("None"),
        }
    }
}

impl Credential {
    /// Whether `username`/`password` opens the device.
    pub fn accepts(&self, username: &str, password: &str) -> bool {
        match self {
            Credential::Dictionary { username: u, password: p, .. }
            | Credential::Strong { username: u, password: p } => u == username && p == password,
            Credential::None => true,
        }
    }
}

/// How a device behaves on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// As its model does.
    Normal,
    /// Waits `delay_ms` before every prompt or response.
    SlowPrompt {
        /// The delay.
        delay_ms: u64,
    },
    /// Refuses every login after `after` failed ones on a service.
    Lockout {
        /// Failures allowed.
        after: u32,
    },
    /// Accepts connections and then says nothing, or a byte now and then.
    Tarpit,
    /// Resets every connection at once.
    Reset,
    /// Sends random bytes (a lot of them) instead of its protocol.
    Garbage,
    /// Telnet option negotiation that never ends (other services: garbage).
    EndlessNegotiation,
}

impl Behaviour {
    /// Whether the device cannot complete any conversation.
    pub fn hostile(self) -> bool {
        matches!(self, Behaviour::Tarpit | Behaviour::Reset | Behaviour::Garbage | Behaviour::EndlessNegotiation)
    }
}

/// One emulated device.
#[derive(Debug, Clone)]
pub struct Device {
    /// Its address.
    pub ip: Ipv4Addr,
    /// Its model (index into the catalogue).
    pub model: DeviceModel,
    /// Its firmware version.
    pub firmware: String,
    /// How it logs people in.
    pub credential: Credential,
    /// How it behaves.
    pub behaviour: Behaviour,
    /// The services it offers, with ports.
    pub services: Vec<(Service, u16)>,
    /// Per-device seed for its random choices at run time (nonces, garbage bytes).
    pub seed: u64,
}

/// One line of the truth file.
#[derive(Debug, Clone, Serialize)]
pub struct Truth {
    /// Address.
    pub ip: Ipv4Addr,
    /// Open ports.
    pub ports: Vec<TruthPort>,
    /// Catalogue id of the model.
    pub model_id: String,
    /// Vendor.
    pub vendor: String,
    /// Model name.
    pub model: String,
    /// Device type.
    #[serde(rename = "type")]
    pub device_type: DeviceType,
    /// Firmware version.
    pub firmware: String,
    /// Release year.
    pub release_year: u16,
    /// End of life.
    pub eol: bool,
    /// How it logs people in (no password written).
    pub credential: Credential,
    /// How it behaves.
    pub behaviour: Behaviour,
    /// What a correct survey with the shipped dictionary and catalogue reports.
    pub findings: Vec<TruthFinding>,
}

/// A port of a device.
#[derive(Debug, Clone, Serialize)]
pub struct TruthPort {
    /// TCP port.
    pub port: u16,
    /// Protocol.
    pub protocol: Service,
    /// How it asks for credentials: password, basic, digest, form, none.
    pub auth: &'static str,
}

/// A finding the survey should report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TruthFinding {
    /// Finding kind (as in finding records' `issue`).
    pub kind: &'static str,
    /// Port, for service findings (device findings: absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Protocol, for service findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Service>,
    /// Dictionary id, for default_credential.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<u32>,
}

/// What to build.
#[derive(Debug, Clone)]
pub struct FleetSpec {
    /// Number of devices.
    pub count: usize,
    /// The seed.
    pub seed: u64,
    /// Where the devices live (inside loopback).
    pub subnet: Ipv4Net,
    /// Service ports.
    pub ports: PortMap,
    /// Share of devices that misbehave (0-1).
    pub misbehaving: f64,
}

/// Small seeded generator for the lab's decisions (fleet and darknet).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        splitmix(&mut self.0)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [low, high).
    pub(crate) fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn token(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789!#%+";
        (0..len).map(|_| ALPHABET[self.below(ALPHABET.len() as u64) as usize] as char).collect()
    }
}

/// Builds the fleet.
pub fn build(spec: &FleetSpec, catalog: &DeviceCatalog, dictionary: &Dictionary) -> Result<Vec<Device>, LabError> {
    let loopback: Ipv4Net = "127.0.0.0/8".parse().expect("constant");
    if !loopback.contains(&spec.subnet) {
        return Err(LabError::NotLoopback(spec.subnet.to_string()));
    }
    // Skip .0 and .255 host octets and 127.0.0.0/16 neighbours of 127.0.0.1 would be confusing;
    // usable addresses are those whose last octet is 1-254.
    let size = 1u64 << (32 - spec.subnet.prefix_len());
    let usable = |ip: Ipv4Addr| !matches!(ip.octets()[3], 0 | 255) && ip != Ipv4Addr::LOCALHOST;
    let first = u32::from(spec.subnet.network());
    let capacity =
        (0..size.min(1 << 24)).filter(|i| usable(Ipv4Addr::from(first + *i as u32))).take(spec.count).count();
    if capacity < spec.count {
        return Err(LabError::Invalid(format!(
            "{} holds only {capacity} usable addresses, {} asked",
            spec.subnet, spec.count
        )));
    }
    let mut rng = Rng(spec.seed ^ 0x1ab_f1ee7);
    let permutation = Permutation::new(u64::from(u32::from(spec.subnet.broadcast()) - first) + 1, spec.seed);
    let addresses: Vec<Ipv4Addr> = permutation
        .shard(0, 1)
        .map(|i| Ipv4Addr::from(first + i as u32))
        .filter(|ip| usable(*ip))
        .take(spec.count)
        .collect();
    let models = catalog.models();
    if models.is_empty() {
        return Err(LabError::Invalid("the device catalogue is empty".into()));
    }
    let total_weight: u64 = dictionary.ordered().iter().map(|c| u64::from(c.weight.max(1))).sum();
    let mut devices = Vec::with_capacity(spec.count);
    for ip in addresses {
        let model = models[rng.below(models.len() as u64) as usize].clone();
        let firmware = if model.firmware.is_empty() {
            model.latest_firmware.clone()
        } else {
            model.firmware[rng.below(model.firmware.len() as u64) as usize].clone()
        };
        let behaviour = if rng.chance(spec.misbehaving) {
            match rng.below(6) {
                0 => Behaviour::SlowPrompt { delay_ms: 100 + rng.below(400) },
                1 => Behaviour::Lockout { after: 3 + rng.below(5) as u32 },
                2 => Behaviour::Tarpit,
                3 => Behaviour::Reset,
                4 => Behaviour::Garbage,
                _ => Behaviour::EndlessNegotiation,
            }
        } else {
            Behaviour::Normal
        };
        let roll = rng.below(100);
        let mut credential = if roll < 45 {
            // Weighted by prevalence, as devices in the field are.
            let limit = match behaviour {
                // A lockout device is only findable if its pair comes before the lockout.
                Behaviour::Lockout { after } => after as usize,
                _ => dictionary.len(),
            };
            let candidates = &dictionary.ordered()[..limit.min(dictionary.len())];
            let weight: u64 = candidates.iter().map(|c| u64::from(c.weight.max(1))).sum::<u64>().min(total_weight);
            let mut pick = rng.below(weight);
            let chosen = candidates
                .iter()
                .find(|c| {
                    let w = u64::from(c.weight.max(1));
                    if pick < w {
                        true
                    } else {
                        pick -= w;
                        false
                    }
                })
                .unwrap_or(&candidates[0]);
            Credential::Dictionary {
                credential_id: chosen.id,
                username: chosen.username.clone(),
                password: chosen.password.clone(),
            }
        } else if roll < 88 {
            Credential::Strong { username: "admin".into(), password: rng.token(16) }
        } else {
            Credential::None
        };
        let mut services = Vec::new();
        for name in &model.lab.services {
            let Some(service) = service_of(name) else { continue };
            // A device with no password offers no SSH: SSH servers do not run without authentication.
            if service == Service::Ssh && credential == Credential::None {
                continue;
            }
            services.push((service, spec.ports.port(name)));
        }
        if !behaviour.hostile() && rng.chance(0.12) {
            let extra = if rng.chance(0.5) { "cwmp" } else { "adb" };
            if !model.lab.services.iter().any(|s| s == extra) {
                services.push((service_of(extra).expect("known"), spec.ports.port(extra)));
            }
        }
        if services.is_empty() {
            services.push((Service::Telnet, spec.ports.port("telnet")));
        }
        if matches!(credential, Credential::None) && !services.iter().any(|(s, _)| is_login_service(*s)) {
            credential = Credential::Strong { username: "admin".into(), password: rng.token(16) };
        }
        let seed = rng.next();
        devices.push(Device { ip, model, firmware, credential, behaviour, services, seed });
    }
    Ok(devices)
}

fn service_of(name: &str) -> Option<Service> {
    Some(match name {
        "telnet" => Service::Telnet,
        "ssh" => Service::Ssh,
        "http" => Service::Http,
        "https" => Service::Https,
        "cwmp" => Service::Cwmp,
        "adb" => Service::Adb,
        _ => return None,
    })
}

fn is_login_service(service: Service) -> bool {
    matches!(service, Service::Telnet | Service::Ssh | Service::Http | Service::Https)
}

impl Device {
    /// The owner fixed it as a notification asks: the default or empty password replaced by a
    /// strong one. Its services stay up, so a re-survey sees the login fail.
    pub fn fix_password(&mut self) {
        if !matches!(self.credential, Credential::Strong { .. }) {
            let password: String = (0..4).map(|i| format!("{:04x}", (self.seed >> (i * 16)) & 0xffff)).collect();
            self.credential = Credential::Strong { username: "admin".into(), password: format!("fixed-{password}") };
        }
    }

    /// How the device asks for credentials on `service`.
    pub fn auth(&self, service: Service) -> &'static str {
        match service {
            Service::Telnet | Service::Ssh if self.credential == Credential::None => "none",
            Service::Telnet | Service::Ssh => "password",
            Service::Http | Service::Https if self.credential == Credential::None => "none",
            Service::Http | Service::Https => match self.model.lab.http_auth.as_str() {
                "digest" => "digest",
                "form" => "form",
                _ => "basic",
            },
            Service::Cwmp => "digest",
            _ => "none",
        }
    }

    /// The truth about this device.
    pub fn truth(&self) -> Truth {
        let mut findings = Vec::new();
        if !self.behaviour.hostile() {
            for (service, port) in &self.services {
                let auth = self.auth(*service);
                let service_finding = |kind, credential_id| TruthFinding {
                    kind,
                    port: Some(*port),
                    protocol: Some(*service),
                    credential_id,
                };
                match (&self.credential, *service, auth) {
                    (_, Service::Cwmp | Service::Adb, _) => findings.push(service_finding("exposed_management", None)),
                    (_, _, "form") => {}
                    (Credential::Dictionary { credential_id, .. }, _, _) => {
                        findings.push(service_finding("default_credential", Some(*credential_id)))
                    }
                    (Credential::None, _, _) => findings.push(service_finding("no_authentication", None)),
                    (Credential::Strong { .. }, _, _) => {}
                }
            }
            if self.model.eol {
                findings.push(TruthFinding { kind: "eol_device", port: None, protocol: None, credential_id: None });
            }
            if self.firmware != self.model.latest_firmware && self.firmware_visible() {
                findings.push(TruthFinding {
                    kind: "outdated_firmware",
                    port: None,
                    protocol: None,
                    credential_id: None,
                });
            }
        }
        Truth {
            ip: self.ip,
            ports: self
                .services
                .iter()
                .map(|(service, port)| TruthPort { port: *port, protocol: *service, auth: self.auth(*service) })
                .collect(),
            model_id: self.model.id.clone(),
            vendor: self.model.vendor.clone(),
            model: self.model.model.clone(),
            device_type: self.model.device_type,
            firmware: self.firmware.clone(),
            release_year: self.model.release_year,
            eol: self.model.eol,
            credential: self.credential.clone(),
            behaviour: self.behaviour,
            findings,
        }
    }

    /// Whether any banner this device shows carries its firmware version.
    fn firmware_visible(&self) -> bool {
        let lab = &self.model.lab;
        self.services.iter().any(|(service, _)| match service {
            Service::Telnet => lab.telnet_banner.contains("{firmware}"),
            Service::Http | Service::Https => {
                lab.http_title.contains("{firmware}") || lab.http_server.contains("{firmware}")
            }
            Service::Ssh => lab.ssh_version.contains("{firmware}"),
            _ => false,
        })
    }

    /// A model presentation string with the firmware filled in.
    pub fn show(&self, template: &str) -> String {
        template.replace("{firmware}", &self.firmware)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(count: usize, seed: u64) -> FleetSpec {
        FleetSpec {
            count,
            seed,
            subnet: "127.16.0.0/12".parse().unwrap(),
            ports: PortMap::default(),
            misbehaving: 0.15,
        }
    }

    #[test]
    fn the_same_seed_builds_the_same_fleet() {
        let (catalog, dictionary) = (DeviceCatalog::shipped(), Dictionary::shipped());
        let a = build(&spec(500, 9), &catalog, &dictionary).unwrap();
        let b = build(&spec(500, 9), &catalog, &dictionary).unwrap();
        let c = build(&spec(500, 10), &catalog, &dictionary).unwrap();
        let key = |d: &Device| (d.ip, d.model.id.clone(), d.firmware.clone(), d.credential.clone());
        assert_eq!(a.iter().map(key).collect::<Vec<_>>(), b.iter().map(key).collect::<Vec<_>>());
        assert_ne!(a.iter().map(key).collect::<Vec<_>>(), c.iter().map(key).collect::<Vec<_>>());
    }

    #[test]
    fn fleet_mixes_credentials_and_behaviours_with_unique_loopback_addresses() {
        let (catalog, dictionary) = (DeviceCatalog::shipped(), Dictionary::shipped());
        let fleet = build(&spec(20_000, 1), &catalog, &dictionary).unwrap();
        let unique: std::collections::HashSet<_> = fleet.iter().map(|d| d.ip).collect();
        assert_eq!(unique.len(), 20_000);
        assert!(fleet.iter().all(|d| d.ip.is_loopback() && d.ip != Ipv4Addr::LOCALHOST));
        let dictionary_share = fleet.iter().filter(|d| matches!(d.credential, Credential::Dictionary { .. })).count();
        assert!((7_000..11_000).contains(&dictionary_share), "{dictionary_share}");
        assert!(fleet.iter().any(|d| d.behaviour == Behaviour::Tarpit));
        assert!(fleet.iter().any(|d| matches!(d.behaviour, Behaviour::Lockout { .. })));
    }

    #[test]
    fn lockout_devices_use_a_pair_the_survey_reaches_before_locking() {
        let (catalog, dictionary) = (DeviceCatalog::shipped(), Dictionary::shipped());
        for device in build(&spec(5_000, 3), &catalog, &dictionary).unwrap() {
            if let (Behaviour::Lockout { after }, Credential::Dictionary { credential_id, .. }) =
                (device.behaviour, &device.credential)
            {
                assert!(dictionary.rank(*credential_id).unwrap() < after as usize);
            }
        }
    }

    #[test]
    fn the_truth_file_never_contains_a_password() {
        let (catalog, dictionary) = (DeviceCatalog::shipped(), Dictionary::shipped());
        for device in build(&spec(300, 4), &catalog, &dictionary).unwrap() {
            let line = serde_json::to_string(&device.truth()).unwrap();
            // Dictionary passwords are common words ("password", "admin") that may appear for
            // other reasons; the random strong ones must never appear.
            if let Credential::Strong { password, .. } = &device.credential {
                assert!(!line.contains(password.as_str()), "{line}");
            }
            assert!(!line.contains("\"password\":"));
        }
    }

    #[test]
    fn subnets_outside_loopback_are_refused() {
        let (catalog, dictionary) = (DeviceCatalog::shipped(), Dictionary::shipped());
        let mut bad = spec(10, 1);
        bad.subnet = "10.0.0.0/24".parse().unwrap();
        assert!(matches!(build(&bad, &catalog, &dictionary), Err(LabError::NotLoopback(_))));
    }
}
