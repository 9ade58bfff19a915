//! Judging and training the detector against a truth file: which servers really were C&C, which
//! hosts bots, which servers DDoS victims or download servers (`botscope lab flows --truth`, or
//! an operator's own labels in the same format).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use botscope_net::packet::Addr;
use serde::Serialize;

use crate::Flow;
use crate::detect::{DetectConfig, Detector, Model, ModelError};
use crate::input::{self, Format};
use crate::seeds::Seeds;
use crate::session::{AnalysisConfig, SessionError, read_files};
use crate::window::Window;

/// A truth file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TruthError {
    /// It could not be read.
    #[error("cannot read the truth {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A line is not a truth line.
    #[error("{}:{line}: {reason}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// The line number (1-based).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// It names no C&C server.
    #[error("{}: no cnc lines; is it a `botscope lab flows --truth` file?", path.display())]
    NoCnc {
        /// The file.
        path: PathBuf,
    },
}

/// The parts of a truth file the model and the evaluation need.
#[derive(Debug, Default)]
pub struct Truth {
    /// (address, port) -> active periods (ms).
    pub cnc: HashMap<(Addr, u16), Vec<(i64, i64)>>,
    /// Infected hosts.
    pub bots: HashSet<Addr>,
    /// DDoS victims (hard negatives).
    pub victims: HashSet<(Addr, u16)>,
    /// Download servers (hard negatives).
    pub downloads: HashSet<(Addr, u16)>,
}

impl Truth {
    /// Reads a truth file: one JSON object per line with `kind` (`cnc`, `bot`, `victim`,
    /// `download`), `ip`, `port` and, for C&C, `from`/`until` (RFC 3339).
    pub fn load(path: &Path) -> Result<Truth, TruthError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| TruthError::Read { path: path.to_path_buf(), source })?;
        let mut truth = Truth::default();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |reason: &str| TruthError::Line { path: path.to_path_buf(), line: i + 1, reason: reason.into() };
            let v: serde_json::Value = serde_json::from_str(line).map_err(|_| bad("not a truth line"))?;
            let ip = || -> Result<Addr, TruthError> {
                let ip: IpAddr = v["ip"].as_str().unwrap_or("").parse().map_err(|_| bad("bad ip"))?;
                Ok(Addr::from(ip))
            };
            let port = v["port"].as_u64().unwrap_or(0) as u16;
            let time = |key: &str| {
                v[key]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.timestamp_millis())
                    .ok_or_else(|| bad(&format!("bad {key}")))
            };
            match v["kind"].as_str() {
                Some("cnc") => truth.cnc.entry((ip()?, port)).or_default().push((time("from")?, time("until")?)),
                Some("bot") => {
                    truth.bots.insert(ip()?);
                }
                Some("victim") => {
                    truth.victims.insert((ip()?, port));
                }
                Some("download") => {
                    truth.downloads.insert((ip()?, port));
                }
                _ => {}
            }
        }
        if truth.cnc.is_empty() {
            return Err(TruthError::NoCnc { path: path.to_path_buf() });
        }
        Ok(truth)
    }

    /// Whether `addr:port` was a C&C server at some time in `[from, until)`.
    pub fn is_cnc_in(&self, addr: Addr, port: u16, from: i64, until: i64) -> bool {
        self.cnc.get(&(addr, port)).is_some_and(|periods| periods.iter().any(|(a, b)| *a < until && from < *b))
    }

    /// The truth's bots, less a deterministic `withhold` share (as a telescope would miss some).
    pub fn seeds(&self, withhold: f64) -> Seeds {
        let mut seeds = Seeds::default();
        for bot in self.bots.iter().filter(|bot| !crate::seeds::withheld(**bot, withhold)) {
            seeds.insert_bot(*bot);
        }
        seeds
    }
}

