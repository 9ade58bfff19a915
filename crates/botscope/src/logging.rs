//! Logs go to standard error, as text or JSON lines, so standard output stays clean for results.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat, LogLevel};

pub fn init(config: LogConfig) {
    let level = match config.level {
        LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Trace => LevelFilter::TRACE,
    };
    // RUST_LOG, when set, filters by target as usual (`RUST_LOG=info,botscope::access=off` keeps
    // the centre's access log out); otherwise the configured level applies to everything. A
    // filter that does not parse falls back to the level, with a warning once logging is up.
    let from_env = std::env::var("RUST_LOG").ok().filter(|v| !v.trim().is_empty());
    let (filter, bad) = match from_env.as_deref().map(EnvFilter::try_new) {
        Some(Ok(filter)) => (filter, None),
        Some(Err(error)) => (EnvFilter::default().add_directive(level.into()), Some(error)),
        None => (EnvFilter::default().add_directive(level.into()), None),
    };
    // https://no-color.org: any non-empty NO_COLOR turns colour off.
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(!no_color && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter);
    match config.format {
        LogFormat::Text => builder.with_target(false).without_time().init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).init(),
    }
    if let Some(error) = bad {
        tracing::warn!(%error, "RUST_LOG does not parse; using the configured log level");
    }
}
