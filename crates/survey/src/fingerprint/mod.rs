//! Identification: which vendor and model a service belongs to, from what it printed.
//!
//! Rules come from two places: the project's own format (`data/fingerprints/*.toml`, each rule
//! naming a model of the device catalogue) and Rapid7 Recog XML files an operator points to
//! ([`recog`]). Both compile to the same [`Rule`]; every rule carries examples that must match,
//! which [`Fingerprints::check_examples`] runs.

pub mod recog;

use std::path::Path;

use botscope_model::{Device, DeviceType};
use fancy_regex::{Regex, RegexBuilder};
use serde::Deserialize;

use crate::SurveyError;
use crate::catalog::{DeviceCatalog, parse_version};

/// The shipped rule files, compiled in.
pub const SHIPPED: &[(&str, &str)] = &[
    ("data/fingerprints/lab-models.toml", include_str!("../../../../data/fingerprints/lab-models.toml")),
    ("data/fingerprints/generic.toml", include_str!("../../../../data/fingerprints/generic.toml")),
];

/// What a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum Field {
    /// Telnet text up to and including the first prompt.
    #[serde(rename = "telnet.banner")]
    TelnetBanner,
    /// The SSH version line (`SSH-2.0-...`).
    #[serde(rename = "ssh.banner")]
    SshBanner,
    /// The HTTP `Server` header.
    #[serde(rename = "http.server")]
    HttpServer,
    /// The HTML title of the first page.
    #[serde(rename = "http.title")]
    HttpTitle,
    /// The realm of the HTTP authentication challenge.
    #[serde(rename = "http.realm")]
    HttpRealm,
    /// The whole `WWW-Authenticate` header.
    #[serde(rename = "http.www_authenticate")]
    HttpWwwAuthenticate,
    /// A `Set-Cookie` header.
    #[serde(rename = "http.set_cookie")]
    HttpSetCookie,
    /// The https certificate's subject, as Recog writes distinguished names.
    #[serde(rename = "x509.subject")]
    X509Subject,
    /// The https certificate's issuer.
    #[serde(rename = "x509.issuer")]
    X509Issuer,
    /// The FTP greeting (port 21).
    #[serde(rename = "ftp.banner")]
    FtpBanner,
    /// The RTSP `Server` header (port 554, cameras).
    #[serde(rename = "rtsp.server")]
    RtspServer,
}

/// What a matching rule says, before the catalogue fills in the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// Device catalogue id, when the rule names a catalogued model.
    pub catalog_id: Option<String>,
    /// Vendor.
    pub vendor: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Device type.
    pub device_type: Option<DeviceType>,
    /// Firmware version.
    pub firmware: Option<String>,
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Where it came from (`file: id`).
    pub name: String,
    /// What it looks at.
    pub field: Field,
    regex: Regex,
    catalog_id: Option<String>,
    vendor: Value,
    model: Value,
    device_type: Option<DeviceType>,
    firmware: Value,
    examples: Vec<Example>,
    /// Recog's SSH rules match the software part of the version line (after `SSH-2.0-`).
    pub(crate) ssh_software_only: bool,
    /// Every `<param>` of a Recog fingerprint, by Recog name, for verifying its examples as
    /// Recog's own verifier does.
    pub(crate) recog_params: Vec<(String, Value)>,
    /// The Recog file's `protocol`, which a match reports as `service.protocol` unless a param
    /// names it.
    pub(crate) recog_protocol: Option<String>,
}

/// A fixed value, a capture group, or nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Value {
    /// Not set by this rule.
    #[default]
    None,
    /// A fixed value.
    Fixed(String),
    /// The text of a capture group.
    Group(usize),
}

impl Value {
    fn resolve(&self, captures: &fancy_regex::Captures<'_, str>) -> Option<String> {
        match self {
            Value::None => None,
            Value::Fixed(text) => Some(text.clone()),
            Value::Group(index) => {
                captures.get(*index).map(|m| m.as_str().trim().to_string()).filter(|s| !s.is_empty())
            }
        }
    }
}

/// An input a rule must match, with what it must extract.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Example {
    /// The input text.
    pub text: String,
    /// Expected values by name (`vendor`, `model`, `firmware`, `device`).
    pub expect: Vec<(String, String)>,
    /// For a Recog example: every attribute it expects, by Recog param name (`service.version`).
    pub recog_expect: Vec<(String, String)>,
}

