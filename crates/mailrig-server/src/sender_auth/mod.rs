//! Sender authentication of received mail: SPF, DKIM, DMARC and (when the
//! message carries a chain) ARC, checked with Stalwart's `mail-auth` against
//! the world's DNS, at the end of DATA of every message a host with
//! `sender_auth = "record"` or `"enforce"` receives.
//!
//! * [`lookup`] — mail-auth's resolver caches answered from the world's zones
//!   and DNS fault rules, in the process (no DNS round trip);
//! * [`metrics`] — `/metrics`' `mailrig_auth_results_total{method,result}`.
//!
//! [`SenderAuth::check`] returns [`AuthResults`] (core's data: the journal's
//! `authenticated` entry, the envelope in the API's message JSON, and the
//! `Authentication-Results:` field the session prepends to the stored copy).
//! mail-auth's checks are `async`, but with every lookup answered by the
//! caches they finish at their first poll, so the session runs them inline.

pub mod lookup;
pub mod metrics;

use std::future::Future;
use std::net::IpAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::Signature;
use mail_auth::dmarc::Policy;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::hickory_resolver::config::{ResolverConfig, ResolverOpts};
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimResult, DmarcResult, MessageAuthenticator,
    Parameters, SpfResult,
};
use mailrig_core::dns::Zones;
use mailrig_core::fault::FaultPlan;
use mailrig_core::sender_auth::{AuthResults, DkimCheck};
use parking_lot::RwLock;

use lookup::{Names, WorldLookup};

/// What the session knows of the message being checked.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// The content as the client sent it (no trace headers of ours).
    pub content: &'a [u8],
    pub client: IpAddr,
    pub helo: &'a str,
    /// Empty for the null sender.
    pub mail_from: &'a str,
    /// The receiving host's name (the `authserv-id` of the header).
    pub hostname: &'a str,
}

/// The checker of one world: its zones and an authenticator whose resolver
/// is never asked (every lookup is answered by [`WorldLookup`]).
pub struct SenderAuth {
    zones: Arc<Zones>,
    names: Names,
    authenticator: MessageAuthenticator,
}

impl std::fmt::Debug for SenderAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderAuth").finish_non_exhaustive()
    }
}

impl SenderAuth {
    pub fn new(zones: Arc<Zones>) -> Result<SenderAuth, String> {
        // No name servers: a lookup that reached the resolver would fail at
        // once instead of leaving the machine.
        let config = ResolverConfig::from_parts(None, Vec::new(), Vec::new());
        let authenticator = MessageAuthenticator::new(config, ResolverOpts::default())
            .map_err(|e| format!("sender authentication: {e}"))?;
        Ok(SenderAuth {
            names: Names::of(&zones),
            zones,
            authenticator,
        })
    }

    /// Checks one message. `faults`: the host's plan, whose `dns` rules
    /// change what the checks see.
    pub fn check(&self, m: &Received<'_>, faults: Option<&RwLock<FaultPlan>>) -> AuthResults {
        let lookup = WorldLookup {
            zones: &self.zones,
            names: &self.names,
            faults,
            client: Some(m.client),
        };
        match poll_once(self.check_async(m, &lookup)) {
            Some(r) => r,
            None => unreachable_lookup(m),
        }
    }

