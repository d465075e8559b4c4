"""Python's imaplib against mailrig's IMAP server.

Usage: python3 imap_imaplib.py PORT
The Rust test delivers three messages into alice's INBOX first (the third
with a raw UTF-8 subject "Grüße aus Köln"). Exits non-zero on any mismatch.
"""
import imaplib
import sys


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)


port = int(sys.argv[1])
M = imaplib.IMAP4("127.0.0.1", port)
check("IMAP4REV1" in M.capabilities, "IMAP4rev1 advertised: %r" % (M.capabilities,))
typ, _ = M.login("alice@example.test", "secret")
check(typ == "OK", "login")

typ, data = M.list()
check(typ == "OK" and any(b'INBOX' in d for d in data), "list: %r" % data)

typ, data = M.select("INBOX")
check(typ == "OK" and data[0] == b"3", "select: %r" % data)

typ, data = M.search(None, "ALL")
check(data[0] == b"1 2 3", "search all: %r" % data)
typ, data = M.search(None, "FROM", '"bob"')
check(data[0] == b"1", "search from: %r" % data)

# UTF-8 search via a literal.
M.literal = "Grüße".encode("utf-8")
typ, data = M.search("UTF-8", "SUBJECT")
check(typ == "OK" and data[0] == b"3", "utf-8 search: %r" % data)

typ, data = M.fetch("3", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
check("Grüße aus Köln".encode("utf-8") in data[0][1], "utf-8 header: %r" % data)

typ, data = M.fetch("1", "(BODY[])")
check(typ == "OK" and b"Subject: hello from bob" in data[0][1], "fetch body[]: %r" % data)
typ, data = M.fetch("1", "(FLAGS)")
check(b"\\Seen" in data[0], "seen after body[]: %r" % data)

typ, data = M.store("2", "+FLAGS", "(\\Deleted)")
check(typ == "OK" and b"\\Deleted" in data[0], "store: %r" % data)
typ, data = M.expunge()
check(typ == "OK" and data == [b"2"], "expunge: %r" % data)

msg = b"From: alice@example.test\r\nSubject: appended\r\n\r\nfrom imaplib\r\n"
typ, data = M.append("INBOX", "(\\Seen)", imaplib.Time2Internaldate(1700000000), msg)
check(typ == "OK" and b"APPENDUID" in data[0], "append: %r" % data)
typ, data = M.uid("SEARCH", None, "SUBJECT", "appended")
check(data[0] == b"4", "uid search appended: %r" % data)
typ, data = M.uid("FETCH", "4", "(RFC822)")
check(data[0][1] == msg, "uid fetch rfc822: %r" % data)

typ, data = M.create("Archive")
check(typ == "OK", "create")
typ, data = M.uid("COPY", "4", "Archive")
check(typ == "OK", "copy: %r" % data)
typ, data = M.status("Archive", "(MESSAGES)")
check(b"MESSAGES 1" in data[0], "status: %r" % data)

M.close()
M.logout()
print("imaplib OK")
