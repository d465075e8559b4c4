//! Probe messages: what is sent, and how a message read back is recognised.
//!
//! A run has a random id (`mrp` + 16 hex digits); each mailbox's message has a
//! token `<run id>-<n>` written in three places (the `X-Mailrig-Probe` header,
//! the `Message-ID` and the subject) so that one stripped or rewritten header
//! does not hide it, plus a SHA-256 of its body so that an altered message is
//! never taken for a delivered one. Readers search for the run id only; two
//! probes running at once never see each other's messages.

use std::fmt;

use lettre::message::Mailbox;
use lettre::message::header::{
    ContentTransferEncoding, ContentType, Header, HeaderName, HeaderValue,
};
use lettre::{Address, Message};
use ring::rand::{SecureRandom, SystemRandom};

/// Header carrying the token.
pub const PROBE_HEADER: &str = "X-Mailrig-Probe";
/// Header carrying the body hash (informational: the verdict uses the hash
/// remembered by the prober, not this header).
pub const HASH_HEADER: &str = "X-Mailrig-Body-Hash";

/// The id of one probe run.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunId(String);

impl RunId {
    /// A fresh random run id.
    pub fn random() -> RunId {
        RunId(format!("mrp{}", random_hex(8)))
    }

    /// A fixed run id (tests).
    pub fn from_string(s: impl Into<String>) -> RunId {
        RunId(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The token of the `n`th mailbox of this run.
    pub fn token(&self, n: usize) -> String {
        format!("{}-{n}", self.0)
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // SystemRandom fails only when the OS has no randomness at all; fall back
    // to the clock so a probe still gets a run id distinct from its neighbours'.
    if SystemRandom::new().fill(&mut buf).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (nanos >> (8 * (i % 16))) as u8 ^ (std::process::id() as u8);
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 (hex) of a body, after normalising line ends and trailing blank
/// lines, which transports may legitimately change.
pub fn body_hash(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    let normal = lines.join("\n");
    let digest = ring::digest::digest(&ring::digest::SHA256, normal.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// One message as sent.
#[derive(Debug, Clone)]
pub struct ProbeMessage {
    pub token: String,
    pub recipient: String,
    pub message_id: String,
    pub subject: String,
    pub body_hash: String,
    /// The whole message, ready for DATA.
    pub bytes: Vec<u8>,
    pub envelope: lettre::address::Envelope,
}

/// Why a probe message could not be built (an address lettre refuses).
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot build a probe message to {recipient}: {reason}")]
pub struct BuildError {
    pub recipient: String,
    pub reason: String,
}

#[derive(Clone)]
struct XProbe(String);

impl Header for XProbe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str(PROBE_HEADER)
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(XProbe(s.to_string()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

#[derive(Clone)]
struct XHash(String);

impl Header for XHash {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str(HASH_HEADER)
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(XHash(s.to_string()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// The signing key of `[smtp] dkim` (RSA, PEM).
pub(crate) fn dkim_key(
    pem: &str,
) -> Result<lettre::message::dkim::DkimSigningKey, lettre::message::dkim::DkimSigningKeyError> {
    lettre::message::dkim::DkimSigningKey::new(
        pem,
        lettre::message::dkim::DkimSigningAlgorithm::Rsa,
    )
}

/// Signs `msg` with `key`, relaxed/relaxed (lettre's default, simple header
/// canonicalization, did not verify at mail-auth: see the README).
fn dkim_sign(msg: &mut Message, key: &crate::target::DkimKey) -> Result<(), String> {
    use lettre::message::dkim::{DkimCanonicalization, DkimCanonicalizationType, DkimConfig};
    let signing = dkim_key(&key.key_pem).map_err(|e| format!("DKIM key: {e}"))?;
    let config = DkimConfig::new(
        key.selector.clone(),
        key.domain.clone(),
        signing,
        ["From", "To", "Subject", "Date", "Message-ID"]
            .into_iter()
            .map(HeaderName::new_from_ascii_str)
            .collect(),
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    );
    lettre::message::dkim::dkim_sign(msg, &config);
    Ok(())
}

impl ProbeMessage {
    /// Builds the `n`th message of `run`, to `recipient`, from `from`,
    /// DKIM-signed with `dkim` when given.
    pub fn build_signed(
        run: &RunId,
        n: usize,
        from: &str,
        recipient: &str,
        dkim: Option<&crate::target::DkimKey>,
    ) -> Result<ProbeMessage, BuildError> {
        let bad = |reason: String| BuildError {
            recipient: recipient.to_string(),
            reason,
        };
        let token = run.token(n);
        let message_id = format!("<{token}@probe.mailrig.invalid>");
        let subject = format!("mailrig probe {token}");
        let body = format!(
            "This is a delivery probe sent by mailrig (run {run}).\r\n\
             Token: {token}\r\n\
             Recipient: {recipient}\r\n\
             Nonce: {nonce}\r\n\
             The prober deletes it once read; if you can read this, the probe was\r\n\
             run with --keep or could not clean up. It is safe to delete.\r\n",
            nonce = random_hex(16)
        );
        let hash = body_hash(body.as_bytes());
        let from_addr: Address = from
            .parse()
            .map_err(|e| bad(format!("sender {from}: {e}")))?;
        let to_addr: Address = recipient.parse().map_err(|e| bad(format!("{e}")))?;
        let mut msg = Message::builder()
            .from(Mailbox::new(Some("mailrig probe".into()), from_addr))
            .to(Mailbox::new(None, to_addr))
            .subject(subject.clone())
            .message_id(Some(message_id.clone()))
            .header(XProbe(token.clone()))
            .header(XHash(format!("sha256:{hash}")))
            .header(ContentType::TEXT_PLAIN)
            .header(ContentTransferEncoding::SevenBit)
            .body(body)
            .map_err(|e| bad(e.to_string()))?;
        if let Some(key) = dkim {
            dkim_sign(&mut msg, key).map_err(bad)?;
        }
        Ok(ProbeMessage {
            token,
            recipient: recipient.to_string(),
            message_id,
            subject,
            body_hash: hash,
            envelope: msg.envelope().clone(),
            bytes: msg.formatted(),
        })
    }
}

/// The fields of a message read back that identify a probe, and what its
/// headers say about sender authentication.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeenHeaders {
    pub probe: Option<String>,
    pub message_id: Option<String>,
    pub subject: Option<String>,
    pub auth: crate::auth::AuthResults,
}

impl SeenHeaders {
    /// Parses a header block (unfolding continuation lines).
    pub fn parse(header: &[u8]) -> SeenHeaders {
        let text = String::from_utf8_lossy(header);
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in text.split('\n') {
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                break;
            }
            if line.starts_with([' ', '\t']) {
                if let Some(last) = fields.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
            } else if let Some((name, value)) = line.split_once(':') {
                fields.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let get = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        SeenHeaders {
            probe: get(&PROBE_HEADER.to_ascii_lowercase()),
            message_id: get("message-id"),
            subject: get("subject"),
            auth: crate::auth::AuthResults::from_fields(&fields),
        }
    }

    /// The token this message claims to carry (for `run`), from the probe
    /// header, else the Message-ID, else the subject.
    pub fn token(&self, run: &RunId) -> Option<String> {
        [&self.probe, &self.message_id, &self.subject]
            .into_iter()
            .flatten()
            .find_map(|v| find_token(v, run))
    }
}

/// Finds `<run>-<digits>` in a header value.
fn find_token(value: &str, run: &RunId) -> Option<String> {
    let start = value.find(run.as_str())?;
    let rest = &value[start + run.as_str().len()..];
    let digits: String = rest
        .strip_prefix('-')?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!digits.is_empty()).then(|| format!("{}-{digits}", run.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_distinct_and_tokens_carry_them() {
        let a = RunId::random();
        let b = RunId::random();
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("mrp") && a.as_str().len() == 19);
        assert_eq!(a.token(7), format!("{a}-7"));
    }

    #[test]
    fn message_carries_token_three_times_and_hash_matches_body() {
        let run = RunId::from_string("mrp00000000000000aa");
        let m =
            ProbeMessage::build_signed(&run, 3, "probe@mailrig.test", "user01@patente.test", None)
                .unwrap();
        let text = String::from_utf8(m.bytes.clone()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let seen = SeenHeaders::parse(head.as_bytes());
        assert_eq!(seen.probe.as_deref(), Some("mrp00000000000000aa-3"));
        assert_eq!(
            seen.message_id.as_deref(),
            Some("<mrp00000000000000aa-3@probe.mailrig.invalid>")
        );
        assert_eq!(
            seen.subject.as_deref(),
            Some("mailrig probe mrp00000000000000aa-3")
        );
        assert_eq!(seen.token(&run).as_deref(), Some("mrp00000000000000aa-3"));
        assert_eq!(body_hash(body.as_bytes()), m.body_hash);
        assert!(head.contains(&format!("X-Mailrig-Body-Hash: sha256:{}", m.body_hash)));
        // Line ends and trailing blank lines do not matter; content does.
        assert_eq!(
            body_hash(format!("{}\n\n", body.replace("\r\n", "\n")).as_bytes()),
            m.body_hash
        );
        assert_ne!(
            body_hash(body.replace("Token", "T0ken").as_bytes()),
            m.body_hash
        );
    }

    #[test]
    fn token_found_in_any_header_but_not_in_another_runs() {
        let run = RunId::from_string("mrpabc");
        let only_subject = SeenHeaders::parse(b"Subject: Fwd: mailrig probe mrpabc-12\r\n\r\n");
        assert_eq!(only_subject.token(&run).as_deref(), Some("mrpabc-12"));
        let folded = SeenHeaders::parse(b"X-Mailrig-Probe:\r\n mrpabc-4\r\nSubject: x\r\n");
        assert_eq!(folded.token(&run).as_deref(), Some("mrpabc-4"));
        let other = SeenHeaders::parse(b"X-Mailrig-Probe: mrpdef-1\r\n");
        assert_eq!(other.token(&run), None);
        assert_eq!(
            SeenHeaders::parse(b"Subject: mrpabc-\r\n").token(&run),
            None
        );
    }
}
