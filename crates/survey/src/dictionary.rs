//! Validation of a credential dictionary file as a reviewed data set (`botscope credentials
//! check`): beyond what the survey needs to load it ([`crate::catalog::Dictionary`]), every pair
//! must say where it is known from, weights stay in range, and the file carries a version and a
//! change log whose last entry made that version, naming who proposed and who approved it.
//!
//! Problems are collected rather than stopping at the first, each with the line it is on, so that
//! a reviewer sees everything wrong with a proposed revision at once.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

/// The weights a pair may have: 1 (tried last) to this.
pub const MAX_WEIGHT: u32 = 100;

/// One thing wrong with a dictionary file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The file is not TOML of the dictionary's shape.
    #[error("{0}")]
    Syntax(String),
    /// No `version = N` at the top.
    #[error("no `version = N` (the dictionary's version, a positive integer)")]
    NoVersion,
    /// The version is not a positive integer.
    #[error("version must be a positive integer")]
    BadVersion,
    /// No `[[credential]]` entries.
    #[error("no [[credential]] entries")]
    NoPairs,
    /// An id that is zero or too large.
    #[error("credential id must be 1 to {max}", max = u32::MAX)]
    BadId,
    /// Two entries share an id.
    #[error("credential id {id} is used twice (first on line {first_line})")]
    DuplicateId {
        /// The id.
        id: i64,
        /// Where it was first used.
        first_line: usize,
    },
    /// Two entries have the same username and password.
    #[error("credential {id} repeats the pair of credential {other} (line {other_line})")]
    DuplicatePair {
        /// The later entry.
        id: i64,
        /// The earlier one.
        other: i64,
        /// Where the earlier one is.
        other_line: usize,
    },
    /// An empty username.
    #[error("credential {id} has an empty username (password-only prompts are not pairs)")]
    EmptyUsername {
        /// The entry.
        id: i64,
    },
    /// A line break or NUL in a username or password.
    #[error("credential {id} contains a line break or NUL")]
    ControlCharacter {
        /// The entry.
        id: i64,
    },
    /// A weight outside 1..=MAX_WEIGHT.
    #[error("credential {id} has weight {weight}; weights are 1 to {MAX_WEIGHT}")]
    WeightOutOfRange {
        /// The entry.
        id: i64,
        /// Its weight.
        weight: i64,
    },
    /// A pair without a source.
    #[error("credential {id} names no source (sources = [\"...\"])")]
    NoSource {
        /// The entry.
        id: i64,
    },
    /// A pair names a source the file does not describe.
    #[error("credential {id} names source {name:?}, which has no [source.{name}] table")]
    UnknownSource {
        /// The entry.
        id: i64,
        /// The name.
        name: String,
    },
    /// A source table without a description.
    #[error("[source.{0}] has no description")]
    UndescribedSource(String),
    /// No change log.
    #[error("no [[change]] entries: every version needs a change-log entry")]
    NoChangeLog,
    /// A change-log entry lacks a field.
    #[error("change {version} has no {field}")]
    IncompleteChange {
        /// The entry's version.
        version: i64,
        /// The missing field.
        field: &'static str,
    },
    /// A change approved by the one who proposed it.
    #[error("change {version} is approved by its proposer ({who}); a revision needs a second person")]
    SelfApproved {
        /// The entry's version.
        version: i64,
        /// The name.
        who: String,
    },
    /// A date that is not YYYY-MM-DD.
    #[error("change {version} has date {date:?}, not YYYY-MM-DD")]
    BadDate {
        /// The entry's version.
        version: i64,
        /// The date given.
        date: String,
    },
    /// Change-log versions not strictly increasing.
    #[error("change {version} follows change {previous}: versions must increase, oldest first")]
    ChangeOutOfOrder {
        /// This entry's version.
        version: i64,
        /// The entry before it.
        previous: i64,
    },
    /// The latest change does not make the file's version.
    #[error("the file is version {version} but the latest change is version {latest}")]
    VersionMismatch {
        /// `version = N`.
        version: i64,
        /// The last change's version.
        latest: i64,
    },
}

