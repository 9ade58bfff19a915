//! NetFlow v9 and IPFIX: template-described records.
//!
//! The two share information element numbers for everything the analyser reads, so one record
//! decoder serves both; only the headers, set ids and template layouts differ. Templates are kept
//! per (exporter, version, observation domain or source id, template id), bounded in number and
//! size so an exporter cannot exhaust memory with templates.

use std::net::SocketAddr;

use botscope_net::packet::Addr;
use rustc_hash::FxHashMap;

use super::be::{u16_at, u32_at, uint};
use super::{DecodeError, Decoder, Skip};
use crate::flow::{Flow, protocol, time_in_range};

/// Templates held at most, over all exporters; further ones are refused and counted.
pub const MAX_TEMPLATES: usize = 16_384;
/// Fields in one template at most (real templates have a few dozen).
const MAX_FIELDS: usize = 256;
/// IPFIX's marker for a variable-length field (RFC 7011 section 7), also sent in NetFlow v9.
const VARIABLE: u16 = 65_535;
/// Seconds from 1900 (NTP) to 1970 (Unix).
const NTP_UNIX_OFFSET: i64 = 2_208_988_800;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Field {
    id: u16,
    enterprise: u32,
    len: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Template {
    fields: Vec<Field>,
    /// The smallest record: fixed fields plus one length octet per variable field.
    min_len: usize,
    options: bool,
}

type Key = (SocketAddr, u8, u32, u16);
type Stream = (SocketAddr, u8, u32);

/// What a stream's options data said.
#[derive(Debug, Clone, Copy, Default)]
struct StreamInfo {
    sampling: u64,
    boot_ms: Option<i64>,
    active_timeout_s: Option<u64>,
    idle_timeout_s: Option<u64>,
}

#[derive(Default)]
pub(super) struct Templates {
    map: FxHashMap<Key, Template>,
    streams: FxHashMap<Stream, StreamInfo>,
}

impl Templates {
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// The flow timeouts each exporter announced in options data (the longest per address).
    pub(super) fn timeouts(&self) -> std::collections::BTreeMap<std::net::IpAddr, super::Timeouts> {
        let mut by_exporter: std::collections::BTreeMap<std::net::IpAddr, super::Timeouts> = Default::default();
        for ((exporter, _, _), info) in &self.streams {
            if info.active_timeout_s.is_none() && info.idle_timeout_s.is_none() {
                continue;
            }
            let entry = by_exporter.entry(exporter.ip()).or_default();
            entry.active_s = entry.active_s.max(info.active_timeout_s);
            entry.idle_s = entry.idle_s.max(info.idle_timeout_s);
        }
        by_exporter
    }
}

/// The message-level facts a record needs to place its timestamps.
#[derive(Clone, Copy)]
struct Clock {
    export_ms: i64,
    /// NetFlow v9 only: the exporter's uptime at export.
    uptime_ms: Option<u32>,
}

pub(super) fn decode_v9(
    decoder: &mut Decoder,
    exporter: SocketAddr,
    d: &[u8],
    out: &mut Vec<Flow>,
) -> Result<(), DecodeError> {
    const HEADER: usize = 20;
    if d.len() < HEADER {
        return Err(DecodeError::TooShort(d.len()));
    }
    let uptime = u32_at(d, 4).unwrap_or(0);
    // Whole seconds of 32 bits: at most 2^42 ms, in range.
    let export_ms = i64::from(u32_at(d, 8).unwrap_or(0)) * 1000;
    let sequence = u32_at(d, 12).unwrap_or(0);
    let source_id = u32_at(d, 16).unwrap_or(0);
    // v9 counts export packets, so every datagram advances the sequence by one.
    decoder.sequence(exporter, 9, u64::from(source_id), sequence, 1);
    let clock = Clock { export_ms, uptime_ms: Some(uptime) };
    let stream = (exporter, 9, source_id);
    walk_sets(decoder, stream, &d[HEADER..], clock, out, |id| match id {
        0 => SetKind::Template,
        1 => SetKind::OptionsTemplate,
        2..=255 => SetKind::Reserved,
        _ => SetKind::Data,
    })
    .map(|_| ())
}

pub(super) fn decode_ipfix(
    decoder: &mut Decoder,
    exporter: SocketAddr,
    d: &[u8],
    out: &mut Vec<Flow>,
) -> Result<(), DecodeError> {
    const HEADER: usize = 16;
    if d.len() < HEADER {
        return Err(DecodeError::TooShort(d.len()));
    }
    let length = usize::from(u16_at(d, 2).unwrap_or(0));
    if length < HEADER {
        return Err(DecodeError::BadHeader("IPFIX"));
    }
    let export_ms = i64::from(u32_at(d, 4).unwrap_or(0)) * 1000;
    let sequence = u32_at(d, 8).unwrap_or(0);
    let domain = u32_at(d, 12).unwrap_or(0);
    let clock = Clock { export_ms, uptime_ms: None };
    let stream = (exporter, 10, domain);
    let body = &d[HEADER..length.min(d.len())];
    let walked = walk_sets(decoder, stream, body, clock, out, |id| match id {
        2 => SetKind::Template,
        3 => SetKind::OptionsTemplate,
        0..=255 => SetKind::Reserved,
        _ => SetKind::Data,
    });
    // IPFIX counts data records, so the sequence can only be followed when every set was read.
    match &walked {
        Ok(Walked { records, complete: true }) => {
            // A 64 KiB message holds far fewer than 2^32 records.
            let advance = u32::try_from(*records).unwrap_or(u32::MAX);
            decoder.sequence(exporter, 10, u64::from(domain), sequence, advance)
        }
        _ => {
            decoder.sequences.remove(&(exporter, 10, u64::from(domain)));
        }
    }
    walked?;
    if length > d.len() {
        return Err(DecodeError::BadHeader("IPFIX"));
    }
    Ok(())
}

enum SetKind {
    Template,
    OptionsTemplate,
    Reserved,
    Data,
}

struct Walked {
    /// Data records read (flows and options).
    records: usize,
    /// False when a data set was skipped for want of its template.
    complete: bool,
}

fn walk_sets(
    decoder: &mut Decoder,
    stream: Stream,
    mut body: &[u8],
    clock: Clock,
    out: &mut Vec<Flow>,
    kind_of: impl Fn(u16) -> SetKind,
) -> Result<Walked, DecodeError> {
    let ipfix = stream.1 == 10;
    let mut walked = Walked { records: 0, complete: true };
    while body.len() >= 4 {
        let id = u16_at(body, 0).unwrap_or(0);
        let len = usize::from(u16_at(body, 2).unwrap_or(0));
        if len < 4 || len > body.len() {
            return Err(DecodeError::BadHeader(if ipfix { "IPFIX set" } else { "NetFlow v9 flowset" }));
        }
        let content = &body[4..len];
        body = &body[len..];
        match kind_of(id) {
            SetKind::Template => read_templates(decoder, stream, content, false),
            SetKind::OptionsTemplate => read_templates(decoder, stream, content, true),
            SetKind::Reserved => {}
            SetKind::Data => match decoder.templates.map.get(&(stream.0, stream.1, stream.2, id)) {
                Some(template) => {
                    let template = template.clone();
                    walked.records += read_data(decoder, stream, &template, content, clock, out);
                }
                None => {
                    decoder.stats.unknown_template_sets += 1;
                    walked.complete = false;
                }
            },
        }
    }
    Ok(walked)
}

fn read_templates(decoder: &mut Decoder, stream: Stream, mut content: &[u8], options: bool) {
    let ipfix = stream.1 == 10;
    // Each template: id, then (v9) field count or options lengths, (IPFIX) field count and for
    // options the scope count; padding at the end is shorter than a template header.
    while content.len() >= 4 {
        let id = u16_at(content, 0).unwrap_or(0);
        let (field_count, mut at) = if options && !ipfix {
            let scope_len = usize::from(u16_at(content, 2).unwrap_or(0));
            let option_len = usize::from(u16_at(content, 4).unwrap_or(0));
            ((scope_len + option_len) / 4, 6)
        } else if options {
            (usize::from(u16_at(content, 2).unwrap_or(0)), 6)
        } else {
            (usize::from(u16_at(content, 2).unwrap_or(0)), 4)
        };
        if at > content.len() {
            decoder.stats.malformed += 1;
            return;
        }
        if field_count == 0 {
            // IPFIX withdrawal: forget the template (id 2 or 3 withdraws them all).
            if ipfix {
                if id == 2 || id == 3 {
                    decoder.templates.map.retain(|k, t| {
                        !(k.0 == stream.0 && k.1 == stream.1 && k.2 == stream.2 && t.options == (id == 3))
                    });
                } else {
                    decoder.templates.map.remove(&(stream.0, stream.1, stream.2, id));
                }
                content = &content[at..];
                continue;
            }
            decoder.stats.templates_refused += 1;
            return;
        }
        let mut fields = Vec::with_capacity(field_count.min(MAX_FIELDS));
        let mut truncated = false;
        for _ in 0..field_count {
            // `at` stays within the set (every read below is bounds-checked), so adding a few
            // bytes to it cannot overflow; reads past the end stop the template.
            let (Some(raw_id), Some(len)) = (u16_at(content, at), u16_at(content, at + 2)) else {
                truncated = true;
                break;
            };
            at += 4;
            // Only IPFIX has enterprise numbers; in NetFlow v9 the top bit is part of the id.
            let (id, enterprise) = if ipfix && raw_id & 0x8000 != 0 {
                let Some(number) = u32_at(content, at) else {
                    truncated = true;
                    break;
                };
                at += 4;
                (raw_id & 0x7fff, number)
            } else {
                (raw_id, 0)
            };
            if fields.len() < MAX_FIELDS + 1 {
                fields.push(Field { id, enterprise, len });
            }
        }
        if truncated {
            decoder.stats.malformed += 1;
            return;
        }
        content = &content[at.min(content.len())..];
        // At most 257 fields of at most 65535 bytes: far from overflowing.
        let min_len: usize = fields.iter().map(|f| if f.len == VARIABLE { 1 } else { usize::from(f.len) }).sum();
        if id < 256 || fields.len() > MAX_FIELDS || min_len == 0 {
            decoder.stats.templates_refused += 1;
            continue;
        }
        let key = (stream.0, stream.1, stream.2, id);
        let template = Template { fields, min_len, options };
        let templates = &mut decoder.templates.map;
        let full = templates.len() >= MAX_TEMPLATES;
        match templates.get_mut(&key) {
            // Exporters repeat their templates every few datagrams; a repeat changes nothing.
            Some(existing) if *existing == template => {}
            Some(existing) => {
                decoder.stats.template_changes += 1;
                decoder.stats.templates += 1;
                *existing = template;
            }
            None if full => decoder.stats.templates_refused += 1,
            None => {
                decoder.stats.templates += 1;
                templates.insert(key, template);
            }
        }
    }
}

/// What one data record said about a flow.
#[derive(Default)]
struct Fields {
    src: Option<Addr>,
    dst: Option<Addr>,
    src_port: u16,
    dst_port: u16,
    icmp: u16,
    protocol: u8,
    tcp_flags: u8,
    packets: Option<u64>,
    bytes: Option<u64>,
    total_packets: Option<u64>,
    total_bytes: Option<u64>,
    /// A bidirectional record's counts of the other direction: the initiator's and responder's
    /// (Cisco ASA's NSEL), or RFC 5103's reverse elements (YAF).
    initiator_packets: Option<u64>,
    initiator_bytes: Option<u64>,
    reply_packets: Option<u64>,
    reply_bytes: Option<u64>,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    start_uptime: Option<u32>,
    end_uptime: Option<u32>,
    /// flowStartDeltaMicroseconds and flowEndDeltaMicroseconds: how long before the export time.
    start_delta_us: Option<u64>,
    end_delta_us: Option<u64>,
    sampling: Option<u64>,
    packet_interval: Option<u64>,
    packet_space: Option<u64>,
    boot_ms: Option<i64>,
    active_timeout_s: Option<u64>,
    idle_timeout_s: Option<u64>,
    /// The first reason the record cannot become a flow; it is still read to its end.
    skip: Option<Skip>,
}

/// An NTP timestamp (32-bit seconds since 1900, 32-bit fraction) in Unix milliseconds. Always in
/// range (years 1900 to 2036); NTP eras after 2036 are not told apart, as exporters do not send
/// them yet.
fn ntp_ms(v: u64) -> i64 {
    let secs = i64::from((v >> 32) as u32) - NTP_UNIX_OFFSET;
    // The fraction times 1000 is below 2^42 and the shifted result below 1000.
    secs * 1000 + i64::from((((v & 0xffff_ffff) * 1000) >> 32) as u32)
}

/// Seconds since the epoch (dateTimeSeconds) in milliseconds, if they are a time in range.
fn seconds_ms(secs: u64) -> Option<i64> {
    i64::try_from(secs).ok()?.checked_mul(1000).filter(|ms| time_in_range(*ms))
}

/// Milliseconds since the epoch (dateTimeMilliseconds), if they are a time in range.
fn millis_ms(ms: u64) -> Option<i64> {
    i64::try_from(ms).ok().filter(|ms| time_in_range(*ms))
}

fn address(bytes: &[u8]) -> Option<Addr> {
    match bytes.len() {
        4 => Some(Addr::v4(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))),
        16 => Some(Addr(u128::from_be_bytes(bytes.try_into().ok()?))),
        _ => None,
    }
}

