//! Target files: where probes are sent, how each mailbox is read back, and with
//! which credentials.
//!
//! A target is what the prober checks, independent of who runs the server:
//! our mock, a staging Postfix, production. It is read from TOML (see the
//! crate documentation for every key) or built in code with
//! [`Target::from_credentials`] (how `mailrig demo` points the prober at an
//! in-process mock without this crate knowing the mock).
//!
//! Every error in a file names the file, line and column and what is wrong,
//! the way scenario files do: a person fixes the file without reading code.
//! Unknown keys are errors, because a misspelt `pasword_env` silently ignored
//! would turn into a confusing login failure much later.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mailrig_core::located::{LocatedError, line_col};
use serde::Deserialize;
use toml::Spanned;

/// Default overall probe timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default limit for one TCP connect plus greeting (and one command).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default number of mailboxes read at the same time.
pub const DEFAULT_CONCURRENCY: usize = 64;
/// Default number of SMTP connections used for sending.
pub const DEFAULT_SMTP_CONNECTIONS: usize = 4;
/// Default envelope sender and `From:` of probe messages.
pub const DEFAULT_FROM: &str = "mailrig-probe@mailrig.test";

/// Transport security of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain TCP.
    None,
    /// Plain TCP, upgraded with STARTTLS (SMTP, IMAP) or STLS (POP3).
    Starttls,
    /// TLS from the first byte (SMTPS 465, IMAPS 993, POP3S 995).
    Tls,
}

/// How a mailbox is read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadProtocol {
    Imap,
    Pop3,
}

impl fmt::Display for ReadProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReadProtocol::Imap => "IMAP",
            ReadProtocol::Pop3 => "POP3",
        })
    }
}

/// Which certificates are trusted for TLS (SMTP and reading alike).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsTrust {
    /// Extra CA certificates (PEM), trusted besides the public web roots.
    pub ca_pem: Option<String>,
    /// Accept any certificate (test setups only).
    pub insecure: bool,
}

/// SMTP login for sending.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpAuth {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for SmtpAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpAuth")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Where probes are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpTarget {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub auth: Option<SmtpAuth>,
    /// Envelope sender and `From:`.
    pub from: String,
    /// EHLO name.
    pub helo: String,
    /// SMTP connections used in parallel for sending.
    pub connections: usize,
    /// Probe through every MX host of each domain (`[smtp] mx = true`,
    /// `--each-mx`) instead of through `host`.
    pub mx: bool,
    /// MX hosts named in the file (`[smtp] mx_hosts`): used for every
    /// domain instead of DNS MX records.
    pub mx_hosts: Vec<MxHost>,
    /// The port MX hosts are sent to (`[smtp] mx_port`, 25).
    pub mx_port: u16,
    /// Sign every probe with this key (`[smtp] dkim`).
    pub dkim: Option<DkimKey>,
}

/// A DKIM key probes are signed with (`[smtp] dkim = { domain, selector,
/// key_file }`): RSA, relaxed/relaxed, signing From, To, Subject, Date and
/// Message-ID. Without it a probe carries no signature, so `dkim=pass`
/// cannot be required of it.
#[derive(Clone, PartialEq, Eq)]
pub struct DkimKey {
    /// `d=`: the signing domain (for DMARC, the From domain or its parent).
    pub domain: String,
    /// `s=`: the selector, published at `SELECTOR._domainkey.DOMAIN`.
    pub selector: String,
    /// The RSA private key (PKCS#1 PEM, `BEGIN RSA PRIVATE KEY`).
    pub key_pem: String,
}

impl fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimKey")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// One MX host named in the target file: `"mx2.patente.test"`,
/// `"127.0.0.3:2525"`, or `{ name = "mx2.patente.test", address = "127.0.0.3" }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxHost {
    /// The name verdicts show (`missing via mx2.patente.test`).
    pub name: String,
    /// Its address; `None`: resolved (A/AAAA) when the probe runs.
    pub ip: Option<std::net::IpAddr>,
    /// Its port; `None`: `mx_port`.
    pub port: Option<u16>,
}

