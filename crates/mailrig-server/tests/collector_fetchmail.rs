//! A real collector against the world: Debian's fetchmail fetches over POP3
//! (with STLS, verified against the world's one CA) from the provider host
//! and delivers over SMTP into the firm's host, as the firm's server in the
//! seed incident did; run twice with `keep` and UIDLs, it fetches each
//! message once.

mod support;

use std::os::unix::fs::PermissionsExt;

use support::hosts::*;
use support::start_toml as start;

#[tokio::test]
async fn fetchmail_collects_from_one_host_into_another() {
    let a = addresses(2);
    let text = format!(
        "{DOMAINS}[[host]]\nname = 'provider'\naddress = '{}'\ndomains = ['kanzlei.test', 'patente.test']\npop3 = true\n\n\
         [[host]]\nname = 'firm'\naddress = '{}'\ndomains = ['kanzlei.test', 'patente.test']\n",
        a[0], a[1]
    );
    let server = start(&text).await;
    let provider = server.host("provider").unwrap();
    let firm = server.host("firm").unwrap();
    swaks_ok(provider.smtp_addr(), "user03@patente.test", "f1").await;
    swaks_ok(provider.smtp_addr(), "user03@patente.test", "f2").await;
    swaks_ok(provider.smtp_addr(), "user04@patente.test", "f3").await;

    let dir = tempfile::tempdir().unwrap();
    let pop = provider.pop3_addr();
    let smtp = firm.smtp_addr();
    let rc = dir.path().join("fetchmailrc");
    std::fs::write(
        &rc,
        format!(
            "set no syslog\n\
             poll {ip} service {port} protocol pop3 uidl timeout 10\n\
             \x20 user \"user03@patente.test\" there with password \"secret\" is \"user03@patente.test\" here\n\
             \x20 smtphost \"{sip}/{sport}\" smtpname \"user03@patente.test\"\n\
             \x20 keep sslcertck sslcertfile \"{ca}\" sslcommonname \"provider.mailrig.test\"\n",
            ip = pop.ip(),
            port = pop.port(),
            sip = smtp.ip(),
            sport = smtp.port(),
            ca = server.ca_path().display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).unwrap();
    let fetch = || {
        let rc = rc.display().to_string();
        let home = dir.path().display().to_string();
        async move {
            let p = "fetchmail";
            let out = tokio::task::spawn_blocking(move || {
                std::process::Command::new(p)
                    .args(["-f", &rc, "--nodetach", "-v"])
                    .env("HOME", &home)
                    .env("FETCHMAILHOME", &home)
                    .output()
            })
            .await
            .unwrap()
            .unwrap_or_else(|e| {
                panic!("fetchmail is needed for this test ({e}): run scripts/install-test-deps.sh")
            });
            (
                out.status.code(),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            )
        }
    };
    let (code, log) = fetch().await;
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("STLS"), "fetchmail used TLS: {log}");
    let got = firm.inbox("user03@patente.test").unwrap();
    assert_eq!(got.len(), 2, "{log}");
    let env = got[0].envelope.as_ref().unwrap();
    assert_eq!(*env.rcpt_to, ["user03@patente.test"]);
    assert!(
        got.iter()
            .any(|m| String::from_utf8_lossy(&m.raw).contains("<f1@extern.test>")),
        "{log}"
    );
    // keep: still at the provider; user04 was never configured, never moved.
    assert_eq!(provider.inbox("user03@patente.test").unwrap().len(), 2);
    assert_eq!(firm.inbox("user04@patente.test").unwrap().len(), 0);
    assert_eq!(provider.inbox("user04@patente.test").unwrap().len(), 1);
    // A second run remembers the UIDLs (fetchmail's .fetchids): nothing new
    // (fetchmail exits 1 for "no mail").
    let (code, log) = fetch().await;
    assert_eq!(code, Some(1), "{log}");
    assert_eq!(firm.inbox("user03@patente.test").unwrap().len(), 2, "{log}");
    server.shutdown().await;
}