/// A rule whose examples do not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExampleFailure {
    /// The rule.
    pub rule: String,
    /// The example text.
    pub text: String,
    /// What went wrong.
    pub problem: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    rule: Vec<RuleSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    id: String,
    field: Field,
    pattern: String,
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    vendor: Option<String>,
    #[serde(default)]
    product: Option<String>,
    #[serde(default, rename = "type")]
    device_type: Option<DeviceType>,
    #[serde(default)]
    firmware_group: Option<usize>,
    #[serde(default)]
    examples: Vec<ExampleSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExampleSpec {
    text: String,
    #[serde(default)]
    firmware: Option<String>,
}

/// Steps a pattern may backtrack on one input before it counts as not matching: a hostile
/// banner cannot make a look-around or back-reference pattern run away.
const BACKTRACK_LIMIT: usize = 100_000;

/// Compiles a pattern the way every rule is compiled: `^`/`$` at line boundaries (as in Ruby,
/// whose regular expressions Recog's are), look-around and back-references allowed (patterns
/// without them run on the `regex` crate's engine), a size limit large enough for Recog's Unicode
/// classes, and a bound on backtracking.
pub fn compile(pattern: &str, case_insensitive: bool, dot_newline: bool) -> Result<Regex, Box<fancy_regex::Error>> {
    RegexBuilder::new(pattern)
        .multi_line(true)
        .case_insensitive(case_insensitive)
        .dot_matches_new_line(dot_newline)
        .delegate_size_limit(64 << 20)
        .backtrack_limit(BACKTRACK_LIMIT)
        .oniguruma_mode(true)
        .build()
        .map_err(Box::new)
}

/// A set of rules and the catalogue they refer to.
#[derive(Debug, Clone)]
pub struct Fingerprints {
    rules: Vec<Rule>,
    catalog: DeviceCatalog,
    files: Vec<FileReport>,
}

/// What loading one rule file did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileReport {
    /// The file.
    pub file: String,
    /// What its rules look at (`telnet.banner`), when known.
    pub matches: Option<String>,
    /// Rules loaded.
    pub rules: usize,
    /// Their examples.
    pub examples: usize,
    /// Why the whole file was skipped, if it was.
    pub skipped: Option<String>,
    /// Rules that could not be loaded, and why.
    pub problems: Vec<String>,
}

impl Fingerprints {
    /// The shipped rules over the shipped catalogue.
    pub fn shipped() -> Fingerprints {
        let catalog = DeviceCatalog::shipped();
        let mut rules = Vec::new();
        for (name, text) in SHIPPED {
            rules.extend(parse_rules(text, name, &catalog).expect("shipped rules are valid (tested)"));
        }
        Fingerprints { rules, catalog, files: Vec::new() }
    }

    /// Adds every rule file in `dir`: `*.toml` in the project's format, `*.xml` in Recog's.
    pub fn add_dir(&mut self, dir: &Path) -> Result<usize, SurveyError> {
        let name = dir.display().to_string();
        let entries = std::fs::read_dir(dir).map_err(|source| SurveyError::Read { name: name.clone(), source })?;
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        let before = self.rules.len();
        for path in paths {
            let file = path.display().to_string();
            let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !matches!(extension, "toml" | "xml") {
                continue;
            }
            let text =
                std::fs::read_to_string(&path).map_err(|source| SurveyError::Read { name: file.clone(), source })?;
            let mut report = FileReport { file: file.clone(), ..FileReport::default() };
            let rules = if extension == "toml" {
                parse_rules(&text, &file, &self.catalog)?
            } else {
                let parsed = recog::parse_file(&text, &file)?;
                report.matches = parsed.matches;
                report.skipped = parsed.skipped;
                report.problems = parsed.problems;
                parsed.rules
            };
            report.rules = rules.len();
            report.examples = rules.iter().map(|r| r.examples.len()).sum();
            self.files.push(report);
            self.rules.extend(rules);
        }
        Ok(self.rules.len() - before)
    }

    /// What each file `add_dir` read did: rules and examples loaded, skipped files and rules, why.
    pub fn files(&self) -> &[FileReport] {
        &self.files
    }

