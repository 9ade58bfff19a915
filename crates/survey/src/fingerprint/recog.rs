//! Loads Rapid7 Recog fingerprint XML (BSD-2 data an operator may point to with
//! `--fingerprints DIR`) into the survey's rules.
//!
//! A file is `<fingerprints matches="telnet.banner">` holding `<fingerprint pattern flags>`
//! elements with `<example>`s (plain or `_encoding="base64"`, expected values as attributes) and
//! `<param pos name value>`s (pos 0: a fixed value that may interpolate `{other.param}`; pos N:
//! capture group N). Files whose `matches` the survey has no field for are skipped whole.

use base64::Engine;
use botscope_model::DeviceType;

use super::{Example, Field, Rule, Value, compile, rule_from_parts};
use crate::SurveyError;

/// Recog `matches` values the survey can feed, and the field each reads.
pub const SUPPORTED_MATCHES: &[(&str, Field)] = &[
    ("telnet.banner", Field::TelnetBanner),
    ("ssh.banner", Field::SshBanner),
    ("http_header.server", Field::HttpServer),
    ("html_title", Field::HttpTitle),
];

const VENDOR: &[&str] = &["hw.vendor", "os.vendor", "service.vendor"];
const MODEL: &[&str] = &["hw.product", "os.product", "service.product"];
// service.version is the version of a program (OpenSSH, BusyBox), not the device's firmware.
const FIRMWARE: &[&str] = &["hw.version", "os.version"];

/// Most fingerprints read from one file (Recog's largest file has about 1,500).
const MAX_FINGERPRINTS: usize = 20_000;

/// Parses one Recog XML file. Returns no rules for a `matches` the survey does not use.
pub fn parse(text: &str, name: &str) -> Result<Vec<Rule>, SurveyError> {
    let invalid = |reason: String| SurveyError::Invalid { name: name.into(), reason };
    let options = roxmltree::ParsingOptions { allow_dtd: false, nodes_limit: 2_000_000, ..Default::default() };
    let document = roxmltree::Document::parse_with_options(text, options).map_err(|e| invalid(e.to_string()))?;
    let root = document.root_element();
    if root.tag_name().name() != "fingerprints" {
        return Err(invalid(format!("root element is <{}>, not <fingerprints>", root.tag_name().name())));
    }
    let matches = root.attribute("matches").unwrap_or("");
    let Some(field) = SUPPORTED_MATCHES.iter().find(|(m, _)| *m == matches).map(|(_, f)| *f) else {
        return Ok(Vec::new());
    };
    let mut rules = Vec::new();
    for (index, node) in root.children().filter(|n| n.has_tag_name("fingerprint")).enumerate() {
        if index >= MAX_FINGERPRINTS {
            return Err(invalid(format!("more than {MAX_FINGERPRINTS} fingerprints")));
        }
        let pattern =
            node.attribute("pattern").ok_or_else(|| invalid(format!("fingerprint {} has no pattern", index + 1)))?;
        let flags = node.attribute("flags").unwrap_or("");
        let case_insensitive = flags.contains("REG_ICASE");
        let dot_newline = flags.contains("REG_DOT_NEWLINE") || flags.contains("REG_MULTILINE");
        let regex = compile(pattern, case_insensitive, dot_newline)
            .map_err(|e| invalid(format!("fingerprint {} ({pattern}): {e}", index + 1)))?;
        let description = node
            .children()
            .find(|n| n.has_tag_name("description"))
            .and_then(|n| n.text())
            .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| format!("fingerprint {}", index + 1));

        let mut params: Vec<(String, Value)> = Vec::new();
        for param in node.children().filter(|n| n.has_tag_name("param")) {
            let (Some(pos), Some(param_name)) = (param.attribute("pos"), param.attribute("name")) else {
                return Err(invalid(format!("{description}: <param> needs pos and name")));
            };
            let pos: usize =
                pos.parse().map_err(|_| invalid(format!("{description}: param pos {pos:?} is not a number")))?;
            let value = if pos == 0 {
                Value::Fixed(param.attribute("value").unwrap_or("").to_string())
            } else {
                if pos >= regex.captures_len() {
                    return Err(invalid(format!(
                        "{description}: param {param_name} uses group {pos}, which does not exist"
                    )));
                }
                Value::Group(pos)
            };
            params.push((param_name.to_string(), value));
        }
        let pick = |names: &[&str]| -> Value {
            names
                .iter()
                .find_map(|wanted| params.iter().find(|(n, _)| n == wanted).map(|(_, v)| interpolate(v, &params)))
                .unwrap_or(Value::None)
        };
        let device_type = params.iter().find(|(n, _)| n == "hw.device").and_then(|(_, v)| match v {
            Value::Fixed(text) => device_type(text),
            _ => None,
        });

        let mut examples = Vec::new();
        for example in node.children().filter(|n| n.has_tag_name("example")) {
            let raw = example.text().unwrap_or("");
            let text = if example.attribute("_encoding") == Some("base64") {
                let compact: String = raw.split_whitespace().collect();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .map_err(|e| invalid(format!("{description}: base64 example: {e}")))?;
                String::from_utf8_lossy(&bytes).into_owned()
            } else {
                raw.to_string()
            };
            let mut expect = Vec::new();
            for attribute in example.attributes() {
                let key = attribute.name();
                let ours = if VENDOR.first() == Some(&key) || (VENDOR.contains(&key) && !has(&params, VENDOR[0])) {
                    "vendor"
                } else if MODEL.first() == Some(&key) || (MODEL.contains(&key) && !has(&params, MODEL[0])) {
                    "model"
                } else if FIRMWARE.first() == Some(&key) || (FIRMWARE.contains(&key) && !has(&params, FIRMWARE[0])) {
                    "firmware"
                } else {
                    continue;
                };
                if !expect.iter().any(|(k, _): &(String, String)| k == ours) {
                    expect.push((ours.to_string(), attribute.value().to_string()));
                }
            }
            examples.push(Example { text, expect });
        }
        let values = (pick(VENDOR), pick(MODEL), device_type, pick(FIRMWARE));
        let mut rule = rule_from_parts(format!("{name}: {description}"), field, regex, values, examples);
        rule.ssh_software_only = field == Field::SshBanner;
        rules.push(rule);
    }
    Ok(rules)
}

