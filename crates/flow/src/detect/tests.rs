//! Each hard-negative class against a C&C in one window, scored by the shipped model.
//!
//! The window is built here flow by flow (NetFlow-style, one record per direction), with its own
//! numbers, not by either traffic generator: it checks that each class is told apart by the
//! behaviour the features describe, and that none of them saturates.

use botscope_net::packet::Addr;

use super::{DetectConfig, Detector, Model};
use crate::flow::{Flow, protocol};
use crate::seeds::Seeds;
use crate::window::{Subscribers, Window, WindowConfig};

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_793_577_600_000;

fn client(i: u32) -> Addr {
    Addr::v4(0xc612_0000 + i) // 198.18.0.0/15
}

fn server(a: u8, b: u8) -> Addr {
    Addr::v4(u32::from_be_bytes([45, 33, a, b]))
}

struct Builder {
    flows: Vec<Flow>,
    state: u64,
}

impl Builder {
    fn below(&mut self, n: u64) -> u64 {
        self.state = self.state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.state >> 33) % n.max(1)
    }

    #[allow(clippy::too_many_arguments)]
    fn connection(
        &mut self,
        from: Addr,
        to: Addr,
        port: u16,
        proto: u8,
        start: i64,
        duration: i64,
        up: (u64, u64),
        down: Option<(u64, u64)>,
    ) {
        let sport = 32_768 + self.below(20_000) as u16;
        let flags = if proto == protocol::TCP { if down.is_some() { 0x1b } else { 0x02 } } else { 0 };
        let flow = |src, dst, src_port, dst_port, (packets, bytes), tcp_flags| Flow {
            start_ms: start,
            end_ms: start + duration,
            src,
            dst,
            src_port,
            dst_port,
            protocol: proto,
            tcp_flags,
            packets,
            bytes,
            reply_packets: 0,
            reply_bytes: 0,
        };
        self.flows.push(flow(from, to, sport, port, up, flags));
        if let Some(down) = down {
            self.flows.push(flow(to, from, port, sport, down, flags));
        }
    }
}

const CNC_PORT: u16 = 6667;

fn cnc() -> Addr {
    server(1, 1)
}

/// The servers of one window, by class: (address, port, protocol, class).
fn hard_negatives() -> Vec<(Addr, u16, u8, &'static str)> {
    vec![
        (server(2, 1), 80, protocol::TCP, "ddos victim, one-way SYN flood"),
        (server(2, 2), 443, protocol::TCP, "ddos victim, HTTP flood answered"),
        (server(3, 1), 8883, protocol::TCP, "iot cloud, MQTT keep-alives"),
        (Addr::v4(0x0808_0808), 53, protocol::UDP, "public resolver the bots look their C&C up at"),
        (server(4, 1), 123, protocol::UDP, "ntp pool"),
        (server(5, 1), 443, protocol::TCP, "cdn"),
        (server(6, 1), 80, protocol::TCP, "download server"),
        (server(7, 1), 6881, protocol::UDP, "dht bootstrap router"),
        (server(8, 1), 31_337, protocol::UDP, "p2p botnet peer"),
    ]
}

