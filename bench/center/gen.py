#!/usr/bin/env python3
"""Synthetic records for bench/center, all on loopback addresses (as the lab's are).

    gen.py findings N OUT              N survey findings (one per address x port) as JSON lines
    gen.py world BOTNETS OUTDIR        a correlation world: per botnet 500 bots and 5 C&C servers,
                                       each server seeing 400 of the bots; day 1 and day 2, with one
                                       server of every botnet replaced on day 2. Writes
                                       OUTDIR/activity.jsonl (one infected host per bot) and
                                       OUTDIR/cnc.jsonl (one record per server and day, citing its
                                       bots' activity records in seed_refs, as flow analysers do).
    gen.py year SCALE OUTDIR           a year (2025-11-01 to 2026-10-31) as a national centre holds it,
                                       at SCALE 1.0: 5,000,000 telescope activity records (hourly
                                       windows of 400,000 bots, a few heavy, most seen now and then),
                                       700,000 survey findings and 300,000 service records in twelve
                                       monthly rounds, 500,000 notification cases and 50,000 C&C
                                       reports (each citing a few of its day's bots), spread over
                                       three ISPs. Writes OUTDIR/year-*.jsonl.

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


ISPS = ["hikari-net", "sakura-bb", "tsubame-mobile"]
PORTS = [(23, "telnet"), (80, "http"), (22, "ssh"), (2323, "telnet"), (8080, "http")]
TYPES = ["router", "camera", "dvr", "nvr", "nas", "printer"]


def year(scale, outdir):
    import datetime

    rng = random.Random(11)
    first = datetime.date(2025, 11, 1)
    days = [first + datetime.timedelta(days=d) for d in range(365)]
    bots = max(1, int(400_000 * scale))
    # A few heavy bots are seen every hour; most now and then (a skewed draw).
    pick_bot = lambda: int(bots * rng.random() ** 3)
    isp_of = lambda host: ISPS[host % len(ISPS)]
    per_day = max(1, int(5_000_000 * scale) // len(days))
    day_ids = {}
    with open(f"{outdir}/year-activity.jsonl", "w") as out:
        for day in days:
            seen = set()
            ids = []
            while len(seen) < per_day:
                host, hour = pick_bot(), rng.randrange(24)
                if (host, hour) in seen:
                    continue
                seen.add((host, hour))
                rid = uuid.uuid5(NAMESPACE, f"activity-{day}-{host}-{hour}")
                if len(ids) < 50:
                    ids.append(rid)
                at = f"{day}T{hour:02d}"
                out.write(
                    '{"kind":"activity","id":"%s","window_start":"%s:00:00Z","window_end":"%s:59:59Z",'
                    '"src":"%s","classification":"infected","tags":["mirai"],"packets":12,"mirai_packets":12,'
                    '"distinct_destinations":11,"first_seen":"%s:03:51Z","last_seen":"%s:58:12Z",'
                    '"isp":"%s","sensor":"darknet-bench"}\n' % (rid, at, at, bot_address(host), at, at, isp_of(host))
                )
            day_ids[day] = ids
    rounds = [d for d in days if d.day == 2]
    for kind, total in (("finding", 700_000), ("service", 300_000)):
        per_round = max(1, int(total * scale) // len(rounds))
        with open(f"{outdir}/year-{kind}.jsonl", "w") as out:
            for day in rounds:
                seen = set()
                while len(seen) < per_round:
                    host, (port, protocol) = rng.randrange(bots), PORTS[rng.randrange(len(PORTS))]
                    if (host, port) in seen:
                        continue
                    seen.add((host, port))
                    device = '{"vendor":"Sakura Netware","model":"SR-%d","type":"%s","release_year":%d}' % (
                        host % 50, TYPES[host % len(TYPES)], 2008 + host % 12)
                    at = f"{day}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:09Z"
                    if kind == "finding":
                        line = ('{"kind":"finding","observed_at":"%s","ip":"%s","port":%d,"protocol":"%s",'
                                '"issue":"default_credential","credential_id":%d,"device":%s,"round":"%s",'
                                '"sensor":"survey-bench","isp":"%s"}\n'
                                % (at, bot_address(host), port, protocol, host % 61 + 1, device, day.strftime("%Y-%m"),
                                   isp_of(host)))
                    else:
                        line = ('{"kind":"service","observed_at":"%s","ip":"%s","port":%d,"protocol":"%s",'
                                '"status":"success","banner":"SR login: ","auth":"password","device":%s,'
                                '"round":"%s","sensor":"survey-bench"}\n'
                                % (at, bot_address(host), port, protocol, device, day.strftime("%Y-%m")))
                    out.write(line)
    reasons = ["default_credential", "infected", "no_authentication", "exposed_management"]
    statuses = ["sent", "sent", "contacted", "fixed", "not_fixed", "unreachable"]
    per_day = max(1, int(500_000 * scale) // len(days))
    with open(f"{outdir}/year-notification.jsonl", "w") as out:
        n = 0
        for day in days:
            for _ in range(per_day):
                host = rng.randrange(bots)
                port, protocol = PORTS[n % len(PORTS)]
                out.write(
                    '{"kind":"notification","id":"%s","isp":"%s","ip":"%s","port":%d,"protocol":"%s","reason":"%s",'
                    '"created_at":"%sT01:00:00Z","last_notified":"%sT01:00:00Z","times_notified":1,'
                    '"last_period":"month:%s","status":"%s","language":"ja","evidence":[],"guide":"generic"}\n'
                    % (uuid.uuid5(NAMESPACE, f"case-{n}"), isp_of(host), bot_address(host), port, protocol,
                       reasons[n % len(reasons)], day, day, day.strftime("%Y-%m"), statuses[rng.randrange(len(statuses))])
                )
                n += 1
    per_day = max(1, int(50_000 * scale) // len(days))
    with open(f"{outdir}/year-cnc.jsonl", "w") as out:
        for day in days:
            for s in range(per_day):
                server = rng.randrange(5_000)
                hour = s % 24
                refs = ",".join('"%s"' % r for r in rng.sample(day_ids[day], min(5, len(day_ids[day]))))
                at = f"{day}T{hour:02d}"
                out.write(
                    '{"kind":"cnc","window_start":"%s:00:00Z","window_end":"%s:59:59Z","ip":"%s","port":6667,'
                    '"protocol":"tcp","score":0.9,"rank":1,"methods":["graph","model"],"seed_clients":5,'
                    '"total_clients":40,"seed_refs":[%s],"flows":300,"first_seen":"%s:00:05Z","last_seen":"%s:59:00Z",'
                    '"sensor":"isp-bench-%d"}\n' % (at, at, server_address(server), refs, at, at, s % 8)
                )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "findings":
        findings(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "world":
        world(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "year":
        year(float(sys.argv[2]), sys.argv[3])
    else:
        sys.exit(__doc__)
