#!/usr/bin/env python3
"""A second ISP traffic model, written apart from `botscope lab flows`, to test C&C detection on
traffic the model was never trained on.

    bench/detection/independent.py generate --out DIR [--seed N] [--subscribers N] [--hours N]
                                   [--format jsonl|zeek] [--withhold SHARE] [--active-timeout S]
    bench/detection/independent.py score --truth DIR/truth.jsonl --candidates FILE [--min-score P]

`generate` writes DIR/flows.jsonl (or DIR/conn.log), DIR/truth.jsonl and DIR/seeds.txt. `score`
compares `botscope flow analyze --min-score 0` output with the truth (this model's, `botscope lab
flows --truth`, or one made from IoT-23 labels) and prints one JSON object.

Nothing here is shared with botscope's lab generator or its training: a different language, other
address plans, other service mixes, and botnets modelled from their published descriptions:

  mirai    persistent TCP session to its C&C (port 23 here), a two-byte keep-alive every 60 s, a
           DNS lookup of the C&C name at Google's resolver (8.8.8.8) before every connection,
           telnet scanning (23 and 2323, nine to one), the binary fetched once over HTTP, and
           floods on command (UDP, SYN, ACK, HTTP).
  gafgyt   plain-text IRC-like C&C on 666 or 6667, PING/PONG, telnet scans, binary over HTTP or
           TFTP, UDP/TCP/HTTP floods.
  torii    rare check-ins (every 40-110 minutes, jittered) over TLS on 443, after a lookup at 8.8.8.8;
           no scanning, no floods.
  hakai    short connections to its C&C on an odd port every 20-60 s, exploit scans on 37215 and
           52869, binary over TFTP.
  hajime   no C&C: BitTorrent DHT (UDP) through the public bootstrap routers and a worldwide pool of
           peers, uTP transfers of its configuration, telnet scans. The right answer is none.
  mozi     no C&C: DHT like hajime with its own peer pool, floods on command from peers.

Hard negatives by design: DDoS victims (popular sites among them, so benign clients use them too;
one-way floods and HTTP floods with replies), the ISP's and public DNS resolvers, NTP pool servers,
CDNs, video, IoT clouds reached over MQTT/TLS (persistent, keep-alive each minute) and CoAP by many
households infected ones included, firmware update servers (one check a day), malware download
servers (each bot fetches once), DHT bootstrap routers and peers (benign BitTorrent users too).

Flows are written as an IPFIX exporter sends them (one flow per direction, long sessions cut at the
active timeout) in botscope's JSON lines, or as Zeek would log them (one line per connection, with
both directions). Addresses are documentation-free public-looking addresses: nothing is sent
anywhere, these are files. Python's random.Random(seed) makes every run reproducible.
"""

import argparse
import datetime
import ipaddress
import json
import os
import random
import sys

SUBSCRIBERS = ipaddress.ip_network("198.18.0.0/15")  # the benchmarking range: never a real host
START = 1791158400  # 2026-10-05T00:00:00Z, a Monday
TCP, UDP = 6, 17

# First octets servers are drawn from: public unicast space, none private, shared or reserved.
PUBLIC_FIRST = [23, 31, 37, 45, 46, 51, 62, 77, 78, 80, 81, 82, 83, 85, 87, 89, 91, 93, 94, 95, 103, 104,
                109, 128, 139, 141, 142, 147, 149, 151, 157, 159, 167, 176, 178, 185, 188, 193, 194, 195, 203,
                209, 212, 213, 217]


class Plan:
    """Hands out distinct server addresses."""

    def __init__(self, rng):
        self.rng = rng
        self.used = set()

    def public(self):
        while True:
            a = (self.rng.choice(PUBLIC_FIRST), self.rng.randrange(256), self.rng.randrange(256), self.rng.randrange(1, 255))
            text = "%d.%d.%d.%d" % a
            if text not in self.used:
                self.used.add(text)
                return text


def ephemeral(rng):
    return rng.randrange(32768, 61000)