/// 30 bots of a central botnet (15 known), 20 of a P2P botnet (10 known), 300 clean households:
/// one hour of their flows, sorted, and the seeds.
fn flows() -> (Vec<Flow>, Seeds) {
    let mut b = Builder { flows: Vec::new(), state: 11 };
    let bots: Vec<Addr> = (1..=30).map(client).collect();
    let p2p_bots: Vec<Addr> = (31..=50).map(client).collect();
    let households: Vec<Addr> = (100..400).map(client).collect();
    let mut seeds = Seeds::default();
    for bot in bots.iter().step_by(2).chain(p2p_bots.iter().step_by(2)) {
        seeds.insert_bot(*bot);
    }
    let everyone: Vec<Addr> = bots.iter().chain(&p2p_bots).chain(&households).copied().collect();
    for (i, bot) in bots.iter().enumerate() {
        // C&C: one persistent session, a keep-alive a minute, exported every five minutes.
        let phase = i as i64 * 9_000;
        for k in 0..12 {
            b.connection(
                *bot,
                cnc(),
                CNC_PORT,
                protocol::TCP,
                T0 + phase + k * 300_000,
                299_000,
                (11, 700),
                Some((6, 420)),
            );
        }
        b.connection(*bot, Addr::v4(0x0808_0808), 53, protocol::UDP, T0 + phase, 30, (1, 70), Some((1, 90)));
        // The infection: one download.
        if i % 3 == 0 {
            b.connection(*bot, server(6, 1), 80, protocol::TCP, T0 + phase, 1_500, (60, 3_000), Some((120, 160_000)));
        }
        // A five-minute SYN flood, one record per minute, and an HTTP flood the site answers.
        for m in 0..5 {
            let packets = 20_000 + b.below(40_000);
            b.connection(
                *bot,
                server(2, 1),
                80,
                protocol::TCP,
                T0 + 20 * 60_000 + m * 60_000,
                59_999,
                (packets, packets * 60),
                None,
            );
            for _ in 0..4 {
                let n = 5 + b.below(30);
                let at = T0 + 40 * 60_000 + m * 60_000 + b.below(50_000) as i64;
                b.connection(
                    *bot,
                    server(2, 2),
                    443,
                    protocol::TCP,
                    at,
                    3_000,
                    (n * 3, n * 450),
                    Some((n * 3, n * 2_000)),
                );
            }
        }
    }
    for (i, peer) in p2p_bots.iter().enumerate() {
        b.connection(*peer, server(7, 1), 6881, protocol::UDP, T0 + i as i64 * 60_000, 80, (1, 110), Some((1, 330)));
        for _ in 0..150 {
            let other = (8, b.below(200) as u8);
            let port = if other.1 == 1 { 31_337 } else { 10_000 + u16::from(other.1) * 7 };
            let at = T0 + b.below(HOUR as u64) as i64;
            b.connection(*peer, server(other.0, other.1), port, protocol::UDP, at, 300, (2, 240), Some((2, 400)));
        }
    }
    for (i, who) in everyone.iter().enumerate() {
        let phase = (i as i64 * 7_919) % 64_000;
        for k in 0..(HOUR / 64_000) {
            b.connection(*who, server(4, 1), 123, protocol::UDP, T0 + phase + k * 64_000, 20, (1, 76), Some((1, 76)));
        }
        for _ in 0..(3 + b.below(10)) {
            let at = T0 + b.below(HOUR as u64) as i64;
            let packets = 20 + b.below(400);
            b.connection(
                *who,
                server(5, 1),
                443,
                protocol::TCP,
                at,
                20_000,
                (packets, packets * 80),
                Some((packets * 2, packets * 2_600)),
            );
        }
        // A third of the households, infected or not, keep an MQTT session to their camera's cloud.
        if i % 3 == 0 {
            for k in 0..12 {
                b.connection(
                    *who,
                    server(3, 1),
                    8883,
                    protocol::TCP,
                    T0 + phase + k * 300_000,
                    299_000,
                    (11, 800),
                    Some((6, 450)),
                );
            }
        }
        if i % 7 == 0 {
            b.connection(*who, Addr::v4(0x0808_0808), 53, protocol::UDP, T0 + phase, 30, (1, 70), Some((1, 90)));
        }
    }
    b.flows.sort_by_key(|f| f.start_ms);
    (b.flows, seeds)
}

fn window_of<'a>(flows: impl Iterator<Item = &'a Flow>, seeds: &Seeds, config: WindowConfig) -> Window {
    let mut window = Window::new(config, T0, T0 + HOUR);
    for flow in flows {
        window.add(flow, seeds, false);
    }
    window
}

fn isp_window() -> (Window, Seeds) {
    let (flows, seeds) = flows();
    let prefix: ipnet::IpNet = "198.18.0.0/15".parse().unwrap();
    let config = WindowConfig { subscribers: Subscribers::new(&[prefix]), ..WindowConfig::default() };
    (window_of(flows.iter(), &seeds, config), seeds)
}

