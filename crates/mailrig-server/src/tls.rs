//! TLS for every listener: a local certificate authority made at start-up with
//! rcgen, a server certificate it signs for the world's host name, `localhost`
//! and `127.0.0.1`, and the rustls configuration built from them.
//!
//! The CA's PEM is written to a file whose path the server prints, so clients
//! (swaks `--tls-ca-path`, curl `--cacert`, Python's `ssl.create_default_context(cafile=...)`)
//! can trust our certificates without turning verification off.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mailrig_core::fault::TlsFault;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

/// TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot build the TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("cannot write the CA certificate to {path}: {reason}")]
    WriteCa { path: String, reason: String },
}

/// The local CA and the server certificate it signed.
pub struct TlsMaterial {
    /// The CA certificate, PEM (what clients must trust).
    pub ca_pem: String,
    /// Where `ca_pem` was written, if it was.
    pub ca_path: Option<PathBuf>,
    /// The server certificate, PEM.
    pub server_cert_pem: String,
    /// The rustls configuration listeners use.
    pub config: Arc<ServerConfig>,
    /// Kept so fault injection can sign broken certificates (expired, wrong name).
    issuer: Arc<Issuer<'static, KeyPair>>,
    hostname: String,
    /// Broken configurations, made on first use: expired, wrong host, self-signed.
    broken: [std::sync::OnceLock<Arc<ServerConfig>>; 3],
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("ca_path", &self.ca_path)
            .finish_non_exhaustive()
    }
}

/// Validity of a certificate relative to now.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// From a day ago until a year from now.
    pub fn current() -> Validity {
        let now = OffsetDateTime::now_utc();
        Validity {
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(365),
        }
    }
}

impl TlsMaterial {
    /// Makes a new CA and a server certificate for `hostname` (plus `localhost`
    /// and `127.0.0.1`).
    pub fn generate(hostname: &str) -> Result<TlsMaterial, TlsError> {
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "mailrig local test CA");
        ca.distinguished_name
            .push(DnType::OrganizationName, "mailrig");
        ca.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let v = Validity::current();
        ca.not_before = v.not_before;
        ca.not_after = v.not_after + Duration::days(365);
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca.self_signed(&ca_key)?;
        let issuer = Arc::new(Issuer::new(ca, ca_key));
        let names = vec![hostname.to_string(), "localhost".to_string()];
        let (cert_pem, config) = sign_server(&issuer, &names, &[], v)?;
        Ok(TlsMaterial {
            ca_pem: ca_cert.pem(),
            ca_path: None,
            server_cert_pem: cert_pem,
            config,
            issuer,
            hostname: hostname.to_string(),
            broken: Default::default(),
        })
    }

    /// A certificate for another host of the world (`hostname` and its own
    /// loopback address), signed by this same CA: one CA file trusts them all.
    pub fn for_host(
        &self,
        hostname: &str,
        address: std::net::IpAddr,
    ) -> Result<TlsMaterial, TlsError> {
        let names = vec![hostname.to_string()];
        let (cert_pem, config) =
            sign_server(&self.issuer, &names, &[address], Validity::current())?;
        Ok(TlsMaterial {
            ca_pem: self.ca_pem.clone(),
            ca_path: self.ca_path.clone(),
            server_cert_pem: cert_pem,
            config,
            issuer: Arc::clone(&self.issuer),
            hostname: hostname.to_string(),
            broken: Default::default(),
        })
    }

    /// The configuration a TLS fault calls for: an expired certificate, one for
    /// another host name, or a self-signed one not issued by our CA.
    pub fn broken(&self, kind: TlsFault) -> Result<Arc<ServerConfig>, TlsError> {
        let slot = match kind {
            TlsFault::Expired => 0,
            TlsFault::WrongHost => 1,
            TlsFault::SelfSigned => 2,
            TlsFault::NotOffered | TlsFault::HandshakeFails => return Ok(Arc::clone(&self.config)),
        };
        if let Some(c) = self.broken[slot].get() {
            return Ok(Arc::clone(c));
        }
        let names = vec![self.hostname.clone(), "localhost".to_string()];
        let config = match kind {
            TlsFault::Expired => {
                let now = OffsetDateTime::now_utc();
                let v = Validity {
                    not_before: now - Duration::days(30),
                    not_after: now - Duration::days(1),
                };
                sign_server(&self.issuer, &names, &[], v)?.1
            }
            TlsFault::WrongHost => {
                sign_server(
                    &self.issuer,
                    &["wrong-host.invalid".to_string()],
                    &[],
                    Validity::current(),
                )?
                .1
            }
            _ => {
                let mut ca = CertificateParams::new(Vec::<String>::new())?;
                ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                ca.distinguished_name
                    .push(DnType::CommonName, "self-signed, not the mailrig CA");
                ca.key_usages = vec![
                    KeyUsagePurpose::KeyCertSign,
                    KeyUsagePurpose::DigitalSignature,
                ];
                let key = KeyPair::generate()?;
                let issuer = Issuer::new(ca, key);
                sign_server(&issuer, &names, &[], Validity::current())?.1
            }
        };
        let _ = self.broken[slot].set(Arc::clone(&config));
        Ok(config)
    }

    /// Writes the CA PEM to `path` and remembers where.
    pub fn write_ca(&mut self, path: &Path) -> Result<(), TlsError> {
        std::fs::write(path, &self.ca_pem).map_err(|e| TlsError::WriteCa {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        self.ca_path = Some(path.to_path_buf());
        Ok(())
    }

    /// A server configuration with a certificate for other names or another
    /// validity period, signed by the same CA (used by TLS fault rules).
    pub fn config_for(
        &self,
        names: &[String],
        validity: Validity,
    ) -> Result<Arc<ServerConfig>, TlsError> {
        Ok(sign_server(&self.issuer, names, &[], validity)?.1)
    }
}

fn sign_server(
    issuer: &Issuer<'static, KeyPair>,
    names: &[String],
    ips: &[std::net::IpAddr],
    v: Validity,
) -> Result<(String, Arc<ServerConfig>), TlsError> {
    let mut params = CertificateParams::new(names.to_vec())?;
    for ip in ips {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    // 127.0.0.1 goes with `localhost`: a certificate for another host (the
    // wrong-host fault) must not verify for clients that connect by address.
    if names.iter().any(|n| n == "localhost") {
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    }
    if let Some(first) = names.first() {
        params
            .distinguished_name
            .push(DnType::CommonName, first.as_str());
    }
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = v.not_before;
    params.not_after = v.not_after;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    let der: CertificateDer<'static> = cert.der().clone();
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![der], key_der)?;
    Ok((cert.pem(), Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_ca_and_server_cert() {
        let t = TlsMaterial::generate("mx.example.test").unwrap();
        assert!(t.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(t.server_cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let dir = tempfile::tempdir().unwrap();
        let mut t = t;
        t.write_ca(&dir.path().join("ca.pem")).unwrap();
        assert!(dir.path().join("ca.pem").exists());
    }
}
