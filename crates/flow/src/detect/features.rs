//! Per-server behaviour features: what the learned model reads.
//!
//! Each is cheap to compute from the window and says something the field found to separate C&C
//! servers from their look-alikes (BotFinder, Disclosure, Segugio): bots keep coming back at
//! regular intervals with small flows (heartbeats, commands), while a DDoS victim gets floods
//! in a burst, a download server one fetch per infection, resolvers, NTP and CDNs everybody, an
//! IoT cloud infected and clean households alike, and a P2P botnet's peers many small UDP
//! exchanges among many peers.
//!
//! Every feature is relative or bounded (shares, rates, packet sizes, what kind of service a port
//! is), never an absolute count that grows with the size of the ISP. None uses bytes per flow (a
//! Torii session logged whole by Zeek holds hundreds of kilobytes, the same session cut by a
//! 30-minute active timeout a few); the two that still count records (contacts per client, mean
//! duration) are trained on sessions exported at intervals from a minute to an hour, and a session
//! that stays open counts as a returning client however it is logged. A model trained on one
//! network can thus be applied to another. Knowledge of infrastructure enters as the
//! service-class features: the model weighs them against behaviour, so a C&C on 443 still ranks
//! by what it does.

use crate::flow::protocol;
use crate::window::Window;

/// Feature names, in vector order. The model file must list the same.
pub const NAMES: &[&str] = &[
    "graph_score",
    "seed_share",
    "client_reach",
    "log_contacts_per_client_hour",
    "regularity",
    "log_bytes_per_packet",
    "log_packet_rate",
    "failed_share",
    "active_share",
    "infrastructure_service",
    "web_service",
    "iot_cloud_service",
    "p2p_service",
    "log_mean_duration_s",
    "exchange_asymmetry",
    "returning_share",
    "log_client_udp_fanout",
    "others_returning_share",
];

/// The sign each feature's weight must have, from what is known of C&C servers and their
/// look-alikes (0: either). Training leaves out a feature whose weight comes out the other way:
/// on the lab's separable classes a fit can give, say, fast flows a positive weight because floods
/// are already told apart by something else, and on other traffic that weight would lift a
/// flooded web site above a C&C.
pub(crate) const EXPECTED_SIGN: [i8; 18] = [
    1,  // graph_score: bots' servers have bot clienteles
    1,  // seed_share: more known bots among the clients never lowers the odds
    -1, // client_reach: a C&C reaches its bots, not the households
    0,  // log_contacts_per_client_hour
    1,  // regularity: heartbeats and polls (BotFinder)
    0,  // log_bytes_per_packet
    -1, // log_packet_rate: floods and downloads are fast, a C&C session mostly idle
    0,  // failed_share: a C&C down, or a scan target
    0,  // active_share
    -1, // infrastructure_service
    0,  // web_service: Torii and others use 443
    -1, // iot_cloud_service
    -1, // p2p_service
    0,  // log_mean_duration_s
    -1, // exchange_asymmetry: a C&C talks both ways; downloads and floods mostly one way
    1,  // returning_share: bots come back
    -1, // log_client_udp_fanout: P2P peers
    1,  // others_returning_share: a botnet's unknown bots come back too; a site's visitors churn
];

/// Features that are shares of something (bounded in 0..1 by construction) and so left unclipped
/// by a version 3 model. Clipping is a guard against values far outside training, and a share
/// cannot run away; clipped, the graph score's narrow spread (most servers with a known bot in
/// the lab are scan targets that bot alone reached, at 1.0) put every score under about 0.36 at
/// the same -4 sd, so a C&C with one known bot among five clients read like a web site with one
/// among fifty. The service-class flags stay clipped: a port alone says at most 4 sd.
pub(crate) const SHARE: [bool; 18] = [
    true,  // graph_score
    true,  // seed_share
    true,  // client_reach
    false, // log_contacts_per_client_hour
    true,  // regularity
    false, // log_bytes_per_packet
    false, // log_packet_rate
    true,  // failed_share
    true,  // active_share
    false, // infrastructure_service
    false, // web_service
    false, // iot_cloud_service
    false, // p2p_service
    false, // log_mean_duration_s
    false, // exchange_asymmetry
    true,  // returning_share
    false, // log_client_udp_fanout
    true,  // others_returning_share
];