#[test]
fn each_hard_negative_class_ranks_below_the_cnc_and_none_saturates() {
    let (window, seeds) = isp_window();
    let mut detector =
        Detector::new(Model::shipped().unwrap(), DetectConfig { min_score: 0.0, ..DetectConfig::default() });
    let scored = detector.score(&window, &seeds);
    let score_of =
        |addr: Addr, port: u16| scored.iter().find(|s| s.key.addr == addr && s.key.port == port).map(|s| s.score);
    let cnc = score_of(cnc(), CNC_PORT).expect("the C&C is scored");
    assert!((0.5..1.0).contains(&cnc), "C&C score {cnc}");
    for (addr, port, _, class) in hard_negatives() {
        // A class no known bot reached is not scored at all, which is also right.
        if let Some(score) = score_of(addr, port) {
            assert!(score < cnc, "{class} scored {score}, the C&C {cnc}");
            assert!(score < 0.5, "{class} scored {score}");
        }
    }
    // Every class had known bots among its clients, so each was really put to the model.
    let scored_classes = hard_negatives().iter().filter(|(a, p, _, _)| score_of(*a, *p).is_some()).count();
    assert_eq!(scored_classes, hard_negatives().len());
}

#[test]
fn one_known_bot_still_puts_its_cnc_first() {
    let (flows, _) = flows();
    // Only the first bot is known, and only its flows are seen (one household's capture).
    let bot = client(1);
    let mut seeds = Seeds::default();
    seeds.insert_bot(bot);
    let mine = flows.iter().filter(|f| f.src == bot || f.dst == bot);
    let alone = window_of(mine, &seeds, WindowConfig::default());
    let config = DetectConfig { min_score: 0.0, min_seed_clients: 1, ..DetectConfig::default() };
    let candidates = Detector::new(Model::shipped().unwrap(), config).candidates(&alone, &seeds);
    let first = &candidates[0];
    assert_eq!((Addr::from(first.ip), first.port), (cnc(), CNC_PORT), "{candidates:#?}");
    assert!(candidates.iter().skip(1).all(|c| c.score < first.score), "no tie at the top: {candidates:#?}");
    assert!(first.score < 1.0);
}

/// One server polled by two known bots, each in its own hour: hour `h` holds bot `h`'s poll.
fn slow_poll_window(hour: i64, seeds: &Seeds) -> Window {
    let mut b = Builder { flows: Vec::new(), state: 5 };
    let bot = client(hour as u32 + 1);
    let at = T0 + hour * HOUR + 600_000;
    b.connection(bot, cnc(), 443, protocol::TCP, at, 2_000, (12, 2_400), Some((12, 6_000)));
    let mut window = Window::new(WindowConfig::default(), T0 + hour * HOUR, T0 + (hour + 1) * HOUR);
    for flow in &b.flows {
        window.add(flow, seeds, false);
    }
    window
}

#[test]
fn seed_clients_count_across_windows_within_the_seed_memory_and_not_from_later_ones() {
    let mut seeds = Seeds::default();
    seeds.insert_bot(client(1));
    seeds.insert_bot(client(2));
    let scored_in = |detector: &mut Detector, hour: i64| {
        detector.score(&slow_poll_window(hour, &seeds), &seeds).iter().any(|s| s.key.addr == cnc())
    };
    let config = DetectConfig { min_score: 0.0, ..DetectConfig::default() };
    // Each hour alone has one seed client: with no memory the server is never scored.
    let mut forgetful = Detector::new(Model::shipped().unwrap(), DetectConfig { seed_memory_ms: 0, ..config.clone() });
    assert!(!scored_in(&mut forgetful, 0));
    assert!(!scored_in(&mut forgetful, 1));
    // With the default day of memory, the second hour brings the second known bot.
    let mut detector = Detector::new(Model::shipped().unwrap(), config);
    assert!(!scored_in(&mut detector, 0));
    assert!(scored_in(&mut detector, 1));
    // The first hour scored again (late flows) does not borrow the bot seen only after it.
    assert!(!scored_in(&mut detector, 0));
}

