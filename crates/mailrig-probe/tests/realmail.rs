//! The prober against real software no one here wrote: a private Postfix
//! (SMTP, LMTP delivery) and Dovecot (IMAP, POP3, Maildir) started by
//! `scripts/realmail/start.sh`, 28 mailboxes; with Pigeonhole Sieve filing
//! one mailbox's mail into Junk, and with a Dovecot master user; and two
//! Postfix instances as primary and backup MX of both domains, found through
//! DNS records the test serves (the backup's transport discards).
//!
//! These tests FAIL (never skip) when Postfix or Dovecot are missing:
//! run `scripts/install-test-deps.sh` first.

mod common;
#[path = "../../../scripts/realmail/started.rs"]
mod started;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{loopback_addresses, port_free_on, result, seed_addresses, with_verdict};
use mailrig_probe::{ProbeOptions, Target, Verdict, exit_code, probe};

/// A running realmail instance (Postfix into Dovecot); stopped on drop,
/// also when a test fails.
struct RealMail(started::Started);

impl RealMail {
    fn start(discard: &[&str]) -> RealMail {
        RealMail::start_with(discard, &[])
    }

    fn start_with(discard: &[&str], extra: &[&str]) -> RealMail {
        for tool in ["/usr/sbin/postfix", "/usr/sbin/dovecot"] {
            assert!(
                Path::new(tool).exists() || which(tool.rsplit('/').next().unwrap_or(tool)),
                "{tool} is not installed: these tests need real Postfix and Dovecot; run scripts/install-test-deps.sh"
            );
        }
        let mut args: Vec<String> = vec!["--mailboxes".into(), "25".into()];
        if !discard.is_empty() {
            args.extend(["--discard".into(), discard.join(",")]);
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        RealMail(started::Started::realmail("mrp-rm-", &args))
    }

    fn get(&self, key: &str) -> &str {
        self.0.get(key)
    }

    /// Writes a target file for these servers and returns its path.
    fn target_file(&self, protocol: &str, extra_mailboxes: &str) -> PathBuf {
        let port = if protocol == "pop3" {
            self.get("POP3_PORT")
        } else {
            self.get("IMAP_PORT")
        };
        let mut text = format!(
            "[probe]\ntimeout = 5\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\n\n[read]\nprotocol = \"{protocol}\"\nhost = \"127.0.0.1\"\nport = {port}\npassword_env = \"MAILRIG_TEST_REALMAIL_PW\"\n",
            self.get("SMTP_PORT"),
        );
        for a in self.get("MAILBOXES").split(',') {
            text.push_str(&format!("\n[[mailbox]]\naddress = \"{a}\"\n"));
        }
        text.push_str(extra_mailboxes);
        let path = self.0.dir().join(format!("target-{protocol}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Message files left in every Maildir.
    fn messages_left(&self) -> usize {
        fn walk(p: &Path, n: &mut usize) {
            let Ok(rd) = std::fs::read_dir(p) else { return };
            for e in rd.flatten() {
                let path = e.path();
                if path.is_dir() {
                    walk(&path, n);
                } else if path
                    .parent()
                    .and_then(|d| d.file_name())
                    .is_some_and(|d| d == "new" || d == "cur")
                {
                    *n += 1;
                }
            }
        }
        let mut n = 0;
        walk(Path::new(self.get("MAIL_DIR")), &mut n);
        n
    }
}

fn which(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(name).is_file()))
}

fn load(path: &Path) -> Target {
    // SAFETY: set before any probe runs in this process; every test sets the
    // same value, so concurrent tests agree.
    unsafe { std::env::set_var("MAILRIG_TEST_REALMAIL_PW", "secret") };
    Target::load(path).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn postfix_dovecot_good_configuration_all_delivered() {
    let rm = RealMail::start(&[]);
    let target = load(&rm.target_file("imap", ""));
    assert_eq!(target.mailboxes.len(), 28);
    let result = probe(&target, &ProbeOptions::default()).await;
    assert_eq!(
        exit_code(&result),
        0,
        "{}",
        result
            .as_ref()
            .map(|r| r.to_table(false))
            .unwrap_or_default()
    );
    let report = result.unwrap();
    assert_eq!(with_verdict(&report, Verdict::Delivered), {
        let mut a = seed_addresses();
        a.sort();
        a
    });
    assert!(!report.timed_out, "should end as soon as all are seen");
    assert_eq!(report.cleanup.deleted, 28);
    assert_eq!(rm.messages_left(), 0, "probe messages must be cleaned up");
}

#[tokio::test(flavor = "multi_thread")]
async fn postfix_dovecot_discarding_names_exactly_the_lost_mailboxes() {
    let lost = [
        "user03@patente.test",
        "user17@patente.test",
        "user25@patente.test",
    ];
    let rm = RealMail::start(&lost);
    let target = load(&rm.target_file("imap", ""));
    let result = probe(
        &target,
        &ProbeOptions {
            timeout: Some(Duration::from_secs(3)),
            ..ProbeOptions::default()
        },
    )
    .await;
    assert_eq!(exit_code(&result), 1);
    let report = result.unwrap();
    assert_eq!(
        with_verdict(&report, Verdict::Missing),
        lost.map(String::from),
        "{}",
        report.to_table(false)
    );
    assert_eq!(with_verdict(&report, Verdict::Delivered).len(), 25);
    assert!(report.timed_out);
    let table = report.to_table(false);
    assert!(
        table.contains("patente.test  22/25 delivered, 3 missing"),
        "{table}"
    );
    assert!(table.contains("kanzlei.test  3/3 delivered"), "{table}");
    assert_eq!(rm.messages_left(), 0);
}

/// POP3 reading, an unknown recipient (Postfix: 550 5.1.1) and a wrong
/// password (Dovecot refuses the login), all against the real servers.
#[tokio::test(flavor = "multi_thread")]
async fn postfix_dovecot_pop3_rejected_and_unreadable() {
    let rm = RealMail::start(&[]);
    let path = rm.target_file("pop3", "\n[[mailbox]]\naddress = \"nobody@patente.test\"\n");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "address = \"bernd@kanzlei.test\"\n",
        "address = \"bernd@kanzlei.test\"\npassword = \"not-secret\"\n",
    );
    std::fs::write(&path, text).unwrap();
    let target = load(&path);
    let report = probe(&target, &ProbeOptions::default()).await.unwrap();
    assert_eq!(report.exit_code(), 1);
    assert_eq!(
        with_verdict(&report, Verdict::Delivered).len(),
        27,
        "{}",
        report.to_table(false)
    );
    let nobody = result(&report, "nobody@patente.test");
    assert_eq!(
        nobody.verdict,
        Verdict::Rejected,
        "{}",
        report.to_table(false)
    );
    let reply = nobody.smtp.as_ref().unwrap();
    assert_eq!(
        (reply.code, reply.enhanced.as_deref()),
        (550, Some("5.1.1"))
    );
    let wrong = result(&report, "bernd@kanzlei.test");
    assert_eq!(wrong.verdict, Verdict::Unreadable);
    assert!(
        wrong
            .reason
            .contains("POP3 login as bernd@kanzlei.test refused"),
        "{}",
        wrong.reason
    );
    assert_eq!(rm.messages_left(), 0);
}

/// Pigeonhole Sieve files user04's mail into Junk: exactly that mailbox is
/// `misfiled (Junk)`, and its probe is deleted from Junk too.
#[tokio::test(flavor = "multi_thread")]
async fn dovecot_sieve_junk_is_misfiled_for_exactly_that_mailbox() {
    assert!(
        Path::new("/usr/lib/dovecot/modules/lib90_sieve_plugin.so").exists(),
        "Pigeonhole Sieve is not installed: run scripts/install-test-deps.sh (Debian dovecot-sieve)"
    );
    let rm = RealMail::start_with(&[], &["--junk", "user04@patente.test"]);
    let target = load(&rm.target_file("imap", ""));
    let outcome = probe(
        &target,
        &ProbeOptions {
            timeout: Some(Duration::from_secs(3)),
            ..ProbeOptions::default()
        },
    )
    .await;
    assert_eq!(exit_code(&outcome), 1);
    let report = outcome.unwrap();
    let table = report.to_table(false);
    assert_eq!(
        with_verdict(&report, Verdict::Misfiled),
        ["user04@patente.test"],
        "{table}"
    );
    assert_eq!(
        with_verdict(&report, Verdict::Delivered).len(),
        27,
        "{table}"
    );
    assert_eq!(result(&report, "user04@patente.test").folders, ["Junk"]);
    assert!(table.contains("misfiled (Junk)"), "{table}");
    assert_eq!(report.cleanup.deleted, 28, "{table}");
    assert_eq!(
        rm.messages_left(),
        0,
        "the probe in Junk must be deleted too"
    );
}

/// A target with one master credential and a range instead of 25 tables.
fn master_target(rm: &RealMail, protocol: &str, login: &str, password: &str) -> Target {
    let port = if protocol == "pop3" {
        rm.get("POP3_PORT")
    } else {
        rm.get("IMAP_PORT")
    };
    let text = format!(
        "[probe]\ntimeout = 5\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\n\n[read]\nprotocol = \"{protocol}\"\nhost = \"127.0.0.1\"\nport = {port}\nmaster_user = \"{}\"\nmaster_password = \"{password}\"\nmaster_login = \"{login}\"\n\n[[mailbox]]\naddress = \"user{{01..25}}@patente.test\"\n\n[[mailbox]]\naddress = \"anna@kanzlei.test\"\n[[mailbox]]\naddress = \"bernd@kanzlei.test\"\n[[mailbox]]\naddress = \"clara@kanzlei.test\"\n",
        rm.get("SMTP_PORT"),
        rm.get("MASTER_USER"),
    );
    let path = rm.0.dir().join(format!("master-{protocol}-{login}.toml"));
    std::fs::write(&path, text).unwrap();
    Target::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Dovecot master user: 28 mailboxes probed with one credential, as
/// `user*admin` (IMAP and POP3) and as SASL PLAIN authzid (IMAP and POP3).
#[tokio::test(flavor = "multi_thread")]
async fn dovecot_master_user_reads_28_mailboxes_with_one_credential() {
    let rm = RealMail::start_with(&[], &["--master-user", "admin"]);
    let password = rm.get("MASTER_PASSWORD").to_string();
    for (protocol, login) in [
        ("imap", "separator"),
        ("pop3", "separator"),
        ("imap", "authzid"),
        ("pop3", "authzid"),
    ] {
        let target = master_target(&rm, protocol, login, &password);
        assert_eq!(target.mailboxes.len(), 28);
        assert!(target.mailboxes.iter().all(|m| m.password.is_empty()));
        let report = probe(&target, &ProbeOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{protocol} {login}: {e}"));
        assert_eq!(
            with_verdict(&report, Verdict::Delivered).len(),
            28,
            "{protocol} {login}: {}",
            report.to_table(false)
        );
        assert_eq!(report.cleanup.deleted, 28);
    }
    assert_eq!(rm.messages_left(), 0);
}

/// A refused master user is one clear error (exit 2), and nothing is sent.
#[tokio::test(flavor = "multi_thread")]
async fn dovecot_refused_master_user_is_a_clear_error() {
    let rm = RealMail::start_with(&[], &["--master-user", "admin"]);
    let target = master_target(&rm, "imap", "separator", "not-the-password");
    let result = probe(&target, &ProbeOptions::default()).await;
    assert_eq!(exit_code(&result), 2);
    let msg = result.unwrap_err().to_string();
    assert!(
        msg.starts_with("the master user admin was refused for all 28 mailbox(es) it reads"),
        "{msg}"
    );
    assert!(msg.contains("nothing was sent"), "{msg}");
    assert_eq!(rm.messages_left(), 0);
}

/// Two real Postfix instances as MX of both domains, at two loopback
/// addresses on one port: mx1 (preference 10) delivers to its Dovecot, mx2
/// (20) is the backup whose transport discards everything. The MX records
/// come from a DNS server the test runs (mailrig's fake DNS, serving only
/// what the test writes). With `--each-mx` every mailbox is delivered via
/// mx1 and `missing via` mx2, and only there.
#[tokio::test(flavor = "multi_thread")]
async fn postfix_primary_and_discarding_backup_mx_each_mx_names_the_backup() {
    let ips = loopback_addresses(2);
    let port = port_free_on(&ips).to_string();
    let all = seed_addresses().join(",");
    let (h1, h2) = (ips[0].to_string(), ips[1].to_string());
    let primary = RealMail::start_with(&[], &["--host", &h1, "--smtp-port", &port]);
    let backup = RealMail::start_with(
        &all.split(',').collect::<Vec<_>>(),
        &["--host", &h2, "--smtp-port", &port],
    );
    assert_eq!(primary.get("SMTP_HOST"), h1);
    assert_eq!(backup.get("SMTP_PORT"), port);

    let mut dns = String::from("[dns]\ngenerate = false\n");
    for d in ["kanzlei.test", "patente.test"] {
        dns.push_str(&format!(
            "[[dns.record]]\nname = '{d}'\ntype = 'MX'\nvalue = '10 mx1.kanzlei.test'\n\
             [[dns.record]]\nname = '{d}'\ntype = 'MX'\nvalue = '20 mx2.kanzlei.test'\n"
        ));
    }
    dns.push_str(&format!(
        "[[dns.record]]\nname = 'mx1.kanzlei.test'\ntype = 'A'\nvalue = '{h1}'\n\
         [[dns.record]]\nname = 'mx2.kanzlei.test'\ntype = 'A'\nvalue = '{h2}'\n"
    ));
    let world = format!(
        "[[domain]]\nname = 'kanzlei.test'\nmailboxes = ['anna']\npassword = 'x'\n\
         [[domain]]\nname = 'patente.test'\nmailboxes = ['user01']\npassword = 'x'\n{dns}"
    );
    let server = mailrig_server::MockServer::builder()
        .scenario_toml(&world)
        .unwrap_or_else(|e| panic!("{e}"))
        .dns(Some("127.0.0.1:0".parse().unwrap()))
        .start()
        .await
        .unwrap();

    let mut text = format!(
        "[probe]\ntimeout = 5\n[smtp]\nmx = true\nmx_port = {port}\n[read]\nhost = '{h1}'\nport = {}\npassword = 'secret'\n",
        primary.get("IMAP_PORT")
    );
    for a in seed_addresses() {
        text.push_str(&format!("[[mailbox]]\naddress = '{a}'\n"));
    }
    let path = primary.0.dir().join("each-mx.toml");
    std::fs::write(&path, text).unwrap();
    let target = load(&path);
    let result = probe(
        &target,
        &ProbeOptions {
            timeout: Some(Duration::from_secs(4)),
            resolver: Some(server.dns_addr()),
            ..ProbeOptions::default()
        },
    )
    .await;
    assert_eq!(exit_code(&result), 1);
    let report = result.unwrap();
    let table = report.to_table(false);
    assert_eq!(report.mailboxes.len(), 56, "{table}");
    for m in &report.mailboxes {
        let expected = match m.via.as_deref() {
            Some("mx1.kanzlei.test") => Verdict::Delivered,
            Some("mx2.kanzlei.test") => Verdict::Missing,
            other => panic!("{} via {other:?}\n{table}", m.address),
        };
        assert_eq!(
            m.verdict, expected,
            "{} via {:?}\n{table}",
            m.address, m.via
        );
    }
    assert!(
        table.contains("user17@patente.test  missing via mx2.kanzlei.test"),
        "{table}"
    );
    assert!(
        table.contains("patente.test  25/50 delivered, 25 missing"),
        "{table}"
    );
    assert_eq!(
        primary.messages_left(),
        0,
        "probe messages must be cleaned up"
    );
    assert_eq!(backup.messages_left(), 0, "the backup discards");
    server.shutdown().await;
}
