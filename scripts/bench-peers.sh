#!/usr/bin/env bash
# Measures mailrig's SMTP server beside its peers under the same smtp-source
# load, in one run, and prints messages/second, the server's CPU time per
# message, and the ratio to Postfix's smtp-sink (a C sink that stores nothing).
#
# usage: scripts/bench-peers.sh [-s SESSIONS] [-l BYTES] [-m MESSAGES]
#   defaults: 20 sessions, 4096-byte messages, 20000 messages per load.
# Each load runs twice per server: one connection per message, and many
# messages per connection (smtp-source -d). Needs smtp-source and smtp-sink
# (Debian package postfix; scripts/install-test-deps.sh installs it).
set -euo pipefail

sessions=20 size=4096 messages=20000
while getopts "s:l:m:" opt; do
  case $opt in
    s) sessions=$OPTARG ;;
    l) size=$OPTARG ;;
    m) messages=$OPTARG ;;
    *) echo "usage: $0 [-s SESSIONS] [-l BYTES] [-m MESSAGES]" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.."
for t in smtp-source smtp-sink; do
  command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] || { echo "$t missing: run scripts/install-test-deps.sh" >&2; exit 2; }
done
PATH=$PATH:/usr/sbin
cargo build --release -q -p mailrig
bin=target/release/mailrig

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; return 1; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# name -> port, pid
declare -A port pid
start_server() { # name command...
  local name=$1; shift
  local p; p=$(free_port)
  local cmd=("${@//PORT/$p}")
  "${cmd[@]}" >/dev/null 2>&1 &
  pid[$name]=$!; pids+=($!); port[$name]=$p
  wait_port "$p"
}

start_server smtp-sink smtp-sink -u nobody 127.0.0.1:PORT 1024
start_server mailrig "$bin" serve --scenario testdata/scenarios/kanzlei.toml --smtp 127.0.0.1:PORT --smtps 127.0.0.1:0
servers=(smtp-sink mailrig)

printf '# %s sessions, %s-byte messages, %s messages per load, %s\n' "$sessions" "$size" "$messages" "$(date -u +%FT%TZ)"
printf '%-12s %-24s %12s %14s %10s\n' server load msg/s "cpu µs/msg" "vs sink"
declare -A rate
for mode in per-connection many-per-connection; do
  flag=""; [ "$mode" = many-per-connection ] && flag="-d"
  for s in "${servers[@]}"; do
    before=$(cpu_ticks "${pid[$s]}")
    start=$(date +%s.%N)
    smtp-source -s "$sessions" -l "$size" -m "$messages" $flag -f load@extern.test -t user01@patente.test "127.0.0.1:${port[$s]}"
    end=$(date +%s.%N)
    after=$(cpu_ticks "${pid[$s]}")
    r=$(echo "$messages / ($end - $start)" | bc -l)
    rate[$s]=$r
    cpu=$(echo "($after - $before) * 1000000 / $hz / $messages" | bc -l)
    ratio=$(echo "$r / ${rate[smtp-sink]}" | bc -l)
    printf '%-12s %-24s %12.0f %14.1f %9.2fx\n' "$s" "$mode" "$r" "$cpu" "$ratio"
  done
done