/// How the detector did against a truth.
#[derive(Debug, Serialize)]
pub struct Evaluation {
    /// The score threshold.
    pub threshold: f64,
    /// Windows closed.
    pub windows: u64,
    /// Flows read.
    pub flows: u64,
    /// C&C servers in the truth.
    pub cnc_servers: usize,
    /// Of those, found at or above the threshold in some window.
    pub cnc_found: usize,
    /// `cnc_found / cnc_servers`.
    pub true_positive_rate: f64,
    /// Non-C&C servers any bot contacted.
    pub negatives: usize,
    /// Non-C&C servers found.
    pub false_positives: usize,
    /// `false_positives / negatives`.
    pub false_positive_rate: f64,
    /// The harder set: negatives scored at all (enough seed clients).
    pub scored_negatives: usize,
    /// `false_positives / scored_negatives`.
    pub false_positive_rate_scored: f64,
    /// False positives by what the truth says they are.
    pub false_positives_by_kind: BTreeMap<&'static str, usize>,
    /// Minutes from a C&C server's first use to its first detection (median).
    pub detection_delay_minutes_median: Option<f64>,
    /// The same, at most.
    pub detection_delay_minutes_max: Option<f64>,
    /// C&C servers never found, as `ip:port`.
    pub missed: Vec<String>,
    /// Non-C&C servers found, as `ip:port`.
    pub false_positive_servers: Vec<String>,
}

/// Scores `inputs` window by window and compares what is found with `truth`.
pub fn evaluate(
    config: AnalysisConfig,
    truth: &Truth,
    seeds: &Seeds,
    inputs: &[PathBuf],
    format: Format,
) -> Result<Evaluation, SessionError<std::convert::Infallible>> {
    let threshold = config.detect.min_score;
    let mut windows = config.windows();
    let mut detector = Detector::new(config.model, config.detect);
    // Per server: contacted by a bot; scored; first time (a window's end, or a revision's) at
    // which it was found.
    let mut contacted: HashSet<(Addr, u16)> = HashSet::new();
    let mut scored: HashSet<(Addr, u16)> = HashSet::new();
    let mut found: HashMap<(Addr, u16), i64> = HashMap::new();
    read_files(inputs, format, seeds, &mut windows, None, &mut |window| {
        for (key, _) in window.servers_with_bot_clients(|a| truth.bots.contains(&a)) {
            contacted.insert((key.addr, key.port));
        }
        for s in detector.score(window, seeds) {
            let key = (s.key.addr, s.key.port);
            scored.insert(key);
            if s.score >= threshold {
                // A revision knew it only when it was made: hindsight does not shorten the delay.
                let known = window.revised_at_ms.unwrap_or(window.end_ms);
                let at = found.entry(key).or_insert(known);
                *at = (*at).min(known);
            }
        }
        detector.score_again()
    })?;
    let cnc: Vec<&(Addr, u16)> = truth.cnc.keys().collect();
    let cnc_found = cnc.iter().filter(|k| found.contains_key(**k)).count();
    let mut delays: Vec<f64> = cnc
        .iter()
        .filter_map(|k| {
            let from = truth.cnc[*k].iter().map(|p| p.0).min()?;
            found.get(*k).map(|at| (*at - from) as f64 / 60_000.0)
        })
        .collect();
    delays.sort_by(f64::total_cmp);
    let is_cnc = |k: &(Addr, u16)| truth.cnc.contains_key(k);
    let negatives = contacted.iter().filter(|k| !is_cnc(k)).count();
    let scored_negatives = scored.iter().filter(|k| !is_cnc(k)).count();
    let false_positive_keys: Vec<&(Addr, u16)> = found.keys().filter(|k| !is_cnc(k)).collect();
    let mut by_kind = BTreeMap::new();
    for k in &false_positive_keys {
        let kind = if truth.victims.contains(*k) {
            "ddos_victim"
        } else if truth.downloads.contains(*k) {
            "download_server"
        } else {
            "other"
        };
        *by_kind.entry(kind).or_insert(0) += 1;
    }
    let name = |k: &(Addr, u16)| format!("{}:{}", k.0.to_ip(), k.1);
    Ok(Evaluation {
        threshold,
        windows: windows.stats.windows,
        flows: windows.stats.flows,
        cnc_servers: cnc.len(),
        cnc_found,
        true_positive_rate: cnc_found as f64 / cnc.len().max(1) as f64,
        negatives,
        false_positives: false_positive_keys.len(),
        false_positive_rate: false_positive_keys.len() as f64 / negatives.max(1) as f64,
        scored_negatives,
        false_positive_rate_scored: false_positive_keys.len() as f64 / scored_negatives.max(1) as f64,
        false_positives_by_kind: by_kind,
        detection_delay_minutes_median: delays.get(delays.len() / 2).copied(),
        detection_delay_minutes_max: delays.last().copied(),
        missed: cnc.iter().filter(|k| !found.contains_key(**k)).map(|k| name(k)).collect(),
        false_positive_servers: false_positive_keys.iter().map(|k| name(k)).collect(),
    })
}

