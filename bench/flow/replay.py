#!/usr/bin/env python3
"""Replays the UDP payloads of a capture to a collector on 127.0.0.1, paced in flow records/s.

    replay.py --pcap FILE --port PORT [--rate RECORDS_PER_S] [--count-only]

Used by bench/flow/run. Every datagram goes to 127.0.0.1:PORT and nowhere else: only the UDP
payload of each captured IPv4 packet is kept, and it is sent through an ordinary UDP socket
(addresses and ports in the capture are ignored). tcpreplay would be the usual tool, but Linux
drops frames injected on `lo` whose addresses are 127/8 as martians (unless
net.ipv4.conf.lo.route_localnet=1), so this script does the replaying itself.

The payloads are NetFlow v5, v9 or IPFIX; the script counts the flow records in each (v5: the
header's count; v9 and IPFIX: data sets divided by their template's record length; options data
is not counted) so that pacing and the "records sent" figure do not depend on either collector.
--rate 0 sends as fast as one Python thread can. Prints one JSON line: datagrams, records,
seconds, records_per_s, send_errors.
"""

import argparse
import json
import socket
import struct
import sys
import time


def read_pcap(path):
    """UDP payloads of the IPv4 packets in a classic pcap file (either byte order, us or ns)."""
    data = open(path, "rb").read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        sys.exit(f"{path}: not a classic pcap file")
    linktype = struct.unpack_from(endian + "I", data, 20)[0] & 0x0FFFFFFF
    # Bytes before the IP header, per link type: Ethernet, BSD loopback, raw IP, Linux cooked.
    link_header = {1: 14, 0: 4, 108: 4, 101: 0, 228: 0, 113: 16}.get(linktype)
    if link_header is None:
        sys.exit(f"{path}: link type {linktype} not handled")
    record = struct.Struct(endian + "IIII")
    payloads = []
    at = 24
    end = len(data)
    while at + 16 <= end:
        _, _, caplen, _ = record.unpack_from(data, at)
        at += 16
        frame = data[at:at + caplen]
        at += caplen
        if linktype == 1 and frame[12:14] != b"\x08\x00":
            continue
        ip = link_header
        if len(frame) < ip + 28 or frame[ip] >> 4 != 4 or frame[ip + 9] != 17:
            continue
        udp = ip + (frame[ip] & 0x0F) * 4
        length = struct.unpack_from("!H", frame, udp + 4)[0]
        payloads.append(frame[udp + 8:udp + length])
    return payloads


class Counter:
    """Counts flow records per datagram, learning template record lengths as they come."""

    def __init__(self):
        self.lengths = {}  # (version, domain, template id) -> (record length, is options)

    def records(self, d):
        if len(d) < 4:
            return 0
        version = struct.unpack_from("!H", d, 0)[0]
        if version == 5:
            return struct.unpack_from("!H", d, 2)[0]
        if version == 9 and len(d) >= 20:
            return self.sets(d, 20, len(d), 9, struct.unpack_from("!I", d, 16)[0], 0, 1)
        if version == 10 and len(d) >= 16:
            length = min(struct.unpack_from("!H", d, 2)[0], len(d))
            return self.sets(d, 16, length, 10, struct.unpack_from("!I", d, 12)[0], 2, 3)
        return 0

    def sets(self, d, at, end, version, domain, template_set, options_set):
        count = 0
        while at + 4 <= end:
            set_id, set_len = struct.unpack_from("!HH", d, at)
            if set_len < 4 or at + set_len > end:
                break
            body, body_end = at + 4, at + set_len
            if set_id in (template_set, options_set):
                self.templates(d, body, body_end, version, domain, set_id == options_set)
            elif set_id >= 256:
                known = self.lengths.get((version, domain, set_id))
                if known and not known[1] and known[0] > 0:
                    count += (set_len - 4) // known[0]
            at = body_end
        return count

    def templates(self, d, at, end, version, domain, options):
        while at + 4 <= end:
            template_id, n = struct.unpack_from("!HH", d, at)
            at += 4
            if template_id < 256:
                return  # padding
            if options and version == 9:
                # v9 options template: scope length and option length in bytes, then fields.
                scope_len = n
                option_len = struct.unpack_from("!H", d, at)[0]
                at += 2
                fields = (scope_len + option_len) // 4
            else:
                fields = n
                if options:
                    at += 2  # IPFIX: scope field count
            length = 0
            for _ in range(fields):
                if at + 4 > end:
                    return
                element, size = struct.unpack_from("!HH", d, at)
                at += 4
                if version == 10 and element & 0x8000:
                    at += 4  # enterprise number
                length += size if size != 0xFFFF else 1  # variable length: not in these captures
            self.lengths[(version, domain, template_id)] = (length, options)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pcap", required=True)
    parser.add_argument("--port", type=int, required=False, default=0)
    parser.add_argument("--rate", type=float, default=0, help="flow records per second (0 = as fast as possible)")
    parser.add_argument("--count-only", action="store_true", help="count datagrams and records, send nothing")
    args = parser.parse_args()

    payloads = read_pcap(args.pcap)
    counter = Counter()
    per = [counter.records(d) for d in payloads]
    total = sum(per)
    if args.count_only:
        print(json.dumps({"datagrams": len(payloads), "records": total}))
        return
    if not 0 < args.port < 65536:
        sys.exit("--port is required")

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sock.connect(("127.0.0.1", args.port))  # loopback only, by construction
    send = sock.send
    errors = 0
    started = time.perf_counter()
    if args.rate <= 0:
        for d in payloads:
            try:
                send(d)
            except OSError:
                errors += 1
    else:
        # Paced by records: datagram i may leave once the records before it are due.
        due_records = 0
        i, n = 0, len(payloads)
        rate = args.rate
        clock = time.perf_counter
        while i < n:
            allowed = (clock() - started) * rate
            if due_records > allowed:
                time.sleep(min(0.002, (due_records - allowed) / rate))
                continue
            while i < n and due_records <= allowed:
                try:
                    send(payloads[i])
                except OSError:
                    errors += 1
                due_records += per[i]
                i += 1
    seconds = time.perf_counter() - started
    print(json.dumps({"datagrams": len(payloads), "records": total, "seconds": round(seconds, 4),
                      "records_per_s": round(total / seconds) if seconds else None,
                      "rate_asked": args.rate, "send_errors": errors}))


if __name__ == "__main__":
    main()
