#!/usr/bin/env python3
"""Starts and stops a private outbound Postfix (a company's relay) that delivers by MX
through a DNS server of your choice, and signs with OpenDKIM as a milter.

Why: mailrig's world (fake DNS, several hosts) must be judged by a real MTA sending
into it. Postfix has no setting for "use this name server": its smtp(8) uses the
system resolver, which reads /etc/resolv.conf. Here smtp(8) runs chrooted in the
queue directory, whose etc/resolv.conf names the given DNS address (port 53: the
resolver takes no port), so only this instance's deliveries resolve through it.

    outbound.py start STATE_DIR (--dns IP | --relayhost IP:PORT) --bind IP
                                [--sign PATTERN=DOMAIN:SELECTOR:KEYFILE]... [--hostname NAME] [--timeout S]
    outbound.py stop  STATE_DIR

What runs:
    Postfix smtpd on 127.0.0.1:SMTP_PORT (relays for 127.0.0.0/8 only), queue, and
    smtp(8) chrooted, connecting from --bind (so SPF can name that address), with
    opportunistic STARTTLS (smtp_tls_security_level = may) logged at level 1;
    OpenDKIM (Debian `opendkim`) on 127.0.0.1:MILTER_PORT as smtpd's milter, signing
    relaxed/relaxed what its SigningTable matches (first --sign pattern that
    matches the From address wins); the milter failing means a 4xx (tempfail),
    never unsigned mail. Without --sign it signs nothing: the same relay, unsigned.
    --relayhost IP:PORT instead of MX delivery: every message goes to that one
    server (Postfix `relayhost = [IP]:PORT`, no DNS asked), e.g. a test's mailrig
    on 127.0.0.1:0, where a port-53 DNS and port-25 MX hosts are not wanted.

`start` prints KEY=VALUE lines on stdout (also written to STATE_DIR/env) and exits 0
once Postfix greets and OpenDKIM accepts connections; on failure it prints the log
tails on stderr, stops what it started and exits 1. `stop` is safe to repeat. Needs
root. Helpers (config writing, the queue layout, stopping Postfix) are realmail.py's.
"""

import argparse
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import realmail  # noqa: E402  (same directory)

from realmail import StartError, alive, free_ports, greets, read_env, read_pid, tail, wait_gone, write  # noqa: E402


def layout(state):
    p = realmail.layout(state)
    p.update(
        {
            "dk_dir": f"{state}/opendkim",
            "dk_conf": f"{state}/opendkim/opendkim.conf",
            "dk_pid": f"{state}/opendkim/opendkim.pid",
            "dk_log": f"{state}/opendkim.log",
        }
    )
    return p


def main_cf(p):
    relay = p.get("relayhost")
    relayhost = f"[{relay[0]}]:{relay[1]}" if relay else ""
    return f"""\
# Private outbound Postfix written by mailrig scripts/realmail/outbound.py. Do not edit.
compatibility_level = 3.6
config_directory = {p['pf_conf']}
queue_directory = {p['pf_queue']}
data_directory = {p['pf_data']}
mail_owner = postfix
setgid_group = postdrop
syslog_name = mailrig-outbound-{p['tag']}
maillog_file = {p['pf_log']}
maillog_file_prefixes = {p['state']}

myhostname = {p['hostname']}
mydomain = {p['hostname'].partition('.')[2] or p['hostname']}
myorigin = $mydomain
mydestination =
relay_domains =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_banner = $myhostname ESMTP mailrig-outbound
biff = no

# Delivery by MX, resolved through the chroot's etc/resolv.conf (the DNS under test),
# or to the one relayhost when given.
default_transport = smtp
relay_transport = smtp
relayhost = {relayhost}
smtp_host_lookup = dns
smtp_bind_address = {p['bind']}
smtp_tls_security_level = may
smtp_tls_loglevel = 1
smtp_connect_timeout = 5s
smtp_helo_timeout = 10s

# OpenDKIM signs what smtpd accepts; a milter failure defers, never passes unsigned.
smtpd_milters = inet:127.0.0.1:{p['milter']}
non_smtpd_milters = $smtpd_milters
milter_default_action = tempfail
milter_protocol = 6

in_flow_delay = 0
smtpd_error_sleep_time = 0
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 10s
delay_warning_time = 0
"""


