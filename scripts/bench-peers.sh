#!/usr/bin/env bash
# Measures mailrig's SMTP server beside its peers under the same loads, in one run, and prints one table:
# messages/second, the server's CPU time per message, its peak memory, messages received against messages
# sent, and the ratio to Postfix's smtp-sink (a C sink that stores nothing: the ceiling).
#
# Servers (each started fresh for every cell, on a free loopback port):
#   smtp-sink  Postfix's smtp-sink: discards everything
#   aiosmtpd   Python's aiosmtpd, a handler appending each message to a list    (benches/peers/aiosmtpd_sink.py)
#   maildev    MailDev (npm), messages in its in-memory store, web API on
#   mailin     mailin-embedded 0.8, messages into a Vec; fixed thread pool       (benches/peers/mailin_sink.rs)
#   mailrig    mailrig serve, memory store, scenario crates/mailrig-core/catalog/kanzlei.toml (count via its HTTP API)
# Drivers: smtp-source (Postfix) and mailrig load. Both keep their connections open (smtp-source -d);
# --per-connection opens one connection per message instead. Every cell also reads the kernel's
# TcpExt ListenOverflows counter before and after: a server whose accept queue overflowed had SYNs dropped
# and retransmitted 1-3 s later, a stall an average hides, so such a cell is flagged and the run fails.
#
# usage: scripts/bench-peers.sh [options]
#   --servers LIST     comma-separated subset of: smtp-sink,aiosmtpd,maildev,mailin,mailrig   (default: all)
#   --drivers LIST     smtp-source,mailrig-load                                            (default: both)
#   --sessions LIST    concurrent sessions per load                                        (default: 20,100)
#   --sizes LIST       message sizes: 4k, 100k or bytes                                     (default: 4k,100k)
#   --messages N       messages per cell at 4 KiB; larger sizes get N*4k/size, at least 500 (default: 20000)
#   --per-connection   one connection per message instead of keeping connections
#   --mailrig-threads N  worker threads of mailrig serve (default: its own, one per core)
#   --accept-storm     the accept-queue row: 200 sessions, one connection per message, 15000 x 4 KiB
#                      (the load that overflowed a backlog of 128: smtp-source -s 200 -m 15000 -l 4096)
#   --no-install       do not install missing peers (pip aiosmtpd, npm maildev), just say how
# The defaults run 40 cells in about 5 minutes on 2 cores.
#
# Needs smtp-source and smtp-sink (Debian package postfix; scripts/install-test-deps.sh), python3 with
# venv, node >= 20 with npm, and cargo. Peers are installed into ${CARGO_TARGET_DIR:-target}/peers, never
# globally. Notes on fairness: every server and both drivers share the machine's cores; smtp-source's -l is
# the body size without its ~120 bytes of headers, mailrig load's --size includes the headers; the mailin
# pool gets as many threads as the largest --sessions (its pool size caps concurrent sessions).
set -euo pipefail

servers_opt=smtp-sink,aiosmtpd,maildev,mailin,mailrig
drivers_opt=smtp-source,mailrig-load
sessions_opt=20,100
sizes_opt=4k,100k
messages_4k=20000
per_connection=0
mailrig_threads=()
install=1
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --servers) servers_opt=$2; shift 2 ;;
    --drivers) drivers_opt=$2; shift 2 ;;
    --sessions) sessions_opt=$2; shift 2 ;;
    --sizes) sizes_opt=$2; shift 2 ;;
    --messages) messages_4k=$2; shift 2 ;;
    --per-connection) per_connection=1; shift ;;
    --mailrig-threads) mailrig_threads=(--threads "$2"); shift 2 ;;
    --accept-storm) per_connection=1; sessions_opt=200; sizes_opt=4k; messages_4k=15000; shift ;;
    --no-install) install=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench-peers: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
