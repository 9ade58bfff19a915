//! Windows over a stream of flows: flows go to the window of their start time, and a window is
//! closed once flows have moved a grace period past its end.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::flow::{Flow, time_in_range};
use crate::seeds::Seeds;
use crate::window::{Window, WindowConfig, WindowStats};

/// Counters over all windows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AnalyzeStats {
    /// Flows offered.
    pub flows: u64,
    /// Flows for windows already closed, dropped.
    pub late: u64,
    /// Flows starting more than a day after the wall clock (a broken exporter clock or a
    /// damaged record), or outside years 0000 to 9999, dropped: taken at face value they would
    /// close every open window.
    pub bad_timestamp: u64,
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
    latest_allowed_ms: i64,
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
            latest_allowed_ms: chrono::Utc::now().timestamp_millis() + 86_400_000,
            stats: AnalyzeStats::default(),
        }
    }

    /// Adds a flow; calls `closed` for every window this closes.
    pub fn add(&mut self, flow: &Flow, seeds: &Seeds, initiator_known: bool, closed: &mut dyn FnMut(Window)) {
        self.stats.flows += 1;
        if flow.start_ms > self.latest_allowed_ms || !time_in_range(flow.start_ms) || !time_in_range(flow.end_ms) {
            self.stats.bad_timestamp += 1;
            return;
        }
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
            self.close_until(oldest.saturating_add(self.window_ms), closed);
        }
        let window_ms = self.window_ms;
        let config = &self.config;
        self.open
            .entry(start)
            .or_insert_with(|| Window::new(config.clone(), start, start.saturating_add(window_ms)))
            .add(flow, seeds, initiator_known);
        if flow.start_ms > self.latest_ms {
            self.latest_ms = flow.start_ms;
            self.close_until(self.close_limit(self.latest_ms), closed);
        }
    }

    /// Closes every window ending at or before `end_limit` (window start < end_limit - window).
    pub fn close_until(&mut self, start_limit: i64, closed: &mut dyn FnMut(Window)) {
        while let Some((&start, _)) = self.open.first_key_value() {
            if start >= start_limit {
                break;
            }
            let window = self.open.remove(&start).expect("present");
            self.closed_before = self.closed_before.max(start.saturating_add(self.window_ms));
            self.finish_one(window, closed);
        }
    }

    /// Closes windows that ended at least a grace period before `now_ms` (wall clock, for live
    /// collection).
    pub fn close_by_clock(&mut self, now_ms: i64, closed: &mut dyn FnMut(Window)) {
        self.close_until(self.close_limit(now_ms), closed);
    }

    /// Windows starting before this have ended a grace period before `ms`. Saturating: the
    /// window and grace lengths are the caller's, `ms` may be the wall clock.
    fn close_limit(&self, ms: i64) -> i64 {
        ms.saturating_sub(self.grace_ms).saturating_sub(self.window_ms).saturating_add(1)
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

#[cfg(test)]
mod tests {
    use botscope_net::packet::Addr;

    use super::*;

    fn flow(start_ms: i64) -> Flow {
        Flow {
            start_ms,
            end_ms: start_ms,
            src: Addr::v4(0x7f10_0001),
            dst: Addr::v4(0x7fc8_0001),
            src_port: 40_000,
            dst_port: 23,
            protocol: 6,
            tcp_flags: 0x1b,
            packets: 1,
            bytes: 60,
            reply_packets: 0,
            reply_bytes: 0,
        }
    }

    #[test]
    fn regression_one_far_future_stamp_does_not_close_every_window() {
        let mut windows = Windows::new(WindowConfig::default(), 3_600_000, 900_000);
        let seeds = Seeds::default();
        let mut closed = Vec::new();
        let t = 1_793_577_600_000;
        windows.add(&flow(t), &seeds, false, &mut |w| closed.push(w.start_ms));
        let future = chrono::Utc::now().timestamp_millis() + 3 * 86_400_000;
        windows.add(&flow(future), &seeds, false, &mut |w| closed.push(w.start_ms));
        windows.add(&flow(t + 60_000), &seeds, false, &mut |w| closed.push(w.start_ms));
        assert_eq!((windows.stats.bad_timestamp, windows.stats.late), (1, 0));
        assert!(closed.is_empty());
        windows.finish(&mut |w| closed.push(w.start_ms));
        assert_eq!(closed, vec![t]);
    }

    #[test]
    fn flows_after_the_grace_period_close_earlier_windows() {
        let mut windows = Windows::new(WindowConfig::default(), 3_600_000, 900_000);
        let seeds = Seeds::default();
        let mut closed = Vec::new();
        let t = 1_793_577_600_000;
        for minutes in [0, 30, 70, 76] {
            windows.add(&flow(t + minutes * 60_000), &seeds, false, &mut |w| closed.push(w.start_ms));
        }
        assert_eq!(closed, vec![t], "the first hour closes once flows are 15 minutes past it");
        windows.add(&flow(t + 10 * 60_000), &seeds, false, &mut |w| closed.push(w.start_ms));
        assert_eq!(windows.stats.late, 1);
    }
}
