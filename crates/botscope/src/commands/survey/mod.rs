//! `botscope survey` and `botscope fingerprints`.

mod args;
pub use args::*;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use botscope_deliver::{FileSink, Only, RecordSink, Tee};
use botscope_model::{Kind, Notification, Record};
use botscope_survey::catalog::{Dictionary, PortCatalog};
use botscope_survey::checkpoint::{self, Checkpoint};
use botscope_survey::conn::Limits;
use botscope_survey::engine::{self, Progress};
use botscope_survey::fingerprint::Fingerprints;
use botscope_survey::recheck::{self, Case};
use botscope_survey::scope::{self, Scope};
use botscope_survey::session::{self, SessionConfig};

use crate::settings::Settings;

/// How long fetching the re-survey cases from the centre may take in all.
const FETCH_TIMEOUT: Duration = Duration::from_secs(120);
/// Most bytes of cases read from the centre (about 150,000 cases).
const FETCH_MAX_BYTES: usize = 64 << 20;

pub async fn run(args: SurveyArgs, settings: &Settings, db_given: bool) -> anyhow::Result<ExitCode> {
    super::sink::require_sensor(&args.center, args.sensor.as_deref())?;
    // Only the operator's ranges make the scope. A re-survey's cases are what sensors reported,
    // never an authorisation: they are intersected with the scope, not added to it.
    anyhow::ensure!(
        !args.scope.is_empty() || !args.scope_file.is_empty(),
        "no scope: give the ranges you are authorised to survey with --scope CIDR or --scope-file FILE \
         (--recheck too: its cases are re-surveyed only where they lie inside them)"
    );
    let mut requested = Vec::new();
    for text in &args.scope {
        requested.push(scope::parse_range(text).map_err(|e| anyhow::anyhow!("--scope {e}"))?);
    }
    for path in &args.scope_file {
        requested.extend(scope::read_range_file(path)?.into_iter().map(|(net, _)| net));
    }
    let mut excluded = Vec::new();
    for path in &args.exclude_file {
        excluded.extend(scope::read_range_file(path)?);
    }
    let authorised = Scope::build(&requested, &excluded, args.lab)?;
    let (scope, cases, cases_outside_scope) = match &args.recheck {
        Some(source) => {
            let cases =
                recheck_cases(source.as_deref(), args.recheck_min_age, settings, db_given, &args.center).await?;
            anyhow::ensure!(!cases.is_empty(), "--recheck: no open vulnerable case to re-survey");
            let plan = recheck::plan(&authorised, cases);
            let outside = plan.outside.len() as u64;
            if outside > 0 {
                tracing::warn!(cases = outside, "re-survey cases outside --scope skipped; they are not probed");
                for (ip, port) in &plan.outside {
                    tracing::debug!(%ip, port, "re-survey case outside --scope skipped");
                }
            }
            anyhow::ensure!(
                !plan.cases.is_empty(),
                "--recheck: none of the cases is inside --scope ({outside} outside); nothing was probed"
            );
            (plan.scope, Some((plan.cases, plan.only)), outside)
        }
        None => (authorised, None, 0),
    };
    let catalog = PortCatalog::shipped();
    let ports = match (&cases, &args.ports) {
        (Some((cases, _)), _) => {
            catalog.parse_list(&recheck::port_list(cases)).context("--recheck: the cases' ports")?
        }
        (None, Some(list)) => catalog.parse_list(list)?,
        (None, None) => catalog.set(&args.port_set)?,
    };
    let dictionary = match &args.credentials {
        Some(path) => Dictionary::load(path)?,
        None => Dictionary::shipped(),
    };
    anyhow::ensure!(!dictionary.is_empty(), "the credential dictionary is empty");
    let attempts_per_host =
        args.max_attempts_per_host.unwrap_or_else(|| engine::Config::whole_dictionary(dictionary.len(), &ports));
    let mut fingerprints = Fingerprints::shipped();
    if let Some(dir) = &args.fingerprints {
        let added = fingerprints.add_dir(dir)?;
        let not_loaded: usize = fingerprints.files().iter().map(|f| f.problems.len()).sum();
        if not_loaded > 0 {
            tracing::warn!(not_loaded, dir = %dir.display(), "some identification rules could not be loaded; `botscope fingerprints --fingerprints DIR` lists them");
        }
        tracing::info!(rules = added, dir = %dir.display(), "identification rules loaded");
    }
    let shard = parse_shard(args.shard.as_deref())?;
    anyhow::ensure!(args.rate > 0, "--rate must be at least 1");
    anyhow::ensure!(args.concurrency > 0 && args.per_subnet_concurrency > 0, "concurrency limits must be at least 1");

    let pairs = match &cases {
        Some((_, only)) => only.len() as u64,
        None => scope.targets().len() * ports.len() as u64,
    };
    if args.dry_run || scope.targets().is_empty() {
        print_plan(&scope, &ports, pairs, shard, &args, attempts_per_host, dictionary.len());
        if let Some((inside, _)) = &cases {
            println!(
                "re-survey: {} cases inside the scope ({pairs} address x port pairs), {cases_outside_scope} outside it (skipped)",
                inside.len()
            );
        }
        if scope.targets().is_empty() {
            anyhow::bail!("nothing to survey: every address in scope is excluded");
        }
        return Ok(ExitCode::SUCCESS);
    }

    let dest = super::sink::open(settings, db_given, &args.center, args.sensor.as_deref()).await?;
    // With a store that holds a routing table, every finding names the ISP its address belongs to.
    let attribute: Option<session::Attribute> = match dest.store.as_ref() {
        Some(sink) => super::attributor(&sink.store)
            .await?
            .map(|(a, _)| -> session::Attribute { Box::new(move |ip| a.handles(ip)) }),
        None => None,
    };
    let max_attempts_per_host = match &cases {
        // A re-survey must not call a device fixed because its budget ran out before the pair that
        // worked last time: every case may use the whole dictionary.
        Some((cases, _)) => attempts_per_host.max(recheck::full_budget(cases, dictionary.len())),
        None => attempts_per_host,
    };
    let config = engine::Config {
        rate: args.rate,
        concurrency: args.concurrency,
        per_subnet_concurrency: args.per_subnet_concurrency,
        max_attempts_per_host,
        shard,
        seed: args.seed,
        limits: Limits {
            connect: crate::stop::seconds(args.connect_timeout, "--connect-timeout", 3600.0)?,
            read: crate::stop::seconds(args.read_timeout, "--read-timeout", 3600.0)?,
            conversation: crate::stop::seconds(args.conversation_timeout, "--conversation-timeout", 3600.0)?,
            ..Limits::default()
        },
        lab: args.lab,
        round: args.round.clone(),
        sensor: args.sensor.clone(),
        only: cases.as_ref().map(|(_, only)| only.clone()),
        ..engine::Config::new(ports, dictionary, fingerprints)
    };
    tracing::info!(
        addresses = scope.targets().len(),
        ports = config.ports.len(),
        pairs,
        shard = %format!("{}/{}", shard.0 + 1, shard.1),
        rate = args.rate,
        "survey starting"
    );

    let checkpoint = match &args.checkpoint {
        Some(path) => Some(Checkpoint::open(path, &checkpoint::run_key(&scope, &config.ports, args.seed, shard))?),
        None => None,
    };
    let resuming = checkpoint.as_ref().is_some_and(|(_, resume)| resume.open.is_some() || !resume.done.is_empty());
    if let Some((_, resume)) = checkpoint.as_ref().filter(|_| resuming) {
        tracing::info!(
            port_stage_done = resume.open.is_some(),
            hosts_done = resume.done.len(),
            "resuming from the checkpoint; appending to --out and --audit"
        );
    }
    let file = match args.out.as_deref() {
        None => None,
        Some(path) if resuming && path != Path::new("-") => Some(FileSink::append(path)?),
        Some(path) => Some(FileSink::create(path)?),
    };
    let audit: Option<Box<dyn std::io::Write + Send>> = match &args.audit {
        Some(path) => Some(Box::new(std::io::BufWriter::new(create_or_append(path, resuming)?))),
        None => None,
    };
    let mut sink = Tee { first: file, second: Only { sink: dest, keep: stored } };
    let progress = Arc::new(Progress::default());
    let stop = Arc::new(AtomicBool::new(false));
    tokio::spawn({
        let stop = stop.clone();
        async move {
            crate::stop::shutdown_signal().await;
            tracing::warn!("interrupted: finishing the conversations in flight, then writing the summary");
            stop.store(true, Ordering::Relaxed);
        }
    });
    let watcher = tokio::spawn(watch(progress.clone(), settings.show_progress));
    let (cases, _) = cases.unzip();
    let config = SessionConfig {
        scope,
        engine: config,
        cases,
        cases_outside_scope,
        checkpoint,
        audit,
        attribute,
        stop: stop.clone(),
        progress,
    };
    let report = session::run(config, &mut sink).await;
    watcher.abort();
    let report = report?;
    if let (Some(store), Some(verdicts)) = (sink.second.sink.store.as_ref(), &report.verdicts) {
        apply_verdicts(&store.store, verdicts).await?;
    }
    sink.finish().await?;
    let stored = sink.second.sink.stored();
    let summary = report.summary;
    if let Some(path) = &args.summary {
        let mut text = serde_json::to_string_pretty(&summary)?;
        text.push('\n');
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let findings: u64 = summary.findings.values().sum();
    tracing::info!(
        probes = summary.probes,
        open = summary.open,
        hosts = summary.hosts_responsive,
        logins = summary.logins_tried,
        findings,
        stored,
        seconds = format!("{:.1}", summary.duration_seconds),
        probes_per_s = format!("{:.0}", summary.probe_rate),
        logins_per_s = format!("{:.0}", summary.login_rate),
        "survey finished"
    );
    if stop.load(Ordering::Relaxed) {
        eprintln!("survey stopped early; the records written so far are complete per host");
    }
    Ok(ExitCode::SUCCESS)
}

/// What of a survey's records the store and the centre keep: findings and re-survey verdicts (the
/// `--out` file gets every observation too).
pub fn stored(record: &Record) -> bool {
    matches!(record, Record::Finding(_) | Record::Outcome(_))
}

/// Moves the notified cases a re-survey judged to their new status.
pub async fn apply_verdicts(
    store: &botscope_store::AnyStore,
    verdicts: &botscope_survey::recheck::Verdicts,
) -> anyhow::Result<()> {
    let outcomes: Vec<botscope_model::Outcome> =
        verdicts.outcomes.iter().filter_map(Record::payload::<botscope_model::Outcome>).cloned().collect();
    botscope_center::notify::apply_outcomes(store, &outcomes).await?;
    Ok(())
}

/// The cases to re-survey: from a file of notification records, else the store (--db), else the
/// centre (--center, GET /api/v1/recheck).
async fn recheck_cases(
    file: Option<&Path>,
    min_age_secs: u64,
    settings: &Settings,
    db_given: bool,
    center: &super::sink::CenterArgs,
) -> anyhow::Result<Vec<Case>> {
    let notifications: Vec<Notification> = match (file, db_given, &center.center, &center.token) {
        (Some(path), _, _, _) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("--recheck {}", path.display()))?;
            read_cases(&text, &path.display().to_string())?
        }
        (None, true, _, _) => {
            let store = settings.open_store().await?;
            let query = botscope_store::RecordQuery { kind: Some(Kind::Notification), ..Default::default() };
            botscope_store::all_records(&store, query)
                .await?
                .into_iter()
                .filter_map(Record::into_payload::<Notification>)
                .collect()
        }
        (None, false, Some(url), Some(token)) => {
            let url = format!("{}/api/v1/recheck?min_age_days={}", url.trim_end_matches('/'), min_age_secs / 86_400);
            let text =
                botscope_deliver::fetch_text(&url, token, FETCH_TIMEOUT, FETCH_MAX_BYTES).await.context("--recheck")?;
            read_cases(&text, &url)?
        }
        _ => anyhow::bail!("--recheck needs the cases: a FILE, --db (the store) or --center with --token"),
    };
    let due = chrono::Utc::now() - chrono::Duration::seconds(min_age_secs.min(i64::MAX as u64) as i64);
    let (cases, ipv6) = recheck::select(notifications, due);
    if ipv6 > 0 {
        tracing::warn!(cases = ipv6, "IPv6 cases skipped: the survey checks IPv4 only");
    }
    Ok(cases)
}