IFS=, read -ra servers <<< "$servers_opt"
IFS=, read -ra drivers <<< "$drivers_opt"
IFS=, read -ra sessions_list <<< "$sessions_opt"
IFS=, read -ra sizes <<< "$sizes_opt"
for s in "${servers[@]}"; do
  case $s in smtp-sink|aiosmtpd|maildev|mailin|mailrig) ;; *) echo "bench-peers: --servers: unknown server '$s'" >&2; exit 2 ;; esac
done
for d in "${drivers[@]}"; do
  case $d in smtp-source|mailrig-load) ;; *) echo "bench-peers: --drivers: unknown driver '$d'" >&2; exit 2 ;; esac
done
for n in "${sessions_list[@]}" "$messages_4k"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "bench-peers: '$n' is not a positive number (--sessions, --messages)" >&2; exit 2; }
done
bytes_of() { # 4k -> 4096, 100k -> 102400, 1m, or plain bytes
  local v=${1,,}
  case $v in
    *k) echo $(( ${v%k} * 1024 )) ;;
    *m) echo $(( ${v%m} * 1024 * 1024 )) ;;
    *) [[ $v =~ ^[0-9]+$ ]] && echo "$v" || { echo "bench-peers: --sizes: '$1' is not a size" >&2; exit 2; } ;;
  esac
}
for z in "${sizes[@]}"; do bytes_of "$z" >/dev/null; done

cd "$(dirname "$0")/.."
repo=$PWD
target_dir=${CARGO_TARGET_DIR:-$repo/target}
peers=$target_dir/peers
mkdir -p "$peers"
PATH=$PATH:/usr/sbin
has() { printf '%s\n' "${@:2}" | grep -qx "$1"; }
die() { echo "bench-peers: $*" >&2; exit 1; }

# ---- what the chosen servers and drivers need ---------------------------------------------------------
for t in smtp-source smtp-sink; do
  command -v "$t" >/dev/null || die "$t missing: run scripts/install-test-deps.sh (Debian package postfix)"
done
cargo build --release -q -p mailrig
mailrig_bin=$target_dir/release/mailrig
if has mailin "${servers[@]}"; then
  cargo build --release -q -p mailrig-benches --example mailin_sink
fi
mailin_bin=$target_dir/release/examples/mailin_sink
python=$peers/venv/bin/python
if has aiosmtpd "${servers[@]}" && ! "$python" -c 'import aiosmtpd' 2>/dev/null; then
  how="python3 -m venv $peers/venv && $peers/venv/bin/pip install aiosmtpd"
  [[ $install == 1 ]] || die "aiosmtpd is not installed; install it with: $how"
  echo "bench-peers: installing aiosmtpd into $peers/venv" >&2
  { python3 -m venv "$peers/venv" && "$peers/venv/bin/pip" install -q aiosmtpd; } >&2 ||
    die "installing aiosmtpd failed (Debian needs python3-venv); try: $how"
fi
maildev_js=$peers/node_modules/maildev/dist/bin/maildev.js
if has maildev "${servers[@]}" && [[ ! -f $maildev_js ]]; then
  how="npm install --prefix $peers --no-audit --no-fund maildev@3"
  [[ $install == 1 ]] || die "MailDev is not installed; install it with: $how"
  command -v npm >/dev/null || die "npm missing: install Node.js >= 20 with npm, then: $how"
  echo "bench-peers: installing MailDev into $peers/node_modules" >&2
  npm install --prefix "$peers" --no-audit --no-fund --loglevel=error maildev@3 >&2 || die "installing MailDev failed; try: $how"
  [[ -f $maildev_js ]] || die "MailDev installed but $maildev_js is missing (layout changed?)"
fi

# ---- helpers ------------------------------------------------------------------------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
peak_rss_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)
listen_overflows() { # the kernel's count of connections dropped because an accept queue was full
  awk '/^TcpExt:/ { if (!seen) { for (i = 1; i <= NF; i++) if ($i == "ListenOverflows") col = i; seen = 1 }
                    else { print (col ? $col : 0) } }' /proc/net/netstat
}
max_sessions=$(printf '%s\n' "${sessions_list[@]}" | sort -n | tail -1)
logs=$(mktemp -d "${TMPDIR:-/tmp}/bench-peers.XXXXXX")

