//! The whole story of the world, end to end, with real software no one here
//! wrote: a private Postfix (a company's outbound relay, started by
//! `scripts/realmail/outbound.py`) resolves MX records through mailrig's DNS
//! server (its smtp(8) runs chrooted, whose `etc/resolv.conf` names the
//! world's DNS address on port 53), signs with OpenDKIM as a milter, and
//! sends to three domains of the world:
//!
//! - `partner.test`: healthy, one MX, STARTTLS;
//! - `branch.test`: the primary MX host is `down`, so Postfix falls back to
//!   the backup MX, which forwards to the domain's mailbox host;
//! - `customer.test`: its host offers no STARTTLS, and the mail for it is
//!   signed with selector `s2025`, whose DNS record was rotated (the signer
//!   still has the old key): DKIM fails there.
//!
//! mailrig reports per domain and host what arrived, over which hosts, with
//! TLS or not, and with which authentication results
//! (`GET /api/v1/world/arrivals`, read with curl); the journal holds
//! Postfix's DNS queries and the backup's forwarding; Postfix's own log
//! shows the refused primary. The test FAILS (never skips) when Postfix or
//! OpenDKIM are missing: run `scripts/install-test-deps.sh`.

#[path = "../../../scripts/realmail/started.rs"]
mod started;
mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::dkim::dkim_record;
use support::hosts::addresses;
use support::{eventually, run};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A running outbound Postfix + OpenDKIM; stopped on drop, also when the
/// test fails.
struct Outbound(started::Started);

impl Outbound {
    fn start(dns: Ipv4Addr, bind: Ipv4Addr, sign: &[String]) -> Outbound {
        let mut args = vec![
            "--dns".to_string(),
            dns.to_string(),
            "--bind".into(),
            bind.to_string(),
        ];
        for s in sign {
            args.extend(["--sign".to_string(), s.clone()]);
        }
        Outbound(started::Started::outbound("mrw-", &args))
    }

