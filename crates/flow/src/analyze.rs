//! Windows over a stream of flows: flows go to the window of their start time, and a window is
//! closed once flows have moved a grace period past its end.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::flow::Flow;
use crate::seeds::Seeds;
use crate::window::{Window, WindowConfig, WindowStats};

/// Counters over all windows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AnalyzeStats {
    /// Flows offered.
    pub flows: u64,
    /// Flows for windows already closed, dropped.
    pub late: u64,
    /// Windows closed.
    pub windows: u64,
    /// Summed window counters.
    pub window: WindowStats,
}

/// Splits flows into windows.
pub struct Windows {
    config: WindowConfig,
    window_ms: i64,
    grace_ms: i64,
    open: BTreeMap<i64, Window>,
    closed_before: i64,
    latest_ms: i64,
    /// Counters.
    pub stats: AnalyzeStats,
}

/// Windows open at once at most (a flow far in the future must not open thousands).
const MAX_OPEN: usize = 8;

impl Windows {
    /// Windows of `window_ms` aligned to the epoch (so hours and days start on the hour and at
    /// midnight UTC); a window closes once a flow starts `grace_ms` after its end.
    pub fn new(config: WindowConfig, window_ms: i64, grace_ms: i64) -> Self {
        Windows {
            config,
            window_ms: window_ms.max(1000),
            grace_ms,
            open: BTreeMap::new(),
            closed_before: i64::MIN,
            latest_ms: i64::MIN,
            stats: AnalyzeStats::default(),
        }
    }

    /// Adds a flow; calls `closed` for every window this closes.
    pub fn add(&mut self, flow: &Flow, seeds: &Seeds, initiator_known: bool, closed: &mut dyn FnMut(Window)) {
        self.stats.flows += 1;
        let start = flow.start_ms.div_euclid(self.window_ms) * self.window_ms;
        if start < self.closed_before {
            self.stats.late += 1;
            return;
        }
        if !self.open.contains_key(&start) && self.open.len() >= MAX_OPEN {
            // Make room by closing the oldest; a flow older than everything open is late.
            let oldest = *self.open.keys().next().expect("not empty");
            if start < oldest {
                self.stats.late += 1;
                return;
            }
            self.close_until(oldest + self.window_ms, closed);
        }
        let window_ms = self.window_ms;
        let config = &self.config;
        self.open.entry(start).or_insert_with(|| Window::new(config.clone(), start, start + window_ms)).add(
            flow,
            seeds,
            initiator_known,
        );
        if flow.start_ms > self.latest_ms {
            self.latest_ms = flow.start_ms;
            self.close_until(self.latest_ms - self.grace_ms - self.window_ms + 1, closed);
        }
    }

    /// Closes every window ending at or before `end_limit` (window start < end_limit - window).
    pub fn close_until(&mut self, start_limit: i64, closed: &mut dyn FnMut(Window)) {
        while let Some((&start, _)) = self.open.first_key_value() {
            if start >= start_limit {
                break;
            }
            let window = self.open.remove(&start).expect("present");
            self.closed_before = self.closed_before.max(start + self.window_ms);
            self.finish_one(window, closed);
        }
    }

    /// Closes windows that ended at least a grace period before `now_ms` (wall clock, for live
    /// collection).
    pub fn close_by_clock(&mut self, now_ms: i64, closed: &mut dyn FnMut(Window)) {
        self.close_until(now_ms - self.grace_ms - self.window_ms + 1, closed);
    }

    /// Closes everything.
    pub fn finish(&mut self, closed: &mut dyn FnMut(Window)) {
        self.close_until(i64::MAX, closed);
    }

    fn finish_one(&mut self, window: Window, closed: &mut dyn FnMut(Window)) {
        self.stats.windows += 1;
        let s = &window.stats;
        self.stats.window.flows += s.flows;
        self.stats.window.internal += s.internal;
        self.stats.window.transit += s.transit;
        self.stats.window.servers_over_limit += s.servers_over_limit;
        closed(window);
    }
}