class Writer:
    """Collects one hour's connections and writes them as flows."""

    def __init__(self, path, fmt, active_timeout):
        self.fmt = fmt
        self.active = active_timeout
        self.out = open(path, "w")
        self.rows = []
        self.pending = []  # (export time, line)
        self.end = float("inf")
        self.count = 0
        if fmt == "zeek":
            self.out.write("#separator \\x09\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\t"
                           "id.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\t"
                           "local_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\t"
                           "tunnel_parents\n")

    def conn(self, client, cport, server, sport, proto, t, duration, up, down=None, answered=True):
        """One connection from `client` at time t (seconds) lasting `duration`; up/down are (packets, bytes)."""
        self.rows.append((t, client, cport, server, sport, proto, duration, up, down, answered))

    def flush(self, until):
        """Writes what an exporter would have sent by `until`: records leave when their flow (or
        slice of a long flow) ends, so a long session's record comes after shorter later ones."""
        for t, client, cport, server, sport, proto, duration, up, down, answered in self.rows:
            if t >= self.end:
                continue
            if self.fmt == "zeek":
                self._zeek(t, client, cport, server, sport, proto, duration, up, down, answered)
            else:
                self._ipfix(t, client, cport, server, sport, proto, duration, up, down, answered)
        self.rows = []
        ready = [p for p in self.pending if p[0] <= until]
        self.pending = [p for p in self.pending if p[0] > until]
        ready.sort(key=lambda p: p[0])
        for _, text in ready:
            self.out.write(text)
            self.count += 1

    def _zeek(self, t, client, cport, server, sport, proto, duration, up, down, answered):
        p = "tcp" if proto == TCP else "udp"
        dp, db = down if down else (0, 0)
        state = "SF" if down else "S0"
        self.pending.append((t + duration, "%.6f\tC%d\t%s\t%d\t%s\t%d\t%s\t-\t%.6f\t%d\t%d\t%s\t-\t-\t0\t-\t%d\t%d\t%d\t%d\t-\n" % (
            t, len(self.pending), client, cport, server, sport, p, duration, max(up[1] - 40 * up[0], 0),
            max(db - 40 * dp, 0), state, up[0], up[1], dp, db)))

    def _ipfix(self, t, client, cport, server, sport, proto, duration, up, down, answered):
        # An exporter cuts a long session at its active timeout: one record per direction per slice.
        slices = max(1, int(duration // self.active) + (1 if duration % self.active else 0)) if duration > self.active else 1
        for k in range(slices):
            s0 = t + k * self.active
            s1 = min(t + duration, s0 + self.active) if slices > 1 else t + duration
            share = (s1 - s0) / duration if duration > 0 and slices > 1 else 1.0
            flags_up = (0x02 if not down else 0x1b) if proto == TCP else 0
            self._line(s0, s1, client, cport, server, sport, proto, flags_up, up, share)
            if down:
                self._line(s0 + min(0.02, (s1 - s0)), s1, server, sport, client, cport, proto,
                           0x1b if proto == TCP else 0, down, share)

    def _line(self, s0, s1, src, sport, dst, dport, proto, flags, counts, share):
        packets = max(1, round(counts[0] * share))
        nbytes = max(40 * packets, round(counts[1] * share))
        self.pending.append((s1, json.dumps({"start": stamp(s0), "end": stamp(s1), "src": src, "sport": sport, "dst": dst,
                                   "dport": dport, "proto": proto, "flags": flags, "packets": packets,
                                   "bytes": nbytes}, separators=(",", ":")) + "\n"))


def stamp(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


class Household:
    def __init__(self, rng, ip, plan, world):
        self.ip = ip
        self.activity = rng.lognormvariate(0, 0.5)
        self.resolver = rng.choice(world["public_dns"]) if rng.random() < 0.15 else rng.choice(world["isp_dns"])
        self.ntp = [(rng.choice(world["ntp"]), rng.choice([64, 256, 1024]), rng.uniform(0, 1024))
                    for _ in range(rng.choice([1, 1, 2, 3]))]
        self.iot = []  # (cloud, port, proto, keepalive seconds, phase)
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
            cloud = rng.choice(world["clouds"])
            self.iot.append((cloud, rng.choice([60, 60, 120, 300]), rng.uniform(0, 300)))
        self.updates = [(rng.choice(world["updates"]), rng.uniform(0, 86400)) for _ in range(len(self.iot) + 1)]
        self.torrent = rng.random() < 0.04
        self.video = rng.random() < 0.3
        self.bot = None


def build_world(rng, plan, n_subscribers, hours):
    world = {
        "isp_dns": [(a, 53, UDP) for a in ("203.0.113.53", "203.0.113.54")],
        "public_dns": [("8.8.8.8", 53, UDP), ("1.1.1.1", 53, UDP), ("9.9.9.9", 53, UDP)],
        "ntp": [(plan.public(), 123, UDP) for _ in range(24)],
        "cdn": [(plan.public(), 443, TCP) for _ in range(30)],
        "web": [(plan.public(), rng.choice([443, 443, 443, 80]), TCP) for _ in range(1500)],
        "video": [(plan.public(), 443, TCP) for _ in range(8)],
        "clouds": [(plan.public(), 8883, TCP) for _ in range(4)] + [(plan.public(), 443, TCP) for _ in range(3)]
        + [(plan.public(), 5683, UDP)],
        "updates": [(plan.public(), p, TCP) for p in (443, 443, 80, 443, 80)],
        "dht_bootstrap": [(plan.public(), 6881, UDP) for _ in range(3)],
        "torrent_peers": [(plan.public(), rng.randrange(1025, 65535), UDP) for _ in range(20000)],
    }
    taken = set()
    households = []
    while len(households) < n_subscribers:
        ip = str(SUBSCRIBERS.network_address + rng.randrange(1, SUBSCRIBERS.num_addresses - 1))
        if ip in taken or ip.endswith(".0") or ip.endswith(".255"):
            continue
        taken.add(ip)
        households.append(Household(rng, ip, plan, world))
    return world, households


def zipf_index(rng, n):
    return min(n - 1, int(n ** rng.random()) - 1)


def benign_hour(rng, w, h, world, t0, diurnal):
    at = lambda: t0 + rng.uniform(0, 3600)
    level = h.activity * diurnal
    for _ in range(int(level * rng.uniform(3, 20))):
        dns = h.resolver
        w.conn(h.ip, ephemeral(rng), dns[0], 53, UDP, at(), rng.uniform(0.005, 0.08), (1, rng.randrange(60, 90)),
               (1, rng.randrange(90, 400)))
    for server, period, phase in h.ntp:
        k = (t0 - phase) // period + 1
        while phase + k * period < t0 + 3600:
            w.conn(h.ip, 123, server[0], 123, UDP, phase + k * period + rng.uniform(0, 1), 0.03, (1, 76), (1, 76))
            k += 1
    for _ in range(int(level * rng.uniform(0, 12))):
        site = world["web"][zipf_index(rng, len(world["web"]))]
        pk = rng.randrange(8, 60)
        w.conn(h.ip, ephemeral(rng), site[0], site[1], TCP, at(), rng.uniform(0.3, 40), (pk, pk * rng.randrange(60, 200)),
               (pk + rng.randrange(0, 40), pk * rng.randrange(500, 1400)))
    for _ in range(int(level * rng.uniform(0, 6))):
        cdn = rng.choice(world["cdn"])
        pk = rng.randrange(20, 500)
        w.conn(h.ip, ephemeral(rng), cdn[0], 443, TCP, at(), rng.uniform(1, 90), (pk, pk * 70), (2 * pk, 2 * pk * 1300))
    if h.video and rng.random() < 0.5 * diurnal:
        v = rng.choice(world["video"])
        w.conn(h.ip, ephemeral(rng), v[0], 443, TCP, at(), rng.uniform(300, 2400), (3000, 200000), (60000, 80000000))
    for cloud, keepalive, phase in h.iot:
        if cloud[2] == UDP:
            # CoAP: a small request and answer each keep-alive period.
            k = (t0 - phase) // keepalive + 1
            while phase + k * keepalive < t0 + 3600:
                w.conn(h.ip, 5683, cloud[0], 5683, UDP, phase + k * keepalive + rng.uniform(0, 2), 0.05, (1, 60),
                       (1, 50))
                k += 1
        else:
            # MQTT over TLS (or HTTPS long polling): one session all hour, a ping each keep-alive.
            pings = 3600 // keepalive
            w.conn(h.ip, 40000 + int(ipaddress.ip_address(cloud[0])) % 20000, cloud[0], cloud[1], TCP, t0 + rng.uniform(0, 1), 3599,
                   (2 * pings + 2, pings * 2 * 75), (pings + 2, pings * 69 + 300))
    for server, when in h.updates:
        if t0 <= (when + (t0 // 86400) * 86400) < t0 + 3600:
            w.conn(h.ip, ephemeral(rng), server[0], server[1], TCP, when + (t0 // 86400) * 86400, 1.2, (10, 1400),
                   (12, 9000))
    if h.torrent and rng.random() < diurnal:
        for b in world["dht_bootstrap"]:
            if rng.random() < 0.5:
                w.conn(h.ip, 51413, b[0], 6881, UDP, at(), 0.1, (1, 100), (1, 330))
        for _ in range(int(rng.uniform(20, 120))):
            peer = rng.choice(world["torrent_peers"])
            w.conn(h.ip, 51413, peer[0], peer[1], UDP, at(), rng.uniform(0.05, 20), (3, 400),
                   (3, 900) if rng.random() < 0.6 else None)


class Botnet:
    def __init__(self, name, family, cnc, download, attacks, peers):
        self.name, self.family, self.cnc, self.download, self.attacks, self.peers = (
            name, family, cnc, download, attacks, peers)
        self.members = []  # (household, join time)


def build_botnets(rng, plan, world, households, hours, infected_share):
    end = START + hours * 3600
    families = ["mirai", "mirai", "gafgyt", "torii", "hakai", "hajime", "mozi"]
    botnets = []
    for i, family in enumerate(families):
        cnc = []
        if family in ("hajime", "mozi"):
            peers = [(plan.public(), rng.randrange(1025, 65535), UDP) for _ in range(400)]
        else:
            peers = []
            port = {"mirai": 23, "gafgyt": rng.choice([666, 6667]), "torii": 443, "hakai": rng.choice([50, 1337, 9373])}[family]
            if i == 1:
                # The second Mirai moves its C&C: first after one hour, then halfway.
                cuts = [START, START + 3600, START + hours * 1800, end]
            else:
                cuts = [START, end]
            for a, b in zip(cuts, cuts[1:]):
                cnc.append({"ip": plan.public(), "port": port, "from": a, "until": b})
        download = (plan.public(), 69 if family == "hakai" else 80, UDP if family == "hakai" else TCP)
        botnets.append(Botnet("%s-%d" % (family, i + 1), family, cnc, download, [], peers))
    iot_homes = [h for h in households if h.iot or rng.random() < 0.3]
    rng.shuffle(iot_homes)
    n_bots = max(len(botnets) * 5, int(len(households) * infected_share))
    for k, h in enumerate(iot_homes[:n_bots]):
        bn = botnets[k % len(botnets)]
        join = START + (rng.uniform(0, 600) if rng.random() < 0.8 else rng.uniform(0, hours * 3600 * 0.7))
        h.bot = (bn, join)
        bn.members.append((h, join))
    # Victims: some popular web sites, some hosts, a game server; each attacked by one or two botnets.
    victims = []
    for k in range(10):
        if k < 3:
            ip, port, proto = world["web"][zipf_index(rng, 100)]
        else:
            ip, port, proto = plan.public(), rng.choice([80, 443, 53, 27015, 3074]), rng.choice([TCP, UDP])
        victims.append({"ip": ip, "port": port, "protocol": proto})
    for bn in botnets:
        if bn.family in ("torii", "hajime"):
            continue
        for _ in range(max(2, hours // 6)):
            v = rng.choice(victims)
            kind = rng.choice(["udp", "syn", "ack", "http"]) if v["protocol"] == TCP else "udp"
            a = START + rng.uniform(0, hours * 3600 - 600)
            bn.attacks.append({"victim": v, "kind": kind, "from": a, "until": a + rng.uniform(30, 300)})
    return botnets, victims


def cnc_at(bn, t):
    for p in bn.cnc:
        if p["from"] <= t < p["until"]:
            return p
    return None


def bot_hour(rng, w, bn, h, join, world, t0):
    t1 = t0 + 3600
    live = max(join, t0)
    if live >= t1:
        return
    dns = world["public_dns"][0][0]  # Mirai and Torii hard-code 8.8.8.8
    if t0 <= join < t1:
        d = bn.download
        size = rng.randrange(60000, 250000)
        if d[2] == UDP:
            w.conn(h.ip, ephemeral(rng), d[0], 69, UDP, join, 2.0, (size // 512 + 2, 40 * (size // 512)),
                   (size // 512 + 1, size))
        else:
            w.conn(h.ip, ephemeral(rng), d[0], 80, TCP, join, 1.5, (size // 1400 // 2 + 4, 600), (size // 1400 + 2, size))
    f = bn.family
    if f in ("mirai", "gafgyt"):
        # One session per hour slice; a reconnect (and, for Mirai, a lookup) when the C&C moves.
        t = live
        while t < t1:
            p = cnc_at(bn, t)
            if p is None:
                break
            stop = min(t1, p["until"])
            if f == "mirai" and (t == join or t == p["from"] or t == t0 and (t0 - START) % 86400 == 0):
                w.conn(h.ip, ephemeral(rng), dns, 53, UDP, t, 0.03, (1, 70), (1, 86))
            minutes = max(1, int((stop - t) // 60))
            size = 2 if f == "mirai" else 6  # two-byte pings, or PING/PONG lines
            w.conn(h.ip, 40000 + int(ipaddress.ip_address(h.ip)) % 20000, p["ip"], p["port"], TCP, t + rng.uniform(0, 0.5),
                   stop - t - 0.5, (minutes * 2 + 3, minutes * (52 + size + 40) + 180),
                   (minutes + 3, minutes * (52 + size) + 160))
            t = stop
    elif f == "torii":
        nxt = h.__dict__.setdefault("torii_next", join + rng.uniform(60, 600))
        while nxt < t1:
            if nxt >= live:
                p = cnc_at(bn, nxt)
                if p:
                    w.conn(h.ip, ephemeral(rng), dns, 53, UDP, nxt - 0.2, 0.03, (1, 72), (1, 88))
                    pk = rng.randrange(10, 24)
                    w.conn(h.ip, ephemeral(rng), p["ip"], 443, TCP, nxt, rng.uniform(0.5, 4), (pk, pk * 180),
                           (pk, pk * rng.randrange(200, 900)))
            nxt += rng.uniform(40 * 60, 110 * 60)
        h.torii_next = nxt
    elif f == "hakai":
        t = live + rng.uniform(0, 30)
        while t < t1:
            p = cnc_at(bn, t)
            if p:
                w.conn(h.ip, ephemeral(rng), p["ip"], p["port"], TCP, t, rng.uniform(0.2, 3), (5, 320), (4, 260))
            t += rng.uniform(20, 60)
    elif f in ("hajime", "mozi"):
        for b in world["dht_bootstrap"]:
            if rng.random() < 0.7:
                w.conn(h.ip, ephemeral(rng), b[0], 6881, UDP, live + rng.uniform(0, t1 - live), 0.1, (1, 110),
                       (1, 330))
        for _ in range(int(rng.uniform(30, 90))):
            peer = rng.choice(bn.peers) if rng.random() < 0.7 else rng.choice(world["torrent_peers"])
            w.conn(h.ip, ephemeral(rng), peer[0], peer[1], UDP, live + rng.uniform(0, t1 - live),
                   rng.uniform(0.05, 2), (2, 250), (2, 420) if rng.random() < 0.5 else None)
        if rng.random() < 0.3:
            peer = rng.choice(bn.peers)
            w.conn(h.ip, ephemeral(rng), peer[0], peer[1], UDP, live + rng.uniform(0, t1 - live), 8,
                   (40, 3000), (60, 60000))
    # Scanning: SYNs to random addresses, a few answering.
    ports = {"hakai": [37215, 52869, 80], "hajime": [23, 5358], "torii": []}.get(f, [23] * 9 + [2323])
    if ports:
        for _ in range(rng.randrange(40, 160)):
            target = "%d.%d.%d.%d" % (rng.choice(PUBLIC_FIRST), rng.randrange(256), rng.randrange(256),
                                      rng.randrange(1, 255))
            answered = rng.random() < 0.02
            w.conn(h.ip, ephemeral(rng), target, rng.choice(ports), TCP, live + rng.uniform(0, t1 - live),
                   2.0 if answered else 0.0, (6 if answered else 1, 360 if answered else 60),
                   (5, 300) if answered else None)


def attack_hour(rng, w, bn, t0):
    t1 = t0 + 3600
    for a in bn.attacks:
        if a["until"] <= t0 or a["from"] >= t1:
            continue
        v = a["victim"]
        start, stop = max(a["from"], t0), min(a["until"], t1)
        for h, join in bn.members:
            if join > a["from"] or rng.random() < 0.15:
                continue
            if a["kind"] == "http":
                for _ in range(rng.randrange(5, 25)):
                    s = rng.uniform(start, stop)
                    n = rng.randrange(5, 40)
                    w.conn(h.ip, ephemeral(rng), v["ip"], v["port"], TCP, s, rng.uniform(1, 10), (n * 3, n * 420),
                           (n * 3, n * rng.randrange(300, 4000)))
            else:
                rate = rng.uniform(800, 5000)
                size = {"udp": 540, "syn": 60, "ack": 52}[a["kind"]]
                proto = UDP if a["kind"] == "udp" else TCP
                packets = int(rate * (stop - start))
                w.conn(h.ip, ephemeral(rng), v["ip"], v["port"], proto, start, stop - start, (packets, packets * size),
                       None)


def generate(args):
    rng = random.Random(args.seed)
    plan = Plan(rng)
    os.makedirs(args.out, exist_ok=True)
    world, households = build_world(rng, plan, args.subscribers, args.hours)
    botnets, victims = build_botnets(rng, plan, world, households, args.hours, args.infected_share)
    name = "conn.log" if args.format == "zeek" else "flows.jsonl"
    w = Writer(os.path.join(args.out, name), args.format, args.active_timeout)
    w.end = START + args.hours * 3600
    for hour in range(args.hours):
        t0 = START + hour * 3600
        hod = (hour % 24)
        diurnal = 0.55 + 0.45 * (1 - abs(hod - 20) / 12 if abs(hod - 20) <= 12 else 0)
        for h in households:
            benign_hour(rng, w, h, world, t0, diurnal)
        for bn in botnets:
            for h, join in bn.members:
                bot_hour(rng, w, bn, h, join, world, t0)
            attack_hour(rng, w, bn, t0)
        w.flush(t0 + 3600)
    w.flush(float("inf"))
    w.out.close()
    # Truth: C&C servers, bots, and the hard negatives by class.
    with open(os.path.join(args.out, "truth.jsonl"), "w") as f:
        def line(**record):
            f.write(json.dumps(record) + "\n")
        line(kind="subscribers", prefixes=[str(SUBSCRIBERS)])
        for bn in botnets:
            for p in bn.cnc:
                line(kind="cnc", ip=p["ip"], port=p["port"], protocol="tcp", botnet=bn.name, family=bn.family,
                     **{"from": stamp(p["from"]), "until": stamp(p["until"])})
            line(kind="negative", cls="download", ip=bn.download[0], port=bn.download[1],
                 protocol="udp" if bn.download[2] == UDP else "tcp")
            for peer in bn.peers:
                line(kind="negative", cls="p2p_peer", ip=peer[0], port=peer[1], protocol="udp")
            for h, join in bn.members:
                line(kind="bot", ip=h.ip, botnet=bn.name, family=bn.family, infected_at=stamp(join))
        for v in victims:
            line(kind="negative", cls="victim", ip=v["ip"], port=v["port"],
                 protocol="udp" if v["protocol"] == UDP else "tcp")
        for cls, key in (("isp_dns", "isp_dns"), ("public_dns", "public_dns"), ("ntp", "ntp"), ("cdn", "cdn"),
                         ("video", "video"), ("iot_cloud", "clouds"), ("update", "updates"),
                         ("dht_bootstrap", "dht_bootstrap"), ("p2p_peer", "torrent_peers"), ("web", "web")):
            for ip, port, proto in world[key]:
                line(kind="negative", cls=cls, ip=ip, port=port, protocol="udp" if proto == UDP else "tcp")
    bots = [h.ip for h in households if h.bot]
    order = sorted(bots)
    random.Random(args.seed + 7).shuffle(order)
    known = sorted(order[round(args.withhold * len(order)):])
    with open(os.path.join(args.out, "seeds.txt"), "w") as f:
        f.write("".join(ip + "\n" for ip in known))
    print(json.dumps({"flows": w.count, "subscribers": len(households), "bots": len(bots), "seeds": len(known),
                      "cnc_servers": sum(len(b.cnc) for b in botnets), "hours": args.hours,
                      "file": os.path.join(args.out, name)}))


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def revision_order(c):
    """When a report was made (a first report at its window's end), then its flows."""
    return (parse_time(c.get("revised_at") or c["window_end"]), c["flows"])


def score(args):
    """Compares analyser output (every scored server, --min-score 0) with the truth."""
    cnc, negatives, ignored = {}, {}, set()
    known = set(open(args.seeds).read().split()) if args.seeds else None
    botnets_with_seed = set()
    for raw in open(args.truth):
        r = json.loads(raw)
        if r["kind"] == "bot" and known is not None and r["ip"] in known:
            # Lab truth lists a bot's botnets, the independent model's its one botnet.
            botnets_with_seed.update(r.get("botnets") or [r.get("botnet")])
        if r["kind"] == "cnc" and r.get("family") in args.ignore_family:
            ignored.add((r["ip"], r["port"], r["protocol"]))
        elif r["kind"] == "cnc":
            key = (r["ip"], r["port"], r["protocol"])
            # A server used in several periods counts once, from its first use.
            if key not in cnc or r["from"] < cnc[key]["from"]:
                cnc[key] = r
        elif r["kind"] == "negative":
            negatives.setdefault((r["ip"], r["port"], r["protocol"]), r["cls"])
        elif r["kind"] in ("victim", "download"):
            # botscope lab flows' truth, so the lab is scored the same way.
            negatives.setdefault((r["ip"], r["port"], r.get("protocol", "tcp")), r["kind"])
    windows, first_found = {}, {}
    for raw in open(args.candidates):
        raw = raw.strip()
        if not raw.startswith("{"):
            continue
        c = json.loads(raw)
        key = (c["ip"], c["port"], c["protocol"])
        if key in ignored:
            continue
        # A window scored again (late flows, or its bots came back in the next) is printed
        # again: per server the later revision stands, as in the store (of two made at once, the
        # one with more flows); ranks are recomputed below.
        window = windows.setdefault(c["window_start"], {})
        if key not in window or revision_order(c) > revision_order(window[key]):
            window[key] = c
        # Found as soon as any report (first or revised) reached the threshold, at the time it
        # was made: a revision that repeats an earlier finding does not delay it.
        if key in cnc and c["score"] >= args.min_score:
            made = revision_order(c)[0]
            first_found[key] = min(first_found.get(key, made), made)
    for start in list(windows):
        cands = sorted(windows[start].values(), key=lambda c: -c["score"])
        for rank, c in enumerate(cands, 1):
            c["rank"] = rank
        windows[start] = cands
    found, best = set(), {}
    violations, hard_rank, rows = [], None, []
    scored_negatives, false_pos, by_class = set(), set(), {}
    for start, cands in sorted(windows.items()):
        cands.sort(key=lambda c: c["rank"])
        c_scores = [(c["score"], c["rank"], (c["ip"], c["port"], c["protocol"])) for c in cands
                    if (c["ip"], c["port"], c["protocol"]) in cnc]
        n_scores = [(c["score"], c["rank"], (c["ip"], c["port"], c["protocol"])) for c in cands
                    if (c["ip"], c["port"], c["protocol"]) not in cnc]
        for s, rank, key in c_scores:
            best[key] = max(best.get(key, 0.0), s)
            rows.append((s, 1))
            if s >= args.min_score:
                found.add(key)
        for s, rank, key in n_scores:
            rows.append((s, 0))
            scored_negatives.add(key)
            if s >= args.min_score:
                false_pos.add(key)
        if n_scores:
            top = min(r for _, r, _ in n_scores)
            hard_rank = top if hard_rank is None else min(hard_rank, top)
        if c_scores and n_scores:
            worst_cnc = max(r for _, r, _ in c_scores)
            best_neg = min(n_scores, key=lambda x: x[1])
            if best_neg[1] < worst_cnc:
                violations.append({"window": start, "negative": "%s:%d/%s" % best_neg[2],
                                   "class": negatives.get(best_neg[2], "other"), "negative_rank": best_neg[1],
                                   "worst_cnc_rank": worst_cnc})
    for key in false_pos:
        cls = negatives.get(key, "other")
        by_class[cls] = by_class.get(cls, 0) + 1
    delays = []
    for key, when in first_found.items():
        if key not in found:
            continue
        began = datetime.datetime.fromisoformat(cnc[key]["from"].replace("Z", "+00:00"))
        ended = when
        delays.append((ended - began).total_seconds() / 60)
    # Brier score and a coarse reliability table over every scored (server, window).
    brier = sum((s - y) ** 2 for s, y in rows) / len(rows) if rows else None
    bins = []
    for lo in (0.0, 0.1, 0.5, 0.9):
        hi = {0.0: 0.1, 0.1: 0.5, 0.5: 0.9, 0.9: 1.01}[lo]
        picked = [y for s, y in rows if lo <= s < hi]
        bins.append({"scores": "%.1f-%.1f" % (lo, min(hi, 1.0)), "rows": len(picked),
                     "cnc_share": round(sum(picked) / len(picked), 4) if picked else None})
    # Records print at most 0.99999: that is what a score of 1 would look like.
    ties_at_one = sum(1 for s, _ in rows if s >= 0.99999)
    # The operating point an analyst would pick: the best threshold on the servers' best scores
    # that keeps the false positive rate at or below 0.1 % of the scored negatives.
    best_neg = {}
    for cands in windows.values():
        for c in cands:
            key = (c["ip"], c["port"], c["protocol"])
            if key not in cnc:
                best_neg[key] = max(best_neg.get(key, 0.0), c["score"])
    negs = sorted(best_neg.values(), reverse=True)
    allowed = int(0.001 * len(negs))
    threshold = negs[allowed] if len(negs) > allowed else 0.0
    tpr_at = sum(1 for k in cnc if best.get(k, -1.0) > threshold) / len(cnc) if cnc else None
    # A C&C none of whose bots is a seed is out of reach of seeded detection (nothing points at
    # it); with --seeds it is named and the rate is also given without it.
    unseeded = [k for k in cnc if known is not None and "botnet" in cnc[k]
                and cnc[k]["botnet"] not in botnets_with_seed]
    reachable = [k for k in cnc if k not in unseeded]
    tpr_reachable = (sum(1 for k in reachable if best.get(k, -1.0) > threshold) / len(reachable)
                     if reachable else None)
    result = {
        "cnc_servers": len(cnc), "cnc_found": len(found), "true_positive_rate": len(found) / len(cnc) if cnc else None,
        "missed": sorted("%s:%d" % (k[0], k[1]) for k in cnc if k not in found),
        "scored_negatives": len(scored_negatives), "false_positives": len(false_pos),
        "false_positive_rate_scored": len(false_pos) / len(scored_negatives) if scored_negatives else 0.0,
        "false_positives_by_class": by_class,
        "p2p_false_cnc": by_class.get("p2p_peer", 0) + by_class.get("dht_bootstrap", 0),
        "best_hard_negative_rank": hard_rank, "windows_with_a_negative_above_a_cnc": len(violations),
        "violations": violations[:10], "detection_delay_minutes_median": sorted(delays)[len(delays) // 2] if delays else None,
        "detection_delay_minutes_max": max(delays) if delays else None, "brier": brier, "reliability": bins,
        "scores_of_one": ties_at_one,
        "tpr_at_fpr_0_1_percent": tpr_at, "threshold_at_fpr_0_1_percent": threshold,
        "cnc_without_known_bot": sorted("%s:%d" % (k[0], k[1]) for k in unseeded),
        "tpr_at_fpr_0_1_percent_with_a_known_bot": tpr_reachable,
        "cnc_best_scores": {"%s:%d" % (k[0], k[1]): round(best.get(k, 0.0), 4) for k in cnc},
        "top_negatives": [{"server": "%s:%d/%s" % k, "class": negatives.get(k, "other"), "score": v}
                          for k, v in sorted(best_neg.items(), key=lambda kv: -kv[1])[:5]],
    }
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="write flows, truth and seeds")
    g.add_argument("--out", required=True)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--subscribers", type=int, default=1500)
    g.add_argument("--hours", type=int, default=24)
    g.add_argument("--format", choices=["jsonl", "zeek"], default="jsonl")
    g.add_argument("--withhold", type=float, default=0.5, help="share of the bots left out of seeds.txt")
    g.add_argument("--infected-share", type=float, default=0.03)
    g.add_argument("--active-timeout", type=float, default=600, help="seconds; IPFIX export only")
    s = sub.add_parser("score", help="compare analyser output with the truth")
    s.add_argument("--truth", required=True)
    s.add_argument("--candidates", required=True)
    s.add_argument("--min-score", type=float, default=0.5)
    s.add_argument("--seeds", help="the seed list: C&C of botnets with no seed are named apart")
    s.add_argument("--ignore-family", action="append", default=[],
                   help="leave this family's C&C servers out of every count (a known gap, reported apart)")
    args = parser.parse_args()
    if args.command == "generate":
        if not (20 <= args.subscribers <= 200000 and 1 <= args.hours <= 24 * 14):
            sys.exit("--subscribers must be 20-200000 and --hours 1-336")
        generate(args)
    else:
        score(args)


if __name__ == "__main__":
    main()
