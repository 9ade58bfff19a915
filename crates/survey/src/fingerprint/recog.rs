//! Loads Rapid7 Recog fingerprint XML (BSD-2 data an operator may point to with
//! `--fingerprints DIR`) into the survey's rules, unchanged.
//!
//! A file is `<fingerprints>` holding `<fingerprint pattern flags>` elements with `<example>`s
//! (plain, `_encoding="base64"`, or `_filename` naming a file beside the XML; every other
//! attribute an expected param value) and `<param pos name value>`s (pos 0: a fixed value that may
//! refer to other params as `{name}`; pos N: capture group N). What a file matches comes from its
//! `matches` attribute, or, where current Recog leaves that out, from the file's name. Patterns
//! are Ruby regular expressions (`^`/`$` at line boundaries, look-around, back-references,
//! `\A`/`\z`/`\Z`), compiled with fancy-regex. A fingerprint that cannot be loaded is reported,
//! never skipped silently; a file for a field the survey does not read is skipped whole, with the
//! reason.

use std::path::Path;

use base64::Engine;
use botscope_model::DeviceType;

use super::{Example, Field, Identity, Rule, Value, compile, rule_from_parts};
use crate::SurveyError;

/// Recog `matches` values the survey can read, and the field each is.
pub const SUPPORTED_MATCHES: &[(&str, Field)] = &[
    ("telnet.banner", Field::TelnetBanner),
    ("ssh.banner", Field::SshBanner),
    ("http_header.server", Field::HttpServer),
    ("html_title", Field::HttpTitle),
    ("http_header.wwwauth", Field::HttpWwwAuthenticate),
    ("http_header.cookie", Field::HttpSetCookie),
    ("x509.subject", Field::X509Subject),
    ("x509.issuer", Field::X509Issuer),
    ("ftp.banner", Field::FtpBanner),
    ("rtsp_header.server", Field::RtspServer),
];

/// What a file without `matches` matches, by its name (Recog's own file names).
const MATCHES_BY_FILE: &[(&str, &str)] = &[
    ("telnet_banners", "telnet.banner"),
    ("ssh_banners", "ssh.banner"),
    ("http_servers", "http_header.server"),
    ("html_title", "html_title"),
    ("http_wwwauth", "http_header.wwwauth"),
    ("http_cookies", "http_header.cookie"),
    ("x509_subjects", "x509.subject"),
    ("x509_issuers", "x509.issuer"),
    ("ftp_banners", "ftp.banner"),
    ("rtsp_servers", "rtsp_header.server"),
];

const VENDOR: &[&str] = &["hw.vendor", "os.vendor", "service.vendor"];
const MODEL: &[&str] = &["hw.product", "os.product", "service.product"];
// service.version is the version of a program (OpenSSH, BusyBox), not the device's firmware.
const FIRMWARE: &[&str] = &["hw.version", "os.version"];

/// Most fingerprints read from one file (Recog's largest file has about 1,500).
const MAX_FINGERPRINTS: usize = 20_000;

/// Largest example file (`_filename`) read.
const MAX_EXAMPLE_FILE: u64 = 1 << 20;

/// One Recog file, read.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The rules of the fingerprints that loaded.
    pub rules: Vec<Rule>,
    /// What the file matches (`telnet.banner`), when known.
    pub matches: Option<String>,
    /// Why the whole file was skipped, if it was.
    pub skipped: Option<String>,
    /// Fingerprints that could not be loaded, and why.
    pub problems: Vec<String>,
}

/// Parses one Recog XML file. Returns no rules for a field the survey does not read.
pub fn parse(text: &str, name: &str) -> Result<Vec<Rule>, SurveyError> {
    let parsed = parse_file(text, name)?;
    match parsed.problems.first() {
        Some(problem) => Err(SurveyError::Invalid { name: name.into(), reason: problem.clone() }),
        None => Ok(parsed.rules),
    }
}

