//! The prober's IMAP client as a small public API, for other tools that need to look into mailboxes —
//! `mailrig load --verify-imap` checks with it that the load run's accepted messages arrived.
//!
//! It is the same client the prober uses ([`crate::probe`]: imap-next underneath, LOGIN, SELECT INBOX,
//! plain / STARTTLS / TLS), with the few operations such a check needs: search by header, fetch headers,
//! NOOP, logout. One way to read IMAP in the workspace, not two.
//!
//! ```no_run
//! # async fn demo(mb: &mailrig_probe::MailboxTarget) -> Result<(), mailrig_probe::ReadError> {
//! use mailrig_probe::{TlsTrust, imap_reader::{ImapReader, ReaderTls}};
//! let tls = ReaderTls::new(&TlsTrust::default()).expect("trust store");
//! let mut reader = ImapReader::open(mb, &tls, std::time::Duration::from_secs(10)).await?;
//! let uids = match reader.search_header("X-Mailrig-Load", "run1").await? {
//!     Some(uids) => uids,
//!     None => reader.all_uids().await?, // the server cannot search headers
//! };
//! for (uid, header) in reader.fetch_headers(&uids).await? {
//!     println!("{uid}: {} header bytes", header.len());
//! }
//! reader.logout().await
//! # }
//! ```

use std::time::Duration;

use crate::read::ReadError;
use crate::read::imap::ImapSession;
use crate::target::{MailboxTarget, ReadProtocol, TlsTrust};
use crate::tls::{TlsContext, TrustError};

/// The trust decision for reader connections (public web roots plus an optional CA, or insecure), made
/// once and shared by every [`ImapReader`].
#[derive(Debug, Clone)]
pub struct ReaderTls(TlsContext);

impl ReaderTls {
    /// Builds the TLS client configuration.
    pub fn new(trust: &TlsTrust) -> Result<ReaderTls, TrustError> {
        TlsContext::new(trust).map(ReaderTls)
    }
}

/// A logged-in IMAP session with INBOX selected.
pub struct ImapReader {
    session: ImapSession,
}

impl ImapReader {
    /// Connects to `mailbox.read` (which must be IMAP), logs in as `mailbox.user` and selects INBOX.
    /// `limit` bounds the connect and each command.
    pub async fn open(
        mailbox: &MailboxTarget,
        tls: &ReaderTls,
        limit: Duration,
    ) -> Result<ImapReader, ReadError> {
        if mailbox.read.protocol != ReadProtocol::Imap {
            return Err(ReadError::Protocol(format!(
                "{} is read over {}, not IMAP",
                mailbox.address, mailbox.read.protocol
            )));
        }
        Ok(ImapReader {
            session: ImapSession::open(mailbox, &tls.0, limit).await?,
        })
    }

    /// UIDs of the messages whose header `name` contains `value` (`UID SEARCH HEADER`), or `None` when
    /// the server refuses header searches (then use [`ImapReader::all_uids`] and look at the headers).
    pub async fn search_header(
        &mut self,
        name: &str,
        value: &str,
    ) -> Result<Option<Vec<u32>>, ReadError> {
        Ok(self
            .session
            .search_header(name, value)
            .await?
            .map(|uids| uids.into_iter().map(u32::from).collect()))
    }

    /// Every UID in INBOX.
    pub async fn all_uids(&mut self) -> Result<Vec<u32>, ReadError> {
        Ok(self
            .session
            .all_uids()
            .await?
            .into_iter()
            .map(u32::from)
            .collect())
    }

    /// `(uid, raw header)` of each of these messages, without setting `\Seen`. UIDs that are gone are
    /// left out.
    pub async fn fetch_headers(&mut self, uids: &[u32]) -> Result<Vec<(u32, Vec<u8>)>, ReadError> {
        let uids: Vec<_> = uids
            .iter()
            .filter_map(|&u| std::num::NonZeroU32::new(u))
            .collect();
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .session
            .fetch(&uids, false)
            .await?
            .into_iter()
            .map(|(uid, header, _)| (u32::from(uid), header))
            .collect())
    }

    /// NOOP, so the server reports new mail before the next search.
    pub async fn noop(&mut self) -> Result<(), ReadError> {
        self.session.noop().await
    }

    /// Logs out.
    pub async fn logout(self) -> Result<(), ReadError> {
        self.session.logout().await
    }
}
