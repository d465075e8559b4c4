//! Several hosts in one world, driven by real clients: swaks to each host's
//! own loopback address, TLS verified against the one local CA (and a host
//! whose own fault rule breaks its certificate alone), a host that
//! is down (connection refused), a blackhole host, a backup MX that forwards
//! to its primary over SMTP (and retries while the primary is down), and the
//! `backup-mx-blackhole` catalog world.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use mailrig_core::JournalEvent;
use mailrig_core::fault::Stage;
use mailrig_server::state::Metrics;
use support::faults::curl_smtps_as;
use support::hosts::*;
use support::{eventually, run, start_toml as start};

fn two_hosts() -> (String, [std::net::Ipv4Addr; 2]) {
    let a = addresses(2);
    let text = format!(
        "{DOMAINS}[[host]]\nname = 'provider'\naddress = '{}'\ndomains = ['kanzlei.test', 'patente.test']\npop3 = true\n\n\
         [[host]]\nname = 'firm'\nhostname = 'mx.firm.test'\naddress = '{}'\ndomains = ['kanzlei.test']\nsmtps = true\nimap = true\n\n\
         [[host.fault]]\nname = 'firm-refuses-bernd'\nstage = 'rcpt'\naction = 'reject'\nmailbox = 'bernd@kanzlei.test'\n",
        a[0], a[1]
    );
    (text, [a[0], a[1]])
}

#[tokio::test]
async fn each_host_listens_at_its_address_and_stores_its_own_copy() {
    let (text, addrs) = two_hosts();
    let server = start(&text).await;
    let provider = server.host("provider").unwrap();
    let firm = server.host("firm").unwrap();
    assert_eq!(provider.smtp_addr().ip(), addrs[0]);
    assert_eq!(firm.smtp_addr().ip(), addrs[1]);
    assert_eq!(firm.addresses().pop3, None);

    swaks_ok(provider.smtp_addr(), "anna@kanzlei.test", "p1").await;
    swaks_ok(firm.smtp_addr(), "anna@kanzlei.test", "f1").await;
    swaks_ok(firm.smtp_addr(), "anna@kanzlei.test", "f2").await;
    // The same address, two copies: one at each host.
    assert_eq!(provider.inbox("anna@kanzlei.test").unwrap().len(), 1);
    assert_eq!(firm.inbox("anna@kanzlei.test").unwrap().len(), 2);
    // The one-server API is the first host.
    assert_eq!(server.inbox("anna@kanzlei.test").unwrap().len(), 1);
    // The firm is not MX for patente.test: relaying denied there.
    let out = swaks(firm.smtp_addr(), "user01@patente.test", "f3", &[]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("<** 5"),
        "{:?}",
        out
    );
    assert!(firm.inbox("user01@patente.test").is_none());

    // A host's own rule acts on that host only, and its journal entry names it.
    let out = swaks(firm.smtp_addr(), "bernd@kanzlei.test", "f4", &[]).await;
    assert!(!out.status.success());
    // Each host greets with its own name.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("220 mx.firm.test"),
        "{out:?}"
    );
    swaks_ok(provider.smtp_addr(), "bernd@kanzlei.test", "p2").await;
    // The refusal at the firm, and the delivery at the provider.
    let all = server.journal_for("bernd@kanzlei.test");
    assert!(
        all.iter().any(|e| e.host.as_deref() == Some("provider")
            && matches!(e.event, mailrig_core::JournalEvent::Delivered { .. })),
        "{all:#?}"
    );
    let j: Vec<_> = all
        .into_iter()
        .filter(|e| !matches!(e.event, mailrig_core::JournalEvent::Delivered { .. }))
        .collect();
    assert_eq!(j.len(), 1, "{j:#?}");
    assert_eq!(j[0].host.as_deref(), Some("firm"));
    assert_eq!(j[0].rule.as_deref(), Some("firm-refuses-bernd"));
    assert_eq!(j[0].stage, Stage::Rcpt);
    server.shutdown().await;
}

