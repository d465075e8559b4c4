"""The clients of the soak test (crates/mailrig/tests/soak.rs): Python's own
smtplib, imaplib and poplib, as users' programs are, side by side against one
`mailrig serve` whose fault rules drop, defer, slow down and disconnect.

argv[1] is a JSON object: smtp, imap, pop3, http (ports), secs (how long the
mixed traffic runs), senders, imap_readers, pop3_readers (thread counts),
mailboxes (addresses), password.

Prints one JSON object: acked (every message and the recipients that got a 250
for it at the end of data), stored (mailbox -> Message-IDs seen over IMAP after
the traffic stopped), journal (the server's journal over HTTP), and counts
(sessions and errors per client kind).
"""
import imaplib
import json
import poplib
import random
import re
import smtplib
import socket
import sys
import threading
import time
import urllib.request

a = json.loads(sys.argv[1])
HOST = "127.0.0.1"
TIMEOUT = 30
deadline = time.monotonic() + a["secs"]
lock = threading.Lock()
acked = []
counts = {k: 0 for k in ["smtp_sessions", "smtp_messages", "smtp_acked", "smtp_refused",
                         "smtp_disconnects", "imap_sessions", "imap_errors",
                         "pop3_sessions", "pop3_errors"]}
errors = []


def add(key, n=1):
    with lock:
        counts[key] += n


def sender(i):
    rnd = random.Random(i)
    n = 0
    while time.monotonic() < deadline:
        try:
            s = smtplib.SMTP(HOST, a["smtp"], timeout=TIMEOUT)
        except OSError as e:
            add("smtp_disconnects")
            time.sleep(0.1)
            continue
        add("smtp_sessions")
        try:
            s.ehlo("soak%d.extern.test" % i)
            for _ in range(rnd.randint(1, 5)):
                if time.monotonic() >= deadline:
                    break
                n += 1
                mid = "<soak-%d-%d@soak.test>" % (i, n)
                rcpts = rnd.sample(a["mailboxes"], rnd.randint(1, 3))
                body = ("From: soak%d@extern.test\r\nTo: %s\r\nSubject: soak %d/%d\r\n"
                        "Message-ID: %s\r\n\r\n%s\r\n") % (
                    i, ", ".join(rcpts), i, n, mid, "line of soak text\r\n" * rnd.randint(1, 40))
                add("smtp_messages")
                try:
                    refused = s.sendmail("soak%d@extern.test" % i, rcpts, body)
                except smtplib.SMTPRecipientsRefused:
                    add("smtp_refused")
                    continue
                except smtplib.SMTPResponseException:
                    # A refusal at MAIL or at the end of data: no 250, nothing promised.
                    add("smtp_refused")
                    try:
                        s.rset()
                    except smtplib.SMTPException:
                        break
                    continue
                ok = [r for r in rcpts if r not in refused]
                with lock:
                    acked.append({"id": mid, "rcpts": ok})
                    counts["smtp_acked"] += 1
            s.quit()
        except (smtplib.SMTPServerDisconnected, OSError):
            # A disconnect fault (or a cut at MAIL): reconnect, as a client does.
            add("smtp_disconnects")
        except smtplib.SMTPException as e:
            add("smtp_disconnects")
        finally:
            try:
                s.close()
            except Exception:
                pass


def imap_reader(i):
    rnd = random.Random(1000 + i)
    while time.monotonic() < deadline:
        box = rnd.choice(a["mailboxes"])
        try:
            c = imaplib.IMAP4(HOST, a["imap"], timeout=TIMEOUT)
            c.login(box, a["password"])
            typ, data = c.select("INBOX")
            assert typ == "OK", data
            typ, data = c.search(None, "ALL")
            assert typ == "OK", data
            ids = data[0].split()
            if ids:
                last = ids[-min(len(ids), 5):]
                typ, _ = c.fetch(b",".join(last).decode(), "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER])")
                assert typ == "OK"
                typ, _ = c.store(last[0].decode(), "+FLAGS", "(\\Seen)")
                assert typ == "OK"
            c.logout()
            add("imap_sessions")
        except Exception as e:
            add("imap_errors")
            with lock:
                errors.append("imap %s: %s: %s" % (box, type(e).__name__, e))
            time.sleep(0.1)


