//! Reading mailboxes back: one session type per protocol (IMAP on imap-next,
//! POP3 a small client of our own) behind one [`Session`] with the four
//! things the prober needs — open and log in, scan for this run's messages,
//! wait for a change, delete its own messages.
//!
//! A scan reports every message that carries the run id, whoever's token it
//! has: a mailbox holding another mailbox's probe is how `misrouted` is found.
//! INBOX is scanned every round; the other folders of an IMAP mailbox (LIST,
//! without the virtual `\All` and `\Flagged` ones) once, in the last round:
//! a probe there is how `misfiled` is found. POP3 has no folders.
//! Results are cached per message key (IMAP UID, POP3 UIDL) so a message is
//! fetched once however many rounds the probe lasts.

pub(crate) mod imap;
pub(crate) mod pop3;

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::message::{RunId, SeenHeaders};
use crate::target::{MailboxTarget, ReadProtocol};
use crate::tls::TlsContext;

/// A run-tagged message found in a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FoundMessage {
    /// The folder it is in (`INBOX` for POP3).
    pub folder: String,
    /// IMAP UID or POP3 UIDL within its folder: what [`Session::delete`] takes.
    pub key: String,
    pub token: String,
    pub headers: SeenHeaders,
    pub body_hash: String,
}

impl FoundMessage {
    /// Whether the prober may delete this message: its own `X-Mailrig-Probe`
    /// header carries this run's token. A message that matched only by
    /// subject or Message-ID (a reply, a forward, someone's note quoting the
    /// token) is never the prober's to delete.
    pub fn is_own_probe(&self) -> bool {
        self.headers
            .probe
            .as_deref()
            .is_some_and(|p| p.trim() == self.token)
    }
}

/// Per-mailbox memory of what was already fetched: key → the probe message
/// it holds, or `None` for a message that is not this run's.
pub(crate) type ScanCache = HashMap<String, Option<FoundMessage>>;

/// Why a mailbox could not be read (the prober's reader and [`crate::imap_reader`] alike).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// TCP connect failed or timed out: the server is not there.
    #[error("cannot connect to {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },
    /// TLS handshake failed (certificate, protocol).
    #[error("TLS with {endpoint} failed: {reason}")]
    Tls { endpoint: String, reason: String },
    /// The server refused the login.
    #[error("{protocol} login as {user} refused: {reason}")]
    Login {
        protocol: ReadProtocol,
        user: String,
        reason: String,
    },
    /// Anything else the server did that we could not work with.
    #[error("{0}")]
    Protocol(String),
}

/// A byte stream: plain TCP or TLS over it.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// TCP connect with a time limit.
pub(crate) async fn connect_tcp(
    host: &str,
    port: u16,
    limit: Duration,
) -> Result<TcpStream, String> {
    match tokio::time::timeout(limit, TcpStream::connect((host, port))).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", limit.as_secs_f64())),
    }
}

/// TLS handshake over an open TCP stream.
pub(crate) async fn tls_handshake(
    tls: &TlsContext,
    host: &str,
    tcp: TcpStream,
    limit: Duration,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let name = TlsContext::server_name(host)?;
    let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
    match tokio::time::timeout(limit, connector.connect(name, tcp)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no TLS handshake within {} s", limit.as_secs_f64())),
    }
}

/// An open, logged-in mailbox.
pub(crate) enum Session {
    Imap(Box<imap::ImapSession>),
    Pop3(Box<pop3::Pop3Session>),
}

impl Session {
    /// Connects and logs in (and selects INBOX for IMAP).
    pub async fn open(
        mb: &MailboxTarget,
        tls: &TlsContext,
        limit: Duration,
    ) -> Result<Session, ReadError> {
        Ok(match mb.read.protocol {
            ReadProtocol::Imap => {
                Session::Imap(Box::new(imap::ImapSession::open(mb, tls, limit).await?))
            }
            ReadProtocol::Pop3 => {
                Session::Pop3(Box::new(pop3::Pop3Session::open(mb, tls, limit).await?))
            }
        })
    }