/// A problem and where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {problem}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct Located {
    /// The file's name.
    pub file: String,
    /// 1-based line, where one applies.
    pub line: Option<usize>,
    /// What is wrong.
    pub problem: Problem,
}

/// Why a dictionary did not pass.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The file could not be read.
    #[error("cannot read {name}: {source}")]
    Read {
        /// The file.
        name: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file has problems (all of them, in file order).
    #[error("{name}: {} problem(s), first: {}", problems.len(), problems.first().map(ToString::to_string).unwrap_or_default())]
    Invalid {
        /// The file.
        name: String,
        /// Every problem found.
        problems: Vec<Located>,
    },
}

/// The latest change of a valid dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestChange {
    /// Its date.
    pub date: String,
    /// Who proposed it.
    pub proposed_by: String,
    /// Who approved it.
    pub approved_by: String,
}

/// What a valid dictionary holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// `version = N`.
    pub version: u32,
    /// Number of pairs.
    pub pairs: usize,
    /// Pairs per source name (a pair with two sources counts under both).
    pub per_source: BTreeMap<String, usize>,
    /// Pairs per weight.
    pub per_weight: BTreeMap<u32, usize>,
    /// Change-log entries.
    pub changes: usize,
    /// The change that made this version.
    pub latest: LatestChange,
    /// Described sources no pair names (not an error: a source may be retired).
    pub unused_sources: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    version: Option<Spanned<i64>>,
    #[serde(default)]
    source: BTreeMap<String, Spanned<RawSource>>,
    #[serde(default)]
    change: Vec<Spanned<RawChange>>,
    #[serde(default)]
    credential: Vec<Spanned<RawCredential>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    #[serde(default)]
    description: String,
    #[serde(default)]
    #[allow(dead_code)]
    reference: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChange {
    version: i64,
    #[serde(default)]
    date: String,
    #[serde(default)]
    what: String,
    #[serde(default)]
    why: String,
    #[serde(default)]
    proposed_by: String,
    #[serde(default)]
    approved_by: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredential {
    id: i64,
    username: String,
    password: String,
    weight: i64,
    #[serde(default)]
    sources: Vec<String>,
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    products: Vec<String>,
}

/// Checks the dictionary file at `path`.
pub fn check_file(path: &Path) -> Result<Summary, CheckError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| CheckError::Read { name: name.clone(), source })?;
    check(&text, &name)
}

