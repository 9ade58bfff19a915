//! The ISP registry file (`isps.toml`): who takes part, with which ASNs, and how they want to be
//! notified.
//!
//! ```toml
//! [[isp]]
//! handle = "hikari-net"
//! name = "Hikari Net"
//! asns = [64500, 64501]
//! contact = "abuse@hikari.example"
//! language = "ja"          # ja | en
//!
//! [isp.notify]
//! daily_infected = true
//! monthly_vulnerable = true
//! format = "csv"           # csv | json
//! ```

use std::collections::HashMap;

use botscope_model::{Isp, Record};
use serde::Deserialize;
use toml::Spanned;

/// The registry file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Not valid TOML, an unknown key or a value of the wrong type (the message names the line).
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    /// An ISP entry breaks a rule.
    #[error("line {line}: ISP {handle:?}: {reason}")]
    Invalid {
        /// Line where the entry starts.
        line: usize,
        /// Its handle.
        handle: String,
        /// What is wrong.
        reason: String,
    },
    /// The file lists no ISP at all.
    #[error("the registry lists no ISP (add [[isp]] tables)")]
    Empty,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    #[serde(default)]
    isp: Vec<Spanned<Isp>>,
}

/// Reads and checks a registry: every entry valid, handles unique, and no AS claimed by two ISPs
/// (attribution would have to guess between them). Each ISP gets its stable id.
pub fn parse(text: &str) -> Result<Vec<Isp>, RegistryError> {
    let file: RegistryFile = toml::from_str(text)?;
    if file.isp.is_empty() {
        return Err(RegistryError::Empty);
    }
    let line_of = |offset: usize| text[..offset.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1;
    let mut seen_handles: HashMap<String, usize> = HashMap::new();
    let mut owner_of_asn: HashMap<u32, String> = HashMap::new();
    let mut isps = Vec::with_capacity(file.isp.len());
    for spanned in file.isp {
        let line = line_of(spanned.span().start);
        let isp = spanned.into_inner();
        let invalid = |reason: String| RegistryError::Invalid { line, handle: isp.handle.clone(), reason };
        let mut record = Record::Isp(isp.clone());
        record.validate().map_err(|e| invalid(e.reason))?;
        if let Some(first) = seen_handles.insert(isp.handle.clone(), line) {
            return Err(invalid(format!("handle already used by the entry at line {first}")));
        }
        for asn in &isp.asns {
            if let Some(owner) = owner_of_asn.insert(*asn, isp.handle.clone())
                && owner != isp.handle
            {
                return Err(invalid(format!("AS{asn} is already claimed by ISP {owner:?}")));
            }
        }
        record.ensure_id();
        let Record::Isp(isp) = record else { unreachable!("built as an ISP record above") };
        isps.push(isp);
    }
    Ok(isps)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[isp]]
handle = "hikari-net"
name = "Hikari Net"
asns = [64500, 64501]
contact = "abuse@hikari.example"

[[isp]]
handle = "sakura-bb"
name = "Sakura Broadband"
asns = [64510]
contact = "noc@sakura.example"
language = "en"
[isp.notify]
daily_infected = false
format = "json"
"#;

    #[test]
    fn reads_a_registry_with_defaults() {
        let isps = parse(GOOD).unwrap();
        assert_eq!(isps.len(), 2);
        assert_eq!(isps[0].language, botscope_model::Language::Ja);
        assert!(isps[0].notify.daily_infected && isps[0].id.is_some());
        assert!(!isps[1].notify.daily_infected && isps[1].notify.monthly_vulnerable);
        assert_eq!(isps[1].notify.format, botscope_model::NotifyFormat::Json);
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let typo = GOOD.replace("contact = \"noc", "contcat = \"noc");
        let err = parse(&typo).unwrap_err().to_string();
        assert!(err.contains("contcat") && err.contains("line 12"), "{err}");
        let bad_value = GOOD.replace("language = \"en\"", "language = \"fr\"");
        let err = parse(&bad_value).unwrap_err().to_string();
        assert!(err.contains("fr") && err.contains("line 13"), "{err}");
    }

    #[test]
    fn rules_across_entries_are_enforced() {
        let twice = GOOD.replace("sakura-bb", "hikari-net");
        let err = parse(&twice).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("already used"), "{err}");
        let shared_as = GOOD.replace("[64510]", "[64501]");
        let err = parse(&shared_as).unwrap_err().to_string();
        assert!(err.contains("AS64501") && err.contains("hikari-net") && err.contains("line 8"), "{err}");
        let bad_handle = GOOD.replace("sakura-bb", "Sakura BB");
        assert!(parse(&bad_handle).unwrap_err().to_string().contains("handle"));
        assert!(matches!(parse(""), Err(RegistryError::Empty)));
    }
}
