//! A synthetic ISP's flow export, with the truth about every C&C server, bot and victim.
//!
//! Subscribers behave like households: DNS to the ISP's resolvers, NTP polls at fixed intervals,
//! web sites by popularity, CDNs, video, games, P2P, and IoT devices that heartbeat to their
//! vendor's cloud. Some IoT subscribers are bots in one or more botnets. A botnet's bots keep in
//! touch with its C&C server (a persistent connection exported once per active timeout, or short
//! polls), retry when it is down, download the bot from a download server when they join, scan
//! for more victims, and flood DDoS victims on command. C&C servers move to new addresses every
//! few days (the first botnet exactly halfway through, so trackers can be tested), and one
//! botnet appears only later. Every address is inside 127.0.0.0/8; subscribers are in
//! 127.16.0.0/12.

use std::net::Ipv4Addr;

use botscope_flow::{Flow, protocol};
use botscope_net::packet::Addr;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::LabError;
use crate::fleet::Rng;

/// What to generate.
#[derive(Debug, Clone)]
pub struct FlowsSpec {
    /// The seed.
    pub seed: u64,
    /// Subscriber lines.
    pub subscribers: usize,
    /// Days of traffic.
    pub days: u32,
    /// Botnets.
    pub botnets: usize,
    /// Start, seconds since the epoch (a UTC midnight keeps windows aligned).
    pub start: i64,
    /// Share of subscribers that are bots.
    pub infected_share: f64,
}

/// The subscriber prefix of the synthetic ISP.
pub const SUBSCRIBER_PREFIX: &str = "127.16.0.0/12";

const HOUR_MS: i64 = 3_600_000;

/// One line of the truth file.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FlowTruth {
    /// The ISP's subscriber prefixes.
    Subscribers {
        /// CIDR prefixes.
        prefixes: Vec<String>,
    },
    /// A C&C server during one period of its botnet.
    Cnc {
        /// Address.
        ip: Ipv4Addr,
        /// Port.
        port: u16,
        /// Transport.
        protocol: &'static str,
        /// Botnet name.
        botnet: String,
        /// Malware family.
        family: &'static str,
        /// First moment bots used it.
        from: DateTime<Utc>,
        /// When bots moved away (exclusive).
        until: DateTime<Utc>,
        /// Periods it did not answer.
        down: Vec<[DateTime<Utc>; 2]>,
    },
    /// An infected subscriber.
    Bot {
        /// Address.
        ip: Ipv4Addr,
        /// Botnets it is in.
        botnets: Vec<String>,
        /// When it joined its first botnet.
        infected_at: DateTime<Utc>,
    },
    /// A DDoS victim.
    Victim {
        /// Address.
        ip: Ipv4Addr,
        /// Attacked port.
        port: u16,
        /// Transport of the flood.
        protocol: &'static str,
        /// Attacking botnets.
        botnets: Vec<String>,
        /// Start of the first attack.
        first: DateTime<Utc>,
        /// End of the last attack.
        last: DateTime<Utc>,
        /// Whether it is also a popular web site (so benign clients use it too).
        popular: bool,
    },
    /// A malware download server.
    Download {
        /// Address.
        ip: Ipv4Addr,
        /// Port.
        port: u16,
        /// Botnet.
        botnet: String,
    },
}

/// Totals printed after generation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FlowsSummary {
    /// Subscriber lines.
    pub subscribers: usize,
    /// Infected subscribers.
    pub bots: usize,
    /// Bots in more than one botnet.
    pub multi_botnet_bots: usize,
    /// Botnets.
    pub botnets: usize,
    /// C&C (address, port, period) entries.
    pub cnc_servers: usize,
    /// DDoS victims.
    pub victims: usize,
    /// Flow records written.
    pub flows: u64,
    /// Hours of traffic.
    pub hours: u32,
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn v4(a: [u8; 4]) -> Addr {
    Addr::v4(u32::from_be_bytes(a))
}

struct CncPeriod {
    ip: Ipv4Addr,
    port: u16,
    from: i64,
    until: i64,
    down: Vec<(i64, i64)>,
}

#[derive(Clone, Copy)]
enum Style {
    /// One persistent connection, exported once per active timeout (seconds).
    Persistent(i64),
    /// A short connection every period (seconds), with jitter; `true` when each check-in is a TLS
    /// exchange (a handshake with certificates and a small request: hundreds of bytes per packet,
    /// as Torii's on 443) rather than a few small packets.
    Poll(i64, bool),
    /// No C&C: bots find each other over a DHT (Hajime, Mozi), through the public bootstrap
    /// routers and a pool of peers outside the ISP.
    Peer,
}

