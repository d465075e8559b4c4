#!/usr/bin/env python3
"""Self-test of the private Postfix + Dovecot harness (stdlib only).

Starts an instance in a temporary directory with user03@patente.test discarded,
sends one tagged message to each of the 28 mailboxes over SMTP, reads every
mailbox back over IMAP (and the POP3 of one), and expects 27 delivered and
user03 empty although Postfix answered 250 for it. Stops the instance whatever
happens; exits 1 with a message naming what failed.

    python3 scripts/realmail/selftest.py [--keep]    (--keep: leave the state dir)
"""

import imaplib
import os
import poplib
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
import uuid
from email.message import EmailMessage

HERE = os.path.dirname(os.path.abspath(__file__))
DISCARDED = "user03@patente.test"
WAIT_SECONDS = 30


class Failure(Exception):
    pass


def parse_env(text):
    env = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            env[key] = value
    return env


def send_all(env, mailboxes, tag):
    """One message per mailbox; every RCPT and DATA must get 2xx."""
    with smtplib.SMTP(env["SMTP_HOST"], int(env["SMTP_PORT"]), timeout=10) as smtp:
        for addr in mailboxes:
            msg = EmailMessage()
            msg["From"] = "prober@mailrig.test"
            msg["To"] = addr
            msg["Subject"] = f"mailrig selftest {tag} {addr}"
            msg["X-Mailrig-Tag"] = tag
            msg.set_content(f"tag {tag} for {addr}\n")
            refused = smtp.send_message(msg)
            if refused:
                raise Failure(f"SMTP refused {addr}: {refused}")


def count_tagged(env, addr, tag):
    imap = imaplib.IMAP4(env["SMTP_HOST"], int(env["IMAP_PORT"]), timeout=10)
    try:
        imap.login(addr, env["PASSWORD"])
        imap.select("INBOX", readonly=True)
        typ, data = imap.search(None, "HEADER", "X-Mailrig-Tag", tag)
        if typ != "OK":
            raise Failure(f"IMAP SEARCH failed for {addr}: {typ} {data}")
        return len(data[0].split())
    finally:
        try:
            imap.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def read_back(env, mailboxes, tag):
    """Poll until every non-discarded mailbox holds its message or time runs out."""
    expected = [a for a in mailboxes if a != DISCARDED]
    deadline = time.monotonic() + WAIT_SECONDS
    counts = {}
    while True:
        counts = {a: count_tagged(env, a, tag) for a in mailboxes}
        if all(counts[a] >= 1 for a in expected) or time.monotonic() > deadline:
            return counts
        time.sleep(0.5)


def check_pop3(env, addr):
    pop = poplib.POP3(env["SMTP_HOST"], int(env["POP3_PORT"]), timeout=10)
    try:
        pop.user(addr)
        pop.pass_(env["PASSWORD"])
        count, _size = pop.stat()
        return count
    finally:
        pop.quit()


def run(state):
    started = time.monotonic()
    proc = subprocess.run(
        [os.path.join(HERE, "start.sh"), state, "--discard", DISCARDED],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        raise Failure(f"start.sh exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    env = parse_env(proc.stdout)
    print(f"started in {time.monotonic() - started:.2f}s: SMTP {env['SMTP_PORT']}, "
          f"IMAP {env['IMAP_PORT']}, POP3 {env['POP3_PORT']}")
    mailboxes = env["MAILBOXES"].split(",")
    if len(mailboxes) != 28:
        raise Failure(f"expected 28 mailboxes, start.sh listed {len(mailboxes)}")

    tag = uuid.uuid4().hex
    send_all(env, mailboxes, tag)
    sent = time.monotonic()
    counts = read_back(env, mailboxes, tag)
    print(f"read back in {time.monotonic() - sent:.2f}s")

    delivered = sorted(a for a, n in counts.items() if n >= 1)
    missing = sorted(a for a, n in counts.items() if n == 0 and a != DISCARDED)
    doubled = sorted(a for a, n in counts.items() if n > 1)
    problems = []
    if missing:
        problems.append(f"not delivered within {WAIT_SECONDS}s: {', '.join(missing)}")
    if counts.get(DISCARDED, 0) != 0:
        problems.append(f"{DISCARDED} should be empty (discarded) but holds {counts[DISCARDED]}")
    if doubled:
        problems.append(f"delivered more than once: {', '.join(doubled)}")
    if len(delivered) != 27:
        problems.append(f"expected 27 delivered, got {len(delivered)}")
    pop_count = check_pop3(env, "user05@patente.test")
    if pop_count != 1:
        problems.append(f"POP3 user05@patente.test: expected 1 message, got {pop_count}")
    if problems:
        raise Failure("; ".join(problems) + f"\n(logs: {env['POSTFIX_LOG']}, {env['DOVECOT_LOG']})")
    print(f"27 of 28 mailboxes delivered, {DISCARDED} empty after a 250: OK")


def main():
    keep = "--keep" in sys.argv[1:]
    state = tempfile.mkdtemp(prefix="realmail-selftest-", dir="/tmp")
    ok = False
    try:
        run(state)
        ok = True
    except Failure as e:
        print(f"realmail selftest FAILED: {e}", file=sys.stderr)
    except (OSError, smtplib.SMTPException, imaplib.IMAP4.error, poplib.error_proto,
            subprocess.TimeoutExpired) as e:
        print(f"realmail selftest FAILED: {type(e).__name__}: {e}", file=sys.stderr)
    finally:
        subprocess.run([os.path.join(HERE, "stop.sh"), state], stdin=subprocess.DEVNULL)
        if keep or not ok:
            print(f"state kept in {state}", file=sys.stderr)
        else:
            shutil.rmtree(state, ignore_errors=True)
    print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
