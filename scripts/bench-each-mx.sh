#!/usr/bin/env bash
# What --each-mx costs: one probe run through one SMTP endpoint against a run through two MX
# hosts (two names for the fake server's SMTP listener, so both deliver and neither waits for
# a timeout), N mailboxes, ROUNDS of each, the median wall time of each and their ratio.
# usage: scripts/bench-each-mx.sh [N] [ROUNDS]    (MAILRIG=path/to/mailrig, default target/debug)
set -euo pipefail
n=${1:-1000}
rounds=${2:-3}
bin=${MAILRIG:-$(dirname "$0")/../target/debug/mailrig}
[[ -x $bin ]] || { echo "no mailrig binary at $bin: cargo build -p mailrig" >&2; exit 2; }
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
printf '[[domain]]\nname = "bench.test"\nmailboxes = ["u1..u%s"]\npassword = "secret"\n' "$n" >"$work/world.toml"
"$bin" serve --scenario "$work/world.toml" --listen 127.0.0.1:0 --http off --ca-out "$work/ca.pem" >"$work/banner" 2>&1 &
pid=$!
for _ in $(seq 1 300); do grep -q 'Press Ctrl-C' "$work/banner" && break; sleep 0.1; done
smtp=$(awk '$1 == "SMTP" {print $2; exit}' "$work/banner")
imap=$(awk '$1 == "IMAP" {print $2; exit}' "$work/banner")
[[ -n $smtp && -n $imap ]] || { cat "$work/banner" >&2; exit 2; }
common="[probe]\ntimeout = 60\nconcurrency = 64\n[read]\nhost = \"${imap%:*}\"\nport = ${imap#*:}\npassword = \"secret\"\n[[mailbox]]\naddress = \"u{1..$n}@bench.test\"\n"
printf "[smtp]\nhost = \"${smtp%:*}\"\nport = ${smtp#*:}\n$common" >"$work/single.toml"
printf "[smtp]\nmx = true\nmx_hosts = [{ name = \"mx1.bench.test\", address = \"$smtp\" }, { name = \"mx2.bench.test\", address = \"$smtp\" }]\n$common" >"$work/each-mx.toml"
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
run() {
  local t0 t1
  t0=$(date +%s.%N)
  "$bin" probe --target "$1" --format json >"$work/out.json" || { echo "probe $1 failed" >&2; tail -c 600 "$work/out.json" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}
for kind in single each-mx; do
  for _ in $(seq 1 "$rounds"); do run "$work/$kind.toml"; done | median >"$work/$kind.median"
done
s=$(cat "$work/single.median"); e=$(cat "$work/each-mx.median")
printf 'mailboxes %s, rounds %s: single %.2f s, each-mx (2 MX, %s probes) %.2f s, ratio %.2f\n' \
  "$n" "$rounds" "$s" "$((2 * n))" "$e" "$(echo "$e / $s" | bc -l)"
