//! Did notifications lead to fixes? Rates, time to fix and the devices notified again and again.
//!
//! A case counts as *fixed* when a re-survey (`survey --recheck`) found the problem gone and no
//! later check or report found it back; an ISP saying "fixed" without a re-survey to confirm it is
//! counted apart as *reported fixed*. Time to fix runs from the first notification to the first
//! confirming re-survey; cases not fixed yet are censored at `now` (a Kaplan-Meier survival curve,
//! so recent cases do not make fixing look slow or fast).

use std::collections::BTreeMap;

use botscope_model::{Notification, NotificationStatus, Outcome, OutcomeSource, Timestamp};
use botscope_store::{Store, all_of};
use serde::Serialize;
use uuid::Uuid;

use crate::CenterError;

/// How to group the rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// Per ISP.
    Isp,
    /// Per device model (vendor and model; `unknown` when the survey could not tell).
    Model,
    /// Per month of first notification.
    Month,
}

impl std::str::FromStr for GroupBy {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "isp" => Ok(GroupBy::Isp),
            "model" => Ok(GroupBy::Model),
            "month" => Ok(GroupBy::Month),
            other => Err(format!("unknown grouping {other:?} (expected isp, model or month)")),
        }
    }
}

/// One group's figures.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Group {
    /// The ISP, model or month.
    pub key: String,
    /// Cases notified (false positives excluded).
    pub notified: u64,
    /// Fixed, confirmed by a re-survey.
    pub fixed: u64,
    /// The ISP said fixed; no re-survey confirmed it (yet).
    pub reported_fixed: u64,
    /// A re-survey or a later report found the problem still there.
    pub not_fixed: u64,
    /// The ISP could not reach the subscriber.
    pub unreachable: u64,
    /// The ISP found the case wrong (not counted in `notified`).
    pub false_positive: u64,
    /// Notified two or more times with no fix.
    pub repeatedly_notified: u64,
    /// `fixed / notified`.
    pub remediation_rate: f64,
    /// Median days from notification to a confirmed fix (Kaplan-Meier), when half got fixed.
    pub median_days_to_fix: Option<f64>,
}

/// One point of the survival curve.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SurvivalPoint {
    /// Days since first notification.
    pub day: u32,
    /// Share of cases still not fixed.
    pub unfixed: f64,
}

/// A case notified repeatedly without change.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Stubborn {
    /// The case id.
    pub notification: Uuid,
    /// Its ISP.
    pub isp: String,
    /// Why.
    pub reason: String,
    /// The device model, when known.
    pub model: Option<String>,
    /// Reports that included it.
    pub times_notified: u32,
    /// Where it stands.
    pub status: NotificationStatus,
}

/// The whole report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Remediation {
    /// All cases together.
    pub total: Group,
    /// Per group.
    pub groups: Vec<Group>,
    /// Share unfixed by day since notification (all cases).
    pub survival: Vec<SurvivalPoint>,
    /// Cases notified at least twice with no fix, most notified first.
    pub repeated_without_change: Vec<Stubborn>,
    /// Ids of the confirmed fixed cases (for checking against a truth).
    pub fixed_cases: Vec<Uuid>,
}

struct CaseFacts<'a> {
    case: &'a Notification,
    fixed_at: Option<Timestamp>,
    reported_fixed: bool,
    not_fixed: bool,
}

fn facts<'a>(case: &'a Notification, outcomes: &[&Outcome]) -> CaseFacts<'a> {
    let mut sorted: Vec<&&Outcome> = outcomes.iter().collect();
    sorted.sort_by_key(|o| o.at);
    let mut fixed_at = None;
    let mut reported_fixed = false;
    let mut not_fixed = false;
    for outcome in sorted {
        match (outcome.status, outcome.source) {
            (NotificationStatus::Fixed, OutcomeSource::Recheck) => {
                fixed_at = fixed_at.or(Some(outcome.at));
                not_fixed = false;
            }
            (NotificationStatus::Fixed, _) => reported_fixed = true,
            (NotificationStatus::NotFixed, _) => {
                fixed_at = None;
                reported_fixed = false;
                not_fixed = true;
            }
            _ => {}
        }
    }
    CaseFacts { case, fixed_at, reported_fixed: reported_fixed && fixed_at.is_none(), not_fixed }
}

