//! `MockServer`: a whole fake mail world started in-process — SMTP, SMTPS,
//! IMAP, IMAPS and POP3 listeners and the HTTP control API over one store — on
//! port 0 by default, with the addresses it got, direct access to the store and journal, and a
//! `shutdown()` that ends every task. `mailrig serve` is this same type with
//! fixed addresses.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mailrig_core::JournalEntry;
use mailrig_core::fault::FaultRuleSpec;
use mailrig_core::store::{INBOX, StoredMessage};
use mailrig_core::{Scenario, ScenarioError, Store, StoreError, World};
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use crate::faults::FaultInfo;
use crate::state::ServerState;
use crate::tls::{TlsError, TlsMaterial};

/// Why a mock server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    HttpAccess(#[from] crate::http::AccessError),
    /// The scenario's DNS zones cannot be built for the hosts the server runs.
    #[error("DNS zones: {0}")]
    Dns(#[from] mailrig_core::dns::ZoneError),
    /// The sender authentication checker could not be made.
    #[error("{0}")]
    SenderAuth(String),
    #[error("cannot listen for {what} on {addr}: {reason}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        reason: String,
    },
}

/// Which listeners to open, and where.
#[derive(Debug, Clone)]
pub struct MockServerBuilder {
    scenario: Option<Scenario>,
    maildir: Option<PathBuf>,
    ca_path: Option<PathBuf>,
    smtp: Option<SocketAddr>,
    smtps: Option<SocketAddr>,
    imap: Option<SocketAddr>,
    imaps: Option<SocketAddr>,
    pop3: Option<SocketAddr>,
    pop3s: Option<SocketAddr>,
    http: Option<SocketAddr>,
    dns: Option<SocketAddr>,
    listen_backlog: Option<u32>,
    http_access: Result<crate::http::AccessPolicy, crate::http::AccessError>,
    /// Whether `[[host]]` listeners bind the ports the scenario gives (serve)
    /// or port 0 each (tests, the default).
    host_ports_as_written: bool,
}

fn loopback0() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 0)))
}

impl Default for MockServerBuilder {
    fn default() -> Self {
        MockServerBuilder {
            scenario: None,
            maildir: None,
            ca_path: None,
            smtp: loopback0(),
            smtps: loopback0(),
            imap: loopback0(),
            imaps: loopback0(),
            pop3: loopback0(),
            pop3s: loopback0(),
            http: loopback0(),
            dns: None,
            listen_backlog: None,
            http_access: Ok(crate::http::AccessPolicy::default()),
            host_ports_as_written: false,
        }
    }
}

impl MockServerBuilder {
    /// The world to serve (default: the built-in default world).
    pub fn scenario(mut self, scenario: Scenario) -> Self {
        self.scenario = Some(scenario);
        self
    }

    /// Reads the world from a scenario file.
    pub fn scenario_file(self, path: impl AsRef<Path>) -> Result<Self, ScenarioError> {
        Ok(self.scenario(Scenario::load(path.as_ref())?))
    }

    /// Parses the world from scenario text.
    pub fn scenario_toml(self, text: &str) -> Result<Self, ScenarioError> {
        Ok(self.scenario(Scenario::parse(text, "<inline scenario>")?))
    }