impl MxHost {
    /// `host`, `host:port`, `ip`, `ip:port` or `[v6]:port`.
    pub fn parse(s: &str) -> Result<MxHost, String> {
        let s = s.trim();
        if let Ok(a) = s.parse::<SocketAddr>() {
            return Ok(MxHost {
                name: a.ip().to_string(),
                ip: Some(a.ip()),
                port: Some(a.port()),
            });
        }
        if let Ok(ip) = s.parse::<std::net::IpAddr>() {
            return Ok(MxHost {
                name: ip.to_string(),
                ip: Some(ip),
                port: None,
            });
        }
        let (host, port) =
            match s.rsplit_once(':') {
                Some((h, p)) => (
                    h,
                    Some(p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                        format!("'{s}': the port must be a number from 1 to 65535")
                    })?),
                ),
                None => (s, None),
            };
        let ok = !host.is_empty()
            && host.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !ok {
            return Err(format!(
                "'{s}' is not a host name or address (mx2.example.org, 192.0.2.7:2525)"
            ));
        }
        Ok(MxHost {
            name: host.trim_end_matches('.').to_ascii_lowercase(),
            ip: None,
            port,
        })
    }
}

impl SmtpTarget {
    /// Plain SMTP to `addr`, no login, defaults for the rest.
    pub fn plain(addr: SocketAddr) -> Self {
        SmtpTarget {
            host: addr.ip().to_string(),
            port: addr.port(),
            tls: TlsMode::None,
            auth: None,
            from: DEFAULT_FROM.to_string(),
            helo: "mailrig-probe.localhost".to_string(),
            connections: DEFAULT_SMTP_CONNECTIONS,
            mx: false,
            mx_hosts: Vec::new(),
            mx_port: crate::mx::MX_PORT,
            dkim: None,
        }
    }
}

/// A server mailboxes are read from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReadEndpoint {
    pub protocol: ReadProtocol,
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
}

impl ReadEndpoint {
    /// Plain (no TLS) endpoint at `addr`.
    pub fn plain(protocol: ReadProtocol, addr: SocketAddr) -> Self {
        ReadEndpoint {
            protocol,
            host: addr.ip().to_string(),
            port: addr.port(),
            tls: TlsMode::None,
        }
    }
}

impl fmt::Display for ReadEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tls = match self.tls {
            TlsMode::None => "",
            TlsMode::Starttls => " (STARTTLS)",
            TlsMode::Tls => " (TLS)",
        };
        write!(f, "{} {}:{}{tls}", self.protocol, self.host, self.port)
    }
}

/// How an admin credential logs in as a user (`[read] master_login`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MasterStyle {
    /// Dovecot master users: log in as `user<separator>master` with the
    /// master's password (IMAP LOGIN, POP3 USER/PASS).
    Separator,
    /// SASL PLAIN with an authorization identity (RFC 4616): authzid = the
    /// user, authcid = the master (IMAP AUTHENTICATE, POP3 AUTH).
    Authzid,
}

/// One admin credential that reads every mailbox (`[read] master_user`).
#[derive(Clone, PartialEq, Eq)]
pub struct MasterLogin {
    pub user: String,
    pub password: String,
    pub style: MasterStyle,
    /// Between user and master name for [`MasterStyle::Separator`] (`*`).
    pub separator: String,
}

impl MasterLogin {
    /// The login name for [`MasterStyle::Separator`]: `user01@patente.test*admin`.
    pub fn login_name(&self, user: &str) -> String {
        format!("{user}{}{}", self.separator, self.user)
    }

    /// The SASL PLAIN message (RFC 4616) acting as `user`: `user NUL master NUL password`.
    pub fn sasl_plain(&self, user: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(user.len() + self.user.len() + self.password.len() + 2);
        out.extend_from_slice(user.as_bytes());
        out.push(0);
        out.extend_from_slice(self.user.as_bytes());
        out.push(0);
        out.extend_from_slice(self.password.as_bytes());
        out
    }
}

impl fmt::Debug for MasterLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterLogin")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("style", &self.style)
            .field("separator", &self.separator)
            .finish()
    }
}

/// One mailbox to probe.
#[derive(Clone, PartialEq, Eq)]
pub struct MailboxTarget {
    /// Where the probe is sent (RCPT TO).
    pub address: String,
    /// Login name for reading.
    pub user: String,
    pub password: String,
    /// How this mailbox is read.
    pub read: ReadEndpoint,
    /// Log in with this admin credential as `user` instead of with `password`.
    pub master: Option<MasterLogin>,
    /// Where this mailbox's mail waits before its server collects it (the
    /// provider's mailbox a POP3 collector or fetchmail reads), looked at
    /// too: found only there is `stuck-upstream`.
    pub upstream: Option<Upstream>,
}

