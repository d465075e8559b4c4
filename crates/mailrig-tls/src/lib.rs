//! Client TLS trust for mailrig's clients, the prober and the load driver alike: one policy, one place.
//!
//! Trusted are the system's trust store plus the CA certificates of an optional PEM file (`--tls-ca FILE`
//! on the command line, `[tls] ca_file` in a prober target file), or — for test certificates only —
//! nothing is checked (`--tls-insecure`, `[tls] insecure = true`): the handshake stays real (signatures
//! are verified), but any certificate and any name is accepted.
//!
//! ```
//! let trust = mailrig_tls::ClientTrust::new(None, false).unwrap();
//! let config = trust.client_config(); // a rustls ClientConfig for tokio-rustls
//! # let _ = config;
//! ```

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Why a trust setting cannot be used. The message names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// The CA file could not be read.
    #[error("CA file {path}: {reason}")]
    Read {
        /// The file as given.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// The CA file holds no usable certificate.
    #[error("CA file {path}: {reason}")]
    Parse {
        /// The file as given.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A CA file and "insecure" were both asked for.
    #[error("a CA file and insecure contradict each other: pick one")]
    Contradiction,
    /// rustls refused the configuration.
    #[error("TLS setup: {0}")]
    Setup(String),
}

/// Which server certificates a client accepts.
#[derive(Debug, Clone, Default)]
pub struct ClientTrust {
    extra: Vec<CertificateDer<'static>>,
    insecure: bool,
}

impl ClientTrust {
    /// The system's trust store plus the CA file at `ca_file`, or (`insecure`) anything.
    pub fn new(ca_file: Option<&Path>, insecure: bool) -> Result<ClientTrust, TrustError> {
        match ca_file {
            None => Ok(ClientTrust {
                extra: Vec::new(),
                insecure,
            }),
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| TrustError::Read {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                ClientTrust::from_pem(&path.display().to_string(), Some(&pem), insecure)
            }
        }
    }

    /// As [`ClientTrust::new`], from the file's contents (`name` is the file, for messages).
    pub fn from_pem(
        name: &str,
        pem: Option<&[u8]>,
        insecure: bool,
    ) -> Result<ClientTrust, TrustError> {
        let Some(mut pem) = pem else {
            return Ok(ClientTrust {
                extra: Vec::new(),
                insecure,
            });
        };
        if insecure {
            return Err(TrustError::Contradiction);
        }
        let extra: Vec<_> = rustls_pemfile::certs(&mut pem)
            .collect::<Result<_, _>>()
            .map_err(|e| TrustError::Parse {
                path: name.to_string(),
                reason: e.to_string(),
            })?;
        if extra.is_empty() {
            return Err(TrustError::Parse {
                path: name.to_string(),
                reason: "no usable CA certificate in the file (expected PEM 'BEGIN CERTIFICATE')"
                    .into(),
            });
        }
        Ok(ClientTrust {
            extra,
            insecure: false,
        })
    }

    /// Whether every certificate is accepted.
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }

    /// The CA certificates of the file, for client libraries that build their own TLS configuration.
    pub fn extra_roots(&self) -> &[CertificateDer<'static>] {
        &self.extra
    }

    /// Every trusted certificate: the system's plus the file's (none when insecure), for client
    /// libraries that take certificates rather than a rustls configuration.
    pub fn root_certificates(&self) -> Vec<CertificateDer<'static>> {
        if self.insecure {
            return Vec::new();
        }
        let mut certs = rustls_native_certs::load_native_certs().certs;
        if certs.is_empty() && self.extra.is_empty() {
            tracing::warn!(
                "the system trust store is empty: TLS servers will be refused unless a CA file or insecure is given"
            );
        }
        certs.extend(self.extra.iter().cloned());
        certs
    }

    /// Every trusted root as a rustls store: the system's plus the file's (empty when insecure).
    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(self.root_certificates());
        roots
    }

    /// A rustls client configuration for this trust.
    pub fn client_config(&self) -> Result<ClientConfig, TrustError> {
        self.client_config_with(self.roots())
    }

    /// As [`ClientTrust::client_config`], with the roots already gathered (see [`ClientTrust::roots`]).
    pub fn client_config_with(&self, roots: RootCertStore) -> Result<ClientConfig, TrustError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TrustError::Setup(e.to_string()))?;
        Ok(if self.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
                .with_no_client_auth()
        } else {
            builder.with_root_certificates(roots).with_no_client_auth()
        })
    }
}

/// Insecure trust: accepts any certificate, still checking that the handshake signatures are sound.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_adds_to_the_system_roots() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["ca.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, cert.pem()).unwrap();
        let with = ClientTrust::new(Some(&path), false).unwrap();
        let without = ClientTrust::new(None, false).unwrap();
        assert_eq!(with.extra_roots().len(), 1);
        assert_eq!(with.roots().len(), without.roots().len() + 1);
        assert!(with.client_config().is_ok());
    }

    #[test]
    fn bad_files_and_contradictions_are_named() {
        let e = ClientTrust::new(Some(Path::new("/nonexistent/ca.pem")), false).unwrap_err();
        assert!(
            e.to_string().starts_with("CA file /nonexistent/ca.pem: "),
            "{e}"
        );
        let e = ClientTrust::from_pem("x.pem", Some(b"not a pem"), false).unwrap_err();
        assert!(e.to_string().contains("no usable CA certificate"), "{e}");
        let e = ClientTrust::from_pem("x.pem", Some(b""), true).unwrap_err();
        assert_eq!(e, TrustError::Contradiction);
    }

    #[test]
    fn insecure_builds_and_trusts_no_roots() {
        let t = ClientTrust::new(None, true).unwrap();
        assert!(t.is_insecure());
        assert!(t.roots().is_empty());
        assert!(t.client_config().is_ok());
    }
}
