//! The synthetic darknet: a pcap of what arrives at unused address space, with the truth about
//! every source.
//!
//! The same seed gives the same file. Sources are: Mirai-family bots (SYN with sequence number =
//! destination address; 23 and 2323 about 9:1, or a variant's port list), other IoT scanners
//! without that fingerprint, generic scanners of non-IoT ports, research scanners (ZMap's IP id
//! 54321, masscan's id = destination ^ port ^ sequence), DDoS victims answering spoofed traffic
//! (SYN-ACK, RST, ICMP unreachable with the quoted packet), UDP probes (SSDP, DNS, NTP, SNMP) and
//! stray noise. A few frames are ARP and a few IP packets go to addresses just outside the
//! darknet, as on a real tap. Bots are drawn first from the addresses given (the lab fleet's
//! vulnerable devices), so the survey and the telescope see the same world.
//!
//! Every address is inside 127.0.0.0/8; the file is only ever written, never sent.

use std::io::{self, Write};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Serialize;

use crate::LabError;
use crate::fleet::Rng;

/// What to generate.
#[derive(Debug, Clone)]
pub struct DarknetSpec {
    /// The seed.
    pub seed: u64,
    /// The darknet prefix (inside loopback).
    pub darknet: Ipv4Net,
    /// Hours of traffic.
    pub hours: u32,
    /// Number of sources.
    pub sources: usize,
    /// Start of the capture, seconds since the epoch (a UTC midnight keeps days aligned).
    pub start: u64,
    /// Multiplies every source's packet rate (for benchmarks).
    pub intensity: f64,
    /// How packets are shared among the sources.
    pub shape: Shape,
}

/// How packets are shared among the sources.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Shape {
    /// Every source of a kind within one range of rates, and at least 16 packets (noise aside),
    /// so each carries the evidence its truth names: the world tests check a telescope against.
    #[default]
    Lab,
    /// Heavy-tailed, as a real telescope sees it: packets per source follow a Pareto law (shape
    /// 1.2, at least `2 x --intensity`), so a few scanners send most packets and most bots a
    /// handful an hour. The truth names what each source is; one of a few packets may carry too
    /// little evidence for its tags. For benchmarks.
    HeavyTail,
}

/// The Pareto law of [`Shape::HeavyTail`]: its shape, and the most one source sends.
const HEAVY_TAIL_SHAPE: f64 = 1.2;
const HEAVY_TAIL_MOST: f64 = 5_000_000.0;

/// The blocks sources are drawn from (bots of the lab fleet in 127.16.0.0/12): a darknet must not
/// overlap them, or sources would scan themselves.
const SOURCE_BLOCKS: [&str; 4] = ["127.16.0.0/12", "127.80.0.0/16", "127.99.0.0/16", "127.120.0.0/16"];

/// The source classes, with their share of sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// Mirai-family bot.
    Mirai,
    /// IoT scanner without the fingerprint.
    IotScanner,
    /// Scanner of non-IoT ports.
    Scanner,
    /// ZMap.
    Zmap,
    /// masscan.
    Masscan,
    /// DDoS victim sending SYN-ACKs.
    BackscatterSynAck,
    /// DDoS victim sending RSTs.
    BackscatterRst,
    /// DDoS victim (or its router) sending ICMP unreachable.
    BackscatterIcmp,
    /// UDP prober.
    UdpProbe,
    /// A few stray packets.
    Noise,
}

const MIX: &[(SourceKind, u32)] = &[
    (SourceKind::Mirai, 30),
    (SourceKind::IotScanner, 12),
    (SourceKind::Scanner, 8),
    (SourceKind::Zmap, 5),
    (SourceKind::Masscan, 5),
    (SourceKind::BackscatterSynAck, 7),
    (SourceKind::BackscatterRst, 4),
    (SourceKind::BackscatterIcmp, 4),
    (SourceKind::UdpProbe, 10),
    (SourceKind::Noise, 15),
];

/// One line of the truth file.
#[derive(Debug, Clone, Serialize)]
pub struct SourceTruth {
    /// Source address.
    pub src: Ipv4Addr,
    /// What generated it.
    pub kind: SourceKind,
    /// The classification a correct telescope gives (with the shipped signatures).
    pub class: &'static str,
    /// The tags it should carry.
    pub tags: Vec<&'static str>,
    /// Packets it sent into the darknet.
    pub packets: u64,
    /// Its ports: destination ports probed, or for backscatter the victim's attacked ports.
    pub ports: Vec<u16>,
}