    /// The rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The device catalogue.
    pub fn catalog(&self) -> &DeviceCatalog {
        &self.catalog
    }

    /// The first rule of `field` that matches `text`.
    pub fn identify(&self, field: Field, text: &str) -> Option<Identity> {
        let text = if field == Field::SshBanner { text.trim_end_matches(['\r', '\n']) } else { text };
        self.rules.iter().filter(|rule| rule.field == field).find_map(|rule| rule.apply(text))
    }

    /// Combines what a host's services said into one device description: a rule naming a
    /// catalogued model wins, other rules fill the gaps; the catalogue adds release year and EOL.
    pub fn describe(&self, identities: &[Identity]) -> Option<(Device, Option<&crate::catalog::DeviceModel>)> {
        if identities.is_empty() {
            return None;
        }
        let mut merged = Identity::default();
        let mut ordered: Vec<&Identity> = identities.iter().filter(|i| i.catalog_id.is_some()).collect();
        ordered.extend(identities.iter().filter(|i| i.catalog_id.is_none()));
        for identity in ordered {
            if merged.catalog_id.is_none() {
                merged.catalog_id = identity.catalog_id.clone();
            }
            merged.vendor = merged.vendor.or_else(|| identity.vendor.clone());
            merged.model = merged.model.or_else(|| identity.model.clone());
            merged.device_type = merged.device_type.or(identity.device_type);
            merged.firmware = merged.firmware.or_else(|| identity.firmware.clone());
        }
        let model = merged.catalog_id.as_deref().and_then(|id| self.catalog.get(id)).or_else(|| {
            let (vendor, name) = (merged.vendor.as_deref()?, merged.model.as_deref()?);
            self.catalog
                .models()
                .iter()
                .find(|m| m.vendor.eq_ignore_ascii_case(vendor) && m.model.eq_ignore_ascii_case(name))
        });
        if model.is_none() && merged.vendor.is_none() && merged.model.is_none() && merged.device_type.is_none() {
            return None;
        }
        let device = Device {
            vendor: model.map(|m| m.vendor.clone()).or(merged.vendor),
            model: model.map(|m| m.model.clone()).or(merged.model),
            device_type: model.map(|m| m.device_type).or(merged.device_type),
            firmware: merged.firmware,
            release_year: model.map(|m| m.release_year),
            end_of_life: model.map(|m| m.eol),
        };
        Some((device, model))
    }

    /// Runs every rule's examples; returns what fails.
    pub fn check_examples(&self) -> Vec<ExampleFailure> {
        let mut failures = Vec::new();
        for rule in &self.rules {
            for example in &rule.examples {
                let fail =
                    |problem: String| ExampleFailure { rule: rule.name.clone(), text: example.text.clone(), problem };
                if !rule.recog_params.is_empty() || !example.recog_expect.is_empty() {
                    // A Recog example is verified as Recog does: it matches, and every attribute it
                    // names equals that param of the match.
                    match rule.recog_match(&example.text) {
                        None => failures.push(fail("does not match".into())),
                        Some(found) => {
                            for (key, expected) in &example.recog_expect {
                                let got = found.iter().find(|(name, _)| name == key).and_then(|(_, v)| v.clone());
                                if got.as_deref() != Some(expected.as_str()) {
                                    failures.push(fail(format!("{key}: expected {expected:?}, got {got:?}")));
                                }
                            }
                        }
                    }
                    continue;
                }
                match rule.apply(&example.text) {
                    None => failures.push(fail("does not match".into())),
                    Some(identity) => {
                        for (key, expected) in &example.expect {
                            let got = match key.as_str() {
                                "vendor" => identity.vendor.clone(),
                                "model" => identity.model.clone(),
                                "firmware" => identity.firmware.clone(),
                                "device" => identity.catalog_id.clone(),
                                _ => continue,
                            };
                            if got.as_deref() != Some(expected.as_str()) {
                                failures.push(fail(format!("{key}: expected {expected:?}, got {got:?}")));
                            }
                        }
                    }
                }
            }
        }
        failures
    }
}