/// Where the graph score sits in the vector.
pub(crate) const GRAPH_SCORE: usize = 0;
/// Where the regularity sits in the vector.
pub(crate) const REGULARITY: usize = 4;

/// What kind of well-known service a server port is. Households reach these whether infected or
/// not; a C&C may sit on one of them (Torii uses 443), which is why they are features for the
/// model to weigh and not exclusions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServiceClass {
    /// DNS, DNS over TLS, NTP, DHCP, mDNS, SSDP.
    Infrastructure,
    /// HTTP and HTTPS (and QUIC), mail submission and retrieval.
    Web,
    /// MQTT, CoAP, XMPP and the like, which IoT devices keep open to their vendor's cloud.
    IotCloud,
    /// BitTorrent and eDonkey ports (DHT bootstrap routers, trackers, peers).
    PeerToPeer,
    /// Anything else.
    Other,
}

/// The service class of a server port.
pub(crate) fn service_class(proto: u8, port: u16) -> ServiceClass {
    match (proto, port) {
        (protocol::UDP | protocol::TCP, 53 | 853 | 123 | 67 | 68 | 5353 | 1900) => ServiceClass::Infrastructure,
        (protocol::TCP, 80 | 443 | 8080 | 8443 | 25 | 465 | 587 | 993 | 995) | (protocol::UDP, 443) => {
            ServiceClass::Web
        }
        (protocol::TCP, 1883 | 8883 | 5222 | 5223 | 8886 | 5671) | (protocol::UDP, 5683 | 5684) => {
            ServiceClass::IotCloud
        }
        (protocol::UDP | protocol::TCP, 6881..=6889 | 51413 | 4662 | 4672) => ServiceClass::PeerToPeer,
        _ => ServiceClass::Other,
    }
}

/// What the window says about all clients, computed once per window.
pub(crate) struct WindowContext {
    /// Distinct clients seen.
    pub(crate) clients: u64,
    /// Per client: distinct UDP servers on unprivileged ports it contacted (P2P fan-out).
    pub(crate) udp_fanout: Vec<u32>,
}

impl WindowContext {
    pub(crate) fn new(window: &Window) -> Self {
        let mut udp_fanout = vec![0u32; window.clients.len()];
        for edge in &window.edges {
            let key = &window.servers[edge.server as usize].key;
            if key.protocol == protocol::UDP && key.port >= 1024 {
                udp_fanout[edge.client as usize] = udp_fanout[edge.client as usize].saturating_add(1);
            }
        }
        WindowContext { clients: window.clients.len() as u64, udp_fanout }
    }
}

