#!/usr/bin/env python3
"""The peer: pyasn (a C radix tree behind Python) answering the same lookups, same output columns.

Usage: pyasn_lookup.py IPASN_FILE < addresses > answers   (ip, prefix, first origin AS; '-' if none)
"""
import sys

import pyasn


def main():
    db = pyasn.pyasn(sys.argv[1])
    out = sys.stdout
    for line in sys.stdin:
        ip = line.strip()
        if not ip:
            continue
        asn, prefix = db.lookup(ip)
        out.write(f"{ip}\t{prefix or '-'}\t{asn or '-'}\n")


if __name__ == "__main__":
    main()