/// Parses one Recog XML file, reporting each fingerprint that could not be loaded.
pub fn parse_file(text: &str, name: &str) -> Result<Parsed, SurveyError> {
    let invalid = |reason: String| SurveyError::Invalid { name: name.into(), reason };
    let options = roxmltree::ParsingOptions { allow_dtd: false, nodes_limit: 2_000_000, ..Default::default() };
    let document = roxmltree::Document::parse_with_options(text, options).map_err(|e| invalid(e.to_string()))?;
    let root = document.root_element();
    if root.tag_name().name() != "fingerprints" {
        return Err(invalid(format!("root element is <{}>, not <fingerprints>", root.tag_name().name())));
    }
    let stem = Path::new(name).file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let matches = root
        .attribute("matches")
        .filter(|m| !m.is_empty())
        .or_else(|| MATCHES_BY_FILE.iter().find(|(file, _)| *file == stem).map(|(_, m)| *m));
    let mut parsed = Parsed { matches: matches.map(String::from), ..Parsed::default() };
    let Some(matches) = matches else {
        parsed.skipped = Some("no `matches` attribute, and the file name says nothing the survey reads".into());
        return Ok(parsed);
    };
    let Some(field) = SUPPORTED_MATCHES.iter().find(|(m, _)| *m == matches).map(|(_, f)| *f) else {
        parsed.skipped = Some(format!("matches {matches}, which the survey does not read"));
        return Ok(parsed);
    };
    let protocol = root.attribute("protocol").map(String::from);
    let directory = Path::new(name).parent();
    for (index, node) in root.children().filter(|n| n.has_tag_name("fingerprint")).enumerate() {
        if index >= MAX_FINGERPRINTS {
            return Err(invalid(format!("more than {MAX_FINGERPRINTS} fingerprints")));
        }
        match fingerprint(node, index, field, name, directory) {
            Ok(mut rule) => {
                rule.recog_protocol = protocol.clone();
                parsed.rules.push(rule);
            }
            Err(problem) => parsed.problems.push(problem),
        }
    }
    Ok(parsed)
}

fn fingerprint(
    node: roxmltree::Node<'_, '_>,
    index: usize,
    field: Field,
    name: &str,
    directory: Option<&Path>,
) -> Result<Rule, String> {
    let pattern = node.attribute("pattern").ok_or_else(|| format!("fingerprint {} has no pattern", index + 1))?;
    let flags = node.attribute("flags").unwrap_or("");
    let case_insensitive = flags.contains("REG_ICASE");
    // Recog's REG_DOT_NEWLINE and REG_MULTILINE are Ruby's /m: the dot matches a newline. Ruby's
    // ^ and $ always work at line boundaries, which `compile` gives every pattern.
    let dot_newline = flags.contains("REG_DOT_NEWLINE") || flags.contains("REG_MULTILINE");
    let regex = compile(&from_ruby(pattern), case_insensitive, dot_newline)
        .map_err(|e| format!("fingerprint {} ({pattern}): {e}", index + 1))?;
    let description = node
        .children()
        .find(|n| n.has_tag_name("description"))
        .and_then(|n| n.text())
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| format!("fingerprint {}", index + 1));

    let mut params: Vec<(String, Value)> = Vec::new();
    for param in node.children().filter(|n| n.has_tag_name("param")) {
        let (Some(pos), Some(param_name)) = (param.attribute("pos"), param.attribute("name")) else {
            return Err(format!("{description}: <param> needs pos and name"));
        };
        let pos: usize = pos.parse().map_err(|_| format!("{description}: param pos {pos:?} is not a number"))?;
        let value = if pos == 0 {
            Value::Fixed(param.attribute("value").unwrap_or("").to_string())
        } else {
            if pos >= regex.captures_len() {
                return Err(format!("{description}: param {param_name} uses group {pos}, which does not exist"));
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
        let bytes = if let Some(file) = example.attribute("_filename") {
            read_example_file(directory, file).map_err(|e| format!("{description}: example file {file}: {e}"))?
        } else {
            raw.as_bytes().to_vec()
        };
        let bytes = if example.attribute("_encoding") == Some("base64") {
            let compact: String = String::from_utf8_lossy(&bytes).split_whitespace().collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|e| format!("{description}: base64 example: {e}"))?
        } else {
            bytes
        };
        let recog_expect: Vec<(String, String)> = example
            .attributes()
            .filter(|a| !a.name().starts_with('_'))
            .map(|a| (a.name().to_string(), a.value().to_string()))
            .collect();
        examples.push(Example { text: String::from_utf8_lossy(&bytes).into_owned(), expect: Vec::new(), recog_expect });
    }
    let values = (pick(VENDOR), pick(MODEL), device_type, pick(FIRMWARE));
    let mut rule = rule_from_parts(format!("{name}: {description}"), field, regex, values, examples);
    rule.ssh_software_only = field == Field::SshBanner;
    rule.recog_params = params;
    Ok(rule)
}