/// Checks a dictionary's text; `name` is used in messages.
pub fn check(text: &str, name: &str) -> Result<Summary, CheckError> {
    let lines = LineIndex::new(text);
    let mut problems = Vec::new();
    let mut report = |line: Option<usize>, problem: Problem| {
        problems.push(Located { file: name.to_string(), line, problem });
    };
    let file: RawFile = match toml::from_str(text) {
        Ok(file) => file,
        Err(error) => {
            let line = error.span().map(|span| lines.line(span.start));
            report(line, Problem::Syntax(error.message().trim().to_string()));
            return Err(CheckError::Invalid { name: name.into(), problems });
        }
    };

    let version = match &file.version {
        None => {
            report(None, Problem::NoVersion);
            None
        }
        Some(v) if *v.get_ref() < 1 || *v.get_ref() > i64::from(u32::MAX) => {
            report(Some(lines.line(v.span().start)), Problem::BadVersion);
            None
        }
        Some(v) => Some(*v.get_ref()),
    };

    for (source, table) in &file.source {
        if table.get_ref().description.trim().is_empty() {
            report(Some(lines.line(table.span().start)), Problem::UndescribedSource(source.clone()));
        }
    }

    if file.credential.is_empty() {
        report(None, Problem::NoPairs);
    }
    let mut ids: HashMap<i64, usize> = HashMap::new();
    let mut pairs: HashMap<(&str, &str), (i64, usize)> = HashMap::new();
    let mut per_source: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_weight: BTreeMap<u32, usize> = BTreeMap::new();
    for entry in &file.credential {
        let line = lines.line(entry.span().start);
        let credential = entry.get_ref();
        let id = credential.id;
        let at = Some(line);
        if id < 1 || id > i64::from(u32::MAX) {
            report(at, Problem::BadId);
        }
        if let Some(first_line) = ids.get(&id) {
            report(at, Problem::DuplicateId { id, first_line: *first_line });
        } else {
            ids.insert(id, line);
        }
        let pair = (credential.username.as_str(), credential.password.as_str());
        if let Some((other, other_line)) = pairs.get(&pair) {
            report(at, Problem::DuplicatePair { id, other: *other, other_line: *other_line });
        } else {
            pairs.insert(pair, (id, line));
        }
        if credential.username.is_empty() {
            report(at, Problem::EmptyUsername { id });
        }
        if credential.username.contains(['\r', '\n', '\0']) || credential.password.contains(['\r', '\n', '\0']) {
            report(at, Problem::ControlCharacter { id });
        }
        match u32::try_from(credential.weight) {
            Ok(weight) if (1..=MAX_WEIGHT).contains(&weight) => *per_weight.entry(weight).or_default() += 1,
            _ => report(at, Problem::WeightOutOfRange { id, weight: credential.weight }),
        }
        if credential.sources.iter().all(|s| s.trim().is_empty()) {
            report(at, Problem::NoSource { id });
        }
        for source in &credential.sources {
            if !file.source.contains_key(source) {
                report(at, Problem::UnknownSource { id, name: source.clone() });
            }
            *per_source.entry(source.clone()).or_default() += 1;
        }
    }

    if file.change.is_empty() {
        report(None, Problem::NoChangeLog);
    }
    let mut previous: Option<i64> = None;
    for entry in &file.change {
        let at = Some(lines.line(entry.span().start));
        let change = entry.get_ref();
        let version = change.version;
        for (field, value) in [
            ("date", &change.date),
            ("what", &change.what),
            ("why", &change.why),
            ("proposed_by", &change.proposed_by),
            ("approved_by", &change.approved_by),
        ] {
            if value.trim().is_empty() {
                report(at, Problem::IncompleteChange { version, field });
            }
        }
        if !change.date.trim().is_empty() && chrono::NaiveDate::parse_from_str(&change.date, "%Y-%m-%d").is_err() {
            report(at, Problem::BadDate { version, date: change.date.clone() });
        }
        let (proposer, approver) = (change.proposed_by.trim(), change.approved_by.trim());
        if !proposer.is_empty() && proposer.eq_ignore_ascii_case(approver) {
            report(at, Problem::SelfApproved { version, who: proposer.to_string() });
        }
        if let Some(previous) = previous.filter(|p| *p >= version) {
            report(at, Problem::ChangeOutOfOrder { version, previous });
        }
        previous = Some(version);
    }
    if let (Some(version), Some(last)) = (version, file.change.last()) {
        let latest = last.get_ref().version;
        if latest != version {
            let at = file.version.as_ref().map(|v| lines.line(v.span().start));
            report(at, Problem::VersionMismatch { version, latest });
        }
    }

    if !problems.is_empty() {
        problems.sort_by_key(|p| p.line.unwrap_or(0));
        return Err(CheckError::Invalid { name: name.into(), problems });
    }
    let last = file.change.last().expect("checked above").get_ref();
    let unused_sources = file.source.keys().filter(|s| !per_source.contains_key(*s)).cloned().collect();
    Ok(Summary {
        version: u32::try_from(version.expect("checked above")).expect("checked above"),
        pairs: file.credential.len(),
        per_source,
        per_weight,
        changes: file.change.len(),
        latest: LatestChange {
            date: last.date.clone(),
            proposed_by: last.proposed_by.clone(),
            approved_by: last.approved_by.clone(),
        },
        unused_sources,
    })
}

/// Byte offsets to 1-based line numbers.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|start| *start <= offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"version = 2

[[change]]
version = 1
date = "2026-01-01"
what = "first"
why = "start"
proposed_by = "ann"
approved_by = "bob"

[[change]]
version = 2
date = "2026-02-01"
what = "added 2"
why = "more"
proposed_by = "bob"
approved_by = "ann"

[source.mirai]
description = "Mirai's table"

[[credential]]
id = 1
username = "root"
password = "xc3511"
weight = 10
sources = ["mirai"]

