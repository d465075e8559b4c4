//! QUOTA (RFC 9208) over the scenario's quotas (`[limits] quota_storage_kib`
//! and `quota_messages`): each mailbox has one quota root, `""`, over all its
//! folders, whose usage is what SMTP counts before it answers
//! `552 5.2.2` (see [`mailrig_core::world::Limits::quota_full`]), so an IMAP
//! client sees the same numbers. Without a quota in the scenario no folder
//! has a quota root. SETQUOTA is refused: quotas come from the scenario.
//!
//! A `quota-full` fault that would refuse mail to the mailbox (its rule
//! names the recipient side only; looked at without firing it) shows the
//! mailbox full as well: every resource's usage at least at its limit, and
//! without a quota in the scenario a root `""` with `STORAGE` used = limit
//! (at least 1 KiB), so the client sees what SMTP's `552 5.2.2` says.
//!
//! `imap-codec` is not asked to parse these commands: [`parse`] reads them
//! from the command's tokens.

use mailrig_core::world::{Limits, Usage};

use super::extended::{Token, astring, tokens};
use super::session::{Session, tagged};
use super::wire;

/// A QUOTA command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    GetQuotaRoot(String),
    GetQuota(String),
    SetQuota,
}

/// Reads `tag GETQUOTAROOT mailbox`, `tag GETQUOTA root` or `tag SETQUOTA
/// ...`: `None` when the command is none of these, else the tag and the
/// request (an error text when its arguments are wrong).
pub fn parse(b: &[u8]) -> Option<(String, Result<Request, &'static str>)> {
    let toks = tokens(b);
    let cmd = toks.get(1)?;
    if cmd.0 != Token::Atom {
        return None;
    }
    let word = String::from_utf8_lossy(&b[cmd.1.clone()]).to_ascii_uppercase();
    let tag = String::from_utf8_lossy(&b[toks[0].1.clone()]).into_owned();
    let one = || -> Result<String, &'static str> {
        match &toks[2..] {
            [t] if t.0 != Token::Open && t.0 != Token::Close => {
                astring(b, t).ok_or("Error in IMAP command: bad argument")
            }
            _ => Err("Error in IMAP command: expected one mailbox or quota root name"),
        }
    };
    let req = match word.as_str() {
        "GETQUOTAROOT" => one().map(Request::GetQuotaRoot),
        "GETQUOTA" => one().map(Request::GetQuota),
        "SETQUOTA" => Ok(Request::SetQuota),
        _ => return None,
    };
    Some((tag, req))
}

/// `* QUOTA "" (STORAGE used limit MESSAGE used limit)`, each resource that
/// has a limit. `full` (a `quota-full` fault) raises every usage to its
/// limit, and without limits shows `STORAGE` at its usage as the limit.
pub fn quota_line(limits: &Limits, usage: Usage, full: bool) -> String {
    let at = |used: u64, limit: u64| if full { used.max(limit) } else { used };
    let mut parts = Vec::new();
    if let Some(l) = limits.quota_storage_kib {
        parts.push(format!("STORAGE {} {l}", at(usage.kib(), l)));
    }
    if let Some(l) = limits.quota_messages {
        parts.push(format!("MESSAGE {} {l}", at(usage.messages, l)));
    }
    if parts.is_empty() && full {
        let l = usage.kib().max(1);
        parts.push(format!("STORAGE {l} {l}"));
    }
    format!("* QUOTA \"\" ({})\r\n", parts.join(" "))
}