fn model_of(case: &Notification) -> String {
    case.device
        .as_ref()
        .and_then(|d| match (&d.vendor, &d.model) {
            (Some(v), Some(m)) => Some(format!("{v} {m}")),
            (None, Some(m)) => Some(m.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Kaplan-Meier: share unfixed after each day, from (days to fix or to censoring, fixed?).
fn survival(times: &[(f64, bool)]) -> Vec<SurvivalPoint> {
    let mut sorted = times.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let horizon = sorted.last().map(|t| t.0.ceil() as u32).unwrap_or(0);
    let mut points = Vec::new();
    let mut share = 1.0;
    let mut at = 0;
    for day in 0..=horizon {
        while at < sorted.len() && sorted[at].0 <= f64::from(day) {
            let day_time = sorted[at].0;
            let at_risk = (sorted.len() - at) as f64;
            let mut fixes = 0.0;
            let mut n = 0;
            while at + n < sorted.len() && sorted[at + n].0 == day_time {
                if sorted[at + n].1 {
                    fixes += 1.0;
                }
                n += 1;
            }
            share *= 1.0 - fixes / at_risk;
            at += n;
        }
        points.push(SurvivalPoint { day, unfixed: (share * 10_000.0).round() / 10_000.0 });
    }
    points
}

fn summarize(key: String, cases: &[&CaseFacts], now: Timestamp) -> Group {
    let mut group = Group { key, ..Default::default() };
    let mut times = Vec::new();
    for facts in cases {
        if facts.case.status == NotificationStatus::FalsePositive {
            group.false_positive += 1;
            continue;
        }
        group.notified += 1;
        if let Some(at) = facts.fixed_at {
            group.fixed += 1;
            times.push(((at - facts.case.created_at).num_seconds().max(0) as f64 / 86_400.0, true));
        } else {
            times.push(((now - facts.case.created_at).num_seconds().max(0) as f64 / 86_400.0, false));
            if facts.reported_fixed {
                group.reported_fixed += 1;
            }
            if facts.not_fixed {
                group.not_fixed += 1;
            }
            if facts.case.status == NotificationStatus::Unreachable {
                group.unreachable += 1;
            }
            if facts.case.times_notified >= 2 {
                group.repeatedly_notified += 1;
            }
        }
    }
    if group.notified > 0 {
        group.remediation_rate = (group.fixed as f64 / group.notified as f64 * 10_000.0).round() / 10_000.0;
    }
    group.median_days_to_fix = survival(&times).iter().find(|p| p.unfixed <= 0.5).map(|p| f64::from(p.day));
    group
}

/// The remediation report, over one ISP's cases or all.
pub async fn report(
    store: &impl Store,
    isp: Option<&str>,
    by: GroupBy,
    now: Timestamp,
) -> Result<Remediation, CenterError> {
    let cases: Vec<Notification> =
        all_of::<Notification>(store).await?.into_iter().filter(|n| isp.is_none_or(|isp| n.isp == isp)).collect();
    let outcomes: Vec<Outcome> = all_of(store).await?;
    Ok(of_cases(&cases, &outcomes, by, now))
}

/// The remediation report over the cases given (already chosen, e.g. by ISP and time range), with
/// every outcome known (those of other cases are ignored).
pub fn of_cases(cases: &[Notification], outcomes: &[Outcome], by: GroupBy, now: Timestamp) -> Remediation {
    let mut by_case: BTreeMap<Uuid, Vec<&Outcome>> = BTreeMap::new();
    for outcome in outcomes {
        by_case.entry(outcome.notification).or_default().push(outcome);
    }
    let all: Vec<CaseFacts> = cases
        .iter()
        .map(|case| facts(case, by_case.get(&case.id.unwrap_or_default()).map(Vec::as_slice).unwrap_or(&[])))
        .collect();
    let mut groups: BTreeMap<String, Vec<&CaseFacts>> = BTreeMap::new();
    for facts in &all {
        let key = match by {
            GroupBy::Isp => facts.case.isp.clone(),
            GroupBy::Model => model_of(facts.case),
            GroupBy::Month => facts.case.created_at.format("%Y-%m").to_string(),
        };
        groups.entry(key).or_default().push(facts);
    }
    let everything: Vec<&CaseFacts> = all.iter().collect();
    let times: Vec<(f64, bool)> = all
        .iter()
        .filter(|f| f.case.status != NotificationStatus::FalsePositive)
        .map(|f| match f.fixed_at {
            Some(at) => ((at - f.case.created_at).num_seconds().max(0) as f64 / 86_400.0, true),
            None => ((now - f.case.created_at).num_seconds().max(0) as f64 / 86_400.0, false),
        })
        .collect();
    let mut stubborn: Vec<Stubborn> = all
        .iter()
        .filter(|f| {
            f.fixed_at.is_none() && f.case.times_notified >= 2 && f.case.status != NotificationStatus::FalsePositive
        })
        .map(|f| Stubborn {
            notification: f.case.id.unwrap_or_default(),
            isp: f.case.isp.clone(),
            reason: f.case.reason.as_str().into(),
            model: Some(model_of(f.case)).filter(|m| m != "unknown"),
            times_notified: f.case.times_notified,
            status: f.case.status,
        })
        .collect();
    stubborn.sort_by(|a, b| b.times_notified.cmp(&a.times_notified).then(a.notification.cmp(&b.notification)));
    let mut fixed_cases: Vec<Uuid> = all.iter().filter(|f| f.fixed_at.is_some()).filter_map(|f| f.case.id).collect();
    fixed_cases.sort_unstable();
    Remediation {
        total: summarize("all".into(), &everything, now),
        groups: groups.into_iter().map(|(key, cases)| summarize(key, &cases, now)).collect(),
        survival: survival(&times),
        repeated_without_change: stubborn,
        fixed_cases,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survival_censors_unfixed_cases_instead_of_counting_them_fixed_or_lost() {
        // Four cases: fixed on days 1 and 3, two still open at day 2 and day 10.
        let curve = survival(&[(1.0, true), (3.0, true), (2.0, false), (10.0, false)]);
        assert_eq!(curve[0].unfixed, 1.0);
        assert_eq!(curve[1].unfixed, 0.75);
        // Day 2's open case leaves the risk set without a fix: day 3 fixes one of the two left.
        assert_eq!(curve[3].unfixed, 0.375);
        assert_eq!(curve.last().unwrap().day, 10);
        assert_eq!(curve.last().unwrap().unfixed, 0.375);
    }
}