MASTER_CF = """\
# Private outbound Postfix written by mailrig scripts/realmail/outbound.py. Do not edit.
# service   type  private unpriv chroot wakeup maxproc command
127.0.0.1:{smtp} inet n - n - - smtpd
pickup      unix  n - n 60    1 pickup
cleanup     unix  n - n -     0 cleanup
qmgr        unix  n - n 300   1 qmgr
tlsmgr      unix  - - n 1000? 1 tlsmgr
rewrite     unix  - - n -     - trivial-rewrite
bounce      unix  - - n -     0 bounce
defer       unix  - - n -     0 bounce
trace       unix  - - n -     0 bounce
verify      unix  - - n -     1 verify
flush       unix  n - n 1000? 0 flush
proxymap    unix  - - n -     - proxymap
proxywrite  unix  - - n -     1 proxymap
# chroot = y: the resolver reads QUEUE_DIR/etc/resolv.conf.
smtp        unix  - - y -     - smtp
relay       unix  - - y -     - smtp
showq       unix  n - n -     - showq
error       unix  - - n -     - error
retry       unix  - - n -     - error
discard     unix  - - n -     - discard
anvil       unix  - - n -     1 anvil
scache      unix  - - n -     1 scache
postlog     unix-dgram n - n - 1 postlogd
"""


def opendkim_conf(p):
    return f"""\
# Private OpenDKIM written by mailrig scripts/realmail/outbound.py. Do not edit.
Syslog                  no
Background              no
Mode                    s
Socket                  inet:{p['milter']}@127.0.0.1
PidFile                 {p['dk_pid']}
Canonicalization        relaxed/relaxed
SignatureAlgorithm      rsa-sha256
KeyTable                file:{p['dk_dir']}/KeyTable
SigningTable            refile:{p['dk_dir']}/SigningTable
OversignHeaders         From
# The keys are copied here, owned by root, mode 600; root is their only reader.
RequireSafeKeys         no
"""


def parse_sign(text):
    """PATTERN=DOMAIN:SELECTOR:KEYFILE -> (pattern, domain, selector, keyfile)."""
    pattern, eq, rest = text.partition("=")
    parts = rest.split(":", 2)
    if not eq or len(parts) != 3 or not all(parts) or not pattern:
        raise StartError(f"--sign {text!r}: write PATTERN=DOMAIN:SELECTOR:KEYFILE, e.g. '*@firma.test=firma.test:mail:/keys/mail.pem'")
    domain, selector, keyfile = parts
    if not os.path.isfile(keyfile):
        raise StartError(f"--sign {text!r}: no key file {keyfile}")
    return pattern, domain, selector, keyfile


def prepare_chroot(p):
    """The chroot smtp(8) lives in: etc/resolv.conf naming the DNS under test, and the
    path of the postlog socket as seen from outside, so logging works inside too."""
    etc = f"{p['pf_queue']}/etc"
    os.makedirs(etc, mode=0o755, exist_ok=True)
    # attempts/timeout: a DNS fault (no answer) gives up in seconds, not minutes.
    nameserver = f"nameserver {p['dns']}\n" if p.get("dns") else ""
    write(f"{etc}/resolv.conf", f"{nameserver}options timeout:2 attempts:2\n")
    for name in ("services", "localtime", "nsswitch.conf"):
        src = f"/etc/{name}"
        if os.path.exists(src):
            shutil.copyfile(src, f"{etc}/{name}")
    # smtp(8) reaches postlogd at QUEUE_DIR/public/postlog by absolute path; inside the
    # chroot that path is QUEUE_DIR/QUEUE_DIR/...: make it lead back to the root.
    inner = p["pf_queue"].lstrip("/")
    parent = os.path.join(p["pf_queue"], os.path.dirname(inner))
    os.makedirs(parent, mode=0o755, exist_ok=True)
    link = os.path.join(p["pf_queue"], inner)
    if not os.path.islink(link):
        os.symlink("/", link)