server_pid="" smtp_port="" count_port=""
stop_server() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
cleanup() { stop_server; rm -rf "$logs"; }
trap cleanup EXIT

start_server() { # name: starts it fresh, sets server_pid, smtp_port, count_port
  local name=$1 log=$logs/$1.log
  smtp_port=$(free_port) count_port=$(free_port)
  case $name in
    smtp-sink)
      local user=(); [[ $(id -u) == 0 ]] && user=(-u nobody)
      smtp-sink "${user[@]}" "127.0.0.1:$smtp_port" 1024 >"$log" 2>&1 & ;;
    aiosmtpd)
      "$python" "$repo/benches/peers/aiosmtpd_sink.py" 127.0.0.1 "$smtp_port" "$count_port" >"$log" 2>&1 & ;;
    maildev)
      # node itself is the measured process (no npx or shell in between)
      node "$maildev_js" --smtp "$smtp_port" --ip 127.0.0.1 --web "$count_port" --web-ip 127.0.0.1 --silent >"$log" 2>&1 & ;;
    mailin)
      "$mailin_bin" "127.0.0.1:$smtp_port" "$max_sessions" "127.0.0.1:$count_port" >"$log" 2>&1 & ;;
    mailrig)
      "$mailrig_bin" serve --scenario "$repo/crates/mailrig-core/catalog/kanzlei.toml" --smtp "127.0.0.1:$smtp_port" \
        --smtps 127.0.0.1:0 --imap 127.0.0.1:0 --imaps 127.0.0.1:0 --pop3 127.0.0.1:0 --pop3s 127.0.0.1:0 \
        --http "127.0.0.1:$count_port" --ca-out "$logs/mailrig-ca.pem" "${mailrig_threads[@]}" >"$log" 2>&1 & ;;
  esac
  server_pid=$!
  local waited=0
  until port_open "$smtp_port" && { [[ $name == smtp-sink ]] || port_open "$count_port"; }; do
    if ! kill -0 "$server_pid" 2>/dev/null || (( waited >= 300 )); then
      echo "bench-peers: $name did not start (listening on 127.0.0.1:$smtp_port); its output:" >&2
      tail -20 "$log" >&2
      exit 1
    fi
    sleep 0.05; waited=$((waited + 1))
  done
}

received() { # messages the running server holds, or "-" when it cannot tell
  local line
  case $1 in
    aiosmtpd|mailin)
      exec 3<>"/dev/tcp/127.0.0.1/$count_port" && read -r line <&3 && exec 3<&- && echo "$line" ;;
    maildev)
      curl -sf "http://127.0.0.1:$count_port/api/email/summary?limit=1" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])' 2>/dev/null || echo "?" ;;
    mailrig) # the store, through the HTTP API
      curl -sf "http://127.0.0.1:$count_port/api/v1/mailboxes/user01@patente.test" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["messages"])' 2>/dev/null || echo "?" ;;
    *) echo "-" ;;
  esac
}

run_driver() { # driver sessions bytes messages -> prints "SENT RC"
  local driver=$1 sessions=$2 bytes=$3 messages=$4 rc=0
  case $driver in
    smtp-source)
      local keep=(-d); [[ $per_connection == 1 ]] && keep=()
      smtp-source -s "$sessions" -l "$bytes" -m "$messages" "${keep[@]}" -f load@extern.test \
        -t user01@patente.test "127.0.0.1:$smtp_port" >"$logs/driver.log" 2>&1 || rc=$?
      # smtp-source keeps no count of its own; it complains on stderr about every failure
      if [[ $rc == 0 ]] && ! grep -qiE 'error|fatal|warning' "$logs/driver.log"; then
        echo "$messages $rc"
      else
        echo "? $rc"
      fi ;;
    mailrig-load)
      local mpc=0; [[ $per_connection == 1 ]] && mpc=1
      "$mailrig_bin" load "127.0.0.1:$smtp_port" -c "$sessions" -n "$messages" -s "$bytes" \
        --messages-per-connection "$mpc" --from load@extern.test --to user01@patente.test \
        --no-progress --json "$logs/load.json" >"$logs/driver.log" 2>&1 || rc=$?
      local sent
      sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["counts"]["accepted"])' "$logs/load.json" 2>/dev/null || echo "?")
      echo "$sent $rc" ;;
  esac
}

