#!/usr/bin/env python3
"""Writes an IPFIX export (as a pcap) in which millions of distinct hosts appear in one hour.

    gen_hosts.py --hosts N --out FILE.pcap --seeds SEEDS.txt [--summary FILE.json]

Used by bench/flow/run for the memory measurement. Deterministic (seed 2026). Every address in
it, inside the records as well as in the packet headers, is a loopback address:

  servers   127.0.0.0/16: 1,000 popular services (web, DNS, NTP, MQTT), one C&C server
            (127.0.200.1:6667) and, as scan targets, any address of the /16 on one of eight IoT
            ports (about 524,000 possible targets);
  clients   N distinct addresses spread over the rest of 127.0.0.0/8 (a multiplicative
            permutation of the /8's 2^24 addresses, skipping the server /16 and 127.255.255.255),
            so `--subscribers` = 127.0.0.0/8 minus 127.0.0.0/16 orients every flow.

Each client opens one flow to a popular service (Zipf-like choice); one in ten opens two more;
one in a hundred scans ten targets; one in ten thousand is a bot that also polls the C&C every
five minutes (seventy per cent of the bots are written to --seeds). All flows start within
2026-11-02 00:00-01:00 UTC, so a collector holds them in a single hourly window: the worst case for
its memory. Records: IPFIX (RFC 7011) data records of 39 bytes (addresses, ports, protocol, TCP
flags, 4-byte packet and octet deltas, start and end in milliseconds), 30 per message, the
template in the first message and every 32nd, sequence numbers counting data records. The packets
are Ethernet/IPv4/UDP from 127.0.0.1:40055 to 127.0.0.1:2055 (bench/flow/replay.py sends only the
payloads, to the collector's port). Prints (and with --summary writes) a JSON summary.
"""

import argparse
import ipaddress
import json
import random
import struct

HOUR_START_MS = 1_793_577_600_000  # 2026-11-02T00:00:00Z
SERVER_NET = 0x7F000000  # 127.0.0.0/16
CNC = (0x7F00C801, 6667)  # 127.0.200.1:6667
POPULAR = 1000
POPULAR_PORTS = [(443, 6), (80, 6), (53, 17), (123, 17), (8883, 6), (1883, 6)]
SCAN_PORTS = [23, 2323, 80, 8080, 5555, 7547, 37215, 52869]
PER_MESSAGE = 30
TEMPLATE_EVERY = 32
TEMPLATE_ID = 400
# (element id, length): sourceIPv4Address, destinationIPv4Address, sourceTransportPort,
# destinationTransportPort, protocolIdentifier, tcpControlBits, packetDeltaCount,
# octetDeltaCount (reduced to 4 bytes), flowStartMilliseconds, flowEndMilliseconds.
FIELDS = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (6, 2), (2, 4), (1, 4), (152, 8), (153, 8)]
RECORD = struct.Struct("!IIHHBHIIQQ")
assert RECORD.size == sum(length for _, length in FIELDS)


def subscriber_prefixes():
    """127.0.0.0/8 minus the server /16, as CIDR prefixes."""
    whole = ipaddress.ip_network("127.0.0.0/8")
    return sorted(str(p) for p in whole.address_exclude(ipaddress.ip_network("127.0.0.0/16")))


def clients(n):
    """n distinct client addresses (as integers) spread over 127.1.0.0-127.255.255.254."""
    multiplier = 0x9E3779B1 & 0xFFFFFF | 1  # odd: a permutation of 0..2^24-1
    j = 0
    made = 0
    while made < n:
        offset = (j * multiplier) & 0xFFFFFF
        j += 1
        if offset < 0x10000 or offset == 0xFFFFFF:
            continue
        made += 1
        yield SERVER_NET | offset