    /// Every message of `run` in the mailbox now.
    pub async fn scan(
        &mut self,
        run: &RunId,
        cache: &mut ScanCache,
    ) -> Result<Vec<FoundMessage>, ReadError> {
        match self {
            Session::Imap(s) => {
                s.select("INBOX").await?;
                s.scan(run, cache).await
            }
            Session::Pop3(s) => s.scan(run, cache).await,
        }
    }

    /// Whether new mail shows up in this session without logging in again
    /// (IMAP: yes; POP3: a session sees the maildrop as it was at login).
    pub fn sees_new_mail(&self) -> bool {
        matches!(self, Session::Imap(_))
    }

    /// Whether [`Session::wait_for_change`] can be woken by the server (IMAP IDLE).
    pub fn can_idle(&self) -> bool {
        match self {
            Session::Imap(s) => s.can_idle(),
            Session::Pop3(_) => false,
        }
    }

    /// Waits in IDLE until the mailbox changes, `max` passes or `stop` fires.
    pub async fn wait_for_change(
        &mut self,
        max: Duration,
        stop: &CancellationToken,
    ) -> Result<(), ReadError> {
        match self {
            Session::Imap(s) => s.idle(max, stop).await,
            Session::Pop3(_) => {
                tokio::select! {
                    _ = tokio::time::sleep(max) => {}
                    _ = stop.cancelled() => {}
                }
                Ok(())
            }
        }
    }

    /// This run's messages in every folder but INBOX (IMAP; POP3 has none).
    /// `caches` holds one [`ScanCache`] per folder.
    pub async fn scan_other_folders(
        &mut self,
        run: &RunId,
        caches: &mut HashMap<String, ScanCache>,
    ) -> Result<Vec<FoundMessage>, ReadError> {
        match self {
            Session::Imap(s) => s.scan_other_folders(run, caches).await,
            Session::Pop3(_) => Ok(Vec::new()),
        }
    }

    /// Deletes these messages (from [`Session::scan`] or
    /// [`Session::scan_other_folders`]) and nothing else. Returns how many
    /// were deleted, and a note when the deletion could not be completed
    /// without touching other mail.
    pub async fn delete(
        &mut self,
        found: &[FoundMessage],
    ) -> Result<(usize, Option<String>), ReadError> {
        match self {
            Session::Imap(s) => {
                let mut folders: Vec<&str> = found.iter().map(|f| f.folder.as_str()).collect();
                folders.sort();
                folders.dedup();
                let (mut deleted, mut notes) = (0, Vec::new());
                for folder in folders {
                    let keys: Vec<String> = found
                        .iter()
                        .filter(|f| f.folder == folder)
                        .map(|f| f.key.clone())
                        .collect();
                    let (n, note) = s.delete_in(folder, &keys).await?;
                    deleted += n;
                    notes.extend(note.map(|n| format!("{folder}: {n}")));
                }
                Ok((deleted, (!notes.is_empty()).then(|| notes.join("; "))))
            }
            Session::Pop3(s) => {
                let keys: Vec<String> = found.iter().map(|f| f.key.clone()).collect();
                s.delete(&keys).await
            }
        }
    }

    /// Logs out (POP3: commits deletions).
    pub async fn close(self) -> Result<(), ReadError> {
        match self {
            Session::Imap(s) => s.logout().await,
            Session::Pop3(s) => s.quit().await,
        }
    }
}

/// Splits a raw message at the blank line.
pub(crate) fn split_message(raw: &[u8]) -> (&[u8], &[u8]) {
    for (i, w) in raw.windows(4).enumerate() {
        if w == b"\r\n\r\n" {
            return (&raw[..i + 2], &raw[i + 4..]);
        }
    }
    for (i, w) in raw.windows(2).enumerate() {
        if w == b"\n\n" {
            return (&raw[..i + 1], &raw[i + 2..]);
        }
    }
    (raw, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_message_at_blank_line() {
        assert_eq!(
            split_message(b"A: b\r\n\r\nbody\r\n"),
            (&b"A: b\r\n"[..], &b"body\r\n"[..])
        );
        assert_eq!(
            split_message(b"A: b\n\nbody\n"),
            (&b"A: b\n"[..], &b"body\n"[..])
        );
        assert_eq!(split_message(b"A: b\r\n"), (&b"A: b\r\n"[..], &b""[..]));
    }
}
