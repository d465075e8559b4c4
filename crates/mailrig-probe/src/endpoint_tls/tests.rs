use std::sync::Arc;

use mailrig_server::MockServer;
use mailrig_server::tls::{TlsMaterial, Validity};

use super::*;
use crate::target::TlsTrust;

fn ctx(ca_pem: &str) -> TlsContext {
    TlsContext::new(&TlsTrust {
        ca_pem: Some(ca_pem.to_string()),
        insecure: false,
    })
    .unwrap()
}

/// A server on 127.0.0.1 that shakes hands with `config` and hangs up.
async fn tls_server(config: Arc<rustls::ServerConfig>) -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let a = acceptor.clone();
            tokio::spawn(async move {
                let _ = a.accept(tcp).await;
            });
        }
    });
    port
}

fn ep(protocol: &'static str, port: u16, mode: TlsMode) -> Endpoint {
    Endpoint {
        protocol,
        host: "127.0.0.1".into(),
        port,
        mode,
    }
}

const LIMIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_certificate_expiring_in_two_days_warns_and_a_wrong_name_is_told() {
    let m = TlsMaterial::generate("mx.patente.test").unwrap();
    let now = time::OffsetDateTime::now_utc();
    let soon = m
        .config_for(
            &["localhost".to_string()],
            Validity {
                not_before: now - time::Duration::days(1),
                not_after: now + time::Duration::days(2) + time::Duration::hours(1),
            },
        )
        .unwrap();
    let port = tls_server(soon).await;
    let r = inspect(
        &ep("IMAP", port, TlsMode::Tls),
        &ctx(&m.ca_pem),
        LIMIT,
        Some(14),
    )
    .await;
    assert_eq!(r.version.as_deref(), Some("TLSv1.3"), "{r:?}");
    assert_eq!(r.days_left, Some(2), "{r:?}");
    assert_eq!(r.name_matched, Some(true), "{r:?}");
    assert_eq!(r.verified, Some(true), "{r:?}");
    assert_eq!(r.subject.as_deref(), Some("CN=localhost"), "{r:?}");
    assert_eq!(
        r.warning.as_deref(),
        Some("the certificate expires in 2 day(s) (--warn-cert-days 14)")
    );
    assert!(r.is_trouble());
    assert!(
        r.line()
            .contains("WARNING: the certificate expires in 2 day(s)"),
        "{}",
        r.line()
    );
    // Without --warn-cert-days, two days left is no warning.
    let r = inspect(
        &ep("IMAP", port, TlsMode::Tls),
        &ctx(&m.ca_pem),
        LIMIT,
        None,
    )
    .await;
    assert_eq!(r.warning, None);

    let wrong = m
        .config_for(&["wrong-host.invalid".to_string()], Validity::current())
        .unwrap();
    let port = tls_server(wrong).await;
    let r = inspect(
        &ep("POP3", port, TlsMode::Tls),
        &ctx(&m.ca_pem),
        LIMIT,
        Some(14),
    )
    .await;
    assert_eq!(r.name_matched, Some(false), "{r:?}");
    assert_eq!(r.verified, Some(false), "{r:?}");
    assert!(
        r.problem
            .as_deref()
            .unwrap_or_default()
            .contains("not valid for name"),
        "{r:?}"
    );
    assert_eq!(r.warning, None, "{r:?}");
    assert!(r.line().contains("NAME DOES NOT MATCH"), "{}", r.line());

    // Another CA's certificate does not verify.
    let other = TlsMaterial::generate("x.test").unwrap();
    let r = inspect(
        &ep("POP3", port, TlsMode::Tls),
        &ctx(&other.ca_pem),
        LIMIT,
        None,
    )
    .await;
    assert_eq!(r.verified, Some(false), "{r:?}");
}

#[tokio::test]
async fn starttls_of_smtp_imap_and_pop3_reaches_the_handshake() {
    let server = MockServer::builder().start().await.unwrap();
    let c = ctx(server.ca_pem());
    for (protocol, addr) in [
        ("SMTP", server.smtp_addr()),
        ("IMAP", server.imap_addr()),
        ("POP3", server.pop3_addr()),
    ] {
        let r = inspect(
            &ep(protocol, addr.port(), TlsMode::Starttls),
            &c,
            LIMIT,
            Some(14),
        )
        .await;
        assert_eq!(r.version.as_deref(), Some("TLSv1.3"), "{protocol}: {r:?}");
        assert_eq!(r.verified, Some(true), "{protocol}: {r:?}");
        assert_eq!(r.name_matched, Some(true), "{protocol}: {r:?}");
        assert!(r.days_left.unwrap_or(0) > 300, "{protocol}: {r:?}");
        assert!(r.endpoint.ends_with("(starttls)"), "{r:?}");
    }
    // Nothing listening: a clear problem, no handshake.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = inspect(&ep("IMAP", free, TlsMode::Tls), &c, LIMIT, None).await;
    assert_eq!(r.version, None);
    assert!(
        r.problem
            .as_deref()
            .unwrap_or_default()
            .starts_with("cannot connect"),
        "{r:?}"
    );
    assert!(r.is_trouble());
}