def prepare(p, signs):
    postfix_uid = pwd.getpwnam("postfix").pw_uid
    for d in (p["pf_conf"], p["pf_queue"], p["dk_dir"]):
        os.makedirs(d, mode=0o755, exist_ok=True)
        os.chmod(d, 0o755)
    realmail.make_postfix_queue(p, postfix_uid)
    prepare_chroot(p)
    write(f"{p['pf_conf']}/main.cf", main_cf(p))
    write(f"{p['pf_conf']}/master.cf", MASTER_CF.format(smtp=p["smtp"]))
    keys, table = [], []
    for i, (pattern, domain, selector, keyfile) in enumerate(signs):
        name = f"key{i}"
        path = f"{p['dk_dir']}/{name}.private"
        shutil.copyfile(keyfile, path)
        os.chmod(path, 0o600)
        keys.append(f"{name} {domain}:{selector}:{path}\n")
        table.append(f"{pattern} {name}\n")
    write(f"{p['dk_dir']}/KeyTable", "".join(keys))
    write(f"{p['dk_dir']}/SigningTable", "".join(table))
    write(p["dk_conf"], opendkim_conf(p))


def env_lines(p, seconds):
    return [
        f"STATE_DIR={p['state']}",
        "SMTP_HOST=127.0.0.1",
        f"SMTP_PORT={p['smtp']}",
        f"MILTER_PORT={p['milter']}",
        f"BIND_ADDRESS={p['bind']}",
        f"DNS_SERVER={p.get('dns') or ''}",
        f"RELAYHOST={':'.join(map(str, p['relayhost'])) if p.get('relayhost') else ''}",
        f"HOSTNAME={p['hostname']}",
        f"POSTFIX_CONFIG_DIR={p['pf_conf']}",
        f"POSTFIX_QUEUE_DIR={p['pf_queue']}",
        f"POSTFIX_PID={read_pid(p['pf_queue'] + '/pid/master.pid') or ''}",
        f"OPENDKIM_PID={p.get('dk_pid_value') or ''}",
        f"POSTFIX_LOG={p['pf_log']}",
        f"OPENDKIM_LOG={p['dk_log']}",
        f"STARTUP_SECONDS={seconds:.2f}",
    ]


def accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def try_start(p, deadline):
    log = open(p["dk_log"], "a", encoding="utf-8")
    proc = subprocess.Popen(
        ["opendkim", "-f", "-x", p["dk_conf"]],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    log.close()
    p["dk_pid_value"] = proc.pid
    write(f"{p['state']}/env", "".join(f"{line}\n" for line in env_lines(p, 0)))
    if realmail.run(["postfix", "-c", p["pf_conf"], "start"], p["start_log"]) != 0:
        raise StartError("postfix did not start")
    waiting = {"SMTP": lambda: greets(p["smtp"], b"220 "), "milter": lambda: accepts(p["milter"])}
    while waiting:
        if proc.poll() is not None:
            raise StartError(f"opendkim exited with {proc.returncode}")
        for name, ready in list(waiting.items()):
            if ready():
                del waiting[name]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise StartError(f"not ready within the time limit: {', '.join(sorted(waiting))}")
        time.sleep(0.05)


def start(args):
    if os.geteuid() != 0:
        raise StartError("must run as root (the Postfix master starts as root)")
    for tool in ("postfix", "opendkim"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            raise StartError(f"{tool} not found: run scripts/install-test-deps.sh")
    state = os.path.abspath(args.state_dir)
    if len(state) > realmail.MAX_STATE_DIR:
        raise StartError(f"STATE_DIR {state} is longer than {realmail.MAX_STATE_DIR} characters (unix socket paths): use a shorter one under /tmp")
    os.makedirs(state, exist_ok=True)
    os.chmod(state, 0o755)
    realmail.check_traversable(state)
    if alive(read_pid(f"{state}/postfix-queue/pid/master.pid"), "master"):
        raise StartError(f"an instance is already running in {state}: stop it first")
    signs = [parse_sign(s) for s in args.sign]
    began = time.monotonic()
    deadline = began + args.timeout
    p = layout(state)
    p["smtp"], p["milter"] = free_ports(2)
    p["bind"], p["dns"], p["hostname"] = args.bind, args.dns, args.hostname
    p["relayhost"] = args.relayhost
    prepare(p, signs)
    try:
        try_start(p, deadline)
    except (StartError, OSError) as e:
        stop_instance(state)
        raise StartError(str(e)) from e
    lines = env_lines(p, time.monotonic() - began)
    write(f"{state}/env", "".join(f"{line}\n" for line in lines))
    print("\n".join(lines), flush=True)


def stop_instance(state):
    state = os.path.abspath(state)
    env = read_env(state)
    p = layout(state)
    log = p["start_log"] if os.path.isdir(state) else os.devnull
    pf_pid = read_pid(f"{p['pf_queue']}/pid/master.pid")
    if alive(pf_pid, "master"):
        realmail.run(["postfix", "-c", p["pf_conf"], "stop"], log)
        if not wait_gone(pf_pid, "master", 10):
            os.kill(pf_pid, signal.SIGKILL)
            wait_gone(pf_pid, "master", 5)
    dk = realmail.read_pid_or_none(env.get("OPENDKIM_PID"))
    if alive(dk, "opendkim"):
        os.kill(dk, signal.SIGTERM)
        if not wait_gone(dk, "opendkim", 5):
            os.kill(dk, signal.SIGKILL)
            wait_gone(dk, "opendkim", 5)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = ap.add_subparsers(dest="command", required=True)
    st = sub.add_parser("start", help="start a private outbound Postfix + OpenDKIM in STATE_DIR")
    st.add_argument("state_dir", metavar="STATE_DIR")
    st.add_argument("--dns", help="the name server smtp(8) asks (IPv4, port 53)")
    st.add_argument("--relayhost", help="IP:PORT: send everything there instead of by MX (no DNS)")
    st.add_argument("--bind", required=True, help="the address smtp(8) connects from (127.0.0.0/8)")
    st.add_argument("--sign", action="append", default=[], help="PATTERN=DOMAIN:SELECTOR:KEYFILE (repeatable, first match wins)")
    st.add_argument("--hostname", default="relay.firma.test", help="myhostname: EHLO and Received (relay.firma.test)")
    st.add_argument("--timeout", type=float, default=30, help="start-up limit in seconds (30)")
    sp = sub.add_parser("stop", help="stop the instance in STATE_DIR (safe to repeat)")
    sp.add_argument("state_dir", metavar="STATE_DIR")
    args = ap.parse_args()
    if args.command == "stop":
        stop_instance(args.state_dir)
        return 0
    if (args.dns is None) == (args.relayhost is None):
        ap.error("give --dns IP (delivery by MX) or --relayhost IP:PORT, one of them")
    if args.relayhost is not None:
        host, colon, port = args.relayhost.rpartition(":")
        try:
            socket.inet_aton(host)
            port = int(port)
            assert colon and 0 < port < 65536
        except (OSError, ValueError, AssertionError):
            ap.error(f"--relayhost {args.relayhost}: give IPv4:PORT, e.g. 127.0.0.1:2525")
        args.relayhost = (host, port)
    for name, value in (("--dns", args.dns), ("--bind", args.bind)):
        if value is None:
            continue
        try:
            socket.inet_aton(value)
        except OSError:
            ap.error(f"{name} {value}: give an IPv4 address")
    try:
        start(args)
    except StartError as e:
        p = layout(os.path.abspath(args.state_dir))
        sys.stderr.write(f"outbound start failed: {e}\n")
        for name, path in (("start log", p["start_log"]), ("postfix log", p["pf_log"]), ("opendkim log", p["dk_log"])):
            sys.stderr.write(f"--- {name}: {path} (last lines)\n{tail(path)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