/// The private enterprise number RFC 5103 gives reverse information elements: the element of
/// the same id, for the flow's other direction.
const REVERSE_PEN: u32 = 29_305;

/// What an options data record is read for; its other fields (v9 scope fields among them, whose
/// type numbers collide with element ids) are not looked at, so they cannot get it skipped.
const OPTIONS_ELEMENTS: [u16; 7] = [34, 36, 37, 50, 160, 305, 306];

impl Fields {
    fn set(&mut self, field: Field, value: &[u8], options: bool) {
        if value.is_empty() || (options && !OPTIONS_ELEMENTS.contains(&field.id)) {
            return;
        }
        let read = match field.enterprise {
            0 => self.read(field.id, value),
            REVERSE_PEN if !options => self.read_reverse(field.id, value),
            _ => Ok(()),
        };
        if let Err(why) = read {
            self.skip.get_or_insert(why);
        }
    }

    /// Reads an RFC 5103 reverse element: the counts of the flow's other direction.
    fn read_reverse(&mut self, id: u16, value: &[u8]) -> Result<(), Skip> {
        let n = || uint(value).ok_or(Skip::Value);
        match id {
            1 | 85 => self.reply_bytes = Some(n()?),
            2 | 86 => self.reply_packets = Some(n()?),
            _ => {}
        }
        Ok(())
    }