def pop3_reader(i):
    rnd = random.Random(2000 + i)
    while time.monotonic() < deadline:
        box = rnd.choice(a["mailboxes"])
        try:
            p = poplib.POP3(HOST, a["pop3"], timeout=TIMEOUT)
            p.user(box)
            p.pass_(a["password"])
            count, _ = p.stat()
            p.list()
            if count:
                p.retr(rnd.randint(1, count))
                p.top(1, 0)
                p.uidl()
            p.quit()  # no DELE: the store keeps every message for the final check
            add("pop3_sessions")
        except Exception as e:
            add("pop3_errors")
            with lock:
                errors.append("pop3 %s: %s: %s" % (box, type(e).__name__, e))
            time.sleep(0.1)


threads = [threading.Thread(target=sender, args=(i,)) for i in range(a["senders"])]
threads += [threading.Thread(target=imap_reader, args=(i,)) for i in range(a["imap_readers"])]
threads += [threading.Thread(target=pop3_reader, args=(i,)) for i in range(a["pop3_readers"])]
for t in threads:
    t.start()
for t in threads:
    t.join()

# The traffic has stopped: read every mailbox over IMAP.
stored = {}
mid_re = re.compile(rb"<[^>\s]+>")
for box in a["mailboxes"]:
    c = imaplib.IMAP4(HOST, a["imap"], timeout=TIMEOUT)
    c.login(box, a["password"])
    typ, data = c.select("INBOX", readonly=True)
    assert typ == "OK", data
    ids = []
    if int(data[0]) > 0:
        typ, data = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        assert typ == "OK", data
        for part in data:
            if isinstance(part, tuple):
                ids += [m.decode() for m in mid_re.findall(part[1])]
    stored[box] = ids
    c.logout()

with urllib.request.urlopen("http://%s:%d/api/v1/journal" % (HOST, a["http"]), timeout=TIMEOUT) as r:
    journal = json.loads(r.read())

# Last, a clean client (a sender no fault rule selects) is still served: its
# message gets a 250 and can be read back over IMAP and POP3.
clean = {"id": "<clean-%d@soak.test>" % int(time.time()), "smtp": None, "imap": 0, "pop3": None}
try:
    s = smtplib.SMTP(HOST, a["smtp"], timeout=TIMEOUT)
    s.ehlo("clean.extern.test")
    refused = s.sendmail("clean@extern.test", ["anna@kanzlei.test"],
                         "Subject: clean\r\nMessage-ID: %s\r\n\r\nstill served\r\n" % clean["id"])
    clean["smtp"] = "250" if not refused else "refused %r" % refused
    s.quit()
    c = imaplib.IMAP4(HOST, a["imap"], timeout=TIMEOUT)
    c.login("anna@kanzlei.test", a["password"])
    c.select("INBOX", readonly=True)
    typ, data = c.search(None, "HEADER", "Message-ID", clean["id"])
    clean["imap"] = len(data[0].split()) if typ == "OK" else -1
    c.logout()
    p = poplib.POP3(HOST, a["pop3"], timeout=TIMEOUT)
    p.user("anna@kanzlei.test")
    p.pass_(a["password"])
    count, _ = p.stat()
    top = b"\n".join(p.top(count, 0)[1]) if count else b""
    clean["pop3"] = clean["id"].encode() in top
    p.quit()
except Exception as e:
    clean["error"] = "%s: %s" % (type(e).__name__, e)

print(json.dumps({"acked": acked, "stored": stored, "journal": journal, "counts": counts,
                  "errors": errors[:20], "clean": clean}))
