//! Botnet records (one per serial, its whole life) from the stored windows.

use std::collections::BTreeMap;

use botscope_model::{Botnet, BotnetEvent, BotnetStatus, BotnetWindow, CncEndpoint, Lifecycle, Timestamp};

/// Summarises every serial's windows. `processed` are the starts of every correlated window, so a
/// window without a serial after one with it is when the botnet went quiet; `lookback` windows of
/// quiet make it dead.
pub fn summarize(windows: &[BotnetWindow], processed: &[Timestamp], lookback: usize) -> Vec<Botnet> {
    let mut processed = processed.to_vec();
    processed.sort_unstable();
    processed.dedup();
    let latest = processed.last().copied();
    let mut by_serial: BTreeMap<&str, Vec<&BotnetWindow>> = BTreeMap::new();
    for window in windows {
        by_serial.entry(window.serial.as_str()).or_default().push(window);
    }
    // Merges are recorded on the botnet that absorbed; the absorbed one learns of it here.
    let mut merged_into: BTreeMap<&str, Vec<BotnetEvent>> = BTreeMap::new();
    for window in windows {
        for event in window.events.iter().filter(|e| e.event == Lifecycle::Merged) {
            for absorbed in &event.serials {
                merged_into.entry(absorbed.as_str()).or_default().push(BotnetEvent {
                    at: event.at,
                    event: Lifecycle::Merged,
                    serials: vec![window.serial.clone()],
                    detail: format!("merged into {}", window.serial),
                });
            }
        }
    }
    by_serial
        .into_iter()
        .map(|(serial, mut list)| {
            list.sort_by_key(|w| w.window_start);
            let last = list[list.len() - 1];
            let mut events: Vec<BotnetEvent> = Vec::new();
            let mut cnc: BTreeMap<(std::net::IpAddr, u16, &str), CncEndpoint> = BTreeMap::new();
            let mut reporters: Vec<String> = Vec::new();
            for (n, window) in list.iter().enumerate() {
                events.extend(window.events.iter().cloned());
                // Quiet after this window: the next processed window does not have it.
                let next_processed = processed.iter().find(|p| **p > window.window_start);
                let next_own = list.get(n + 1).map(|w| w.window_start);
                if let Some(next) = next_processed
                    && next_own != Some(*next)
                {
                    events.push(BotnetEvent {
                        at: *next,
                        event: Lifecycle::Gone,
                        serials: vec![],
                        detail: "not seen in this window".into(),
                    });
                }
                for endpoint in &window.cnc {
                    cnc.entry((endpoint.ip, endpoint.port, endpoint.transport.as_str()))
                        .and_modify(|seen| {
                            seen.first_seen = seen.first_seen.min(endpoint.first_seen);
                            seen.last_seen = seen.last_seen.max(endpoint.last_seen);
                        })
                        .or_insert_with(|| endpoint.clone());
                }
                reporters.extend(window.reporters.iter().cloned());
            }
            events.extend(merged_into.remove(serial).unwrap_or_default());
            events.sort_by(|a, b| a.at.cmp(&b.at).then(a.event.cmp(&b.event)));
            reporters.sort_unstable();
            reporters.dedup();
            let mut cnc: Vec<CncEndpoint> = cnc.into_values().collect();
            cnc.sort_by(|a, b| a.first_seen.cmp(&b.first_seen).then((a.ip, a.port).cmp(&(b.ip, b.port))));
            let first_seen =
                cnc.iter().map(|c| c.first_seen).min().unwrap_or(list[0].window_start).min(list[0].window_end);
            let last_seen = last.cnc.iter().map(|c| c.last_seen).max().unwrap_or(last.window_start).max(first_seen);
            let quiet_windows = processed.iter().filter(|p| **p > last.window_start).count();
            let absorbed = events.iter().any(|e| e.event == Lifecycle::Merged && e.detail.starts_with("merged into"));
            let status = if Some(last.window_start) == latest {
                BotnetStatus::Active
            } else if quiet_windows < lookback && !absorbed {
                BotnetStatus::Dormant
            } else {
                BotnetStatus::Dead
            };
            Botnet {
                id: None,
                serial: serial.to_string(),
                family: list.iter().rev().find_map(|w| w.family.clone()),
                status,
                first_seen,
                last_seen,
                members: last.bots.len() as u64,
                cnc,
                events,
                reporters,
                confidence: Some(last.confidence),
            }
        })
        .collect()
}
