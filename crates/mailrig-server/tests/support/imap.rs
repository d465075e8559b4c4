//! Shared helpers of the IMAP integration tests: a raw-bytes client in the
//! mini-redis style (send exact bytes, read exact responses, literals included)
//! and message fixtures delivered straight into the store.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use chrono::{TimeZone, Utc};
use mailrig_core::store::{Flags, INBOX, NewMessage};
use mailrig_server::MockServer;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub const ALICE: &str = "alice@example.test";
pub const BOB: &str = "bob@example.test";
pub const PASSWORD: &str = "secret";
const TIMEOUT: Duration = Duration::from_secs(10);

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A raw IMAP client over any byte stream.
pub struct Client {
    io: BufReader<Box<dyn Io>>,
    pub greeting: String,
}

impl Client {
    /// Connects and reads the greeting.
    pub async fn connect(addr: SocketAddr) -> Client {
        let tcp = TcpStream::connect(addr).await.expect("connect to IMAP");
        let mut c = Client::over(Box::new(tcp));
        c.greeting = c.line().await;
        c
    }

    pub fn over(io: Box<dyn Io>) -> Client {
        Client {
            io: BufReader::new(io),
            greeting: String::new(),
        }
    }

    pub fn into_inner(self) -> Box<dyn Io> {
        self.io.into_inner()
    }

    /// Connects and logs in as `user`.
    pub async fn login(addr: SocketAddr, user: &str) -> Client {
        let mut c = Client::connect(addr).await;
        let r = c.cmd(&format!("L1 LOGIN {user} {PASSWORD}")).await;
        assert!(r.contains("L1 OK"), "login failed: {r}");
        c
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.io.get_mut().write_all(bytes).await.expect("write");
        self.io.get_mut().flush().await.expect("flush");
    }

    /// One response line with any literals it announces, CRLF included.
    /// Returns "" at end of stream.
    pub async fn line(&mut self) -> String {
        let mut out = Vec::new();
        loop {
            let mut buf = Vec::new();
            let n = tokio::time::timeout(TIMEOUT, self.io.read_until(b'\n', &mut buf))
                .await
                .expect("timed out waiting for a response line")
                .expect("read");
            out.extend_from_slice(&buf);
            if n == 0 {
                break;
            }
            // A literal at the end of the line: read its bytes, then the rest of the line.
            let trimmed = buf.strip_suffix(b"\r\n").unwrap_or(&buf);
            if let Some(stripped) = trimmed.strip_suffix(b"}")
                && let Some(open) = stripped.iter().rposition(|&b| b == b'{')
                && let Ok(n) = std::str::from_utf8(&stripped[open + 1..])
                    .unwrap_or("x")
                    .parse::<usize>()
            {
                let mut lit = vec![0u8; n];
                tokio::time::timeout(TIMEOUT, self.io.read_exact(&mut lit))
                    .await
                    .expect("timed out reading a literal")
                    .expect("read literal");
                out.extend_from_slice(&lit);
                continue;
            }
            break;
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Reads lines until the tagged response of `tag`; returns them all.
    pub async fn until_tag(&mut self, tag: &str) -> String {
        let mut all = String::new();
        let prefix = format!("{tag} ");
        loop {
            let l = self.line().await;
            if l.is_empty() {
                panic!("connection closed before the response to {tag}; got so far:\n{all}");
            }
            all.push_str(&l);
            if l.starts_with(&prefix) {
                return all;
            }
        }
    }

    /// Sends `TAG COMMAND\r\n` and returns everything up to the tagged response.
    pub async fn cmd(&mut self, line: &str) -> String {
        let tag = line.split(' ').next().unwrap_or("").to_string();
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.until_tag(&tag).await
    }

    /// Reads until the peer closes; returns what came.
    pub async fn rest(&mut self) -> String {
        let mut v = Vec::new();
        let _ = tokio::time::timeout(TIMEOUT, self.io.read_to_end(&mut v)).await;
        String::from_utf8_lossy(&v).into_owned()
    }
}

/// A small RFC 5322 message.
pub fn message(from: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: Alice <alice@example.test>\r\nSubject: {subject}\r\nDate: Mon, 4 Mar 2024 10:00:00 +0000\r\nMessage-ID: <{}@mailrig.test>\r\n\r\n{body}\r\n",
        subject.len() + body.len()
    )
    .into_bytes()
}

/// Delivers raw bytes into a user's INBOX; returns the UID.
pub fn deliver(server: &MockServer, user: &str, raw: &[u8]) -> u32 {
    deliver_dated(
        server,
        user,
        raw,
        Utc.with_ymd_and_hms(2024, 3, 4, 10, 0, 0)
            .single()
            .expect("date"),
    )
}

pub fn deliver_dated(
    server: &MockServer,
    user: &str,
    raw: &[u8],
    date: chrono::DateTime<Utc>,
) -> u32 {
    let id = server.world().mailbox_by_address(user).expect("mailbox");
    let msg = NewMessage {
        raw: Bytes::copy_from_slice(raw),
        envelope: None,
        flags: Flags::default(),
        internal_date: date,
    };
    server
        .store()
        .mailbox(id)
        .append(INBOX, msg)
        .expect("append")
        .1
}

pub async fn start() -> MockServer {
    MockServer::builder()
        .pop3(None)
        .start()
        .await
        .expect("start mock server")
}

pub async fn start_with(toml: &str) -> MockServer {
    MockServer::builder()
        .pop3(None)
        .scenario_toml(toml)
        .expect("scenario")
        .start()
        .await
        .expect("start mock server")
}

/// A scenario with one domain, alice and bob, plus extra TOML sections.
pub fn scenario(extra: &str) -> String {
    format!(
        "{extra}\n[[domain]]\nname = \"example.test\"\nmailboxes = [\"alice\", \"bob\"]\npassword = \"secret\"\n"
    )
}

/// Responses without the variable tail of `UIDVALIDITY`/`APPENDUID`/dates.
pub fn lines(s: &str) -> Vec<&str> {
    s.split("\r\n").filter(|l| !l.is_empty()).collect()
}

/// A TLS client config trusting the server's CA.
pub fn tls_connector(server: &MockServer) -> tokio_rustls::TlsConnector {
    super::tls_connector_for(server.ca_pem().as_bytes())
}