    async fn check_async(&self, m: &Received<'_>, l: &WorldLookup<'_>) -> AuthResults {
        let helo = if m.helo.is_empty() { "unknown" } else { m.helo };
        let spf_params = if m.mail_from.is_empty() {
            SpfParameters::verify_ehlo(m.client, helo, m.hostname)
        } else {
            SpfParameters::verify_mail_from(m.client, helo, m.hostname, m.mail_from)
        };
        let spf = self
            .authenticator
            .verify_spf(with_world(l, spf_params))
            .await;
        let mail_from_domain = m
            .mail_from
            .rsplit_once('@')
            .map_or(helo, |(_, d)| d)
            .to_string();
        let header = AuthenticationResults::new(m.hostname);
        let header = if m.mail_from.is_empty() {
            header.with_spf_ehlo_result(&spf, m.client, helo)
        } else {
            header.with_spf_mailfrom_result(&spf, m.client, m.mail_from, helo)
        };
        let Some(msg) = AuthenticatedMessage::parse(m.content) else {
            return AuthResults {
                spf: spf_word(spf.result()).into(),
                spf_domain: spf.domain().to_string(),
                dkim: Vec::new(),
                dmarc: "none".into(),
                dmarc_policy: "unspecified".into(),
                header_from: String::new(),
                arc: None,
                header: header.to_header(),
            };
        };
        let dkim = self.authenticator.verify_dkim(with_world(l, &msg)).await;
        let arc = if msg.as_headers.is_empty() {
            None
        } else {
            Some(self.authenticator.verify_arc(with_world(l, &msg)).await)
        };
        let dmarc = self
            .authenticator
            .verify_dmarc(with_world(
                l,
                DmarcParameters::new(&msg, &dkim, &mail_from_domain, &spf),
            ))
            .await;
        let header_from = msg
            .from()
            .rsplit_once('@')
            .map_or("", |(_, d)| d)
            .to_string();
        let mut header = header.with_dkim_results(&dkim, msg.from());
        if let Some(arc) = &arc {
            header = header.with_arc_result(arc, m.client);
        }
        let header = header.with_dmarc_result(&dmarc);
        let dmarc_word = match (dmarc.dkim_result(), dmarc.spf_result()) {
            (DmarcResult::Pass, _) | (_, DmarcResult::Pass) => "pass",
            _ => dmarc_word(&dmarc.result()),
        };
        AuthResults {
            spf: spf_word(spf.result()).into(),
            spf_domain: spf.domain().to_string(),
            dkim: dkim
                .iter()
                .map(|d| dkim_check(d.result(), d.signature()))
                .collect(),
            dmarc: dmarc_word.into(),
            dmarc_policy: match dmarc.policy() {
                Policy::None => "none",
                Policy::Quarantine => "quarantine",
                Policy::Reject => "reject",
                Policy::Unspecified => "unspecified",
            }
            .into(),
            header_from,
            arc: arc.map(|a| dkim_word(a.result()).to_string()),
            header: header.to_header(),
        }
    }
}

type WorldParameters<'x, 'a, P> = Parameters<
    'x,
    P,
    WorldLookup<'a>,
    WorldLookup<'a>,
    WorldLookup<'a>,
    WorldLookup<'a>,
    WorldLookup<'a>,
>;

/// mail-auth's parameters with every cache answered by the world.
fn with_world<'x, 'a, P>(l: &'x WorldLookup<'a>, p: P) -> WorldParameters<'x, 'a, P> {
    Parameters::new(p)
        .with_txt_cache(l)
        .with_mx_cache(l)
        .with_ipv4_cache(l)
        .with_ipv6_cache(l)
        .with_ptr_cache(l)
}

/// Runs a future that needs no waiting: with every lookup answered by the
/// caches, mail-auth's checks never yield. `None` if one did.
fn poll_once<F: Future>(f: F) -> Option<F::Output> {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// A check that wanted the network (it cannot: the caches answer every
/// name): reported as temporary errors rather than a guess.
fn unreachable_lookup(m: &Received<'_>) -> AuthResults {
    tracing::warn!("a sender authentication check asked beyond the world's DNS");
    AuthResults {
        spf: "temperror".into(),
        spf_domain: m.mail_from.rsplit_once('@').map_or("", |(_, d)| d).into(),
        dkim: Vec::new(),
        dmarc: "temperror".into(),
        dmarc_policy: "unspecified".into(),
        header_from: String::new(),
        arc: None,
        header: format!(
            "Authentication-Results: {}; spf=temperror; dkim=temperror; dmarc=temperror\r\n",
            m.hostname
        ),
    }
}

fn spf_word(r: SpfResult) -> &'static str {
    match r {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

fn dkim_word(r: &DkimResult) -> &'static str {
    match r {
        DkimResult::Pass => "pass",
        DkimResult::Neutral(_) => "neutral",
        DkimResult::Fail(_) => "fail",
        DkimResult::PermError(_) => "permerror",
        DkimResult::TempError(_) => "temperror",
        DkimResult::None => "none",
    }
}

fn dmarc_word(r: &DmarcResult) -> &'static str {
    match r {
        DmarcResult::Pass => "pass",
        DmarcResult::Fail(_) => "fail",
        DmarcResult::TempError(_) => "temperror",
        DmarcResult::PermError(_) => "permerror",
        DmarcResult::None => "none",
    }
}

fn dkim_check(r: &DkimResult, sig: Option<&Signature>) -> DkimCheck {
    let reason = match r {
        DkimResult::Pass | DkimResult::None => None,
        DkimResult::Neutral(e)
        | DkimResult::Fail(e)
        | DkimResult::PermError(e)
        | DkimResult::TempError(e) => Some(e.to_string()),
    };
    DkimCheck {
        result: dkim_word(r).into(),
        domain: sig.map(|s| s.d.clone()).unwrap_or_default(),
        selector: sig.map(|s| s.s.clone()).unwrap_or_default(),
        reason,
    }
}