struct Attack {
    victim: usize,
    from: i64,
    until: i64,
    share: f64,
    /// An HTTP flood (requests the site answers) rather than a one-way flood, on web ports.
    http: bool,
}

struct Botnet {
    index: usize,
    name: String,
    family: &'static str,
    style: Style,
    start: i64,
    members: Vec<(usize, i64)>,
    cnc: Vec<CncPeriod>,
    download: Ipv4Addr,
    attacks: Vec<Attack>,
}

struct Victim {
    ip: Ipv4Addr,
    port: u16,
    protocol: u8,
    botnets: Vec<usize>,
    popular: bool,
}

struct Subscriber {
    ip: Addr,
    activity: f64,
    ntp: Option<(usize, i64, i64)>,
    cloud: Option<(usize, i64, i64)>,
    /// The cloud session is one persistent connection (MQTT) rather than periodic polls.
    cloud_persistent: bool,
    /// Uses the public resolver rather than the ISP's.
    public_dns: bool,
    video: bool,
    gaming: Option<usize>,
    p2p: bool,
    bot: bool,
}

const RESOLVERS: [[u8; 4]; 2] = [[127, 53, 0, 1], [127, 53, 0, 2]];
const NTP_SERVERS: usize = 4;
const CDNS: usize = 40;
const WEB_SITES: usize = 3000;
const VIDEO: usize = 12;
const GAME_SERVERS: usize = 20;
const CLOUDS: usize = 8;
const CNC_PORTS: &[u16] = &[23, 6667, 1312, 666, 5555, 9506, 3778, 48101, 8080, 1791, 443];
const FAMILIES: &[&str] = &["mirai", "gafgyt", "mirai", "tsunami", "mozi", "mirai"];
/// The public resolver some households, and Mirai-like bots looking up their C&C, use.
const PUBLIC_RESOLVER: [u8; 4] = [127, 8, 8, 8];
/// DHT bootstrap routers (UDP 6881) that BitTorrent clients and P2P bots start from.
const DHT_BOOTSTRAP: usize = 3;
/// Peers outside the ISP in a P2P botnet's pool.
const BOT_PEERS: usize = 300;

/// Half the vendor clouds speak MQTT over TLS, half HTTPS (long polling, WebSockets).
fn cloud_port(cloud: usize) -> u16 {
    if cloud.is_multiple_of(2) { 8883 } else { 443 }
}

fn dht_bootstrap(i: usize) -> Addr {
    v4([127, 109, 0, 1 + i as u8])
}

fn bot_peer(botnet: usize, i: usize) -> (Addr, u16) {
    (v4([127, 108, botnet as u8, 1 + (i % 250) as u8]), 10_000 + ((i * 7_919 + botnet * 131) % 50_000) as u16)
}

fn web_site(i: usize) -> Addr {
    v4([127, 101 + (i / 60_000) as u8, (i / 250 % 240) as u8, (i % 250 + 1) as u8])
}

/// A Zipf-like pick: low indexes are far more popular.
fn zipf(rng: &mut Rng, n: usize) -> usize {
    let u = rng.unit();
    ((n as f64).powf(u) - 1.0).floor().clamp(0.0, n as f64 - 1.0) as usize
}

fn ephemeral(rng: &mut Rng) -> u16 {
    32_768 + rng.below(28_000) as u16
}

/// Emits flows; `push` adds a connection's forward flow and, when the server answers, its reply.
struct Out {
    flows: Vec<Flow>,
}

impl Out {
    #[allow(clippy::too_many_arguments)]
    fn connection(
        &mut self,
        client: Addr,
        client_port: u16,
        server: Addr,
        server_port: u16,
        proto: u8,
        start: i64,
        duration_ms: i64,
        up: (u64, u64),
        down: Option<(u64, u64)>,
    ) {
        let flags = if proto == protocol::TCP { if down.is_some() { 0x1b } else { 0x02 } } else { 0 };
        self.flows.push(Flow {
            start_ms: start,
            end_ms: start + duration_ms,
            src: client,
            dst: server,
            src_port: client_port,
            dst_port: server_port,
            protocol: proto,
            tcp_flags: flags,
            packets: up.0.max(1),
            bytes: up.1.max(40),
            reply_packets: 0,
            reply_bytes: 0,
        });
        if let Some((packets, bytes)) = down {
            self.flows.push(Flow {
                start_ms: start + duration_ms.min(20),
                end_ms: start + duration_ms,
                src: server,
                dst: client,
                src_port: server_port,
                dst_port: client_port,
                protocol: proto,
                tcp_flags: if proto == protocol::TCP { 0x1b } else { 0 },
                packets: packets.max(1),
                bytes: bytes.max(40),
                reply_packets: 0,
                reply_bytes: 0,
            });
        }
    }
}

