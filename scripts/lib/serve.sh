# Sourced by the bench scripts: start `mailrig serve` on a scenario and wait for its banner.
#
#   start_serve BIN SCENARIO LISTEN WORKDIR
#
# Starts BIN serve in the background (CA written to WORKDIR/ca.pem, banner and log in WORKDIR/banner),
# sets `pid` to its process id, and returns once it prints "Press Ctrl-C"; exits 1 with the banner if
# the server dies first. `banner_addr NAME` prints the address of the banner's NAME line (SMTP, IMAP,
# HTTP ...). The caller's cleanup kills "$pid".
start_serve() {
  "$1" serve --scenario "$2" --listen "$3" --ca-out "$4/ca.pem" >"$4/banner" 2>&1 &
  pid=$!
  serve_banner=$4/banner
  for _ in $(seq 300); do
    grep -q "Press Ctrl-C" "$serve_banner" && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$serve_banner" >&2; exit 1; }
    sleep 0.1
  done
}

banner_addr() {
  awk -v name="$1" '$1 == name { print $2; exit }' "$serve_banner"
}
