#!/usr/bin/env bash
# Installs what mailrig's tests need, and only what is missing.
#
# Debian packages: swaks, fetchmail (training labs), isync, offlineimap3 and neomutt (IMAP sync clients), postfix (smtp-source, smtp-sink and the real server the
# end-to-end tests start privately), dovecot-imapd, dovecot-pop3d, dovecot-lmtpd,
# dovecot-sieve (Pigeonhole: a Sieve rule files one mailbox's mail into Junk),
# opendkim and opendkim-tools (the DKIM signer of the world's end-to-end test),
# curl, chromium, python3 and python3-pip (only when pip is missing), nodejs and
# npm (when npm is missing); Python packages: imapclient, schemathesis; npm:
# playwright-core (into crates/mailrig/tests/ui/node_modules) and imapflow (into
# crates/mailrig-server/tests/js/node_modules).
#
# Idempotent, non-interactive (reads no stdin), meant to run as root on Debian.
# `apt-get update` runs at most once, and only when something must be installed.
# The system Postfix and Dovecot services are never started by the install: the
# tests start their own private instances (scripts/realmail/start.sh).
#
# Prints one line per dependency: "<name>: present" or "<name>: installed".
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
exec </dev/null

if [[ $(id -u) -ne 0 ]]; then
    SUDO=(sudo -n)
else
    SUDO=()
fi