/// One flow file and what is known about it, for training.
pub struct TrainingInput {
    /// The flows.
    pub path: PathBuf,
    /// Its truth.
    pub truth: Truth,
    /// The seeds its windows are scored with.
    pub seeds: Seeds,
}

/// Feature rows and their labels, gathered from windows scored against a truth.
#[derive(Debug, Default)]
pub struct TrainingSet {
    /// One row of features per scored server and window.
    pub rows: Vec<Vec<f64>>,
    /// Whether that server was C&C in that window.
    pub labels: Vec<bool>,
    /// Which input (by position) each row came from: the calibration holds each out in turn.
    pub groups: Vec<usize>,
}

/// Gathers training rows from each input: once with all its seeds, then from `single_host_views`
/// views that know one bot only and see only its flows (how an ISP with one known bot sees it).
pub fn training_set(
    config: &AnalysisConfig,
    inputs: &[TrainingInput],
    format: Format,
    single_host_views: usize,
) -> Result<TrainingSet, SessionError<std::convert::Infallible>> {
    let mut set = TrainingSet::default();
    for (group, input) in inputs.iter().enumerate() {
        // Held in memory: the single-host views go over the same flows again.
        let mut flows: Vec<(Flow, bool)> = Vec::new();
        let reader = crate::session::open_input(&input.path, None)?;
        input::read(reader, format, &mut |flow, initiator_known| flows.push((flow, initiator_known)))
            .map_err(|source| SessionError::Input { path: input.path.clone(), source })?;
        let mut learn = |seeds: &Seeds, flows: &mut dyn Iterator<Item = &(Flow, bool)>, min_seed_clients: u64| {
            // A window scored twice would count its rows twice.
            let mut windows = config.windows().with_late_horizon(0);
            let detect = DetectConfig { min_seed_clients, ..config.detect.clone() };
            let mut detector = Detector::new(config.model.clone(), detect);
            let mut closed = |window: &Window| {
                for scored in detector.score(window, seeds) {
                    set.labels.push(input.truth.is_cnc_in(
                        scored.key.addr,
                        scored.key.port,
                        window.start_ms,
                        window.end_ms,
                    ));
                    set.rows.push(scored.features);
                    set.groups.push(group);
                }
                // Rows as first scored: what the model sees of a window before any hindsight.
                None
            };
            for (flow, initiator_known) in flows {
                windows.add(flow, seeds, *initiator_known, &mut closed);
            }
            windows.finish(&mut closed);
        };
        learn(&input.seeds, &mut flows.iter(), config.detect.min_seed_clients);
        let mut bots: Vec<Addr> = input.seeds.bots().collect();
        bots.sort();
        let step = (bots.len() / single_host_views.max(1)).max(1);
        for bot in bots.iter().step_by(step).take(single_host_views) {
            let mut alone = Seeds::default();
            alone.insert_bot(*bot);
            learn(&alone, &mut flows.iter().filter(|(f, _)| f.src == *bot || f.dst == *bot), 1);
        }
    }
    Ok(set)
}

impl TrainingSet {
    /// Fits a model to the rows; `described` says what it was trained on.
    pub fn train(&self, alpha: f64, described: String) -> Result<Model, ModelError> {
        Model::train(&self.rows, &self.labels, &self.groups, alpha, described)
    }

    /// Rows labelled C&C.
    pub fn positives(&self) -> usize {
        self.labels.iter().filter(|l| **l).count()
    }
}