impl Rule {
    /// What the rule says about `text`, if it matches.
    pub fn apply(&self, text: &str) -> Option<Identity> {
        if !self.recog_params.is_empty() {
            let found = self.recog_match(text)?;
            return Some(recog::identity_of(&found, self.device_type));
        }
        // A pattern that exceeds its backtracking bound on this text does not match it.
        let captures = self.regex.captures(self.match_text(text)).ok().flatten()?;
        Some(Identity {
            catalog_id: self.catalog_id.clone(),
            vendor: self.vendor.resolve(&captures),
            model: self.model.resolve(&captures),
            device_type: self.device_type,
            firmware: self.firmware.resolve(&captures),
        })
    }

    fn match_text<'t>(&self, text: &'t str) -> &'t str {
        match (self.ssh_software_only, text.strip_prefix("SSH-")) {
            (true, Some(rest)) => rest.split_once('-').map_or(rest, |(_, software)| software),
            _ => text,
        }
    }

    /// Every Recog param of a match of `text`, by name, as Recog reports them: fixed values with
    /// `{name}` references to other params filled in, capture groups (none when the group took no
    /// part), and the file's protocol as `service.protocol` unless a param names it.
    pub fn recog_match(&self, text: &str) -> Option<Vec<(String, Option<String>)>> {
        let captures = self.regex.captures(self.match_text(text)).ok().flatten()?;
        let mut found: Vec<(String, Option<String>)> = self
            .recog_params
            .iter()
            .map(|(name, value)| {
                let raw = match value {
                    Value::Group(index) => captures.get(*index).map(|m| m.as_str().to_string()),
                    Value::Fixed(text) => Some(text.clone()),
                    Value::None => None,
                };
                (name.clone(), raw)
            })
            .collect();
        let snapshot = found.clone();
        for (_, value) in found.iter_mut() {
            if let Some(text) = value.as_mut()
                && text.contains('{')
            {
                for (other, other_value) in &snapshot {
                    if let Some(other_value) = other_value {
                        *text = text.replace(&format!("{{{other}}}"), other_value);
                    }
                }
            }
        }
        if let Some(protocol) = &self.recog_protocol
            && !found.iter().any(|(name, _)| name == "service.protocol")
        {
            found.push(("service.protocol".into(), Some(protocol.clone())));
        }
        Some(found)
    }

    /// The rule's examples.
    pub fn examples(&self) -> &[Example] {
        &self.examples
    }

    /// The catalogue model the rule names.
    pub fn catalog_id(&self) -> Option<&str> {
        self.catalog_id.as_deref()
    }
}

/// Parses a rule file in the project's format against a catalogue.
pub fn parse_rules(text: &str, name: &str, catalog: &DeviceCatalog) -> Result<Vec<Rule>, SurveyError> {
    let invalid = |reason: String| SurveyError::Invalid { name: name.into(), reason };
    let file: RuleFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let mut rules = Vec::new();
    for spec in file.rule {
        let regex = compile(&spec.pattern, false, false).map_err(|e| invalid(format!("rule {}: {e}", spec.id)))?;
        if let Some(group) = spec.firmware_group
            && group >= regex.captures_len()
        {
            return Err(invalid(format!("rule {}: firmware_group {group} does not exist in the pattern", spec.id)));
        }
        let (vendor, model, device_type) = match &spec.device {
            Some(id) => {
                let model = catalog
                    .get(id)
                    .ok_or_else(|| invalid(format!("rule {}: no device {id:?} in the catalogue", spec.id)))?;
                (Value::Fixed(model.vendor.clone()), Value::Fixed(model.model.clone()), Some(model.device_type))
            }
            None => {
                if spec.vendor.is_none() && spec.product.is_none() && spec.device_type.is_none() {
                    return Err(invalid(format!("rule {}: names no device, vendor, product or type", spec.id)));
                }
                // `product` names the software (BusyBox, lighttpd), not the device model: it is for
                // people reading the rule and does not become the device's model.
                (spec.vendor.clone().map_or(Value::None, Value::Fixed), Value::None, spec.device_type)
            }
        };
        if spec.examples.is_empty() {
            return Err(invalid(format!("rule {}: needs at least one example", spec.id)));
        }
        let examples = spec
            .examples
            .iter()
            .map(|example| {
                let mut expect = Vec::new();
                if let Some(firmware) = &example.firmware {
                    if parse_version(firmware).is_none() {
                        return Err(invalid(format!(
                            "rule {}: example firmware {firmware:?} is not a dotted version",
                            spec.id
                        )));
                    }
                    expect.push(("firmware".to_string(), firmware.clone()));
                }
                if let Some(device) = &spec.device {
                    expect.push(("device".to_string(), device.clone()));
                }
                Ok(Example { text: example.text.clone(), expect, ..Example::default() })
            })
            .collect::<Result<Vec<_>, SurveyError>>()?;
        rules.push(Rule {
            name: format!("{name}: {}", spec.id),
            field: spec.field,
            regex,
            catalog_id: spec.device.clone(),
            vendor,
            model,
            device_type,
            firmware: spec.firmware_group.map_or(Value::None, Value::Group),
            examples,
            ssh_software_only: false,
            recog_params: Vec::new(),
            recog_protocol: None,
        });
    }
    Ok(rules)
}

