//! LIST as RFC 5258 (LIST-EXTENDED) defines it, with the STATUS return option
//! of RFC 5819 (LIST-STATUS) and the special-use attributes of RFC 6154
//! (SPECIAL-USE): selection options (`SUBSCRIBED`, `REMOTE`, `RECURSIVEMATCH`,
//! `SPECIAL-USE`), several patterns at once, and return options
//! (`SUBSCRIBED`, `CHILDREN`, `SPECIAL-USE`, `STATUS (...)`).
//!
//! `imap-codec` 2.0.0-alpha.7 reads only the RFC 3501 form, so the extended
//! form is read here from the command's tokens ([`parse`]); the plain form
//! comes from `imap-codec` and becomes the same [`ListRequest`]. One
//! implementation ([`Session::list_ext`]) answers both. A probe or a mail
//! client that looks for `Junk` finds it by its `\Junk` attribute, which is
//! what the prober's "every folder" search and Thunderbird rely on.

use std::collections::BTreeMap;

use mailrig_core::store::{DELIMITER, special_use};

use super::extended::{Token, astring, tokens};
use super::folders::{Asked, StatusItem, wildcard_match};
use super::session::{Session, tagged};
use super::wire;

/// A LIST command, extended or plain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListRequest {
    pub tag: String,
    pub reference: String,
    pub patterns: Vec<String>,
    pub select: Selection,
    pub returns: Returns,
    /// Written in the RFC 5258 form (selection options, a pattern list or
    /// RETURN): `""` is then an ordinary pattern and special-use attributes
    /// come only when asked for.
    pub extended: bool,
}

/// Which mailboxes a LIST reports (RFC 5258 §3.1, RFC 6154 §3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Selection {
    pub subscribed: bool,
    pub remote: bool,
    pub recursive: bool,
    pub special_use: bool,
}

/// What a LIST says about each mailbox (RFC 5258 §3.2, RFC 5819, RFC 6154).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Returns {
    pub subscribed: bool,
    pub children: bool,
    pub special_use: bool,
    pub status: Option<Vec<StatusItem>>,
}

/// An extended LIST that cannot be read: answered `BAD` with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error(
        "Unknown LIST selection option {0} (expected SUBSCRIBED, REMOTE, RECURSIVEMATCH or SPECIAL-USE)"
    )]
    UnknownSelection(String),
    #[error(
        "Unknown LIST return option {0} (expected SUBSCRIBED, CHILDREN, SPECIAL-USE or STATUS)"
    )]
    UnknownReturn(String),
    #[error("Unknown STATUS item {0} in LIST RETURN")]
    UnknownStatusItem(String),
    #[error("RECURSIVEMATCH needs another selection option besides REMOTE (RFC 5258 3.1)")]
    RecursiveAlone,
    #[error("Error in LIST: expected [(options)] reference (pattern ...) [RETURN (options)]")]
    Syntax,
}

type Tok = (Token, std::ops::Range<usize>);

/// `tag LIST ...` in the RFC 5258 form: the request. `None` for anything
/// else, the plain form included (that is `imap-codec`'s to read).
pub fn parse(b: &[u8]) -> Option<Result<ListRequest, ListError>> {
    let toks = tokens(b);
    let word = |t: Option<&Tok>, w: &str| {
        t.is_some_and(|t| t.0 == Token::Atom && b[t.1.clone()].eq_ignore_ascii_case(w.as_bytes()))
    };
    if !word(toks.get(1), "LIST") {
        return None;
    }
    let tag = super::framing::tag_in(b)?;
    // Extended when options come first, the patterns are a list, or RETURN follows.
    let opts_first = toks.get(2).is_some_and(|t| t.0 == Token::Open);
    let pattern_at = if opts_first {
        toks.iter().skip(2).position(|t| t.0 == Token::Close)? + 4
    } else {
        3
    };
    let pattern_list = toks.get(pattern_at).is_some_and(|t| t.0 == Token::Open);
    let has_return = toks
        .iter()
        .skip(pattern_at)
        .any(|t| word(Some(t), "RETURN"));
    if !(opts_first || pattern_list || has_return) {
        return None;
    }
    Some(read(b, &toks, tag))
}

