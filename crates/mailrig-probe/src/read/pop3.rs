//! A small POP3 client (RFC 1939, STLS from RFC 2595): USER/PASS, UIDL, TOP
//! for headers, RETR for the body of this run's messages, DELE, QUIT.
//!
//! POP3 shows the maildrop as it was at login, so the prober opens a new
//! session each round; UIDL keys let the per-mailbox cache skip messages
//! already looked at. A server without UIDL is read with message numbers
//! (no caching across sessions); one without TOP is read with RETR.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::{FoundMessage, Io, ReadError, ScanCache, connect_tcp, split_message, tls_handshake};
use crate::message::{RunId, SeenHeaders, body_hash};
use crate::target::{MailboxTarget, MasterStyle, ReadProtocol, TlsMode};
use crate::tls::TlsContext;

/// Largest multi-line response accepted (a probe is about 1 KB).
const MAX_RESPONSE: usize = 16 * 1024 * 1024;
/// Longest status line taken from the server (RFC 1939 allows 512 octets):
/// a peer that never ends its line gets an error, not our memory.
const MAX_STATUS_LINE: usize = 64 * 1024;

/// An open POP3 session; public as [`crate::Pop3Client`] for other readers
/// of maildrops (the collector of `mailrig-server`).
pub struct Pop3Session {
    conn: BufReader<Box<dyn Io>>,
    limit: Duration,
    has_uidl: bool,
}

impl Pop3Session {
    pub(crate) async fn open(
        mb: &MailboxTarget,
        tls: &TlsContext,
        limit: Duration,
    ) -> Result<Pop3Session, ReadError> {
        let ep = &mb.read;
        let endpoint = ep.to_string();
        let tcp = connect_tcp(&ep.host, ep.port, limit)
            .await
            .map_err(|reason| ReadError::Connect {
                endpoint: endpoint.clone(),
                reason,
            })?;
        let tls_err = |reason: String| ReadError::Tls {
            endpoint: endpoint.clone(),
            reason,
        };
        let io: Box<dyn Io> = match ep.tls {
            TlsMode::None => Box::new(tcp),
            TlsMode::Tls => Box::new(
                tls_handshake(tls, &ep.host, tcp, limit)
                    .await
                    .map_err(tls_err)?,
            ),
            TlsMode::Starttls => {
                let mut plain = Pop3Session {
                    conn: BufReader::new(Box::new(tcp) as Box<dyn Io>),
                    limit,
                    has_uidl: true,
                };
                plain.expect_ok("greeting").await?;
                plain
                    .command("STLS")
                    .await
                    .map_err(|e| tls_err(format!("STLS: {e}")))?;
                if !plain.conn.buffer().is_empty() {
                    return Err(tls_err("server sent data after STLS +OK".into()));
                }
                let inner = plain.conn.into_inner();
                Box::new(
                    tokio::time::timeout(
                        limit,
                        tokio_rustls::TlsConnector::from(tls.config.clone())
                            .connect(TlsContext::server_name(&ep.host).map_err(tls_err)?, inner),
                    )
                    .await
                    .map_err(|_| tls_err("no TLS handshake in time".into()))?
                    .map_err(|e| tls_err(e.to_string()))?,
                )
            }
        };
        let mut s = Pop3Session {
            conn: BufReader::new(io),
            limit,
            has_uidl: true,
        };
        if ep.tls != TlsMode::Starttls {
            s.expect_ok("greeting").await?;
        }
        // USER/PASS with the mailbox's password or as `user*master`; AUTH
        // PLAIN (RFC 5034, initial response) for an authzid master login.
        let (name, secret) = match &mb.master {
            None => (mb.user.clone(), mb.password.clone()),
            Some(m) if m.style == MasterStyle::Authzid => (
                format!("{} (authzid, as {})", m.user, mb.user),
                m.password.clone(),
            ),
            Some(m) => (m.login_name(&mb.user), m.password.clone()),
        };
        let login_err = |reason: String| ReadError::Login {
            protocol: ReadProtocol::Pop3,
            user: name.clone(),
            reason,
        };
        if mb.user.contains(['\r', '\n'])
            || name.contains(['\r', '\n'])
            || secret.contains(['\r', '\n'])
        {
            return Err(login_err(
                "user name or password contains a line break".into(),
            ));
        }
        match &mb.master {
            Some(m) if m.style == MasterStyle::Authzid => {
                use base64::Engine as _;
                let ir = base64::engine::general_purpose::STANDARD.encode(m.sasl_plain(&mb.user));
                s.command(&format!("AUTH PLAIN {ir}"))
                    .await
                    .map_err(login_err)?;
            }
            _ => {
                s.command(&format!("USER {name}"))
                    .await
                    .map_err(login_err)?;
                s.command(&format!("PASS {secret}"))
                    .await
                    .map_err(login_err)?;
            }
        }
        Ok(s)
    }

