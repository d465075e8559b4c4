#!/usr/bin/env bash
# Memory of the memory store over SMTP, per mailbox and per message.
#
# Starts `mailrig serve` (memory store, every listener on a free port) twice: once with a world of one
# mailbox (the baseline: program, runtime, TLS material, listeners) and once with MAILBOXES mailboxes
# (bench.test: u1..uN). It reads the server's resident set (VmRSS of /proc/PID/status) while the store is
# empty, sends PER_MAILBOX messages of SIZE bytes to every mailbox with `mailrig load` over SESSIONS
# sessions (round-robin, one recipient per message), and reads it again. It reports:
#   RSS empty                 the N-mailbox server before any mail
#   per-mailbox empty cost    (RSS empty - RSS of the 1-mailbox server) / (N - 1)
#   RSS after                 after every mailbox got its PER_MAILBOX messages (and the peak, VmHWM)
#   stored bytes              the sum of the sizes of all stored messages as the store holds them and
#                             IMAP reports them (RFC822.SIZE): the SIZE bytes sent plus our own
#                             Return-Path:/Received: lines, summed over every mailbox via the HTTP API
#   RSS / stored bytes        RSS after / stored bytes: the whole process against what it holds (target <= 1.3)
#   growth / stored bytes     (RSS after - RSS empty) / stored bytes: the cost of the messages alone
# The in-process twin for many messages in few mailboxes (no sockets, no runtime) is
#   cargo run --release -p mailrig-benches --example store_memory
#
# usage: scripts/bench-memory.sh [MAILBOXES] [SIZE] [PER_MAILBOX] [SESSIONS]   defaults: 100000 4096 1 16
# MAILRIG=PATH measures that binary instead of building and measuring target/release/mailrig.
set -euo pipefail
mailboxes=${1:-100000} size=${2:-4096} per=${3:-1} sessions=${4:-16}
for v in "$mailboxes" "$size" "$per" "$sessions"; do
  [[ $v =~ ^[0-9]+$ && $v -gt 0 ]] || { echo "bench-memory: '$v' is not a positive number" >&2; exit 2; }
done
[[ $mailboxes -ge 2 ]] || { echo "bench-memory: MAILBOXES must be at least 2 (1 is the baseline)" >&2; exit 2; }
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "bench-memory: needs $tool (scripts/install-test-deps.sh)" >&2; exit 2; }
done
cd "$(dirname "$0")/.."
if [[ -n ${MAILRIG:-} ]]; then
  bin=$MAILRIG
else
  cargo build --release -q -p mailrig
  bin=${CARGO_TARGET_DIR:-target}/release/mailrig
fi
work=$(mktemp -d)
pid=
stop() { if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; fi; }
trap 'stop; rm -rf "$work"' EXIT

# start N: writes a world of N mailboxes, starts the server, waits for its banner; sets pid, smtp, http.
start() {
  printf '[[domain]]\nname = "bench.test"\nmailboxes = ["u1..u%d"]\npassword = "secret"\n' "$1" >"$work/world.toml"
  "$bin" serve --scenario "$work/world.toml" --listen 127.0.0.1:0 --ca-out "$work/ca.pem" >"$work/banner" 2>&1 &
  pid=$!
  for _ in $(seq 1200); do
    grep -q 'Press Ctrl-C' "$work/banner" && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/banner" >&2; exit 1; }
    sleep 0.05
  done
  grep -q 'Press Ctrl-C' "$work/banner" || { echo "bench-memory: server did not start in 60 s" >&2; exit 1; }
  smtp=$(awk '$1 == "SMTP" {print $2}' "$work/banner")
  http=$(awk '$1 == "HTTP" {sub("http://", "", $2); sub("/$", "", $2); print $2}' "$work/banner")
}
kib() { awk -v f="$1:" '$1 == f {print $2}' "/proc/$pid/status"; }

start 1
base=$(kib VmRSS)
stop

start "$mailboxes"
empty=$(kib VmRSS)
messages=$((mailboxes * per))
"$bin" load "$smtp" -c "$sessions" -n "$messages" -s "$size" --to "u{1..$mailboxes}@bench.test" \
  --no-progress --color never | sed -n 2p
after=$(kib VmRSS) peak=$(kib VmHWM)

# Stored bytes: every mailbox's message sizes, over one kept-alive HTTP connection.
read -r count stored < <(python3 - "$http" "$mailboxes" <<'EOF'
import http.client, json, sys
host, n = sys.argv[1], int(sys.argv[2])
c = http.client.HTTPConnection(host, timeout=30)
count = total = 0
for i in range(1, n + 1):
    c.request("GET", f"/api/v1/mailboxes/u{i}@bench.test/messages")
    r = c.getresponse()
    body = r.read()
    if r.status != 200:
        sys.exit(f"bench-memory: GET messages of u{i}@bench.test: {r.status} {body[:200]!r}")
    for m in json.loads(body)["messages"]:
        count += 1
        total += m["size"]
print(count, total)
EOF
)
[[ $count -eq $messages ]] || { echo "bench-memory: $count messages stored, $messages sent" >&2; exit 1; }

awk -v base="$base" -v e="$empty" -v a="$after" -v p="$peak" -v st="$stored" -v n="$mailboxes" \
    -v per="$per" -v s="$size" -v c="$sessions" -v m="$messages" 'BEGIN {
  mib = 1048576
  printf "mailrig serve, memory store: %d mailboxes, %d message(s) of %d bytes each, %d sessions\n", n, per, s, c
  printf "  RSS, 1-mailbox baseline    %8.1f MiB\n", base / 1024
  printf "  RSS empty                  %8.1f MiB   per mailbox %.0f bytes = (empty - baseline) / (N - 1)\n",
    e / 1024, (e - base) * 1024 / (n - 1)
  printf "  RSS after                  %8.1f MiB   (peak %.1f MiB)\n", a / 1024, p / 1024
  printf "  stored bytes               %8.1f MiB   %d messages, %.0f bytes each (sent %d + our Return-Path/Received)\n",
    st / mib, m, st / m, s
  printf "  RSS / stored bytes         %8.3f\n", a * 1024 / st
  printf "  growth / stored bytes      %8.3f   (%.0f bytes per message beyond its stored bytes)\n",
    (a - e) * 1024 / st, ((a - e) * 1024 - st) / m
  printf "  target RSS <= 1.3 x stored bytes: %s\n", (a * 1024 <= 1.3 * st) ? "met" : "MISSED"
}'
