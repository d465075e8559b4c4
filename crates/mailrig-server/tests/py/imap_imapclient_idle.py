"""IMAPClient (third-party) IDLE against mailrig: deliveries made over SMTP
during IDLE must be announced as EXISTS to every idling session.

Usage: python3 imap_imapclient_idle.py IMAP_PORT SMTP_PORT
"""
import smtplib
import sys
import threading
import time

try:
    from imapclient import IMAPClient
except ImportError:
    print("FAIL: the Python package 'imapclient' is missing (pip install imapclient)")
    sys.exit(2)

imap_port, smtp_port = int(sys.argv[1]), int(sys.argv[2])
# Several sessions idle at once: the server wakes one of them to claim
# \Recent and tells the others itself, straight onto their sockets
# (imap/idlers.rs); each must see every delivery once, in order, and know
# the messages after IDLE.
SESSIONS = 5
clients = []
for _ in range(SESSIONS):
    c = IMAPClient("127.0.0.1", port=imap_port, ssl=False)
    c.login("alice@example.test", "secret")
    info = c.select_folder("INBOX")
    c.idle()
    clients.append((c, info[b"EXISTS"]))


def send():
    time.sleep(0.3)
    for n in (1, 2):
        s = smtplib.SMTP("127.0.0.1", smtp_port)
        s.sendmail("bob@example.test", ["alice@example.test"],
                   "From: bob@example.test\r\nSubject: during idle %d\r\n\r\nhi\r\n" % n)
        s.quit()
        time.sleep(0.1)


t = threading.Thread(target=send)
started = time.time()
t.start()
elapsed = 0.0
for c, before in clients:
    seen = []
    deadline = time.time() + 10
    while len(seen) < 2 and time.time() < deadline:
        for r in c.idle_check(timeout=1):
            if len(r) >= 2 and r[1] == b"EXISTS":
                seen.append(r[0])
    elapsed = max(elapsed, time.time() - started)
    c.idle_done()
    if seen != [before + 1, before + 2]:
        print("FAIL: EXISTS during IDLE were %r, expected %r" % (seen, [before + 1, before + 2]))
        sys.exit(1)
t.join()
for c, _ in clients:
    for n in (1, 2):
        msgs = c.search(["SUBJECT", "during idle %d" % n])
        if len(msgs) != 1:
            print("FAIL: search after IDLE: %r" % (msgs,))
            sys.exit(1)
        fetched = c.fetch(msgs, ["ENVELOPE", "BODYSTRUCTURE", "FLAGS"])
        env = fetched[msgs[0]][b"ENVELOPE"]
        if env.subject != b"during idle %d" % n:
            print("FAIL: envelope subject %r" % (env.subject,))
            sys.exit(1)
    c.logout()
print("imapclient IDLE OK in %d sessions after %.3fs" % (SESSIONS, elapsed))