/// What the features are computed from, besides the window.
pub(crate) struct Context {
    pub(crate) graph_score: f64,
    pub(crate) seed_clients: u64,
    pub(crate) total_clients: u64,
    /// Seed clients that keep coming back (see `Detector::returning_clients`).
    pub(crate) returning_seed_clients: u64,
    /// Clients that are no known bot, counted on a server with a recent seed client.
    pub(crate) other_clients: u64,
    /// Of those, the ones that keep coming back.
    pub(crate) returning_other_clients: u64,
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

/// The median UDP fan-out of a UDP server's clients: a P2P botnet's peers are reached by clients
/// that reach hundreds of other UDP peers; a C&C's or resolver's clients reach few.
fn client_udp_fanout(window: &Window, server: usize, whole: &WindowContext) -> f64 {
    let s = &window.servers[server];
    if s.key.protocol != protocol::UDP || s.edges.is_empty() {
        return 0.0;
    }
    let mut fanouts: Vec<u32> =
        s.edges.iter().map(|e| whole.udp_fanout[window.edges[*e as usize].client as usize]).collect();
    fanouts.sort_unstable();
    f64::from(fanouts[fanouts.len() / 2])
}

/// The mean packet size in log form, or NaN (unknown, which the model reads as average) when the
/// records carry no packet counts (Zeek logs some connections, state OTH, with none) or counts no
/// IP packet can have: fewer than 20 bytes, an IPv4 header, per packet.
fn bytes_per_packet(bytes: u64, packets: u64) -> f64 {
    if packets == 0 || bytes < packets.saturating_mul(20) { f64::NAN } else { (bytes as f64 / packets as f64).ln_1p() }
}

/// How one-sided the exchange is, or NaN (unknown) when the records carry no byte counts at all:
/// zero bytes each way is no evidence of a two-way conversation.
fn exchange_asymmetry(up: u64, down: u64) -> f64 {
    if up == 0 && down == 0 { f64::NAN } else { ((down as f64 + 1.0) / (up as f64 + 1.0)).ln().abs() }
}

pub(crate) fn vector(
    window: &Window,
    server: usize,
    context: &Context,
    whole: &WindowContext,
    regularity: f64,
) -> Vec<f64> {
    let s = &window.servers[server];
    let total = context.total_clients.max(1) as f64;
    let contacts = s.contacts.max(1) as f64;
    let span = (window.end_ms - window.start_ms).max(1) as f64;
    // A flow shorter than a second counts as one: single-packet exchanges are not floods.
    let busy_seconds = (s.duration_ms as f64 / 1000.0).max(contacts);
    let class = service_class(s.key.protocol, s.key.port);
    let is = |wanted: ServiceClass| f64::from(u8::from(class == wanted));
    vec![
        context.graph_score,
        (context.seed_clients as f64 / total).min(1.0),
        (total / whole.clients.max(1) as f64).min(1.0),
        // Per hour, so that a daily window reads like the hourly ones a model is trained on.
        (s.contacts as f64 / total / (span / 3_600_000.0)).ln_1p(),
        regularity,
        bytes_per_packet(s.bytes_up.saturating_add(s.bytes_down), s.packets_up.saturating_add(s.packets_down)),
        (s.packets_up as f64 / busy_seconds).ln_1p(),
        s.failed as f64 / contacts,
        ((s.last_ms - s.first_ms).max(0) as f64 / span).min(1.0),
        is(ServiceClass::Infrastructure),
        is(ServiceClass::Web),
        is(ServiceClass::IotCloud),
        is(ServiceClass::PeerToPeer),
        (s.duration_ms as f64 / contacts / 1000.0).ln_1p(),
        exchange_asymmetry(s.bytes_up, s.bytes_down),
        if context.seed_clients == 0 {
            0.0
        } else {
            (context.returning_seed_clients as f64 / context.seed_clients as f64).min(1.0)
        },
        client_udp_fanout(window, server, whole).ln_1p(),
        // No other client: unknown (read as average), not a churning clientele.
        if context.other_clients == 0 {
            f64::NAN
        } else {
            (context.returning_other_clients as f64 / context.other_clients as f64).min(1.0)
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_positions_match_the_names() {
        assert_eq!(EXPECTED_SIGN.len(), NAMES.len());
        assert_eq!(SHARE.len(), NAMES.len());
        for (name, share) in NAMES.iter().zip(SHARE) {
            assert_eq!(share, name.ends_with("_share") || ["graph_score", "client_reach", "regularity"].contains(name));
        }
        assert_eq!(NAMES[GRAPH_SCORE], "graph_score");
        assert_eq!(NAMES[REGULARITY], "regularity");
    }

    #[test]
    fn well_known_ports_have_their_class_and_odd_ports_none() {
        assert_eq!(service_class(protocol::UDP, 123), ServiceClass::Infrastructure);
        assert_eq!(service_class(protocol::UDP, 53), ServiceClass::Infrastructure);
        assert_eq!(service_class(protocol::TCP, 443), ServiceClass::Web);
        assert_eq!(service_class(protocol::TCP, 8883), ServiceClass::IotCloud);
        assert_eq!(service_class(protocol::UDP, 6881), ServiceClass::PeerToPeer);
        assert_eq!(service_class(protocol::TCP, 23), ServiceClass::Other);
        assert_eq!(service_class(protocol::TCP, 6667), ServiceClass::Other);
        // The class is the protocol's: UDP 8883 is no MQTT.
        assert_eq!(service_class(protocol::UDP, 8883), ServiceClass::Other);
    }
}
