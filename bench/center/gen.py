#!/usr/bin/env python3
"""Synthetic records for bench/center, all on loopback addresses (as the lab's are).

    gen.py findings N OUT              N survey findings (one per address x port) as JSON lines
    gen.py world BOTNETS OUTDIR        a correlation world: per botnet 500 bots and 5 C&C servers,
                                       each server seeing 400 of the bots; day 1 and day 2, with one
                                       server of every botnet replaced on day 2. Writes
                                       OUTDIR/activity.jsonl (one infected host per bot) and
                                       OUTDIR/cnc.jsonl (one record per server and day, citing its
                                       bots' activity records in seed_refs, as flow analysers do).

Deterministic: the same arguments give the same bytes.
"""
import ipaddress
import random
import sys
import uuid

NAMESPACE = uuid.UUID("6b9a4a53-2f0e-4d5c-9a7b-0c1d2e3f4a5b")
BOTS_PER_BOTNET = 500
SERVERS_PER_BOTNET = 5
SEEN_PER_SERVER = 400


def bot_address(n):
    # 127.16.0.0/12 holds 1,048,576 addresses: enough for a million bots.
    return str(ipaddress.IPv4Address(0x7F100000 + n))


def server_address(n):
    # 127.200.0.0/14 for the servers.
    return str(ipaddress.IPv4Address(0x7FC80000 + n))


def findings(count, out):
    ports = [(23, "telnet"), (80, "http"), (22, "ssh"), (2323, "telnet")]
    with open(out, "w") as f:
        for n in range(count):
            port, protocol = ports[n % len(ports)]
            ip = bot_address(n // len(ports))
            f.write(
                '{"kind":"finding","observed_at":"2026-11-02T04:12:09Z","ip":"%s","port":%d,"protocol":"%s",'
                '"issue":"default_credential","credential_id":%d,"device":{"vendor":"Sakura Netware","model":"SR-300",'
                '"type":"router"},"round":"2026-11","sensor":"bench"}\n' % (ip, port, protocol, n % 61 + 1)
            )


def world(botnets, outdir):
    rng = random.Random(7)
    with open(f"{outdir}/activity.jsonl", "w") as activity:
        for bot in range(botnets * BOTS_PER_BOTNET):
            rid = uuid.uuid5(NAMESPACE, f"bot-{bot}")
            activity.write(
                '{"kind":"activity","id":"%s","window_start":"2026-11-02T00:00:00Z","window_end":"2026-11-03T00:00:00Z",'
                '"src":"%s","classification":"infected","tags":["mirai"],"packets":10,"mirai_packets":10,'
                '"distinct_destinations":9,"first_seen":"2026-11-02T00:03:51Z","last_seen":"2026-11-02T23:58:12Z",'
                '"sensor":"darknet-bench"}\n' % (rid, bot_address(bot))
            )
    spare = botnets * SERVERS_PER_BOTNET
    with open(f"{outdir}/cnc.jsonl", "w") as cnc:
        for day in (2, 3):
            for b in range(botnets):
                bots = list(range(b * BOTS_PER_BOTNET, (b + 1) * BOTS_PER_BOTNET))
                for s in range(SERVERS_PER_BOTNET):
                    server = b * SERVERS_PER_BOTNET + s
                    if day == 3 and s == 0:
                        server = spare + b  # the botnet moved one server
                    seen = sorted(rng.sample(bots, SEEN_PER_SERVER))
                    refs = ",".join('"%s"' % uuid.uuid5(NAMESPACE, f"bot-{x}") for x in seen)
                    cnc.write(
                        '{"kind":"cnc","window_start":"2026-11-%02dT00:00:00Z","window_end":"2026-11-%02dT01:00:00Z",'
                        '"ip":"%s","port":6667,"protocol":"tcp","score":0.95,"rank":1,"methods":["graph","model"],'
                        '"seed_clients":%d,"total_clients":%d,"seed_refs":[%s],"flows":900,'
                        '"first_seen":"2026-11-%02dT00:00:05Z","last_seen":"2026-11-%02dT00:59:00Z","sensor":"isp-bench"}\n'
                        % (day, day, server_address(server), SEEN_PER_SERVER, SEEN_PER_SERVER, refs, day, day)
                    )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "findings":
        findings(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "world":
        world(int(sys.argv[2]), sys.argv[3])
    else:
        sys.exit(__doc__)