/// The previous hop of a mailbox (`upstream = { ... }` in its
/// `[[mailbox]]` table): the same read settings as `[read]`, with its own
/// login.
#[derive(Clone, PartialEq, Eq)]
pub struct Upstream {
    pub read: ReadEndpoint,
    /// Login name there (default: the mailbox's login).
    pub user: String,
    pub password: String,
    /// An admin credential of the upstream server.
    pub master: Option<MasterLogin>,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("read", &self.read)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("master", &self.master)
            .finish()
    }
}

impl fmt::Debug for MailboxTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailboxTarget")
            .field("address", &self.address)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("read", &self.read)
            .field("master", &self.master)
            .field("upstream", &self.upstream)
            .finish()
    }
}

impl MailboxTarget {
    /// The domain part of the address (lower case).
    pub fn domain(&self) -> String {
        domain_of(&self.address)
    }

    /// The same address, read at its upstream instead (for the reader of
    /// that hop); `None` without an upstream.
    pub fn at_upstream(&self) -> Option<MailboxTarget> {
        let up = self.upstream.as_ref()?;
        Some(MailboxTarget {
            address: self.address.clone(),
            user: up.user.clone(),
            password: up.password.clone(),
            read: up.read.clone(),
            master: up.master.clone(),
            upstream: None,
        })
    }
}

pub(crate) fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default()
}

/// A whole probe target: SMTP in, mailboxes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Where it came from (a path, or a name given in code).
    pub source: String,
    pub smtp: SmtpTarget,
    pub mailboxes: Vec<MailboxTarget>,
    pub trust: TlsTrust,
    /// How long to wait after the last probe is sent: probing stops when
    /// every verdict is known or this passes.
    pub timeout: Duration,
    /// Limit for one connect + greeting, and for one protocol command.
    pub connect_timeout: Duration,
    /// Mailboxes read at the same time (connections open at once).
    pub concurrency: usize,
    /// What a delivered copy's authentication results must show
    /// (`[probe] require`, `--require`); failing: `delivered-unauthenticated`.
    pub require: Vec<crate::auth::Requirement>,
}

impl Target {
    /// A target for a server whose addresses and credentials are known in code
    /// (an in-process mock, a test): plain SMTP at `smtp`, every mailbox read
    /// over `read`, `(address, user, password)` triples.
    pub fn from_credentials<I, A, U, P>(smtp: SocketAddr, read: ReadEndpoint, mailboxes: I) -> Self
    where
        I: IntoIterator<Item = (A, U, P)>,
        A: Into<String>,
        U: Into<String>,
        P: Into<String>,
    {
        Target {
            source: "<in code>".to_string(),
            smtp: SmtpTarget::plain(smtp),
            mailboxes: mailboxes
                .into_iter()
                .map(|(a, u, p)| MailboxTarget {
                    address: a.into(),
                    user: u.into(),
                    password: p.into(),
                    read: read.clone(),
                    master: None,
                    upstream: None,
                })
                .collect(),
            trust: TlsTrust::default(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            concurrency: DEFAULT_CONCURRENCY,
            require: Vec::new(),
        }
    }

    /// Reads and validates a target file.
    pub fn load(path: &Path) -> Result<Target, TargetError> {
        let file = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| LocatedError::read(&file, "target", e))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Target::parse_with(&text, &file, &base, &|k| std::env::var(k).ok())
    }

    /// Parses target text; `file` names it in errors, relative paths
    /// (`ca_file`, `mailboxes_csv`) are resolved against `base`.
    pub fn parse(src: &str, file: &str, base: &Path) -> Result<Target, TargetError> {
        Target::parse_with(src, file, base, &|k| std::env::var(k).ok())
    }

    /// [`Target::parse`] with an explicit environment (for tests).
    pub fn parse_with(
        src: &str,
        file: &str,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Target, TargetError> {
        let parsed: TargetFile = toml::from_str(src).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            TargetError::at(file, src, offset, e.message().trim().to_string())
        })?;
        Builder {
            file,
            src,
            base,
            env,
        }
        .build(parsed)
    }
}