/// Generates the ISP's flows hour by hour, handing each hour's flows (sorted by start) to `sink`.
/// `bot_pool` lists addresses to use for bots first (the lab fleet's vulnerable devices).
pub fn generate(
    spec: &FlowsSpec,
    bot_pool: &[Ipv4Addr],
    sink: &mut dyn FnMut(&[Flow]) -> std::io::Result<()>,
) -> Result<(Vec<FlowTruth>, FlowsSummary), LabError> {
    if spec.subscribers < 20 || spec.subscribers > 200_000 {
        return Err(LabError::Invalid("--subscribers must be between 20 and 200000".into()));
    }
    if spec.days == 0 || spec.days > 60 {
        return Err(LabError::Invalid("--days must be between 1 and 60".into()));
    }
    if spec.botnets == 0 || spec.botnets > 50 {
        return Err(LabError::Invalid("--botnets must be between 1 and 50".into()));
    }
    if !(0.0..=0.5).contains(&spec.infected_share) {
        return Err(LabError::Invalid("the infected share must be between 0 and 0.5".into()));
    }
    let mut rng = Rng(spec.seed ^ 0xf10e_5eed);
    let start = spec.start * 1000;
    let hours = spec.days * 24;
    let end = start + i64::from(hours) * HOUR_MS;

    // Subscribers: bots first from the pool, the rest spread over 127.16.0.0/12.
    let bot_count = ((spec.subscribers as f64 * spec.infected_share).round() as usize).max(spec.botnets * 6);
    let mut taken = std::collections::HashSet::new();
    let mut subscribers = Vec::with_capacity(spec.subscribers);
    let in_prefix = |ip: Ipv4Addr| (u32::from(ip) & 0xfff0_0000) == 0x7f10_0000;
    for ip in bot_pool.iter().copied().filter(|ip| in_prefix(*ip)).take(bot_count) {
        if taken.insert(u32::from(ip)) {
            subscribers.push(Addr::v4(u32::from(ip)));
        }
    }
    while subscribers.len() < spec.subscribers {
        let bits = 0x7f10_0000 | (rng.below(1 << 20) as u32);
        if matches!(bits & 0xff, 0 | 255) || !taken.insert(bits) {
            continue;
        }
        subscribers.push(Addr::v4(bits));
    }
    let subs: Vec<Subscriber> = subscribers
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            let bot = i < bot_count;
            let iot = bot || rng.chance(0.3);
            Subscriber {
                ip: *ip,
                activity: rng.between(0.3, 1.6),
                ntp: rng.chance(0.6).then(|| {
                    let period = [64, 128, 256, 512, 1024][rng.below(5) as usize];
                    (rng.below(NTP_SERVERS as u64) as usize, period, rng.below(period as u64 * 1000) as i64)
                }),
                cloud: (iot && (!bot || rng.chance(0.6))).then(|| {
                    let period = [30, 60, 120, 300][rng.below(4) as usize];
                    (rng.below(CLOUDS as u64) as usize, period, rng.below(period as u64 * 1000) as i64)
                }),
                cloud_persistent: rng.chance(0.5),
                public_dns: rng.chance(0.1),
                video: !bot && rng.chance(0.25),
                gaming: (!bot && rng.chance(0.06)).then(|| rng.below(GAME_SERVERS as u64) as usize),
                p2p: !bot && rng.chance(0.05),
                bot,
            }
        })
        .collect();

    // Victims: DDoS targets, some of them popular web sites.
    let victim_count = spec.botnets * 6;
    let mut victims: Vec<Victim> = (0..victim_count)
        .map(|i| {
            let popular = rng.chance(0.3);
            let ip = if popular {
                let site = web_site(zipf(&mut rng, 200));
                Ipv4Addr::from(site.as_v4().unwrap_or(0))
            } else {
                Ipv4Addr::new(127, 80, (i / 200) as u8, (i % 200 + 1) as u8)
            };
            let (port, proto) = match rng.below(4) {
                0 => (53, protocol::UDP),
                1 => (443, protocol::TCP),
                2 => (80, protocol::TCP),
                _ => (rng.below(60_000) as u16 + 1024, protocol::UDP),
            };
            let port = if popular { 443 } else { port };
            let proto = if popular { protocol::TCP } else { proto };
            Victim { ip, port, protocol: proto, botnets: Vec::new(), popular }
        })
        .collect();

    // Botnets, their C&C periods, members and attacks.
    let mut botnets: Vec<Botnet> = Vec::with_capacity(spec.botnets);
    for b in 0..spec.botnets {
        let late = spec.botnets >= 3 && b == spec.botnets - 1;
        let bn_start = if late { start + i64::from(hours / 4) * HOUR_MS } else { start };
        let family = FAMILIES[b % FAMILIES.len()];
        let style = if family == "mozi" {
            Style::Peer
        } else if rng.chance(0.5) {
            // The export interval: routers' active timeouts, up to Zeek's hourly logging.
            Style::Persistent([60, 120, 300, 1800, 3600][rng.below(5) as usize])
        } else {
            Style::Poll([30, 60, 120, 300, 600, 1800, 3600][rng.below(7) as usize], rng.chance(0.5))
        };
        let mut cnc = Vec::new();
        let mut from = bn_start;
        let mut k = 0u8;
        while from < end && !matches!(style, Style::Peer) {
            let until = if b == 0 && k == 0 {
                start + (end - start) / 2
            } else {
                from + rng.between(36.0, 96.0) as i64 * HOUR_MS
            }
            .min(end);
            let mut down = Vec::new();
            if rng.chance(0.5) && until - from > 6 * HOUR_MS {
                let d_from = from + rng.below(((until - from) / 2) as u64) as i64 + HOUR_MS;
                down.push((d_from, (d_from + rng.between(1.0, 4.0) as i64 * HOUR_MS).min(until)));
            }
            cnc.push(CncPeriod {
                ip: Ipv4Addr::new(127, 200, b as u8, k + 1),
                port: CNC_PORTS[rng.below(CNC_PORTS.len() as u64) as usize],
                from,
                until,
                down,
            });
            from = until;
            k = k.saturating_add(1);
        }
        botnets.push(Botnet {
            index: b,
            name: format!("lab-botnet-{}", b + 1),
            family,
            style,
            start: bn_start,
            members: Vec::new(),
            cnc,
            download: Ipv4Addr::new(127, 210, b as u8, 1),
            attacks: Vec::new(),
        });
    }
    // Bots: each in one botnet, one in ten in two; most join at the botnet's start.
    let mut multi = 0;
    for bot in 0..bot_count {
        let first = bot % spec.botnets;
        let mut member_of = vec![first];
        if spec.botnets > 1 && rng.chance(0.1) {
            member_of.push((first + 1 + rng.below(spec.botnets as u64 - 1) as usize) % spec.botnets);
            multi += 1;
        }
        for b in member_of {
            let bn = &mut botnets[b];
            let join = if rng.chance(0.8) {
                bn.start + rng.below(600_000) as i64
            } else {
                bn.start + rng.below((end - bn.start) as u64) as i64
            };
            bn.members.push((bot, join));
        }
    }
    for (b, bn) in botnets.iter_mut().enumerate() {
        let count = (rng.between(2.0, 6.0) * f64::from(spec.days)) as usize;
        for _ in 0..count {
            let victim =
                if rng.chance(0.3) { rng.below(victim_count as u64) as usize } else { b * 6 + rng.below(6) as usize };
            let from = bn.start + rng.below((end - bn.start - 15 * 60_000).max(1) as u64) as i64;
            let until = from + rng.between(2.0, 12.0) as i64 * 60_000;
            let share = rng.between(0.7, 1.0);
            bn.attacks.push(Attack { victim, from, until, share, http: rng.chance(0.5) });
            if !victims[victim].botnets.contains(&b) {
                victims[victim].botnets.push(b);
            }
        }
    }

    let mut summary = FlowsSummary {
        subscribers: subs.len(),
        bots: bot_count,
        multi_botnet_bots: multi,
        botnets: botnets.len(),
        cnc_servers: botnets.iter().map(|b| b.cnc.len()).sum(),
        victims: victims.iter().filter(|v| !v.botnets.is_empty()).count(),
        flows: 0,
        hours,
    };

    let mut out = Out { flows: Vec::new() };
    for hour in 0..hours {
        let h0 = start + i64::from(hour) * HOUR_MS;
        let h1 = h0 + HOUR_MS;
        let hour_of_day = ((h0 / HOUR_MS) % 24) as f64;
        // Evening peak at 12 UTC (21:00 in Japan), trough at night.
        let diurnal = 0.55 + 0.45 * ((hour_of_day - 12.0) / 24.0 * std::f64::consts::TAU).cos();
        let mut r = Rng(spec.seed ^ (u64::from(hour) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        out.flows.clear();
        for s in &subs {
            benign_hour(s, h0, diurnal, &mut r, &mut out);
        }
        for bn in &botnets {
            botnet_hour(bn, &subs, &victims, h0, h1, &mut r, &mut out);
        }
        out.flows.retain(|f| f.start_ms < end);
        out.flows.sort_by_key(|f| (f.start_ms, f.src, f.dst, f.src_port, f.dst_port));
        summary.flows += out.flows.len() as u64;
        sink(&out.flows).map_err(|e| LabError::Invalid(format!("writing flows: {e}")))?;
    }

    let mut truth = vec![FlowTruth::Subscribers { prefixes: vec![SUBSCRIBER_PREFIX.to_string()] }];
    for bn in &botnets {
        for p in &bn.cnc {
            truth.push(FlowTruth::Cnc {
                ip: p.ip,
                port: p.port,
                protocol: "tcp",
                botnet: bn.name.clone(),
                family: bn.family,
                from: time(p.from),
                until: time(p.until),
                down: p.down.iter().map(|(a, b)| [time(*a), time(*b)]).collect(),
            });
        }
        truth.push(FlowTruth::Download { ip: bn.download, port: 80, botnet: bn.name.clone() });
    }
    let mut bots: Vec<(usize, Vec<String>, i64)> = Vec::new();
    for bn in &botnets {
        for (member, join) in &bn.members {
            match bots.iter_mut().find(|(m, _, _)| m == member) {
                Some(entry) => {
                    entry.1.push(bn.name.clone());
                    entry.2 = entry.2.min(*join);
                }
                None => bots.push((*member, vec![bn.name.clone()], *join)),
            }
        }
    }
    bots.sort_by_key(|(m, _, _)| *m);
    for (member, names, join) in bots {
        truth.push(FlowTruth::Bot {
            ip: Ipv4Addr::from(subs[member].ip.as_v4().unwrap_or(0)),
            botnets: names,
            infected_at: time(join),
        });
    }
    for (i, v) in victims.iter().enumerate() {
        let attacks: Vec<&Attack> = botnets.iter().flat_map(|b| &b.attacks).filter(|a| a.victim == i).collect();
        if attacks.is_empty() {
            continue;
        }
        truth.push(FlowTruth::Victim {
            ip: v.ip,
            port: v.port,
            protocol: if v.protocol == protocol::UDP { "udp" } else { "tcp" },
            botnets: v.botnets.iter().map(|b| botnets[*b].name.clone()).collect(),
            first: time(attacks.iter().map(|a| a.from).min().unwrap_or(0)),
            last: time(attacks.iter().map(|a| a.until).max().unwrap_or(0)),
            popular: v.popular,
        });
    }
    Ok((truth, summary))
}

/// Times in `[h0, h0 + 1 h)` of a periodic activity with `phase_ms`.
fn periodic(h0: i64, period_s: i64, phase_ms: i64) -> impl Iterator<Item = i64> {
    let period = period_s * 1000;
    let first = h0 + (phase_ms - h0).rem_euclid(period);
    (0..).map(move |k| first + k * period).take_while(move |t| *t < h0 + HOUR_MS)
}

fn benign_hour(s: &Subscriber, h0: i64, diurnal: f64, r: &mut Rng, out: &mut Out) {
    let level = s.activity * diurnal;
    let at = |r: &mut Rng| h0 + r.below(HOUR_MS as u64) as i64;
    for _ in 0..(level * r.between(2.0, 14.0)) as usize {
        let resolver = if s.public_dns { v4(PUBLIC_RESOLVER) } else { v4(RESOLVERS[r.below(2) as usize]) };
        let t = at(r);
        out.connection(
            s.ip,
            ephemeral(r),
            resolver,
            53,
            protocol::UDP,
            t,
            5,
            (1, 60 + r.below(30)),
            Some((1, 90 + r.below(200))),
        );
    }
    // An infected device shares its household's address (NAT): the household still browses.
    let browsing = if s.bot { 0.6 } else { 1.0 };
    {
        for _ in 0..(level * browsing * r.between(0.0, 9.0)) as usize {
            let site = web_site(zipf(r, WEB_SITES));
            let port = if r.chance(0.8) { 443 } else { 80 };
            let t = at(r);
            let packets = 6 + r.below(40);
            out.connection(
                s.ip,
                ephemeral(r),
                site,
                port,
                protocol::TCP,
                t,
                r.below(30_000) as i64 + 200,
                (packets, packets * (60 + r.below(300))),
                Some((packets + r.below(60), (packets + 10) * (400 + r.below(1000)))),
            );
        }
        for _ in 0..(level * browsing * r.between(0.0, 4.0)) as usize {
            let cdn = v4([127, 100, 0, 1 + r.below(CDNS as u64) as u8]);
            let t = at(r);
            let packets = 20 + r.below(400);
            out.connection(
                s.ip,
                ephemeral(r),
                cdn,
                443,
                protocol::TCP,
                t,
                r.below(60_000) as i64 + 500,
                (packets, packets * 80),
                Some((packets * 2, packets * 2 * 1300)),
            );
        }
    }
    if let Some((server, period, phase)) = s.ntp {
        for t in periodic(h0, period, phase) {
            let jitter = r.below(400) as i64;
            out.connection(
                s.ip,
                123,
                v4([127, 123, 0, 1 + server as u8]),
                123,
                protocol::UDP,
                t + jitter,
                2,
                (1, 76),
                Some((1, 76)),
            );
        }
    }
    if let Some((cloud, period, phase)) = s.cloud
        && s.cloud_persistent
    {
        // MQTT over TLS: one session, a ping each keep-alive, exported every five minutes.
        let pings = (300 / period) as u64;
        for t in periodic(h0, 300, phase % 300_000) {
            out.connection(
                s.ip,
                40_000 + (phase % 20_000) as u16,
                v4([127, 105, 0, 1 + cloud as u8]),
                cloud_port(cloud),
                protocol::TCP,
                t,
                299_000,
                (2 * pings + 1, pings * 150 + r.below(100)),
                Some((pings + 1, pings * 70 + r.below(100))),
            );
        }
    } else if let Some((cloud, period, phase)) = s.cloud {
        for t in periodic(h0, period, phase) {
            let jitter = r.below(period as u64 * 20) as i64;
            out.connection(
                s.ip,
                ephemeral(r),
                v4([127, 105, 0, 1 + cloud as u8]),
                cloud_port(cloud),
                protocol::TCP,
                t + jitter,
                150,
                (4, 300 + r.below(200)),
                Some((3, 250 + r.below(100))),
            );
        }
    }
    if s.video && r.chance(0.5 * diurnal) {
        let server = v4([127, 103, 0, 1 + r.below(VIDEO as u64) as u8]);
        let t = at(r);
        out.connection(
            s.ip,
            ephemeral(r),
            server,
            443,
            protocol::TCP,
            t,
            20 * 60_000,
            (4000, 4000 * 60),
            Some((80_000, 80_000 * 1400)),
        );
    }
    if let Some(game) = s.gaming
        && r.chance(0.5 * diurnal)
    {
        let server = v4([127, 104, 0, 1 + game as u8]);
        let port = ephemeral(r);
        for t in periodic(h0, 300, 0) {
            out.connection(
                s.ip,
                port,
                server,
                27_015,
                protocol::UDP,
                t,
                299_000,
                (9000, 9000 * 90),
                Some((9000, 9000 * 140)),
            );
        }
    }
    if s.p2p {
        for b in 0..DHT_BOOTSTRAP {
            if r.chance(0.5 * diurnal) {
                out.connection(
                    s.ip,
                    51_413,
                    dht_bootstrap(b),
                    6881,
                    protocol::UDP,
                    at(r),
                    80,
                    (1, 110),
                    Some((1, 330)),
                );
            }
        }
        for _ in 0..(r.between(5.0, 25.0) * diurnal) as usize {
            let peer = v4([127, 106 + r.below(2) as u8, r.below(256) as u8, 1 + r.below(254) as u8]);
            let t = at(r);
            out.connection(
                s.ip,
                51_413,
                peer,
                ephemeral(r),
                protocol::UDP,
                t,
                1000,
                (3, 300),
                r.chance(0.7).then_some((3, 900)),
            );
        }
    }
}

fn botnet_hour(bn: &Botnet, subs: &[Subscriber], victims: &[Victim], h0: i64, h1: i64, r: &mut Rng, out: &mut Out) {
    for (member, join) in &bn.members {
        if *join >= h1 {
            continue;
        }
        let bot = subs[*member].ip;
        let phase = (*member as i64 * 7_919) % 600_000;
        if (h0..h1).contains(join) {
            // The infection: fetch the bot binary once.
            let size = 40_000 + r.below(200_000);
            out.connection(
                bot,
                ephemeral(r),
                v4(bn.download.octets()),
                80,
                protocol::TCP,
                *join,
                800,
                (20, 1400),
                Some((size / 1400 + 1, size)),
            );
        }
        let live_from = (*join).max(h0);
        if matches!(bn.style, Style::Peer) {
            peer_hour(bn, bot, live_from, h1, r, out);
        }
        let times: Vec<i64> = match bn.style {
            Style::Persistent(timeout) => periodic(h0, timeout, phase).collect(),
            Style::Poll(period, _) => periodic(h0, period, phase).collect(),
            Style::Peer => Vec::new(),
        };
        let mut connected_to = None;
        for t in times {
            let t = match bn.style {
                Style::Poll(period, _) => t + r.below((period * 100) as u64) as i64,
                _ => t,
            };
            if t < live_from || t >= h1 {
                continue;
            }
            let Some(cnc) = bn.cnc.iter().find(|p| (p.from..p.until).contains(&t)) else {
                continue;
            };
            let server = v4(cnc.ip.octets());
            // Mirai looks its C&C name up at a public resolver before it connects.
            if bn.family == "mirai" && connected_to != Some(server) {
                connected_to = Some(server);
                if t == live_from || t - cnc.from < HOUR_MS || r.chance(0.2) {
                    out.connection(
                        bot,
                        ephemeral(r),
                        v4(PUBLIC_RESOLVER),
                        53,
                        protocol::UDP,
                        t.saturating_sub(300),
                        30,
                        (1, 70 + r.below(10)),
                        Some((1, 86 + r.below(40))),
                    );
                }
            }
            let down = cnc.down.iter().any(|(a, b)| (*a..*b).contains(&t));
            if down {
                // Connection attempts that nobody answers.
                out.connection(
                    bot,
                    ephemeral(r),
                    server,
                    cnc.port,
                    protocol::TCP,
                    t,
                    3_000,
                    (1 + r.below(3), 60 + r.below(120)),
                    None,
                );
                continue;
            }
            match bn.style {
                Style::Persistent(timeout) => {
                    // A keep-alive a minute, whatever the export interval.
                    let packets = 2 + timeout as u64 / 60 + r.below(5);
                    out.connection(
                        bot,
                        40_000 + (*member % 20_000) as u16,
                        server,
                        cnc.port,
                        protocol::TCP,
                        t,
                        timeout * 1000 - 1,
                        (packets, packets * (52 + r.below(20))),
                        Some((packets, packets * (52 + r.below(30)))),
                    );
                }
                Style::Poll(_, tls) => {
                    // Drawn in the order they always were, so that a seed gives the same ISP.
                    let tls_packets = tls.then(|| (8 + r.below(6), 7 + r.below(6)));
                    let port = ephemeral(r);
                    let (duration, up, down) = match tls_packets {
                        Some((up, down)) => (
                            300 + r.below(2500) as i64,
                            (up, up * (150 + r.below(250))),
                            (down, down * (300 + r.below(900))),
                        ),
                        None => (
                            200 + r.below(1500) as i64,
                            (4 + r.below(4), 240 + r.below(300)),
                            (3 + r.below(4), 200 + r.below(600)),
                        ),
                    };
                    out.connection(bot, port, server, cnc.port, protocol::TCP, t, duration, up, Some(down));
                }
                Style::Peer => {}
            }
        }
        // Scanning for more devices: SYNs to random addresses, the odd one answering.
        for _ in 0..(10 + r.below(40)) {
            let target = v4([127, 64 + r.below(64) as u8, r.below(256) as u8, 1 + r.below(254) as u8]);
            let port = if r.chance(0.9) { 23 } else { 2323 };
            let t = live_from + r.below((h1 - live_from).max(1) as u64) as i64;
            let answered = r.chance(0.03);
            out.connection(
                bot,
                ephemeral(r),
                target,
                port,
                protocol::TCP,
                t,
                if answered { 4000 } else { 0 },
                (1 + u64::from(answered) * 8, 60 + u64::from(answered) * 400),
                answered.then_some((8, 500)),
            );
        }
    }
    for attack in &bn.attacks {
        if attack.until <= h0 || attack.from >= h1 {
            continue;
        }
        let victim = &victims[attack.victim];
        let target = v4(victim.ip.octets());
        for (i, (member, join)) in bn.members.iter().enumerate() {
            if *join > attack.from || (i as f64 / bn.members.len() as f64) > attack.share {
                continue;
            }
            let bot = subs[*member].ip;
            // The command arrives over the C&C connection: a little more data from the server.
            let command_at = attack.from - 2_000;
            if (h0..h1).contains(&command_at)
                && let Some(cnc) = bn.cnc.iter().find(|p| (p.from..p.until).contains(&command_at))
            {
                out.connection(
                    bot,
                    ephemeral(r),
                    v4(cnc.ip.octets()),
                    cnc.port,
                    protocol::TCP,
                    command_at,
                    300,
                    (3, 180),
                    Some((3, 180 + r.below(300))),
                );
            }
            // Exporters cut floods into one flow per minute (active timeout).
            let http_flood = victim.protocol == protocol::TCP && matches!(victim.port, 80 | 443) && attack.http;
            let mut t = attack.from.max(h0);
            while t < attack.until.min(h1) {
                let sport = ephemeral(r);
                if http_flood {
                    // Requests over many connections, which the site answers.
                    for _ in 0..(3 + r.below(8)) {
                        let requests = 5 + r.below(30);
                        out.connection(
                            bot,
                            ephemeral(r),
                            target,
                            victim.port,
                            protocol::TCP,
                            t + r.below(50_000) as i64,
                            1_000 + r.below(8_000) as i64,
                            (requests * 3, requests * 450),
                            Some((requests * 3, requests * (300 + r.below(3_000)))),
                        );
                    }
                } else {
                    let packets = 2_000 + r.below(15_000);
                    let size = if victim.protocol == protocol::UDP { 540 } else { 60 };
                    out.connection(
                        bot,
                        sport,
                        target,
                        victim.port,
                        victim.protocol,
                        t,
                        59_999,
                        (packets, packets * size),
                        None,
                    );
                }
                t += 60_000;
            }
        }
    }
}

/// A P2P bot's hour: the DHT bootstrap routers now and then, and many small UDP exchanges with
/// peers from the botnet's pool (and some strangers), a few of them transfers.
fn peer_hour(bn: &Botnet, bot: Addr, from: i64, h1: i64, r: &mut Rng, out: &mut Out) {
    if from >= h1 {
        return;
    }
    let at = |r: &mut Rng| from + r.below((h1 - from) as u64) as i64;
    for b in 0..DHT_BOOTSTRAP {
        if r.chance(0.6) {
            out.connection(
                bot,
                ephemeral(r),
                dht_bootstrap(b),
                6881,
                protocol::UDP,
                at(r),
                90,
                (1, 110),
                Some((1, 330)),
            );
        }
    }
    for _ in 0..(20 + r.below(60)) {
        let (peer, port) = if r.chance(0.75) {
            bot_peer(bn.index, r.below(BOT_PEERS as u64) as usize)
        } else {
            (v4([127, 106 + r.below(2) as u8, r.below(256) as u8, 1 + r.below(254) as u8]), ephemeral(r))
        };
        let transfer = r.chance(0.05);
        out.connection(
            bot,
            ephemeral(r),
            peer,
            port,
            protocol::UDP,
            at(r),
            if transfer { 6_000 } else { 200 + r.below(1_500) as i64 },
            if transfer { (30, 2_400) } else { (2, 220 + r.below(80)) },
            (transfer || r.chance(0.5)).then_some(if transfer { (50, 60_000) } else { (2, 400) }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(seed: u64) -> FlowsSpec {
        FlowsSpec { seed, subscribers: 120, days: 1, botnets: 3, start: 1_793_577_600, infected_share: 0.1 }
    }

    #[test]
    fn the_same_seed_gives_the_same_flows_and_hours_are_sorted() {
        let run = |seed| {
            let mut all = Vec::new();
            let (truth, summary) = generate(&spec(seed), &[], &mut |hour| {
                assert!(hour.windows(2).all(|w| w[0].start_ms <= w[1].start_ms));
                all.extend_from_slice(hour);
                Ok(())
            })
            .unwrap();
            (all, truth.len(), summary.flows)
        };
        let (a, truth_a, count) = run(5);
        assert_eq!(a.len() as u64, count);
        let (b, truth_b, _) = run(5);
        assert_eq!((a == b, truth_a), (true, truth_b));
        assert_ne!(run(6).0, a);
    }

    #[test]
    fn every_address_is_loopback_and_bots_come_from_the_pool() {
        let pool: Vec<Ipv4Addr> = (1..=30).map(|i| Ipv4Addr::new(127, 17, 0, i)).collect();
        let mut all = Vec::new();
        let (truth, summary) = generate(&spec(1), &pool, &mut |hour| {
            all.extend_from_slice(hour);
            Ok(())
        })
        .unwrap();
        assert!(all.iter().all(|f| f.src.as_v4().is_some_and(|a| a >> 24 == 127) && f.dst.as_v4().is_some_and(|a| a >> 24 == 127)));
        let bots: Vec<Ipv4Addr> =
            truth.iter().filter_map(|t| if let FlowTruth::Bot { ip, .. } = t { Some(*ip) } else { None }).collect();
        assert_eq!(bots.len(), summary.bots);
        assert!(bots.iter().all(|b| pool.contains(b)), "the fleet's vulnerable devices are the bots");
        // The first botnet moves its C&C halfway.
        let first: Vec<&FlowTruth> =
            truth.iter().filter(|t| matches!(t, FlowTruth::Cnc { botnet, .. } if botnet == "lab-botnet-1")).collect();
        assert!(first.len() >= 2);
    }
}