# ---- the run ------------------------------------------------------------------------------------------
mode="connections kept"; [[ $per_connection == 1 ]] && mode="one connection per message"
printf '# bench-peers %s, %s, %s cores, %s\n' "$(date -u +%FT%TZ)" "$mode" "$(nproc)" "$(uname -r)"
printf '# mailin pool: %s threads; messages per cell: %s at 4 KiB, scaled by size\n' "$max_sessions" "$messages_4k"
printf '%-10s %-13s %-10s %7s %9s %12s %10s %13s %8s %9s\n' \
  server driver load msgs msg/s "cpu µs/msg" "peak RSS" "recv/sent" "vs sink" overflows
declare -A sink_rate
failures=0
for size in "${sizes[@]}"; do
  bytes=$(bytes_of "$size")
  messages=$(( messages_4k * 4096 / bytes )); (( messages < 500 )) && messages=500
  for sessions in "${sessions_list[@]}"; do
    load="${sessions}x${size}"
    for driver in "${drivers[@]}"; do
      for server in "${servers[@]}"; do
        start_server "$server"
        before=$(cpu_ticks "$server_pid")
        overflows_before=$(listen_overflows)
        t0=$(date +%s.%N)
        read -r sent rc < <(run_driver "$driver" "$sessions" "$bytes" "$messages")
        t1=$(date +%s.%N)
        after=$(cpu_ticks "$server_pid")
        overflows=$(( $(listen_overflows) - overflows_before ))
        rss=$(peak_rss_kib "$server_pid")
        recv=$(received "$server")
        stop_server
        rate=$(echo "$messages / ($t1 - $t0)" | bc -l)
        cpu=$(echo "($after - $before) * 1000000 / $hz / $messages" | bc -l)
        [[ $server == smtp-sink ]] && sink_rate[$driver/$load]=$rate
        ratio="-"
        [[ -n ${sink_rate[$driver/$load]:-} ]] && ratio=$(printf '%.2f×' "$(echo "$rate / ${sink_rate[$driver/$load]}" | bc -l)")
        note=""
        if [[ $rc != 0 ]] || [[ $sent == "?" ]] || [[ $recv != "-" && $recv != "$sent" ]]; then
          note="  ! driver exit $rc, see below"; failures=$((failures + 1))
          cp "$logs/driver.log" "$logs/failed-$server-$driver-$load.log"
        fi
        if (( overflows > 0 )); then
          note="$note  ! accept queue overflowed $overflows times (SYNs dropped, clients stalled)"
          failures=$((failures + 1))
        fi
        printf '%-10s %-13s %-10s %7s %9.0f %12.1f %8.0f MiB %13s %8s %9s%s\n' \
          "$server" "$driver" "$load" "$messages" "$rate" "$cpu" "$(echo "$rss / 1024" | bc -l)" \
          "$recv/$sent" "$ratio" "$overflows" "$note"
      done
    done
  done
done
if (( failures > 0 )); then
  echo "# $failures problem(s): failed or lost messages, or accept-queue overflows; driver output:" >&2
  for f in "$logs"/failed-*.log; do [[ -e $f ]] || continue; echo "## ${f##*/}" >&2; tail -5 "$f" >&2; done
  exit 1
fi
