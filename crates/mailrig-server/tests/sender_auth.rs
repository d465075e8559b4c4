//! Sender authentication end to end: messages signed by a real DKIM signer
//! (lettre's) arrive over SMTP and are checked against the world's DNS; the
//! result is the stored copy's `Authentication-Results:`, a journal entry,
//! the envelope in the API's message JSON and `/metrics`. DNS fault rules
//! (a rotated key, an SPF record that omits the sender, a DMARC typo, a
//! missing selector) change what the checks see, and an enforcing host
//! refuses a DMARC failure under `p=reject` with `550 5.7.1`. An ARC chain
//! (sealed with mail-auth's own sealer) is checked where present.

mod support;

use mailrig_core::JournalEvent;
use mailrig_server::MockServer;
use support::dkim::{auth_results, scenario, send, signed, stored_headers};
use support::{run_tool, start_toml};

fn only_copy(server: &MockServer) -> Vec<u8> {
    let inbox = server.inbox("user@example.test").unwrap();
    assert_eq!(inbox.len(), 1, "one copy stored");
    inbox[0].raw.to_vec()
}

async fn http(server: &MockServer, path: &str) -> String {
    run_tool(
        "curl",
        &[
            "-sS",
            "--max-time",
            "10",
            &format!("http://{}{path}", server.http_addr()),
        ],
    )
    .await
}

/// Adds a fault rule through the control API (faults at run time).
async fn add_rule(server: &MockServer, json: &str) {
    let out = run_tool(
        "curl",
        &[
            "-sS",
            "--max-time",
            "10",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
            json,
            &format!("http://{}/api/v1/faults", server.http_addr()),
        ],
    )
    .await;
    assert!(!out.contains("error"), "{out}");
}

#[tokio::test]
async fn a_message_signed_by_lettre_passes_spf_dkim_and_dmarc() {
    let server = start_toml(&scenario("")).await;
    send(server.smtp_addr(), &signed("good", "hello\r\n", "signer"))
        .await
        .unwrap();
    let ar = auth_results(&only_copy(&server));
    for want in [
        "dkim=pass",
        "header.d=signer.test",
        "spf=pass",
        "dmarc=pass",
    ] {
        assert!(ar.contains(want), "{want} in\n{ar}");
    }

    // The journal: one `authenticated` entry naming the message.
    let entries = server.journal_for_message("good@signer.test");
    let results = entries
        .iter()
        .find_map(|e| match &e.event {
            JournalEvent::Authenticated { results } => Some(results.clone()),
            _ => None,
        })
        .expect("an authenticated entry");
    assert_eq!(results.dkim_result(), "pass");
    assert_eq!(results.dkim[0].selector, "s1");
    assert_eq!(results.dmarc_policy, "reject");

    // The API's message JSON and /metrics.
    let list: serde_json::Value =
        serde_json::from_str(&http(&server, "/api/v1/mailboxes/user@example.test/messages").await)
            .unwrap();
    let auth = &list["messages"][0]["envelope"]["auth"];
    assert_eq!(auth["spf"], "pass", "{list}");
    assert_eq!(auth["dkim"][0]["result"], "pass", "{list}");
    assert_eq!(auth["dmarc"], "pass", "{list}");
    let metrics = http(&server, "/metrics").await;
    assert!(
        metrics.contains("mailrig_auth_results_total{method=\"dkim\",result=\"pass\"} 1"),
        "{metrics}"
    );
    let journal = http(&server, "/api/v1/journal").await;
    assert!(journal.contains("\"kind\":\"authenticated\""), "{journal}");
    server.shutdown().await;
}

