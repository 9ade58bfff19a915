//! When long-running commands stop: on SIGINT/SIGTERM, or after a duration given in seconds.

use std::time::Duration;

/// A duration flag given in seconds, checked: finite, positive, at most `max_seconds`.
pub fn seconds(value: f64, flag: &str, max_seconds: f64) -> anyhow::Result<Duration> {
    anyhow::ensure!(
        value.is_finite() && value > 0.0 && value <= max_seconds,
        "{flag} must be more than 0 and at most {max_seconds} seconds"
    );
    Ok(Duration::from_secs_f64(value))
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}

/// Completes on a signal, or after `limit` when one is given.
pub async fn signal_or_after(limit: Option<Duration>) {
    match limit {
        Some(limit) => tokio::select! { _ = tokio::time::sleep(limit) => {}, _ = shutdown_signal() => {} },
        None => shutdown_signal().await,
    }
}
