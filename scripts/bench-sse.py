#!/usr/bin/env python3
"""How soon a Server-Sent Events subscriber sees a delivery after the sender got its 250.

    bench-sse.py SMTP_HOST:PORT HTTP_BASE TO [COUNT]

Opens GET /api/v1/events (one subscriber, read on its own thread, each event stamped with
time.perf_counter() the moment its blank line arrives), then sends COUNT (default 200)
messages with smtplib over one connection to TO, stamping the moment each sendmail()
returns (the 250 after DATA is in). The latency of message i is the stamp of the
`delivery` event whose subject is `sse-RUN-i` minus the stamp of its 250; printed as
p50, p99 and max in milliseconds (negative: the event arrived before smtplib returned).
Used by scripts/bench-search.sh (with 100,000 messages stored) and runnable on its own
against any `mailrig serve`.
"""

import http.client
import json
import os
import smtplib
import sys
import threading
import time
import urllib.parse

SMTP, BASE, TO = sys.argv[1], sys.argv[2], sys.argv[3]
COUNT = int(sys.argv[4]) if len(sys.argv) > 4 else 200
RUN = f"{os.getpid()}-{int(time.time())}"

seen = {}
ready = threading.Event()
done = threading.Event()


def follow():
    url = urllib.parse.urlsplit(BASE)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    conn.request("GET", "/api/v1/events", headers={"Accept": "text/event-stream"})
    r = conn.getresponse()
    if r.status != 200:
        sys.exit(f"bench-sse: GET /api/v1/events: {r.status} {r.read(300)!r}")
    ev = {}
    while not done.is_set():
        line = r.fp.readline()
        if not line:
            return
        line = line.decode().rstrip("\r\n")
        if line == "":
            now = time.perf_counter()
            if ev.get("event") == "hello":
                ready.set()
            elif ev.get("event") == "delivery":
                subject = json.loads(ev.get("data", "{}")).get("subject", "")
                if subject.startswith(f"sse-{RUN}-"):
                    seen[int(subject.rsplit("-", 1)[1])] = now
                    if len(seen) == COUNT:
                        done.set()
            ev = {}
        elif not line.startswith(":"):
            k, _, v = line.partition(":")
            ev[k] = v[1:] if v.startswith(" ") else v


def main():
    t = threading.Thread(target=follow, daemon=True)
    t.start()
    if not ready.wait(30):
        sys.exit("bench-sse: no hello event within 30 s")
    host, port = SMTP.rsplit(":", 1)
    sent = {}
    with smtplib.SMTP(host, int(port), timeout=60) as s:
        for i in range(COUNT):
            msg = (f"From: sse@extern.test\r\nTo: {TO}\r\nSubject: sse-{RUN}-{i}\r\n"
                   f"Message-ID: <sse-{RUN}-{i}@bench.test>\r\n\r\nhello {i}\r\n")
            s.sendmail("sse@extern.test", [TO], msg)
            sent[i] = time.perf_counter()
    if not done.wait(30):
        sys.exit(f"bench-sse: the stream showed {len(seen)} of {COUNT} deliveries within 30 s")
    lat = sorted((seen[i] - sent[i]) * 1000 for i in range(COUNT))
    p = lambda f: lat[min(len(lat) - 1, int(len(lat) * f))]
    print(f"SSE delivery after its 250, {COUNT} messages over one SMTP connection: "
          f"p50 {p(0.5):.2f} ms, p99 {p(0.99):.2f} ms, max {lat[-1]:.2f} ms, min {lat[0]:.2f} ms")


main()
