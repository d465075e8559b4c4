//! TLS for the prober's clients: one trust decision (public roots plus an
//! optional CA file, or `insecure`) turned into what each client library
//! wants — a rustls `ClientConfig` for IMAP and POP3, lettre's
//! `TlsParameters` for SMTP.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::target::TlsTrust;

/// The trust decision, ready for connections.
#[derive(Debug, Clone)]
pub(crate) struct TlsContext {
    pub config: Arc<ClientConfig>,
    trust: TlsTrust,
}

/// A CA file that cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the CA certificate is unusable: {0}")]
pub struct TrustError(pub String);

impl TlsContext {
    pub fn new(trust: &TlsTrust) -> Result<TlsContext, TrustError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TrustError(e.to_string()))?;
        let config = if trust.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
                .with_no_client_auth()
        } else {
            let mut roots = RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            for cert in ca_certs(trust)? {
                roots.add(cert).map_err(|e| TrustError(e.to_string()))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        Ok(TlsContext {
            config: Arc::new(config),
            trust: trust.clone(),
        })
    }

    /// The server name to check the certificate against.
    pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
        ServerName::try_from(host.to_string())
            .map_err(|e| format!("'{host}' is not a valid TLS server name: {e}"))
    }

    /// Parameters for lettre (SMTP).
    pub fn smtp_parameters(
        &self,
        host: &str,
    ) -> Result<lettre::transport::smtp::client::TlsParameters, String> {
        use lettre::transport::smtp::client::{Certificate, TlsParameters};
        let mut b = TlsParameters::builder(host.to_string());
        if let Some(pem) = &self.trust.ca_pem {
            let cert =
                Certificate::from_pem(pem.as_bytes()).map_err(|e| format!("CA file: {e}"))?;
            b = b.add_root_certificate(cert);
        }
        b = b
            .dangerous_accept_invalid_certs(self.trust.insecure)
            .dangerous_accept_invalid_hostnames(self.trust.insecure);
        b.build_rustls().map_err(|e| e.to_string())
    }
}

fn ca_certs(trust: &TlsTrust) -> Result<Vec<CertificateDer<'static>>, TrustError> {
    let Some(pem) = &trust.ca_pem else {
        return Ok(Vec::new());
    };
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| TrustError(e.to_string()))?;
    if certs.is_empty() {
        return Err(TrustError("no PEM certificate in the CA file".into()));
    }
    Ok(certs)
}

/// `insecure = true`: accept any certificate, still checking that the
/// handshake signatures are sound.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
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
            &self.0.signature_verification_algorithms,
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
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