/// What was written.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DarknetSummary {
    /// Frames in the file.
    pub frames: u64,
    /// IP packets to the darknet.
    pub darknet_packets: u64,
    /// IP packets to addresses just outside it.
    pub outside_packets: u64,
    /// ARP frames.
    pub non_ip_frames: u64,
    /// Darknet packets with the Mirai fingerprint.
    pub mirai_packets: u64,
    /// Sources.
    pub sources: usize,
}

struct Source {
    truth: SourceTruth,
    seed: u64,
    /// Active from, to (ns since the epoch).
    from: u64,
    to: u64,
    ttl: u8,
    sport: u16,
    window: u16,
    ports: Vec<u16>,
    /// For UDP probers: which probes.
    udp: Vec<u16>,
}

const MIRAI_VARIANT_PORTS: &[u16] = &[37215, 52869, 5555, 7547, 8080, 81];
const IOT_PORTS: &[u16] = &[23, 2323, 80, 8080, 81, 7547, 5555, 37215, 52869, 8081, 9000];
const OTHER_PORTS: &[u16] = &[445, 22, 3389, 1433, 3306, 5900, 6379, 25];
const RESEARCH_PORTS: &[u16] = &[80, 443, 22, 23, 8080, 3389, 445, 21];
const VICTIM_PORTS: &[u16] = &[80, 443, 53, 25, 8080, 3306, 22];
const UDP_PROBES: &[(u16, &str)] = &[(1900, "ssdp_probe"), (53, "dns_probe"), (123, "ntp_probe"), (161, "snmp_probe")];

