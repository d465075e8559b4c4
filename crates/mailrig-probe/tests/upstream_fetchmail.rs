//! Every hop, with a real collector between them: Debian's fetchmail, as a
//! daemon polling every second, fetches 2 of 25 accounts over POP3 (STLS,
//! verified against the world's CA) from the provider host of a mailrig
//! world and delivers them over SMTP into the firm's host. The probe sends to
//! the provider, reads the firm over IMAP and each mailbox's provider copy
//! over POP3 (its upstream): the 2 collected mailboxes are delivered with a
//! time for both hops, the other 23 are `stuck-upstream`, and the probe's
//! messages are gone from both hops afterwards.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{loopback_addresses, with_verdict};
use mailrig_probe::{
    ProbeOptions, ReadEndpoint, ReadProtocol, Target, Upstream, Verdict, exit_code, probe,
};
use mailrig_server::MockServer;

/// fetchmail's run-control file: `accounts` from the provider's POP3 into the firm's SMTP, kept there.
fn fetchmailrc(server: &MockServer, accounts: &[&str]) -> String {
    let pop = server.host("provider").unwrap().pop3_addr();
    let smtp = server.host("firm").unwrap().smtp_addr();
    let mut rc = format!(
        "set no syslog\nset no bouncemail\npoll {} service {} protocol pop3 uidl timeout 10\n",
        pop.ip(),
        pop.port()
    );
    for a in accounts {
        rc.push_str(&format!(
            "  user \"{a}\" there with password \"secret\" is \"{a}\" here\n\
             \x20 smtphost \"{}/{}\" smtpname \"{a}\"\n\
             \x20 keep sslcertck sslcertfile \"{}\" sslcommonname \"provider.mailrig.test\"\n",
            smtp.ip(),
            smtp.port(),
            server.ca_path().display()
        ));
    }
    rc
}

/// Kills the fetchmail daemon (our child) however the test ends.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetchmail_collecting_2_of_25_leaves_23_stuck_upstream() {
    let a = loopback_addresses(2);
    let world = format!(
        "[[domain]]\nname = 'patente.test'\nmailboxes = ['user01..user25']\npassword = 'secret'\n\n\
         [[host]]\nname = 'provider'\naddress = '{}'\ndomains = ['patente.test']\npop3 = true\n\n\
         [[host]]\nname = 'firm'\naddress = '{}'\ndomains = ['patente.test']\nimap = true\n",
        a[0], a[1]
    );
    let scenario =
        mailrig_core::Scenario::parse(&world, "<test>").unwrap_or_else(|e| panic!("{e}"));
    let server = MockServer::builder()
        .scenario(scenario)
        .start()
        .await
        .expect("world starts");
    let provider = server.host("provider").unwrap();
    let firm = server.host("firm").unwrap();

    let dir = tempfile::tempdir().unwrap();
    let rc = dir.path().join("fetchmailrc");
    std::fs::write(
        &rc,
        fetchmailrc(&server, &["user01@patente.test", "user02@patente.test"]),
    )
    .unwrap();
    std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).unwrap();
    let log = std::fs::File::create(dir.path().join("fetchmail.log")).unwrap();
    let daemon = Daemon(
        std::process::Command::new("fetchmail")
            .arg("-f")
            .arg(&rc)
            .args(["--daemon", "1", "--nodetach", "-v"])
            .env("HOME", dir.path())
            .env("FETCHMAILHOME", dir.path())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("fetchmail is needed for this test ({e}): run scripts/install-test-deps.sh")
            }),
    );

    let addresses: Vec<String> = (1..=25)
        .map(|i| format!("user{i:02}@patente.test"))
        .collect();
    let mut target = Target::from_credentials(
        provider.smtp_addr(),
        ReadEndpoint::plain(ReadProtocol::Imap, firm.imap_addr()),
        addresses
            .iter()
            .map(|a| (a.clone(), a.clone(), "secret".to_string())),
    );
    for m in &mut target.mailboxes {
        m.upstream = Some(Upstream {
            read: ReadEndpoint::plain(ReadProtocol::Pop3, provider.pop3_addr()),
            user: m.user.clone(),
            password: "secret".into(),
            master: None,
        });
    }
    target.timeout = Duration::from_secs(6);
    let result = probe(&target, &ProbeOptions::default()).await;
    drop(daemon);
    let fetch_log = std::fs::read_to_string(dir.path().join("fetchmail.log")).unwrap_or_default();
    assert_eq!(exit_code(&result), 1, "{result:?}\n{fetch_log}");
    let report = result.unwrap();
    assert_eq!(
        with_verdict(&report, Verdict::Delivered),
        ["user01@patente.test", "user02@patente.test"],
        "{}\nfetchmail:\n{fetch_log}",
        report.to_table(false)
    );
    assert_eq!(
        with_verdict(&report, Verdict::StuckUpstream),
        addresses[2..],
        "{}",
        report.to_table(false)
    );
    for m in &report.mailboxes {
        assert_eq!(m.hops.len(), 2, "{m:?}");
        assert!(m.hops[0].read_via.starts_with("POP3 "), "{m:?}");
        assert!(
            m.hops[0].latency_ms.is_some(),
            "seen at the provider: {m:?}"
        );
        assert_eq!(
            m.hops[1].latency_ms.is_some(),
            m.verdict == Verdict::Delivered,
            "{m:?}"
        );
    }
    assert!(
        fetch_log.contains("STLS"),
        "fetchmail used TLS: {fetch_log}"
    );
    // Both hops are clean again: 25 provider copies and 2 collected ones deleted.
    assert_eq!(
        (report.cleanup.deleted, report.cleanup.left),
        (27, 0),
        "{:?}",
        report.cleanup
    );
    for a in &addresses {
        assert_eq!(
            provider.inbox(a).map(|m| m.len()),
            Some(0),
            "{a} at the provider"
        );
        assert_eq!(firm.inbox(a).map(|m| m.len()), Some(0), "{a} at the firm");
    }
    server.shutdown().await;
}