/// `raw` with an ARC set (i=1) sealed by `signer.test`, selector `s1`, with
/// the test key: as a forwarder that checked it would add (mail-auth's own
/// sealer, so this shows the checks' plumbing, not interop with another
/// ARC implementation).
fn arc_sealed(raw: &[u8]) -> Vec<u8> {
    use mail_auth::arc::ArcSealer;
    use mail_auth::common::crypto::{RsaKey, Sha256};
    use mail_auth::common::headers::HeaderWriter;
    use mail_auth::{ArcOutput, AuthenticatedMessage, AuthenticationResults};
    let pem = support::dkim::private_key("signer");
    let der = rustls_pemfile::private_key(&mut pem.as_bytes())
        .unwrap()
        .expect("a private key in testdata/dkim/signer.key.pem");
    let key = RsaKey::<Sha256>::from_key_der(der).unwrap();
    let msg = AuthenticatedMessage::parse(raw).unwrap();
    let results = AuthenticationResults::new("forwarder.signer.test");
    let set = ArcSealer::from_key(key)
        .domain("signer.test")
        .selector("s1")
        .headers(["From", "To", "Subject", "Message-ID", "DKIM-Signature"])
        .seal(&msg, &results, &ArcOutput::default())
        .unwrap();
    let mut out = set.to_header().into_bytes();
    out.extend_from_slice(raw);
    out
}

/// The `arc=` result of an `Authentication-Results:` field (not `dmarc=`).
fn arc_word(ar: &str) -> Option<&str> {
    ar.split([';', '\n'])
        .map(str::trim)
        .find_map(|p| p.strip_prefix("arc="))
        .and_then(|r| r.split_whitespace().next())
}