impl Rng {
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Plans the sources: who they are, when they are active and what they will send.
/// Packet send times, each with the index of its source.
type Schedule = Vec<(u64, u32)>;

fn plan(spec: &DarknetSpec, bot_pool: &[Ipv4Addr]) -> Result<(Vec<Source>, Schedule), LabError> {
    let loopback: Ipv4Net = "127.0.0.0/8".parse().expect("constant");
    if !loopback.contains(&spec.darknet) {
        return Err(LabError::NotLoopback(spec.darknet.to_string()));
    }
    for block in SOURCE_BLOCKS {
        let block: Ipv4Net = block.parse().expect("constant");
        if block.contains(&spec.darknet.network()) || spec.darknet.contains(&block.network()) {
            return Err(LabError::Invalid(format!(
                "the darknet {} overlaps {block}, where sources are drawn from (127.128.0.0/9 is a large one that does not)",
                spec.darknet
            )));
        }
    }
    if spec.darknet.prefix_len() > 24 {
        return Err(LabError::Invalid("the darknet needs at least a /24 so scans have room".into()));
    }
    if spec.hours == 0 || spec.sources == 0 {
        return Err(LabError::Invalid("--hours and --sources must be at least 1".into()));
    }
    // Non-bot sources share one /16 per kind group; keep well inside it.
    if spec.sources > 100_000 {
        return Err(LabError::Invalid("--sources is at most 100000".into()));
    }
    if spec.start > 4_102_444_800 {
        return Err(LabError::Invalid("--start must be before 2100".into()));
    }
    let mut rng = Rng(spec.seed ^ 0x0da4_c0e7);
    let total_weight: u32 = MIX.iter().map(|(_, w)| w).sum();
    let span_ns = u64::from(spec.hours) * 3_600_000_000_000;
    let start_ns = spec.start * 1_000_000_000;
    let mut sources: Vec<Source> = Vec::with_capacity(spec.sources);
    let mut used = std::collections::HashSet::new();
    let mut pool = bot_pool.iter().copied();
    let fresh = |rng: &mut Rng, base: [u8; 2], used: &mut std::collections::HashSet<Ipv4Addr>| loop {
        let ip = Ipv4Addr::new(base[0], base[1], rng.range(0, 255) as u8, rng.range(1, 254) as u8);
        if used.insert(ip) {
            return ip;
        }
    };
    for i in 0..spec.sources {
        // Deal kinds round-robin by weight so even small runs have every kind.
        let slot = (i as u64 * u64::from(total_weight) / spec.sources.max(1) as u64) as u32;
        let mut acc = 0;
        let kind = MIX
            .iter()
            .find(|(_, w)| {
                acc += w;
                slot < acc
            })
            .map_or(SourceKind::Noise, |(k, _)| *k);
        let src = match kind {
            SourceKind::Mirai | SourceKind::IotScanner => loop {
                match pool.next() {
                    Some(ip) if used.insert(ip) => break ip,
                    Some(_) => continue,
                    None => {
                        let second = 16 + rng.below(16) as u8;
                        break fresh(&mut rng, [127, second], &mut used);
                    }
                }
            },
            SourceKind::Zmap | SourceKind::Masscan => fresh(&mut rng, [127, 99], &mut used),
            SourceKind::BackscatterSynAck | SourceKind::BackscatterRst | SourceKind::BackscatterIcmp => {
                fresh(&mut rng, [127, 80], &mut used)
            }
            SourceKind::Scanner | SourceKind::UdpProbe | SourceKind::Noise => fresh(&mut rng, [127, 120], &mut used),
        };
        let seed = rng.next();
        // Floods are short; scanners run for hours.
        let duration = match kind {
            SourceKind::BackscatterSynAck | SourceKind::BackscatterRst | SourceKind::BackscatterIcmp => {
                rng.range(60, 1_800) * 1_000_000_000
            }
            SourceKind::Noise => rng.range(1, 600) * 1_000_000_000,
            _ => rng.range(span_ns / 8, span_ns).max(1),
        }
        .min(span_ns);
        let from = start_ns + rng.below(span_ns - duration + 1);
        let to = from + duration;
        let base_rate: (u64, u64) = match kind {
            SourceKind::Mirai => (40, 400),
            SourceKind::IotScanner => (20, 200),
            SourceKind::Scanner => (20, 150),
            SourceKind::Zmap | SourceKind::Masscan => (100, 800),
            SourceKind::BackscatterSynAck | SourceKind::BackscatterRst | SourceKind::BackscatterIcmp => (30, 600),
            SourceKind::UdpProbe => (8, 40),
            SourceKind::Noise => (1, 3),
        };
        let scaled = |n: u64| ((n as f64) * spec.intensity.max(0.0)).round() as u64;
        let packets = match (kind, spec.shape) {
            (SourceKind::Noise, _) => rng.range(base_rate.0, base_rate.1),
            // At least 16, so behaviours with destination thresholds always have their evidence.
            (_, Shape::Lab) => scaled(rng.range(base_rate.0, base_rate.1)).max(16),
            (_, Shape::HeavyTail) => {
                // Inverse transform: u in (0, 1], x = minimum * u^(-1/shape).
                let u = (rng.below(1 << 53) + 1) as f64 / (1u64 << 53) as f64;
                let minimum = 2.0 * spec.intensity.max(0.0);
                (minimum * u.powf(-1.0 / HEAVY_TAIL_SHAPE)).min(HEAVY_TAIL_MOST).round().max(1.0) as u64
            }
        };
        let (class, mut tags, ports, udp): (&str, Vec<&str>, Vec<u16>, Vec<u16>) = match kind {
            SourceKind::Mirai => {
                let ports = if rng.below(10) < 3 { vec![rng.pick(MIRAI_VARIANT_PORTS)] } else { vec![23, 2323] };
                ("infected", vec!["mirai", "scanner"], ports, vec![])
            }
            SourceKind::IotScanner => {
                let n = rng.range(1, 3) as usize;
                let mut ports: Vec<u16> = (0..n).map(|_| rng.pick(IOT_PORTS)).collect();
                ports.sort();
                ports.dedup();
                ("infected", vec!["iot_scanner", "scanner"], ports, vec![])
            }
            SourceKind::Scanner => ("unknown", vec!["scanner"], vec![rng.pick(OTHER_PORTS)], vec![]),
            SourceKind::Zmap => ("research_scanner", vec!["scanner", "zmap"], vec![rng.pick(RESEARCH_PORTS)], vec![]),
            SourceKind::Masscan => {
                let mut ports = vec![rng.pick(RESEARCH_PORTS), rng.pick(RESEARCH_PORTS)];
                ports.sort();
                ports.dedup();
                ("research_scanner", vec!["masscan", "scanner"], ports, vec![])
            }
            SourceKind::BackscatterSynAck => {
                ("backscatter", vec!["backscatter_syn_ack"], vec![rng.pick(VICTIM_PORTS)], vec![])
            }
            SourceKind::BackscatterRst => {
                ("backscatter", vec!["backscatter_rst"], vec![rng.pick(VICTIM_PORTS)], vec![])
            }
            SourceKind::BackscatterIcmp => ("backscatter", vec!["backscatter_icmp"], vec![0], vec![]),
            SourceKind::UdpProbe => {
                let first = rng.below(UDP_PROBES.len() as u64) as usize;
                let mut picks = vec![first];
                if rng.below(4) == 0 {
                    picks.push((first + 1) % UDP_PROBES.len());
                }
                let tags = picks.iter().map(|&i| UDP_PROBES[i].1).collect();
                let udp = picks.iter().map(|&i| UDP_PROBES[i].0).collect();
                ("unknown", tags, vec![], udp)
            }
            SourceKind::Noise => ("unknown", vec![], vec![], vec![]),
        };
        tags.sort();
        let ports_truth = if udp.is_empty() { ports.clone() } else { udp.clone() };
        sources.push(Source {
            truth: SourceTruth { src, kind, class, tags, packets, ports: ports_truth },
            seed,
            from,
            to,
            ttl: 64 - rng.range(4, 20) as u8,
            sport: rng.range(1024, 65535) as u16,
            window: rng.range(1024, 65535) as u16,
            ports,
            udp,
        });
    }
    // Packet times: spread each source's packets over its active period.
    let total: u64 = sources.iter().map(|s| s.truth.packets).sum();
    let mut events: Schedule = Vec::with_capacity(total as usize);
    for (index, s) in sources.iter().enumerate() {
        let mut r = Rng(s.seed ^ 0x7173);
        let span = (s.to - s.from).max(1);
        for _ in 0..s.truth.packets {
            events.push((s.from + r.below(span), index as u32));
        }
    }
    events.sort_unstable();
    Ok((sources, events))
}

/// Writes the pcap to `out` and returns the truth and a summary. `bot_pool` lists addresses to
/// use for bots first (the lab fleet's vulnerable devices).
pub fn generate(
    spec: &DarknetSpec,
    bot_pool: &[Ipv4Addr],
    out: &mut impl Write,
) -> Result<(Vec<SourceTruth>, DarknetSummary), LabError> {
    let (mut sources, events) = plan(spec, bot_pool)?;
    let io_error = |e: io::Error| LabError::Invalid(format!("writing the capture: {e}"));
    let mut writer = PcapWriter::new(out).map_err(io_error)?;
    let mut summary = DarknetSummary { sources: sources.len(), ..Default::default() };
    let darknet_base = u32::from(spec.darknet.network());
    let darknet_size = 1u64 << (32 - spec.darknet.prefix_len());
    let outside = u32::from(spec.darknet.broadcast()).wrapping_add(1);
    let mut noise = Rng(spec.seed ^ 0x0b5e);
    let mut frame = Vec::with_capacity(128);
    let mut counters = vec![0u64; sources.len()];
    for (ts, index) in events {
        let s = &mut sources[index as usize];
        let n = counters[index as usize];
        counters[index as usize] += 1;
        let mut r = Rng(s.seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let dst = darknet_base + r.below(darknet_size - 2) as u32 + 1;
        frame.clear();
        build_packet(s, n, dst, &mut r, &mut frame);
        if s.truth.kind == SourceKind::Mirai {
            summary.mirai_packets += 1;
        }
        writer.write(ts, &frame).map_err(io_error)?;
        summary.frames += 1;
        summary.darknet_packets += 1;
        // Now and then, a packet to just outside the darknet and an ARP frame, as a tap sees.
        if noise.below(500) == 0 {
            frame.clear();
            let mut r2 = Rng(noise.next());
            build_packet(s, n, outside, &mut r2, &mut frame);
            writer.write(ts, &frame).map_err(io_error)?;
            summary.frames += 1;
            summary.outside_packets += 1;
        }
        if noise.below(1000) == 0 {
            frame.clear();
            arp(dst, &mut frame);
            writer.write(ts, &frame).map_err(io_error)?;
            summary.frames += 1;
            summary.non_ip_frames += 1;
        }
    }
    writer.flush().map_err(io_error)?;
    Ok((sources.into_iter().map(|s| s.truth).collect(), summary))
}

fn build_packet(s: &Source, n: u64, dst: u32, r: &mut Rng, frame: &mut Vec<u8>) {
    let src = u32::from(s.truth.src);
    let ip_id = r.next() as u16;
    match s.truth.kind {
        SourceKind::Mirai => {
            let port = if s.ports.len() == 1 {
                s.ports[0]
            } else if n.is_multiple_of(10) {
                2323
            } else {
                23
            };
            // Random ids; the sequence number is the destination: the fingerprint.
            tcp(frame, src, dst, s.ttl, ip_id, s.sport, port, dst, 0, 0x02, s.window);
        }
        SourceKind::IotScanner | SourceKind::Scanner => {
            let port = s.ports[(n as usize) % s.ports.len()];
            let seq = avoid_fingerprint(r.next() as u32, dst);
            tcp(
                frame,
                src,
                dst,
                s.ttl,
                avoid_research(ip_id),
                r.range(1024, 65535) as u16,
                port,
                seq,
                0,
                0x02,
                s.window,
            );
        }
        SourceKind::Zmap => {
            let seq = avoid_fingerprint(r.next() as u32, dst);
            tcp(frame, src, dst, 255 - (64 - s.ttl), 54321, s.sport, s.ports[0], seq, 0, 0x02, 65535);
        }
        SourceKind::Masscan => {
            let port = s.ports[(n as usize) % s.ports.len()];
            let seq = avoid_fingerprint(r.next() as u32, dst);
            let id = (dst ^ u32::from(port) ^ seq) as u16;
            tcp(frame, src, dst, 255 - (64 - s.ttl), id, 61000, port, seq, 0, 0x02, 1024);
        }
        SourceKind::BackscatterSynAck => {
            let seq = avoid_fingerprint(r.next() as u32, dst);
            tcp(
                frame,
                src,
                dst,
                s.ttl,
                ip_id,
                s.ports[0],
                r.range(1024, 65535) as u16,
                seq,
                r.next() as u32,
                0x12,
                29200,
            );
        }
        SourceKind::BackscatterRst => {
            tcp(frame, src, dst, s.ttl, ip_id, s.ports[0], r.range(1024, 65535) as u16, 0, r.next() as u32, 0x14, 0);
        }
        SourceKind::BackscatterIcmp => {
            // Port unreachable for a spoofed UDP packet "from" the darknet address to the victim.
            let mut quoted = Vec::with_capacity(28);
            ipv4_header(&mut quoted, dst, src, 50, r.next() as u16, 17, 8 + 20);
            quoted.extend_from_slice(&(r.range(1024, 65535) as u16).to_be_bytes());
            quoted.extend_from_slice(&53u16.to_be_bytes());
            quoted.extend_from_slice(&[0, 20, 0, 0]);
            icmp(frame, src, dst, s.ttl, ip_id, 3, 3, &quoted);
        }
        SourceKind::UdpProbe => {
            let port = s.udp[(n as usize) % s.udp.len()];
            let payload: &[u8] = match port {
                1900 => b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n",
                53 => &[0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0, 1],
                123 => &[0x17, 0, 3, 0x2a, 0, 0, 0, 0],
                _ => &[0x30, 0x26, 2, 1, 1, 4, 6, b'p', b'u', b'b', b'l', b'i', b'c'],
            };
            udp(frame, src, dst, s.ttl, ip_id, r.range(1024, 65535) as u16, port, payload);
        }
        SourceKind::Noise => match n % 3 {
            // A stray ACK, an unsolicited UDP datagram to a high port, an echo request.
            0 => tcp(
                frame,
                src,
                dst,
                s.ttl,
                avoid_research(ip_id),
                443,
                r.range(1024, 65535) as u16,
                r.next() as u32,
                r.next() as u32,
                0x10,
                500,
            ),
            1 => udp(
                frame,
                src,
                dst,
                s.ttl,
                avoid_research(ip_id),
                r.range(1024, 65535) as u16,
                r.range(20000, 60000) as u16,
                b"x",
            ),
            _ => icmp(frame, src, dst, s.ttl, avoid_research(ip_id), 8, 0, &[0, 1, 0, 1, b'p', b'i', b'n', b'g']),
        },
    }
}

fn avoid_fingerprint(seq: u32, dst: u32) -> u32 {
    if seq == dst { seq.wrapping_add(1) } else { seq }
}

fn avoid_research(id: u16) -> u16 {
    if id == 54321 { 54320 } else { id }
}

fn ethernet(frame: &mut Vec<u8>, ethertype: u16) {
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02]);
    frame.extend_from_slice(&ethertype.to_be_bytes());
}

