#!/usr/bin/env bash
# The search index over HTTP, with MESSAGES messages stored (default 100000): starts
# `mailrig serve` (release build) with a world of MAILBOXES mailboxes (default 1000,
# u1..uN@bench.test), then runs
#   scripts/bench-search.py      fills it over SMTP; p50/p99 of the list and each search
#                                over HTTP; the server's resident set
#   scripts/bench-sse.py         an SSE subscriber's delay after each 250 (200 messages)
#   scripts/bench-first-screen.mjs  the page's first screen in headless chromium
# against the same server.
#
#   cargo build --release -p mailrig && scripts/bench-search.sh [MESSAGES] [MAILBOXES]
#
# MAILRIG=path picks another binary; LISTEN (default 127.0.3.1:0) the listeners' address.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
messages=${1:-100000}
boxes=${2:-1000}
bin=${MAILRIG:-$here/target/release/mailrig}
listen=${LISTEN:-127.0.3.1:0}
[ -x "$bin" ] || { echo "bench-search: no $bin: cargo build --release -p mailrig first" >&2; exit 2; }
work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
cat >"$work/bench.toml" <<TOML
[[domain]]
name = "bench.test"
mailboxes = ["u1..u$boxes"]
password = "secret"
TOML
# shellcheck source=lib/serve.sh
. "$here/scripts/lib/serve.sh"
start_serve "$bin" "$work/bench.toml" "$listen" "$work"
smtp=$(banner_addr SMTP)
http=$(banner_addr HTTP)
http=${http%/}
echo "mailrig serve (pid $pid): SMTP $smtp, HTTP $http, $boxes mailboxes"
python3 "$here/scripts/bench-search.py" "$smtp" "$http" "$messages" "$boxes" "$pid"
python3 "$here/scripts/bench-sse.py" "$smtp" "$http" "u1@bench.test" 200
node "$here/scripts/bench-first-screen.mjs" "$http" 5