    fn smtp(&self) -> SocketAddr {
        let port: u16 = self.0.get("SMTP_PORT").parse().unwrap();
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn log(&self) -> String {
        self.0.read("POSTFIX_LOG")
    }
}

/// The world: three domains, five hosts, the company's sending domain
/// `firma.test` in the DNS (SPF naming Postfix's address, DMARC, two DKIM
/// selectors: `mail` with the signer's key, `s2025` rotated to another key).
fn world(a: &[Ipv4Addr], bind: Ipv4Addr) -> String {
    format!(
        r#"[[domain]]
name = "partner.test"
mailboxes = ["alice"]
password = "secret"

[[domain]]
name = "branch.test"
mailboxes = ["bob"]
password = "secret"

[[domain]]
name = "customer.test"
mailboxes = ["carol"]
password = "secret"

[dns]
zones = ["firma.test"]

[[dns.record]]
name = "firma.test"
type = "TXT"
value = "v=spf1 ip4:{bind} -all"

[[dns.record]]
name = "relay.firma.test"
type = "A"
value = "{bind}"

[[dns.record]]
name = "_dmarc.firma.test"
type = "TXT"
value = "v=DMARC1; p=reject"

[[dns.record]]
name = "mail._domainkey.firma.test"
type = "TXT"
value = "{signer}"

[[dns.record]]
name = "s2025._domainkey.firma.test"
type = "TXT"
value = "{rotated}"

# The primary first, the backup second; the mailbox host is no MX.
[[dns.record]]
name = "branch.test"
type = "MX"
value = "10 mx1.branch.test"

[[dns.record]]
name = "branch.test"
type = "MX"
value = "20 mx2.branch.test"

[[host]]
name = "partner"
hostname = "mx.partner.test"
address = "{partner}"
domains = ["partner.test"]

[[host]]
name = "branch-mx1"
hostname = "mx1.branch.test"
address = "{mx1}"
domains = ["branch.test"]
down = true

[[host]]
name = "branch-mx2"
hostname = "mx2.branch.test"
address = "{mx2}"
domains = ["branch.test"]
role = "backup-mx"
forward_to = "branch-store"
retry_secs = 0.2

[[host]]
name = "branch-store"
hostname = "store.branch.test"
address = "{store}"
domains = ["branch.test"]

[[host]]
name = "customer"
hostname = "mx.customer.test"
address = "{customer}"
domains = ["customer.test"]

[[host.fault]]
name = "customer-offers-no-starttls"
stage = "tls"
action = "tls"
tls = "not-offered"
"#,
        signer = dkim_record("signer"),
        rotated = dkim_record("rotated"),
        partner = a[0],
        mx1 = a[1],
        mx2 = a[2],
        store = a[3],
        customer = a[4],
    )
}

async fn swaks_via(postfix: SocketAddr, from: &str, to: &str, id: &str) {
    let out = run(
        "swaks",
        [
            "--server",
            &postfix.ip().to_string(),
            "--port",
            &postfix.port().to_string(),
            "--from",
            from,
            "--to",
            to,
            "--header",
            &format!("Message-Id: <{id}@firma.test>"),
            "--header",
            &format!("Subject: {id}"),
            "--timeout",
            "10",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    )
    .await;
    assert!(
        out.status.success(),
        "swaks into Postfix failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn curl_json(url: String) -> Value {
    let out = run(
        "curl",
        vec!["-sS".into(), "--max-time".into(), "10".into(), url],
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// The one copy of `domain` in the report.
fn only_copy<'a>(report: &'a Value, domain: &str) -> &'a Value {
    let d = report["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["domain"] == domain)
        .unwrap_or_else(|| panic!("no {domain} in {report:#}"));
    let copies = d["copies"].as_array().unwrap();
    assert_eq!(copies.len(), 1, "{domain}: {report:#}");
    &copies[0]
}

fn hosts_on_path(copy: &Value) -> Vec<&str> {
    copy["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap_or("?"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn postfix_sends_into_the_world_through_its_dns_and_mailrig_reports_each_arrival() {
    let a = addresses(7);
    let (dns_ip, bind) = (a[5], a[6]);
    let scenario = mailrig_core::Scenario::parse(&world(&a, bind), "<world>")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(scenario.warnings.is_empty(), "{:?}", scenario.warnings);
    let server = mailrig_server::MockServer::builder()
        .scenario(scenario)
        .dns(Some(SocketAddr::from((dns_ip, 53))))
        .host_ports_as_written()
        .start()
        .await
        .unwrap();
    assert_eq!(server.host("partner").unwrap().smtp_addr().port(), 25);

    let key = root()
        .join("testdata/dkim/signer.key.pem")
        .display()
        .to_string();
    let postfix = tokio::task::spawn_blocking(move || {
        Outbound::start(
            dns_ip,
            bind,
            &[
                // The signer was never told of the rotation: old key, selector s2025.
                format!("billing@firma.test=firma.test:s2025:{key}"),
                format!("*@firma.test=firma.test:mail:{key}"),
            ],
        )
    })
    .await
    .unwrap();

    let smtp = postfix.smtp();
    swaks_via(smtp, "it@firma.test", "alice@partner.test", "to-partner").await;
    swaks_via(smtp, "it@firma.test", "bob@branch.test", "to-branch").await;
    swaks_via(
        smtp,
        "billing@firma.test",
        "carol@customer.test",
        "to-customer",
    )
    .await;

    let count = |host: &str, mailbox: &str| {
        server
            .host(host)
            .and_then(|h| h.inbox(mailbox))
            .map_or(0, |m| m.len())
    };
    let arrived = eventually(Duration::from_secs(60), || {
        count("partner", "alice@partner.test") == 1
            && count("branch-store", "bob@branch.test") == 1
            && count("customer", "carol@customer.test") == 1
    })
    .await;
    assert!(
        arrived,
        "not everything arrived.\nPostfix log:\n{}\njournal:\n{:#?}",
        postfix.log(),
        server.journal().entries()
    );
    // The backup's queue empties once the mailbox host took the copy.
    assert!(
        eventually(Duration::from_secs(10), || server
            .host("branch-mx2")
            .unwrap()
            .total_messages()
            == 0)
        .await
    );

    let http = server.http_addr();
    let report = curl_json(format!("http://{http}/api/v1/world/arrivals")).await;
    let bind_ip = bind.to_string();

    // partner.test: straight in, over TLS, everything passes.
    let c = only_copy(&report, "partner.test");
    assert_eq!(c["host"], "partner", "{c:#}");
    assert_eq!(c["held"], "stored");
    assert_eq!(c["entered_at"], "partner");
    assert_eq!(c["tls"], true, "{c:#}");
    assert_eq!(hosts_on_path(c), ["partner"]);
    assert_eq!(c["path"][0]["from_helo"], "relay.firma.test");
    assert_eq!(c["path"][0]["from_ip"], bind_ip.as_str());
    assert_eq!(c["mail_from"], "it@firma.test");
    assert_eq!(c["message_id"], "to-partner@firma.test");
    assert_eq!(c["auth"]["spf"], "pass", "{c:#}");
    assert_eq!(c["auth"]["dkim"][0]["result"], "pass", "{c:#}");
    assert_eq!(c["auth"]["dkim"][0]["domain"], "firma.test");
    assert_eq!(c["auth"]["dkim"][0]["selector"], "mail");
    assert_eq!(c["auth"]["dmarc"], "pass");
    let ar = c["path"][0]["authentication_results"].as_str().unwrap();
    assert!(ar.starts_with("mx.partner.test;"), "{ar}");
    for want in ["spf=pass", "dkim=pass", "header.d=firma.test", "dmarc=pass"] {
        assert!(ar.contains(want), "{want} in {ar}");
    }

    // branch.test: the primary is down; in at the backup over TLS, forwarded
    // to the mailbox host in plain SMTP. DKIM survives the forwarding, SPF
    // does not (the backup is not in firma.test's SPF record).
    let c = only_copy(&report, "branch.test");
    assert_eq!(c["host"], "branch-store", "{c:#}");
    assert_eq!(c["held"], "stored");
    assert_eq!(c["entered_at"], "branch-mx2");
    assert_eq!(c["tls"], true, "{c:#}");
    assert_eq!(hosts_on_path(c), ["branch-mx2", "branch-store"], "{c:#}");
    assert_eq!(c["path"][0]["from_helo"], "relay.firma.test");
    assert_eq!(c["path"][0]["tls"], true);
    assert_eq!(c["path"][1]["from_helo"], "mx2.branch.test");
    assert_eq!(c["path"][1]["tls"], false);
    let at_backup = c["path"][0]["authentication_results"].as_str().unwrap();
    for want in ["spf=pass", "dkim=pass", "dmarc=pass"] {
        assert!(at_backup.contains(want), "{want} in {at_backup}");
    }
    assert_eq!(c["auth"]["dkim"][0]["result"], "pass", "{c:#}");
    assert_eq!(c["auth"]["spf"], "fail", "{c:#}");
    assert_eq!(c["auth"]["dmarc"], "pass", "{c:#}");
    assert_eq!(count("branch-mx1", "bob@branch.test"), 0);

    // customer.test: no STARTTLS offered, and the rotated selector fails DKIM
    // (SPF still passes and carries DMARC).
    let c = only_copy(&report, "customer.test");
    assert_eq!(c["host"], "customer", "{c:#}");
    assert_eq!(c["tls"], false, "{c:#}");
    assert_eq!(c["path"][0]["with"], "ESMTP");
    assert_eq!(c["mail_from"], "billing@firma.test");
    assert_eq!(c["auth"]["dkim"][0]["result"], "fail", "{c:#}");
    assert_eq!(c["auth"]["dkim"][0]["selector"], "s2025");
    assert_eq!(c["auth"]["spf"], "pass");
    assert_eq!(c["auth"]["dmarc"], "pass");
    let ar = c["path"][0]["authentication_results"].as_str().unwrap();
    assert!(ar.contains("dkim=fail"), "{ar}");

    // One domain alone, and an unknown one named in a 404.
    let one = curl_json(format!(
        "http://{http}/api/v1/world/arrivals?domain=branch.test"
    ))
    .await;
    assert_eq!(one["domains"].as_array().unwrap().len(), 1, "{one:#}");
    let bad = curl_json(format!(
        "http://{http}/api/v1/world/arrivals?domain=nowhere.test"
    ))
    .await;
    assert!(
        bad["error"].as_str().unwrap().contains("nowhere.test"),
        "{bad:#}"
    );

    // The journal: Postfix's MX queries answered by the world's DNS, and the
    // backup's forwarding to the mailbox host.
    let dns = curl_json(format!("http://{http}/api/v1/journal?kind=dns&limit=1000")).await;
    for domain in ["partner.test", "branch.test", "customer.test"] {
        assert!(
            dns["entries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["event"]["qname"] == domain
                    && e["event"]["qtype"] == "MX"
                    && e["event"]["rcode"] == "NOERROR"),
            "no MX query for {domain}: {dns:#}"
        );
    }
    let fwd = curl_json(format!("http://{http}/api/v1/journal?kind=forwarded")).await;
    let fwd = fwd["entries"].as_array().unwrap();
    assert!(
        fwd.iter()
            .any(|e| e["host"] == "branch-mx2" && e["event"]["to_host"] == "branch-store"),
        "{fwd:#?}"
    );

    // Postfix's own account: the primary refused, delivered via the backup.
    let log = postfix.log();
    assert!(
        log.contains(&format!(
            "connect to mx1.branch.test[{}]:25: Connection refused",
            a[1]
        )),
        "{log}"
    );
    assert!(
        log.lines().any(|l| l.contains("to=<bob@branch.test>")
            && l.contains("relay=mx2.branch.test")
            && l.contains("status=sent")),
        "{log}"
    );
    assert!(
        log.contains("TLS connection established to mx.partner.test"),
        "{log}"
    );

    drop(postfix);
    server.shutdown().await;
}