fn ipv4_header(frame: &mut Vec<u8>, src: u32, dst: u32, ttl: u8, id: u16, protocol: u8, payload: usize) {
    let at = frame.len();
    frame.extend_from_slice(&[0x45, 0]);
    frame.extend_from_slice(&((20 + payload) as u16).to_be_bytes());
    frame.extend_from_slice(&id.to_be_bytes());
    frame.extend_from_slice(&[0, 0, ttl, protocol, 0, 0]);
    frame.extend_from_slice(&src.to_be_bytes());
    frame.extend_from_slice(&dst.to_be_bytes());
    let sum = checksum(&frame[at..at + 20], 0);
    frame[at + 10..at + 12].copy_from_slice(&sum.to_be_bytes());
}

fn pseudo(src: u32, dst: u32, protocol: u8, len: usize) -> u32 {
    let mut sum = 0u32;
    for word in [src >> 16, src & 0xffff, dst >> 16, dst & 0xffff, u32::from(protocol), len as u32] {
        sum += word;
    }
    sum
}

#[allow(clippy::too_many_arguments)]
fn tcp(
    frame: &mut Vec<u8>,
    src: u32,
    dst: u32,
    ttl: u8,
    id: u16,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
) {
    ethernet(frame, 0x0800);
    ipv4_header(frame, src, dst, ttl, id, 6, 20);
    let at = frame.len();
    frame.extend_from_slice(&sport.to_be_bytes());
    frame.extend_from_slice(&dport.to_be_bytes());
    frame.extend_from_slice(&seq.to_be_bytes());
    frame.extend_from_slice(&ack.to_be_bytes());
    frame.extend_from_slice(&[0x50, flags]);
    frame.extend_from_slice(&window.to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0]);
    let sum = checksum(&frame[at..], pseudo(src, dst, 6, 20));
    frame[at + 16..at + 18].copy_from_slice(&sum.to_be_bytes());
}

