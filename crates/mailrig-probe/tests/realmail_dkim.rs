//! OpenDKIM signing on one path and not the other, with real software no one
//! here wrote: two private Postfix relays (a company's outbound servers,
//! started by `scripts/realmail/outbound.py`, each with OpenDKIM as its
//! milter) in front of a mailrig world that publishes `firma.test`'s DKIM
//! key in its DNS and writes `Authentication-Results:` on every copy it
//! stores (`sender_auth = "record"`). The `signing` relay signs mail from
//! `*@firma.test` with that key; the `plain` relay's OpenDKIM has an empty
//! signing table. The prober sends from `probe@firma.test` through both
//! relays in one run (`[smtp] mx_hosts`, one probe per mailbox per relay),
//! and `--require dkim=pass` (`Target::require`) makes exactly the probes
//! through the unsigned relay `delivered-unauthenticated` (exit 1); without
//! it every probe is delivered, with dkim=pass and dkim=none as the results.
//!
//! The relays deliver to the world's SMTP listener as their `relayhost`
//! (127.0.0.1, a port the system chose), so neither a DNS server on port 53
//! nor MX hosts on port 25 are needed; they connect from 127.0.2.21 and
//! 127.0.2.22, which the world's SPF record names. This test FAILS (never
//! skips) when Postfix or OpenDKIM are missing: run
//! `scripts/install-test-deps.sh`.

mod common;
#[path = "../../../scripts/realmail/started.rs"]
mod started;

use std::net::SocketAddr;
use std::time::Duration;

use common::root;
use mailrig_probe::{Method, ProbeOptions, Target, Verdict, exit_code, parse_requirements, probe};
use mailrig_server::MockServer;

/// The addresses the relays connect from (the prober helper's range).
const SIGNING_FROM: &str = "127.0.2.21";
const PLAIN_FROM: &str = "127.0.2.22";

const MAILBOXES: [&str; 3] = ["anna@kunde.test", "bernd@kunde.test", "clara@kunde.test"];

/// A running outbound Postfix + OpenDKIM; stopped on drop, also when the
/// test fails.
struct Relay(started::Started);

impl Relay {
    fn start(name: &str, relayhost: SocketAddr, bind: &str, sign: Option<&str>) -> Relay {
        let mut args: Vec<String> = vec![
            "--relayhost".into(),
            relayhost.to_string(),
            "--bind".into(),
            bind.into(),
        ];
        args.extend(["--hostname".into(), format!("{name}.firma.test")]);
        if let Some(s) = sign {
            args.extend(["--sign".into(), s.into()]);
        }
        Relay(started::Started::outbound("mrp-dk-", &args))
    }

    fn smtp(&self) -> String {
        format!("127.0.0.1:{}", self.0.get("SMTP_PORT"))
    }

    fn logs(&self) -> String {
        format!(
            "--- postfix\n{}--- opendkim\n{}",
            self.0.read("POSTFIX_LOG"),
            self.0.read("OPENDKIM_LOG")
        )
    }
}

