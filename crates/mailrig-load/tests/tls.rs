//! TLS end to end: smtps:// and STARTTLS (+ AUTH) against a small in-test server with certificates from a
//! throwaway CA, trusted through `--tls-ca` or skipped with `--tls-insecure`; a wrong CA counts as `tls`.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use mailrig_load::{Credentials, ErrorKind, LoadConfig, RecipientPool, Stage, Target};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

struct Pki {
    ca_pem: String,
    acceptor: TlsAcceptor,
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "mailrig-load test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    Pki {
        ca_pem: ca.pem(),
        acceptor: TlsAcceptor::from(Arc::new(config)),
    }
}

enum End<S> {
    Closed,
    StartTls(S),
}

/// A tiny SMTP server loop over any stream. Offers STARTTLS when `offer_starttls`, AUTH PLAIN for u/p.
async fn smtp<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    greet: bool,
    offer_starttls: bool,
) -> End<S> {
    let mut s = BufReader::new(stream);
    if greet
        && s.get_mut()
            .write_all(b"220 tls-test ESMTP\r\n")
            .await
            .is_err()
    {
        return End::Closed;
    }
    let mut line = String::new();
    let mut in_data = false;
    loop {
        line.clear();
        match s.read_line(&mut line).await {
            Ok(0) | Err(_) => return End::Closed,
            Ok(_) => {}
        }
        let l = line.trim_end();
        let reply: String = if in_data {
            if l == "." {
                in_data = false;
                "250 ok\r\n".into()
            } else {
                continue;
            }
        } else if l.starts_with("EHLO") {
            let tls = if offer_starttls {
                "250-STARTTLS\r\n"
            } else {
                ""
            };
            format!("250-tls-test\r\n250-PIPELINING\r\n{tls}250 AUTH PLAIN\r\n")
        } else if l == "STARTTLS" {
            let _ = s.get_mut().write_all(b"220 go ahead\r\n").await;
            return End::StartTls(s.into_inner());
        } else if let Some(token) = l.strip_prefix("AUTH PLAIN ") {
            // base64("\0u\0p")
            if token == "AHUAcA==" {
                "235 ok\r\n".into()
            } else {
                "535 no\r\n".into()
            }
        } else if l.starts_with("MAIL") || l.starts_with("RCPT") || l == "RSET" {
            "250 ok\r\n".into()
        } else if l == "DATA" {
            in_data = true;
            "354 go\r\n".into()
        } else if l == "QUIT" {
            let _ = s.get_mut().write_all(b"221 bye\r\n").await;
            return End::Closed;
        } else {
            "502 what\r\n".into()
        };
        if s.get_mut().write_all(reply.as_bytes()).await.is_err() {
            return End::Closed;
        }
    }
}

/// Serves smtps:// (`implicit`) or STARTTLS on a free port; returns the port.
async fn server(acceptor: TlsAcceptor, implicit: bool, offer_starttls: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if implicit {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        smtp(tls, true, false).await;
                    }
                } else if let End::StartTls(tcp) = smtp(tcp, true, offer_starttls).await
                    && let Ok(tls) = acceptor.accept(tcp).await
                {
                    smtp(tls, false, false).await;
                }
            });
        }
    });
    port
}

fn config(url: &str) -> LoadConfig {
    let pool = RecipientPool::from_addresses(vec!["a@localhost".into()]).unwrap();
    let mut c = LoadConfig::new(Target::parse(url).unwrap(), pool);
    c.messages = Some(20);
    c.sessions = 2;
    c.timeout = Duration::from_secs(10);
    c.tls.server_name = Some("localhost".into());
    c
}

fn ca_file(pem: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(pem.as_bytes()).unwrap();
    f
}

#[tokio::test]
async fn smtps_with_a_ca_file() {
    let pki = pki();
    let port = server(pki.acceptor.clone(), true, false).await;
    let ca = ca_file(&pki.ca_pem);
    let mut c = config(&format!("smtps://127.0.0.1:{port}"));
    c.tls.ca_file = Some(ca.path().to_path_buf());
    let r = mailrig_load::run(c, std::future::pending::<()>())
        .await
        .unwrap();
    assert_eq!(r.counts.accepted, 20, "{}", r.to_table());
    assert_eq!(r.latency[&Stage::TlsHandshake].count, 2);
}

#[tokio::test]
async fn starttls_and_auth_insecure() {
    let pki = pki();
    let port = server(pki.acceptor.clone(), false, true).await;
    let mut c = config(&format!("smtp://127.0.0.1:{port}"));
    c.starttls = true;
    c.tls.insecure = true;
    c.auth = Some(Credentials {
        user: "u".into(),
        password: "p".into(),
    });
    let r = mailrig_load::run(c, std::future::pending::<()>())
        .await
        .unwrap();
    assert_eq!(r.counts.accepted, 20, "{}", r.to_table());
    assert_eq!(r.latency[&Stage::StartTls].count, 2);
    assert_eq!(r.latency[&Stage::Auth].count, 2);
    assert_eq!(
        r.latency[&Stage::Ehlo].count,
        4,
        "EHLO again after STARTTLS"
    );
}

#[tokio::test]
async fn wrong_password_is_rejected_with_its_code() {
    let pki = pki();
    let port = server(pki.acceptor.clone(), false, true).await;
    let mut c = config(&format!("smtp://127.0.0.1:{port}"));
    c.starttls = true;
    c.tls.insecure = true;
    c.messages = Some(3);
    c.auth = Some(Credentials {
        user: "u".into(),
        password: "wrong".into(),
    });
    let r = mailrig_load::run(c, std::future::pending::<()>())
        .await
        .unwrap();
    assert_eq!(r.errors.by_stage_code["auth 535"], 3, "{}", r.to_table());
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_tls_error() {
    let pki = pki();
    let port = server(pki.acceptor.clone(), true, false).await;
    let other_ca = ca_file(&pki_other_ca());
    let mut c = config(&format!("smtps://127.0.0.1:{port}"));
    c.messages = Some(3);
    c.tls.ca_file = Some(other_ca.path().to_path_buf());
    let r = mailrig_load::run(c, std::future::pending::<()>())
        .await
        .unwrap();
    assert_eq!(r.errors.by_kind[&ErrorKind::Tls], 3, "{}", r.to_table());
}

#[tokio::test]
async fn starttls_not_offered_is_a_tls_error() {
    let pki = pki();
    let port = server(pki.acceptor.clone(), false, false).await;
    let mut c = config(&format!("smtp://127.0.0.1:{port}"));
    c.messages = Some(2);
    c.starttls = true;
    c.tls.insecure = true;
    let r = mailrig_load::run(c, std::future::pending::<()>())
        .await
        .unwrap();
    assert_eq!(r.errors.by_kind[&ErrorKind::Tls], 2, "{}", r.to_table());
}

fn pki_other_ca() -> String {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(DnType::CommonName, "someone else");
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap())
        .unwrap()
        .pem()
}
