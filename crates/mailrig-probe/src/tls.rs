//! TLS for the prober's clients: the trust policy shared with the load driver ([`mailrig_tls`]: the
//! system's trust store plus the target's `[tls] ca_file`, or `insecure`) turned into what each client
//! library wants — a rustls `ClientConfig` for IMAP, POP3 and implicit-TLS SMTP, lettre's
//! `TlsParameters` (built from the same roots) for STARTTLS.

use std::sync::Arc;

use mailrig_tls::ClientTrust;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;

pub use mailrig_tls::TrustError;

use crate::target::TlsTrust;

/// The trust decision, ready for connections.
#[derive(Debug, Clone)]
pub(crate) struct TlsContext {
    pub config: Arc<ClientConfig>,
    trust: ClientTrust,
    /// The trusted certificates (DER), gathered once: lettre takes certificates, not a configuration.
    roots_der: Arc<Vec<Vec<u8>>>,
}

impl TlsContext {
    pub fn new(trust: &TlsTrust) -> Result<TlsContext, TrustError> {
        let trust = ClientTrust::from_pem(
            "[tls] ca_file",
            trust.ca_pem.as_deref().map(str::as_bytes),
            trust.insecure,
        )?;
        let certs = trust.root_certificates();
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(certs.iter().cloned());
        Ok(TlsContext {
            config: Arc::new(trust.client_config_with(roots)?),
            roots_der: Arc::new(certs.iter().map(|c| c.to_vec()).collect()),
            trust,
        })
    }

    /// `[tls] insecure`: any certificate is accepted.
    pub fn is_insecure(&self) -> bool {
        self.trust.is_insecure()
    }

    /// The trusted certificates (the system's and the target's CA file).
    pub fn roots(&self) -> Vec<rustls::pki_types::CertificateDer<'static>> {
        self.roots_der
            .iter()
            .map(|d| rustls::pki_types::CertificateDer::from(d.clone()))
            .collect()
    }

    /// The server name to check the certificate against.
    pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
        ServerName::try_from(host.to_string())
            .map_err(|e| format!("'{host}' is not a valid TLS server name: {e}"))
    }

    /// Parameters for lettre (SMTP STARTTLS): the same roots as every other connection, or insecure.
    pub fn smtp_parameters(
        &self,
        host: &str,
    ) -> Result<lettre::transport::smtp::client::TlsParameters, String> {
        use lettre::transport::smtp::client::{Certificate, CertificateStore, TlsParameters};
        let mut b =
            TlsParameters::builder(host.to_string()).certificate_store(CertificateStore::None);
        for cert in self.roots_der.iter() {
            match Certificate::from_der(cert.clone()) {
                Ok(c) => b = b.add_root_certificate(c),
                Err(e) => tracing::debug!("a trusted certificate lettre cannot use: {e}"),
            }
        }
        b = b
            .dangerous_accept_invalid_certs(self.trust.is_insecure())
            .dangerous_accept_invalid_hostnames(self.trust.is_insecure());
        b.build_rustls().map_err(|e| e.to_string())
    }
}
