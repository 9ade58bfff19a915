//! `botscope flow`: collect or read flows, find C&C servers, train and evaluate the model.

mod args;
pub use args::*;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use botscope_deliver::{RecordSink, Tee};
use botscope_flow::detect::{DetectConfig, Model, ModelError};
use botscope_flow::evaluate::{self, TrainingInput, Truth};
use botscope_flow::exporters::Exporters;
use botscope_flow::input::Format;
use botscope_flow::seeds::Seeds;
use botscope_flow::session::{self, AnalysisConfig, CollectConfig};
use botscope_flow::window::{Subscribers, WindowConfig};

use crate::settings::Settings;

pub async fn run(command: FlowCommand, settings: &Settings, db_given: bool) -> anyhow::Result<ExitCode> {
    match command {
        FlowCommand::Collect(args) => collect(args, settings, db_given).await,
        FlowCommand::Analyze(args) => analyze(args, settings, db_given).await,
        FlowCommand::Train(args) => tokio::task::spawn_blocking(move || train(args)).await?,
        FlowCommand::Evaluate(args) => tokio::task::spawn_blocking(move || evaluate(args)).await?,
    }
}

/// The analysis flags as the sessions' configuration.
fn setup(args: &FlowAnalysisArgs) -> anyhow::Result<AnalysisConfig> {
    setup_with(args, load_model(args)?)
}

/// `--model`, or the shipped model.
fn load_model(args: &FlowAnalysisArgs) -> anyhow::Result<Model> {
    Ok(match &args.model {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read the model {}", path.display()))?;
            Model::from_json(&text).with_context(|| format!("model {}", path.display()))?
        }
        None => Model::shipped().context("the shipped model data/flow-model.json")?,
    })
}

/// The analysis flags with a model already chosen.
fn setup_with(args: &FlowAnalysisArgs, model: Model) -> anyhow::Result<AnalysisConfig> {
    let window_seconds = super::parse_window(&args.window)?;
    anyhow::ensure!(window_seconds <= 86_400, "--window is at most 1d for flow analysis");
    let window_ms = window_seconds as i64 * 1000;
    let grace_ms = match &args.grace {
        Some(text) => {
            let seconds = super::parse_seconds(text, "--grace")?;
            anyhow::ensure!(seconds <= 86_400, "--grace must be between 0s and 1d");
            seconds as i64 * 1000
        }
        None => window_ms / 4,
    };
    let late_seconds = super::parse_seconds(&args.late, "--late")?;
    anyhow::ensure!(late_seconds <= 7 * 86_400, "--late must be between 0s and 7d");
    let seed_memory_seconds = super::parse_seconds(&args.seed_memory, "--seed-memory")?;
    anyhow::ensure!(seed_memory_seconds <= 30 * 86_400, "--seed-memory must be between 0s and 30d");
    let prefixes = super::parse_prefixes(&args.subscribers, "--subscribers")?;
    anyhow::ensure!((0.0..=1.0).contains(&args.min_score), "--min-score must be between 0 and 1");
    anyhow::ensure!(args.min_seed_clients >= 1, "--min-seed-clients must be at least 1");
    anyhow::ensure!(args.max_servers >= 1, "--max-servers must be at least 1");
    Ok(AnalysisConfig {
        window: WindowConfig {
            subscribers: Subscribers::new(&prefixes),
            max_servers: args.max_servers,
            ..WindowConfig::default()
        },
        window_ms,
        grace_ms,
        late_ms: late_seconds as i64 * 1000,
        detect: DetectConfig {
            min_score: args.min_score,
            min_seed_clients: args.min_seed_clients,
            seed_memory_ms: seed_memory_seconds as i64 * 1000,
            sensor: args.sensor.clone(),
            include_private: args.include_private,
        },
        model,
    })
}

fn load_seeds(paths: &[PathBuf]) -> anyhow::Result<Seeds> {
    Ok(session::read_seeds::<std::convert::Infallible>(paths)?)
}

