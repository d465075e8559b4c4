//! The world model: the domains and mailboxes a fake mail server serves, who may
//! log in, where aliases and catch-alls lead, and the limits and policies of the
//! server itself.
//!
//! A `World` is built once (from a scenario file or the built-in default) and
//! then shared read-only by every session; all lookups are hash probes on a
//! lower-cased address key.
//!
//! Dependencies go one way: `scenario` builds a `World` (through
//! [`World::build`]); this module knows nothing of files or scenarios (the
//! built-in default world is [`crate::scenario::Scenario::builtin_default`]).

use std::collections::HashMap;
use std::time::Duration;

use crate::address::Address;

/// Index of a mailbox in [`World::mailboxes`] and in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct MailboxId(pub u32);

impl MailboxId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// One mailbox: an address people send to, and the credentials to read it.
#[derive(Debug, Clone)]
pub struct Mailbox {
    pub id: MailboxId,
    pub address: Address,
    /// Login name for SMTP AUTH, IMAP and POP3 (defaults to the full address,
    /// and then the store's mailbox shares this text as its address).
    pub login: crate::journal::Text,
    /// Shared by the mailboxes that got it from their domain's `password`.
    pub password: crate::journal::Text,
}

impl Mailbox {
    /// The address as text (`local@domain`): the login's text when the login
    /// is the address (the default), so that it is kept once.
    pub fn address_text(&self) -> crate::journal::Text {
        let text = self.address.to_string();
        if *self.login == *text {
            self.login.clone()
        } else {
            text.into()
        }
    }
}

/// What happens to mail for an address of one of our domains that has no mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownRecipient {
    /// `550 5.1.1` at RCPT time.
    Reject,
    /// Accept into the domain's catch-all mailbox.
    CatchAll(MailboxId),
}

/// One domain the server is final destination for.
#[derive(Debug, Clone)]
pub struct Domain {
    pub name: String,
    pub mailboxes: Vec<MailboxId>,
    /// Lower-cased local part → target mailboxes (possibly in other domains).
    pub aliases: HashMap<String, Vec<MailboxId>>,
    pub catch_all: Option<MailboxId>,
    pub unknown: UnknownRecipient,
}

/// How the SMTP server answers VRFY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrfyPolicy {
    /// `252 2.5.0 Cannot VRFY user, but will accept message` (the safe default).
    CannotVerify,
    /// `250` with the address for known mailboxes, `550 5.1.1` otherwise.
    Verify,
    /// `502 5.5.1 VRFY command is disabled`.
    Disabled,
}

/// What the SMTP server does with a bare LF (no CR) in DATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BareLfPolicy {
    /// Treat a bare LF as a line end and store it as CRLF (what most servers do).
    Normalize,
    /// Refuse the message with `550 5.6.2` at end of data.
    Reject,
}

/// Whether SMTP AUTH is off, offered, or demanded before MAIL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    Off,
    Optional,
    Required,
}

/// Authentication and TLS policy of the servers.
#[derive(Debug, Clone)]
pub struct Security {
    pub smtp_auth: AuthMode,
    /// Whether AUTH (SMTP) and LOGIN (IMAP/POP3) work before TLS.
    pub plaintext_auth: bool,
    /// Whether STARTTLS is advertised at all.
    pub starttls: bool,
    /// SPF/DKIM/DMARC checks of received mail (see [`crate::sender_auth`]).
    pub sender_auth: crate::sender_auth::SenderAuthPolicy,
}

/// The server's name and what it says about itself.
#[derive(Debug, Clone)]
pub struct ServerIdentity {
    pub hostname: String,
    /// Text after `220 ` in the greeting.
    pub banner: String,
    /// EHLO keywords to advertise (upper-case), e.g. `PIPELINING`, `SIZE`.
    pub extensions: Vec<String>,
    pub vrfy: VrfyPolicy,
    pub bare_lf: BareLfPolicy,
}

impl ServerIdentity {
    /// Whether an EHLO keyword is to be advertised.
    pub fn advertises(&self, keyword: &str) -> bool {
        self.extensions
            .iter()
            .any(|e| e.eq_ignore_ascii_case(keyword))
    }
}

/// Limits enforced by the servers.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_message_size: usize,
    pub max_recipients: usize,
    /// Open connections allowed in the whole server (all listeners together).
    pub max_connections: usize,
    pub idle_timeout: Duration,
    /// Largest IMAP literal accepted (APPEND and friends).
    pub max_literal: usize,
    /// Longest SMTP content line accepted in DATA, CRLF included; longer
    /// ones get `500 5.5.2` at end of data. `None` (the default) accepts any
    /// length, as Postfix, Exchange and Mailpit do.
    pub max_line_length: Option<usize>,
    /// Failed logins (SMTP AUTH, IMAP LOGIN/AUTHENTICATE, POP3 PASS) allowed
    /// on one connection; the last one is answered and the connection closed.
    pub max_auth_failures: u32,
    /// Listen backlog of every listener: clients that connect at once wait
    /// here until accepted (the kernel caps it at `net.core.somaxconn`).
    pub listen_backlog: u32,
    /// Each mailbox's quota (RFC 9208's STORAGE resource, in KiB of
    /// message bytes over all its folders): a recipient at or over it gets
    /// `552 5.2.2` at RCPT, and IMAP's GETQUOTA shows the same figures.
    pub quota_storage_kib: Option<u64>,
    /// Each mailbox's quota of messages (RFC 9208's MESSAGE resource).
    pub quota_messages: Option<u64>,
}