fn read_cases(text: &str, origin: &str) -> anyhow::Result<Vec<Notification>> {
    let mut list = Vec::new();
    for (n, line) in text.lines().enumerate() {
        match botscope_model::parse_line(line.as_bytes(), Some(Kind::Notification)) {
            Ok(Some(Record::Notification(case))) => list.push(case),
            Ok(_) => {}
            Err(error) => anyhow::bail!("--recheck {origin}:{}: {error}", n + 1),
        }
    }
    Ok(list)
}

fn parse_shard(text: Option<&str>) -> anyhow::Result<(u64, u64)> {
    let Some(text) = text else { return Ok((0, 1)) };
    let parsed =
        text.split_once('/').and_then(|(i, n)| Some((i.trim().parse::<u64>().ok()?, n.trim().parse::<u64>().ok()?)));
    match parsed {
        Some((i, n)) if n >= 1 && (1..=n).contains(&i) => Ok((i - 1, n)),
        _ => anyhow::bail!("--shard {text}: expected I/N with 1 <= I <= N, e.g. 2/4"),
    }
}

fn create_or_append(path: &Path, append: bool) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    if append {
        options.append(true).create(true);
    } else {
        options.write(true).create(true).truncate(true);
    }
    options.open(path).with_context(|| format!("cannot open {}", path.display()))
}