/// A target that cannot be used: the one located-error type of
/// [`mailrig_core::located`], shared with scenario files. `Display` gives
/// `file:line:column: what`.
pub type TargetError = LocatedError;

// ---- the file's shape -------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetFile {
    #[serde(default)]
    probe: ProbeSection,
    smtp: Spanned<SmtpSection>,
    read: Spanned<ReadSection>,
    #[serde(default)]
    tls: TlsSection,
    #[serde(default)]
    mailbox: Vec<Spanned<MailboxSection>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeSection {
    timeout: Option<Spanned<f64>>,
    connect_timeout: Option<Spanned<f64>>,
    concurrency: Option<Spanned<usize>>,
    mailboxes_csv: Option<Spanned<String>>,
    /// `["dkim=pass", "dmarc=pass"]`
    require: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SmtpSection {
    /// Optional with `mx = true` or `mx_hosts`: the MX hosts are sent to then.
    host: Option<String>,
    port: Option<u16>,
    #[serde(default = "tls_none")]
    tls: TlsMode,
    auth: Option<Spanned<AuthSection>>,
    from: Option<Spanned<String>>,
    helo: Option<String>,
    connections: Option<Spanned<usize>>,
    #[serde(default)]
    mx: bool,
    #[serde(default)]
    mx_hosts: Vec<Spanned<MxHostEntry>>,
    mx_port: Option<Spanned<u16>>,
    dkim: Option<Spanned<DkimSection>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DkimSection {
    domain: String,
    selector: String,
    key_file: Spanned<String>,
}

/// An `[smtp] mx_hosts` entry: a string, or a name with an address.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum MxHostEntry {
    Text(String),
    Named { name: String, address: String },
}

fn tls_none() -> TlsMode {
    TlsMode::None
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthSection {
    user: String,
    password: Option<String>,
    password_env: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadSection {
    #[serde(default = "imap")]
    protocol: ReadProtocol,
    host: String,
    port: u16,
    #[serde(default = "tls_none")]
    tls: TlsMode,
    /// Default password of every mailbox.
    password: Option<String>,
    password_env: Option<Spanned<String>>,
    /// One admin credential for every mailbox.
    master_user: Option<Spanned<String>>,
    master_password: Option<String>,
    master_password_env: Option<Spanned<String>>,
    master_login: Option<Spanned<MasterStyle>>,
    master_separator: Option<Spanned<String>>,
}

fn imap() -> ReadProtocol {
    ReadProtocol::Imap
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsSection {
    ca_file: Option<Spanned<String>>,
    #[serde(default)]
    insecure: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MailboxSection {
    address: Spanned<String>,
    user: Option<String>,
    password: Option<String>,
    password_env: Option<Spanned<String>>,
    protocol: Option<ReadProtocol>,
    host: Option<String>,
    port: Option<u16>,
    tls: Option<TlsMode>,
    /// The previous hop, read too (`stuck-upstream`).
    upstream: Option<Spanned<UpstreamSection>>,
}

/// A mailbox's `upstream = { ... }`: `[read]`'s keys plus its own `user`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpstreamSection {
    #[serde(default = "imap")]
    protocol: ReadProtocol,
    host: String,
    port: u16,
    #[serde(default = "tls_none")]
    tls: TlsMode,
    user: Option<String>,
    password: Option<String>,
    password_env: Option<Spanned<String>>,
    master_user: Option<Spanned<String>>,
    master_password: Option<String>,
    master_password_env: Option<Spanned<String>>,
    master_login: Option<Spanned<MasterStyle>>,
    master_separator: Option<Spanned<String>>,
}

/// The `master_*` keys of `[read]` or of an upstream.
struct MasterKeys<'k> {
    user: &'k Option<Spanned<String>>,
    password: &'k Option<String>,
    password_env: &'k Option<Spanned<String>>,
    login: &'k Option<Spanned<MasterStyle>>,
    separator: &'k Option<Spanned<String>>,
}

struct Builder<'a> {
    file: &'a str,
    src: &'a str,
    base: &'a Path,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Builder<'_> {
    fn err(&self, offset: usize, message: impl Into<String>) -> TargetError {
        TargetError::at(self.file, self.src, offset, message)
    }

    fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    /// `password` or the variable named by `password_env`; one of them, not both.
    fn password(
        &self,
        password: &Option<String>,
        password_env: &Option<Spanned<String>>,
        at: usize,
        what: &str,
    ) -> Result<Option<String>, TargetError> {
        match (password, password_env) {
            (Some(_), Some(env)) => Err(self.err(
                env.span().start,
                format!("{what}: give either password or password_env, not both"),
            )),
            (Some(p), None) => Ok(Some(p.clone())),
            (None, Some(env)) => match (self.env)(env.get_ref()) {
                Some(v) => Ok(Some(v)),
                None => Err(self.err(
                    env.span().start,
                    format!(
                        "{what}: environment variable {} (password_env) is not set",
                        env.get_ref()
                    ),
                )),
            },
            (None, None) => {
                let _ = at;
                Ok(None)
            }
        }
    }

    fn seconds(
        &self,
        v: &Option<Spanned<f64>>,
        key: &str,
    ) -> Result<Option<Duration>, TargetError> {
        match v {
            None => Ok(None),
            Some(s) if *s.get_ref() > 0.0 && s.get_ref().is_finite() && *s.get_ref() < 86_400.0 => {
                Ok(Some(Duration::from_secs_f64(*s.get_ref())))
            }
            Some(s) => Err(self.err(
                s.span().start,
                format!("{key} must be a number of seconds above 0 and below one day"),
            )),
        }
    }

    fn count(
        &self,
        v: &Option<Spanned<usize>>,
        key: &str,
        max: usize,
    ) -> Result<Option<usize>, TargetError> {
        match v {
            None => Ok(None),
            Some(s) if (1..=max).contains(s.get_ref()) => Ok(Some(*s.get_ref())),
            Some(s) => Err(self.err(s.span().start, format!("{key} must be between 1 and {max}"))),
        }
    }

    /// A mailbox's `upstream` table: its endpoint, and a login there (its
    /// own `user`/`password`/`master_*`, else the mailbox's login and password).
    fn upstream(
        &self,
        up: &Spanned<UpstreamSection>,
        address: &str,
        user: &str,
        own_password: Option<String>,
        read: &ReadEndpoint,
        ranged: bool,
    ) -> Result<Upstream, TargetError> {
        let at = up.span().start;
        let u = up.get_ref();
        let what = format!("upstream of {address}");
        if u.host.trim().is_empty() {
            return Err(self.err(at, format!("{what}: host is empty")));
        }
        let endpoint = ReadEndpoint {
            protocol: u.protocol,
            host: u.host.trim().to_string(),
            port: u.port,
            tls: u.tls,
        };
        if endpoint == *read {
            return Err(self.err(
                at,
                format!(
                    "{what}: {endpoint} is where the mailbox itself is read; the upstream is the previous hop (the provider's server its mail is collected from)"
                ),
            ));
        }
        if ranged && u.user.is_some() {
            return Err(self.err(
                at,
                format!("{what}: a mailbox range cannot have one upstream user (each login defaults to the mailbox's)"),
            ));
        }
        let master = self.master(
            MasterKeys {
                user: &u.master_user,
                password: &u.master_password,
                password_env: &u.master_password_env,
                login: &u.master_login,
                separator: &u.master_separator,
            },
            at,
            &what,
        )?;
        let password = match self.password(&u.password, &u.password_env, at, &what)? {
            Some(p) => p,
            None if master.is_some() => String::new(),
            None => own_password.ok_or_else(|| {
                self.err(
                    at,
                    format!("{what}: no password (set password, password_env or master_user in it, or give the mailbox a password)"),
                )
            })?,
        };
        Ok(Upstream {
            read: endpoint,
            user: u.user.clone().unwrap_or_else(|| user.to_string()),
            password,
            master,
        })
    }

    /// `[smtp] dkim`: the key file read and checked now, not when sending.
    fn dkim(&self, d: &Spanned<DkimSection>) -> Result<DkimKey, TargetError> {
        let at = d.span().start;
        let d = d.get_ref();
        let label_ok = |s: &str| {
            !s.is_empty()
                && s.split('.').all(|l| {
                    !l.is_empty()
                        && l.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                })
        };
        if !label_ok(d.domain.trim()) {
            return Err(self.err(
                at,
                format!("[smtp] dkim: domain '{}' is not a domain name", d.domain),
            ));
        }
        if !label_ok(d.selector.trim()) {
            return Err(self.err(
                at,
                format!("[smtp] dkim: selector '{}' is not a DNS label", d.selector),
            ));
        }
        let path = self.path(d.key_file.get_ref());
        let key_at = d.key_file.span().start;
        let key_pem = std::fs::read_to_string(&path).map_err(|e| {
            self.err(
                key_at,
                format!("[smtp] dkim: cannot read key_file {}: {e}", path.display()),
            )
        })?;
        crate::message::dkim_key(&key_pem).map_err(|e| {
            self.err(
                key_at,
                format!("[smtp] dkim: key_file {} is not an RSA private key in PKCS#1 PEM (BEGIN RSA PRIVATE KEY): {e}", path.display()),
            )
        })?;
        Ok(DkimKey {
            domain: d.domain.trim().to_ascii_lowercase(),
            selector: d.selector.trim().to_string(),
            key_pem,
        })
    }

    /// One admin credential from `master_*` keys (`what` names the table in errors).
    fn master(
        &self,
        keys: MasterKeys<'_>,
        span: usize,
        what: &str,
    ) -> Result<Option<MasterLogin>, TargetError> {
        match keys.user {
            None => {
                let stray = [
                    keys.password_env.as_ref().map(|s| s.span().start),
                    keys.login.as_ref().map(|s| s.span().start),
                    keys.separator.as_ref().map(|s| s.span().start),
                ];
                if let Some(at) = stray.into_iter().flatten().next() {
                    return Err(self.err(at, format!("{what} master_* keys need master_user")));
                }
                if keys.password.is_some() {
                    return Err(self.err(span, format!("{what} master_password needs master_user")));
                }
                Ok(None)
            }
            Some(u) => {
                let at = u.span().start;
                if u.get_ref().trim().is_empty() {
                    return Err(self.err(at, format!("{what} master_user is empty")));
                }
                let password = self
                    .password(
                        keys.password,
                        keys.password_env,
                        at,
                        &format!("{what} master_user"),
                    )?
                    .ok_or_else(|| {
                        self.err(
                            at,
                            format!(
                                "{what} master_user needs master_password or master_password_env"
                            ),
                        )
                    })?;
                let separator = match keys.separator {
                    Some(s)
                        if s.get_ref().is_empty()
                            || s.get_ref().chars().any(char::is_whitespace) =>
                    {
                        return Err(self.err(
                            s.span().start,
                            format!(
                                "{what} master_separator must be one or more non-blank characters"
                            ),
                        ));
                    }
                    Some(s) => s.get_ref().clone(),
                    None => "*".to_string(),
                };
                Ok(Some(MasterLogin {
                    user: u.get_ref().trim().to_string(),
                    password,
                    style: keys
                        .login
                        .as_ref()
                        .map_or(MasterStyle::Separator, |s| *s.get_ref()),
                    separator,
                }))
            }
        }
    }

    fn build(&self, f: TargetFile) -> Result<Target, TargetError> {
        let smtp_span = f.smtp.span().start;
        let smtp = f.smtp.into_inner();
        let by_mx = smtp.mx || !smtp.mx_hosts.is_empty();
        // Without host and port, `mx_hosts` are the only way out: send
        // through them as `mx = true` would (not to an empty host at run time).
        let mx = smtp.mx || (smtp.host.is_none() && smtp.port.is_none() && by_mx);
        let (host, port) = match (smtp.host.as_deref().map(str::trim), smtp.port) {
            (Some(""), _) => return Err(self.err(smtp_span, "[smtp] host is empty")),
            (Some(h), Some(p)) => (h.to_string(), p),
            (None, None) if by_mx => (String::new(), crate::mx::MX_PORT),
            (None, _) => {
                return Err(self.err(
                    smtp_span,
                    "[smtp] needs host and port (or mx = true to send through every MX host)",
                ));
            }
            (Some(_), None) => return Err(self.err(smtp_span, "[smtp] host needs a port")),
        };
        let auth = match &smtp.auth {
            None => None,
            Some(a) => {
                let at = a.span().start;
                let a = a.get_ref();
                let password = self
                    .password(&a.password, &a.password_env, at, "[smtp] auth")?
                    .ok_or_else(|| self.err(at, "[smtp] auth needs password or password_env"))?;
                Some(SmtpAuth {
                    user: a.user.clone(),
                    password,
                })
            }
        };
        let from = match &smtp.from {
            None => DEFAULT_FROM.to_string(),
            Some(s) => match check_address(s.get_ref()) {
                Ok(()) => s.get_ref().clone(),
                Err(why) => {
                    return Err(self.err(s.span().start, format!("[smtp] from: {why}")));
                }
            },
        };
        let mut mx_hosts = Vec::with_capacity(smtp.mx_hosts.len());
        for h in &smtp.mx_hosts {
            let at = h.span().start;
            let parsed = match h.get_ref() {
                MxHostEntry::Text(t) => MxHost::parse(t),
                MxHostEntry::Named { name, address } => {
                    MxHost::parse(name).and_then(|n| match n.ip {
                        Some(_) => Err(format!("name '{name}' is an address; give a host name")),
                        None => MxHost::parse(address).and_then(|a| match a.ip {
                            None => Err(format!("address '{address}' is not an IP address")),
                            Some(ip) => Ok(MxHost {
                                name: n.name,
                                ip: Some(ip),
                                port: a.port.or(n.port),
                            }),
                        }),
                    })
                }
            };
            mx_hosts.push(parsed.map_err(|why| self.err(at, format!("[smtp] mx_hosts: {why}")))?);
        }
        let mx_port = match &smtp.mx_port {
            None => crate::mx::MX_PORT,
            Some(p) if *p.get_ref() > 0 => *p.get_ref(),
            Some(p) => {
                return Err(self.err(p.span().start, "[smtp] mx_port must be from 1 to 65535"));
            }
        };
        let dkim = match &smtp.dkim {
            None => None,
            Some(d) => Some(self.dkim(d)?),
        };
        let smtp = SmtpTarget {
            dkim,
            mx,
            mx_hosts,
            mx_port,
            host,
            port,
            tls: smtp.tls,
            auth,
            from,
            helo: smtp
                .helo
                .unwrap_or_else(|| "mailrig-probe.localhost".to_string()),
            connections: self
                .count(&smtp.connections, "[smtp] connections", 256)?
                .unwrap_or(DEFAULT_SMTP_CONNECTIONS),
        };

        let read_span = f.read.span().start;
        let read = f.read.into_inner();
        if read.host.trim().is_empty() {
            return Err(self.err(read_span, "[read] host is empty"));
        }
        let default_password =
            self.password(&read.password, &read.password_env, read_span, "[read]")?;
        let master = self.master(
            MasterKeys {
                user: &read.master_user,
                password: &read.master_password,
                password_env: &read.master_password_env,
                login: &read.master_login,
                separator: &read.master_separator,
            },
            read_span,
            "[read]",
        )?;
        let default_read = ReadEndpoint {
            protocol: read.protocol,
            host: read.host.trim().to_string(),
            port: read.port,
            tls: read.tls,
        };

        let trust = TlsTrust {
            ca_pem: match &f.tls.ca_file {
                None => None,
                Some(p) => {
                    let path = self.path(p.get_ref());
                    Some(std::fs::read_to_string(&path).map_err(|e| {
                        self.err(
                            p.span().start,
                            format!("cannot read ca_file {}: {e}", path.display()),
                        )
                    })?)
                }
            },
            insecure: f.tls.insecure,
        };

        let mut mailboxes = Vec::new();
        let mut seen = std::collections::HashMap::new();
        for m in &f.mailbox {
            let at = m.span().start;
            let m = m.get_ref();
            // `user{01..25}@patente.test`: one table, many mailboxes.
            let written = m.address.get_ref().trim();
            let addresses = if mailrig_core::range::is_range(written) {
                if m.user.is_some() {
                    return Err(self.err(
                        m.address.span().start,
                        "a mailbox range cannot have one user (each login defaults to its address)",
                    ));
                }
                mailrig_core::range::expand(written)
                    .map_err(|e| self.err(m.address.span().start, e.to_string()))?
            } else {
                vec![written.to_string()]
            };
            let ranged = mailrig_core::range::is_range(written);
            for address in addresses {
                check_address(&address).map_err(|why| self.err(m.address.span().start, why))?;
                let own_password = self.password(&m.password, &m.password_env, at, &address)?;
                let user = m.user.clone().unwrap_or_else(|| address.clone());
                let read = ReadEndpoint {
                    protocol: m.protocol.unwrap_or(default_read.protocol),
                    host: m.host.clone().unwrap_or_else(|| default_read.host.clone()),
                    port: m.port.unwrap_or(default_read.port),
                    tls: m.tls.unwrap_or(default_read.tls),
                };
                let upstream = match &m.upstream {
                    None => None,
                    Some(up) => Some(self.upstream(
                        up,
                        &address,
                        &user,
                        own_password.clone().or_else(|| default_password.clone()),
                        &read,
                        ranged,
                    )?),
                };
                let password = match own_password {
                Some(p) => p,
                None if master.is_some() => default_password.clone().unwrap_or_default(),
                None => default_password.clone().ok_or_else(|| {
                    self.err(
                        at,
                        format!(
                            "mailbox {address} has no password (set password or password_env here, or a default in [read])"
                        ),
                    )
                })?,
            };
                if let Some(prev) =
                    seen.insert(address.to_ascii_lowercase(), m.address.span().start)
                {
                    let (line, _) = line_col(self.src, prev);
                    return Err(self.err(
                        m.address.span().start,
                        format!("mailbox {address} is listed twice (first on line {line})"),
                    ));
                }
                mailboxes.push(MailboxTarget {
                    user,
                    password,
                    read,
                    master: master.clone(),
                    upstream,
                    address,
                });
            }
        }
        if let Some(csv) = &f.probe.mailboxes_csv {
            let path = self.path(csv.get_ref());
            let text = std::fs::read_to_string(&path).map_err(|e| {
                self.err(
                    csv.span().start,
                    format!("cannot read mailboxes_csv {}: {e}", path.display()),
                )
            })?;
            let csv_name = path.display().to_string();
            for row in crate::mailbox_csv::parse(&text, &csv_name, self.env)? {
                let password = match row.password {
                    Some(p) => p,
                    None if master.is_some() => default_password.clone().unwrap_or_default(),
                    None => default_password.clone().ok_or_else(|| TargetError::Invalid {
                        file: csv_name.clone(),
                        line: row.line,
                        column: 1,
                        message: format!(
                            "mailbox {} has no password (third column, or a default in [read] of {})",
                            row.address, self.file
                        ),
                    })?,
                };
                if seen.insert(row.address.to_ascii_lowercase(), 0).is_some() {
                    return Err(TargetError::Invalid {
                        file: csv_name.clone(),
                        line: row.line,
                        column: 1,
                        message: format!("mailbox {} is listed twice", row.address),
                    });
                }
                mailboxes.push(MailboxTarget {
                    user: row.user.unwrap_or_else(|| row.address.clone()),
                    password,
                    read: default_read.clone(),
                    master: master.clone(),
                    upstream: None,
                    address: row.address,
                });
            }
        }
        if mailboxes.is_empty() {
            return Err(self.err(
                0,
                "no mailboxes to probe: add [[mailbox]] tables or [probe] mailboxes_csv",
            ));
        }

        Ok(Target {
            source: self.file.to_string(),
            smtp,
            mailboxes,
            trust,
            timeout: self
                .seconds(&f.probe.timeout, "[probe] timeout")?
                .unwrap_or(DEFAULT_TIMEOUT),
            connect_timeout: self
                .seconds(&f.probe.connect_timeout, "[probe] connect_timeout")?
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            concurrency: self
                .count(&f.probe.concurrency, "[probe] concurrency", 10_000)?
                .unwrap_or(DEFAULT_CONCURRENCY),
            require: match &f.probe.require {
                None => Vec::new(),
                Some(r) => crate::auth::parse_requirements(&r.get_ref().join(","))
                    .map_err(|e| self.err(r.span().start, format!("[probe] require: {e}")))?,
            },
        })
    }
}

/// A mailbox address must pass the one address check of mailrig,
/// [`mailrig_core::Address::parse`] (the same as scenarios, load and the SMTP server).
pub(crate) fn check_address(address: &str) -> Result<(), String> {
    mailrig_core::Address::parse(address)
        .map(drop)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