    /// Connects without TLS and logs in with USER/PASS (what a collector does
    /// against a host of a fake world).
    pub async fn connect_plain(
        addr: std::net::SocketAddr,
        user: &str,
        password: &str,
        limit: Duration,
    ) -> Result<Pop3Session, ReadError> {
        let endpoint = addr.to_string();
        let tcp = connect_tcp(&addr.ip().to_string(), addr.port(), limit)
            .await
            .map_err(|reason| ReadError::Connect { endpoint, reason })?;
        let mut s = Pop3Session {
            conn: BufReader::new(Box::new(tcp) as Box<dyn Io>),
            limit,
            has_uidl: true,
        };
        s.expect_ok("greeting").await?;
        let login_err = |reason: String| ReadError::Login {
            protocol: ReadProtocol::Pop3,
            user: user.to_string(),
            reason,
        };
        if user.contains(['\r', '\n']) || password.contains(['\r', '\n']) {
            return Err(login_err(
                "user name or password contains a line break".into(),
            ));
        }
        s.command(&format!("USER {user}"))
            .await
            .map_err(login_err)?;
        s.command(&format!("PASS {password}"))
            .await
            .map_err(login_err)?;
        Ok(s)
    }

    /// `(message number, UIDL)` of every message (`#N` keys without UIDL).
    pub async fn uidl_listing(&mut self) -> Result<Vec<(u32, String)>, ReadError> {
        self.listing().await
    }

    /// RETR: the whole message, dot-unstuffed, CRLF line ends.
    pub async fn retrieve(&mut self, n: u32) -> Result<Vec<u8>, ReadError> {
        self.multiline_command(&format!("RETR {n}"))
            .await?
            .ok_or_else(|| ReadError::Protocol(format!("POP3 RETR {n} refused")))
    }

    /// DELE by message number (committed only by QUIT).
    pub async fn dele(&mut self, n: u32) -> Result<(), ReadError> {
        self.command(&format!("DELE {n}"))
            .await
            .map(|_| ())
            .map_err(|e| ReadError::Protocol(format!("POP3 DELE {n}: {e}")))
    }

    async fn read_line(&mut self) -> Result<String, String> {
        let mut line = Vec::new();
        let n = tokio::time::timeout(self.limit, self.line_into(&mut line, MAX_STATUS_LINE))
            .await
            .map_err(|_| format!("no answer within {} s", self.limit.as_secs_f64()))?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".into());
        }
        if !line.ends_with(b"\n") && line.len() > MAX_STATUS_LINE {
            return Err(format!(
                "a status line of more than {MAX_STATUS_LINE} bytes"
            ));
        }
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    /// Reads a status line; `Err(text)` for `-ERR text` or a broken connection.
    async fn status(&mut self) -> Result<String, String> {
        let line = self.read_line().await?;
        if let Some(rest) = line.strip_prefix("+OK") {
            Ok(rest.trim().to_string())
        } else if let Some(rest) = line.strip_prefix("-ERR") {
            Err(rest.trim().to_string())
        } else {
            Err(format!("unexpected reply: {line}"))
        }
    }

    async fn expect_ok(&mut self, what: &str) -> Result<String, ReadError> {
        self.status()
            .await
            .map_err(|e| ReadError::Protocol(format!("POP3 {what}: {e}")))
    }

    async fn command(&mut self, line: &str) -> Result<String, String> {
        let write = async {
            self.conn
                .get_mut()
                .write_all(format!("{line}\r\n").as_bytes())
                .await?;
            self.conn.get_mut().flush().await
        };
        tokio::time::timeout(self.limit, write)
            .await
            .map_err(|_| "cannot send in time".to_string())?
            .map_err(|e| e.to_string())?;
        self.status().await
    }

    /// Reads up to and including the next LF, but at most `max` + 1 bytes.
    async fn line_into(&mut self, line: &mut Vec<u8>, max: usize) -> std::io::Result<usize> {
        use tokio::io::AsyncReadExt as _;
        (&mut self.conn)
            .take(max as u64 + 1)
            .read_until(b'\n', line)
            .await
    }

