#!/usr/bin/env bash
# Memory of the memory store over SMTP: starts `mailrig serve` (memory store), sends MESSAGES messages of
# SIZE bytes with `mailrig load` over SESSIONS sessions, and compares the server's resident-set growth with
# the raw bytes sent. Target: growth <= 1.3 x raw. The in-process twin (no sockets, no runtime) is
#   cargo run --release -p mailrig-benches --example store_memory
#
# usage: scripts/bench-memory.sh [MESSAGES] [SIZE] [SESSIONS]     defaults: 100000 4096 16
set -euo pipefail
messages=${1:-100000} size=${2:-4096} sessions=${3:-16}
cd "$(dirname "$0")/.."
cargo build --release -q -p mailrig
bin=${CARGO_TARGET_DIR:-target}/release/mailrig
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ca=$(mktemp)
"$bin" serve --scenario crates/mailrig-core/catalog/kanzlei.toml --smtp "127.0.0.1:$port" --smtps 127.0.0.1:0 \
  --imap 127.0.0.1:0 --imaps 127.0.0.1:0 --pop3 127.0.0.1:0 --pop3s 127.0.0.1:0 --http 127.0.0.1:0 --ca-out "$ca" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$ca"' EXIT
for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
kib() { awk -v f="$1:" '$1 == f {print $2}' "/proc/$pid/status"; }
before=$(kib VmRSS)
"$bin" load "127.0.0.1:$port" -c "$sessions" -n "$messages" -s "$size" --to 'user{01..25}@patente.test' \
  --no-progress | sed -n 2p
after=$(kib VmRSS) peak=$(kib VmHWM)
raw=$((messages * size))
awk -v b="$before" -v a="$after" -v p="$peak" -v raw="$raw" -v n="$messages" -v s="$size" -v c="$sessions" 'BEGIN {
  g = (a - b) * 1024
  printf "mailrig serve, memory store: %d messages of %d bytes over %d sessions\n", n, s, c
  printf "  raw %.1f MiB   RSS %.1f -> %.1f MiB (peak %.1f)   growth %.1f MiB = %.3f x raw (%.0f bytes/message beyond raw)\n",
    raw / 1048576, b / 1024, a / 1024, p / 1024, g / 1048576, g / raw, (g - raw) / n
  printf "  target <= 1.3 x raw: %s\n", (g <= 1.3 * raw) ? "met" : "MISSED"
}'
