#!/usr/bin/env bash
# Stops the private Postfix + Dovecot started in STATE_DIR; safe to call twice.
# usage: stop.sh STATE_DIR
set -euo pipefail
exec python3 "$(dirname "$0")/realmail.py" stop "$@"