fn print_plan(
    scope: &Scope,
    ports: &[botscope_survey::catalog::PortEntry],
    pairs: u64,
    shard: (u64, u64),
    args: &SurveyArgs,
    attempts_per_host: u32,
    pairs_in_dictionary: usize,
) {
    println!("scope: {} addresses requested, {} in scope after exclusions", scope.requested(), scope.targets().len());
    for exclusion in scope.exclusions() {
        println!("  excluded {} addresses: {}", exclusion.removed.len(), exclusion.reason);
    }
    let list: Vec<String> = ports.iter().map(|p| format!("{}/{}", p.port, p.protocol.as_str())).collect();
    println!("ports: {} ({})", ports.len(), list.join(","));
    let share = pairs.div_ceil(shard.1);
    println!("probes: {pairs} address x port pairs; shard {}/{} takes about {share}", shard.0 + 1, shard.1);
    println!(
        "pace: {} new connections/s, {} at once, {} per /24, {} login attempts per host; dictionary of {pairs_in_dictionary} pairs",
        args.rate, args.concurrency, args.per_subnet_concurrency, attempts_per_host
    );
    println!("port stage alone takes at least {:.0} s at this rate", share as f64 / f64::from(args.rate.max(1)));
    if args.dry_run {
        println!("dry run: nothing was sent");
    }
}