/// Rewrites what Ruby's regular expressions say differently: `\Z` (the end, or before a final
/// newline) becomes a look-ahead for an optional newline at the very end.
fn from_ruby(pattern: &str) -> std::borrow::Cow<'_, str> {
    if !pattern.contains("\\Z") {
        return pattern.into();
    }
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Z') => out.push_str("(?=\\n?\\z)"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out.into()
}

fn read_example_file(directory: Option<&Path>, file: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let relative = Path::new(file);
    if relative.is_absolute() || relative.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Err("must name a file below the XML's directory".into());
    }
    let path = directory.unwrap_or(Path::new(".")).join(relative);
    let mut bytes = Vec::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_EXAMPLE_FILE + 1).read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_EXAMPLE_FILE {
        return Err(format!("larger than {MAX_EXAMPLE_FILE} bytes"));
    }
    Ok(bytes)
}

/// What a Recog match says about the device: the first vendor, product and hardware or OS
/// version param it names (fully interpolated), and the device type.
pub(crate) fn identity_of(found: &[(String, Option<String>)], device_type: Option<DeviceType>) -> Identity {
    let pick = |names: &[&str]| {
        names.iter().find_map(|wanted| {
            found
                .iter()
                .find(|(name, _)| name == wanted)
                .and_then(|(_, v)| v.as_ref())
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty() && !v.contains('{'))
        })
    };
    Identity { catalog_id: None, vendor: pick(VENDOR), model: pick(MODEL), device_type, firmware: pick(FIRMWARE) }
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
        // hw.product "DVR-{hw.model_number}" mixes text and a group: filled in at match time.
        assert!(failures.is_empty(), "{failures:#?}");
        assert_eq!(fingerprints.rules[0].apply("KUMO DVR-16 v3.2.1\n").unwrap().model.as_deref(), Some("DVR-16"));
    }

    #[test]
    fn rubys_end_before_a_final_newline_is_rewritten_and_other_escapes_kept() {
        assert_eq!(from_ruby(r"^a\Z"), r"^a(?=\n?\z)");
        assert_eq!(from_ruby(r"^a\\Z\d"), r"^a\\Z\d", "an escaped backslash before Z is not \\Z");
        let rule = compile(&from_ruby(r"^x (\d+)\Z"), false, false).unwrap();
        assert!(rule.is_match("x 12\n").unwrap() && rule.is_match("x 12").unwrap());
        assert!(!rule.is_match("x 12\n\n").unwrap());
    }

    #[test]
    fn a_fingerprint_that_cannot_load_is_reported_and_the_others_still_load() {
        let text = "<fingerprints matches='telnet.banner'>\
            <fingerprint pattern='(unclosed'><example>x</example></fingerprint>\
            <fingerprint pattern='^ok$'><example>ok</example></fingerprint></fingerprints>";
        let parsed = parse_file(text, "dir/mixed.xml").unwrap();
        assert_eq!((parsed.rules.len(), parsed.problems.len()), (1, 1), "{:?}", parsed.problems);
        assert!(parse(text, "dir/mixed.xml").is_err(), "the strict reader refuses the file");
        let unnamed = "<fingerprints><fingerprint pattern='^x$'/></fingerprints>";
        assert_eq!(parse_file(unnamed, "dir/telnet_banners.xml").unwrap().matches.as_deref(), Some("telnet.banner"));
        assert!(parse_file(unnamed, "dir/other.xml").unwrap().skipped.is_some());
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
