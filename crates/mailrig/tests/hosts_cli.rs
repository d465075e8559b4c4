//! Worlds of hosts from the command line: `mailrig scenario check` summarises
//! hosts and collectors and refuses broken host tables with `file:line:col`,
//! and `mailrig serve` starts every host at its own address and prints it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_mailrig");

fn check(text: &str) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hosts.toml");
    std::fs::write(&path, text).unwrap();
    let o = Command::new(BIN)
        .args(["scenario", "check", path.to_str().unwrap()])
        .output()
        .unwrap();
    let p = path.display().to_string();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).replace(&p, "hosts.toml"),
        String::from_utf8_lossy(&o.stderr).replace(&p, "hosts.toml"),
    )
}

const DOMAINS: &str = "[[domain]]\nname = 'a.test'\nmailboxes = ['x']\npassword = 'p'\n";

#[test]
fn check_summarises_hosts_and_collectors() {
    let o = Command::new(BIN)
        .args(["scenario", "check", "kanzlei-pop3-collector"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("host provider"), "{out}");
    assert!(out.contains("127.0.0.2"), "{out}");
    assert!(
        out.contains("collector firm-pop3-connector 5 account(s) -> host firm"),
        "{out}"
    );
}

#[test]
fn broken_host_tables_are_refused_with_line_and_column() {
    let (code, _, err) = check(&format!(
        "{DOMAINS}[[host]]\nname = 'h'\naddress = '192.168.1.5'\ndomains = ['a.test']\n"
    ));
    assert_eq!(code, Some(2));
    assert!(
        err.contains("hosts.toml:7:11: host 'h': address 192.168.1.5 is not a loopback address"),
        "{err}"
    );
    let (code, _, err) = check(&format!(
        "{DOMAINS}[[host]]\nname = 'h'\naddress = '127.0.0.1'\ndomains = ['a.test']\n"
    ));
    assert_eq!(code, Some(2));
    assert!(
        err.contains("hosts.toml:7:11: host 'h': 127.0.0.1 is taken"),
        "{err}"
    );
    let (code, _, err) = check(&format!(
        "{DOMAINS}[[host]]\nname = 'h'\naddress = '127.0.0.2'\ndomains = ['b.test']\n"
    ));
    assert_eq!(code, Some(2));
    assert!(
        err.contains("hosts.toml:8:12: host 'h': domain 'b.test' is not a [[domain]]"),
        "{err}"
    );
    let (code, _, err) = check(&format!(
        "{DOMAINS}[[host]]\nname = 'h'\naddress = '127.0.0.2'\ndomains = ['a.test']\n[[host]]\nname = 'g'\naddress = '127.0.0.2'\ndomains = ['a.test']\n"
    ));
    assert_eq!(code, Some(2));
    assert!(
        err.contains("hosts.toml:11:11: host 'g': smtp on 127.0.0.2:25 is already taken"),
        "{err}"
    );
    let (code, _, err) = check(&format!(
        "{DOMAINS}[[host]]\nname = 'h'\naddress = '127.0.0.2'\ndomains = ['a.test']\npop3 = true\n\
         [[collector]]\nname = 'c'\nfrom = 'h'\nto = 'h'\naccounts = ['y@a.test']\n"
    ));
    assert_eq!(code, Some(2));
    assert!(
        err.contains("hosts.toml:14:13: collector 'c': 'y@a.test' is not a mailbox of host 'h'"),
        "{err}"
    );
    // An explicit MX naming no host of the world, wherever the name is: in
    // the hosts' zone, a bare [[host]] name, outside every zone.
    let mx = |value: &str| {
        check(&format!(
            "{DOMAINS}[[host]]\nname = 'h'\naddress = '127.0.0.2'\ndomains = ['a.test']\n\
             [[dns.record]]\nname = 'a.test'\ntype = 'MX'\nvalue = '{value}'\n"
        ))
    };
    for (value, want) in [
        (
            "10 nope.mailrig.test",
            "hosts.toml:12:9: [dns]: MX of 'a.test' points at 'nope.mailrig.test', which has no A or AAAA record",
        ),
        (
            "10 h",
            "hosts.toml:12:9: [dns]: MX of 'a.test' points at 'h', which is no host of this world; an MX names a DNS name: write 'h.mailrig.test' (host 'h''s hostname)",
        ),
        (
            "10 mx.elsewhere.test",
            "hosts.toml:12:9: [dns]: MX of 'a.test' points at 'mx.elsewhere.test', which is no host of this world; the hosts are h.mailrig.test",
        ),
    ] {
        let (code, _, err) = mx(value);
        assert_eq!(code, Some(2), "{value}: {err}");
        assert!(err.contains(want), "{value}: {err}");
    }
    // Naming the host's DNS name is fine.
    let (code, _, err) = mx("10 h.mailrig.test");
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn serve_starts_every_host_at_its_address() {
    let a = (fastrand_octet(), fastrand_octet());
    let text = format!(
        "{DOMAINS}[[host]]\nname = 'one'\naddress = '127.{}.{}.2'\ndomains = ['a.test']\npop3 = true\n\
         [[host]]\nname = 'two'\naddress = '127.{}.{}.3'\ndomains = ['a.test']\ndown = true\n",
        a.0, a.1, a.0, a.1
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hosts.toml");
    std::fs::write(&path, text).unwrap();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--scenario",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--host-free-ports",
            "--ca-out",
            dir.path().join("ca.pem").to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        banner.push_str(&line);
        banner.push('\n');
        if line.contains("Press Ctrl-C") {
            break;
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{banner}");
    let one = format!("  host one          SMTP 127.{}.{}.2:", a.0, a.1);
    assert!(banner.contains(&one), "{banner}");
    assert!(banner.contains(", POP3 127."), "{banner}");
    assert!(
        banner.contains("  host two          down (two.mailrig.test)"),
        "{banner}"
    );
}

/// An octet from the clock and the process id: distinct enough between runs.
fn fastrand_octet() -> u8 {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        ^ std::process::id();
    (n % 250) as u8 + 1
}
