//! The demo's steps: each calls the library session or function the matching command calls, with
//! a configuration built here rather than a command line parsed again.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use botscope_center::liveness::{self, ProbeConfig};
use botscope_deliver::{Destinations, FileSink, Only, RecordSink, StoreSink, Tee};
use botscope_model::{Kind, Notification, Record};
use botscope_store::{AnyStore, RecordQuery, Store, all_records};

/// Where the demo's sensors deliver: the store, and a JSON-lines file of what they found.
fn sinks(store: &AnyStore, file: &Path) -> anyhow::Result<Tee<Option<FileSink>, Destinations>> {
    let store = StoreSink { store: store.clone(), stored: 0 };
    Ok(Tee { first: Some(FileSink::create(file)?), second: Destinations { store: Some(store), center: None } })
}

/// Loads the ISP registry and the routing table into the store.
pub async fn isps(store: &AnyStore, registry: &Path, pfx2as: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(registry)?;
    let isps = botscope_isp::registry::parse(&text).with_context(|| registry.display().to_string())?;
    let table = botscope_isp::pfx2as::read(botscope_input::open(pfx2as)?, |_| {})?;
    store.replace_routed_prefixes(&table.prefixes, &pfx2as.display().to_string()).await?;
    store.replace_isps(&isps).await?;
    Ok(())
}

/// What a demo survey looks at.
pub struct SurveyStep<'a> {
    /// The authorised ranges.
    pub scope_file: &'a Path,
    /// Ports (`telnet=...` lab list); ignored by a re-survey, which takes its cases' ports.
    pub ports: &'a str,
    /// Re-survey the notified cases instead.
    pub recheck: bool,
    /// The records' file.
    pub out: PathBuf,
    /// The audit trail.
    pub audit: Option<PathBuf>,
}

/// Surveys the lab fleet (or re-surveys its notified cases) into the store.
pub async fn survey(store: &AnyStore, step: SurveyStep<'_>) -> anyhow::Result<()> {
    use botscope_survey::catalog::{Dictionary, PortCatalog};
    use botscope_survey::engine::{self, Progress};
    use botscope_survey::fingerprint::Fingerprints;
    use botscope_survey::recheck;
    use botscope_survey::scope::{self, Scope};
    use botscope_survey::session::{self, SessionConfig};

    let ranges: Vec<_> = scope::read_range_file(step.scope_file)?.into_iter().map(|(net, _)| net).collect();
    let authorised = Scope::build(&ranges, &[], true)?;
    let catalog = PortCatalog::shipped();
    let (scope, cases, ports) = if step.recheck {
        let query = RecordQuery { kind: Some(Kind::Notification), ..Default::default() };
        let notifications: Vec<Notification> =
            all_records(store, query).await?.into_iter().filter_map(Record::into_payload).collect();
        let (cases, _) = recheck::select(notifications, chrono::Utc::now());
        let plan = recheck::plan(&authorised, cases);
        let ports = catalog.parse_list(&recheck::port_list(&plan.cases))?;
        (plan.scope, Some((plan.cases, plan.only)), ports)
    } else {
        (authorised, None, catalog.parse_list(step.ports)?)
    };
    let mut engine = engine::Config::new(ports, Dictionary::shipped(), Fingerprints::shipped());
    engine.rate = 5000;
    engine.lab = true;
    engine.sensor = Some("survey-1".into());
    engine.max_attempts_per_host = match &cases {
        // As the command: every case may use the whole dictionary.
        Some((cases, _)) => engine.max_attempts_per_host.max(recheck::full_budget(cases, engine.dictionary.len())),
        None => 2000,
    };
    engine.only = cases.as_ref().map(|(_, only)| only.clone());
    let attribute: Option<session::Attribute> = super::super::attributor(store)
        .await?
        .map(|(a, _)| -> session::Attribute { Box::new(move |ip| a.handles(ip)) });
    let audit: Option<Box<dyn Write + Send>> = match &step.audit {
        Some(path) => Some(Box::new(std::io::BufWriter::new(std::fs::File::create(path)?))),
        None => None,
    };
    let sinks = sinks(store, &step.out)?;
    let mut sink = Tee { first: sinks.first, second: Only { sink: sinks.second, keep: super::super::survey::stored } };
    let config = SessionConfig {
        scope,
        engine,
        cases: cases.map(|(cases, _)| cases),
        cases_outside_scope: 0,
        checkpoint: None,
        audit,
        attribute,
        stop: Arc::new(AtomicBool::new(false)),
        progress: Arc::new(Progress::default()),
    };
    let report = session::run(config, &mut sink).await?;
    if let Some(verdicts) = &report.verdicts {
        super::super::survey::apply_verdicts(store, verdicts).await?;
    }
    sink.finish().await?;
    tracing::info!(
        open = report.summary.open,
        findings = report.summary.findings.values().sum::<u64>(),
        stored = sink.second.sink.stored(),
        "survey finished"
    );
    Ok(())
}

