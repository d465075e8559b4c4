#!/usr/bin/env bash
# Starts a private Postfix + Dovecot on 127.0.0.1; see realmail.py for the details.
# usage: start.sh STATE_DIR [--mailboxes N] [--discard ADDR,ADDR,...] [--timeout SECONDS]
set -euo pipefail
exec python3 "$(dirname "$0")/realmail.py" start "$@"
