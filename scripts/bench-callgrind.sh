#!/usr/bin/env bash
# Counts the CPU instructions an SMTP server spends per received message, with valgrind's callgrind:
# a count that does not drift with machine noise, unlike seconds on a shared machine.
#
# Each server runs under callgrind (one worker thread where it has a setting), receives N1 and then,
# in a fresh run, N2 messages from Postfix's smtp-source over kept connections; the counters are dumped
# with callgrind_control after each load. Instructions per message = (Ir(N2) - Ir(N1)) / (N2 - N1), so
# start-up and shutdown cancel out.
#
# Servers: mailrig (mailrig serve, memory store, crates/mailrig-core/catalog/kanzlei.toml), mailin (the
# mailin-embedded peer of bench-peers.sh, benches/peers/mailin_sink.rs).
#
# usage: scripts/bench-callgrind.sh [--servers mailrig,mailin] [--size BYTES] [--n1 N] [--n2 N]
#                                   [--sessions S] [--top]
#   --size      message body bytes given to smtp-source -l     (default 4096)
#   --n1/--n2   messages of the two runs                       (default 1000 and 3000)
#   --sessions  concurrent smtp-source sessions                 (default 4)
#   --top       also print the 25 functions with most instructions of the N2 run (callgrind_annotate)
#   --keep DIR  keep the callgrind files of the N2 runs as DIR/SERVER.callgrind (for callgrind_annotate)
# Needs valgrind, smtp-source (Debian postfix; scripts/install-test-deps.sh) and cargo.
set -euo pipefail

servers_opt=mailrig,mailin size=4096 n1=1000 n2=3000 sessions=4 top=0 keep=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --servers) servers_opt=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --n1) n1=$2; shift 2 ;;
    --n2) n2=$2; shift 2 ;;
    --sessions) sessions=$2; shift 2 ;;
    --top) top=1; shift ;;
    --keep) keep=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-callgrind: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for v in "$size" "$n1" "$n2" "$sessions"; do
  [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "bench-callgrind: '$v' is not a positive number" >&2; exit 2; }
done
(( n2 > n1 )) || { echo "bench-callgrind: --n2 must be larger than --n1" >&2; exit 2; }
IFS=, read -ra servers <<< "$servers_opt"
for s in "${servers[@]}"; do
  case $s in mailrig|mailin) ;; *) echo "bench-callgrind: unknown server '$s' (mailrig, mailin)" >&2; exit 2 ;; esac
done
if [[ -n $keep ]]; then
  mkdir -p "$keep" && keep=$(cd "$keep" && pwd) || { echo "bench-callgrind: cannot create --keep directory '$keep'" >&2; exit 2; }
fi

cd "$(dirname "$0")/.."
repo=$PWD
target_dir=${CARGO_TARGET_DIR:-$repo/target}
PATH=$PATH:/usr/sbin
for t in valgrind callgrind_control smtp-source; do
  command -v "$t" >/dev/null || { echo "bench-callgrind: $t missing (Debian packages valgrind, postfix)" >&2; exit 1; }
done
cargo build --release -q -p mailrig
cargo build --release -q -p mailrig-benches --example mailin_sink
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-callgrind.XXXXXX")
pid=""
cleanup() { [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

run_once() { # server messages -> prints the total Ir of the run
  local server=$1 messages=$2 port out=$work/$1-$2.out
  port=$(free_port)
  local cmd
  case $server in
    mailrig) cmd=("$target_dir/release/mailrig" serve --scenario "$repo/crates/mailrig-core/catalog/kanzlei.toml"
                  --smtp "127.0.0.1:$port" --smtps 127.0.0.1:0 --imap 127.0.0.1:0 --imaps 127.0.0.1:0
                  --pop3 127.0.0.1:0 --pop3s 127.0.0.1:0 --http 127.0.0.1:0 --ca-out "$work/ca.pem" --threads 1) ;;
    mailin) cmd=("$target_dir/release/examples/mailin_sink" "127.0.0.1:$port" "$sessions") ;;
  esac
  valgrind --tool=callgrind --callgrind-out-file="$out.%p" "${cmd[@]}" >"$work/$server.log" 2>&1 &
  pid=$!
  local waited=0
  until port_open "$port"; do
    if ! kill -0 "$pid" 2>/dev/null || (( waited >= 600 )); then
      echo "bench-callgrind: $server did not start; its output:" >&2; tail -20 "$work/$server.log" >&2; exit 1
    fi
    sleep 0.1; waited=$((waited + 1))
  done
  smtp-source -s "$sessions" -l "$size" -m "$messages" -d -f load@extern.test -t user01@patente.test \
    "127.0.0.1:$port" >"$work/source.log" 2>&1 || { echo "bench-callgrind: smtp-source failed:" >&2; cat "$work/source.log" >&2; exit 1; }
  if grep -qiE 'error|fatal|warning' "$work/source.log"; then
    echo "bench-callgrind: smtp-source reported problems against $server:" >&2; cat "$work/source.log" >&2; exit 1
  fi
  callgrind_control --dump="after load" "$pid" >/dev/null
  kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; pid=""
  # the dump written by callgrind_control: files named $out.<pid>.<n>; sum their totals
  local total=0 f v
  for f in "$out".*; do
    v=$(awk '/^(summary|totals):/ {print $2; exit}' "$f")
    total=$(( total + ${v:-0} ))
    if [[ $messages == "$n2" ]]; then
      [[ $top == 1 ]] && cp "$f" "$work/top-$server.out"
      [[ -n $keep ]] && cp "$f" "$keep/$server.callgrind"
    fi
  done
  echo "$total"
}

printf '# bench-callgrind %s, %s-byte bodies, %s sessions, runs of %s and %s messages\n' \
  "$(date -u +%FT%TZ)" "$size" "$sessions" "$n1" "$n2"
printf '%-8s %16s %16s %14s\n' server "Ir(${n1})" "Ir(${n2})" "Ir/message"
for s in "${servers[@]}"; do
  a=$(run_once "$s" "$n1")
  b=$(run_once "$s" "$n2")
  printf '%-8s %16s %16s %14.0f\n' "$s" "$a" "$b" "$(echo "($b - $a) / ($n2 - $n1)" | bc -l)"
done
if [[ $top == 1 ]]; then
  for s in "${servers[@]}"; do
    [[ -f $work/top-$s.out ]] || continue
    echo "## $s: functions with most instructions (run of $n2)"
    callgrind_annotate --inclusive=no "$work/top-$s.out" 2>/dev/null | sed -n '1,40p' | grep -E '^ *[0-9,]+ ' | head -25
  done
fi