/// ARC where present: a sealed chain is checked (`arc=pass` in the stored
/// copy's header, the journal, the API's JSON and `/metrics`), a message
/// altered after sealing fails it, and one without a chain has no ARC result.
#[tokio::test]
async fn an_arc_chain_is_checked_where_present() {
    let server = start_toml(&scenario("")).await;
    let sealed = arc_sealed(&signed("arc-good", "forwarded\r\n", "signer"));
    send(server.smtp_addr(), &sealed).await.unwrap();
    let ar = auth_results(&only_copy(&server));
    assert_eq!(arc_word(&ar), Some("pass"), "{ar}");
    let results = server
        .journal_for_message("arc-good@signer.test")
        .iter()
        .find_map(|e| match &e.event {
            JournalEvent::Authenticated { results } => Some(results.clone()),
            _ => None,
        })
        .expect("an authenticated entry");
    assert_eq!(results.arc.as_deref(), Some("pass"));
    let list: serde_json::Value =
        serde_json::from_str(&http(&server, "/api/v1/mailboxes/user@example.test/messages").await)
            .unwrap();
    assert_eq!(
        list["messages"][0]["envelope"]["auth"]["arc"], "pass",
        "{list}"
    );
    let metrics = http(&server, "/metrics").await;
    assert!(
        metrics.contains("mailrig_auth_results_total{method=\"arc\",result=\"pass\"} 1"),
        "{metrics}"
    );
    server.shutdown().await;

    let server = start_toml(&scenario("")).await;
    let sealed = String::from_utf8(arc_sealed(&signed("arc-bad", "pay 100 EUR\r\n", "signer")))
        .unwrap()
        .replace("pay 100 EUR", "pay 900 EUR");
    send(server.smtp_addr(), sealed.as_bytes()).await.unwrap();
    let ar = auth_results(&only_copy(&server));
    // mail-auth words a body hash mismatch `neutral`, as for DKIM.
    assert_eq!(arc_word(&ar), Some("neutral"), "{ar}");
    assert!(
        ar.contains("arc=neutral (body hash did not verify)"),
        "{ar}"
    );
    server.shutdown().await;

    let server = start_toml(&scenario("")).await;
    send(server.smtp_addr(), &signed("no-arc", "hello\r\n", "signer"))
        .await
        .unwrap();
    let ar = auth_results(&only_copy(&server));
    assert_eq!(arc_word(&ar), None, "{ar}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_message_altered_after_signing_fails_dkim() {
    let server = start_toml(&scenario("")).await;
    let raw = signed("altered", "pay 100 EUR\r\n", "signer");
    let text = String::from_utf8(raw)
        .unwrap()
        .replace("pay 100 EUR", "pay 900 EUR");
    send(server.smtp_addr(), text.as_bytes()).await.unwrap();
    let head = auth_results(&only_copy(&server));
    // mail-auth words a body hash mismatch `neutral` with the reason.
    assert!(!head.contains("dkim=pass"), "{head}");
    assert!(head.contains("body hash did not verify"), "{head}");
    // SPF still passes for the From domain, so DMARC passes on SPF.
    assert!(
        head.contains("spf=pass") && head.contains("dmarc=pass"),
        "{head}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_key_rotated_in_dns_but_not_in_the_signer_fails_and_enforce_refuses_it() {
    let server = start_toml(&scenario("sender_auth = \"enforce\"")).await;
    // The world's DNS now holds another key, and SPF no longer names the
    // sending host: nothing aligned passes, DMARC fails under p=reject.
    add_rule(
        &server,
        &format!(
            r#"{{"name": "key-rotated", "stage": "dns", "action": "answer", "qtype": "TXT",
                "qname": "s1._domainkey.signer.test", "answer": ["{}"]}}"#,
            support::dkim::dkim_record("rotated")
        ),
    )
    .await;
    add_rule(
        &server,
        r#"{"name": "spf-omits-sender", "stage": "dns", "action": "answer", "qtype": "TXT",
            "qname": "signer.test", "answer": ["v=spf1 ip4:192.0.2.1 -all"]}"#,
    )
    .await;
    let err = send(server.smtp_addr(), &signed("rotated", "hi\r\n", "signer"))
        .await
        .expect_err("refused");
    let text = err.to_string();
    assert!(text.contains("550") || err.is_permanent(), "{text}");
    assert!(text.contains("5.7.1") || text.contains("DMARC"), "{text}");
    assert!(server.inbox("user@example.test").unwrap().is_empty());
    let metrics = http(&server, "/metrics").await;
    assert!(
        metrics.contains("mailrig_auth_rejected_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mailrig_auth_results_total{method=\"spf\",result=\"fail\"} 1"),
        "{metrics}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn recording_hosts_accept_what_fails_and_say_so() {
    let server = start_toml(&scenario("")).await;
    add_rule(
        &server,
        r#"{"name": "selector-missing", "stage": "dns", "action": "answer", "qtype": "TXT",
            "qname": "s1._domainkey.signer.test", "answer": []}"#,
    )
    .await;
    add_rule(
        &server,
        r#"{"name": "dmarc-typo", "stage": "dns", "action": "answer", "qtype": "TXT",
            "qname": "_dmarc.signer.test", "answer": ["v=DMARC1; p=rejcet"]}"#,
    )
    .await;
    send(server.smtp_addr(), &signed("typo", "hi\r\n", "signer"))
        .await
        .unwrap();
    let ar = auth_results(&only_copy(&server));
    assert!(
        ar.contains("dkim=permerror (dns record not found)"),
        "no key:\n{ar}"
    );
    assert!(
        ar.contains("dmarc=permerror"),
        "a record that does not parse:\n{ar}"
    );
    let results = server
        .journal_for_message("typo@signer.test")
        .into_iter()
        .find_map(|e| match e.event {
            JournalEvent::Authenticated { results } => Some(results),
            _ => None,
        })
        .unwrap();
    assert_eq!(results.dkim[0].result, "permerror", "{results:?}");
    assert_eq!(results.dmarc, "permerror", "{results:?}");
    assert_ne!(
        results.dmarc_policy, "reject",
        "the typo is not p=reject: {results:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_world_without_dns_or_hosts_checks_nothing() {
    let server = start_toml(
        "[[domain]]\nname = \"example.test\"\npassword = \"pw\"\nmailboxes = [\"user\"]\n",
    )
    .await;
    send(server.smtp_addr(), &signed("plain", "hi\r\n", "signer"))
        .await
        .unwrap();
    let head = stored_headers(&only_copy(&server));
    assert!(!head.contains("Authentication-Results"), "{head}");
    assert!(
        !http(&server, "/metrics")
            .await
            .contains("mailrig_auth_results_total")
    );
    server.shutdown().await;
}

// ---- the catalog scenarios ---------------------------------------------------

#[tokio::test]
async fn catalog_dkim_key_rotated_signs_with_the_old_key() {
    let server = support::faults::start("dkim-key-rotated").await;
    send(
        server.smtp_addr(),
        &signed("cat-rotated", "hi\r\n", "signer"),
    )
    .await
    .unwrap();
    let ar = auth_results(&only_copy(&server));
    assert!(ar.contains("dkim=fail"), "{ar}");
    assert!(ar.contains("spf=pass") && ar.contains("dmarc=pass"), "{ar}");
    server.shutdown().await;
}

