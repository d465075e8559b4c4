#!/usr/bin/env bash
# Starts a private Postfix + Dovecot on 127.0.0.1; see realmail.py for the details.
# usage: start.sh STATE_DIR [--mailboxes N] [--discard ADDR,...] [--timeout SECONDS] [--host 127.X.Y.Z] [--smtp-port PORT]
# stdout: KEY=VALUE lines (also in STATE_DIR/env); exit 0 when SMTP, LMTP, IMAP, POP3 answer.
set -euo pipefail
# realmail.py needs only the standard library: prefer the system interpreter, which
# starts ~0.3 s faster than a pyenv shim.
py=python3
if [[ -x /usr/bin/python3 ]]; then py=/usr/bin/python3; fi
exec "$py" "$(dirname "$0")/realmail.py" start "$@"
