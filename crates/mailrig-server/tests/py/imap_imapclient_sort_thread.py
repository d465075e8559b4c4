"""SORT and THREAD (RFC 5256) as the imapclient package uses them: the
capabilities it checks, SORT by subject, by reverse date and by
DISPLAYFROM, UID THREAD REFERENCES and ORDEREDSUBJECT. Prints one JSON line."""
import json
import sys

from imapclient import IMAPClient

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
# sys.argv[5]: the UID to mark \\Seen before sorting the unseen messages.

c = IMAPClient(host, port=port, ssl=False, timeout=10)
c.login(user, password)
caps = [x.decode() for x in c.capabilities()]
c.select_folder("INBOX")
c.add_flags([int(sys.argv[5])], [b"\\Seen"])
out = {
    "caps": caps,
    "subject": c.sort(["SUBJECT"]),
    "reverse_date": c.sort(["REVERSE DATE"]),
    "display_from": c.sort(["DISPLAYFROM"]),
    "subject_unseen": c.sort(["SUBJECT"], ["UNSEEN"]),
    "references": c.thread("REFERENCES"),
    "orderedsubject": c.thread("ORDEREDSUBJECT"),
}
c.logout()
print(json.dumps(out))
