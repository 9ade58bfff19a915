#!/usr/bin/env python3
"""Seeds for the router_requests fuzz target: one request per route and role, ingest batches of the
example records, verdicts, TAXII envelopes and extreme query values.

An input is four bytes (method, token, route, flags) and then path value, query and body separated
by NUL bytes; fuzz_targets/router_requests.rs reads it. Run from fuzz/:
    python3 make-router-corpus.py corpus/router_requests
"""
import os
import sys

ROUTES = 30  # fuzz_targets/router_requests.rs ROUTES
TOKENS = 6  # five roles' tokens, then none
INGEST, NOTIFICATIONS, STATUS, RECHECK, REPORT, OVERVIEW, LOGIN, OBJECTS = 1, 4, 5, 6, 7, 8, 15, 25

out = sys.argv[1] if len(sys.argv) > 1 else "corpus/router_requests"
os.makedirs(out, exist_ok=True)
examples = open(os.path.join(os.path.dirname(__file__) or ".", "..", "data", "examples", "records.jsonl"), "rb").read()
seeds = []


def seed(method, token, route, flags, path_value=b"", query=b"", body=b""):
    seeds.append(bytes([method, token, route, flags]) + path_value + b"\0" + query + b"\0" + body)


for route in range(ROUTES):
    for token in range(TOKENS):
        seed(0, token, route, 0)
seed(1, 3, INGEST, 0, body=examples)
seed(1, 4, INGEST, 0, body=examples)
seed(1, 0, INGEST, 0x40, body=examples)
seed(1, 4, INGEST, 0, body=b'{"kind":"outcome","notification":"190db74e-4ec9-5071-b614-648db3ea71ef",'
     b'"isp":"hikari-net","status":"fixed","at":"2026-11-10T02:00:00Z","source":"recheck"}')
seed(0, 4, RECHECK, 0, query=b"min_age_days=4294967295")
seed(0, 1, REPORT, 0, query=b"period=month&report=default_credentials")
seed(0, 0, NOTIFICATIONS, 0, query=b"isp=hikari-net&format=csv")
seed(1, 1, STATUS, 2, body=b'{"status":"fixed","note":"x"}')
seed(0, 0, OVERVIEW, 0, query=b"from=2026-11-01&to=2026-11-30&format=csv&table=trend")
envelope = (b'{"objects":[{"type":"indicator","spec_version":"2.1","id":"indicator--3b1c8f7e-2a4d-4c5e-9f60-7a8b9c0d1e2f",'
            b'"created":"2026-11-06T00:00:00.000Z","modified":"2026-11-06T00:00:00.000Z","name":"C&C",'
            b'"pattern_type":"stix","valid_from":"2026-11-06T00:00:00Z","pattern":"[ipv4-addr:value = \'127.200.9.9\']"}]}')
for token in range(TOKENS):
    seed(1, token, OBJECTS, 0x12, body=envelope)
seed(0, 1, OBJECTS, 0x12, query=b"limit=2&added_after=2026-01-01T00:00:00Z&match[type]=indicator")
seed(1, 0, LOGIN, 0x20, body=b"token=bst_x&next=/portal&nonce=abc")
for n, data in enumerate(seeds):
    with open(os.path.join(out, f"seed{n:03d}"), "wb") as f:
        f.write(data)
print(f"{len(seeds)} seeds in {out}")
