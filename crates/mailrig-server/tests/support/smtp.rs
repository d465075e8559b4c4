//! A raw SMTP client for tests: send exact bytes, read replies, assert codes.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

pub struct Raw {
    pub reader: BufReader<OwnedReadHalf>,
    pub writer: OwnedWriteHalf,
}

/// One reply: its code and all its lines joined with '\n'.
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Raw {
        let s = TcpStream::connect(addr).await.expect("connect");
        let (r, w) = s.into_split();
        Raw {
            reader: BufReader::new(r),
            writer: w,
        }
    }

    /// Connects and reads the greeting (asserting 220).
    pub async fn greeted(addr: SocketAddr) -> Raw {
        let mut c = Raw::connect(addr).await;
        c.expect(220).await;
        c
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("write");
    }

    /// Reads one (possibly multi-line) reply; panics after 10 s.
    pub async fn reply(&mut self) -> Reply {
        tokio::time::timeout(Duration::from_secs(10), self.reply_inner())
            .await
            .expect("timed out waiting for a reply")
            .expect("connection closed before a reply")
    }

    /// Reads one reply or `None` if the connection closed.
    pub async fn try_reply(&mut self) -> Option<Reply> {
        tokio::time::timeout(Duration::from_secs(10), self.reply_inner())
            .await
            .expect("timed out waiting for a reply")
    }

    async fn reply_inner(&mut self) -> Option<Reply> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).await.ok()?;
            if n == 0 {
                return None;
            }
            let line = line.trim_end_matches(['\r', '\n']).to_string();
            let done = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if done {
                break;
            }
        }
        let code = lines[0].get(..3)?.parse().ok()?;
        Some(Reply {
            code,
            text: lines.join("\n"),
        })
    }

    /// Reads a reply and asserts its code; returns the text.
    pub async fn expect(&mut self, code: u16) -> String {
        let r = self.reply().await;
        assert_eq!(r.code, code, "unexpected reply: {}", r.text);
        r.text
    }

    /// Sends a line (CRLF added) and asserts the reply code.
    pub async fn cmd(&mut self, line: &str, code: u16) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.expect(code).await
    }

    /// EHLO, MAIL, RCPTs, DATA, body, '.', asserting 250 at the end.
    pub async fn send_mail(&mut self, from: &str, to: &[&str], body: &str) -> String {
        self.cmd(&format!("MAIL FROM:<{from}>"), 250).await;
        for t in to {
            self.cmd(&format!("RCPT TO:<{t}>"), 250).await;
        }
        self.cmd("DATA", 354).await;
        self.send(body.as_bytes()).await;
        self.send(b"\r\n.\r\n").await;
        self.expect(250).await
    }

    /// Whether the server closed the connection (reads until EOF, 10 s max).
    pub async fn closed(&mut self) -> bool {
        let mut buf = String::new();
        matches!(
            tokio::time::timeout(Duration::from_secs(10), self.reader.read_line(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}