/// What a mailbox holds against its quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub bytes: u64,
    pub messages: u64,
}

impl Usage {
    /// STORAGE usage as RFC 9208 counts it: KiB, rounded up.
    pub fn kib(&self) -> u64 {
        self.bytes.div_ceil(1024)
    }
}

impl Limits {
    /// Whether a quota is set at all.
    pub fn has_quota(&self) -> bool {
        self.quota_storage_kib.is_some() || self.quota_messages.is_some()
    }

    /// Whether a mailbox with this usage is full (at or over a quota).
    pub fn quota_full(&self, usage: Usage) -> bool {
        self.quota_storage_kib.is_some_and(|l| usage.kib() >= l)
            || self.quota_messages.is_some_and(|l| usage.messages >= l)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 100,
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(300),
            max_literal: 50 * 1024 * 1024,
            max_line_length: None,
            max_auth_failures: 3,
            listen_backlog: 4096,
            quota_storage_kib: None,
            quota_messages: None,
        }
    }
}

/// The whole fake world: what the servers serve.
#[derive(Debug, Clone)]
pub struct World {
    pub identity: ServerIdentity,
    pub security: Security,
    pub limits: Limits,
    pub domains: Vec<Domain>,
    pub mailboxes: Vec<Mailbox>,
    by_address: HashMap<String, MailboxId>,
    /// Only the logins that are not the mailbox's own address (the default):
    /// the others are found in `by_address`, so a world of 100,000
    /// mailboxes does not keep each address twice more.
    by_login: HashMap<String, MailboxId>,
    by_domain: HashMap<String, usize>,
}

/// Everything needed to assemble a world; validation happens in [`World::build`].
#[derive(Debug, Clone)]
pub struct WorldParts {
    pub identity: ServerIdentity,
    pub security: Security,
    pub limits: Limits,
    pub domains: Vec<Domain>,
    pub mailboxes: Vec<Mailbox>,
}

/// A world that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorldError {
    #[error("mailbox '{0}' is defined twice")]
    DuplicateMailbox(String),
    #[error("login '{0}' is used by two mailboxes")]
    DuplicateLogin(String),
    #[error("domain '{0}' is defined twice")]
    DuplicateDomain(String),
}

impl World {
    /// Checks uniqueness and builds the lookup tables.
    pub fn build(parts: WorldParts) -> Result<World, WorldError> {
        let mut by_address = HashMap::with_capacity(parts.mailboxes.len());
        let mut by_login = HashMap::new();
        for m in &parts.mailboxes {
            let key = m.address.key();
            let login = m.login.to_lowercase();
            if login != key && by_login.insert(login, m.id).is_some() {
                return Err(WorldError::DuplicateLogin(m.login.to_string()));
            }
            if by_address.insert(key, m.id).is_some() {
                return Err(WorldError::DuplicateMailbox(m.address.to_string()));
            }
        }
        // A login of its own that is also another mailbox's default login.
        for (login, id) in &by_login {
            if let Some(&other) = by_address.get(login)
                && other != *id
                && parts.mailboxes[other.index()]
                    .login
                    .eq_ignore_ascii_case(login)
            {
                return Err(WorldError::DuplicateLogin(
                    parts.mailboxes[id.index()].login.to_string(),
                ));
            }
        }
        let mut by_domain = HashMap::new();
        for (i, d) in parts.domains.iter().enumerate() {
            if by_domain.insert(d.name.to_lowercase(), i).is_some() {
                return Err(WorldError::DuplicateDomain(d.name.clone()));
            }
        }
        Ok(World {
            identity: parts.identity,
            security: parts.security,
            limits: parts.limits,
            domains: parts.domains,
            mailboxes: parts.mailboxes,
            by_address,
            by_login,
            by_domain,
        })
    }

    pub fn mailbox(&self, id: MailboxId) -> &Mailbox {
        &self.mailboxes[id.index()]
    }

    /// The mailbox whose own address this is (aliases and catch-alls not followed).
    pub fn mailbox_by_address(&self, address: &str) -> Option<MailboxId> {
        self.by_address.get(&address.to_lowercase()).copied()
    }

    pub fn domain(&self, name: &str) -> Option<&Domain> {
        self.by_domain
            .get(&name.to_lowercase())
            .map(|&i| &self.domains[i])
    }

    /// Checks a login and password; `None` when either is wrong.
    pub fn authenticate(&self, login: &str, password: &str) -> Option<MailboxId> {
        let id = self.mailbox_by_login(login)?;
        let mailbox = self.mailbox(id);
        constant_time_eq(mailbox.password.as_bytes(), password.as_bytes()).then_some(id)
    }

    /// The mailbox a login name belongs to (without checking a password).
    pub fn mailbox_by_login(&self, login: &str) -> Option<MailboxId> {
        let key = login.to_lowercase();
        self.by_login.get(&key).copied().or_else(|| {
            // The default login: the mailbox's own address.
            let id = *self.by_address.get(&key)?;
            self.mailbox(id)
                .login
                .eq_ignore_ascii_case(&key)
                .then_some(id)
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