#[allow(clippy::too_many_arguments)]
fn udp(frame: &mut Vec<u8>, src: u32, dst: u32, ttl: u8, id: u16, sport: u16, dport: u16, payload: &[u8]) {
    ethernet(frame, 0x0800);
    ipv4_header(frame, src, dst, ttl, id, 17, 8 + payload.len());
    let at = frame.len();
    frame.extend_from_slice(&sport.to_be_bytes());
    frame.extend_from_slice(&dport.to_be_bytes());
    frame.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    frame.extend_from_slice(&[0, 0]);
    frame.extend_from_slice(payload);
    let sum = checksum(&frame[at..], pseudo(src, dst, 17, 8 + payload.len()));
    frame[at + 6..at + 8].copy_from_slice(&(if sum == 0 { 0xffff } else { sum }).to_be_bytes());
}

#[allow(clippy::too_many_arguments)]
fn icmp(frame: &mut Vec<u8>, src: u32, dst: u32, ttl: u8, id: u16, kind: u8, code: u8, body: &[u8]) {
    ethernet(frame, 0x0800);
    ipv4_header(frame, src, dst, ttl, id, 1, 8 + body.len());
    let at = frame.len();
    frame.extend_from_slice(&[kind, code, 0, 0, 0, 0, 0, 0]);
    frame.extend_from_slice(body);
    let sum = checksum(&frame[at..], 0);
    frame[at + 2..at + 4].copy_from_slice(&sum.to_be_bytes());
}

