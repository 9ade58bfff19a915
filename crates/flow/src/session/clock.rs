//! Whose clock stamps a flow, and what to say when an exporter's clock cannot be right.
//!
//! NetFlow v5/v9 stamp flows against the exporter's uptime; an exporter replaying a capture
//! (`softflowd -r`) has an uptime that started after the packets it reports, and its 32-bit
//! millisecond counter wraps, so its flows land weeks in the future (49.7 days is one wrap). Such
//! flows would close every open window early; they are dropped, and each exporter whose flows
//! are stamped implausibly is named once with what to do.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::Flow;

/// A flow stamped more than this after the collector's clock is implausible.
pub const MAX_AHEAD_MS: i64 = 86_400_000;
/// Exporters tracked one by one; further ones are summed.
const TRACKED: usize = 64;

/// Which clock a collected flow's times come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Clock {
    /// The exporter's timestamps (live exporters).
    #[default]
    Exporter,
    /// The time the datagram arrived, keeping the flow's duration: for offline replays whose
    /// exporter clock has nothing to do with the packets' time.
    Arrival,
}

impl std::str::FromStr for Clock {
    type Err = UnknownClock;
    fn from_str(text: &str) -> Result<Clock, UnknownClock> {
        match text {
            "exporter" => Ok(Clock::Exporter),
            "arrival" => Ok(Clock::Arrival),
            _ => Err(UnknownClock(text.to_string())),
        }
    }
}

/// A clock name that is not `exporter` or `arrival`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown clock {0:?} (exporter or arrival)")]
pub struct UnknownClock(pub String);

impl Clock {
    /// Restamps `flows` (just decoded) when the clock is the arrival time `now_ms`.
    pub fn apply(self, flows: &mut [Flow], now_ms: i64) {
        if self == Clock::Arrival {
            for flow in flows {
                let duration = flow.end_ms.saturating_sub(flow.start_ms).max(0);
                flow.end_ms = now_ms;
                flow.start_ms = now_ms - duration;
            }
        }
    }
}

/// One exporter whose flows were stamped implausibly far ahead.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClockProblem {
    /// Flows stamped more than a day after the collector's clock.
    pub flows_ahead: u64,
    /// How far ahead the furthest was, in days.
    pub max_days_ahead: f64,
}

/// Per exporter, flows stamped implausibly (bounded: the first [`TRACKED`] exporters by name,
/// the rest summed under `other_exporters`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClockCheck {
    /// By exporter address.
    pub exporters: BTreeMap<IpAddr, ClockProblem>,
    /// Flows ahead from exporters beyond the tracked ones.
    pub other_exporters: u64,
}

impl ClockCheck {
    /// Looks at the flows one datagram from `exporter` gave; says why, once per exporter, when
    /// they cannot be right.
    pub fn check(&mut self, exporter: IpAddr, flows: &[Flow], now_ms: i64) {
        let ahead: Vec<i64> =
            flows.iter().map(|f| f.end_ms.saturating_sub(now_ms)).filter(|ms| *ms > MAX_AHEAD_MS).collect();
        let Some(furthest) = ahead.iter().max() else { return };
        let days = *furthest as f64 / 86_400_000.0;
        if !self.exporters.contains_key(&exporter) && self.exporters.len() >= TRACKED {
            self.other_exporters += ahead.len() as u64;
            return;
        }
        let problem = self.exporters.entry(exporter).or_default();
        if problem.flows_ahead == 0 {
            tracing::warn!(
                %exporter,
                days_ahead = format!("{days:.1}"),
                "this exporter stamps flows days after this machine's clock, so they are dropped: an offline \
                 replay (softflowd -r, nfreplay) or an exporter whose uptime counter wrapped (every 49.7 days). \
                 Check its clock, or collect a replay with --clock arrival"
            );
        }
        problem.flows_ahead += ahead.len() as u64;
        problem.max_days_ahead = problem.max_days_ahead.max(days);
    }

    /// Adds another socket's findings.
    pub fn merge(&mut self, other: &ClockCheck) {
        for (exporter, problem) in &other.exporters {
            let mine = self.exporters.entry(*exporter).or_default();
            mine.flows_ahead += problem.flows_ahead;
            mine.max_days_ahead = mine.max_days_ahead.max(problem.max_days_ahead);
        }
        self.other_exporters += other.other_exporters;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use botscope_net::packet::Addr;

    fn flow(start_ms: i64, end_ms: i64) -> Flow {
        Flow {
            start_ms,
            end_ms,
            src: Addr::from(IpAddr::from([127, 0, 0, 2])),
            dst: Addr::from(IpAddr::from([127, 0, 0, 3])),
            src_port: 40000,
            dst_port: 23,
            protocol: 6,
            tcp_flags: 2,
            packets: 1,
            bytes: 40,
            reply_packets: 0,
            reply_bytes: 0,
        }
    }

    #[test]
    fn arrival_clock_keeps_the_duration_and_exporter_clock_changes_nothing() {
        let mut flows = vec![flow(5_000_000_000_000, 5_000_000_030_000)];
        Clock::Exporter.apply(&mut flows, 1_000);
        assert_eq!((flows[0].start_ms, flows[0].end_ms), (5_000_000_000_000, 5_000_000_030_000));
        Clock::Arrival.apply(&mut flows, 1_000_000);
        assert_eq!((flows[0].start_ms, flows[0].end_ms), (970_000, 1_000_000));
    }

    #[test]
    fn a_wrapped_exporter_clock_is_named_with_how_far_ahead_it_is() {
        let now = 1_800_000_000_000;
        let wrap = (1u64 << 32) as i64;
        let mut check = ClockCheck::default();
        let exporter: IpAddr = "127.0.0.9".parse().unwrap();
        check.check(exporter, &[flow(now, now + 1000), flow(now + wrap, now + wrap + 10)], now);
        check.check("127.0.0.10".parse().unwrap(), &[flow(now, now)], now);
        assert_eq!(check.exporters.len(), 1, "an exporter with a plausible clock is not named");
        let problem = &check.exporters[&exporter];
        assert_eq!(problem.flows_ahead, 1);
        assert!((problem.max_days_ahead - 49.7).abs() < 0.05, "{problem:?}");
    }

    #[test]
    fn the_exporters_named_are_bounded() {
        let now = 1_800_000_000_000;
        let mut check = ClockCheck::default();
        for i in 0..200u32 {
            check.check(IpAddr::from(i.to_be_bytes()), &[flow(now + 2 * MAX_AHEAD_MS, now + 2 * MAX_AHEAD_MS)], now);
        }
        assert_eq!(check.exporters.len(), TRACKED);
        assert_eq!(check.other_exporters, 200 - TRACKED as u64);
    }
}
