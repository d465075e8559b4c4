#!/usr/bin/env bash
# Stops the private Postfix + Dovecot started in STATE_DIR; safe to call twice.
# usage: stop.sh STATE_DIR
set -euo pipefail
# realmail.py needs only the standard library: prefer the system interpreter, which
# starts ~0.3 s faster than a pyenv shim.
py=python3
if [[ -x /usr/bin/python3 ]]; then py=/usr/bin/python3; fi
exec "$py" "$(dirname "$0")/realmail.py" stop "$@"
