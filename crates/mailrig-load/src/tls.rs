//! TLS client settings for smtps:// and STARTTLS: which certificates to trust (a CA file, the system store,
//! or — for test certificates — nothing at all).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_rustls::TlsConnector;

use crate::config::{Target, TlsOptions};
use crate::errors::LoadError;

/// A ready TLS connector and the name to check the server's certificate against.
#[derive(Clone)]
pub struct TlsSetup {
    /// The connector.
    pub connector: TlsConnector,
    /// The expected server name.
    pub server_name: ServerName<'static>,
}

impl std::fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSetup")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsSetup {
    /// Builds the client configuration from the options.
    pub fn new(opts: &TlsOptions, target: &Target) -> Result<TlsSetup, LoadError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| LoadError::TlsSetup(e.to_string()))?;
        let config = if opts.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
                .with_no_client_auth()
        } else {
            let mut roots = RootCertStore::empty();
            match &opts.ca_file {
                Some(path) => {
                    let certs = CertificateDer::pem_file_iter(path)
                        .map_err(|e| {
                            LoadError::TlsSetup(format!("--tls-ca {}: {e}", path.display()))
                        })?
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| {
                            LoadError::TlsSetup(format!("--tls-ca {}: {e}", path.display()))
                        })?;
                    let (added, _) = roots.add_parsable_certificates(certs);
                    if added == 0 {
                        return Err(LoadError::TlsSetup(format!(
                            "--tls-ca {}: no usable CA certificate in the file (expected PEM 'BEGIN CERTIFICATE')",
                            path.display()
                        )));
                    }
                }
                None => {
                    let native = rustls_native_certs::load_native_certs();
                    roots.add_parsable_certificates(native.certs);
                    if roots.is_empty() {
                        return Err(LoadError::TlsSetup(
                            "no system CA certificates found: give --tls-ca FILE, or --tls-insecure for test certificates".into(),
                        ));
                    }
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        let name = opts
            .server_name
            .clone()
            .unwrap_or_else(|| target.host.clone());
        let server_name =
            ServerName::try_from(name.clone()).map_err(|_| LoadError::InvalidFlag {
                flag: "--tls-server-name",
                reason: format!("'{name}' is not a valid DNS name or IP address"),
            })?;
        Ok(TlsSetup {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }
}

/// `--tls-insecure`: checks signatures (so the handshake is real) but trusts any certificate.
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

    fn target() -> Target {
        Target::parse("smtps://127.0.0.1:4650").unwrap()
    }

    #[test]
    fn insecure_setup_builds() {
        let opts = TlsOptions {
            insecure: true,
            ..Default::default()
        };
        assert!(TlsSetup::new(&opts, &target()).is_ok());
    }

    #[test]
    fn missing_or_empty_ca_files_are_named() {
        let opts = TlsOptions {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let e = TlsSetup::new(&opts, &target()).unwrap_err().to_string();
        assert!(e.contains("--tls-ca /nonexistent/ca.pem"), "{e}");
        let opts = TlsOptions {
            ca_file: Some("Cargo.toml".into()),
            ..Default::default()
        };
        let e = TlsSetup::new(&opts, &target()).unwrap_err().to_string();
        assert!(e.contains("no usable CA certificate"), "{e}");
    }
}