fn arp(target: u32, frame: &mut Vec<u8>) {
    ethernet(frame, 0x0806);
    frame.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1, 0x02, 0, 0, 0, 0, 0x01, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    frame.extend_from_slice(&target.to_be_bytes());
}

fn checksum(bytes: &[u8], initial: u32) -> u16 {
    let mut sum = initial;
    for pair in bytes.chunks(2) {
        let word = if pair.len() == 2 { u16::from_be_bytes([pair[0], pair[1]]) } else { u16::from(pair[0]) << 8 };
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A little-endian, microsecond pcap writer for Ethernet frames.
pub struct PcapWriter<W: Write> {
    out: io::BufWriter<W>,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header.
    pub fn new(out: W) -> io::Result<Self> {
        let mut out = io::BufWriter::with_capacity(1 << 20, out);
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&[0; 8])?;
        out.write_all(&65_535u32.to_le_bytes())?;
        out.write_all(&1u32.to_le_bytes())?;
        Ok(PcapWriter { out })
    }

    /// Writes one frame stamped `ts_ns`.
    pub fn write(&mut self, ts_ns: u64, frame: &[u8]) -> io::Result<()> {
        let mut header = [0u8; 16];
        header[..4].copy_from_slice(&((ts_ns / 1_000_000_000) as u32).to_le_bytes());
        header[4..8].copy_from_slice(&((ts_ns % 1_000_000_000 / 1_000) as u32).to_le_bytes());
        header[8..12].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        header[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        self.out.write_all(&header)?;
        self.out.write_all(frame)
    }

    /// Flushes buffered frames.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(seed: u64) -> DarknetSpec {
        DarknetSpec {
            seed,
            darknet: "127.224.0.0/16".parse().unwrap(),
            hours: 2,
            sources: 100,
            start: 1_793_577_600,
            intensity: 1.0,
            shape: Shape::Lab,
        }
    }

    #[test]
    fn same_seed_same_bytes() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        generate(&spec(3), &[], &mut a).unwrap();
        generate(&spec(3), &[], &mut b).unwrap();
        assert_eq!(a, b);
        let mut c = Vec::new();
        generate(&spec(4), &[], &mut c).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn every_kind_appears_and_bots_come_from_the_pool_first() {
        let pool: Vec<Ipv4Addr> = (1..=5).map(|i| Ipv4Addr::new(127, 16, 0, i)).collect();
        let (truth, summary) = generate(&spec(1), &pool, &mut Vec::new()).unwrap();
        for (kind, _) in MIX {
            assert!(truth.iter().any(|t| t.kind == *kind), "{kind:?} missing");
        }
        let bots: Vec<_> = truth.iter().filter(|t| t.class == "infected").map(|t| t.src).collect();
        assert!(pool.iter().all(|p| bots.contains(p)));
        assert_eq!(summary.darknet_packets, truth.iter().map(|t| t.packets).sum::<u64>());
        assert!(truth.iter().all(|t| t.src.is_loopback()));
    }

    /// Heavy-tailed: most sources send a handful of packets and a few send most of them, each
    /// packet to its own random address of a large darknet.
    #[test]
    fn a_heavy_tailed_darknet_has_a_few_heavy_sources_and_many_light_ones() {
        let mut s = spec(5);
        s.shape = Shape::HeavyTail;
        s.sources = 5_000;
        s.darknet = "127.128.0.0/9".parse().unwrap();
        let (truth, summary) = generate(&s, &[], &mut std::io::sink()).unwrap();
        let mut packets: Vec<u64> = truth.iter().filter(|t| t.kind != SourceKind::Noise).map(|t| t.packets).collect();
        packets.sort_unstable();
        let total: u64 = packets.iter().sum();
        let median = packets[packets.len() / 2];
        let top = packets.iter().rev().take(packets.len() / 100).sum::<u64>();
        assert!((2..=6).contains(&median), "median {median}");
        assert!(top * 5 > total, "the top 1 % send {top} of {total}");
        assert_eq!(summary.darknet_packets, truth.iter().map(|t| t.packets).sum::<u64>());
    }

    /// A darknet over the blocks sources come from would have them scan themselves.
    #[test]
    fn a_darknet_over_the_sources_is_refused() {
        for darknet in ["127.0.0.0/8", "127.16.0.0/16", "127.120.0.0/24"] {
            let mut s = spec(1);
            s.darknet = darknet.parse().unwrap();
            let refused = generate(&s, &[], &mut Vec::new());
            assert!(matches!(&refused, Err(LabError::Invalid(m)) if m.contains("overlaps")), "{darknet}: {refused:?}");
        }
    }

    #[test]
    fn a_darknet_outside_loopback_is_refused() {
        let mut s = spec(1);
        s.darknet = "192.0.2.0/24".parse().unwrap();
        assert!(matches!(generate(&s, &[], &mut Vec::new()), Err(LabError::NotLoopback(_))));
    }
}
