//! TLS per endpoint: for every endpoint the probe talks TLS to (SMTP with
//! `tls`/`starttls`, each IMAP or POP3 read endpoint with TLS), one extra
//! connection that goes as far as the handshake and reports the TLS version,
//! the certificate's subject, issuer and expiry, whether the name the prober
//! connected with is one of its names, and whether it verifies against the
//! target's trust (`[tls] ca_file`, the system store; `insecure` skips it).
//! `--warn-cert-days N` turns a certificate that expires within N days into a
//! warning (table, JSON `tls`, a JUnit case, Nagios WARNING); an expired one
//! always warns.
//!
//! The handshake accepts any certificate so that a broken one can still be
//! described; the real verifier's answer is recorded beside it. Nothing is
//! sent after the handshake. What a certificate says is read in [`cert`].

pub mod cert;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::DigitallySignedStruct;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::target::{ReadProtocol, Target, TlsMode};
use crate::tls::TlsContext;

/// What the prober saw of one TLS endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointTls {
    /// `IMAP 127.0.0.1:993 (tls)`, `SMTP mx.patente.test:25 (starttls)`.
    pub endpoint: String,
    /// `TLSv1.3`; `null` when the handshake did not happen.
    pub version: Option<String>,
    pub subject: Option<String>,
    pub issuer: Option<String>,
    /// RFC 3339, UTC.
    pub not_after: Option<String>,
    /// Whole days until `not_after` (negative: expired).
    pub days_left: Option<i64>,
    /// The host name (or address) connected to is one of the certificate's names.
    pub name_matched: Option<bool>,
    /// It verifies against the target's trust; `null` with `insecure`.
    pub verified: Option<bool>,
    /// Why it did not verify, or why there was no handshake.
    pub problem: Option<String>,
    /// Expiry within `--warn-cert-days`, or expired.
    pub warning: Option<String>,
}

impl EndpointTls {
    /// One line for the table: `tls: IMAP ... TLSv1.3, CN=..., expires ... (N days), name matched`.
    pub fn line(&self) -> String {
        let mut parts = vec![self.endpoint.clone()];
        if let Some(v) = &self.version {
            parts.push(v.clone());
        }
        if let Some(s) = &self.subject {
            parts.push(s.clone());
        }
        if let (Some(at), Some(d)) = (&self.not_after, self.days_left) {
            parts.push(format!("expires {at} ({d} days)"));
        }
        match self.name_matched {
            Some(true) => parts.push("name matched".into()),
            Some(false) => parts.push("NAME DOES NOT MATCH".into()),
            None => {}
        }
        if let Some(p) = &self.problem {
            parts.push(p.clone());
        }
        if let Some(w) = &self.warning {
            parts.push(format!("WARNING: {w}"));
        }
        parts.join(", ")
    }

    /// Anything an admin must act on: a warning, a name mismatch, a failed verification or handshake.
    pub fn is_trouble(&self) -> bool {
        self.warning.is_some()
            || self.name_matched == Some(false)
            || self.verified == Some(false)
            || self.version.is_none()
    }
}

/// One endpoint to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `SMTP`, `IMAP`, `POP3`.
    pub protocol: &'static str,
    pub host: String,
    pub port: u16,
    pub mode: TlsMode,
}