async fn analyze(args: FlowAnalyzeArgs, settings: &Settings, db_given: bool) -> anyhow::Result<ExitCode> {
    let config = setup(&args.analysis)?;
    let format: Format = args.files.format.parse()?;
    let seeds = load_seeds(&args.seeds)?;
    let dest = super::sink::open(settings, db_given, &args.center, args.analysis.sensor.as_deref()).await?;
    let mut sink = Tee { first: super::open_file_sink(&args.out, dest.any())?, second: dest };
    let started = Instant::now();
    let (watch, progress) = crate::progress::watch_reads(settings.show_progress);
    let report = session::analyze(config, seeds, args.files.input.clone(), format, progress, &mut sink).await?;
    drop(watch);
    sink.finish().await?;
    tracing::info!(
        flows = report.windows.flows,
        windows = report.windows.windows,
        candidates = report.candidates,
        stored = sink.second.stored(),
        "flow analysis done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

async fn collect(args: FlowCollectArgs, settings: &Settings, db_given: bool) -> anyhow::Result<ExitCode> {
    let analysis = setup(&args.analysis)?;
    let seeds = load_seeds(&args.seeds)?;
    let duration = args.duration.map(|d| crate::stop::seconds(d, "--duration", 366.0 * 86400.0)).transpose()?;
    let listen: Vec<SocketAddr> = args
        .listen
        .iter()
        .map(|a| a.parse().with_context(|| format!("--listen {a}: expected ADDR:PORT")))
        .collect::<anyhow::Result<_>>()?;
    let exporters = Exporters::new(super::parse_prefixes(&args.exporter, "--exporter")?);
    // Refused before anything opens: a collector open to everyone must not even start.
    exporters.check_listeners(&listen)?;
    let dest = super::sink::open(settings, db_given, &args.center, args.analysis.sensor.as_deref()).await?;
    let mut sink = Tee { first: super::open_file_sink(&args.out, dest.any())?, second: dest };
    let stop = Arc::new(AtomicBool::new(false));
    tokio::spawn({
        let stop = stop.clone();
        async move {
            crate::stop::signal_or_after(duration).await;
            stop.store(true, Ordering::Relaxed);
        }
    });
    let config = CollectConfig {
        analysis,
        seeds,
        listen,
        exporters,
        receive_buffer_mib: args.receive_buffer,
        flows_out: args.flows.clone(),
        stop,
        clock: args.clock,
    };
    let stats = session::collect(config, &mut sink).await?;
    if let Some(path) = &args.stats {
        std::fs::write(path, serde_json::to_string_pretty(&stats)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let d = &stats.decode;
    let skipped = d.time_out_of_range + d.value_out_of_range;
    if d.malformed + d.unknown_version + d.unknown_template_sets + d.sequence_lost + skipped > 0 {
        tracing::warn!(
            malformed = d.malformed,
            unknown_version = d.unknown_version,
            unknown_template_sets = d.unknown_template_sets,
            sequence_lost = d.sequence_lost,
            time_out_of_range = d.time_out_of_range,
            value_out_of_range = d.value_out_of_range,
            "export problems counted"
        );
    }
    let r = &stats.refused;
    if r.datagrams > 0 {
        let sources: Vec<String> = r.sources.iter().map(|s| format!("{} ({})", s.address, s.datagrams)).collect();
        tracing::warn!(
            datagrams = r.datagrams,
            from_further_sources = r.other_sources,
            "datagrams from sources no --exporter names dropped: {}",
            sources.join(", ")
        );
    }
    sink.finish().await?;
    tracing::info!(
        datagrams = d.datagrams,
        flows = d.flows,
        flows_written = stats.flows_written,
        windows = stats.windows.windows,
        candidates = stats.candidates,
        stored = sink.second.stored(),
        "collector stopped after {:.1} s",
        stats.seconds
    );
    Ok(ExitCode::SUCCESS)
}

fn seeds_for(paths: &[PathBuf], truth: &Truth, withhold: f64) -> anyhow::Result<Seeds> {
    anyhow::ensure!((0.0..1.0).contains(&withhold), "--withhold must be at least 0 and below 1");
    if paths.is_empty() { Ok(truth.seeds(withhold)) } else { load_seeds(paths) }
}

fn train(args: FlowTrainArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.files.input.len() == args.truth.len(), "give one --truth per --input");
    anyhow::ensure!(
        args.seeds.is_empty() || args.seeds.len() == args.files.input.len(),
        "give one --seeds per --input, or none"
    );
    anyhow::ensure!(args.alpha >= 0.0 && args.alpha.is_finite(), "--alpha must be a non-negative number");
    let format: Format = args.files.format.parse()?;
    // Training rows do not depend on the model, so a shipped model built for other features (the
    // features just changed) must not stop the retraining that replaces it.
    let model = match (&args.analysis.model, Model::shipped()) {
        (None, Err(e @ ModelError::Features { .. })) => {
            tracing::warn!("the shipped model: {e}; gathering the training rows without it");
            Model::untrained()
        }
        _ => load_model(&args.analysis)?,
    };
    let config = setup_with(&args.analysis, model)?;
    let mut inputs = Vec::new();
    for (i, path) in args.files.input.iter().enumerate() {
        let truth = Truth::load(&args.truth[i])?;
        let seeds = seeds_for(args.seeds.get(i).map(std::slice::from_ref).unwrap_or(&[]), &truth, args.withhold)?;
        inputs.push(TrainingInput { path: path.clone(), truth, seeds });
    }
    let set = evaluate::training_set(&config, &inputs, format, args.single_host_views)?;
    let positives = set.positives();
    tracing::info!(rows = set.rows.len(), cnc_rows = positives, "training");
    let described = format!(
        "{} flow file(s): {}; {} rows, {} C&C",
        args.files.input.len(),
        args.files
            .input
            .iter()
            .map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(", "),
        set.rows.len(),
        positives
    );
    let model = set.train(args.alpha, described)?;
    let mut text = serde_json::to_string_pretty(&model)?;
    text.push('\n');
    std::fs::write(&args.out, text).with_context(|| format!("cannot write {}", args.out.display()))?;
    let threshold = args.analysis.min_score;
    let (mut tp, mut fp) = (0, 0);
    for (row, label) in set.rows.iter().zip(&set.labels) {
        if model.score(row) >= threshold {
            if *label { tp += 1 } else { fp += 1 }
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "model": args.out.display().to_string(),
            "rows": set.rows.len(),
            "cnc_rows": positives,
            "training_true_positive_rate": tp as f64 / positives.max(1) as f64,
            "training_false_positives": fp,
        })
    );
    Ok(ExitCode::SUCCESS)
}

fn evaluate(args: FlowEvaluateArgs) -> anyhow::Result<ExitCode> {
    let config = setup(&args.analysis)?;
    let format: Format = args.files.format.parse()?;
    let truth = Truth::load(&args.truth)?;
    let seeds = seeds_for(&args.seeds, &truth, args.withhold)?;
    let evaluation = evaluate::evaluate(config, &truth, &seeds, &args.files.input, format)?;
    println!("{}", serde_json::to_string(&evaluation)?);
    Ok(ExitCode::SUCCESS)
}