    /// Persists messages as Maildir under `dir` (default: memory only).
    pub fn maildir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.maildir = Some(dir.into());
        self
    }

    /// Where to write the CA certificate (default: a fresh temporary file).
    pub fn ca_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_path = Some(path.into());
        self
    }

    /// SMTP listener address; `None` turns it off.
    pub fn smtp(mut self, addr: Option<SocketAddr>) -> Self {
        self.smtp = addr;
        self
    }

    pub fn smtps(mut self, addr: Option<SocketAddr>) -> Self {
        self.smtps = addr;
        self
    }

    pub fn imap(mut self, addr: Option<SocketAddr>) -> Self {
        self.imap = addr;
        self
    }

    pub fn imaps(mut self, addr: Option<SocketAddr>) -> Self {
        self.imaps = addr;
        self
    }

    pub fn pop3(mut self, addr: Option<SocketAddr>) -> Self {
        self.pop3 = addr;
        self
    }

    /// POP3 with TLS from the first byte; `None` turns it off.
    pub fn pop3s(mut self, addr: Option<SocketAddr>) -> Self {
        self.pop3s = addr;
        self
    }

    /// HTTP control API address (JSON under `/api/v1`, `/metrics`, `/`); `None` turns it off.
    pub fn http(mut self, addr: Option<SocketAddr>) -> Self {
        self.http = addr;
        self
    }

    /// The world's DNS server (UDP and TCP on one port; off by default):
    /// authoritative for the scenario's zones (`[dns]`), with the SMTP
    /// listener's address as every domain's MX host `mx.<domain>`. Port 0
    /// picks a free port ([`MockServer::dns_addr`]).
    pub fn dns(mut self, addr: Option<SocketAddr>) -> Self {
        self.dns = addr;
        self
    }

    /// Listen backlog of every listener (default: the scenario's
    /// `[limits] listen_backlog`, 4096 if it sets none): how many clients
    /// connecting at once wait to be accepted instead of being refused.
    pub fn listen_backlog(mut self, backlog: u32) -> Self {
        self.listen_backlog = Some(backlog);
        self
    }

    /// Lets the HTTP API answer requests for this host name or address too
    /// (besides loopback and the address it listens on); `*` allows any
    /// `Host`, which turns the DNS-rebinding check off. A bad name fails
    /// `start()`.
    pub fn http_allow_host(mut self, name: &str) -> Self {
        self.http_access = self.http_access.and_then(|p| p.allow_host(name));
        self
    }

    /// Requires `Authorization: Bearer TOKEN` (or HTTP Basic with the token
    /// as password) with every HTTP request; a bad token fails `start()`.
    pub fn http_token(mut self, token: &str) -> Self {
        self.http_access = self.http_access.and_then(|p| p.token(token));
        self
    }

    /// `[[host]]` listeners bind the ports the scenario gives them (25 for
    /// SMTP unless it says otherwise), as `mailrig serve` does; by default
    /// each binds port 0 at its host's address, so tests never collide.
    pub fn host_ports_as_written(mut self) -> Self {
        self.host_ports_as_written = true;
        self
    }

    /// Binds every listener and starts serving.
    ///
    /// In a world of `[[host]]`s, the listeners set on this builder serve the
    /// first host (so `smtp_addr()`, `inbox()` and the HTTP API work as in a
    /// one-server world), and every host also listens at its own address.
    pub async fn start(self) -> Result<MockServer, StartError> {
        let http_access = Arc::new(self.http_access?);
        let mut scenario = self.scenario.unwrap_or_else(Scenario::builtin_default);
        if let Some(b) = self.listen_backlog {
            Arc::make_mut(&mut scenario.world).limits.listen_backlog = b.max(1);
            for h in &mut scenario.hosts {
                Arc::make_mut(&mut h.world).limits.listen_backlog = b.max(1);
            }
        }
        let primary = scenario.hosts.first().cloned();
        let world = match &primary {
            Some(h) => Arc::clone(&h.world),
            None => Arc::clone(&scenario.world),
        };
        let backlog = world.limits.listen_backlog;
        let mut tls = TlsMaterial::generate(&world.identity.hostname)?;
        let mut temp_dir = None;
        let ca_path = match self.ca_path {
            Some(p) => p,
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("mailrig-ca-")
                    .tempdir()
                    .map_err(|e| TlsError::WriteCa {
                        path: "<temp dir>".into(),
                        reason: e.to_string(),
                    })?;
                let p = dir.path().join("ca.pem");
                temp_dir = Some(dir);
                p
            }
        };
        tls.write_ca(&ca_path)?;
        raise_fd_limit(world.limits.max_connections);
        let tls = Arc::new(tls);
        let state = match &primary {
            Some(h) => crate::hosts::state_for(
                h,
                Arc::new(tls.for_host(&h.hostname, h.address.into())?),
                &mailrig_core::Journal::default(),
                self.maildir.as_deref(),
                tokio_util::sync::CancellationToken::new(),
            )?,
            None => {
                let store = Arc::new(match &self.maildir {
                    Some(dir) => Store::open_maildir(&world, dir)?,
                    None => Store::memory(&world),
                });
                let faults = scenario.faults.rebuild(&world);
                ServerState::new(world, store, Arc::clone(&tls), faults)
            }
        };
        let tracker = TaskTracker::new();
        // Every host's listeners are bound before anything accepts, too.
        let mut host_states = Vec::new();
        for (i, h) in scenario.hosts.iter().enumerate() {
            let st = if i == 0 {
                Arc::clone(&state)
            } else {
                let cert = Arc::new(tls.for_host(&h.hostname, h.address.into())?);
                crate::hosts::state_for(
                    h,
                    cert,
                    &state.journal,
                    self.maildir.as_deref(),
                    state.shutdown.clone(),
                )?
            };
            let bound = crate::hosts::bind_host(
                h,
                !self.host_ports_as_written,
                h.world.limits.listen_backlog,
            )?;
            host_states.push((h.clone(), bound, st));
        }
        let mut addrs = Addresses::default();

        // Bind everything first: a listener that cannot bind fails the start
        // before any other one accepts a client.
        let bound = Bound {
            smtp: bind_opt("SMTP", self.smtp, backlog)?,
            smtps: bind_opt("SMTPS", self.smtps, backlog)?,
            imap: bind_opt("IMAP", self.imap, backlog)?,
            imaps: bind_opt("IMAPS", self.imaps, backlog)?,
            pop3: bind_opt("POP3", self.pop3, backlog)?,
            pop3s: bind_opt("POP3S", self.pop3s, backlog)?,
            http: bind_opt("HTTP", self.http, backlog)?,
        };
        let local = |l: &Option<TcpListener>| l.as_ref().and_then(|l| l.local_addr().ok());
        addrs.smtp = local(&bound.smtp);
        addrs.smtps = local(&bound.smtps);
        addrs.imap = local(&bound.imap);
        addrs.imaps = local(&bound.imaps);
        addrs.pop3 = local(&bound.pop3);
        addrs.pop3s = local(&bound.pop3s);
        addrs.http = local(&bound.http);
        let checks = state.world.security.sender_auth.is_on()
            || host_states
                .iter()
                .any(|(_, _, st)| st.world.security.sender_auth.is_on());
        // Each `[[host]]` under its name at its address; a world without
        // them is one server at the SMTP address. One set of zones serves
        // the DNS server and the sender authentication checks.
        let zones = || -> Result<Arc<mailrig_core::dns::Zones>, StartError> {
            let fallback = self.dns.map_or(Ipv4Addr::LOCALHOST.into(), |a| a.ip());
            let ip = addrs.smtp.map_or(fallback, |a| a.ip());
            let (zones, _warnings) = scenario.zones(&scenario.zone_hosts(ip))?;
            Ok(Arc::new(zones))
        };
        let world_zones = if self.dns.is_some() || checks {
            Some(zones()?)
        } else {
            None
        };
        if let (true, Some(z)) = (checks, &world_zones) {
            let checker = Arc::new(
                crate::sender_auth::SenderAuth::new(Arc::clone(z))
                    .map_err(StartError::SenderAuth)?,
            );
            for st in std::iter::once(&state).chain(host_states.iter().map(|(_, _, st)| st)) {
                if st.world.security.sender_auth.is_on() {
                    let _ = st.sender_auth.set(Arc::clone(&checker));
                }
            }
        }
        let dns = match (self.dns, world_zones) {
            (Some(addr), Some(zones)) => {
                let sockets = crate::dns::DnsSockets::bind(addr, backlog)
                    .await
                    .map_err(|e| StartError::Bind {
                        what: "DNS",
                        addr,
                        reason: e.to_string(),
                    })?;
                addrs.dns = sockets.local_addr().ok();
                Some((sockets, zones))
            }
            _ => None,
        };
        let st = || Arc::clone(&state);
        for (l, tls) in [(bound.smtp, false), (bound.smtps, true)] {
            if let Some(l) = l {
                tracker.spawn(crate::smtp::serve(l, tls, st(), tracker.clone()));
            }
        }
        for (l, tls) in [(bound.imap, false), (bound.imaps, true)] {
            if let Some(l) = l {
                tracker.spawn(crate::imap::serve(l, tls, st(), tracker.clone()));
            }
        }
        for (l, tls) in [(bound.pop3, false), (bound.pop3s, true)] {
            if let Some(l) = l {
                tracker.spawn(crate::pop3::serve(l, tls, st(), tracker.clone()));
            }
        }
        if let Some((sockets, zones)) = dns {
            tracker.spawn(crate::dns::serve(sockets, zones, st()));
        }
        if let Some(l) = bound.http {
            tracker.spawn(crate::http::serve(l, st(), Arc::clone(&http_access)));
        }
        let hosts: Vec<crate::hosts::HostServer> = host_states
            .into_iter()
            .map(|(h, bound, st)| crate::hosts::serve_host(h, bound, st, &tracker))
            .collect();
        if !hosts.is_empty() {
            let _ = state.world_hosts.set(
                hosts
                    .iter()
                    .map(|h| (h.name().to_string(), Arc::downgrade(h.state())))
                    .collect(),
            );
            let _ = state.world_directory.set(
                hosts
                    .iter()
                    .map(|h| crate::hosts::arrivals::HostEntry {
                        name: h.name().to_string(),
                        hostname: h.host.hostname.clone(),
                        role: h.host.role.name(),
                        state: Arc::downgrade(h.state()),
                    })
                    .collect(),
            );
        }
        for h in &hosts {
            if let Some((to, retry)) = h.host.role.forward_to() {
                let to_addr = hosts
                    .iter()
                    .find(|o| o.name() == to)
                    .and_then(|o| o.addresses().smtp);
                tracker.spawn(crate::hosts::forward::run(
                    Arc::clone(h.state()),
                    to.to_string(),
                    to_addr,
                    retry,
                    Arc::clone(&h.forward_lock),
                ));
            }
        }
        let mut collectors = Vec::new();
        for c in &scenario.collectors {
            let source = match &c.source {
                mailrig_core::collector::CollectSource::Server(a) => Some(*a),
                mailrig_core::collector::CollectSource::Host(n) => hosts
                    .iter()
                    .find(|h| h.name() == n)
                    .and_then(|h| match c.protocol {
                        mailrig_core::collector::CollectProtocol::Pop3 => h.addresses().pop3,
                        mailrig_core::collector::CollectProtocol::Imap => h.addresses().imap,
                    }),
            };
            let Some(target) = hosts.iter().find(|h| h.name() == c.target) else {
                continue;
            };
            let runner = Arc::new(
                crate::collector::CollectorRunner::new(
                    c.clone(),
                    source,
                    Arc::clone(target.state()),
                )
                .with_rules_of(Arc::clone(&state)),
            );
            tracker.spawn(Arc::clone(&runner).run());
            collectors.push(runner);
        }

        Ok(MockServer {
            state,
            addrs,
            scenario,
            tracker,
            hosts,
            collectors,
            _temp_dir: temp_dir,
        })
    }
}

