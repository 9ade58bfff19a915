#!/usr/bin/env python3
"""Turns a labelled IoT-23 capture (Zeek conn.log rows as CSV with `label` and `detailed-label`
columns, or the dataset's own `conn.log.labeled`) into what the detection benchmark needs.

    bench/detection/iot23.py CAPTURE OUTDIR [--gzip]

Writes OUTDIR/conn.log (Zeek TSV without the label columns, for `flow analyze --format zeek`),
OUTDIR/truth.jsonl (every endpoint a row labels C&C is a C&C server; every other endpoint the
infected host reached is a negative, classed by its port) and OUTDIR/seeds.txt (the infected host:
the originator of the C&C rows, the one known bot). Nothing is sent anywhere.
"""

import csv
import datetime
import gzip
import json
import os
import sys

FIELDS = ("ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto service duration orig_bytes resp_bytes "
          "conn_state local_orig local_resp missed_bytes history orig_pkts orig_ip_bytes resp_pkts resp_ip_bytes "
          "tunnel_parents").split()
CLASSES = {(123, "udp"): "ntp", (53, "udp"): "dns", (53, "tcp"): "dns", (443, "tcp"): "web", (80, "tcp"): "web"}


def rows(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        first = f.readline()
        f.seek(0)
        if first.startswith("#"):
            names = None
            for line in f:
                if line.startswith("#fields"):
                    # The dataset's header separates its last two names with spaces.
                    names = line.rstrip("\n").split("\t")[1:]
                    names = [n for part in names for n in part.split()]
                    continue
                if line.startswith("#"):
                    continue
                values = [v for part in line.rstrip("\n").split("\t") for v in part.split("   ")]
                yield dict(zip(names, values))
        else:
            yield from csv.DictReader(f)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    capture, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    cnc, endpoints, bots = {}, {}, set()
    with open(os.path.join(out, "conn.log"), "w") as log:
        log.write("#separator \\x09\n#path\tconn\n#fields\t" + "\t".join(FIELDS) + "\n")
        for row in rows(capture):
            log.write("\t".join((row.get(k) or "-") for k in FIELDS) + "\n")
            key = (row["id.resp_h"], int(row["id.resp_p"]), row["proto"])
            label = (row.get("detailed-label") or "") + " " + (row.get("label") or "")
            if "C&C" in label:
                cnc[key] = min(cnc.get(key, float(row["ts"])), float(row["ts"]))
                bots.add(row["id.orig_h"])
            else:
                endpoints.setdefault(key, row["id.orig_h"])
    with open(os.path.join(out, "truth.jsonl"), "w") as f:
        for (ip, port, proto), first in sorted(cnc.items()):

            when = datetime.datetime.fromtimestamp(first, datetime.timezone.utc).isoformat().replace("+00:00", "Z")
            f.write(json.dumps({"kind": "cnc", "ip": ip, "port": port, "protocol": proto, "from": when}) + "\n")
        for (ip, port, proto), orig in sorted(endpoints.items()):
            if (ip, port, proto) in cnc or orig not in bots:
                continue
            f.write(json.dumps({"kind": "negative", "cls": CLASSES.get((port, proto), "other"), "ip": ip,
                                "port": port, "protocol": proto}) + "\n")
    with open(os.path.join(out, "seeds.txt"), "w") as f:
        f.write("".join(b + "\n" for b in sorted(bots)))
    print(json.dumps({"cnc_servers": len(cnc), "bots": sorted(bots), "out": out}))


if __name__ == "__main__":
    main()