/// The world: kunde.test's three mailboxes, and the sending domain
/// firma.test in the DNS (SPF naming both relays, DMARC, the DKIM key of
/// selector `mail`).
fn world() -> String {
    let public = std::fs::read_to_string(root().join("testdata/dkim/signer.pub.b64"))
        .expect("testdata/dkim/signer.pub.b64");
    format!(
        r#"[security]
sender_auth = "record"

[[domain]]
name = "kunde.test"
mailboxes = ["anna", "bernd", "clara"]
password = "secret"

[dns]
zones = ["firma.test"]

[[dns.record]]
name = "firma.test"
type = "TXT"
value = "v=spf1 ip4:{SIGNING_FROM} ip4:{PLAIN_FROM} -all"

[[dns.record]]
name = "_dmarc.firma.test"
type = "TXT"
value = "v=DMARC1; p=none"

[[dns.record]]
name = "mail._domainkey.firma.test"
type = "TXT"
value = "v=DKIM1; k=rsa; p={}"
"#,
        public.trim()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn opendkim_on_one_relay_only_require_dkim_pass_tells_the_paths_apart() {
    let scenario =
        mailrig_core::Scenario::parse(&world(), "<world>").unwrap_or_else(|e| panic!("{e}"));
    assert!(scenario.warnings.is_empty(), "{:?}", scenario.warnings);
    let server = MockServer::builder()
        .scenario(scenario)
        .start()
        .await
        .unwrap();
    let to = server.smtp_addr();
    let key = root().join("testdata/dkim/signer.key.pem");
    let sign = format!("*@firma.test=firma.test:mail:{}", key.display());
    let (signing, plain) = tokio::task::spawn_blocking(move || {
        (
            Relay::start("signing", to, SIGNING_FROM, Some(&sign)),
            Relay::start("plain", to, PLAIN_FROM, None),
        )
    })
    .await
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relays.toml");
    let mut text = format!(
        "[probe]\ntimeout = 30\n\n[smtp]\nmx = true\nfrom = 'probe@firma.test'\n\
         mx_hosts = [{{ name = 'signing', address = '{}' }}, {{ name = 'plain', address = '{}' }}]\n\n\
         [read]\nhost = '{}'\nport = {}\npassword = 'secret'\n",
        signing.smtp(),
        plain.smtp(),
        server.imap_addr().ip(),
        server.imap_addr().port(),
    );
    for a in MAILBOXES {
        text.push_str(&format!("\n[[mailbox]]\naddress = '{a}'\n"));
    }
    std::fs::write(&path, text).unwrap();
    let mut target = Target::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let opts = ProbeOptions {
        timeout: Some(Duration::from_secs(30)),
        ..ProbeOptions::default()
    };
    let logs = || format!("{}\n{}", signing.logs(), plain.logs());

    // Without a requirement: every probe arrives, and the results say how.
    let result = probe(&target, &opts).await;
    let report = result
        .as_ref()
        .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    let table = report.to_table(false);
    assert_eq!(exit_code(&result), 0, "{table}\n{}", logs());
    assert_eq!(report.mailboxes.len(), 6, "{table}");
    for m in &report.mailboxes {
        let auth = m
            .auth
            .as_ref()
            .unwrap_or_else(|| panic!("{} via {:?}: no auth\n{table}", m.address, m.via));
        // The unsigned copy's Authentication-Results carry no dkim result.
        let (dkim, signed) = match m.via.as_deref() {
            Some("signing") => (Some("pass"), true),
            Some("plain") => (None, false),
            other => panic!("{} via {other:?}\n{table}", m.address),
        };
        assert_eq!(auth.dkim.as_deref(), dkim, "{m:?}\n{}", logs());
        assert_eq!(auth.get(Method::Dkim), dkim.unwrap_or("none"), "{m:?}");
        assert_eq!(auth.dkim_signed, signed, "{m:?}");
        assert_eq!(auth.spf.as_deref(), Some("pass"), "{m:?}");
        assert_eq!(auth.dmarc.as_deref(), Some("pass"), "{m:?}");
        assert_eq!(
            auth.authserv_id.as_deref(),
            Some("mx.mailrig.test"),
            "{m:?}"
        );
    }

    // --require dkim=pass: exactly the unsigned path's probes fail it.
    target.require = parse_requirements("dkim=pass").unwrap();
    let result = probe(&target, &opts).await;
    assert_eq!(exit_code(&result), 1, "{result:?}\n{}", logs());
    let report = result.unwrap();
    let table = report.to_table(false);
    for m in &report.mailboxes {
        let expected = match m.via.as_deref() {
            Some("signing") => Verdict::Delivered,
            Some("plain") => Verdict::DeliveredUnauthenticated,
            other => panic!("{} via {other:?}\n{table}", m.address),
        };
        assert_eq!(
            m.verdict, expected,
            "{} via {:?}\n{table}",
            m.address, m.via
        );
    }
    assert!(
        table.contains("anna@kunde.test   delivered-unauthenticated via plain"),
        "{table}"
    );
    assert!(table.contains("dkim=none (required: pass)"), "{table}");
    assert!(
        table.contains("kunde.test  3/6 delivered, 3 delivered-unauthenticated"),
        "{table}"
    );
    // Both runs cleaned up after themselves.
    for a in MAILBOXES {
        assert_eq!(server.inbox(a).map(|m| m.len()), Some(0), "{a}\n{table}");
    }
    drop((signing, plain));
    server.shutdown().await;
}