/// A window scored again after later ones kept only each bot's latest sighting, so a bot seen
/// before the window and again after it no longer counted there: the revision dropped the very
/// server it was meant to revise.
#[test]
fn regression_a_revision_kept_counting_a_bot_seen_before_its_window_and_again_after_it() {
    let mut seeds = Seeds::default();
    for bot in 1..=3 {
        seeds.insert_bot(client(bot));
    }
    // Hour h holds bot h+1's poll: bot 1 in hour 0, bot 2 in hour 1, bot 1 again in hour 2.
    let window = |hour: i64, bot: u32| {
        let mut b = Builder { flows: Vec::new(), state: 5 };
        let at = T0 + hour * HOUR + 600_000;
        b.connection(client(bot), cnc(), 443, protocol::TCP, at, 2_000, (12, 2_400), Some((12, 6_000)));
        let mut window = Window::new(WindowConfig::default(), T0 + hour * HOUR, T0 + (hour + 1) * HOUR);
        b.flows.iter().for_each(|f| window.add(f, &seeds, false));
        window
    };
    let mut detector =
        Detector::new(Model::shipped().unwrap(), DetectConfig { min_score: 0.0, ..DetectConfig::default() });
    let scored = |detector: &mut Detector, w: &Window| detector.score(w, &seeds).iter().any(|s| s.key.addr == cnc());
    assert!(!scored(&mut detector, &window(0, 1)));
    let second = window(1, 2);
    assert!(scored(&mut detector, &second), "bots 1 and 2");
    assert!(scored(&mut detector, &window(2, 1)));
    assert!(scored(&mut detector, &second), "scored again after hour 2, hour 1 still has bots 1 and 2");
}

fn rare_cnc() -> Addr {
    server(9, 1)
}

fn zeek_cnc() -> Addr {
    server(9, 2)
}

/// Hour `hour` of an ISP where 30 bots (15 known) check in with a Torii-like C&C over TLS every
/// 70-100 minutes (one contact per bot per window at most), and keep a Mirai-like session to
/// another C&C that Zeek logs once an hour (one record per bot per window, the whole hour long);
/// with the hard negatives of [`flows`] (the central C&C's own flows left out) every hour.
fn rare_contact_hour(hour: i64) -> (Window, Seeds) {
    let (flows, seeds) = flows();
    let shift = hour * HOUR;
    let mut hour_flows: Vec<(Flow, bool)> = flows
        .into_iter()
        .filter(|f| f.src != cnc() && f.dst != cnc())
        .map(|mut f| {
            f.start_ms += shift;
            f.end_ms += shift;
            (f, false)
        })
        .collect();
    let mut b = Builder { flows: Vec::new(), state: 23 };
    for i in 1..=30u32 {
        let bot = client(i);
        let mut at = T0 + (i64::from(i) * 173_000) % HOUR;
        while at < T0 + shift + HOUR {
            if at >= T0 + shift {
                b.connection(bot, rare_cnc(), 443, protocol::TCP, at, 2_000, (12, 2_400), Some((11, 6_200)));
            }
            at += (70 + b.below(31) as i64) * 60_000;
        }
        let start = T0 + shift + i64::from(i) * 1_000;
        let session = Flow {
            start_ms: start,
            end_ms: T0 + shift + HOUR - 1,
            src: bot,
            dst: zeek_cnc(),
            src_port: 40_000 + i as u16,
            dst_port: 23,
            protocol: protocol::TCP,
            tcp_flags: 0x1b,
            packets: 62,
            bytes: 3_400,
            reply_packets: 60,
            reply_bytes: 3_300,
        };
        hour_flows.push((session, true));
    }
    hour_flows.extend(b.flows.into_iter().map(|f| (f, false)));
    hour_flows.sort_by_key(|(f, _)| f.start_ms);
    let prefix: ipnet::IpNet = "198.18.0.0/15".parse().unwrap();
    let config = WindowConfig { subscribers: Subscribers::new(&[prefix]), ..WindowConfig::default() };
    let mut window = Window::new(config, T0 + shift, T0 + shift + HOUR);
    for (flow, initiator_known) in &hour_flows {
        window.add(flow, &seeds, *initiator_known);
    }
    (window, seeds)
}