fn read(b: &[u8], toks: &[Tok], tag: String) -> Result<ListRequest, ListError> {
    let text = |t: &Tok| String::from_utf8_lossy(&b[t.1.clone()]).to_ascii_uppercase();
    let mut req = ListRequest {
        tag,
        extended: true,
        ..ListRequest::default()
    };
    let mut i = 2;
    if toks[i].0 == Token::Open {
        i += 1;
        while let Some(t) = toks.get(i).filter(|t| t.0 != Token::Close) {
            match (t.0, text(t).as_str()) {
                (Token::Atom, "SUBSCRIBED") => req.select.subscribed = true,
                (Token::Atom, "REMOTE") => req.select.remote = true,
                (Token::Atom, "RECURSIVEMATCH") => req.select.recursive = true,
                (Token::Atom, "SPECIAL-USE") => req.select.special_use = true,
                (_, other) => return Err(ListError::UnknownSelection(other.to_string())),
            }
            i += 1;
        }
        i += 1;
        if req.select.recursive && !(req.select.subscribed || req.select.special_use) {
            return Err(ListError::RecursiveAlone);
        }
    }
    req.reference = toks
        .get(i)
        .and_then(|t| astring(b, t))
        .ok_or(ListError::Syntax)?;
    i += 1;
    match toks.get(i) {
        Some((Token::Open, _)) => {
            i += 1;
            while let Some(t) = toks.get(i).filter(|t| t.0 != Token::Close) {
                req.patterns.push(astring(b, t).ok_or(ListError::Syntax)?);
                i += 1;
            }
            if toks.get(i).is_none() || req.patterns.is_empty() {
                return Err(ListError::Syntax);
            }
        }
        Some(t) => req.patterns.push(astring(b, t).ok_or(ListError::Syntax)?),
        None => return Err(ListError::Syntax),
    }
    i += 1;
    if let Some(t) = toks.get(i) {
        if text(t) != "RETURN" || toks.get(i + 1).map(|t| t.0) != Some(Token::Open) {
            return Err(ListError::Syntax);
        }
        i += 2;
        while let Some(t) = toks.get(i).filter(|t| t.0 != Token::Close) {
            match (t.0, text(t).as_str()) {
                (Token::Atom, "SUBSCRIBED") => req.returns.subscribed = true,
                (Token::Atom, "CHILDREN") => req.returns.children = true,
                (Token::Atom, "SPECIAL-USE") => req.returns.special_use = true,
                (Token::Atom, "STATUS") => {
                    if toks.get(i + 1).map(|t| t.0) != Some(Token::Open) {
                        return Err(ListError::Syntax);
                    }
                    i += 2;
                    let mut items = Vec::new();
                    while let Some(t) = toks.get(i).filter(|t| t.0 != Token::Close) {
                        let name = text(t);
                        items.push(
                            StatusItem::from_name(&name)
                                .ok_or(ListError::UnknownStatusItem(name))?,
                        );
                        i += 1;
                    }
                    req.returns.status = Some(items);
                }
                (_, other) => return Err(ListError::UnknownReturn(other.to_string())),
            }
            i += 1;
        }
        if toks.get(i).is_none() || toks.len() > i + 1 {
            return Err(ListError::Syntax);
        }
    }
    Ok(req)
}

/// What LIST knows of one name it reports.
#[derive(Debug, Default)]
struct Entry {
    exists: bool,
    subscribed: bool,
    /// Matches only because a descendant meets the selection (RECURSIVEMATCH).
    child_info: Option<&'static str>,
}