#[tokio::test]
async fn a_host_certificate_verifies_with_the_one_ca_file() {
    let (text, _) = two_hosts();
    let server = start(&text).await;
    let firm = server.host("firm").unwrap();
    let smtps = firm.addresses().smtps.unwrap();
    let ca = server.ca_path().display().to_string();
    // curl verifies the name it connects to: mx.firm.test, resolved to the firm's address.
    let curl = |name: &'static str| curl_smtps_as(ca.clone(), name, smtps);
    let out = curl("mx.firm.test").await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The certificate is the firm's, not another host's.
    let out = curl("provider.mailrig.test").await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("certificate"),
        "{out:?}"
    );
    server.shutdown().await;
}

/// A host's own certificate can be broken by its own fault rules (the
/// whole fault language at stage `tls`), the other hosts' stay good.
#[tokio::test]
async fn a_host_with_a_broken_certificate_breaks_only_its_own_handshakes() {
    let a = addresses(3);
    let text = format!(
        "{DOMAINS}[[host]]\nname = 'good'\nhostname = 'mx.good.test'\naddress = '{}'\ndomains = ['kanzlei.test']\nsmtps = true\n\n\
         [[host]]\nname = 'stale'\nhostname = 'mx.stale.test'\naddress = '{}'\ndomains = ['patente.test']\nsmtps = true\n\n\
         [[host.fault]]\nname = 'stale-cert'\nstage = 'tls'\naction = 'tls'\ntls = 'expired'\n\n\
         [[host]]\nname = 'rogue'\nhostname = 'mx.rogue.test'\naddress = '{}'\ndomains = ['kanzlei.test']\nsmtps = true\n\n\
         [[host.fault]]\nname = 'rogue-cert'\nstage = 'tls'\naction = 'tls'\ntls = 'self-signed'\n",
        a[0], a[1], a[2]
    );
    let server = start(&text).await;
    let ca = server.ca_path().display().to_string();
    let curl = |host: &'static str, name: &'static str| {
        let smtps = server.host(host).unwrap().addresses().smtps.unwrap();
        curl_smtps_as(ca.clone(), name, smtps)
    };
    let good = curl("good", "mx.good.test").await;
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let stale = curl("stale", "mx.stale.test").await;
    assert!(!stale.status.success());
    let err = String::from_utf8_lossy(&stale.stderr);
    assert!(err.contains("expired"), "{err}");
    let rogue = curl("rogue", "mx.rogue.test").await;
    assert!(!rogue.status.success());
    let err = String::from_utf8_lossy(&rogue.stderr);
    // Signed by a CA of its own, which the one CA file does not trust.
    assert!(
        err.contains("unable to get local issuer certificate") || err.contains("self-signed"),
        "{err}"
    );
    // Each rule fired at its own host only.
    for (host, rule) in [("stale", "stale-cert"), ("rogue", "rogue-cert")] {
        assert!(
            server.host(host).unwrap().state().fault_fired(rule) > 0,
            "{host}: {rule} never fired"
        );
        assert_eq!(server.host("good").unwrap().state().fault_fired(rule), 0);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_down_host_refuses_connections_and_a_blackhole_swallows_mail() {
    let a = addresses(2);
    let text = format!(
        "{DOMAINS}[[host]]\nname = 'sink'\naddress = '{}'\ndomains = ['kanzlei.test']\nblackhole = true\n\n\
         [[host]]\nname = 'off'\naddress = '{}'\ndomains = ['patente.test']\nsmtp = 2525\ndown = true\n",
        a[0], a[1]
    );
    let server = start(&text).await;
    let off = server.host("off").unwrap();
    assert_eq!(off.addresses().smtp, None);
    let refused = tokio::net::TcpStream::connect(SocketAddr::from((a[1], 2525)))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);

    let sink = server.host("sink").unwrap();
    swaks_ok(sink.smtp_addr(), "anna@kanzlei.test", "b1").await;
    assert_eq!(sink.inbox("anna@kanzlei.test").unwrap().len(), 0);
    let j = server.journal_for_message("b1@extern.test");
    let dropped: Vec<_> = j
        .iter()
        .filter(|e| e.event == JournalEvent::Dropped)
        .collect();
    assert_eq!(dropped.len(), 1, "{j:#?}");
    assert_eq!(dropped[0].rule.as_deref(), Some("host-blackhole"));
    assert_eq!(dropped[0].host.as_deref(), Some("sink"));
    server.shutdown().await;
}

#[tokio::test]
async fn a_backup_mx_queues_while_the_primary_is_down_and_forwards_when_it_can() {
    let a = addresses(3);
    // mx2 forwards to mx1; mx3 forwards to a primary that is down.
    let text = format!(
        "{DOMAINS}[[host]]\nname = 'mx1'\naddress = '{}'\ndomains = ['kanzlei.test']\n\n\
         [[host]]\nname = 'mx2'\naddress = '{}'\ndomains = ['kanzlei.test']\nrole = 'backup-mx'\nforward_to = 'mx1'\nretry_secs = 0.2\n\n\
         [[host]]\nname = 'dead'\naddress = '{}'\ndomains = ['patente.test']\ndown = true\n\n\
         [[host]]\nname = 'mx3'\naddress = '{}'\nsmtp = 0\ndomains = ['patente.test']\nrole = 'backup-mx'\nretry_secs = 3600\n",
        a[0], a[1], a[2], a[1]
    );
    let server = start(&text).await;
    let mx2 = server.host("mx2").unwrap();
    swaks_ok(mx2.smtp_addr(), "bernd@kanzlei.test", "q1").await;
    let mx1 = server.host("mx1").unwrap();
    assert!(
        eventually(Duration::from_secs(10), || mx1
            .inbox("bernd@kanzlei.test")
            .unwrap()
            .len()
            == 1)
        .await,
        "{:#?}",
        server.journal().entries()
    );
    assert!(eventually(Duration::from_secs(5), || mx2.total_messages() == 0).await);
    let stored = &mx1.inbox("bernd@kanzlei.test").unwrap()[0];
    // The primary saw the backup as its client, with the original sender.
    let env = stored.envelope.as_ref().unwrap();
    assert_eq!(&*env.mail_from, "sekretariat@extern.test");
    assert_eq!(&*env.helo, "mx2.mailrig.test");
    let j = server.journal_for_message("q1@extern.test");
    assert!(
        j.iter().any(|e| e.host.as_deref() == Some("mx2")
            && e.event
                == JournalEvent::Forwarded {
                    to_host: "mx1".into()
                }),
        "{j:#?}"
    );

    // mx3's primary is down: the copy stays queued, each attempt journaled.
    let mx3 = server.host("mx3").unwrap();
    swaks_ok(mx3.smtp_addr(), "user02@patente.test", "q2").await;
    let pass = server.forward_now("mx3").await.unwrap();
    assert_eq!((pass.forwarded, pass.deferred), (0, 1));
    assert_eq!(mx3.total_messages(), 1);
    let j = server.journal_for_message("q2@extern.test");
    assert!(
        j.iter().any(|e| e.stage == Stage::Deliver
            && matches!(&e.event, JournalEvent::ForwardDeferred { to_host, .. } if &**to_host == "dead")),
        "{j:#?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_backup_mx_blackhole_catalog_world_never_reaches_its_primary() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../mailrig-core/catalog/backup-mx-blackhole.toml"
    );
    let server = mailrig_server::MockServer::builder()
        .scenario_file(path)
        .unwrap()
        .start()
        .await
        .unwrap();
    let mx2 = server.host("mx2").unwrap();
    let mx1 = server.host("mx1").unwrap();
    assert_eq!(mx2.smtp_addr().ip().to_string(), "127.0.0.3");
    swaks_ok(mx2.smtp_addr(), "user07@patente.test", "k1").await;
    swaks_ok(mx1.smtp_addr(), "user08@patente.test", "k2").await;
    let pass = server.forward_now("mx2").await.unwrap();
    assert_eq!(pass.forwarded, 0);
    assert_eq!(mx1.inbox("user07@patente.test").unwrap().len(), 0);
    assert_eq!(mx1.inbox("user08@patente.test").unwrap().len(), 1);
    let j = server.journal_for_message("k1@extern.test");
    assert!(
        j.iter().any(|e| e.event == JournalEvent::Dropped
            && e.host.as_deref() == Some("mx2")
            && e.rule.as_deref() == Some("backup-mx-discards")),
        "{j:#?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_http_api_names_the_host_in_the_journal_and_in_metrics() {
    let (text, _) = two_hosts();
    let server = start(&text).await;
    let firm = server.host("firm").unwrap();
    swaks_ok(firm.smtp_addr(), "anna@kanzlei.test", "h1").await;
    let _ = swaks(firm.smtp_addr(), "bernd@kanzlei.test", "h2", &[]).await;
    let http = server.http_addr();
    let get = |path: &str| {
        let url = format!("http://{http}{path}");
        async move {
            let out = run(
                "curl",
                vec!["-sS".into(), "--max-time".into(), "10".into(), url],
            )
            .await;
            assert!(out.status.success(), "{out:?}");
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    let journal: serde_json::Value =
        serde_json::from_str(&get("/api/v1/journal?mailbox=bernd@kanzlei.test").await).unwrap();
    assert_eq!(journal["entries"][0]["host"], "firm", "{journal}");
    assert_eq!(journal["entries"][0]["rule"], "firm-refuses-bernd");
    let metrics = get("/metrics").await;
    assert!(
        metrics.contains("mailrig_host_messages_delivered_total{host=\"firm\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mailrig_host_messages_delivered_total{host=\"provider\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mailrig_host_stored_messages{host=\"firm\"} 1"),
        "{metrics}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_relay_passes_mail_for_its_domains_to_the_mailbox_host() {
    let a = addresses(2);
    let text = format!(
        "{DOMAINS}[[host]]\nname = 'smarthost'\naddress = '{}'\ndomains = ['kanzlei.test', 'patente.test']\nrole = 'relay'\nforward_to = 'store'\nretry_secs = 3600\n\n\
         [[host]]\nname = 'store'\naddress = '{}'\ndomains = ['kanzlei.test', 'patente.test']\n",
        a[0], a[1]
    );
    let server = start(&text).await;
    let relay = server.host("smarthost").unwrap();
    swaks_ok(relay.smtp_addr(), "user05@patente.test", "r1").await;
    swaks_ok(relay.smtp_addr(), "clara@kanzlei.test", "r2").await;
    assert_eq!(relay.total_messages(), 2);
    let store = server.host("store").unwrap();
    let connections = || Metrics::get(&store.state().metrics.connections_total);
    let before = connections();
    let pass = server.forward_now("smarthost").await.unwrap();
    assert_eq!((pass.forwarded, pass.deferred), (2, 0));
    assert_eq!(relay.total_messages(), 0);
    // Both copies went over one session (one connection a pass, not a copy).
    assert_eq!(connections() - before, 1);
    assert_eq!(store.inbox("user05@patente.test").unwrap().len(), 1);
    assert_eq!(store.inbox("clara@kanzlei.test").unwrap().len(), 1);
    // One Received: line from each host on the way.
    let raw =
        String::from_utf8_lossy(&store.inbox("clara@kanzlei.test").unwrap()[0].raw).into_owned();
    assert_eq!(raw.matches("Received:").count(), 2, "{raw}");
    assert_eq!(raw.matches("Return-Path:").count(), 1, "{raw}");
    server.shutdown().await;
}