APT_OPTS=(-y -q -o DPkg::Lock::Timeout=600
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

apt_updated=0
installed_debs=()
policy_rc_created=0

cleanup() {
    if [[ $policy_rc_created -eq 1 ]]; then
        "${SUDO[@]}" rm -f /usr/sbin/policy-rc.d
    fi
}
trap cleanup EXIT

# Keep invoke-rc.d from starting services while packages are configured.
block_service_starts() {
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\n# temporary, from mailrig scripts/install-test-deps.sh\nexit 101\n' |
            "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
        "${SUDO[@]}" chmod 755 /usr/sbin/policy-rc.d
        policy_rc_created=1
    fi
}

deb_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

apt_install() {
    block_service_starts
    if [[ $apt_updated -eq 0 ]]; then
        "${SUDO[@]}" apt-get -q -o DPkg::Lock::Timeout=600 update >/dev/null
        apt_updated=1
    fi
    "${SUDO[@]}" apt-get install "${APT_OPTS[@]}" "$@" >/dev/null
}

# --- Debian packages ---------------------------------------------------------

# Postfix asks which mail setup to write to /etc/postfix; tests need none.
if ! deb_installed postfix; then
    printf '%s\n' \
        'postfix postfix/main_mailer_type select No configuration' \
        'postfix postfix/mailname string mailrig.test' |
        "${SUDO[@]}" debconf-set-selections
fi

debs=(swaks postfix dovecot-imapd dovecot-pop3d dovecot-lmtpd dovecot-sieve curl)
debs+=(iproute2)  # ss: the listen-backlog test reads a listener's accept queue
debs+=(strace) # crates/mailrig/tests/maildir_fsync.rs: the fsync order of a delivery
debs+=(chromium) # crates/mailrig/tests/ui_browser.rs: the web page in a real browser
debs+=(bind9-dnsutils) # dig: crates/mailrig-server/tests/dns_*.rs and the CLI's --dns test
debs+=(dnsperf dnsmasq-base) # scripts/bench-dns.sh: load generator and the peer (no service started)
debs+=(isync offlineimap3 neomutt) # mbsync, offlineimap and neomutt (header cache): crates/mailrig-server/tests/imap_sync_clients.rs
debs+=(fetchmail) # the training labs (labs/kanzlei-collector) and crates/mailrig-server/tests/collector_fetchmail.rs
debs+=(openssl)   # the training labs (labs/imaps-wrong-certificate): certificates made at start
debs+=(opendkim opendkim-tools) # crates/mailrig-server/tests/world_story.rs: OpenDKIM as Postfix's milter (scripts/realmail/outbound.py)
missing=()
for pkg in "${debs[@]}"; do
    if deb_installed "$pkg"; then
        echo "$pkg: present"
    else
        missing+=("$pkg")
    fi
done

# python3 may come from pyenv rather than Debian: a working interpreter is enough.
if command -v python3 >/dev/null 2>&1; then
    echo "python3: present ($(command -v python3))"
else
    missing+=(python3)
fi

if [[ ${#missing[@]} -gt 0 ]]; then
    apt_install "${missing[@]}"
    installed_debs+=("${missing[@]}")
    for pkg in "${missing[@]}"; do
        echo "$pkg: installed"
    done
fi

if python3 -m pip --version >/dev/null 2>&1; then
    echo "pip: present"
else
    apt_install python3-pip
    installed_debs+=(python3-pip)
    echo "python3-pip: installed"
fi

# --- Python packages ---------------------------------------------------------

pip_install() {
    local out
    export PIP_ROOT_USER_ACTION=ignore
    if out=$(python3 -m pip install -q --disable-pip-version-check "$@" 2>&1); then
        return 0
    fi
    if grep -q externally-managed-environment <<<"$out"; then
        python3 -m pip install -q --disable-pip-version-check --break-system-packages "$@"
    else
        printf '%s\n' "$out" >&2
        return 1
    fi
}

if python3 -c 'import imapclient' >/dev/null 2>&1; then
    echo "imapclient: present"
else
    pip_install imapclient
    python3 -c 'import imapclient'
    echo "imapclient: installed"
fi

# schemathesis: docs/openapi.yaml against a live `mailrig serve`
# (crates/mailrig/tests/http_serve.rs); 4.32.5 is the version the test was written with.
if command -v schemathesis >/dev/null 2>&1 && python3 -c 'import schemathesis' >/dev/null 2>&1; then
    echo "schemathesis: present"
else
    pip_install "schemathesis==4.32.5"
    command -v schemathesis >/dev/null
    echo "schemathesis: installed"
fi

# --- npm packages --------------------------------------------------------------

# playwright-core (no bundled browser: it drives Debian's /usr/bin/chromium) for
# crates/mailrig/tests/ui_browser.rs, into crates/mailrig/tests/ui/node_modules
# (git-ignored); the version is pinned in crates/mailrig/tests/ui/package.json.
if ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
    installed_debs+=(nodejs npm)
    echo "npm: installed"
fi
ui_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/crates/mailrig/tests/ui"
if [[ -f "$ui_dir/node_modules/playwright-core/package.json" ]]; then
    echo "playwright-core: present"
else
    (cd "$ui_dir" && npm install --no-audit --no-fund --silent >/dev/null)
    echo "playwright-core: installed"
fi

# imapflow (npm) for the QRESYNC sync test in crates/mailrig-server/tests/imap_interop.rs,
# into crates/mailrig-server/tests/js/node_modules (git-ignored); the version is pinned in
# crates/mailrig-server/tests/js/package.json.
js_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/crates/mailrig-server/tests/js"
if [[ -f "$js_dir/node_modules/imapflow/package.json" ]]; then
    echo "imapflow: present"
else
    (cd "$js_dir" && npm install --no-audit --no-fund --silent >/dev/null)
    echo "imapflow: installed"
fi

# --- leave no system mail service running --------------------------------------
# policy-rc.d blocks starts during this run; an environment without it (or with a
# policy that allows starts) could still have started them, so stop what the
# packages installed here may have started.
if [[ ${#installed_debs[@]} -gt 0 ]]; then
    for pkg in "${installed_debs[@]}"; do
        case $pkg in
        postfix)
            if "${SUDO[@]}" postfix status >/dev/null 2>&1; then
                "${SUDO[@]}" postfix stop >/dev/null 2>&1 || true
                echo "postfix: stopped the system instance the install started"
            fi
            ;;
        opendkim)
            if [[ -s /run/opendkim/opendkim.pid ]] &&
                "${SUDO[@]}" kill -0 "$(cat /run/opendkim/opendkim.pid)" 2>/dev/null; then
                "${SUDO[@]}" kill "$(cat /run/opendkim/opendkim.pid)" 2>/dev/null || true
                echo "opendkim: stopped the system instance the install started"
            fi
            ;;
        dovecot-*)
            if [[ -s /run/dovecot/master.pid ]] &&
                "${SUDO[@]}" kill -0 "$(cat /run/dovecot/master.pid)" 2>/dev/null; then
                "${SUDO[@]}" doveadm stop >/dev/null 2>&1 || true
                echo "dovecot: stopped the system instance the install started"
            fi
            ;;
        esac
    done
fi