class Writer:
    """IPFIX messages in pcap frames."""

    def __init__(self, path):
        self.f = open(path, "wb", buffering=1 << 22)
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        self.pending = []
        self.sequence = 0
        self.messages = 0
        self.records = 0
        template = struct.pack("!HH", TEMPLATE_ID, len(FIELDS)) + b"".join(struct.pack("!HH", *f) for f in FIELDS)
        self.template_set = struct.pack("!HH", 2, 4 + len(template)) + template

    def add(self, record):
        self.pending.append(record)
        if len(self.pending) == PER_MESSAGE:
            self.flush()

    def flush(self):
        if not self.pending:
            return
        data = b"".join(RECORD.pack(*r) for r in self.pending)
        body = self.template_set if self.messages % TEMPLATE_EVERY == 0 else b""
        body += struct.pack("!HH", TEMPLATE_ID, 4 + len(data)) + data
        export_s = max(r[9] for r in self.pending) // 1000
        message = struct.pack("!HHIII", 10, 16 + len(body), export_s, self.sequence, 1) + body
        self.sequence = (self.sequence + len(self.pending)) & 0xFFFFFFFF
        self.records += len(self.pending)
        self.pending = []
        udp = struct.pack("!HHHH", 40055, 2055, 8 + len(message), 0) + message
        header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), self.messages & 0xFFFF, 0x4000, 64, 17, 0,
                             b"\x7f\x00\x00\x01", b"\x7f\x00\x00\x01")
        header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
        frame = b"\x00" * 12 + b"\x08\x00" + header + udp
        stamp = export_s
        self.f.write(struct.pack("<IIII", stamp, 0, len(frame), len(frame)) + frame)
        self.messages += 1

    def close(self):
        self.flush()
        self.f.close()


def checksum(header):
    total = sum(struct.unpack("!10H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=10_000_000)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seeds", required=True)
    parser.add_argument("--summary")
    args = parser.parse_args()
    if not 0 < args.hosts <= 0xFFFFFF - 0x10000 - 1:
        raise SystemExit("--hosts must be between 1 and 16,711,679")

    rng = random.Random(2026)
    rand = rng.random
    popular = [(SERVER_NET | (0x0100 + i), *POPULAR_PORTS[i % len(POPULAR_PORTS)]) for i in range(POPULAR)]
    writer = Writer(args.out)
    add = writer.add
    bots, seeds = [], []
    scans = 0
    targets = set()
    span = 3_600_000 - 60_000  # flows start in the hour and end within it
    for i, client in enumerate(clients(args.hosts)):
        t = HOUR_START_MS + i * span // args.hosts
        sport = 32768 + (i * 7919) % 28000
        for k in range(3 if i % 10 == 3 else 1):
            addr, port, proto = popular[int(POPULAR ** rand()) - 1]
            flags = 0x1B if proto == 6 else 0
            add((client, addr, sport + k, port, proto, flags, 6 + (i + k) % 20, 900 + (i * 31 + k) % 40_000, t + k,
                 t + k + 2_000 + (i % 5_000)))
        if i % 100 == 42:
            for k in range(10):
                target = SERVER_NET | (0x0002 + int(rand() * 0xFFFC))
                port = SCAN_PORTS[int(rand() * len(SCAN_PORTS))]
                add((client, target, 40_000 + k, port, 6, 0x02, 1, 60, t + 10 + k, t + 10 + k))
                targets.add((target, port))
                scans += 1
        if i % 10_000 == 7:
            bots.append(client)
            if len(bots) % 10 < 7:
                seeds.append(client)
            # Polls every five minutes through the hour (these start times step back in time:
            # they all fall in the same hourly window, as real exports interleave).
            offset = (i // 10_000) % 300_000
            for k in range(12):
                start = HOUR_START_MS + offset + k * 300_000
                add((client, CNC[0], 50_000 + k, CNC[1], 6, 0x1B, 4, 240, start, start + 1_500))
    writer.close()
    with open(args.seeds, "w") as f:
        f.write("".join(str(ipaddress.ip_address(b)) + "\n" for b in seeds))
    servers = {(a, p) for a, p, _ in popular} | targets | ({CNC} if bots else set())
    summary = {
        "hosts": args.hosts, "records": writer.records, "messages": writer.messages,
        "popular_servers": POPULAR, "scan_flows": scans, "distinct_servers": len(servers),
        "bots": len(bots), "seed_bots": len(seeds),
        "cnc": f"{ipaddress.ip_address(CNC[0])}:{CNC[1]}", "subscribers": subscriber_prefixes(),
    }
    if args.summary:
        with open(args.summary, "w") as f:
            json.dump(summary, f, indent=2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