    /// Reads one element. A value that does not fit its element is an error, never cut to fit:
    /// a cut port or time would be a different, plausible-looking one.
    fn read(&mut self, id: u16, value: &[u8]) -> Result<(), Skip> {
        let n = || uint(value).ok_or(Skip::Value);
        let time = |ms: Option<i64>| ms.ok_or(Skip::Time).map(Some);
        match id {
            1 => self.bytes = Some(n()?),
            2 => self.packets = Some(n()?),
            85 => self.total_bytes = Some(n()?),
            86 => self.total_packets = Some(n()?),
            231 => self.initiator_bytes = Some(n()?),
            232 => self.reply_bytes = Some(n()?),
            298 => self.initiator_packets = Some(n()?),
            299 => self.reply_packets = Some(n()?),
            158 => self.start_delta_us = Some(n()?),
            159 => self.end_delta_us = Some(n()?),
            4 => self.protocol = u8::try_from(n()?).map_err(|_| Skip::Value)?,
            // tcpControlBits is 16 bits since RFC 7125 (NS and the header length above the eight
            // classic flags); the analyser reads the classic eight.
            6 => self.tcp_flags = (n()? & 0xff) as u8,
            7 => self.src_port = u16::try_from(n()?).map_err(|_| Skip::Value)?,
            11 => self.dst_port = u16::try_from(n()?).map_err(|_| Skip::Value)?,
            8 | 27 => self.src = address(value),
            12 | 28 => self.dst = address(value),
            32 | 139 => self.icmp = u16::try_from(n()?).map_err(|_| Skip::Value)?,
            // Uptime stamps are 32-bit milliseconds; a wider value is no uptime.
            21 => self.end_uptime = Some(u32::try_from(n()?).map_err(|_| Skip::Time)?),
            22 => self.start_uptime = Some(u32::try_from(n()?).map_err(|_| Skip::Time)?),
            150 => self.start_ms = time(seconds_ms(n()?))?,
            151 => self.end_ms = time(seconds_ms(n()?))?,
            152 => self.start_ms = time(millis_ms(n()?))?,
            153 => self.end_ms = time(millis_ms(n()?))?,
            154 | 156 => self.start_ms = Some(ntp_ms(n()?)),
            155 | 157 => self.end_ms = Some(ntp_ms(n()?)),
            34 | 50 => self.sampling = Some(n()?),
            305 => self.packet_interval = Some(n()?),
            306 => self.packet_space = Some(n()?),
            160 => self.boot_ms = time(millis_ms(n()?))?,
            // flowActiveTimeout and flowIdleTimeout (NetFlow v9's FLOW_ACTIVE_TIMEOUT and
            // FLOW_INACTIVE_TIMEOUT), in seconds: how late the exporter may send a flow.
            // Only a diagnosis: a malformed one is ignored rather than costing the record its
            // sampling rate.
            36 => self.active_timeout_s = uint(value),
            37 => self.idle_timeout_s = uint(value),
            _ => {}
        }
        Ok(())
    }