/// Raises the soft limit on open files towards what `max_connections`
/// clients need (never above the hard limit, never lowered), so the
/// connection limit and not the file-descriptor limit is what clients meet.
fn raise_fd_limit(max_connections: usize) {
    let want = u64::try_from(max_connections)
        .unwrap_or(u64::MAX)
        .saturating_add(256);
    match rlimit::increase_nofile_limit(want) {
        Ok(got) if got < want => tracing::warn!(
            open_files = got,
            max_connections,
            "the open-file limit is below max_connections; raise it (ulimit -n) or lower [limits] max_connections"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

/// The listeners of one server, bound and not yet accepting.
struct Bound {
    smtp: Option<TcpListener>,
    smtps: Option<TcpListener>,
    imap: Option<TcpListener>,
    imaps: Option<TcpListener>,
    pop3: Option<TcpListener>,
    pop3s: Option<TcpListener>,
    http: Option<TcpListener>,
}

fn bind_opt(
    what: &'static str,
    addr: Option<SocketAddr>,
    backlog: u32,
) -> Result<Option<TcpListener>, StartError> {
    match addr {
        Some(a) => bind(what, a, backlog).map(Some),
        None => Ok(None),
    }
}

fn bind(what: &'static str, addr: SocketAddr, backlog: u32) -> Result<TcpListener, StartError> {
    crate::listener::bind(addr, backlog).map_err(|e| StartError::Bind {
        what,
        addr,
        reason: e.to_string(),
    })
}

/// The addresses a running server listens on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Addresses {
    pub smtp: Option<SocketAddr>,
    pub smtps: Option<SocketAddr>,
    pub imap: Option<SocketAddr>,
    pub imaps: Option<SocketAddr>,
    pub pop3: Option<SocketAddr>,
    pub pop3s: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    /// The DNS server (UDP and TCP on this one address).
    pub dns: Option<SocketAddr>,
}

/// A running fake mail world.
#[derive(Debug)]
pub struct MockServer {
    state: Arc<ServerState>,
    addrs: Addresses,
    scenario: Scenario,
    tracker: TaskTracker,
    hosts: Vec<crate::hosts::HostServer>,
    collectors: Vec<Arc<crate::collector::CollectorRunner>>,
    _temp_dir: Option<tempfile::TempDir>,
}

impl MockServer {
    pub fn builder() -> MockServerBuilder {
        MockServerBuilder::default()
    }

    /// Starts the built-in default world on port 0 everywhere.
    pub async fn start_default() -> Result<MockServer, StartError> {
        Self::builder().start().await
    }

    pub fn addresses(&self) -> Addresses {
        self.addrs
    }

    /// The SMTP address (panics if the SMTP listener was turned off).
    pub fn smtp_addr(&self) -> SocketAddr {
        self.addrs.smtp.expect("SMTP listener is off")
    }

    pub fn smtps_addr(&self) -> SocketAddr {
        self.addrs.smtps.expect("SMTPS listener is off")
    }

    pub fn imap_addr(&self) -> SocketAddr {
        self.addrs.imap.expect("IMAP listener is off")
    }

    pub fn imaps_addr(&self) -> SocketAddr {
        self.addrs.imaps.expect("IMAPS listener is off")
    }

    pub fn pop3_addr(&self) -> SocketAddr {
        self.addrs.pop3.expect("POP3 listener is off")
    }

    pub fn pop3s_addr(&self) -> SocketAddr {
        self.addrs.pop3s.expect("POP3S listener is off")
    }

    /// The HTTP control API address (panics if the HTTP listener was turned off).
    pub fn http_addr(&self) -> SocketAddr {
        self.addrs.http.expect("HTTP listener is off")
    }

    /// The DNS server's address, UDP and TCP (panics if DNS is off, the default).
    pub fn dns_addr(&self) -> SocketAddr {
        self.addrs
            .dns
            .expect("DNS is off; turn it on with MockServerBuilder::dns")
    }

    pub fn state(&self) -> &Arc<ServerState> {
        &self.state
    }

    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    pub fn world(&self) -> &World {
        &self.state.world
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    pub fn journal(&self) -> &mailrig_core::Journal {
        &self.state.journal
    }

    /// The CA certificate clients must trust, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.state.tls.ca_pem
    }

    /// Where the CA certificate was written.
    pub fn ca_path(&self) -> &Path {
        self.state.tls.ca_path.as_deref().unwrap_or(Path::new(""))
    }

    /// The INBOX of the mailbox with this address (its own address, not an alias).
    pub fn inbox(&self, address: &str) -> Option<Vec<StoredMessage>> {
        let id = self.state.world.mailbox_by_address(address)?;
        self.state.store.mailbox(id).messages(INBOX).ok()
    }

    /// The hosts of a `[[host]]` world, in scenario order (empty in a
    /// one-server world; the first is the one `inbox()` and `smtp_addr()` use).
    pub fn hosts(&self) -> &[crate::hosts::HostServer] {
        &self.hosts
    }

    /// One host by name: `server.host("provider").unwrap().inbox(addr)`.
    pub fn host(&self, name: &str) -> Option<&crate::hosts::HostServer> {
        self.hosts.iter().find(|h| h.name() == name)
    }

    /// Runs one round of a collector now (besides its interval); `None` when
    /// there is no collector of that name.
    pub async fn collect_now(&self, name: &str) -> Option<crate::collector::CollectRound> {
        let c = self.collectors.iter().find(|c| c.name() == name)?;
        Some(c.round().await)
    }

    /// Forwards a backup MX's or relay's queue now (besides its retry
    /// interval); `None` when there is no forwarding host of that name.
    pub async fn forward_now(&self, host: &str) -> Option<crate::hosts::forward::ForwardPass> {
        let h = self.host(host)?;
        let (to, _) = h.host.role.forward_to()?;
        let to_addr = self.host(to).and_then(|o| o.addresses().smtp);
        let _pass = h.forward_lock.lock().await;
        Some(crate::hosts::forward::forward_queue(h.state(), to, to_addr).await)
    }

    /// Journal entries that concern this mailbox address (as recipient,
    /// delivery target or misroute end), oldest first; read-side faults
    /// (IMAP, POP3) name the mailbox they hit.
    pub fn journal_for(&self, mailbox: &str) -> Vec<JournalEntry> {
        self.state.journal.filter(Some(mailbox), None)
    }

    /// Journal entries about the message with this Message-ID (angle
    /// brackets optional), oldest first.
    pub fn journal_for_message(&self, message_id: &str) -> Vec<JournalEntry> {
        self.state.journal.filter(None, Some(message_id))
    }

    /// Adds a fault rule at run time, checked against the world as a
    /// scenario's `[[fault]]` rules are; returns warnings (e.g. a selector
    /// that matches nothing), or why the rule was refused.
    pub fn add_fault(&self, spec: FaultRuleSpec) -> Result<Vec<String>, String> {
        self.state
            .add_fault(spec)
            .map(|(_, warnings)| warnings)
            .map_err(|e| e.to_string())
    }

    /// [`MockServer::add_fault`] from TOML text: the keys of one `[[fault]]`
    /// table, e.g. `stage = "rcpt"` / `action = "reject"` / `mailbox = "user03"`.
    pub fn add_fault_toml(&self, toml: &str) -> Result<Vec<String>, String> {
        let spec = crate::faults::parse_toml_spec(toml)?;
        self.add_fault(spec)
    }

    /// Turns a rule on or off; false if there is no rule of that name.
    pub fn set_fault_enabled(&self, name: &str, enabled: bool) -> bool {
        self.state.set_fault_enabled(name, enabled).is_ok()
    }

    /// Removes a rule; false if there is no rule of that name.
    pub fn remove_fault(&self, name: &str) -> bool {
        self.state.remove_fault(name).is_ok()
    }

    /// Every rule with its state and how often it fired, in plan order.
    pub fn faults(&self) -> Vec<FaultInfo> {
        self.state.fault_infos()
    }

    /// One rule by name.
    pub fn fault(&self, name: &str) -> Option<FaultInfo> {
        self.state.fault_info(name).ok()
    }

    /// Removes every rule; returns how many there were.
    pub fn clear_faults(&self) -> usize {
        self.state.clear_faults()
    }

    /// Stops accepting, tells every session to end, and waits for all tasks
    /// (at most 10 seconds; sessions get a `421`/`BYE` on the way out).
    pub async fn shutdown(self) {
        self.state.shutdown.cancel();
        self.tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.tracker.wait()).await;
    }

    /// Resolves when the server has been told to shut down.
    pub async fn cancelled(&self) {
        self.state.shutdown.cancelled().await
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.state.shutdown.cancel();
    }
}