/// Reads the lab darknet's capture with the telescope into the store.
pub async fn telescope(store: &AnyStore, pcap: &Path, darknet: &str, out: &Path) -> anyhow::Result<()> {
    use botscope_telescope::session::{self, SessionConfig, Source};
    use botscope_telescope::{Catalogue, Config, Darknet};
    let prefixes = super::super::parse_prefixes(&[darknet.to_string()], "darknet")?;
    let mut telescope = Config::new(Darknet::new(&prefixes));
    telescope.sensor = Some("darknet-a".into());
    let attribute = super::super::attributor(store).await?.map(super::super::telescope::attribute);
    let sinks = sinks(store, out)?;
    let mut sink =
        Tee { first: Only { sink: sinks.first, keep: super::super::telescope::in_file }, second: sinks.second };
    let config = SessionConfig {
        telescope,
        catalogue: Catalogue::shipped(),
        source: Source::Files(vec![pcap.to_path_buf()]),
        attribute,
        stop: Arc::new(AtomicBool::new(false)),
        progress: None,
    };
    let report = session::run(config, &mut sink).await?;
    sink.finish().await?;
    tracing::info!(frames = report.stats.totals.frames, stored = sink.second.stored(), "telescope done");
    Ok(())
}

/// An ISP's flow analysis of the lab's flows, seeded with the telescope's infected hosts.
pub async fn flow_analysis(
    store: &AnyStore,
    flows: &Path,
    seeds: &Path,
    sensor: &str,
    out: &Path,
) -> anyhow::Result<()> {
    use botscope_flow::detect::Model;
    use botscope_flow::input::Format;
    use botscope_flow::session::{self, AnalysisConfig};
    use botscope_flow::window::Subscribers;
    let mut config = AnalysisConfig::new(Model::shipped()?);
    config.window.subscribers = Subscribers::new(&["127.16.0.0/12".parse()?]);
    config.detect.sensor = Some(sensor.into());
    let seeds = session::read_seeds::<std::convert::Infallible>(&[seeds.to_path_buf()])?;
    let mut sink = sinks(store, out)?;
    let report = session::analyze(config, seeds, vec![flows.to_path_buf()], Format::Auto, None, &mut sink).await?;
    sink.finish().await?;
    tracing::info!(sensor, candidates = report.candidates, stored = sink.second.stored(), "flow analysis done");
    Ok(())
}

/// Imports a ThreatFox-format feed file.
pub async fn feed(store: &AnyStore, path: &Path, source: &str) -> anyhow::Result<()> {
    use botscope_center::feeds::{self, FeedFormat, FeedOptions};
    let options = FeedOptions {
        format: FeedFormat::ThreatfoxCsv,
        source: source.into(),
        plain_role: botscope_model::FeedRole::Cnc,
        now: chrono::Utc::now(),
    };
    let read = feeds::read(botscope_input::open(path)?, &options)?;
    let records: Vec<Record> = read.entries.into_iter().map(Record::FeedEntry).collect();
    let summary = store.put_records(&records).await?;
    tracing::info!(source, entries = records.len(), inserted = summary.inserted, "feed imported");
    Ok(())
}

/// Ties the reports into botnets with serial numbers.
pub async fn correlate(store: &AnyStore, window_secs: i64) -> anyhow::Result<()> {
    use botscope_center::correlate::{self, CorrelateConfig};
    let config = CorrelateConfig { window_secs, lookback: 7, settle_secs: 0, now: chrono::Utc::now() };
    let report = correlate::run(store, &config).await?;
    tracing::info!(botnets = report.botnets, new_serials = report.new_serials.len(), "correlation finished");
    Ok(())
}

/// One liveness round over the reported C&C servers, loopback only.
pub async fn liveness(store: &AnyStore) -> anyhow::Result<()> {
    let config = ProbeConfig {
        timeout: std::time::Duration::from_secs(2),
        greeting: None,
        rate: 200,
        concurrency: 256,
        sensor: Some("liveness-1".into()),
    };
    let scope = botscope_scope::Scope::public(&[], true);
    let targets = liveness::targets(store).await?;
    let report = liveness::round(store, &targets, &config, &scope).await?;
    tracing::info!(probed = report.probed, alive = report.alive, dead = report.dead, "liveness round finished");
    Ok(())
}

/// Exports STIX 2.1 and publishes it to the TAXII collection every ISP reads.
pub async fn share(store: &AnyStore, out: &Path) -> anyhow::Result<()> {
    use botscope_share::stix::{self, ExportConfig, Tlp};
    use botscope_share::taxii;
    let config = ExportConfig { producer: "botscope centre".into(), since: None, tlp: Tlp::Green };
    let bundle = stix::export(store, &config).await?;
    std::fs::write(out, serde_json::to_string_pretty(&bundle)? + "\n")?;
    let records = taxii::publication(&bundle, taxii::SHARED_COLLECTION, chrono::Utc::now());
    let summary = store.put_records(&records).await?;
    tracing::info!(new_versions = summary.inserted, "published to the TAXII collection 'shared'");
    Ok(())
}