#[test]
fn rare_check_ins_and_hourly_logged_sessions_rank_above_hard_negatives_once_their_bots_return() {
    let mut detector =
        Detector::new(Model::shipped().unwrap(), DetectConfig { min_score: 0.0, ..DetectConfig::default() });
    let above_hard_negatives = |scored: &[super::ScoredServer], hour: i64, zeek_too: bool| {
        let score_of =
            |addr: Addr, port: u16| scored.iter().find(|s| s.key.addr == addr && s.key.port == port).map(|s| s.score);
        let rare = score_of(rare_cnc(), 443).expect("the rare C&C is scored");
        let zeek = score_of(zeek_cnc(), 23).expect("the hourly-logged C&C is scored");
        let mut checked = vec![("rare check-ins", rare)];
        if zeek_too {
            checked.push(("hourly-logged session", zeek));
        }
        for (name, score) in checked {
            assert!((0.5..1.0).contains(&score), "hour {hour}: {name} scored {score}");
            for (addr, port, _, class) in hard_negatives() {
                if let Some(negative) = score_of(addr, port) {
                    assert!(negative < score, "hour {hour}: {class} scored {negative}, {name} {score}");
                }
            }
        }
        rare
    };
    let mut rare_by_hour = Vec::new();
    for hour in 0..4 {
        let (window, seeds) = rare_contact_hour(hour);
        let scored = detector.score(&window, &seeds);
        // In the second hour the bots that checked in once in the first are back: it asks for
        // the first to be scored again. (Later hours' bots were back already where they began.)
        let again = detector.score_again();
        if hour < 2 {
            assert_eq!(again, (hour == 1).then_some(T0), "hour {hour}");
        }
        if hour == 0 {
            // The first hour has nothing to return from yet.
            let rare = scored.iter().find(|s| s.key.addr == rare_cnc()).map(|s| s.score).unwrap();
            rare_by_hour.push(rare);
            continue;
        }
        rare_by_hour.push(above_hard_negatives(&scored, hour, true));
    }
    assert!(rare_by_hour[0] < rare_by_hour[3], "returning bots raise the score: {rare_by_hour:?}");
    // Scored again with what came after, the first hour counts the bots that came back and
    // ranks the rare C&C above every hard negative too; a revision asks for nothing more.
    let (first, seeds) = rare_contact_hour(0);
    let again = detector.score(&first, &seeds);
    assert_eq!(detector.score_again(), None);
    let rescored = above_hard_negatives(&again, 0, false);
    assert!(rescored > rare_by_hour[0], "{rescored} vs {:?}", rare_by_hour[0]);
    // A later hour scored again still sees the returns before it.
    let (third, seeds) = rare_contact_hour(2);
    let again = detector.score(&third, &seeds);
    let rescored = again.iter().find(|s| s.key.addr == rare_cnc()).map(|s| s.score).unwrap();
    assert!(rescored >= rare_by_hour[2] - 1e-9, "{rescored} vs {:?}", rare_by_hour[2]);
}

/// The returning share of `server` in a window of `flows` (seeds: bot 1), scored after `before`.
fn returning_after(before: &[Flow], flows: &[Flow]) -> f64 {
    let mut seeds = Seeds::default();
    seeds.insert_bot(client(1));
    seeds.insert_bot(client(2));
    let prefix: ipnet::IpNet = "198.18.0.0/15".parse().unwrap();
    let config = WindowConfig { subscribers: Subscribers::new(&[prefix]), ..WindowConfig::default() };
    let mut detector = Detector::new(
        Model::shipped().unwrap(),
        DetectConfig { min_score: 0.0, min_seed_clients: 1, ..DetectConfig::default() },
    );
    let mut first = Window::new(config.clone(), T0, T0 + HOUR);
    before.iter().for_each(|f| first.add(f, &seeds, false));
    detector.score(&first, &seeds);
    let mut second = Window::new(config, T0 + HOUR, T0 + 2 * HOUR);
    flows.iter().for_each(|f| second.add(f, &seeds, false));
    let at = super::FEATURE_NAMES.iter().position(|n| *n == "returning_share").unwrap();
    let scored = detector.score(&second, &seeds);
    scored.iter().find(|s| s.key.addr == rare_cnc()).map(|s| s.features[at]).expect("scored")
}

#[test]
fn only_answers_to_a_bots_own_contacts_make_it_a_returning_client() {
    let mut b = Builder { flows: Vec::new(), state: 3 };
    let once = |b: &mut Builder, at: i64| {
        b.flows.clear();
        b.connection(client(1), rare_cnc(), 443, protocol::TCP, at, 2_000, (12, 2_400), Some((11, 6_200)));
        b.flows.clone()
    };
    let later = once(&mut b, T0 + HOUR + 600_000);
    // Answered an hour before: returning.
    let answered = once(&mut b, T0 + 600_000);
    assert_eq!(returning_after(&answered, &later), 1.0);
    // Contacted but never answered (a SYN nobody acknowledged): not returning.
    b.flows.clear();
    b.connection(client(1), rare_cnc(), 443, protocol::TCP, T0 + 600_000, 3_000, (2, 120), None);
    let unanswered = b.flows.clone();
    assert_eq!(returning_after(&unanswered, &later), 0.0);
    // Only the server's records (it scanned the bot, or reset its connections): not returning.
    let reverse_only: Vec<Flow> = answered.iter().filter(|f| f.src == rare_cnc()).cloned().collect();
    assert_eq!(reverse_only.len(), 1);
    assert_eq!(returning_after(&reverse_only, &later), 0.0);
    // Nothing before, one short contact now: not returning.
    assert_eq!(returning_after(&[], &later), 0.0);
}

