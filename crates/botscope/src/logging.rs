//! Logs go to standard error, as text or JSON lines, so standard output stays clean for results.

use tracing::level_filters::LevelFilter;

use crate::config::{LogConfig, LogFormat, LogLevel};

pub fn init(config: LogConfig) {
    let level = match config.level {
        LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Trace => LevelFilter::TRACE,
    };
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_max_level(level);
    match config.format {
        LogFormat::Text => builder.with_target(false).without_time().init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).init(),
    }
}
