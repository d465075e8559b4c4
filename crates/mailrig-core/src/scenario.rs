//! Scenario files: a whole fake mail world described in one TOML file.
//!
//! A scenario names the server (host name, banner, EHLO extensions), its
//! security policy and limits, the domains with their mailboxes (explicit names
//! and ranges such as `user01..user25`), passwords, aliases and catch-alls, and
//! the fault rules (`[[fault]]` tables, read by [`crate::fault`]).
//!
//! Every error names the file, line and column and says what is wrong, so a
//! person can fix the file without reading our code. The leading comment block
//! of a file is its description (`mailrig scenario explain` prints it).
//!
//! Dependencies go one way: this module reads files into [`crate::world`]'s
//! types and [`crate::fault`]'s plan; neither of them knows scenarios exist.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::address::Address;
use crate::dns::spec::DnsSection;
use crate::dns::{DnsSpec, ZoneHost};
use crate::fault::{FaultPlan, FaultRuleSpec};
use crate::journal::Text;
use crate::located::LocatedError;
use crate::range;
use crate::sender_auth::SenderAuthPolicy;
use crate::world::{
    AuthMode, BareLfPolicy, Domain, Limits, Mailbox, MailboxId, Security, ServerIdentity,
    UnknownRecipient, VrfyPolicy, World, WorldParts,
};

/// The built-in default world, used when no `--scenario` is given.
pub const DEFAULT_SCENARIO: &str = include_str!("../catalog/default.toml");

/// EHLO extensions advertised when a scenario does not list its own.
pub const DEFAULT_EXTENSIONS: &[&str] = &[
    "PIPELINING",
    "SIZE",
    "8BITMIME",
    "SMTPUTF8",
    "ENHANCEDSTATUSCODES",
    "DSN",
    "STARTTLS",
    "AUTH",
    "HELP",
    "VRFY",
];

/// A parsed, validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Where it came from (a path, or `<built-in default>`).
    pub source: String,
    /// The leading comment block of the file, without the `#` marks.
    pub description: String,
    /// Shared, so a server started from the scenario holds one copy (a big
    /// world costs hundreds of bytes a mailbox).
    pub world: Arc<World>,
    pub faults: FaultPlan,
    /// The `[dns]` table; [`Scenario::zones`] builds the zones from it.
    pub dns: Arc<DnsSpec>,
    /// Things that are valid but probably not meant (e.g. a rule that can never fire).
    pub warnings: Vec<String>,
    /// The `[[host]]` tables; empty for a one-server world (see [`crate::host`]).
    pub hosts: Vec<crate::host::Host>,
    /// The `[[collector]]` tables (see [`crate::collector`]).
    pub collectors: Vec<crate::collector::Collector>,
}

/// A scenario that cannot be used: the one located-error type of
/// [`crate::located`]. `Display` gives `file:line:column: what`.
pub type ScenarioError = LocatedError;

/// Kept here for callers that found it here first; it lives in [`crate::located`].
pub use crate::located::line_col;

