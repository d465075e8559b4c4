//! A raw POP3 client for tests (plain or TLS): send exact bytes, read exact
//! response lines and multi-line bodies; plus helpers to fill mailboxes.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use mailrig_core::NewMessage;
use mailrig_core::store::Flags;
use mailrig_server::MockServer;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub struct Pop {
    pub io: BufReader<Box<dyn Io>>,
}

impl Pop {
    pub async fn connect(addr: SocketAddr) -> Pop {
        let s = TcpStream::connect(addr).await.expect("connect");
        Pop {
            io: BufReader::new(Box::new(s)),
        }
    }

    /// Connects and reads the greeting (asserting +OK).
    pub async fn greeted(addr: SocketAddr) -> Pop {
        let mut c = Pop::connect(addr).await;
        let g = c.line().await;
        assert!(g.starts_with("+OK "), "{g}");
        c
    }

    /// Connects, logs in and returns the client and the PASS response.
    pub async fn login(addr: SocketAddr, user: &str) -> (Pop, String) {
        let mut c = Pop::greeted(addr).await;
        assert_eq!(c.cmd(&format!("USER {user}")).await, "+OK send PASS");
        let r = c.cmd("PASS secret").await;
        assert!(r.starts_with("+OK maildrop has "), "{r}");
        (c, r)
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.io.get_mut().write_all(bytes).await.expect("write");
        self.io.get_mut().flush().await.expect("flush");
    }

    /// Reads one line without its CRLF; panics after 10 s or at EOF.
    pub async fn line(&mut self) -> String {
        self.try_line()
            .await
            .expect("connection closed before a response")
    }

    /// Reads one line without its CRLF, `None` at EOF; asserts the CRLF.
    pub async fn try_line(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(10), self.io.read_until(b'\n', &mut buf))
            .await
            .expect("timed out waiting for a response")
            .ok()?;
        if n == 0 {
            return None;
        }
        assert!(buf.ends_with(b"\r\n"), "line without CRLF: {buf:?}");
        buf.truncate(buf.len() - 2);
        Some(String::from_utf8(buf).expect("UTF-8 response"))
    }

    /// Sends a line (CRLF added) and returns the one-line response.
    pub async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.line().await
    }

    /// Reads a multi-line body up to and including the ".\r\n" terminator;
    /// returns it raw (still dot-stuffed, CRLFs kept, terminator included).
    pub async fn body(&mut self) -> String {
        let mut all = String::new();
        loop {
            let l = self.line().await;
            all.push_str(&l);
            all.push_str("\r\n");
            if l == "." {
                return all;
            }
        }
    }

    /// Sends a command expecting a multi-line answer: (first line, raw body).
    pub async fn multi(&mut self, line: &str) -> (String, String) {
        let first = self.cmd(line).await;
        assert!(first.starts_with("+OK"), "{line}: {first}");
        let body = self.body().await;
        (first, body)
    }

    /// Whether the server closed the connection (reads until EOF, 10 s max).
    pub async fn closed(&mut self) -> bool {
        let mut buf = Vec::new();
        matches!(
            tokio::time::timeout(Duration::from_secs(10), self.io.read_until(b'\n', &mut buf))
                .await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    /// Sends STLS, expects +OK and runs a TLS handshake trusting `ca`.
    pub async fn stls(self, ca: &Path) -> Pop {
        let mut c = self;
        assert_eq!(c.cmd("STLS").await, "+OK Begin TLS negotiation");
        c.into_tls(ca).await
    }

    async fn into_tls(self, ca: &Path) -> Pop {
        assert!(self.io.buffer().is_empty(), "bytes after the STLS response");
        let inner = self.io.into_inner();
        let connector = tls_connector(ca);
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = connector.connect(name, inner).await.expect("TLS handshake");
        Pop {
            io: BufReader::new(Box::new(tls)),
        }
    }
}

/// Stores a message straight into a mailbox's INBOX (no SMTP headers added).
pub fn put(server: &MockServer, address: &str, raw: &str) -> u32 {
    let id = server.world().mailbox_by_address(address).expect("mailbox");
    server
        .store()
        .deliver(
            id,
            NewMessage {
                raw: Bytes::from(raw.to_string()),
                envelope: None,
                flags: Flags::default(),
                internal_date: chrono::Utc::now(),
            },
        )
        .expect("deliver")
}

/// The UIDVALIDITY of a mailbox's INBOX.
pub fn uid_validity(server: &MockServer, address: &str) -> u32 {
    let id = server.world().mailbox_by_address(address).expect("mailbox");
    server
        .store()
        .mailbox(id)
        .with_folder("INBOX", |f| f.uid_validity)
        .unwrap()
}

/// A TLS client config trusting the CA in the PEM file `ca`.
pub fn tls_connector(ca: &Path) -> tokio_rustls::TlsConnector {
    super::tls_connector_for(&std::fs::read(ca).expect("read CA"))
}
