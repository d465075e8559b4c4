//! Sender authentication fixtures: a sending domain `signer.test` published
//! in the world's DNS (SPF for 127.0.0.1, DMARC `p=reject`, the DKIM key of
//! selector `s1`), the test keys of `testdata/dkim/`, messages signed with
//! lettre's DKIM signer, and sending raw bytes over SMTP with lettre.

use std::net::SocketAddr;

use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey, dkim_sign,
};
use lettre::message::header::HeaderName;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::Error as SmtpError;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor, address::Envelope};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/dkim");

/// A test key: `signer` (what signs) or `rotated` (another key).
pub fn private_key(name: &str) -> String {
    std::fs::read_to_string(format!("{DIR}/{name}.key.pem")).expect("testdata/dkim key")
}

/// The DKIM TXT value publishing key `name`.
pub fn dkim_record(name: &str) -> String {
    let p = std::fs::read_to_string(format!("{DIR}/{name}.pub.b64")).expect("testdata/dkim pub");
    format!("v=DKIM1; k=rsa; p={}", p.trim())
}

/// A world: mailbox `user@example.test`, the sending domain `signer.test`
/// in `[dns]`, and `security` lines (e.g. `sender_auth = "enforce"`).
pub fn scenario(security: &str) -> String {
    format!(
        r#"[security]
{security}

[[domain]]
name = "example.test"
password = "secret"
mailboxes = ["user"]

[dns]
zones = ["signer.test"]

[[dns.record]]
name = "signer.test"
type = "TXT"
value = "v=spf1 ip4:127.0.0.1 -all"

[[dns.record]]
name = "_dmarc.signer.test"
type = "TXT"
value = "v=DMARC1; p=reject"

[[dns.record]]
name = "s1._domainkey.signer.test"
type = "TXT"
value = "{}"
"#,
        dkim_record("signer")
    )
}

/// A message from `alice@signer.test` to `user@example.test`, signed by
/// lettre with `key` as selector `s1` of `signer.test` (relaxed/relaxed).
pub fn signed(subject: &str, body: &str, key: &str) -> Vec<u8> {
    let from: Mailbox = "Alice <alice@signer.test>".parse().unwrap();
    let mut m = Message::builder()
        .from(from)
        .to("user@example.test".parse().unwrap())
        .subject(subject)
        .message_id(Some(format!("<{subject}@signer.test>")))
        .body(body.to_string())
        .unwrap();
    let key = DkimSigningKey::new(&private_key(key), DkimSigningAlgorithm::Rsa).unwrap();
    // relaxed/relaxed: signatures made with lettre's default (simple header
    // canonicalization) did not verify here ("verification failed", body
    // hash fine); relaxed ones do.
    let config = DkimConfig::new(
        "s1".into(),
        "signer.test".into(),
        key,
        ["From", "Subject", "To", "Date", "Message-ID"]
            .into_iter()
            .map(HeaderName::new_from_ascii_str)
            .collect(),
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    );
    dkim_sign(&mut m, &config);
    m.formatted()
}

/// Sends `raw` from `alice@signer.test` to `user@example.test`.
pub async fn send(smtp: SocketAddr, raw: &[u8]) -> Result<(), SmtpError> {
    send_to(smtp, "user@example.test", raw).await
}

/// Sends `raw` from `alice@signer.test` to `rcpt`.
pub async fn send_to(smtp: SocketAddr, rcpt: &str, raw: &[u8]) -> Result<(), SmtpError> {
    let t = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.ip().to_string())
        .port(smtp.port())
        .hello_name(lettre::transport::smtp::extension::ClientId::Domain(
            "mail.signer.test".into(),
        ))
        .build();
    let envelope = Envelope::new(
        Some("alice@signer.test".parse().unwrap()),
        vec![rcpt.parse().unwrap()],
    )
    .unwrap();
    t.send_raw(&envelope, raw).await.map(|_| ())
}

/// The stored copy's header block as text.
pub fn stored_headers(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    text.split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The `Authentication-Results:` field of a stored copy (folded lines
/// included), which sits right under our `Received:`.
pub fn auth_results(raw: &[u8]) -> String {
    let head = stored_headers(raw);
    let at = head
        .find("\r\nAuthentication-Results: ")
        .unwrap_or_else(|| panic!("no Authentication-Results in\n{head}"));
    let received = head.find("\r\nReceived: ").expect("our Received:");
    assert!(received < at, "under Received:\n{head}");
    let field = &head[at + 2..];
    let end = field
        .match_indices("\r\n")
        .map(|(i, _)| i)
        .find(|&i| !field[i + 2..].starts_with('\t'))
        .unwrap_or(field.len());
    field[..end].to_string()
}
