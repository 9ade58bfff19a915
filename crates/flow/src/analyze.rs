//! Windows over a stream of flows: flows go to the window of their start time, and a window is
//! closed once flows have moved a grace period past its end. A closed window is kept a while
//! longer (the late horizon): exporters deliver long sessions only when their active or idle
//! timeout expires, often after the grace period, and a C&C used only in one window would
//! otherwise vanish. A kept window that takes late flows is scored again and its records sent
//! again under the same ids, and so is one whose scores the next window changed (hindsight: a
//! bot polling its C&C once an hour looks like a one-off visit until it comes back); each
//! revision says when it was made and the store keeps the latest.

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
    /// Flows for windows closed and past the late horizon, dropped.
    pub late: u64,
    /// Flows for closed windows still kept, added to them.
    pub late_kept: u64,
    /// Times a kept window was scored again for its late flows.
    pub revisions: u64,
    /// Times a kept window was scored again because the window after it changed its scores.
    pub hindsight_revisions: u64,
    /// Flows starting more than a day after the wall clock (a broken exporter clock or a
    /// damaged record), or outside years 0000 to 9999, dropped: taken at face value they would
    /// close every open window.
    pub bad_timestamp: u64,
    /// Windows closed.
    pub windows: u64,
    /// Summed window counters.
    pub window: WindowStats,
}

/// Called with each window as it closes (and each kept window scored again). It returns the
/// start of the earliest window whose scores this one changed, or `None`: the kept windows from
/// that one on are scored again.
pub type Closed<'a> = dyn FnMut(&Window) -> Option<i64> + 'a;

/// Splits flows into windows.
pub struct Windows {
    config: WindowConfig,
    window_ms: i64,
    grace_ms: i64,
    open: BTreeMap<i64, Window>,
    /// Closed windows still taking late flows, and whether they took any since last scored.
    kept: BTreeMap<i64, (Window, bool)>,
    late_ms: i64,
    closed_before: i64,
    latest_ms: i64,
    latest_allowed_ms: i64,
    /// Counters.
    pub stats: AnalyzeStats,
}

/// Windows open at once at most (a flow far in the future must not open thousands).
const MAX_OPEN: usize = 8;
/// Closed windows kept for late flows at most (each holds its whole graph).
pub const MAX_KEPT: usize = 4;

impl Windows {
    /// Windows of `window_ms` aligned to the epoch (so hours and days start on the hour and at
    /// midnight UTC); a window closes once a flow starts `grace_ms` after its end.
    pub fn new(config: WindowConfig, window_ms: i64, grace_ms: i64) -> Self {
        Windows {
            config,
            window_ms: window_ms.max(1000),
            grace_ms,
            open: BTreeMap::new(),
            kept: BTreeMap::new(),
            late_ms: 0,
            closed_before: i64::MIN,
            latest_ms: i64::MIN,
            latest_allowed_ms: chrono::Utc::now().timestamp_millis() + 86_400_000,
            stats: AnalyzeStats::default(),
        }
    }

    /// Keeps each closed window for `late_ms` after it closed, for late flows (0, the default,
    /// drops them). At most [`MAX_KEPT`] windows are kept.
    pub fn with_late_horizon(mut self, late_ms: i64) -> Self {
        self.late_ms = late_ms.max(0);
        self
    }

