"""Python's imaplib reads QUOTA (RFC 9208) from mailrig's IMAP server.

Usage: python3 imap_quota.py PORT MESSAGES LIMIT
The Rust test filled alice's mailbox over SMTP until `552 5.2.2`; the
quota must show MESSAGES used of LIMIT. Exits non-zero on any mismatch.
"""
import imaplib
import sys


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)


port, used, limit = int(sys.argv[1]), sys.argv[2], sys.argv[3]
M = imaplib.IMAP4("127.0.0.1", port)
check("QUOTA" in M.capabilities, "QUOTA advertised: %r" % (M.capabilities,))
M.login("alice@example.test", "secret")
typ, data = M.getquotaroot("INBOX")
check(typ == "OK", "getquotaroot: %r %r" % (typ, data))
roots, quotas = data
check(roots == [b'INBOX ""'], "quota root of INBOX: %r" % roots)
want = ("MESSAGE %s %s" % (used, limit)).encode()
check(len(quotas) == 1 and want in quotas[0], "quota: %r (want %r)" % (quotas, want))
typ, data = M.getquota('""')
check(typ == "OK" and want in data[0], "getquota: %r %r" % (typ, data))
typ, data = M.getquota("nosuchroot")
check(typ == "NO", "getquota of an unknown root: %r %r" % (typ, data))
M.logout()
print("imaplib quota OK")