    fn sampling_rate(&self) -> Option<u64> {
        if let Some(rate) = self.sampling.filter(|r| *r > 0) {
            return Some(rate);
        }
        let interval = self.packet_interval.filter(|i| *i > 0)?;
        // (interval + space) / interval, without the sum that could overflow; a rate this large
        // makes the record's counts overflow, which skips it.
        Some((self.packet_space.unwrap_or(0) / interval).saturating_add(1))
    }
}

/// Reads the records of one data set; returns how many.
fn read_data(
    decoder: &mut Decoder,
    stream: Stream,
    template: &Template,
    content: &[u8],
    clock: Clock,
    out: &mut Vec<Flow>,
) -> usize {
    let mut at = 0;
    let mut records = 0;
    while content.len() - at >= template.min_len {
        let mut fields = Fields::default();
        let mut cursor = at;
        let mut cut = false;
        for field in &template.fields {
            let mut len = usize::from(field.len);
            // RFC 3954 has no variable-length fields, but exporters (H3C NetStream's strings) send
            // IPFIX's marker in NetFlow v9 too; a fixed field of 65535 bytes could not fit in a
            // flowset, so the marker can mean nothing else.
            if field.len == VARIABLE {
                let Some(&short) = content.get(cursor) else {
                    cut = true;
                    break;
                };
                cursor += 1;
                len = usize::from(short);
                if short == 255 {
                    let Some(long) = u16_at(content, cursor) else {
                        cut = true;
                        break;
                    };
                    cursor += 2;
                    len = usize::from(long);
                }
            }
            let Some(value) = content.get(cursor..cursor.saturating_add(len)) else {
                cut = true;
                break;
            };
            fields.set(*field, value, template.options);
            cursor += len;
        }
        if cut {
            // Padding is zeros shorter than a record; anything else is a damaged record.
            if content[at..].iter().any(|b| *b != 0) {
                decoder.stats.malformed += 1;
            }
            break;
        }
        at = cursor;
        records += 1;
        if let Some(why) = fields.skip {
            decoder.stats.skipped(why);
            continue;
        }
        if template.options {
            decoder.stats.options_records += 1;
            let info = decoder.templates.streams.entry(stream).or_default();
            if let Some(rate) = fields.sampling_rate() {
                info.sampling = rate;
            }
            if let Some(boot) = fields.boot_ms {
                info.boot_ms = Some(boot);
            }
            info.active_timeout_s = fields.active_timeout_s.or(info.active_timeout_s);
            info.idle_timeout_s = fields.idle_timeout_s.or(info.idle_timeout_s);
            continue;
        }
        match to_flow(&fields, decoder.templates.streams.get(&stream).copied(), clock) {
            Ok(Some(flow)) => out.push(flow),
            Ok(None) => decoder.stats.no_addresses += 1,
            Err(why) => decoder.stats.skipped(why),
        }
    }
    records
}