#[tokio::test]
async fn catalog_spf_omits_sender_is_refused_by_an_enforcing_provider() {
    let server = support::faults::start("spf-omits-sender").await;
    let unsigned = b"From: alice@signer.test\r\nTo: user@example.test\r\nSubject: x\r\nMessage-ID: <cat-spf@signer.test>\r\n\r\nhi\r\n";
    let err = send(server.smtp_addr(), unsigned)
        .await
        .expect_err("refused");
    assert!(err.is_permanent(), "{err}");
    assert!(err.to_string().contains("DMARC"), "{err}");
    let entries = server.journal_for_message("cat-spf@signer.test");
    let results = entries
        .iter()
        .find_map(|e| match &e.event {
            JournalEvent::Authenticated { results } => Some(results.clone()),
            _ => None,
        })
        .expect("authenticated entry");
    assert_eq!(
        (results.spf.as_str(), results.dmarc.as_str()),
        ("fail", "fail")
    );
    assert!(server.inbox("user@example.test").unwrap().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn catalog_dmarc_typo_leaves_the_domain_without_a_policy() {
    let server = support::faults::start("dmarc-typo").await;
    // SPF fails (the record names another host) and the body was altered:
    // with a working p=reject this would be refused; with the typo it is not.
    let raw = signed("cat-typo", "original\r\n", "signer");
    let raw = String::from_utf8(raw)
        .unwrap()
        .replace("original", "forged");
    send(server.smtp_addr(), raw.as_bytes()).await.unwrap();
    let ar = auth_results(&only_copy(&server));
    assert!(ar.contains("dmarc=permerror"), "{ar}");
    assert!(ar.contains("spf=fail"), "{ar}");
    server.shutdown().await;
}

#[tokio::test]
async fn the_policy_is_per_host_and_metrics_name_the_host() {
    let a = support::hosts::addresses(2);
    let text = format!(
        r#"[[domain]]
name = "example.test"
mailboxes = ["user"]
password = "secret"

[[domain]]
name = "other.test"
mailboxes = ["user"]
password = "secret"

[[host]]
name = "strict"
address = "{}"
domains = ["example.test"]
sender_auth = "enforce"

[[host]]
name = "lenient"
address = "{}"
domains = ["other.test"]

[dns]
zones = ["signer.test"]

[[dns.record]]
name = "signer.test"
type = "TXT"
value = "v=spf1 ip4:192.0.2.10 -all"

[[dns.record]]
name = "_dmarc.signer.test"
type = "TXT"
value = "v=DMARC1; p=reject"
"#,
        a[0], a[1]
    );
    let server = start_toml(&text).await;
    let unsigned =
        |to: &str| format!("From: alice@signer.test\r\nTo: {to}\r\nSubject: x\r\n\r\nhi\r\n");
    let strict = server.host("strict").unwrap();
    let lenient = server.host("lenient").unwrap();
    let err = support::dkim::send_to(
        strict.smtp_addr(),
        "user@example.test",
        unsigned("user@example.test").as_bytes(),
    )
    .await
    .expect_err("the enforcing host refuses");
    assert!(err.to_string().contains("5.7.1"), "{err}");
    support::dkim::send_to(
        lenient.smtp_addr(),
        "user@other.test",
        unsigned("user@other.test").as_bytes(),
    )
    .await
    .expect("the recording host (the default with [[host]]s) accepts");
    let copy = lenient.inbox("user@other.test").unwrap();
    let ar = auth_results(&copy[0].raw);
    assert!(ar.contains("spf=fail") && ar.contains("dmarc=fail"), "{ar}");
    let metrics = http(&server, "/metrics").await;
    assert!(
        metrics.contains("mailrig_auth_rejected_total{host=\"strict\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mailrig_auth_rejected_total{host=\"lenient\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "mailrig_auth_results_total{host=\"lenient\",method=\"dmarc\",result=\"fail\"} 1"
        ),
        "{metrics}"
    );
    let journal = http(&server, "/api/v1/journal").await;
    assert!(journal.contains("\"host\":\"strict\""), "{journal}");
    server.shutdown().await;
}
