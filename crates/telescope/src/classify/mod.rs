//! Signatures and behaviours kept as data (`data/signatures/*.toml`), so a new botnet's
//! fingerprint is a new file, not new code.
//!
//! A **signature** judges one packet by header conditions (see [`expr`] for the language); every
//! source whose packets match it at least `min_packets` times carries its id as a tag. A
//! **behaviour** judges a whole source in a window: the share of its packets that matched a
//! signature and how many darknet addresses it reached. A **service** maps ports to the service
//! categories the darknet statistics report.
//!
//! Each rule names a class. A source gets the highest class among its rules, in the order
//! `infected` > `research_scanner` > `backscatter` > `unknown`; with no rule at all it is `unknown`.

mod expr;

use std::collections::HashSet;
use std::path::Path;

use botscope_model::ActivityClass;
use serde::Deserialize;

use crate::packet::{Packet, Transport, tcp_flags};
pub(crate) use expr::Fields;
use expr::{Condition, parse_condition};

/// The catalogue shipped in `data/signatures/`, built into the binary.
pub const SHIPPED: &[(&str, &str)] = &[
    ("data/signatures/backscatter.toml", include_str!("../../../../data/signatures/backscatter.toml")),
    ("data/signatures/mirai.toml", include_str!("../../../../data/signatures/mirai.toml")),
    ("data/signatures/probes.toml", include_str!("../../../../data/signatures/probes.toml")),
    ("data/signatures/research.toml", include_str!("../../../../data/signatures/research.toml")),
    ("data/signatures/scanners.toml", include_str!("../../../../data/signatures/scanners.toml")),
    ("data/signatures/services.toml", include_str!("../../../../data/signatures/services.toml")),
];

/// At most this many signatures, so a source's matches fit one 64-bit mask.
pub const MAX_SIGNATURES: usize = 64;

/// Errors in a signature catalogue.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// The directory or a file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not valid TOML for the catalogue.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's words.
        message: String,
    },
    /// A rule is wrong in a way TOML cannot see.
    #[error("{path}: rule {rule:?}: {message}")]
    Rule {
        /// The file.
        path: String,
        /// The rule id.
        rule: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    signature: Vec<SignatureSpec>,
    #[serde(default)]
    behaviour: Vec<BehaviourSpec>,
    #[serde(default)]
    service: Vec<ServiceSpec>,
}

/// A packet signature as written in the catalogue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureSpec {
    /// Unique id; also the tag sources get.
    pub id: String,
    /// The class a source matching it gets.
    pub class: ActivityClass,
    /// What the signature recognises, in words (becomes the evidence detail).
    pub description: String,
    /// Conditions that must all hold.
    pub when: Vec<String>,
    /// Matches a source needs before it carries the tag.
    #[serde(default = "one")]
    pub min_packets: u64,
    /// Least share (0..1) of the source's packets that must match, so a field that matches by
    /// chance now and then (a 16-bit IP id) does not tag a source.
    #[serde(default)]
    pub min_share: f64,
    /// Marks the Mirai fingerprint, whose counts feed `mirai_packets` and the daily series.
    #[serde(default)]
    pub mirai_fingerprint: bool,
    /// Marks replies to spoofed traffic: the reply's source is a DDoS victim and its source port
    /// the attacked service.
    #[serde(default)]
    pub reply: bool,
    /// Whether matching sources carry the id as a tag (helper signatures that only feed a
    /// behaviour set this to false).
    #[serde(default = "yes")]
    pub tag: bool,
}

fn one() -> u64 {
    1
}

fn yes() -> bool {
    true
}

/// A source-level behaviour as written in the catalogue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BehaviourSpec {
    /// Unique id; also the tag.
    pub id: String,
    /// The class a source showing it gets.
    pub class: ActivityClass,
    /// What the behaviour means, in words.
    pub description: String,
    /// The signature whose share of the source's packets is measured.
    pub signature: String,
    /// Least share (0..1) of the source's packets that matched `signature`.
    pub min_share: f64,
    /// Least number of distinct darknet addresses reached.
    #[serde(default)]
    pub min_destinations: u64,
    /// Least number of packets.
    #[serde(default = "one")]
    pub min_packets: u64,
    /// Tags that rule the behaviour out (a known fingerprint explains the source better).
    #[serde(default)]
    pub unless: Vec<String>,
}

/// A service category as written in the catalogue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Category name used in the statistics.
    pub category: String,
    /// Whether IoT malware targets it (the report lists these first).
    #[serde(default)]
    pub iot: bool,
    /// TCP ports.
    #[serde(default)]
    pub tcp: Vec<u16>,
    /// UDP ports.
    #[serde(default)]
    pub udp: Vec<u16>,
}