/// A progress bar on a terminal; a status line every 10 seconds otherwise.
async fn watch(progress: Arc<Progress>, show_bar: bool) {
    use indicatif::{ProgressBar, ProgressStyle};
    let bar = if show_bar {
        let bar = ProgressBar::new(0).with_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Some(bar)
    } else {
        None
    };
    let mut ticks = 0u64;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        ticks += 1;
        let service_stage = progress.service_stage.load(Ordering::Relaxed);
        let (done, total, label) = if service_stage {
            (progress.hosts_done.load(Ordering::Relaxed), progress.hosts_total.load(Ordering::Relaxed), "hosts")
        } else {
            (progress.probes_done.load(Ordering::Relaxed), progress.probes_total.load(Ordering::Relaxed), "probes")
        };
        let findings = progress.findings.load(Ordering::Relaxed);
        let open = progress.open.load(Ordering::Relaxed);
        match &bar {
            Some(bar) => {
                bar.set_length(total);
                bar.set_position(done);
                bar.set_message(format!("{label} (open {open}, findings {findings})"));
            }
            None if ticks.is_multiple_of(40) => {
                tracing::info!(stage = label, done, total, open, findings, "survey progress");
            }
            None => {}
        }
    }
}

pub fn fingerprints(args: FingerprintsArgs) -> anyhow::Result<ExitCode> {
    let mut fingerprints = Fingerprints::shipped();
    if let Some(dir) = &args.fingerprints {
        fingerprints.add_dir(dir)?;
    }
    // Per file: what it matches, what loaded, and what was skipped and why: nothing is left out
    // without saying so.
    let mut not_loaded = 0;
    for file in fingerprints.files() {
        let matches = file.matches.as_deref().unwrap_or("-");
        match &file.skipped {
            Some(why) => println!("SKIP {} ({matches}): {why}", file.file),
            None => println!(
                "LOAD {} ({matches}): {} rules, {} examples, {} not loaded",
                file.file,
                file.rules,
                file.examples,
                file.problems.len()
            ),
        }
        for problem in &file.problems {
            println!("FAIL {}: not loaded: {problem}", file.file);
        }
        not_loaded += file.problems.len();
    }
    let examples: usize = fingerprints.rules().iter().map(|r| r.examples().len()).sum();
    let failures = fingerprints.check_examples();
    for failure in &failures {
        println!("FAIL {}: {}: {:?}", failure.rule, failure.problem, failure.text);
    }
    println!(
        "{} rules, {} examples, {} failed, {} rules not loaded",
        fingerprints.rules().len(),
        examples,
        failures.len(),
        not_loaded
    );
    Ok(if failures.is_empty() && not_loaded == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
