//! `mailrig serve` as a user runs it: it prints where it listens and the
//! credentials, accepts mail from a real client (swaks), and stops cleanly on
//! SIGTERM; a broken scenario file stops it before it starts; `--listen`, `--port-base` and `off` move
//! or switch off every listener.

mod support;

use std::process::Command;
use std::time::Duration;

use support::BIN;
use support::serve::Serve;

#[test]
fn serve_prints_addresses_accepts_mail_and_stops_on_sigterm() {
    // `--listen 127.0.0.1:0` (the harness's one flag) moves every listener to a
    // free port; one more switches POP3 off.
    let served = Serve::start(&[], &["--pop3", "off"]);
    let banner = served.banner.clone();
    let smtp = served.smtp.to_string();
    assert!(banner.contains("  POP3   off\n"), "{banner}");
    for name in ["SMTP", "SMTPS", "IMAP", "IMAPS", "POP3S"] {
        let line = banner
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} line:\n{banner}"));
        let addr: std::net::SocketAddr = line.trim()[name.len()..].trim().parse().unwrap();
        assert!(addr.port() != 0 && addr.ip().is_loopback(), "{line}");
        std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{name} at {addr}: {e}"));
    }
    assert!(banner.contains("  HTTP   http://127.0.0.1:"), "{banner}");
    assert!(
        banner.contains("alice@example.test") && banner.contains("secret"),
        "credentials printed:\n{banner}"
    );
    assert!(banner.contains("CA "), "CA path printed:\n{banner}");

    let swaks = Command::new("swaks")
        .args([
            "--server",
            &smtp,
            "--to",
            "alice@example.test",
            "--from",
            "s@x.test",
            "--timeout",
            "10",
        ])
        .output()
        .expect("swaks is needed: run scripts/install-test-deps.sh");
    assert!(
        swaks.status.success(),
        "{}",
        String::from_utf8_lossy(&swaks.stdout)
    );

    // SIGTERM, a clean exit within 15 s, and the rest of what it printed.
    let rest = served.stop();
    assert!(rest.contains("shutting down"), "{rest}");
}

#[test]
fn serve_refuses_a_broken_scenario_with_file_line_column() {
    let dir = std::env::temp_dir().join(format!("mailrig-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "[[domain]]\nname = 'd.test'\nmailboxes = ['a']\npasword = 'x'\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args([
            "serve",
            "--scenario",
            &file.display().to_string(),
            "--smtp",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:4:1: unknown field `pasword`", file.display())),
        "{err}"
    );
    let out = Command::new(BIN)
        .args(["serve", "--smtp", "not-an-address"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--smtp"),
        "flag named"
    );
}

#[test]
fn port_base_moves_every_listener_and_the_banner_says_where() {
    // A base whose seven ports are free right now; serve is retried with another when one is taken.
    for attempt in 0..10u16 {
        let base = 20000 + (std::process::id() as u16 % 1000) * 20 + attempt * 7;
        let ports = [25u16, 465, 143, 993, 110, 995, 80].map(|p| base + p);
        if ports
            .iter()
            .any(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_err())
        {
            continue;
        }
        let ca = std::env::temp_dir().join(format!("mailrig-ca-base-{}.pem", std::process::id()));
        let run = support::pty::Pty::mailrig(&[
            "serve",
            "--port-base",
            &base.to_string(),
            "--ca-out",
            ca.to_str().unwrap(),
        ])
        .type_after("Press Ctrl-C", "\\x03")
        .limit(Duration::from_secs(30))
        .run();
        let text = run.text();
        if run.code == 2 && text.contains("in use") {
            continue;
        }
        assert_eq!(run.code, 0, "{text}");
        for (name, p) in ["SMTP", "SMTPS", "IMAP", "IMAPS", "POP3", "POP3S"]
            .iter()
            .zip(ports)
        {
            assert!(
                text.contains(&format!("  {name:<6} 127.0.0.1:{p}\n")),
                "{name}:\n{text}"
            );
        }
        assert!(
            text.contains(&format!("http://127.0.0.1:{}/", base + 80)),
            "{text}"
        );
        return;
    }
    panic!("no free set of ports for --port-base in 10 attempts");
}

#[test]
fn serve_refuses_contradicting_listen_flags_and_all_off() {
    let cases: [&[&str]; 3] = [
        &["serve", "--listen", "127.0.0.1:2525"],
        &["serve", "--listen", "127.0.0.1:0", "--port-base", "10000"],
        &[
            "serve", "--smtp", "off", "--smtps", "off", "--imap", "off", "--imaps", "off",
            "--pop3", "off", "--pop3s", "off", "--http", "off",
        ],
    ];
    for args in cases {
        let out = Command::new(BIN).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("mailrig: error: "), "{args:?}: {err}");
    }
}