    /// Adds a flow; calls `closed` for every window this closes (and for kept windows scored
    /// again).
    pub fn add(&mut self, flow: &Flow, seeds: &Seeds, initiator_known: bool, closed: &mut Closed) {
        self.stats.flows += 1;
        if flow.start_ms > self.latest_allowed_ms {
            // The limit follows the wall clock: a collector runs for months.
            self.latest_allowed_ms = chrono::Utc::now().timestamp_millis() + 86_400_000;
        }
        if flow.start_ms > self.latest_allowed_ms || !time_in_range(flow.start_ms) || !time_in_range(flow.end_ms) {
            self.stats.bad_timestamp += 1;
            return;
        }
        let start = flow.start_ms.div_euclid(self.window_ms) * self.window_ms;
        if start < self.closed_before {
            match self.kept.get_mut(&start) {
                Some((window, revised)) => {
                    window.add(flow, seeds, initiator_known);
                    *revised = true;
                    self.stats.late_kept += 1;
                }
                None => self.stats.late += 1,
            }
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

    /// Closes every window ending at or before `end_limit` (window start < end_limit - window);
    /// scores again the kept windows that took late flows, and lets go of those past the late
    /// horizon.
    pub fn close_until(&mut self, start_limit: i64, closed: &mut Closed) {
        let mut any = false;
        while let Some((&start, _)) = self.open.first_key_value() {
            if start >= start_limit {
                break;
            }
            let Some(window) = self.open.remove(&start) else { break };
            self.closed_before = self.closed_before.max(start.saturating_add(self.window_ms));
            self.finish_one(window, closed);
            any = true;
        }
        if any || start_limit == i64::MAX {
            self.revise(closed);
            let horizon = start_limit.saturating_sub(self.late_ms);
            self.kept.retain(|start, _| *start >= horizon);
        }
    }

    /// Scores again every kept window that took late flows, or was asked to be, since it was
    /// last scored. What a revision asks for in turn waits for the next window: only a newly
    /// closed window knows more than the ones before it.
    fn revise(&mut self, closed: &mut Closed) {
        let now = self.closed_before;
        for (window, revised) in self.kept.values_mut().filter(|(_, revised)| *revised) {
            *revised = false;
            self.stats.revisions += 1;
            window.revised_at_ms = Some(now);
            closed(window);
        }
    }

    /// Closes windows that ended at least a grace period before `now_ms` (wall clock, for live
    /// collection).
    pub fn close_by_clock(&mut self, now_ms: i64, closed: &mut Closed) {
        self.close_until(self.close_limit(now_ms), closed);
        // Exporters fell silent: late flows kept so far need not wait for the next window.
        self.revise(closed);
    }

    /// Windows starting before this have ended a grace period before `ms`. Saturating: the
    /// window and grace lengths are the caller's, `ms` may be the wall clock.
    fn close_limit(&self, ms: i64) -> i64 {
        ms.saturating_sub(self.grace_ms).saturating_sub(self.window_ms).saturating_add(1)
    }

    /// Closes everything (and scores again the kept windows that took late flows).
    pub fn finish(&mut self, closed: &mut Closed) {
        self.close_until(i64::MAX, closed);
    }

    fn finish_one(&mut self, window: Window, closed: &mut Closed) {
        self.stats.windows += 1;
        let s = &window.stats;
        self.stats.window.flows += s.flows;
        self.stats.window.internal += s.internal;
        self.stats.window.transit += s.transit;
        self.stats.window.servers_over_limit += s.servers_over_limit;
        if let Some(from) = closed(&window) {
            for (_, revised) in self.kept.range_mut(from..).map(|(_, kept)| kept) {
                *revised = true;
                self.stats.hindsight_revisions += 1;
            }
        }
        if self.late_ms > 0 {
            if self.kept.len() >= MAX_KEPT
                && let Some((_, (mut oldest, revised))) = self.kept.pop_first()
                && revised
            {
                // Let go early for room: its late flows are scored before it goes.
                self.stats.revisions += 1;
                oldest.revised_at_ms = Some(self.closed_before);
                closed(&oldest);
            }
            self.kept.insert(window.start_ms, (window, false));
        }
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
        windows.add(&flow(t), &seeds, false, &mut |w| {
            closed.push(w.start_ms);
            None
        });
        let future = chrono::Utc::now().timestamp_millis() + 3 * 86_400_000;
        windows.add(&flow(future), &seeds, false, &mut |w| {
            closed.push(w.start_ms);
            None
        });
        windows.add(&flow(t + 60_000), &seeds, false, &mut |w| {
            closed.push(w.start_ms);
            None
        });
        assert_eq!((windows.stats.bad_timestamp, windows.stats.late), (1, 0));
        assert!(closed.is_empty());
        windows.finish(&mut |w| {
            closed.push(w.start_ms);
            None
        });
        assert_eq!(closed, vec![t]);
    }

    #[test]
    fn a_late_flow_within_the_horizon_revises_its_closed_window() {
        let hour = 3_600_000;
        let mut windows = Windows::new(WindowConfig::default(), hour, 900_000).with_late_horizon(2 * hour);
        let seeds = Seeds::default();
        let mut scored: Vec<(i64, u64)> = Vec::new();
        let t = 1_793_577_600_000;
        let add = |windows: &mut Windows, at: i64, scored: &mut Vec<(i64, u64)>| {
            windows.add(&flow(at), &seeds, false, &mut |w| {
                scored.push((w.start_ms, w.stats.flows));
                None
            });
        };
        add(&mut windows, t, &mut scored);
        add(&mut windows, t + 76 * 60_000, &mut scored);
        assert_eq!(scored, vec![(t, 1)], "the first hour closed with one flow");
        // Exporters deliver a long session of the first hour late: it is kept, not dropped...
        add(&mut windows, t + 10 * 60_000, &mut scored);
        assert_eq!((windows.stats.late, windows.stats.late_kept), (0, 1));
        // ...and the first hour is scored again when the next window closes.
        add(&mut windows, t + 136 * 60_000, &mut scored);
        assert_eq!(scored, vec![(t, 1), (t + hour, 1), (t, 2)]);
        assert_eq!(windows.stats.revisions, 1);
        // Past the horizon the window is let go: later flows for it are dropped as late.
        add(&mut windows, t + 5 * hour, &mut scored);
        add(&mut windows, t + 20 * 60_000, &mut scored);
        assert_eq!(windows.stats.late, 1);
        windows.finish(&mut |w| {
            scored.push((w.start_ms, w.stats.flows));
            None
        });
        assert!(!scored[3..].iter().any(|(start, _)| *start == t), "{scored:?}");
    }

    #[test]
    fn a_window_the_next_one_changed_is_scored_again_once_and_says_when() {
        let hour = 3_600_000;
        let mut windows = Windows::new(WindowConfig::default(), hour, 900_000).with_late_horizon(2 * hour);
        let seeds = Seeds::default();
        let t = 1_793_577_600_000;
        // (start, revised at) of each scoring; every newly closed window asks for the one before.
        let mut scored: Vec<(i64, Option<i64>)> = Vec::new();
        for minutes in [0, 80, 136] {
            windows.add(&flow(t + minutes * 60_000), &seeds, false, &mut |w| {
                scored.push((w.start_ms, w.revised_at_ms));
                w.revised_at_ms.is_none().then(|| w.start_ms - hour)
            });
        }
        assert_eq!(scored, vec![(t, None), (t + hour, None), (t, Some(t + 2 * hour))]);
        assert_eq!((windows.stats.hindsight_revisions, windows.stats.revisions), (1, 1));
        // What a revision asks for is not acted on: only a newly closed window knows more.
        windows.finish(&mut |w| {
            scored.push((w.start_ms, w.revised_at_ms));
            Some(t + hour)
        });
        assert_eq!(scored[3..], [(t + 2 * hour, None), (t + hour, Some(t + 3 * hour))], "{scored:?}");
    }

    #[test]
    fn without_a_late_horizon_late_flows_are_dropped_and_nothing_is_scored_twice() {
        let mut windows = Windows::new(WindowConfig::default(), 3_600_000, 900_000);
        let seeds = Seeds::default();
        let mut scored = Vec::new();
        let t = 1_793_577_600_000;
        for minutes in [0, 76, 10, 200] {
            windows.add(&flow(t + minutes * 60_000), &seeds, false, &mut |w| {
                scored.push(w.start_ms);
                None
            });
        }
        windows.finish(&mut |w| {
            scored.push(w.start_ms);
            None
        });
        assert_eq!((windows.stats.late, windows.stats.late_kept, windows.stats.revisions), (1, 0, 0));
        assert_eq!(scored.iter().filter(|s| **s == t).count(), 1);
    }

    #[test]
    fn regression_a_collector_running_for_days_still_takes_flows() {
        let mut windows = Windows::new(WindowConfig::default(), 3_600_000, 900_000);
        let now = chrono::Utc::now().timestamp_millis();
        // As set when the collector started ten days ago.
        windows.latest_allowed_ms = now - 9 * 86_400_000;
        let mut closed = Vec::new();
        windows.add(&flow(now), &Seeds::default(), false, &mut |w| {
            closed.push(w.start_ms);
            None
        });
        windows.add(&flow(now + 3 * 86_400_000), &Seeds::default(), false, &mut |w| {
            closed.push(w.start_ms);
            None
        });
        assert_eq!(windows.stats.bad_timestamp, 1, "only the flow days ahead of the clock");
        windows.finish(&mut |w| {
            closed.push(w.start_ms);
            None
        });
        assert_eq!(closed.len(), 1);
    }

    #[test]
    fn flows_after_the_grace_period_close_earlier_windows() {
        let mut windows = Windows::new(WindowConfig::default(), 3_600_000, 900_000);
        let seeds = Seeds::default();
        let mut closed = Vec::new();
        let t = 1_793_577_600_000;
        for minutes in [0, 30, 70, 76] {
            windows.add(&flow(t + minutes * 60_000), &seeds, false, &mut |w| {
                closed.push(w.start_ms);
                None
            });
        }
        assert_eq!(closed, vec![t], "the first hour closes once flows are 15 minutes past it");
        windows.add(&flow(t + 10 * 60_000), &seeds, false, &mut |w| {
            closed.push(w.start_ms);
            None
        });
        assert_eq!(windows.stats.late, 1);
    }
}