impl Session {
    /// Runs a QUOTA command (authenticated state).
    pub(super) fn quota_command(
        &mut self,
        tag: &str,
        req: Result<Request, &'static str>,
        out: &mut Vec<u8>,
    ) {
        let req = match req {
            Ok(r) => r,
            Err(text) => return tagged(out, tag, "BAD", text),
        };
        let Some(mb) = self.user.map(|id| self.state.store.mailbox(id)) else {
            return tagged(
                out,
                tag,
                "BAD",
                "Not authenticated: quota commands not allowed in this state",
            );
        };
        let limits = &self.state.world.limits;
        let full = self.user.is_some_and(|id| self.state.quota_full_fault(id));
        let has_root = limits.has_quota() || full;
        match req {
            Request::SetQuota => tagged(
                out,
                tag,
                "NO",
                "[NOPERM] Quotas are set by the scenario ([limits] quota_storage_kib, quota_messages)",
            ),
            Request::GetQuotaRoot(name) => {
                if let Err(e) = mb.with_folder(&name, |_| ()) {
                    return tagged(out, tag, "NO", &super::folders::store_error(&e));
                }
                out.extend_from_slice(b"* QUOTAROOT ");
                wire::astring(out, name.as_bytes());
                if has_root {
                    out.extend_from_slice(b" \"\"\r\n");
                    out.extend_from_slice(quota_line(limits, mb.usage(), full).as_bytes());
                } else {
                    out.extend_from_slice(b"\r\n");
                }
                self.sync_all(out);
                tagged(out, tag, "OK", "Getquotaroot completed");
            }
            Request::GetQuota(root) => {
                if !root.is_empty() || !has_root {
                    return tagged(out, tag, "NO", "[NONEXISTENT] No such quota root");
                }
                out.extend_from_slice(quota_line(limits, mb.usage(), full).as_bytes());
                self.sync_all(out);
                tagged(out, tag, "OK", "Getquota completed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three_commands() {
        assert_eq!(
            parse(b"a GETQUOTAROOT INBOX"),
            Some(("a".into(), Ok(Request::GetQuotaRoot("INBOX".into()))))
        );
        assert_eq!(
            parse(b"a getquota \"\""),
            Some(("a".into(), Ok(Request::GetQuota(String::new()))))
        );
        assert_eq!(
            parse(b"a SETQUOTA \"\" (STORAGE 10)"),
            Some(("a".into(), Ok(Request::SetQuota)))
        );
        assert!(matches!(parse(b"a GETQUOTAROOT"), Some((_, Err(_)))));
        assert!(matches!(parse(b"a GETQUOTA a b"), Some((_, Err(_)))));
        assert!(matches!(parse(b"a GETQUOTA (x)"), Some((_, Err(_)))));
        assert_eq!(parse(b"a NOOP"), None);
    }

    #[test]
    fn quota_line_names_the_limited_resources() {
        let limits = Limits {
            quota_messages: Some(3),
            ..Limits::default()
        };
        let u = Usage {
            bytes: 1025,
            messages: 3,
        };
        assert_eq!(
            quota_line(&limits, u, false),
            "* QUOTA \"\" (MESSAGE 3 3)\r\n"
        );
        let limits = Limits {
            quota_storage_kib: Some(10),
            ..limits
        };
        assert_eq!(
            quota_line(&limits, u, false),
            "* QUOTA \"\" (STORAGE 2 10 MESSAGE 3 3)\r\n"
        );
    }

    #[test]
    fn a_quota_full_fault_shows_every_resource_at_its_limit() {
        let u = Usage {
            bytes: 1025,
            messages: 3,
        };
        let limits = Limits {
            quota_storage_kib: Some(10),
            quota_messages: Some(2),
            ..Limits::default()
        };
        // MESSAGE is over its limit already: shown as it is.
        assert_eq!(
            quota_line(&limits, u, true),
            "* QUOTA \"\" (STORAGE 10 10 MESSAGE 3 2)\r\n"
        );
        // No quota in the scenario: the usage is the limit.
        assert_eq!(
            quota_line(&Limits::default(), u, true),
            "* QUOTA \"\" (STORAGE 2 2)\r\n"
        );
        let empty = Usage {
            bytes: 0,
            messages: 0,
        };
        assert_eq!(
            quota_line(&Limits::default(), empty, true),
            "* QUOTA \"\" (STORAGE 1 1)\r\n"
        );
    }
}