fn torii_like_cnc() -> Addr {
    server(9, 3)
}

fn site(k: u8) -> Addr {
    server(10, k)
}

/// Hour `hour` of an ISP where six bots (only bot 1 known) check in with a Torii-like C&C on 443
/// every 50-100 minutes, and bot 1's household also visits five web sites on 443 every hour, each
/// with twenty other visitors: four regulars and sixteen households new that hour.
fn one_known_bot_hour(hour: i64) -> (Window, Seeds) {
    let mut seeds = Seeds::default();
    seeds.insert_bot(client(1));
    let mut b = Builder { flows: Vec::new(), state: 31 + hour as u64 };
    let (start, end) = (T0 + hour * HOUR, T0 + (hour + 1) * HOUR);
    for i in 1..=6u32 {
        let mut at = T0 + (i64::from(i) * 389_000) % HOUR;
        let mut draw = Builder { flows: Vec::new(), state: u64::from(i) };
        while at < end {
            if at >= start {
                b.connection(
                    client(i),
                    torii_like_cnc(),
                    443,
                    protocol::TCP,
                    at,
                    2_000,
                    (12, 2_400),
                    Some((11, 6_200)),
                );
            }
            at += (50 + draw.below(51) as i64) * 60_000;
        }
    }
    for k in 1..=5u8 {
        let regulars = (0..4).map(|j| client(200 + u32::from(k) * 10 + j));
        let fresh = (0..16).map(|j| client(1_000 + hour as u32 * 100 + u32::from(k) * 16 + j));
        for visitor in std::iter::once(client(1)).chain(regulars).chain(fresh) {
            let at = start + b.below(HOUR as u64 - 60_000) as i64;
            let pages = 8 + b.below(40);
            b.connection(
                visitor,
                site(k),
                443,
                protocol::TCP,
                at,
                5_000,
                (pages, pages * 110),
                Some((pages + 9, pages * 900)),
            );
        }
    }
    b.flows.sort_by_key(|f| f.start_ms);
    let prefix: ipnet::IpNet = "198.18.0.0/15".parse().unwrap();
    let config = WindowConfig { subscribers: Subscribers::new(&[prefix]), ..WindowConfig::default() };
    let mut window = Window::new(config, start, end);
    b.flows.iter().for_each(|f| window.add(f, &seeds, false));
    (window, seeds)
}

/// On the independent traffic model, a C&C with one known bot among its clients ranked below web
/// sites that bot's household revisits: both had every known bot returning and a low graph score
/// (clipped at -4 sd, so one known bot in five read like one in fifty). Its other clients tell
/// them apart: a botnet's unknown bots come back, a site's other visitors mostly do not.
#[test]
fn regression_a_cnc_with_one_known_bot_outranks_the_sites_its_household_revisits() {
    let config = DetectConfig { min_score: 0.0, min_seed_clients: 1, ..DetectConfig::default() };
    let mut detector = Detector::new(Model::shipped().unwrap(), config);
    let others = super::FEATURE_NAMES.iter().position(|n| *n == "others_returning_share").unwrap();
    let mut checked = 0;
    for hour in 0..5 {
        let (window, seeds) = one_known_bot_hour(hour);
        let scored = detector.score(&window, &seeds);
        let Some(cnc) = scored.iter().find(|s| s.key.addr == torii_like_cnc()) else {
            continue; // bot 1 did not check in this hour
        };
        let sites: Vec<_> = scored.iter().filter(|s| (1..=5).any(|k| s.key.addr == site(k))).collect();
        assert_eq!(sites.len(), 5, "hour {hour}: every site has bot 1 among its clients");
        if hour == 0 {
            continue; // nothing to return from yet
        }
        checked += 1;
        assert!(cnc.features[others] >= 0.8, "hour {hour}: {:?}", cnc.features);
        for s in &sites {
            assert!(s.features[others] <= 0.3, "hour {hour}: {:?}", s.features);
            assert!(s.score < cnc.score, "hour {hour}: site {:?} {} above the C&C {}", s.key, s.score, cnc.score);
        }
    }
    assert!(checked >= 3, "the C&C was scored in {checked} hours");
}