    /// The body of a multi-line response, dot-unstuffed, CRLF line ends.
    async fn multiline(&mut self) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        loop {
            let mut line = Vec::new();
            let n = tokio::time::timeout(self.limit, self.line_into(&mut line, MAX_RESPONSE))
                .await
                .map_err(|_| "multi-line answer stalled".to_string())?
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed in a multi-line answer".into());
            }
            if !line.ends_with(b"\n") && line.len() > MAX_RESPONSE {
                return Err("multi-line answer too large".into());
            }
            let trimmed = line.strip_suffix(b"\n").unwrap_or(&line);
            let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
            if trimmed == b"." {
                return Ok(out);
            }
            let content = trimmed.strip_prefix(b".").unwrap_or(trimmed);
            out.extend_from_slice(content);
            out.extend_from_slice(b"\r\n");
            if out.len() > MAX_RESPONSE {
                return Err("multi-line answer too large".into());
            }
        }
    }

    async fn multiline_command(&mut self, line: &str) -> Result<Option<Vec<u8>>, ReadError> {
        match self.command(line).await {
            Ok(_) => self
                .multiline()
                .await
                .map(Some)
                .map_err(|e| ReadError::Protocol(format!("POP3 {line}: {e}"))),
            Err(_) => Ok(None),
        }
    }

    /// `(message number, key)` of every message: UIDL, else LIST numbers.
    async fn listing(&mut self) -> Result<Vec<(u32, String)>, ReadError> {
        if self.has_uidl {
            if let Some(body) = self.multiline_command("UIDL").await? {
                return Ok(parse_listing(&body));
            }
            self.has_uidl = false;
        }
        let body = self
            .multiline_command("LIST")
            .await?
            .ok_or_else(|| ReadError::Protocol("POP3 LIST refused".into()))?;
        Ok(parse_listing(&body)
            .into_iter()
            .map(|(n, _)| (n, format!("#{n}")))
            .collect())
    }

    pub(crate) async fn scan(
        &mut self,
        run: &RunId,
        cache: &mut ScanCache,
    ) -> Result<Vec<FoundMessage>, ReadError> {
        let listing = self.listing().await?;
        let mut out = Vec::new();
        for (n, key) in listing {
            let cacheable = self.has_uidl;
            if cacheable && let Some(known) = cache.get(&key) {
                out.extend(known.clone());
                continue;
            }
            let header = self.multiline_command(&format!("TOP {n} 0")).await?;
            let looks_like_probe = header
                .as_ref()
                .map(|h| SeenHeaders::parse(split_message(h).0).token(run).is_some());
            let found = if looks_like_probe == Some(false) {
                None
            } else {
                let raw = self
                    .multiline_command(&format!("RETR {n}"))
                    .await?
                    .ok_or_else(|| ReadError::Protocol(format!("POP3 RETR {n} refused")))?;
                let (head, body) = split_message(&raw);
                let headers = SeenHeaders::parse(head);
                headers.token(run).map(|token| FoundMessage {
                    folder: "INBOX".to_string(),
                    key: key.clone(),
                    token,
                    headers,
                    body_hash: body_hash(body),
                })
            };
            if cacheable {
                cache.insert(key, found.clone());
            }
            out.extend(found);
        }
        Ok(out)
    }

    /// DELE for these keys (committed by QUIT in [`Pop3Session::quit`]).
    pub async fn delete(&mut self, keys: &[String]) -> Result<(usize, Option<String>), ReadError> {
        let listing = self.listing().await?;
        let mut deleted = 0;
        for (n, key) in listing {
            if keys.contains(&key) {
                self.command(&format!("DELE {n}"))
                    .await
                    .map_err(|e| ReadError::Protocol(format!("POP3 DELE {n}: {e}")))?;
                deleted += 1;
            }
        }
        Ok((deleted, None))
    }

    pub async fn quit(mut self) -> Result<(), ReadError> {
        self.command("QUIT")
            .await
            .map(|_| ())
            .map_err(|e| ReadError::Protocol(format!("POP3 QUIT: {e}")))
    }
}

/// Lines of `n value` (UIDL, LIST).
fn parse_listing(body: &[u8]) -> Vec<(u32, String)> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let n = it.next()?.parse().ok()?;
            Some((n, it.next().unwrap_or_default().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_lines() {
        assert_eq!(
            parse_listing(b"1 abc\r\n2 def\r\nbogus\r\n"),
            vec![(1, "abc".to_string()), (2, "def".to_string())]
        );
    }

    /// A server that sends a greeting without end: an error naming the
    /// line, after at most MAX_STATUS_LINE bytes, not a growing buffer.
    #[tokio::test]
    async fn a_status_line_without_end_is_an_error() {
        use tokio::io::AsyncWriteExt as _;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let chunk = vec![b'x'; 16 * 1024];
            let _ = s.write_all(b"+OK ").await;
            // Four times the limit, and then the line stays open.
            for _ in 0..16 {
                if s.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let e = Pop3Session::connect_plain(addr, "u", "p", Duration::from_secs(3))
            .await
            .err()
            .expect("an endless greeting is refused");
        assert!(e.to_string().contains("status line of more than"), "{e}");
        server.abort();
    }
}
