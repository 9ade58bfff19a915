//! The `botscope` command: parses the command line, loads the configuration, sets up logging and
//! hands over to one command module. Errors are reported here, once, with their causes.

mod cli;
mod commands;
mod config;
mod logging;
mod progress;
mod settings;
mod stop;

use std::process::ExitCode;

use botscope_store::StoreUrl;
use clap::Parser;

use crate::cli::Cli;
use crate::config::{LogFormat, LogLevel};
use crate::settings::Settings;

/// The configuration file, then environment and flags on top.
fn resolve(cli: &Cli) -> anyhow::Result<Settings> {
    let (mut config, source) = config::load(cli.global.config.as_deref())?;
    if let Some(db) = &cli.global.db {
        StoreUrl::parse(db).map_err(|e| anyhow::anyhow!("--db / BOTSCOPE_DB: {e}"))?;
        config.store.url = db.clone();
    }
    if let Some(format) = cli.global.log_format {
        config.log.format = format;
    }
    if let Some(level) = cli.global.log_level {
        config.log.level = level;
    }
    config.log.level = config.log.level.shifted(cli.global.verbose as i8 - cli.global.quiet as i8);
    let show_progress = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && config.log.format == LogFormat::Text
        && config.log.level >= LogLevel::Info;
    Ok(Settings { config, source, show_progress })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match resolve(&cli) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    logging::init(settings.config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.config.runtime.worker_threads())
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let db_given = cli.global.db.is_some();
    let outcome = runtime.block_on(cli::dispatch(cli.command, &settings, db_given));
    match outcome {
        Ok(code) => code,
        Err(error) => {
            tracing::error!("{error:#}");
            if settings.config.log.format == LogFormat::Json || settings.config.log.level < LogLevel::Error {
                // The log line may be JSON or filtered out; the person at the terminal still needs it.
                eprintln!("error: {error:#}");
            }
            ExitCode::FAILURE
        }
    }
}