pub(crate) fn rule_from_parts(
    name: String,
    field: Field,
    regex: Regex,
    values: (Value, Value, Option<DeviceType>, Value),
    examples: Vec<Example>,
) -> Rule {
    let (vendor, model, device_type, firmware) = values;
    Rule {
        name,
        field,
        regex,
        catalog_id: None,
        vendor,
        model,
        device_type,
        firmware,
        examples,
        ssh_software_only: false,
        recog_params: Vec::new(),
        recog_protocol: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_example_holds() {
        let fingerprints = Fingerprints::shipped();
        let failures = fingerprints.check_examples();
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn no_shipped_model_rule_matches_another_models_example() {
        let fingerprints = Fingerprints::shipped();
        for rule in fingerprints.rules().iter().filter(|r| r.catalog_id().is_some()) {
            for other in fingerprints.rules().iter().filter(|o| o.field == rule.field) {
                if other.catalog_id() == rule.catalog_id() {
                    continue;
                }
                for example in other.examples() {
                    assert!(rule.apply(&example.text).is_none(), "{} matches an example of {}", rule.name, other.name);
                }
            }
        }
    }

    #[test]
    fn every_catalogued_lab_model_is_identifiable_from_each_service_it_offers() {
        let fingerprints = Fingerprints::shipped();
        for model in fingerprints.catalog().models() {
            let firmware = model.firmware.first().cloned().unwrap_or_else(|| model.latest_firmware.clone());
            let mut texts = Vec::new();
            let lab = &model.lab;
            if lab.services.iter().any(|s| s == "telnet") {
                let banner = lab.telnet_banner.replace("{firmware}", &firmware);
                texts.push((Field::TelnetBanner, format!("{banner}\r\n{}", lab.telnet_login_prompt)));
            }
            if lab.services.iter().any(|s| s == "http" || s == "https") {
                texts.push((Field::HttpServer, lab.http_server.replace("{firmware}", &firmware)));
                texts.push((Field::HttpTitle, lab.http_title.replace("{firmware}", &firmware)));
            }
            let found = texts.iter().any(|(field, text)| {
                fingerprints.identify(*field, text).is_some_and(|i| i.catalog_id.as_deref() == Some(model.id.as_str()))
            });
            assert!(found || texts.is_empty(), "{} cannot be identified from {texts:?}", model.id);
        }
    }

    #[test]
    fn rules_naming_unknown_devices_or_without_examples_are_refused() {
        let catalog = DeviceCatalog::shipped();
        let unknown = "[[rule]]\nid='x'\nfield='http.server'\npattern='x'\ndevice='nope'\nexamples=[{text='x'}]\n";
        assert!(parse_rules(unknown, "t", &catalog).unwrap_err().to_string().contains("no device"));
        let bare = "[[rule]]\nid='x'\nfield='http.server'\npattern='x'\nvendor='V'\n";
        assert!(parse_rules(bare, "t", &catalog).unwrap_err().to_string().contains("example"));
        let group =
            "[[rule]]\nid='x'\nfield='http.server'\npattern='x'\nvendor='V'\nfirmware_group=2\nexamples=[{text='x'}]\n";
        assert!(parse_rules(group, "t", &catalog).unwrap_err().to_string().contains("firmware_group"));
    }
}
