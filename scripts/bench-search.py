#!/usr/bin/env python3
"""End-to-end latency of the message list and search over HTTP, with many messages stored.

Used by scripts/bench-search.sh, which starts `mailrig serve` and passes its addresses:

    bench-search.py SMTP_HOST:PORT HTTP_BASE MESSAGES MAILBOXES PID

Sends MESSAGES messages over SMTP (8 connections, the shapes of benches/benches/search.rs: plain,
quoted-printable, multipart/alternative, HTML only, one in fifty with a 16 KiB attachment) round-robin
to u1..uMAILBOXES@bench.test, waits until the API lists all of them, then sends each query REQUESTS
times over one keep-alive connection and prints p50, p99 and the slowest, in milliseconds, and the
server's resident set (VmRSS of PID) before and after the mail and after the first query.
"""

import base64
import http.client
import json
import smtplib
import sys
import threading
import time
import urllib.parse

SMTP, BASE, MESSAGES, MAILBOXES, PID = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
REQUESTS = 200
WORDS = ("vertrag frist patent rechnung termin akte mandant gericht anlage schreiben bitte danke heute "
         "morgen woche prüfung Grüße Ärger invoice meeting report status release deploy build ticket "
         "review customer").split()


class Rng:
    def __init__(self, seed):
        self.x = seed

    def below(self, n):
        self.x ^= (self.x << 13) & 0xFFFFFFFFFFFFFFFF
        self.x ^= self.x >> 7
        self.x ^= (self.x << 17) & 0xFFFFFFFFFFFFFFFF
        return self.x % n

    def words(self, n):
        return " ".join(WORDS[self.below(len(WORDS))] + ("\n" if i % 12 == 11 else "") for i in range(n))


def message(rng, i, to):
    sender = f"sender{rng.below(200)}@extern{rng.below(5)}.test"
    subject = f"{rng.words(3)} {WORDS[i % len(WORDS)]} #{i}"
    n = 30 + rng.below(600)
    head = (f"From: Absender {i} <{sender}>\nTo: {to}\nSubject: =?utf-8?b?"
            f"{base64.b64encode(subject.encode()).decode()}?=\nMessage-ID: <m{i}@bench.test>\n"
            f"Date: Mon, 1 Dec 2026 10:00:00 +0000\nX-Case: {rng.below(10000)}-{WORDS[rng.below(len(WORDS))]}\n"
            "MIME-Version: 1.0\n")
    kind = i % 10
    if kind <= 4:
        body = f"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n{rng.words(n)}\n"
    elif kind <= 6:
        text = rng.words(n).replace("ü", "=C3=BC").replace("ß", "=C3=9F")
        body = f"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n{text}\n"
    elif kind <= 8:
        text = rng.words(n // 2)
        html = text.replace("\n", "</p><p>")
        body = ("Content-Type: multipart/alternative; boundary=alt\n\n--alt\n"
                f"Content-Type: text/plain; charset=utf-8\n\n{text}\n--alt\n"
                f"Content-Type: text/html; charset=utf-8\n\n<html><body><p>{html}</p></body></html>\n--alt--\n")
    else:
        body = (f"Content-Type: text/html; charset=utf-8\n\n<html><body><h1>{rng.words(4)}</h1>"
                f"<p>{rng.words(n)}</p></body></html>\n")
    if i % 50 == 0:
        line = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\n"
        inner = body.split("\n\n", 1)[1]
        body = ("Content-Type: multipart/mixed; boundary=mix\n\n--mix\n"
                f"Content-Type: text/plain; charset=utf-8\n\n{inner}\n--mix\n"
                "Content-Type: application/pdf; name=akte.pdf\nContent-Disposition: attachment; filename=akte.pdf\n"
                f"Content-Transfer-Encoding: base64\n\n{line * 287}--mix--\n")
    return (head + body).replace("\n", "\r\n").encode()


def rss_mib():
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def send(part, parts, sent):
    host, port = SMTP.rsplit(":", 1)
    rng = Rng(0x5EED + part)
    with smtplib.SMTP(host, int(port), timeout=60) as s:
        for i in range(part, MESSAGES, parts):
            to = f"u{i % MAILBOXES + 1}@bench.test"
            s.sendmail(f"bounce{i % 100}@extern.test", [to], message(rng, i, to))
            sent[part] += 1


def main():
    url = urllib.parse.urlsplit(BASE)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)

    def get(path):
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            sys.exit(f"bench-search: GET {path}: {r.status} {body[:300]!r}")
        return json.loads(body)

    rss_empty = rss_mib()
    parts, sent = 8, [0] * 8
    t = time.monotonic()
    threads = [threading.Thread(target=send, args=(p, parts, sent)) for p in range(parts)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if sum(sent) != MESSAGES:
        sys.exit(f"bench-search: sent {sum(sent)} of {MESSAGES}")
    print(f"sent {MESSAGES} messages in {time.monotonic() - t:.1f} s")
    rss_mail = rss_mib()
    t = time.monotonic()
    total = get("/api/v1/messages?limit=1")["total"]
    print(f"first list after the mail: {(time.monotonic() - t) * 1000:.0f} ms (total {total})")
    if total != MESSAGES:
        sys.exit(f"bench-search: the API lists {total} of {MESSAGES} messages")
    rss_index = rss_mib()
    print(f"server RSS: empty {rss_empty:.0f} MiB, with the mail {rss_mail:.0f} MiB, "
          f"after the first query {rss_index:.0f} MiB")

    queries = [
        ("list, first page", "limit=50"),
        ("list, last page", f"limit=50&offset={MESSAGES - 50}"),
        ("subject", "subject=%234711"),
        ("from", "from=sender7@extern3.test"),
        ("to", "to=u42@bench.test"),
        ("mailbox", "mailbox=u42@bench.test"),
        ("body text (found)", "text=" + urllib.parse.quote("prüfung")),
        ("body text (nowhere)", "text=zitronenfalter"),
        ("header", "header=" + urllib.parse.quote("X-Case: 4711-")),
        ("free text q", "q=" + urllib.parse.quote("absender 4711")),
        ("date window", "after=2000-01-01T00:00:00Z&before=2000-01-02T00:00:00Z"),
    ]
    print(f"{'query':22} {'matches':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, q in queries:
        times = []
        found = 0
        for _ in range(REQUESTS):
            t = time.perf_counter()
            found = get("/api/v1/messages?" + q)["total"]
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        p = lambda f: times[min(len(times) - 1, int(len(times) * f))]
        print(f"{name:22} {found:8} {p(0.5):8.1f} {p(0.99):8.1f} {times[-1]:8.1f}")


main()