/// The flow a record describes; `Ok(None)` when it names no addresses (an options-like record
/// in a data template), an error when its times or counts do not fit.
fn to_flow(fields: &Fields, info: Option<StreamInfo>, clock: Clock) -> Result<Option<Flow>, Skip> {
    let (Some(src), Some(dst)) = (fields.src, fields.dst) else {
        return Ok(None);
    };
    let rate = fields.sampling_rate().or(info.map(|i| i.sampling).filter(|r| *r > 0)).unwrap_or(1);
    let uptime_to_ms = |stamp: u32| match (clock.uptime_ms, info.and_then(|i| i.boot_ms)) {
        // The export time is at most 2^42 ms and the distance back at most 2^31: in range.
        (Some(uptime), _) => Ok(Some(clock.export_ms - i64::from(uptime.wrapping_sub(stamp) as i32))),
        // The boot time is in range but may sit at its very end.
        (None, Some(boot)) => {
            boot.checked_add(i64::from(stamp)).filter(|ms| time_in_range(*ms)).map(Some).ok_or(Skip::Time)
        }
        (None, None) => Ok(None),
    };
    // An absolute time wins over an uptime stamp; what neither gives falls back to the export
    // time (end) or the end (start).
    // A delta before the export time: the export time is at most 2^42 ms, a delta of 64-bit
    // microseconds at most 2^54 ms, so the difference is in i64; a time before year 0000 is skipped.
    let before_export = |delta_us: u64| {
        let ms = clock.export_ms - i64::try_from(delta_us / 1000).unwrap_or(i64::MAX);
        Some(ms).filter(|ms| time_in_range(*ms)).ok_or(Skip::Time)
    };
    let time = |absolute: Option<i64>, uptime: Option<u32>, delta_us: Option<u64>| -> Result<Option<i64>, Skip> {
        match (absolute, uptime, delta_us) {
            (Some(ms), _, _) => Ok(Some(ms)),
            (None, Some(stamp), _) => uptime_to_ms(stamp),
            (None, None, Some(delta)) => before_export(delta).map(Some),
            (None, None, None) => Ok(None),
        }
    };
    let end_ms = time(fields.end_ms, fields.end_uptime, fields.end_delta_us)?.unwrap_or(clock.export_ms);
    let start_ms = time(fields.start_ms, fields.start_uptime, fields.start_delta_us)?.unwrap_or(end_ms).min(end_ms);
    let is_icmp = matches!(fields.protocol, protocol::ICMP | protocol::ICMPV6);
    // A count times the sampling rate beyond 2^64 is no real traffic: skipped rather than clamped,
    // so one forged record cannot set a server's totals.
    let scaled = |count: Option<u64>| count.unwrap_or(0).checked_mul(rate).ok_or(Skip::Value);
    Ok(Some(Flow {
        start_ms,
        end_ms,
        src,
        dst,
        src_port: if is_icmp { 0 } else { fields.src_port },
        dst_port: if is_icmp && fields.dst_port == 0 { fields.icmp } else { fields.dst_port },
        protocol: fields.protocol,
        tcp_flags: fields.tcp_flags,
        packets: scaled(fields.packets.or(fields.total_packets).or(fields.initiator_packets))?,
        bytes: scaled(fields.bytes.or(fields.total_bytes).or(fields.initiator_bytes))?,
        reply_packets: scaled(fields.reply_packets)?,
        reply_bytes: scaled(fields.reply_bytes)?,
    }))
}