/// The distinct TLS endpoints of a target, SMTP first (not under `--each-mx`:
/// MX hosts are sent to in plain SMTP).
pub(crate) fn endpoints(target: &Target, each_mx: bool) -> Vec<Endpoint> {
    let mut out = Vec::new();
    if target.smtp.tls != TlsMode::None && !each_mx && !target.smtp.mx {
        out.push(Endpoint {
            protocol: "SMTP",
            host: target.smtp.host.clone(),
            port: target.smtp.port,
            mode: target.smtp.tls,
        });
    }
    let reads = target
        .mailboxes
        .iter()
        .flat_map(|m| std::iter::once(&m.read).chain(m.upstream.as_ref().map(|u| &u.read)));
    for read in reads {
        if read.tls == TlsMode::None {
            continue;
        }
        let e = Endpoint {
            protocol: match read.protocol {
                ReadProtocol::Imap => "IMAP",
                ReadProtocol::Pop3 => "POP3",
            },
            host: read.host.clone(),
            port: read.port,
            mode: read.tls,
        };
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out
}

/// Looks at every TLS endpoint of `target` (at once).
pub(crate) async fn inspect_all(
    target: &Target,
    each_mx: bool,
    warn_days: Option<u32>,
) -> Vec<EndpointTls> {
    let list = endpoints(target, each_mx);
    if list.is_empty() {
        return Vec::new();
    }
    let ctx = match TlsContext::new(&target.trust) {
        Ok(c) => c,
        Err(e) => {
            return list
                .iter()
                .map(|ep| failed(ep, format!("no TLS trust: {e}")))
                .collect();
        }
    };
    // Few endpoints (usually one or two): one after the other.
    let mut out = Vec::with_capacity(list.len());
    for ep in &list {
        out.push(inspect(ep, &ctx, target.connect_timeout, warn_days).await);
    }
    out
}

fn label(ep: &Endpoint) -> String {
    let mode = match ep.mode {
        TlsMode::Starttls => "starttls",
        _ => "tls",
    };
    format!("{} {}:{} ({mode})", ep.protocol, ep.host, ep.port)
}

fn failed(ep: &Endpoint, problem: String) -> EndpointTls {
    EndpointTls {
        endpoint: label(ep),
        version: None,
        subject: None,
        issuer: None,
        not_after: None,
        days_left: None,
        name_matched: None,
        verified: None,
        problem: Some(problem),
        warning: None,
    }
}

/// Connects, says STARTTLS where needed, shakes hands, describes the certificate.
pub(crate) async fn inspect(
    ep: &Endpoint,
    ctx: &TlsContext,
    limit: Duration,
    warn_days: Option<u32>,
) -> EndpointTls {
    match tokio::time::timeout(limit * 2, handshake(ep, ctx, limit)).await {
        Err(_) => failed(
            ep,
            format!("no TLS handshake within {} s", (limit * 2).as_secs()),
        ),
        Ok(Err(e)) => failed(ep, e),
        Ok(Ok((version, der, verdict))) => {
            let facts = match cert::parse(&der) {
                Ok(f) => f,
                Err(e) => return failed(ep, e),
            };
            let now = chrono::Utc::now().timestamp();
            let days = cert::days_left(facts.not_after, now);
            let (verified, problem) = match verdict {
                None => (None, None),
                Some(Ok(())) => (Some(true), None),
                Some(Err(e)) => (Some(false), Some(e)),
            };
            EndpointTls {
                endpoint: label(ep),
                version: Some(version),
                subject: Some(facts.subject.clone()),
                issuer: Some(facts.issuer.clone()),
                not_after: chrono::DateTime::from_timestamp(facts.not_after, 0)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                days_left: Some(days),
                name_matched: Some(cert::name_matches(&facts, &ep.host)),
                verified,
                problem,
                warning: cert::expiry_warning(days, warn_days),
            }
        }
    }
}

type Seen = (Vec<u8>, Option<Result<(), String>>);

async fn handshake(
    ep: &Endpoint,
    ctx: &TlsContext,
    limit: Duration,
) -> Result<(String, Vec<u8>, Option<Result<(), String>>), String> {
    let tcp = crate::read::connect_tcp(&ep.host, ep.port, limit)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let tcp = if ep.mode == TlsMode::Starttls {
        starttls(ep.protocol, tcp).await?
    } else {
        tcp
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = if ctx.is_insecure() {
        None
    } else {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(ctx.roots().iter().cloned());
        Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| format!("no trusted roots: {e}"))?,
        )
    };
    let recorder = Arc::new(Recorder {
        inner,
        provider: provider.clone(),
        seen: Mutex::new(None),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    let name = TlsContext::server_name(&ep.host)?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake failed: {e}"))?;
    let version = tls
        .get_ref()
        .1
        .protocol_version()
        .map_or_else(|| "unknown".to_string(), version_name);
    let seen: Option<Seen> = recorder.seen.lock().ok().and_then(|mut s| s.take());
    let (der, verdict) = seen.ok_or("the server sent no certificate")?;
    Ok((version, der, verdict))
}

fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        other => format!("{other:?}"),
    }
}

/// The upgrade dialog of each protocol, up to the point where TLS starts.
async fn starttls(protocol: &str, tcp: TcpStream) -> Result<TcpStream, String> {
    let mut io = BufReader::new(tcp);
    let mut line = String::new();
    let mut read_line = async |io: &mut BufReader<TcpStream>| -> Result<String, String> {
        line.clear();
        match io.read_line(&mut line).await {
            Ok(0) => Err("connection closed before STARTTLS".to_string()),
            Ok(_) => Ok(line.trim_end().to_string()),
            Err(e) => Err(e.to_string()),
        }
    };
    match protocol {
        "SMTP" => {
            // Replies end with a line whose fourth byte is a space.
            let mut reply = async |io: &mut BufReader<TcpStream>| -> Result<String, String> {
                loop {
                    let l = read_line(io).await?;
                    if l.as_bytes().get(3) != Some(&b'-') {
                        return Ok(l);
                    }
                }
            };
            reply(&mut io).await?;
            send(&mut io, "EHLO mailrig-probe.localhost\r\n").await?;
            reply(&mut io).await?;
            send(&mut io, "STARTTLS\r\n").await?;
            let r = reply(&mut io).await?;
            if !r.starts_with("220") {
                return Err(format!("STARTTLS refused: {r}"));
            }
        }
        "IMAP" => {
            read_line(&mut io).await?;
            send(&mut io, "t1 STARTTLS\r\n").await?;
            loop {
                let l = read_line(&mut io).await?;
                if let Some(rest) = l.strip_prefix("t1 ") {
                    if !rest.to_ascii_uppercase().starts_with("OK") {
                        return Err(format!("STARTTLS refused: {l}"));
                    }
                    break;
                }
            }
        }
        _ => {
            read_line(&mut io).await?;
            send(&mut io, "STLS\r\n").await?;
            let l = read_line(&mut io).await?;
            if !l.starts_with("+OK") {
                return Err(format!("STLS refused: {l}"));
            }
        }
    }
    Ok(io.into_inner())
}

async fn send(io: &mut BufReader<TcpStream>, s: &str) -> Result<(), String> {
    io.get_mut()
        .write_all(s.as_bytes())
        .await
        .map_err(|e| e.to_string())
}

/// Accepts every certificate, remembering it and what the real verifier said.
#[derive(Debug)]
struct Recorder {
    inner: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    seen: Mutex<Option<Seen>>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.inner.as_ref().map(|v| {
            v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        if let Ok(mut s) = self.seen.lock() {
            *s = Some((end_entity.to_vec(), verdict));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests;