pub(crate) struct Signature {
    pub(crate) spec: SignatureSpec,
    conditions: Vec<Condition>,
    /// Fields every condition together reads.
    needs: u32,
}

pub(crate) struct Behaviour {
    pub(crate) spec: BehaviourSpec,
    signature: usize,
    unless: u64,
}

/// The category index used for packets no service lists, per transport, and for replies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FixedCategories {
    pub(crate) backscatter: u8,
    pub(crate) other_tcp: u8,
    pub(crate) other_udp: u8,
    pub(crate) icmp: u8,
    pub(crate) other: u8,
}

/// The loaded, compiled catalogue.
pub struct Catalogue {
    pub(crate) signatures: Vec<Signature>,
    pub(crate) behaviours: Vec<Behaviour>,
    categories: Vec<(String, bool)>,
    tcp_category: Box<[u8; 65536]>,
    udp_category: Box<[u8; 65536]>,
    pub(crate) fixed: FixedCategories,
    pub(crate) mirai_mask: u64,
    pub(crate) reply_mask: u64,
}

impl Catalogue {
    /// The shipped catalogue.
    pub fn shipped() -> Self {
        Self::from_texts(SHIPPED.iter().copied()).expect("the shipped signatures are checked by the tests")
    }

    /// Loads every `*.toml` file in `dir`, in name order.
    pub fn load_dir(dir: &Path) -> Result<Self, CatalogueError> {
        let io = |source| CatalogueError::Io { path: dir.display().to_string(), source };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        let mut files = Vec::new();
        for path in paths {
            let text = std::fs::read_to_string(&path)
                .map_err(|source| CatalogueError::Io { path: path.display().to_string(), source })?;
            files.push((path.display().to_string(), text));
        }
        Self::from_texts(files.iter().map(|(p, t)| (p.as_str(), t.as_str())))
    }

