"""CONDSTORE (RFC 7162) as the imapclient package uses it: ENABLE, the
HIGHESTMODSEQ of SELECT, FETCH MODSEQ and UID FETCH (CHANGEDSINCE n) after
another session changed one message's flags. Prints one JSON line."""
import json
import sys

from imapclient import IMAPClient

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

a = IMAPClient(host, port=port, ssl=False, timeout=10)
a.login(user, password)
assert b"CONDSTORE" in a.capabilities(), a.capabilities()
enabled = a.enable("CONDSTORE")
selected = a.select_folder("INBOX")
highest = selected[b"HIGHESTMODSEQ"]
all_uids = a.search("ALL")
before = a.fetch(all_uids, ["MODSEQ"])

b = IMAPClient(host, port=port, ssl=False, timeout=10)
b.login(user, password)
b.select_folder("INBOX")
uids = sorted(b.search("ALL"))
b.add_flags([uids[1]], [b"\\Flagged"])
b.logout()

changed = a.fetch(all_uids, ["FLAGS"], modifiers=["CHANGEDSINCE %d" % highest])
status = a.folder_status("INBOX", ["HIGHESTMODSEQ"])
a.logout()
print(json.dumps({
    "enabled": [e.decode() for e in enabled],
    "highest": highest,
    "before": {str(k): v[b"MODSEQ"][0] for k, v in before.items()},
    "changed": {str(k): [f.decode() for f in v[b"FLAGS"]] for k, v in changed.items()},
    "changed_modseq": {str(k): v[b"MODSEQ"][0] for k, v in changed.items()},
    "status_highest": status[b"HIGHESTMODSEQ"],
    "uids": uids,
}))
