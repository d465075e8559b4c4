#!/usr/bin/env bash
# The Dovecot mix of issue 11 ("Performance"): an imaptest-like IMAP mix (LOGIN, SELECT, FETCH of random
# fields, FETCH BODY[], STORE, APPEND, EXPUNGE, LOGOUT) from CLIENTS concurrent clients for SECONDS each,
# against `mailrig serve` (release build, memory store, every extension on) and a private Dovecot
# (scripts/realmail/start.sh: Maildir, plaintext LOGIN) in one run, one mailbox per client.
# Prints a table: commands/s and server CPU per command of each, and mailrig's ratios.
#
#   cargo build --release -p mailrig && cargo build --release -p mailrig-benches --example imap_mix &&
#   scripts/bench-imap-mix.sh [CLIENTS] [SECONDS]
#
# The driver is benches/examples/imap_mix.rs (tokio, raw IMAP lines, one thread; IMAP_MIX_THREADS=N for
# more); DRIVER=python uses scripts/bench-imap-mix.py instead (the same mix; slower than mailrig, so
# it caps mailrig's rate). DRIVER_BIN=path picks another build of the Rust driver.
#
# Defaults: 20 clients, 20 s per server. Needs root (Dovecot), dovecot-imapd and postfix
# (scripts/install-test-deps.sh), python3. MAILRIG=path picks another binary; LISTEN (default
# 127.0.1.1:0) mailrig's listeners, DOVECOT_HOST (default 127.0.1.2) Dovecot's.
# The driver shares the cores with the server; CPU per command is the server's own (Dovecot: the master
# and every child, reaped ones included); the Rust driver also prints its own CPU (driver_cpu_s).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
clients=${1:-20}
seconds=${2:-20}
bin=${MAILRIG:-$here/target/release/mailrig}
listen=${LISTEN:-127.0.1.1:0}
dhost=${DOVECOT_HOST:-127.0.1.2}
[ -x "$bin" ] || { echo "bench-imap-mix: no $bin: cargo build --release -p mailrig first" >&2; exit 2; }
case ${DRIVER:-rust} in
  rust)
    dbin=${DRIVER_BIN:-$here/target/release/examples/imap_mix}
    [ -x "$dbin" ] || { echo "bench-imap-mix: no $dbin: cargo build --release -p mailrig-benches --example imap_mix first" >&2; exit 2; }
    driver=("$dbin") ;;
  python) driver=(python3 "$here/scripts/bench-imap-mix.py") ;;
  *) echo "bench-imap-mix: DRIVER is rust or python, not ${DRIVER}" >&2; exit 2 ;;
esac
work=$(mktemp -d)
chmod 755 "$work" # Postfix and Dovecot drop root: the state dir must be searchable
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  "$here/scripts/realmail/stop.sh" "$work/dovecot" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
cat >"$work/bench.toml" <<TOML
[[domain]]
name = "bench.test"
mailboxes = ["u1..u$clients"]
password = "secret"
TOML
# shellcheck source=lib/serve.sh
. "$here/scripts/lib/serve.sh"
start_serve "$bin" "$work/bench.toml" "$listen" "$work"
imap=$(banner_addr IMAP)
users=$(seq -s, -f "u%g@bench.test" 1 "$clients")
echo "mailrig serve (pid $pid): IMAP $imap" >&2
m=$("${driver[@]}" mailrig "${imap%:*}" "${imap##*:}" "$pid" "$users" secret "$clients" "$seconds")
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
"$here/scripts/realmail/start.sh" "$work/dovecot" --mailboxes "$clients" --host "$dhost" >"$work/dovecot.out"
# shellcheck disable=SC1091
. "$work/dovecot/env"
dusers=$(seq -s, -f "user%02g@patente.test" 1 "$clients")
[ "$clients" -ge 100 ] && dusers=$(seq -s, -f "user%03g@patente.test" 1 "$clients")
echo "dovecot (pid $DOVECOT_PID): IMAP $dhost:$IMAP_PORT" >&2
d=$("${driver[@]}" dovecot "$dhost" "$IMAP_PORT" "$DOVECOT_PID" "$dusers" secret "$clients" "$seconds")
echo "$m"
echo "$d"
field() { sed -n "s|.* $2=\([^ ]*\).*|\1|p" <<<"$1"; }
printf '\n| server | clients | commands/s | CPU per command | errors |\n|---|---|---|---|---|\n'
for r in "$m" "$d"; do
  printf '| %s | %s | %s | %s µs | %s |\n' "${r%% *}" "$(field "$r" clients)" "$(field "$r" cmd/s)" \
    "$(field "$r" cpu_us/cmd)" "$(field "$r" errors)"
done
python3 - "$(field "$m" cmd/s)" "$(field "$d" cmd/s)" "$(field "$m" cpu_us/cmd)" "$(field "$d" cpu_us/cmd)" <<'PY'
import sys
mr, dr, mc, dc = map(float, sys.argv[1:5])
print(f"\nmailrig / dovecot: {mr / dr:.1f}x commands/s, {dc / max(mc, 1e-9):.1f}x less CPU per command")
PY
uptime
