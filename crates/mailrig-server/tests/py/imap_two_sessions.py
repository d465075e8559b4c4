"""Two Python imaplib sessions on one INBOX: what each is told of the other's
changes (the two state bugs of issue 11).

Usage: python3 imap_two_sessions.py PORT
1. A keyword a STORE introduces is announced as `* FLAGS` and `* OK
   [PERMANENTFLAGS]` before any FETCH shows it, in both sessions (RFC 3501
   7.2.6).
2. A message B expunged stays under its sequence number in A, and readable,
   until A is sent the EXPUNGE (RFC 2180 4.1.2).
Exits non-zero on any mismatch.
"""
import imaplib
import re
import sys


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)


class Logged(imaplib.IMAP4):
    """imaplib keeps untagged responses in a dict by type, which loses their
    order; this records (type, data) in the order they arrive."""

    def __init__(self, *a, **k):
        self.log = []
        super().__init__(*a, **k)

    def _append_untagged(self, typ, dat):
        self.log.append((typ, dat))
        super()._append_untagged(typ, dat)

    def take(self):
        log, self.log = self.log, []
        return log


def connect(port):
    m = Logged("127.0.0.1", port)
    typ, _ = m.login("alice@example.test", "secret")
    check(typ == "OK", "login")
    return m


def announced_before_fetch(log, keyword, who):
    """The FLAGS and PERMANENTFLAGS naming `keyword` come before the first
    FETCH that shows it."""
    kw = keyword.encode()
    flags_at = perm_at = fetch_at = None
    for i, (typ, dat) in enumerate(log):
        text = dat if isinstance(dat, bytes) else repr(dat).encode()
        if typ == "FLAGS" and kw in text and flags_at is None:
            flags_at = i
        if typ == "PERMANENTFLAGS" and kw in text and b"\\*" in text and perm_at is None:
            perm_at = i
        if typ == "FETCH" and kw in text and fetch_at is None:
            fetch_at = i
    check(fetch_at is not None, "%s: a FETCH shows %s: %r" % (who, keyword, log))
    check(flags_at is not None and flags_at < fetch_at,
          "%s: * FLAGS with %s before the FETCH: %r" % (who, keyword, log))
    check(perm_at is not None and perm_at < fetch_at,
          "%s: PERMANENTFLAGS with %s before the FETCH: %r" % (who, keyword, log))


port = int(sys.argv[1])
A = connect(port)
B = connect(port)
for i in range(4):
    msg = ("From: a@example.test\r\nSubject: m%d\r\n\r\nbody %d\r\n" % (i, i)).encode()
    typ, _ = A.append("INBOX", None, None, msg)
    check(typ == "OK", "append %d" % i)
typ, data = A.select("INBOX")
check(typ == "OK" and data[0] == b"4", "A select: %r" % data)
typ, data = B.select("INBOX")
check(typ == "OK" and data[0] == b"4", "B select: %r" % data)
A.take()
B.take()

# 1. A new keyword, in the session that sets it and in the other one.
typ, data = A.store("1", "+FLAGS", "($Kw1)")
check(typ == "OK", "store: %r" % data)
announced_before_fetch(A.take(), "$Kw1", "A (STORE)")
typ, _ = B.noop()
announced_before_fetch(B.take(), "$Kw1", "B (NOOP)")
typ, data = A.store("2", "+FLAGS", "($Kw2)")
typ, data = B.fetch("2", "(FLAGS)")
check(typ == "OK" and any(b"2 (FLAGS ($Kw2))" == d for d in data), "B fetch: %r" % data)
announced_before_fetch(B.take(), "$Kw2", "B (FETCH)")

# 2. B expunges message 3; A has not been told yet.
typ, _ = B.store("3", "+FLAGS", "(\\Deleted)")
typ, data = B.expunge()
check(typ == "OK" and data == [b"3"], "B expunge: %r" % data)
A.take()
typ, data = A.fetch("1:4", "(UID)")
uids = [int(re.search(rb"UID (\d+)", d).group(1)) for d in data if d]
check(typ == "OK" and uids == [1, 2, 3, 4], "A fetch 1:4 (UID): %r" % data)
check(not any(t == "EXPUNGE" for t, _ in A.take()), "no EXPUNGE during FETCH")
typ, data = A.search(None, "1:4")
check(typ == "OK" and data[0] == b"1 2 3 4", "A search 1:4: %r" % data)
typ, data = A.fetch("3", "(BODY.PEEK[TEXT])")
check(typ == "OK" and data[0][1] == b"body 2\r\n", "A reads the expunged message: %r" % data)
typ, data = A.noop()
check(("EXPUNGE", b"3") in A.take(), "A is told at NOOP")
typ, data = A.fetch("1:*", "(UID)")
uids = [int(re.search(rb"UID (\d+)", d).group(1)) for d in data if d]
check(uids == [1, 2, 4], "after the EXPUNGE: %r" % data)
A.logout()
B.logout()
print("imaplib two sessions OK")
