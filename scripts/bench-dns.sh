#!/usr/bin/env bash
# Queries per second of mailrig's DNS server (`serve --dns`), side by side with dnsmasq serving the same
# records, both measured with dnsperf (Debian `dnsperf`; dnsmasq from `dnsmasq-base`, no service started;
# scripts/install-test-deps.sh installs both).
#
# The zone: the scenario below (example.test and shop.test, an SPF TXT, a DMARC TXT); the query mix: MX,
# A, TXT, PTR and one unknown name (NXDOMAIN), repeated. mailrig journals and counts every query, as it
# always does; dnsmasq is started privately on 127.0.0.1 with a free high port, without a config file,
# resolv.conf or /etc/hosts, answering only these records (--local makes the rest NXDOMAIN). Each server
# gets one run of SECONDS with CLIENTS dnsperf clients; the report gives both figures and the ratio
# mailrig / dnsmasq. The target is >= 20,000 queries/s for mailrig.
#
# usage: scripts/bench-dns.sh [SECONDS] [CLIENTS]   defaults: 10 4
# MAILRIG=PATH measures that binary instead of building target/release/mailrig; THREADS=N gives mailrig
# N worker threads (default 1; `serve` itself picks one per CPU).
set -euo pipefail
secs=${1:-10} clients=${2:-4}
for v in "$secs" "$clients"; do
  [[ $v =~ ^[0-9]+$ && $v -gt 0 ]] || { echo "bench-dns: '$v' is not a positive number" >&2; exit 2; }
done
for tool in dnsperf dnsmasq dig; do
  command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] ||
    { echo "bench-dns: needs $tool (scripts/install-test-deps.sh: dnsperf, dnsmasq-base, bind9-dnsutils)" >&2; exit 2; }
done
dnsmasq_bin=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
cd "$(dirname "$0")/.."
if [[ -n ${MAILRIG:-} ]]; then
  bin=$MAILRIG
else
  cargo build --release -q -p mailrig
  bin=${CARGO_TARGET_DIR:-target}/release/mailrig
fi
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

spf='v=spf1 ip4:127.0.0.1 -all'
dmarc='v=DMARC1; p=reject'
cat >"$work/world.toml" <<TOML
[[domain]]
name = "example.test"
mailboxes = ["alice", "bob"]
password = "secret"
[[domain]]
name = "shop.test"
mailboxes = ["orders"]
password = "secret"
[[dns.record]]
name = "example.test"
type = "TXT"
value = "$spf"
[[dns.record]]
name = "_dmarc.example.test"
type = "TXT"
value = "$dmarc"
TOML
for _ in $(seq 50); do
  printf '%s\n' "example.test MX" "mx.example.test A" "example.test TXT" "_dmarc.example.test TXT" \
    "shop.test MX" "mx.shop.test A" "1.0.0.127.in-addr.arpa PTR" "nobody.example.test A"
done >"$work/queries"

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# mailrig: DNS plus the SMTP listener its MX hosts point at; the rest off.
"$bin" serve --scenario "$work/world.toml" --smtp 127.0.0.1:0 --smtps off --imap off --imaps off \
  --pop3 off --pop3s off --http off --dns 127.0.0.1:0 --threads "${THREADS:-1}" --ca-out "$work/ca.pem" >"$work/banner" 2>&1 &
pids+=($!)
for _ in $(seq 600); do grep -q 'Press Ctrl-C' "$work/banner" && break; sleep 0.05; done
grep -q 'Press Ctrl-C' "$work/banner" || { cat "$work/banner" >&2; echo "bench-dns: mailrig did not start" >&2; exit 1; }
mailrig_dns=$(awk '$1 == "DNS" {print $2}' "$work/banner")
mailrig_port=${mailrig_dns##*:}

# dnsmasq: the same records, nothing else.
dport=$(free_port)
"$dnsmasq_bin" --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-poll --pid-file= \
  --port="$dport" --listen-address=127.0.0.1 --bind-interfaces --user="$(id -un)" \
  --local=/example.test/ --local=/shop.test/ --local=/127.in-addr.arpa/ \
  --mx-host=example.test,mx.example.test,10 --mx-host=shop.test,mx.shop.test,10 \
  --host-record=mx.example.test,127.0.0.1 --host-record=mx.shop.test,127.0.0.1 \
  --ptr-record=1.0.0.127.in-addr.arpa,mx.example.test \
  --txt-record=example.test,"$spf" --txt-record=_dmarc.example.test,"$dmarc" >"$work/dnsmasq.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do dig @127.0.0.1 -p "$dport" +time=1 +tries=1 +short MX example.test >/dev/null 2>&1 && break; sleep 0.05; done

# Both must give the same answers before they are compared.
for q in "MX example.test" "A mx.shop.test" "TXT _dmarc.example.test" "PTR 1.0.0.127.in-addr.arpa"; do
  # shellcheck disable=SC2086
  a=$(dig @127.0.0.1 -p "$mailrig_port" +short $q) b=$(dig @127.0.0.1 -p "$dport" +short $q)
  [[ $a == "$b" && -n $a ]] || { echo "bench-dns: '$q' differs: mailrig '$a', dnsmasq '$b'" >&2; exit 1; }
done

run() { # name port
  local out
  out=$(dnsperf -s 127.0.0.1 -p "$2" -d "$work/queries" -l "$secs" -c "$clients" -q 200 2>&1)
  echo "$out" >"$work/$1.dnsperf"
  qps=$(awk '/Queries per second:/ {print $4}' <<<"$out")
  lost=$(awk '/Queries lost:/ {print $3}' <<<"$out")
  [[ -n $qps ]] || { echo "$out" >&2; echo "bench-dns: no figure from dnsperf for $1" >&2; exit 1; }
  printf '%-8s %12.0f queries/s   lost %s\n' "$1" "$qps" "$lost"
}
echo "dnsperf: $secs s, $clients clients, $(wc -l <"$work/queries") queries in the mix, $(nproc) CPUs"
m=$(run mailrig "$mailrig_port"); echo "$m"
d=$(run dnsmasq "$dport"); echo "$d"
mq=$(awk '{print $2}' <<<"$m") dq=$(awk '{print $2}' <<<"$d")
awk -v m="$mq" -v d="$dq" 'BEGIN { printf "ratio    mailrig / dnsmasq = %.2f   (target: mailrig >= 20000 queries/s: %s)\n", m / d, (m >= 20000 ? "met" : "NOT met") }'
