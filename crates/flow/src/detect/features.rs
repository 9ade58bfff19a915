//! Per-server behaviour features: what the learned model reads.
//!
//! Each is cheap to compute from the window and says something the field found to separate C&C
//! servers from their look-alikes (BotFinder, Disclosure, Segugio): bots keep coming back at
//! regular intervals with small flows (heartbeats, commands), while a DDoS victim gets floods
//! in a burst, a download server one fetch per infection, and resolvers, NTP and CDNs everybody.

use crate::window::Window;

/// Feature names, in vector order. The model file must list the same.
pub const NAMES: &[&str] = &[
    "graph_score",
    "seed_share",
    "log_seed_clients",
    "log_total_clients",
    "log_contacts_per_client",
    "regularity",
    "log_bytes_per_contact",
    "log_packets_per_contact",
    "failed_share",
    "active_share",
    "common_service_port",
    "log_mean_duration_s",
    "log_down_up_ratio",
    "log_age_hours",
    "repeat_share",
];

/// Ports of services every subscriber uses (DNS, NTP, web, mail, DoT).
pub(crate) fn common_service_port(protocol: u8, port: u16) -> bool {
    matches!((protocol, port), (17, 53 | 123 | 443 | 853) | (6, 53 | 80 | 443 | 853 | 993 | 995 | 587 | 25 | 8443))
}

/// What the features are computed from, besides the window.
pub(crate) struct Context {
    pub(crate) graph_score: f64,
    pub(crate) seed_clients: u64,
    pub(crate) total_clients: u64,
    pub(crate) age_hours: f64,
}

/// The regularity of contacts (1 - coefficient of variation of the gaps, 0..1) and the median
/// gap in seconds, over edges with at least four contacts.
pub(crate) fn periodicity(window: &Window, server: usize) -> (f64, Option<f64>) {
    let mut regularities = Vec::new();
    let mut periods = Vec::new();
    let mut gaps = Vec::new();
    for e in &window.servers[server].edges {
        let edge = &window.edges[*e as usize];
        if edge.starts.len() < 4 {
            continue;
        }
        let mut starts = edge.starts.clone();
        starts.sort_unstable();
        gaps.clear();
        gaps.extend(starts.windows(2).map(|w| (w[1] - w[0]) as f64 / 1000.0));
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        if mean <= 0.0 {
            regularities.push(0.0);
            continue;
        }
        let variance = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        regularities.push((1.0 - variance.sqrt() / mean).max(0.0));
        gaps.sort_by(f64::total_cmp);
        periods.push(gaps[gaps.len() / 2]);
    }
    if regularities.is_empty() {
        return (0.0, None);
    }
    regularities.sort_by(f64::total_cmp);
    periods.sort_by(f64::total_cmp);
    let regularity = regularities[regularities.len() / 2];
    (regularity, (regularity >= 0.5).then(|| periods[periods.len() / 2]))
}

pub(crate) fn vector(window: &Window, server: usize, context: &Context, regularity: f64) -> Vec<f64> {
    let s = &window.servers[server];
    let total = context.total_clients.max(1) as f64;
    let contacts = s.contacts.max(1) as f64;
    let repeat = if s.edges.is_empty() {
        0.0
    } else {
        s.edges.iter().filter(|e| window.edges[**e as usize].contacts >= 2).count() as f64 / s.edges.len() as f64
    };
    let span = (window.end_ms - window.start_ms).max(1) as f64;
    vec![
        context.graph_score,
        (context.seed_clients as f64 / total).min(1.0),
        (context.seed_clients as f64).ln_1p(),
        total.ln_1p(),
        (s.contacts as f64 / total).ln_1p(),
        regularity,
        ((s.bytes_up as f64 + s.bytes_down as f64) / contacts).ln_1p(),
        ((s.packets_up as f64 + s.packets_down as f64) / contacts).ln_1p(),
        s.failed as f64 / contacts,
        ((s.last_ms - s.first_ms).max(0) as f64 / span).min(1.0),
        f64::from(u8::from(common_service_port(s.key.protocol, s.key.port))),
        (s.duration_ms as f64 / contacts / 1000.0).ln_1p(),
        (s.bytes_down as f64 / (s.bytes_up as f64 + 1.0)).ln_1p(),
        context.age_hours.min(24.0 * 30.0).ln_1p(),
        repeat,
    ]
}