impl Session {
    /// Answers a LIST, extended or plain.
    pub(super) fn list_ext(&mut self, req: &ListRequest, out: &mut Vec<u8>) {
        let tag = req.tag.as_str();
        if !req.extended && req.patterns.iter().all(String::is_empty) {
            // The hierarchy delimiter and root (RFC 3501 §6.3.8).
            out.extend_from_slice(
                format!("* LIST (\\Noselect) \"{DELIMITER}\" \"\"\r\n").as_bytes(),
            );
            self.sync_all(out);
            return tagged(out, tag, "OK", "LIST completed");
        }
        let Some(mb) = self.mailbox() else { return };
        let (folders, subscribed): (Vec<String>, Vec<String>) = {
            let data = mb.lock();
            (
                data.folders.keys().map(str::to_string).collect(),
                data.subscribed.iter().cloned().collect(),
            )
        };
        let reference = if req.reference.eq_ignore_ascii_case("INBOX") {
            "INBOX"
        } else {
            req.reference.as_str()
        };
        let full: Vec<String> = req
            .patterns
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| format!("{reference}{p}"))
            .collect();
        let matches = |name: &str| full.iter().any(|p| wildcard_match(p, name));
        let exists = |name: &str| folders.iter().any(|f| f == name);
        let is_subscribed = |name: &str| subscribed.iter().any(|s| s == name);
        let mut names: BTreeMap<String, Entry> = BTreeMap::new();
        let sel = req.select;
        // What the selection options pick (all folders without them).
        let selected: Vec<(String, &'static str)> = if sel.subscribed {
            subscribed
                .iter()
                .map(|s| (s.clone(), "SUBSCRIBED"))
                .collect()
        } else if sel.special_use {
            folders
                .iter()
                .filter(|f| special_use(f).is_some())
                .map(|f| (f.clone(), "SPECIAL-USE"))
                .collect()
        } else {
            folders.iter().map(|f| (f.clone(), "")).collect()
        };
        for (name, why) in &selected {
            if matches(name) {
                names.insert(
                    name.clone(),
                    Entry {
                        exists: exists(name),
                        subscribed: is_subscribed(name),
                        child_info: None,
                    },
                );
            } else if sel.recursive {
                // A matching ancestor is reported for the descendant (RFC 5258 §3.5).
                let mut up = name.as_str();
                while let Some((parent, _)) = up.rsplit_once(DELIMITER) {
                    up = parent;
                    if matches(up) {
                        let e = names.entry(up.to_string()).or_insert_with(|| Entry {
                            exists: exists(up),
                            subscribed: is_subscribed(up),
                            child_info: None,
                        });
                        e.child_info = Some(why);
                    }
                }
            }
        }
        let show_subscribed = sel.subscribed || req.returns.subscribed;
        let show_special = !req.extended || sel.special_use || req.returns.special_use;
        for (name, e) in &names {
            let mut attrs: Vec<&str> = Vec::new();
            if e.exists {
                let prefix = format!("{name}{DELIMITER}");
                attrs.push(if folders.iter().any(|f| f.starts_with(&prefix)) {
                    "\\HasChildren"
                } else {
                    "\\HasNoChildren"
                });
                if show_special && let Some(attr) = special_use(name) {
                    attrs.push(attr);
                }
            } else {
                // Implies \Noselect, which is then not sent (RFC 5258 §3.4).
                attrs.push("\\NonExistent");
            }
            if show_subscribed && e.subscribed {
                attrs.push("\\Subscribed");
            }
            out.extend_from_slice(
                format!("* LIST ({}) \"{DELIMITER}\" ", attrs.join(" ")).as_bytes(),
            );
            wire::astring(out, name.as_bytes());
            if let Some(why) = e.child_info {
                out.extend_from_slice(format!(" (\"CHILDINFO\" (\"{why}\"))").as_bytes());
            }
            out.extend_from_slice(b"\r\n");
            if let Some(items) = &req.returns.status
                && e.exists
            {
                // A folder that went away meanwhile just gets no STATUS (RFC 5819 §2).
                let _ = self.status_line(name, items, Asked::ByClient, out);
            }
        }
        self.sync_all(out);
        tagged(out, tag, "OK", "LIST completed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(b: &str) -> Option<Result<ListRequest, ListError>> {
        parse(format!("{b}\r\n").as_bytes())
    }

    #[test]
    fn the_plain_form_is_left_to_imap_codec() {
        assert_eq!(req("a LIST \"\" *"), None);
        assert_eq!(req("a LSUB () \"\" *"), None);
        assert_eq!(req("a SELECT INBOX"), None);
    }

    #[test]
    fn options_patterns_and_returns_are_read() {
        let r = req("a list (subscribed RECURSIVEMATCH) \"\" (\"a.*\" b%) return (children STATUS (MESSAGES unseen))")
            .unwrap()
            .unwrap();
        assert!(r.extended && r.select.subscribed && r.select.recursive);
        assert_eq!(r.patterns, ["a.*", "b%"]);
        assert!(r.returns.children);
        assert_eq!(
            r.returns.status,
            Some(vec![StatusItem::Messages, StatusItem::Unseen])
        );
        let r = req("t LIST \"\" % RETURN (SPECIAL-USE)").unwrap().unwrap();
        assert_eq!(r.patterns, ["%"]);
        assert!(r.returns.special_use && !r.select.special_use);
    }

    #[test]
    fn bad_options_name_what_is_wrong() {
        assert_eq!(
            req("a list (imaptest) \"\" \"\""),
            Some(Err(ListError::UnknownSelection("IMAPTEST".into())))
        );
        assert_eq!(
            req("a list (recursivematch remote) \"\" \"\""),
            Some(Err(ListError::RecursiveAlone))
        );
        assert_eq!(
            req("a list \"\" \"\" return (imaptest)"),
            Some(Err(ListError::UnknownReturn("IMAPTEST".into())))
        );
        assert_eq!(
            req("a list \"\" % return (status (bogus))"),
            Some(Err(ListError::UnknownStatusItem("BOGUS".into())))
        );
        assert_eq!(req("a list () \"\""), Some(Err(ListError::Syntax)));
        assert_eq!(req("a list \"\" () "), Some(Err(ListError::Syntax)));
    }
}