[[credential]]
id = 2
username = "admin"
password = ""
weight = 1
sources = ["mirai"]
"#;

    fn problems(text: &str) -> Vec<Located> {
        match check(text, "d.toml") {
            Err(CheckError::Invalid { problems, .. }) => problems,
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn shipped_dictionary_passes_the_check_with_600_pairs_or_more() {
        let summary = check(crate::catalog::SHIPPED_CREDENTIALS, "data/credentials.toml").unwrap();
        assert!(summary.pairs >= 600, "{} pairs", summary.pairs);
        assert_eq!(Some(summary.version), crate::catalog::Dictionary::shipped().version());
        assert_eq!(summary.per_source["mirai"], 61);
    }

    #[test]
    fn a_good_file_is_summarised() {
        let summary = check(GOOD, "d.toml").unwrap();
        assert_eq!((summary.version, summary.pairs, summary.changes), (2, 2, 2));
        assert_eq!(summary.per_source["mirai"], 2);
        assert_eq!(summary.latest.approved_by, "ann");
    }

    #[test]
    fn a_repeated_id_is_reported_with_both_lines() {
        let text = GOOD.replace("id = 2\n", "id = 1\n");
        let found = problems(&text);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].problem, Problem::DuplicateId { id: 1, first_line: 22 });
        assert_eq!(found[0].line, Some(29));
        assert!(found[0].to_string().starts_with("d.toml:29: credential id 1 is used twice"));
    }

    #[test]
    fn a_pair_without_a_source_or_with_an_undescribed_one_is_reported() {
        let text = GOOD.replacen("sources = [\"mirai\"]", "sources = []", 1);
        assert_eq!(problems(&text)[0].problem, Problem::NoSource { id: 1 });
        let text = GOOD.replacen("sources = [\"mirai\"]", "sources = [\"rumour\"]", 1);
        assert_eq!(problems(&text)[0].problem, Problem::UnknownSource { id: 1, name: "rumour".into() });
    }

    #[test]
    fn weights_outside_the_range_are_reported() {
        let text = GOOD.replace("weight = 10", "weight = 0");
        assert_eq!(problems(&text)[0].problem, Problem::WeightOutOfRange { id: 1, weight: 0 });
        let text = GOOD.replace("weight = 10", "weight = 101");
        assert_eq!(problems(&text)[0].problem, Problem::WeightOutOfRange { id: 1, weight: 101 });
    }

    #[test]
    fn a_change_log_entry_without_approver_or_approved_by_its_proposer_is_reported() {
        let text = GOOD.replace("approved_by = \"ann\"\n", "");
        let found = problems(&text);
        assert_eq!(found[0].problem, Problem::IncompleteChange { version: 2, field: "approved_by" });
        assert_eq!(found[0].line, Some(11));
        let text = GOOD.replace("approved_by = \"ann\"", "approved_by = \"Bob\"");
        assert_eq!(problems(&text)[0].problem, Problem::SelfApproved { version: 2, who: "bob".into() });
    }

    #[test]
    fn a_version_without_its_change_log_entry_is_reported() {
        let text = GOOD.replace("version = 2\n\n[[change]]", "version = 3\n\n[[change]]");
        assert_eq!(problems(&text)[0].problem, Problem::VersionMismatch { version: 3, latest: 2 });
        let text = GOOD.replacen("version = 2\n", "", 1);
        assert_eq!(problems(&text)[0].problem, Problem::NoVersion);
    }

    #[test]
    fn changes_out_of_order_and_bad_dates_are_reported() {
        let text = GOOD.replace("version = 1\ndate = \"2026-01-01\"", "version = 2\ndate = \"1 Jan\"");
        let found: Vec<Problem> = problems(&text).into_iter().map(|p| p.problem).collect();
        assert!(found.contains(&Problem::BadDate { version: 2, date: "1 Jan".into() }), "{found:?}");
        assert!(found.contains(&Problem::ChangeOutOfOrder { version: 2, previous: 2 }), "{found:?}");
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let text = GOOD.replace("weight = 1\n", "weight = one\n");
        let found = problems(&text);
        assert_eq!(found[0].line, Some(33));
        assert!(matches!(found[0].problem, Problem::Syntax(_)));
    }
}
