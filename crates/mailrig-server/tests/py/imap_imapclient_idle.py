"""IMAPClient (third-party) IDLE against mailrig: a delivery made over SMTP
during IDLE must be announced as EXISTS.

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
c = IMAPClient("127.0.0.1", port=imap_port, ssl=False)
c.login("alice@example.test", "secret")
info = c.select_folder("INBOX")
before = info[b"EXISTS"]
c.idle()


def send():
    time.sleep(0.3)
    s = smtplib.SMTP("127.0.0.1", smtp_port)
    s.sendmail("bob@example.test", ["alice@example.test"],
               "From: bob@example.test\r\nSubject: during idle\r\n\r\nhi\r\n")
    s.quit()


t = threading.Thread(target=send)
started = time.time()
t.start()
responses = c.idle_check(timeout=10)
elapsed = time.time() - started
c.idle_done()
t.join()
exists = [r for r in responses if len(r) >= 2 and r[1] == b"EXISTS"]
if not exists or exists[0][0] != before + 1:
    print("FAIL: no EXISTS during IDLE: %r" % (responses,))
    sys.exit(1)
msgs = c.search(["SUBJECT", "during idle"])
if len(msgs) != 1:
    print("FAIL: search after IDLE: %r" % (msgs,))
    sys.exit(1)
fetched = c.fetch(msgs, ["ENVELOPE", "BODYSTRUCTURE", "FLAGS"])
env = fetched[msgs[0]][b"ENVELOPE"]
if env.subject != b"during idle":
    print("FAIL: envelope subject %r" % (env.subject,))
    sys.exit(1)
c.logout()
print("imapclient IDLE OK after %.3fs" % elapsed)
