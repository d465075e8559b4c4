#!/usr/bin/env python3
"""An imaptest-like IMAP mix against one server; prints commands/s and the server's CPU per command.

usage: bench-imap-mix.py NAME HOST PORT PIDS USERS PASSWORD CLIENTS SECONDS
  PIDS   comma-separated server pids; each one's CPU (utime+stime, and cutime+cstime of reaped
         children: Dovecot's per-session imap processes) plus that of its live descendants is counted
  USERS  comma-separated logins; client i uses USERS[i % len]
Each client loops sessions: LOGIN, SELECT INBOX, 10 x (FETCH of random fields of a random message,
FETCH BODY.PEEK[], STORE +FLAGS/-FLAGS), APPEND, STORE \\Deleted + EXPUNGE of one message, LOGOUT.
Before the clock starts every INBOX gets 20 messages (not counted). Prints one line:
  NAME clients=N seconds=S commands=C cmd/s=R cpu_s=T cpu_us/cmd=U errors=E
The driver (Python asyncio, one process) shares the machine: its own speed caps commands/s.
"""
import asyncio
import os
import random
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")
MSG = (b"From: Bench <bench@bench.test>\r\nTo: <u@bench.test>\r\nSubject: mix %d\r\n"
       b"Date: Mon, 4 Mar 2024 10:00:00 +0000\r\nMessage-ID: <mix%d@bench.test>\r\n\r\n" + b"body line\r\n" * 150)
FIELDS = ["FLAGS", "UID", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE", "INTERNALDATE",
          "BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)]"]


def children():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rfind(")") + 2:].split()
        kids.setdefault(int(rest[1]), []).append((int(d), rest))
    return kids


def cpu(pids):
    kids = children()
    total = 0
    seen = set()
    def walk(pid, rest, top):
        nonlocal total
        if pid in seen:
            return
        seen.add(pid)
        total += int(rest[11]) + int(rest[12])
        if top:
            total += int(rest[13]) + int(rest[14])
        for k, r in kids.get(pid, []):
            walk(k, r, False)
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
        walk(pid, s[s.rfind(")") + 2:].split(), True)
    return total / TICK


class Conn:
    def __init__(self, r, w):
        self.r, self.w, self.n = r, w, 0

    async def cmd(self, text, literal=None):
        self.n += 1
        tag = b"t%d" % self.n
        if literal is None:
            self.w.write(tag + b" " + text + b"\r\n")
        else:
            self.w.write(tag + b" " + text + b" {%d+}\r\n" % len(literal) + literal + b"\r\n")
        while True:
            line = await self.r.readline()
            if not line:
                raise ConnectionError("closed")
            while line.endswith(b"}\r\n") and b"{" in line:
                n = int(line[line.rfind(b"{") + 1:-3])
                await self.r.readexactly(n)
                line = await self.r.readline()
            if line.startswith(tag + b" "):
                return line[len(tag) + 1:].startswith(b"OK")


async def connect(host, port):
    r, w = await asyncio.open_connection(host, port, limit=1 << 20)
    await r.readline()
    return Conn(r, w)


async def preload(host, port, user, password):
    c = await connect(host, port)
    await c.cmd(b'LOGIN "%s" "%s"' % (user.encode(), password.encode()))
    for i in range(20):
        await c.cmd(b"APPEND INBOX", MSG % (i, i))
    await c.cmd(b"LOGOUT")
    c.w.close()


async def client(host, port, user, password, stop, stats):
    rnd = random.Random(user)
    while time.monotonic() < stop:
        try:
            c = await connect(host, port)
            ok = [await c.cmd(b'LOGIN "%s" "%s"' % (user.encode(), password.encode())),
                  await c.cmd(b"SELECT INBOX")]
            for _ in range(10):
                n = rnd.randint(1, 15)
                f = " ".join(rnd.sample(FIELDS, rnd.randint(1, 3))).encode()
                ok.append(await c.cmd(b"FETCH %d (%s)" % (n, f)))
                ok.append(await c.cmd(b"FETCH %d BODY.PEEK[]" % rnd.randint(1, 15)))
                sign = b"+" if rnd.random() < 0.5 else b"-"
                ok.append(await c.cmd(b"STORE %d %sFLAGS (\\Seen \\Flagged)" % (n, sign)))
            ok.append(await c.cmd(b"APPEND INBOX", MSG % (rnd.randint(0, 1 << 30), c.n)))
            ok.append(await c.cmd(b"STORE 1 +FLAGS.SILENT (\\Deleted)"))
            ok.append(await c.cmd(b"EXPUNGE"))
            ok.append(await c.cmd(b"LOGOUT"))
            c.w.close()
            stats[0] += len(ok)
            stats[1] += ok.count(False)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            stats[1] += 1


async def main():
    name, host, port, pids, users, password, clients, seconds = sys.argv[1:9]
    port, clients, seconds = int(port), int(clients), float(seconds)
    pids = [int(p) for p in pids.split(",")]
    users = users.split(",")
    await asyncio.gather(*(preload(host, port, u, password) for u in users[:clients]))
    stats = [0, 0]
    c0, t0 = cpu(pids), time.monotonic()
    stop = t0 + seconds
    await asyncio.gather(*(client(host, port, users[i % len(users)], password, stop, stats)
                           for i in range(clients)))
    c1, t1 = cpu(pids), time.monotonic()
    cmds, el, used = stats[0], t1 - t0, c1 - c0
    print(f"{name} clients={clients} seconds={el:.1f} commands={cmds} cmd/s={cmds / el:.0f} "
          f"cpu_s={used:.2f} cpu_us/cmd={1e6 * used / max(cmds, 1):.1f} errors={stats[1]}")


asyncio.run(main())