    /// Builds a catalogue from (name, TOML text) pairs.
    pub fn from_texts<'a>(texts: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, CatalogueError> {
        let mut signatures = Vec::new();
        let mut behaviour_specs = Vec::new();
        let mut services = Vec::new();
        let mut ids = HashSet::new();
        for (path, text) in texts {
            let file: File = toml::from_str(text)
                .map_err(|e| CatalogueError::Syntax { path: path.into(), message: e.to_string() })?;
            let rule_error =
                |rule: &str, message: String| CatalogueError::Rule { path: path.into(), rule: rule.into(), message };
            for spec in file.signature {
                if !ids.insert(spec.id.clone()) {
                    return Err(rule_error(&spec.id, "the id is used twice".into()));
                }
                if !(0.0..=1.0).contains(&spec.min_share) {
                    return Err(rule_error(&spec.id, "min_share must lie in 0..1".into()));
                }
                if spec.when.is_empty() {
                    return Err(rule_error(&spec.id, "`when` needs at least one condition".into()));
                }
                let conditions = spec
                    .when
                    .iter()
                    .map(|c| parse_condition(c))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|m| rule_error(&spec.id, m))?;
                let needs = conditions.iter().fold(0, |m, c| m | c.field_mask());
                signatures.push(Signature { spec, conditions, needs });
            }
            for spec in file.behaviour {
                if !ids.insert(spec.id.clone()) {
                    return Err(rule_error(&spec.id, "the id is used twice".into()));
                }
                if !(0.0..=1.0).contains(&spec.min_share) {
                    return Err(rule_error(&spec.id, "min_share must lie in 0..1".into()));
                }
                behaviour_specs.push((path.to_string(), spec));
            }
            services.extend(file.service);
        }
        if signatures.len() > MAX_SIGNATURES {
            return Err(CatalogueError::Rule {
                path: "(catalogue)".into(),
                rule: String::new(),
                message: format!("{} signatures; at most {MAX_SIGNATURES} are supported", signatures.len()),
            });
        }
        let index_of = |id: &str| signatures.iter().position(|s: &Signature| s.spec.id == id);
        let mut behaviours = Vec::new();
        for (path, spec) in behaviour_specs {
            let rule_error =
                |message: String| CatalogueError::Rule { path: path.clone(), rule: spec.id.clone(), message };
            let signature = index_of(&spec.signature)
                .ok_or_else(|| rule_error(format!("names an unknown signature {:?}", spec.signature)))?;
            let mut unless = 0u64;
            for tag in &spec.unless {
                let i =
                    index_of(tag).ok_or_else(|| rule_error(format!("`unless` names an unknown signature {tag:?}")))?;
                unless |= 1 << i;
            }
            behaviours.push(Behaviour { spec, signature, unless });
        }
        let mask_of = |pick: fn(&SignatureSpec) -> bool| {
            signatures.iter().enumerate().filter(|(_, s)| pick(&s.spec)).fold(0u64, |m, (i, _)| m | 1 << i)
        };
        let mirai_mask = mask_of(|s| s.mirai_fingerprint);
        let reply_mask = mask_of(|s| s.reply);

        let mut categories: Vec<(String, bool)> = Vec::new();
        let mut tcp_category = Box::new([u8::MAX; 65536]);
        let mut udp_category = Box::new([u8::MAX; 65536]);
        // IoT categories first, as the report draws them.
        services.sort_by_key(|s| !s.iot);
        for service in &services {
            let index = match categories.iter().position(|(c, _)| *c == service.category) {
                Some(i) => i,
                None => {
                    categories.push((service.category.clone(), service.iot));
                    categories.len() - 1
                }
            };
            for &port in &service.tcp {
                tcp_category[usize::from(port)] = index as u8;
            }
            for &port in &service.udp {
                udp_category[usize::from(port)] = index as u8;
            }
        }
        let mut fixed_index = |name: &str| {
            categories.push((name.to_string(), false));
            (categories.len() - 1) as u8
        };
        let fixed = FixedCategories {
            backscatter: fixed_index("backscatter"),
            other_tcp: fixed_index("other_tcp"),
            other_udp: fixed_index("other_udp"),
            icmp: fixed_index("icmp"),
            other: fixed_index("other"),
        };
        if categories.len() >= usize::from(u8::MAX) {
            return Err(CatalogueError::Rule {
                path: "(catalogue)".into(),
                rule: String::new(),
                message: format!("too many service categories (at most {})", u8::MAX as usize - 1 - 5),
            });
        }
        Ok(Catalogue { signatures, behaviours, categories, tcp_category, udp_category, fixed, mirai_mask, reply_mask })
    }

    /// The mask of signatures this packet matches.
    #[inline]
    pub fn matches(&self, packet: &Packet) -> u64 {
        let fields = Fields::of(packet);
        let present = fields.present();
        let mut mask = 0u64;
        for (i, s) in self.signatures.iter().enumerate() {
            if present & s.needs == s.needs && s.conditions.iter().all(|c| c.holds(&fields)) {
                mask |= 1 << i;
            }
        }
        mask
    }

    /// The service category index of a packet, given its signature mask.
    #[inline]
    pub(crate) fn category(&self, packet: &Packet, mask: u64) -> u8 {
        if mask & self.reply_mask != 0 {
            return self.fixed.backscatter;
        }
        match packet.transport {
            Transport::Tcp { dport, flags, .. } => {
                // A stray reply no signature claimed still is not a probe of its port.
                if flags & (tcp_flags::ACK | tcp_flags::RST) != 0 && flags & tcp_flags::SYN == 0 {
                    return self.fixed.other_tcp;
                }
                let c = self.tcp_category[usize::from(dport)];
                if c == u8::MAX { self.fixed.other_tcp } else { c }
            }
            Transport::Udp { dport, .. } => {
                let c = self.udp_category[usize::from(dport)];
                if c == u8::MAX { self.fixed.other_udp } else { c }
            }
            Transport::Icmp { .. } => self.fixed.icmp,
            Transport::Other | Transport::Truncated => self.fixed.other,
        }
    }

    /// Category names (IoT ones first) and whether each is an IoT category.
    pub fn categories(&self) -> &[(String, bool)] {
        &self.categories
    }

    /// Signature ids in mask-bit order.
    pub fn signature_ids(&self) -> impl Iterator<Item = &str> {
        self.signatures.iter().map(|s| s.spec.id.as_str())
    }

    /// Number of signatures and behaviours.
    pub fn len(&self) -> (usize, usize) {
        (self.signatures.len(), self.behaviours.len())
    }

    /// Whether there are no rules at all.
    pub fn is_empty(&self) -> bool {
        self.signatures.is_empty() && self.behaviours.is_empty()
    }

    pub(crate) fn behaviour_signature(&self, b: &Behaviour) -> usize {
        b.signature
    }

    pub(crate) fn behaviour_excluded(&self, b: &Behaviour, tags: u64) -> bool {
        b.unless & tags != 0
    }
}

/// Class precedence: higher wins.
pub(crate) fn rank(class: ActivityClass) -> u8 {
    match class {
        ActivityClass::Infected => 3,
        ActivityClass::ResearchScanner => 2,
        ActivityClass::Backscatter => 1,
        ActivityClass::Unknown => 0,
    }
}

#[cfg(test)]
mod tests;
