//! TLS client settings for smtps:// and STARTTLS: the shared trust policy of [`mailrig_tls`] (the
//! system's trust store plus `--tls-ca FILE`, or `--tls-insecure`), turned into a connector and the name
//! to check the certificate against.

use std::sync::Arc;

use mailrig_tls::ClientTrust;
use rustls::pki_types::ServerName;
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
        let trust = ClientTrust::new(opts.ca_file.as_deref(), opts.insecure)
            .map_err(|e| LoadError::TlsSetup(format!("--tls-ca: {e}")))?;
        if !trust.is_insecure() && trust.roots().is_empty() {
            return Err(LoadError::TlsSetup(
                "no system CA certificates found: give --tls-ca FILE, or --tls-insecure for test certificates".into(),
            ));
        }
        let config = trust
            .client_config()
            .map_err(|e| LoadError::TlsSetup(e.to_string()))?;
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
        assert!(e.contains("--tls-ca: CA file /nonexistent/ca.pem"), "{e}");
        let opts = TlsOptions {
            ca_file: Some("Cargo.toml".into()),
            ..Default::default()
        };
        let e = TlsSetup::new(&opts, &target()).unwrap_err().to_string();
        assert!(e.contains("no usable CA certificate"), "{e}");
    }
}