#[test]
fn other_clients_are_followed_only_on_servers_a_known_bot_reached() {
    // Hour 0: bot 1 and household 300 at the C&C, household 301 at a site no bot visits. Hour 1:
    // the same again. The C&C's other client returns; the site is never scored, and its visitor is
    // not remembered (the memory holds only watched servers' pairs).
    let mut seeds = Seeds::default();
    seeds.insert_bot(client(1));
    let hour = |h: i64| {
        let mut b = Builder { flows: Vec::new(), state: 9 };
        let at = T0 + h * HOUR + 600_000;
        b.connection(client(1), rare_cnc(), 443, protocol::TCP, at, 2_000, (12, 2_400), Some((11, 6_200)));
        b.connection(client(300), rare_cnc(), 443, protocol::TCP, at + 5_000, 2_000, (12, 2_400), Some((11, 6_200)));
        b.connection(client(301), site(1), 443, protocol::TCP, at, 2_000, (12, 2_400), Some((11, 6_200)));
        let mut window = Window::new(WindowConfig::default(), T0 + h * HOUR, T0 + (h + 1) * HOUR);
        b.flows.iter().for_each(|f| window.add(f, &seeds, false));
        window
    };
    let config = DetectConfig { min_score: 0.0, min_seed_clients: 1, ..DetectConfig::default() };
    let mut detector = Detector::new(Model::shipped().unwrap(), config);
    let others = super::FEATURE_NAMES.iter().position(|n| *n == "others_returning_share").unwrap();
    let first = detector.score(&hour(0), &seeds);
    assert_eq!(first.iter().find(|s| s.key.addr == rare_cnc()).unwrap().features[others], 0.0);
    let second = detector.score(&hour(1), &seeds);
    assert_eq!(second.iter().find(|s| s.key.addr == rare_cnc()).unwrap().features[others], 1.0);
    assert!(second.iter().all(|s| s.key.addr != site(1)));
    assert_eq!(detector.others_memory.pairs.len(), 1, "only the C&C's other client is remembered");
    // A server whose only client is the known bot has no other client: unknown, not 0.
    let mut b = Builder { flows: Vec::new(), state: 4 };
    b.connection(client(1), site(2), 443, protocol::TCP, T0 + 2 * HOUR, 2_000, (12, 2_400), Some((11, 6_200)));
    let mut alone = Window::new(WindowConfig::default(), T0 + 2 * HOUR, T0 + 3 * HOUR);
    b.flows.iter().for_each(|f| alone.add(f, &seeds, false));
    let scored = detector.score(&alone, &seeds);
    assert!(scored.iter().find(|s| s.key.addr == site(2)).unwrap().features[others].is_nan());
}

/// A full memory refused each new pair after a pass over all of it: at ISP scale, where busy
/// sites fill the other clients' memory within an hour, every refused pair cost millions of steps.
/// Now a pass that frees too little holds for the rest of the window.
#[test]
fn regression_a_full_answer_memory_is_not_rescanned_for_every_new_pair() {
    let mut memory = super::AnswerMemory::new(100);
    let window = |hour: i64| Window::new(WindowConfig::default(), T0 + hour * HOUR, T0 + (hour + 1) * HOUR);
    let this = window(0);
    for pair in 0..100 {
        memory.remember(pair, &this, HOUR);
    }
    for pair in 100..1_000 {
        memory.remember(pair, &this, HOUR);
    }
    assert_eq!(memory.pairs.len(), 100);
    assert_eq!(memory.refused, 900);
    assert_eq!(memory.full_in, Some(this.end_ms), "one pass, then refused without one");
    // Three windows later the old pairs are no longer recent: one pass frees them.
    let later = window(3);
    memory.remember(5_000, &later, HOUR);
    assert!(memory.pairs.contains_key(&5_000));
    assert_eq!(memory.forgotten_early, 100);
    assert_eq!(memory.pairs.len(), 1);
}