fn has(params: &[(String, Value)], name: &str) -> bool {
    params.iter().any(|(n, _)| n == name)
}

/// Resolves `{other.param}` inside a fixed value when the other param is fixed too; a value that
/// refers to a capture group becomes that group (the common `{service.version}` case).
fn interpolate(value: &Value, params: &[(String, Value)]) -> Value {
    let Value::Fixed(text) = value else { return value.clone() };
    if !text.contains('{') {
        return value.clone();
    }
    let mut out = text.clone();
    for (name, other) in params {
        let placeholder = format!("{{{name}}}");
        if !out.contains(&placeholder) {
            continue;
        }
        match other {
            Value::Fixed(fixed) => out = out.replace(&placeholder, fixed),
            Value::Group(group) if out == placeholder => return Value::Group(*group),
            _ => return Value::None,
        }
    }
    Value::Fixed(out)
}

/// Recog's `hw.device` vocabulary, mapped onto the survey's device types.
pub fn device_type(text: &str) -> Option<DeviceType> {
    let lower = text.to_ascii_lowercase();
    let table: &[(&str, DeviceType)] = &[
        ("router", DeviceType::Router),
        ("wap", DeviceType::Router),
        ("gateway", DeviceType::Router),
        ("modem", DeviceType::Router),
        ("camera", DeviceType::Camera),
        ("web cam", DeviceType::Camera),
        ("dvr", DeviceType::Dvr),
        ("nvr", DeviceType::Nvr),
        ("nas", DeviceType::Nas),
        ("storage", DeviceType::Nas),
        ("printer", DeviceType::Printer),
        ("multifunction", DeviceType::Printer),
        ("set-top", DeviceType::SetTopBox),
        ("media", DeviceType::SetTopBox),
        ("plc", DeviceType::Controller),
        ("controller", DeviceType::Controller),
        ("industrial", DeviceType::Controller),
    ];
    table.iter().find(|(word, _)| lower.contains(word)).map(|(_, t)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Written for these tests in Recog's format (not taken from Recog's database).
    const SAMPLE: &str = r#"<?xml version="1.0"?>
<fingerprints matches="telnet.banner" protocol="telnet" database_type="service" preference="0.90">
  <fingerprint pattern="^Kumo DVR-(\d+) v([\d.]+)\r?\n" flags="REG_ICASE">
    <description>Kumo Vision DVR</description>
    <example hw.product="DVR-16" hw.version="3.2.1">Kumo DVR-16 v3.2.1
login: </example>
    <example _encoding="base64" hw.version="1.0">S1VNTyBEVlItOCB2MS4wCg==</example>
    <param pos="0" name="hw.vendor" value="Kumo Vision"/>
    <param pos="0" name="hw.product" value="DVR-{hw.model_number}"/>
    <param pos="1" name="hw.model_number"/>
    <param pos="2" name="hw.version"/>
    <param pos="0" name="hw.device" value="DVR"/>
  </fingerprint>
  <fingerprint pattern="^BusyBox v([\d.]+)">
    <description>BusyBox</description>
    <example>BusyBox v1.36.1 (2023-01-01) built-in shell</example>
    <param pos="0" name="service.vendor" value="BusyBox"/>
    <param pos="1" name="service.version"/>
  </fingerprint>
</fingerprints>"#;

    #[test]
    fn recog_rules_load_and_their_examples_hold() {
        let rules = parse(SAMPLE, "sample.xml").unwrap();
        assert_eq!(rules.len(), 2);
        let identity = rules[0].apply("KUMO DVR-16 v3.2.1\nlogin: ").unwrap();
        assert_eq!(identity.vendor.as_deref(), Some("Kumo Vision"));
        assert_eq!(identity.firmware.as_deref(), Some("3.2.1"));
        assert_eq!(identity.device_type, Some(DeviceType::Dvr));
        let mut fingerprints = crate::fingerprint::Fingerprints::shipped();
        fingerprints.rules = rules;
        let failures = fingerprints.check_examples();
        // hw.product "DVR-{hw.model_number}" mixes text and a group, which is not resolvable to one
        // value; the loader drops it rather than guess, so only that expectation fails.
        assert_eq!(failures.len(), 1, "{failures:#?}");
        assert!(failures[0].problem.starts_with("model"));
    }

    #[test]
    fn bad_files_are_clear_errors() {
        assert!(parse("<nope/>", "x.xml").unwrap_err().to_string().contains("<fingerprints>"));
        assert!(parse("<fingerprints matches='telnet.banner'><fingerprint/></fingerprints>", "x.xml").is_err());
        let bad_group = "<fingerprints matches='telnet.banner'><fingerprint pattern='x'><param pos='3' name='hw.version'/></fingerprint></fingerprints>";
        assert!(parse(bad_group, "x.xml").unwrap_err().to_string().contains("group 3"));
        assert!(
            parse("<fingerprints matches='smtp.banner'><fingerprint pattern='x'/></fingerprints>", "x.xml")
                .unwrap()
                .is_empty()
        );
        assert!(parse("not xml", "x.xml").is_err());
    }
}