// ---- the file's shape -------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    #[serde(default)]
    server: ServerSection,
    #[serde(default)]
    security: SecuritySection,
    #[serde(default)]
    limits: LimitsSection,
    #[serde(default)]
    domain: Vec<DomainSection>,
    #[serde(default)]
    fault: Vec<Spanned<FaultRuleSpec>>,
    #[serde(default)]
    host: Vec<Spanned<crate::host::HostSection>>,
    #[serde(default)]
    collector: Vec<Spanned<crate::collector::CollectorSection>>,
    /// `None` when the file has no `[dns]` table.
    dns: Option<DnsSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerSection {
    hostname: Option<String>,
    banner: Option<String>,
    extensions: Option<Vec<String>>,
    #[serde(default)]
    vrfy: VrfyFile,
    #[serde(default)]
    bare_lf: BareLfFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum VrfyFile {
    #[default]
    CannotVerify,
    Verify,
    Disabled,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum BareLfFile {
    #[default]
    Normalize,
    Reject,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecuritySection {
    #[serde(default = "default_auth")]
    smtp_auth: AuthFile,
    #[serde(default = "yes")]
    plaintext_auth: bool,
    #[serde(default = "yes")]
    starttls: bool,
    /// `off`, `record` or `enforce`; unset: `record` in a world with `[dns]`
    /// or `[[host]]`s, `off` otherwise.
    sender_auth: Option<crate::sender_auth::SenderAuthPolicy>,
}

impl Default for SecuritySection {
    fn default() -> Self {
        SecuritySection {
            smtp_auth: default_auth(),
            plaintext_auth: true,
            starttls: true,
            sender_auth: None,
        }
    }
}

fn default_auth() -> AuthFile {
    AuthFile::Optional
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum AuthFile {
    Off,
    Optional,
    Required,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsSection {
    max_message_size: Option<Spanned<u64>>,
    max_recipients: Option<Spanned<u64>>,
    max_connections: Option<Spanned<u64>>,
    idle_timeout_secs: Option<Spanned<u64>>,
    max_literal: Option<Spanned<u64>>,
    max_line_length: Option<Spanned<u64>>,
    max_auth_failures: Option<Spanned<u64>>,
    listen_backlog: Option<Spanned<u64>>,
    quota_storage_kib: Option<Spanned<u64>>,
    quota_messages: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainSection {
    name: Spanned<String>,
    /// Names or ranges (`user01..user25`).
    #[serde(default)]
    mailboxes: Vec<Spanned<String>>,
    /// Default password of this domain's mailboxes.
    password: Option<String>,
    /// Mailboxes with their own settings.
    #[serde(default)]
    mailbox: Vec<MailboxSection>,
    #[serde(default)]
    aliases: BTreeMap<String, Spanned<OneOrMany>>,
    catch_all: Option<Spanned<String>>,
    unknown_recipient: Option<Spanned<UnknownFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MailboxSection {
    name: Spanned<String>,
    password: Option<String>,
    login: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn items(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum UnknownFile {
    Reject,
    CatchAll,
}

// ---- parsing ----------------------------------------------------------------

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| LocatedError::read(&file, "scenario", e))?;
        Scenario::parse(&text, &file)
    }

    /// The built-in default world.
    pub fn builtin_default() -> Scenario {
        match Scenario::parse(DEFAULT_SCENARIO, "<built-in default>") {
            Ok(s) => s,
            // The default is part of the binary and covered by a test.
            Err(e) => panic!("the built-in default scenario is invalid: {e}"),
        }
    }

    /// Parses and validates scenario text; `file` is used in error messages.
    pub fn parse(src: &str, file: &str) -> Result<Scenario, ScenarioError> {
        let parsed: ScenarioFile = toml::from_str(src).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            ScenarioError::at(file, src, offset, e.message().trim().to_string())
        })?;
        let mut b = Builder {
            file,
            src,
            mailboxes: Vec::new(),
            by_key: HashMap::new(),
            last_password: None,
        };
        let world_parts = b.build(&parsed)?;
        let world = World::build(world_parts)
            .map_err(|e| ScenarioError::at(file, src, 0, e.to_string()))?;
        let specs: Vec<FaultRuleSpec> = parsed.fault.iter().map(|f| f.get_ref().clone()).collect();
        let (faults, warnings) = FaultPlan::from_specs(&specs, &world).map_err(|e| {
            let offset = parsed.fault.get(e.index).map_or(0, |f| f.span().start);
            ScenarioError::at(
                file,
                src,
                offset,
                format!("[[fault]] #{}: {}", e.index + 1, e.message),
            )
        })?;
        let (hosts, host_warnings) =
            crate::host::build_hosts(&parsed.host, &world, &specs, file, src)?;
        let mut warnings = warnings;
        warnings.extend(host_warnings);
        let collectors = crate::collector::build_collectors(&parsed.collector, &hosts, file, src)?;
        let dns = parsed
            .dns
            .unwrap_or_default()
            .to_spec()
            .map_err(|(at, message)| {
                ScenarioError::at(file, src, at, format!("[dns]: {message}"))
            })?;
        // The zones are built again when a DNS server starts, with the bound
        // addresses; checking them here with the scenario's hosts makes
        // `scenario check` report every record error with its place.
        let zone_hosts = zone_hosts(&world, &hosts);
        let (zones, dns_warnings) = crate::dns::build_zones(
            world.domains.iter().map(|d| d.name.as_str()),
            &zone_hosts,
            &dns,
        )
        .map_err(|e| {
            ScenarioError::at(
                file,
                src,
                e.at.unwrap_or(0),
                format!("[dns]: {}", e.message),
            )
        })?;
        if let Some((at, message)) = mx_to_unknown_host(&dns, &zones, &hosts) {
            return Err(ScenarioError::at(
                file,
                src,
                at,
                format!("[dns]: {message}"),
            ));
        }
        warnings.extend(dns_warnings.into_iter().map(|w| format!("[dns]: {w}")));
        Ok(Scenario {
            source: file.to_string(),
            description: leading_comment(src),
            world: Arc::new(world),
            faults,
            dns: Arc::new(dns),
            warnings,
            hosts,
            collectors,
        })
    }

    /// The hosts the world's DNS publishes, the SMTP listener of a one-server
    /// world being at `smtp` (see [`zone_hosts`]).
    pub fn zone_hosts(&self, smtp: std::net::IpAddr) -> Vec<ZoneHost> {
        zone_hosts_at(&self.world, &self.hosts, smtp)
    }

    /// The world's DNS zones for these hosts (see [`crate::dns::build_zones`]
    /// and [`Scenario::zone_hosts`]).
    pub fn zones(
        &self,
        hosts: &[ZoneHost],
    ) -> Result<(crate::dns::Zones, Vec<String>), crate::dns::ZoneError> {
        crate::dns::build_zones(
            self.world.domains.iter().map(|d| d.name.as_str()),
            hosts,
            &self.dns,
        )
    }

    /// A short human summary: domains, mailbox counts, aliases, catch-alls, faults.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let w = &self.world;
        out.push_str(&format!(
            "scenario {}: {} domain(s), {} mailbox(es), {} fault rule(s)\n",
            self.source,
            w.domains.len(),
            w.mailboxes.len(),
            self.faults.len()
        ));
        for d in &w.domains {
            out.push_str(&format!(
                "  {:<24} {:>5} mailbox(es), {} alias(es), catch-all: {}\n",
                d.name,
                d.mailboxes.len(),
                d.aliases.len(),
                d.catch_all
                    .map(|id| w.mailbox(id).address.to_string())
                    .unwrap_or_else(|| "none".into())
            ));
        }
        for h in &self.hosts {
            out.push_str(&format!(
                "  host {:<19} {:<15} {:<9} {} mailbox(es), MX for {}{}\n",
                h.name,
                h.address,
                h.role.name(),
                h.world.mailboxes.len(),
                h.mx_for.join(", "),
                if h.down {
                    " (down)"
                } else if h.blackhole {
                    " (blackhole)"
                } else {
                    ""
                }
            ));
        }
        for c in &self.collectors {
            out.push_str(&format!(
                "  collector {:<14} {} account(s) -> host {}{}\n",
                c.name,
                c.accounts.len(),
                c.target,
                if c.enabled { "" } else { " (stopped)" }
            ));
        }
        // In a one-server world, its policy; with hosts, each host's differs
        // only where written, so the hosts that enforce are named.
        let enforcing: Vec<&str> = self
            .hosts
            .iter()
            .filter(|h| h.world.security.sender_auth == SenderAuthPolicy::Enforce)
            .map(|h| h.name.as_str())
            .collect();
        if self.hosts.is_empty() && w.security.sender_auth.is_on() {
            out.push_str(&format!(
                "  sender authentication: {} (SPF, DKIM, DMARC against the world's DNS)\n",
                match w.security.sender_auth {
                    SenderAuthPolicy::Enforce => "enforce",
                    _ => "record",
                }
            ));
        } else if !enforcing.is_empty() {
            out.push_str(&format!(
                "  sender authentication: enforced by host(s) {}\n",
                enforcing.join(", ")
            ));
        }
        for w in &self.warnings {
            out.push_str(&format!("  warning: {w}\n"));
        }
        out
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

/// The comment lines at the top of a file, `#` stripped.
fn leading_comment(src: &str) -> String {
    let mut lines = Vec::new();
    for line in src.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix('#') {
            lines.push(
                rest.strip_prefix(' ')
                    .unwrap_or(rest)
                    .trim_end()
                    .to_string(),
            );
        } else if !t.is_empty() || !lines.is_empty() {
            break;
        }
    }
    lines.join("\n").trim().to_string()
}

struct Builder<'a> {
    file: &'a str,
    src: &'a str,
    mailboxes: Vec<Mailbox>,
    /// Lower-cased address → mailbox, so a world of 100,000 mailboxes builds in linear time.
    by_key: HashMap<String, MailboxId>,
    /// The password given to the mailbox built last (see `shared_password`).
    last_password: Option<Text>,
}

impl Builder<'_> {
    fn err(&self, offset: usize, message: impl Into<String>) -> ScenarioError {
        ScenarioError::at(self.file, self.src, offset, message)
    }

    fn build(&mut self, f: &ScenarioFile) -> Result<WorldParts, ScenarioError> {
        let hostname = f
            .server
            .hostname
            .clone()
            .unwrap_or_else(|| "mx.mailrig.test".to_string());
        let identity = ServerIdentity {
            banner: f
                .server
                .banner
                .clone()
                .unwrap_or_else(|| format!("{hostname} ESMTP mailrig")),
            hostname,
            extensions: f
                .server
                .extensions
                .clone()
                .unwrap_or_else(|| DEFAULT_EXTENSIONS.iter().map(|s| s.to_string()).collect())
                .into_iter()
                .map(|e| e.to_ascii_uppercase())
                .collect(),
            vrfy: match f.server.vrfy {
                VrfyFile::CannotVerify => VrfyPolicy::CannotVerify,
                VrfyFile::Verify => VrfyPolicy::Verify,
                VrfyFile::Disabled => VrfyPolicy::Disabled,
            },
            bare_lf: match f.server.bare_lf {
                BareLfFile::Normalize => BareLfPolicy::Normalize,
                BareLfFile::Reject => BareLfPolicy::Reject,
            },
        };
        let security = Security {
            smtp_auth: match f.security.smtp_auth {
                AuthFile::Off => AuthMode::Off,
                AuthFile::Optional => AuthMode::Optional,
                AuthFile::Required => AuthMode::Required,
            },
            plaintext_auth: f.security.plaintext_auth,
            starttls: f.security.starttls,
            sender_auth: f.security.sender_auth.unwrap_or(
                if f.dns.is_some() || !f.host.is_empty() {
                    crate::sender_auth::SenderAuthPolicy::Record
                } else {
                    crate::sender_auth::SenderAuthPolicy::Off
                },
            ),
        };
        let limits = self.limits(&f.limits)?;
        if f.domain.is_empty() {
            return Err(self.err(0, "a scenario needs at least one [[domain]]"));
        }

        // First pass: every mailbox of every domain, so aliases may point across domains.
        let mut domain_boxes: Vec<Vec<MailboxId>> = Vec::new();
        let mut seen_domains = std::collections::HashSet::new();
        for d in &f.domain {
            let name = d.name.get_ref().trim().to_lowercase();
            if name.is_empty() || name.contains(['@', ' ', '/']) {
                return Err(self.err(
                    d.name.span().start,
                    format!("'{name}' is not a domain name"),
                ));
            }
            if !seen_domains.insert(name.clone()) {
                return Err(self.err(
                    d.name.span().start,
                    format!("domain '{name}' is defined twice"),
                ));
            }
            let mut ids = Vec::new();
            for entry in &d.mailboxes {
                for local in self.expand(entry)? {
                    ids.push(self.add_mailbox(
                        &name,
                        &local,
                        None,
                        d.password.as_deref(),
                        entry.span().start,
                    )?);
                }
            }
            for m in &d.mailbox {
                let local = m.name.get_ref().trim();
                let id = self.add_mailbox(
                    &name,
                    local,
                    m.login.as_deref(),
                    m.password.as_deref().or(d.password.as_deref()),
                    m.name.span().start,
                )?;
                ids.push(id);
            }
            domain_boxes.push(ids);
        }

        // Second pass: aliases and catch-alls.
        let mut domains = Vec::new();
        for (d, ids) in f.domain.iter().zip(domain_boxes) {
            let name = d.name.get_ref().trim().to_lowercase();
            let mut aliases = std::collections::HashMap::new();
            for (alias, targets) in &d.aliases {
                let key = alias.to_lowercase();
                if self.find(&format!("{key}@{name}")).is_some() {
                    return Err(self.err(
                        targets.span().start,
                        format!("alias '{alias}@{name}' is also a mailbox; remove one of them"),
                    ));
                }
                let mut out = Vec::new();
                let items = targets.get_ref().items();
                if items.is_empty() {
                    return Err(self.err(
                        targets.span().start,
                        format!("alias '{alias}' has no target"),
                    ));
                }
                for t in items {
                    let full = self.target_key(t, &name, targets.span().start)?;
                    let id = self.find(&full).ok_or_else(|| {
                        self.err(
                            targets.span().start,
                            format!("alias '{alias}' points to '{full}', which is not a mailbox of this scenario"),
                        )
                    })?;
                    out.push(id);
                }
                aliases.insert(key, out);
            }
            let catch_all = match &d.catch_all {
                None => None,
                Some(c) => {
                    let full = self.target_key(c.get_ref(), &name, c.span().start)?;
                    Some(self.find(&full).ok_or_else(|| {
                        self.err(
                            c.span().start,
                            format!("catch_all '{full}' is not a mailbox of this scenario"),
                        )
                    })?)
                }
            };
            let unknown = match (
                d.unknown_recipient
                    .as_ref()
                    .map(|u| (*u.get_ref(), u.span().start)),
                catch_all,
            ) {
                (None, None) | (Some((UnknownFile::Reject, _)), _) => UnknownRecipient::Reject,
                (None, Some(c)) | (Some((UnknownFile::CatchAll, _)), Some(c)) => {
                    UnknownRecipient::CatchAll(c)
                }
                (Some((UnknownFile::CatchAll, at)), None) => {
                    return Err(self.err(at, "unknown_recipient = \"catch-all\" needs a catch_all mailbox in this domain"));
                }
            };
            domains.push(Domain {
                name,
                mailboxes: ids,
                aliases,
                catch_all,
                unknown,
            });
        }
        Ok(WorldParts {
            identity,
            security,
            limits,
            domains,
            mailboxes: std::mem::take(&mut self.mailboxes),
        })
    }

    fn limits(&self, l: &LimitsSection) -> Result<Limits, ScenarioError> {
        let mut out = Limits::default();
        let positive =
            |v: &Option<Spanned<u64>>, what: &str| -> Result<Option<u64>, ScenarioError> {
                match v {
                    None => Ok(None),
                    Some(s) if *s.get_ref() == 0 => {
                        Err(self.err(s.span().start, format!("{what} must be greater than 0")))
                    }
                    Some(s) => Ok(Some(*s.get_ref())),
                }
            };
        if let Some(v) = positive(&l.max_message_size, "max_message_size")? {
            out.max_message_size = v as usize;
        }
        if let Some(v) = positive(&l.max_recipients, "max_recipients")? {
            out.max_recipients = v as usize;
        }
        if let Some(v) = positive(&l.max_connections, "max_connections")? {
            out.max_connections = v as usize;
        }
        if let Some(v) = positive(&l.idle_timeout_secs, "idle_timeout_secs")? {
            out.idle_timeout = Duration::from_secs(v);
        }
        if let Some(v) = positive(&l.max_literal, "max_literal")? {
            out.max_literal = v as usize;
        }
        if let Some(v) = positive(&l.max_auth_failures, "max_auth_failures")? {
            out.max_auth_failures = u32::try_from(v).unwrap_or(u32::MAX);
        }
        if let Some(s) = &l.max_line_length {
            // A line is at least its CRLF; anything shorter would refuse every message.
            if *s.get_ref() < 3 {
                return Err(self.err(
                    s.span().start,
                    "max_line_length counts the CRLF and must be at least 3",
                ));
            }
            out.max_line_length = Some(usize::try_from(*s.get_ref()).unwrap_or(usize::MAX));
        }
        if let Some(v) = positive(&l.listen_backlog, "listen_backlog")? {
            out.listen_backlog = u32::try_from(v).unwrap_or(u32::MAX);
        }
        out.quota_storage_kib = positive(&l.quota_storage_kib, "quota_storage_kib")?;
        out.quota_messages = positive(&l.quota_messages, "quota_messages")?;
        Ok(out)
    }

    /// The lookup key of an alias or catch-all target: a full address (checked
    /// with the one address check), or a local part of this domain.
    fn target_key(&self, target: &str, domain: &str, at: usize) -> Result<String, ScenarioError> {
        if target.contains('@') {
            let address = Address::parse(target).map_err(|e| self.err(at, e.to_string()))?;
            Ok(address.key())
        } else {
            Ok(format!("{}@{domain}", target.to_lowercase()))
        }
    }

    fn find(&self, full: &str) -> Option<MailboxId> {
        self.by_key.get(full).copied()
    }

    fn add_mailbox(
        &mut self,
        domain: &str,
        local: &str,
        login: Option<&str>,
        password: Option<&str>,
        at: usize,
    ) -> Result<MailboxId, ScenarioError> {
        if local.is_empty()
            || local.contains(['@', '/', '\\'])
            || local.chars().any(|c| c.is_whitespace() || c.is_control())
            || local.starts_with('.')
        {
            return Err(self.err(
                at,
                format!(
                    "'{local}' is not a valid mailbox name (no '@', '/', spaces, or leading '.')"
                ),
            ));
        }
        // The name rules above keep Maildir paths safe; the address itself
        // passes the one address check (length, characters) like every other.
        let mut address = Address::parse(&format!("{local}@{domain}"))
            .map_err(|e| self.err(at, e.to_string()))?;
        self.share_domain(&mut address);
        let key = address.key();
        if self.by_key.contains_key(&key) {
            return Err(self.err(at, format!("mailbox '{key}' is defined twice")));
        }
        let password = password.ok_or_else(|| {
            self.err(
                at,
                format!(
                    "mailbox '{key}' has no password: set `password` on the domain or the mailbox"
                ),
            )
        })?;
        let id = MailboxId(self.mailboxes.len() as u32);
        self.by_key.insert(key, id);
        let password = self.shared_password(password);
        self.mailboxes.push(Mailbox {
            id,
            login: login.map_or_else(|| address.to_string().into(), Into::into),
            address,
            password,
        });
        Ok(id)
    }

    /// Gives `address` the domain text of the mailbox built before it, when
    /// it is the same domain (as it is for all but a domain's first).
    fn share_domain(&mut self, address: &mut Address) {
        match self.mailboxes.last() {
            Some(prev) if prev.address.domain() == address.domain() => {
                address.share_domain(&prev.address.domain_text());
            }
            _ => {}
        }
    }

    /// The password as a shared text: the mailboxes of a domain mostly have
    /// the domain's one password, kept once rather than once per mailbox.
    fn shared_password(&mut self, password: &str) -> Text {
        match &self.last_password {
            Some(p) if &**p == password => p.clone(),
            _ => {
                let p: Text = password.into();
                self.last_password = Some(p.clone());
                p
            }
        }
    }

    /// Expands a range (`user01..user25`, `user{01..25}`, see [`crate::range`])
    /// into its names; other entries are returned as they are.
    fn expand(&self, entry: &Spanned<String>) -> Result<Vec<String>, ScenarioError> {
        range::expand(entry.get_ref().trim())
            .map_err(|e| self.err(entry.span().start, e.to_string()))
    }
}

/// The hosts of `[[host]]` as the DNS publishes them: each under its host
/// name at its address, MX for its domains. Backup MX and relay hosts come
/// after the others, so that their MX preference is the higher (less
/// preferred) number, as a real backup MX has. A world without `[[host]]` is
/// one server: a host `mx.<domain>` per domain at the SMTP address `smtp`.
fn zone_hosts_at(
    world: &World,
    hosts: &[crate::host::Host],
    smtp: std::net::IpAddr,
) -> Vec<ZoneHost> {
    use crate::host::HostRole;
    if hosts.is_empty() {
        return crate::dns::implicit_hosts(world.domains.iter().map(|d| d.name.as_str()), smtp);
    }
    let mut ordered: Vec<&crate::host::Host> = hosts.iter().collect();
    ordered.sort_by_key(|h| !matches!(h.role, HostRole::Mailbox));
    ordered
        .into_iter()
        .map(|h| ZoneHost {
            name: h.hostname.clone(),
            addrs: vec![std::net::IpAddr::V4(h.address)],
            mx_for: h.mx_for.clone(),
        })
        .collect()
}

/// In a world of `[[host]]`s, an explicit MX must name a host the world can
/// reach: a name with an A/AAAA record in its zones (every host's DNS name
/// has one). Inside the zones [`crate::dns::build_zones`] already refuses
/// one without; this refuses the rest (a bare `[[host]]` name, a name
/// outside every zone), which a one-server world only warns about (mail
/// leaving the world). `(offset of the value, message)`.
fn mx_to_unknown_host(
    dns: &DnsSpec,
    zones: &crate::dns::Zones,
    hosts: &[crate::host::Host],
) -> Option<(usize, String)> {
    use crate::dns::{RecordData, RecordType};
    if hosts.is_empty() {
        return None;
    }
    for r in &dns.records {
        let RecordData::Mx { exchange, .. } = &r.data else {
            continue;
        };
        if !zones.get(exchange, RecordType::A).is_empty()
            || !zones.get(exchange, RecordType::Aaaa).is_empty()
        {
            continue;
        }
        let by_table_name = hosts
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(exchange.trim_end_matches('.')));
        let hint = match by_table_name {
            Some(h) => format!(
                "; an MX names a DNS name: write '{}' (host '{}''s hostname)",
                h.hostname, h.name
            ),
            None => {
                let mut names: Vec<&str> = hosts.iter().map(|h| h.hostname.as_str()).collect();
                names.sort_unstable();
                let more = names.len().saturating_sub(5);
                names.truncate(5);
                let more = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                format!("; the hosts are {}{more}", names.join(", "))
            }
        };
        return Some((
            r.value_at,
            format!(
                "MX of '{}' points at '{exchange}', which is no host of this world{hint}",
                r.name
            ),
        ));
    }
    None
}

/// The same at parse time, on loopback (where `mailrig serve` listens).
fn zone_hosts(world: &World, hosts: &[crate::host::Host]) -> Vec<ZoneHost> {
    zone_hosts_at(
        world,
        hosts,
        std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> String {
        Scenario::parse(src, "s.toml").unwrap_err().to_string()
    }

    const DNS_WORLD: &str = "[[domain]]\nname = 'd.test'\npassword = 'p'\nmailboxes = ['a']\n";

    #[test]
    fn in_a_world_of_hosts_an_mx_must_name_one_of_them() {
        let hosts = "[[host]]\nname = 'h'\naddress = '127.0.3.2'\ndomains = ['d.test']\n";
        let mx = |value: &str| {
            format!(
                "{DNS_WORLD}{hosts}[[dns.record]]\nname = 'd.test'\ntype = 'MX'\nvalue = '{value}'\n"
            )
        };
        let e = err(&mx("10 h"));
        assert!(
            e.starts_with("s.toml:12:9: [dns]: MX of 'd.test' points at 'h', which is no host of this world; an MX names a DNS name: write 'h.mailrig.test'"),
            "{e}"
        );
        let e = err(&mx("10 mx.isp.test"));
        assert!(
            e.starts_with("s.toml:12:9: [dns]: MX of 'd.test' points at 'mx.isp.test', which is no host of this world; the hosts are h.mailrig.test"),
            "{e}"
        );
        assert!(Scenario::parse(&mx("10 h.mailrig.test"), "s.toml").is_ok());
        // A one-server world only warns: mail for it leaves the world.
        let one = format!(
            "{DNS_WORLD}[[dns.record]]\nname = 'd.test'\ntype = 'MX'\nvalue = '10 mx.isp.test'\n"
        );
        let s = Scenario::parse(&one, "s.toml").unwrap();
        assert!(
            s.warnings.iter().any(|w| w.contains("leaves the world")),
            "{:?}",
            s.warnings
        );
    }

    #[test]
    fn dns_records_are_checked_with_their_place() {
        let e = err(&format!(
            "{DNS_WORLD}[[dns.record]]\nname = 'x.other'\ntype = 'A'\nvalue = '127.0.0.2'\n"
        ));
        assert!(
            e.starts_with("s.toml:5:1: [dns]: 'x.other' is in no zone"),
            "{e}"
        );
        let e = err(&format!(
            "{DNS_WORLD}[[dns.record]]\nname = 'mx2.d.test'\ntype = 'A'\nvalue = '127.0.0.300'\n"
        ));
        assert!(
            e.starts_with("s.toml:8:9: [dns]: '127.0.0.300' is not an IPv4"),
            "{e}"
        );
        let e = err(&format!(
            "{DNS_WORLD}[[dns.record]]\nname = 'd.test'\ntype = 'MX'\nvalue = '10 ghost.d.test'\n"
        ));
        assert!(
            e.starts_with(
                "s.toml:8:9: [dns]: MX of 'd.test' points at 'ghost.d.test', which has no A"
            ),
            "{e}"
        );
        let e = err(&format!("{DNS_WORLD}[dns]\nttl = 5\nbogus = 1\n"));
        assert!(e.starts_with("s.toml:7:1: unknown field `bogus`"), "{e}");
        let e = err(&format!(
            "{DNS_WORLD}[[dns.record]]\nname = 'd.test'\ntype = 'SRV'\nvalue = 'x'\n"
        ));
        assert!(
            e.starts_with("s.toml:7:8: [dns]: unknown record type 'SRV'"),
            "{e}"
        );
    }

    #[test]
    fn dns_zones_build_from_the_scenario() {
        let s = Scenario::parse(
            &format!(
                "{DNS_WORLD}[dns]\nttl = 30\n[[dns.record]]\nname = '_dmarc.d.test'\ntype = 'TXT'\nvalue = 'v=DMARC1; p=none'\n"
            ),
            "s.toml",
        )
        .unwrap();
        let hosts = crate::dns::implicit_hosts(["d.test"], "127.0.0.3".parse().unwrap());
        let (z, _) = s.zones(&hosts).unwrap();
        let a = z.get("mx.d.test", crate::dns::RecordType::A);
        assert_eq!(a[0].to_string(), "mx.d.test 30 A 127.0.0.3");
        assert_eq!(z.get("_dmarc.d.test", crate::dns::RecordType::Txt).len(), 1);
    }

    #[test]
    fn builtin_default_is_valid_and_small() {
        let s = Scenario::builtin_default();
        assert_eq!(s.world.domains.len(), 2);
        assert!(s.world.mailboxes.len() >= 4);
    }

    #[test]
    fn kanzlei_file_has_the_seed_names() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/catalog/kanzlei.toml");
        let s = Scenario::load(Path::new(path)).unwrap();
        let w = &s.world;
        assert_eq!(w.domain("kanzlei.test").unwrap().mailboxes.len(), 3);
        assert_eq!(w.domain("patente.test").unwrap().mailboxes.len(), 25);
        assert!(w.authenticate("user07@patente.test", "secret").is_some());
        assert!(w.authenticate("anna@kanzlei.test", "secret").is_some());
        assert!(w.authenticate("anna@kanzlei.test", "wrong").is_none());
        assert!(s.summary().contains("patente.test"));
    }

    #[test]
    fn logins_default_to_the_address_and_stay_unique() {
        let toml = "[[domain]]\nname='d.test'\npassword='p'\nmailboxes=['a', 'B']\n\
                    [[domain.mailbox]]\nname='c'\nlogin='carla'\npassword='q'\n";
        let s = Scenario::parse(toml, "x").unwrap();
        let w = &s.world;
        let a = w.mailbox_by_address("a@d.test");
        assert!(a.is_some());
        assert_eq!(w.authenticate("A@D.test", "p"), a);
        assert!(w.authenticate("b@d.test", "p").is_some());
        assert!(w.authenticate("carla", "q").is_some());
        // A mailbox with a login of its own is not reached by its address.
        assert!(w.authenticate("c@d.test", "q").is_none());
        assert_eq!(w.mailbox_by_login("c@d.test"), None);
        // The domain's mailboxes share its one password and domain name.
        assert!(std::sync::Arc::ptr_eq(
            &w.mailboxes[0].password,
            &w.mailboxes[1].password
        ));
        assert!(std::sync::Arc::ptr_eq(
            &w.mailboxes[0].address.domain_text(),
            &w.mailboxes[2].address.domain_text()
        ));
        // A default login is the address, kept once for the world and store.
        assert!(std::sync::Arc::ptr_eq(
            &w.mailboxes[1].address_text(),
            &w.mailboxes[1].login
        ));
        assert_eq!(&*w.mailboxes[1].address_text(), "B@d.test");
        assert_eq!(&*w.mailboxes[2].address_text(), "c@d.test");
        let e = Scenario::parse(
            "[[domain]]\nname='d.test'\npassword='p'\nmailboxes=['a']\n\
             [[domain.mailbox]]\nname='c'\nlogin='A@d.test'\n",
            "x",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("login 'A@d.test' is used by two mailboxes"),
            "{e}"
        );
    }

    #[test]
    fn ranges_expand_with_padding() {
        let s = Scenario::parse(
            "[[domain]]\nname='d.test'\npassword='p'\nmailboxes=['u8..u10','box001..box003']\n",
            "x",
        )
        .unwrap();
        let names: Vec<String> = s
            .world
            .mailboxes
            .iter()
            .map(|m| m.address.local().to_string())
            .collect();
        assert_eq!(names, ["u8", "u9", "u10", "box001", "box002", "box003"]);
        // The load driver's brace spelling works here too (one syntax, crate::range).
        let s = Scenario::parse(
            "[[domain]]\nname='d.test'\npassword='p'\nmailboxes=['u{1..2}','w3..w1']\n",
            "x",
        )
        .unwrap();
        let names: Vec<&str> = s
            .world
            .mailboxes
            .iter()
            .map(|m| m.address.local())
            .collect();
        assert_eq!(names, ["u1", "u2", "w3", "w2", "w1"]);
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = err("[[domain]]\nname = 'd.test'\npassword = 'p'\nmailboxes = ['a', 'a']\n");
        assert_eq!(e, "s.toml:4:19: mailbox 'a@d.test' is defined twice");
        let e = err("[server]\nhostname = 'x'\nbogus = 1\n");
        assert!(e.starts_with("s.toml:3:1: unknown field `bogus`"), "{e}");
        let e = err("[[domain]]\nname = 'd.test'\nmailboxes = ['a']\n");
        assert!(
            e.contains("s.toml:3:14: mailbox 'a@d.test' has no password"),
            "{e}"
        );
        let e = err(
            "[[domain]]\nname='d.test'\npassword='p'\nmailboxes=['a']\n[domain.aliases]\ninfo = 'nobody'\n",
        );
        assert!(
            e.starts_with("s.toml:6:8: alias 'info' points to 'nobody@d.test'"),
            "{e}"
        );
        let e = err("[server]\nvrfy = 'maybe'\n");
        assert!(e.starts_with("s.toml:2:8: unknown variant `maybe`"), "{e}");
        let e = err("[[domain]]\nname='d.test'\npassword='p'\nmailboxes=['u01..v02']\n");
        assert_eq!(
            e,
            "s.toml:4:12: range 'u01..v02' has different prefixes 'u' and 'v'"
        );
        let e = err("this is not toml");
        assert!(e.starts_with("s.toml:1:"), "{e}");
        let e = err("");
        assert!(e.contains("at least one [[domain]]"), "{e}");
        let e = err("[limits]\nmax_recipients = 0\n[[domain]]\nname='d'\n");
        assert_eq!(e, "s.toml:2:18: max_recipients must be greater than 0");
        let e = err("[limits]\nmax_line_length = 2\n[[domain]]\nname='d'\n");
        assert_eq!(
            e,
            "s.toml:2:19: max_line_length counts the CRLF and must be at least 3"
        );
        let e = err(
            "[[domain]]\nname='d.test'\npassword='p'\nmailboxes=['a']\nunknown_recipient='catch-all'\n",
        );
        assert!(e.contains("needs a catch_all"), "{e}");
    }

    #[test]
    fn quotas() {
        let d = "[[domain]]\nname='d'\nmailboxes=['a']\npassword='p'\n";
        let s = Scenario::parse(d, "x").unwrap();
        assert!(!s.world.limits.has_quota());
        let s = Scenario::parse(
            &format!("[limits]\nquota_storage_kib = 10\nquota_messages = 3\n{d}"),
            "x",
        )
        .unwrap();
        assert_eq!(s.world.limits.quota_storage_kib, Some(10));
        assert_eq!(s.world.limits.quota_messages, Some(3));
        let full = |bytes, messages| {
            s.world
                .limits
                .quota_full(crate::world::Usage { bytes, messages })
        };
        assert!(!full(9 * 1024, 2));
        assert!(full(9 * 1024 + 1, 2), "rounded up to 10 KiB");
        assert!(full(0, 3));
        let e = err(&format!("[limits]\nquota_messages = 0\n{d}"));
        assert!(e.contains("quota_messages must be greater than 0"), "{e}");
    }

    #[test]
    fn line_length_and_auth_failure_limits() {
        let d = "[[domain]]\nname='d'\npassword='p'\nmailboxes=['a']\n";
        let s = Scenario::parse(d, "x").unwrap();
        assert_eq!(s.world.limits.max_line_length, None);
        let s = Scenario::parse(&format!("[limits]\nmax_line_length = 1000\n{d}"), "x").unwrap();
        assert_eq!(s.world.limits.max_line_length, Some(1000));
        assert_eq!(s.world.limits.max_auth_failures, 3);
        let s = Scenario::parse(&format!("[limits]\nmax_auth_failures = 1\n{d}"), "x").unwrap();
        assert_eq!(s.world.limits.max_auth_failures, 1);
        let e = err(&format!("[limits]\nmax_auth_failures = 0\n{d}"));
        assert_eq!(e, "s.toml:2:21: max_auth_failures must be greater than 0");
    }

    #[test]
    fn description_is_the_leading_comment() {
        let s = Scenario::parse(
            "# Line one\n# line two\n\n# not this\n[[domain]]\nname='d'\n",
            "x",
        )
        .unwrap();
        assert_eq!(s.description, "Line one\nline two");
    }
}
