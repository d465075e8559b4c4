//! Routing: where mail for a recipient address goes.
//!
//! The router follows the world's rules in a fixed order — a mailbox's own
//! address, then the domain's aliases, then its unknown-recipient policy
//! (catch-all or reject) — and answers with a [`RouteDecision`] the SMTP
//! server turns into a reply. Aliases may fan out to several mailboxes; the
//! targets of one recipient are de-duplicated (and the SMTP session keeps one
//! copy per mailbox across a transaction's recipients).

use crate::address::Address;
use crate::world::{MailboxId, UnknownRecipient, World};

/// The outcome of routing one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteDecision {
    /// Deliver into these mailboxes (at least one, no duplicates).
    Deliver(Vec<MailboxId>),
    /// A domain of ours, but no such mailbox: `550 5.1.1`.
    UnknownMailbox,
    /// Not one of our domains: `554 5.7.1` relay denied.
    NotOurDomain,
}

/// Routes one recipient through the world.
pub fn resolve(world: &World, rcpt: &Address) -> RouteDecision {
    let key = rcpt.key();
    if let Some(id) = world.mailbox_by_address(&key) {
        return RouteDecision::Deliver(vec![id]);
    }
    let Some(domain) = world.domain(rcpt.domain()) else {
        return RouteDecision::NotOurDomain;
    };
    let local = rcpt.local().to_lowercase();
    if let Some(targets) = domain.aliases.get(&local) {
        let mut out: Vec<MailboxId> = Vec::with_capacity(targets.len());
        for t in targets {
            if !out.contains(t) {
                out.push(*t);
            }
        }
        return RouteDecision::Deliver(out);
    }
    match domain.unknown {
        UnknownRecipient::CatchAll(id) => RouteDecision::Deliver(vec![id]),
        UnknownRecipient::Reject => RouteDecision::UnknownMailbox,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    const WORLD: &str = r#"
[[domain]]
name = "kanzlei.test"
mailboxes = ["anna", "bernd", "clara"]
password = "secret"
catch_all = "clara"
[domain.aliases]
info = ["anna", "bernd", "anna"]
patent = "user01@patente.test"

[[domain]]
name = "patente.test"
mailboxes = ["user01..user25"]
password = "secret"
"#;

    fn world() -> World {
        std::sync::Arc::unwrap_or_clone(Scenario::parse(WORLD, "t.toml").unwrap().world)
    }

    fn addr(s: &str) -> Address {
        Address::parse(s).unwrap()
    }

    #[test]
    fn mailbox_alias_catchall_unknown_foreign() {
        let w = world();
        let anna = w.mailbox_by_address("anna@kanzlei.test").unwrap();
        let bernd = w.mailbox_by_address("bernd@kanzlei.test").unwrap();
        let clara = w.mailbox_by_address("clara@kanzlei.test").unwrap();
        let u1 = w.mailbox_by_address("user01@patente.test").unwrap();
        assert_eq!(
            resolve(&w, &addr("ANNA@kanzlei.test")),
            RouteDecision::Deliver(vec![anna])
        );
        assert_eq!(
            resolve(&w, &addr("info@kanzlei.test")),
            RouteDecision::Deliver(vec![anna, bernd])
        );
        assert_eq!(
            resolve(&w, &addr("patent@kanzlei.test")),
            RouteDecision::Deliver(vec![u1])
        );
        assert_eq!(
            resolve(&w, &addr("typo@kanzlei.test")),
            RouteDecision::Deliver(vec![clara])
        );
        assert_eq!(
            resolve(&w, &addr("user26@patente.test")),
            RouteDecision::UnknownMailbox
        );
        assert_eq!(
            resolve(&w, &addr("x@elsewhere.test")),
            RouteDecision::NotOurDomain
        );
    }
}
