//! NOTIFY (RFC 5465): which folders' events a session is told of without
//! asking, read from the command's tokens (`imap-codec` does not parse
//! NOTIFY), and which folders a request names.
//!
//! What is told: for the selected folder (filters `SELECTED` and
//! `SELECTED-DELAYED`) the usual EXISTS, EXPUNGE and FETCH responses, sent
//! as soon as the store changes (`SELECTED-DELAYED` keeps expunges for the
//! next command; flag changes of the selected folder are told with the
//! rest whether `FlagChange` was asked for or not); for every other folder a request names, a `* STATUS`
//! response (MESSAGES, UIDNEXT, UIDVALIDITY, and HIGHESTMODSEQ when
//! `FlagChange` is asked for) each time those figures change. The session
//! keeps what it last told per folder ([`Told`]) and compares.
//! `MailboxName` and `SubscriptionChange` are accepted and not reported;
//! the metadata and annotation events are refused with `[BADEVENT]`, as
//! the server has neither METADATA nor ANNOTATE.

use std::collections::HashMap;

use super::extended::{Token, astring, tokens};
use super::folders::{Asked, StatusItem};
use super::session::{Session, tagged};
use super::view::SyncRules;

/// An event a filter asks for (RFC 5465 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    MessageNew,
    MessageExpunge,
    FlagChange,
    MailboxName,
    SubscriptionChange,
}

/// Which folders a group of events is about (RFC 5465 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    Selected,
    SelectedDelayed,
    Inboxes,
    Personal,
    Subscribed,
    Subtree(Vec<String>),
    Mailboxes(Vec<String>),
}

/// A filter with its events (none for `NONE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub filter: Filter,
    pub events: Vec<Event>,
}

impl Group {
    pub fn has(&self, e: Event) -> bool {
        self.events.contains(&e)
    }
}

/// A NOTIFY command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `NOTIFY NONE`: nothing is told unasked any more.
    None,
    /// `NOTIFY SET [STATUS] groups`.
    Set { status: bool, groups: Vec<Group> },
}

/// Why a NOTIFY command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("Error in NOTIFY: expected NONE or SET [STATUS] followed by (filter (events)) groups")]
    Syntax,
    #[error(
        "Error in NOTIFY: unknown filter {0} (expected SELECTED, SELECTED-DELAYED, INBOXES, PERSONAL, SUBSCRIBED, SUBTREE or MAILBOXES)"
    )]
    Filter(String),
    #[error(
        "Error in NOTIFY: MessageNew and MessageExpunge go together, and FlagChange needs both (RFC 5465 §5)"
    )]
    EventPairs,
    #[error("Error in NOTIFY: a fetch-att list after MessageNew is only allowed for SELECTED")]
    FetchAtt,
    #[error("Error in NOTIFY: filter {0} named twice")]
    Repeated(String),
}

/// A refusal that is `NO [BADEVENT (...)]` rather than BAD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadEvent(pub String);

/// The outcome of reading a NOTIFY command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Ok(Request),
    Bad(NotifyError),
    /// An event this server cannot report, by name.
    BadEvent(BadEvent),
}

/// Reads `tag NOTIFY ...`; `None` if the command is not NOTIFY (the tag
/// comes with the result).
pub fn parse(b: &[u8]) -> Option<(String, Parsed)> {
    let toks = tokens(b);
    let cmd = toks.get(1)?;
    if cmd.0 != Token::Atom || !b[cmd.1.clone()].eq_ignore_ascii_case(b"NOTIFY") {
        return None;
    }
    let tag = String::from_utf8_lossy(&b[toks[0].1.clone()]).into_owned();
    Some((tag, read(b, &toks[2..])))
}

type Toks<'a> = &'a [(Token, std::ops::Range<usize>)];

fn word(b: &[u8], t: &(Token, std::ops::Range<usize>)) -> Option<String> {
    (t.0 == Token::Atom).then(|| String::from_utf8_lossy(&b[t.1.clone()]).to_ascii_uppercase())
}

fn read(b: &[u8], toks: Toks<'_>) -> Parsed {
    let Some(first) = toks.first().and_then(|t| word(b, t)) else {
        return Parsed::Bad(NotifyError::Syntax);
    };
    match first.as_str() {
        "NONE" if toks.len() == 1 => return Parsed::Ok(Request::None),
        "SET" => {}
        _ => return Parsed::Bad(NotifyError::Syntax),
    }
    let mut i = 1;
    let status = toks.get(i).and_then(|t| word(b, t)).as_deref() == Some("STATUS");
    if status {
        i += 1;
    }
    let mut groups: Vec<Group> = Vec::new();
    let mut bad_events = Vec::new();
    while i < toks.len() {
        match group(b, toks, i) {
            Ok((g, next, unknown)) => {
                let key = |f: &Filter| std::mem::discriminant(f);
                if !matches!(g.filter, Filter::Subtree(_) | Filter::Mailboxes(_))
                    && groups.iter().any(|o| key(&o.filter) == key(&g.filter))
                {
                    return Parsed::Bad(NotifyError::Repeated(format!("{:?}", g.filter)));
                }
                bad_events.extend(unknown);
                groups.push(g);
                i = next;
            }
            Err(e) => return Parsed::Bad(e),
        }
    }
    if groups.is_empty() {
        return Parsed::Bad(NotifyError::Syntax);
    }
    if !bad_events.is_empty() {
        return Parsed::BadEvent(BadEvent(bad_events.join(" ")));
    }
    Parsed::Ok(Request::Set { status, groups })
}

/// `( filter events )` from token `i`: the group, the index after it, and
/// the events named that this server cannot report.
fn group(
    b: &[u8],
    toks: Toks<'_>,
    mut i: usize,
) -> Result<(Group, usize, Vec<String>), NotifyError> {
    let open = |t: Option<&(Token, _)>| t.is_some_and(|t| t.0 == Token::Open);
    if !open(toks.get(i)) {
        return Err(NotifyError::Syntax);
    }
    i += 1;
    let name = toks
        .get(i)
        .and_then(|t| word(b, t))
        .ok_or(NotifyError::Syntax)?;
    i += 1;
    let filter = match name.as_str() {
        "SELECTED" => Filter::Selected,
        "SELECTED-DELAYED" => Filter::SelectedDelayed,
        "INBOXES" => Filter::Inboxes,
        "PERSONAL" => Filter::Personal,
        "SUBSCRIBED" => Filter::Subscribed,
        "SUBTREE" | "MAILBOXES" => {
            let mut names = Vec::new();
            if open(toks.get(i)) {
                i += 1;
                while let Some(t) = toks.get(i) {
                    if t.0 == Token::Close {
                        break;
                    }
                    if t.0 == Token::Open {
                        return Err(NotifyError::Syntax);
                    }
                    names.push(astring(b, t).ok_or(NotifyError::Syntax)?);
                    i += 1;
                }
                if toks.get(i).is_none() {
                    return Err(NotifyError::Syntax);
                }
                i += 1;
            } else {
                let t = toks.get(i).ok_or(NotifyError::Syntax)?;
                if t.0 == Token::Close {
                    return Err(NotifyError::Syntax);
                }
                names.push(astring(b, t).ok_or(NotifyError::Syntax)?);
                i += 1;
            }
            if names.is_empty() {
                return Err(NotifyError::Syntax);
            }
            if name == "SUBTREE" {
                Filter::Subtree(names)
            } else {
                Filter::Mailboxes(names)
            }
        }
        other => return Err(NotifyError::Filter(other.to_string())),
    };
    let selected = matches!(filter, Filter::Selected | Filter::SelectedDelayed);
    let mut events = Vec::new();
    let mut unknown = Vec::new();
    match toks.get(i) {
        Some(t) if t.0 == Token::Open => {
            i += 1;
            loop {
                let t = toks.get(i).ok_or(NotifyError::Syntax)?;
                if t.0 == Token::Close {
                    i += 1;
                    break;
                }
                let w = word(b, t).ok_or(NotifyError::Syntax)?;
                i += 1;
                let e = match w.as_str() {
                    "MESSAGENEW" => {
                        // An optional fetch-att list (SELECTED only).
                        if open(toks.get(i)) {
                            if !selected {
                                return Err(NotifyError::FetchAtt);
                            }
                            let mut depth = 0usize;
                            while let Some(t) = toks.get(i) {
                                match t.0 {
                                    Token::Open => depth += 1,
                                    Token::Close => depth -= 1,
                                    _ => {}
                                }
                                i += 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            if depth != 0 {
                                return Err(NotifyError::Syntax);
                            }
                        }
                        Event::MessageNew
                    }
                    "MESSAGEEXPUNGE" => Event::MessageExpunge,
                    "FLAGCHANGE" => Event::FlagChange,
                    "MAILBOXNAME" => Event::MailboxName,
                    "SUBSCRIPTIONCHANGE" => Event::SubscriptionChange,
                    "ANNOTATIONCHANGE" | "MAILBOXMETADATACHANGE" | "SERVERMETADATACHANGE" => {
                        unknown.push(w);
                        continue;
                    }
                    _ => {
                        unknown.push(w);
                        continue;
                    }
                };
                if !events.contains(&e) {
                    events.push(e);
                }
            }
            if events.is_empty() && unknown.is_empty() {
                return Err(NotifyError::Syntax);
            }
        }
        Some(t) if word(b, t).as_deref() == Some("NONE") => i += 1,
        _ => return Err(NotifyError::Syntax),
    }
    if toks.get(i).is_none_or(|t| t.0 != Token::Close) {
        return Err(NotifyError::Syntax);
    }
    i += 1;
    let new = events.contains(&Event::MessageNew);
    let gone = events.contains(&Event::MessageExpunge);
    if new != gone || (events.contains(&Event::FlagChange) && !new) {
        return Err(NotifyError::EventPairs);
    }
    Ok((Group { filter, events }, i, unknown))
}

/// What a session last told of a folder that is not selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Told {
    pub messages: usize,
    pub uid_next: u32,
    pub uid_validity: u32,
    pub highest_modseq: u64,
}

/// Whether `folder` is among the folders `filter` names (not the selected
/// one: that is decided by the caller). Names compare as the store does,
/// INBOX in any case; SUBTREE also takes the folders beneath (`.`).
pub fn names(filter: &Filter, folder: &str, subscribed: bool) -> bool {
    let same = |a: &str, b: &str| {
        a == b || (a.eq_ignore_ascii_case("INBOX") && b.eq_ignore_ascii_case("INBOX"))
    };
    match filter {
        Filter::Selected | Filter::SelectedDelayed => false,
        Filter::Inboxes => folder.eq_ignore_ascii_case("INBOX"),
        Filter::Personal => true,
        Filter::Subscribed => subscribed,
        Filter::Mailboxes(list) => list.iter().any(|n| same(n, folder)),
        Filter::Subtree(list) => list.iter().any(|n| {
            same(n, folder)
                || folder
                    .strip_prefix(n.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
        }),
    }
}

/// A session's NOTIFY request in force, and what it told.
#[derive(Debug, Clone, Default)]
pub struct Active {
    pub groups: Vec<Group>,
    /// Per folder not selected: the figures last told (or current when the
    /// request was made without STATUS).
    pub told: HashMap<String, Told>,
    /// The store version the session last looked at.
    pub version: u64,
}

impl Active {
    /// The group about the selected folder, if it asks for events.
    fn selected(&self) -> Option<&Group> {
        self.groups.iter().find(|g| {
            matches!(g.filter, Filter::Selected | Filter::SelectedDelayed) && !g.events.is_empty()
        })
    }
}

impl Session {
    /// Whether a NOTIFY request is in force (the driver then watches the
    /// store between commands).
    pub(super) fn notifying(&self) -> bool {
        self.notify.is_some()
    }

    /// Runs a NOTIFY command.
    pub(super) fn notify_command(&mut self, tag: &str, parsed: Parsed, out: &mut Vec<u8>) {
        match parsed {
            Parsed::Bad(e) => tagged(out, tag, "BAD", &e.to_string()),
            Parsed::BadEvent(BadEvent(names)) => tagged(
                out,
                tag,
                "NO",
                &format!(
                    "[BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)] Unsupported events: {names}"
                ),
            ),
            Parsed::Ok(Request::None) => {
                self.notify = None;
                tagged(out, tag, "OK", "NOTIFY completed");
            }
            Parsed::Ok(Request::Set { status, groups }) => {
                let Some(mb) = self.user.map(|id| self.state.store.mailbox(id)) else {
                    return tagged(
                        out,
                        tag,
                        "BAD",
                        "Not authenticated: NOTIFY not allowed in this state",
                    );
                };
                let version = mb.version();
                self.notify = Some(Active {
                    groups,
                    told: HashMap::new(),
                    version,
                });
                self.notify_statuses(status, out);
                tagged(out, tag, "OK", "NOTIFY completed");
            }
        }
    }

    /// Tells what changed since the last look: the selected folder's
    /// responses (SELECTED), a STATUS of each other folder whose figures
    /// changed.
    pub(super) fn notify_update(&mut self, out: &mut Vec<u8>) {
        let Some(active) = self.notify.as_ref() else {
            return;
        };
        let Some(mb) = self.user.map(|id| self.state.store.mailbox(id)) else {
            return;
        };
        let version = mb.version();
        let selected = active.selected().map(|g| g.filter == Filter::Selected);
        if let (Some(expunge), true) = (selected, self.view.is_some()) {
            self.sync(
                SyncRules {
                    expunge,
                    ..SyncRules::default()
                },
                out,
            );
        }
        self.notify_statuses(true, out);
        if let Some(active) = self.notify.as_mut() {
            active.version = version;
        }
    }

    /// The store version NOTIFY last looked at, when a request is in force.
    pub(super) fn notify_version(&self) -> Option<u64> {
        self.notify.as_ref().map(|a| a.version)
    }

    /// Compares each folder the request names (but the selected one) with
    /// what was told; writes a STATUS for those that changed when `tell`.
    fn notify_statuses(&mut self, tell: bool, out: &mut Vec<u8>) {
        let Some(active) = self.notify.as_ref() else {
            return;
        };
        let Some(mb) = self.user.map(|id| self.state.store.mailbox(id)) else {
            return;
        };
        let selected = self.view.as_ref().map(|v| v.folder.clone());
        let mut changed = Vec::new();
        for info in mb.folders() {
            if selected.as_deref() == Some(info.name.as_str()) {
                continue;
            }
            // The last group naming a folder wins (RFC 5465 §6).
            let Some(group) = active
                .groups
                .iter()
                .rev()
                .find(|g| names(&g.filter, &info.name, info.subscribed))
            else {
                continue;
            };
            if !group.has(Event::MessageNew) && !group.has(Event::FlagChange) {
                continue;
            }
            let modseq = group.has(Event::FlagChange);
            let Ok(highest) = mb.with_folder(&info.name, |f| f.highest_modseq) else {
                continue;
            };
            let now = Told {
                messages: info.exists,
                uid_next: info.uid_next,
                uid_validity: info.uid_validity,
                highest_modseq: if modseq { highest } else { 0 },
            };
            if active.told.get(&info.name) != Some(&now) {
                changed.push((info.name, now, modseq));
            }
        }
        for (name, now, modseq) in changed {
            if tell {
                let mut items = vec![
                    StatusItem::Messages,
                    StatusItem::UidNext,
                    StatusItem::UidValidity,
                ];
                if modseq {
                    items.push(StatusItem::HighestModSeq);
                }
                // A folder gone meanwhile is simply not told.
                let _ = self.status_line(&name, &items, Asked::Unsolicited, out);
            }
            if let Some(active) = self.notify.as_mut() {
                active.told.insert(name, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Parsed {
        parse(s.as_bytes()).expect("a NOTIFY").1
    }

    #[test]
    fn reads_set_status_with_mailboxes() {
        let Parsed::Ok(Request::Set { status, groups }) =
            p("a NOTIFY SET STATUS (mailboxes box2 (MessageNew MessageExpunge FlagChange))\r\n")
        else {
            panic!("not read");
        };
        assert!(status);
        assert_eq!(groups[0].filter, Filter::Mailboxes(vec!["box2".into()]));
        assert_eq!(
            groups[0].events,
            vec![Event::MessageNew, Event::MessageExpunge, Event::FlagChange]
        );
    }

    #[test]
    fn reads_none_selected_and_lists() {
        assert_eq!(p("a NOTIFY NONE"), Parsed::Ok(Request::None));
        let Parsed::Ok(Request::Set { status, groups }) = p(
            "a notify set (selected (MessageNew (UID FLAGS) MessageExpunge)) (subtree (\"a b\" c) (MessageNew MessageExpunge)) (personal none)",
        ) else {
            panic!("not read");
        };
        assert!(!status);
        assert_eq!(groups.len(), 3);
        assert_eq!(
            groups[1].filter,
            Filter::Subtree(vec!["a b".into(), "c".into()])
        );
        assert!(groups[2].events.is_empty());
    }

    #[test]
    fn refuses_bad_syntax() {
        for bad in [
            "a NOTIFY",
            "a NOTIFY SET",
            "a NOTIFY FOO",
            "a NOTIFY NONE extra",
            "a NOTIFY SET (selected)",
            "a NOTIFY SET (selected (MessageNew MessageExpunge)",
            "a NOTIFY SET (bogus (MessageNew MessageExpunge))",
            "a NOTIFY SET (selected (MessageNew))",
            "a NOTIFY SET (selected (FlagChange))",
            "a NOTIFY SET (mailboxes (MessageNew MessageExpunge))",
            "a NOTIFY SET (inboxes (MessageNew (UID) MessageExpunge))",
            "a NOTIFY SET (selected none) (selected none)",
        ] {
            assert!(matches!(p(bad), Parsed::Bad(_)), "{bad} accepted");
        }
    }

    #[test]
    fn unknown_events_are_badevent() {
        assert_eq!(
            p("a NOTIFY SET (personal (MessageNew MessageExpunge AnnotationChange))"),
            Parsed::BadEvent(BadEvent("ANNOTATIONCHANGE".into()))
        );
    }

    #[test]
    fn filters_name_folders() {
        let sub = Filter::Subtree(vec!["Lists".into()]);
        assert!(names(&sub, "Lists", false));
        assert!(names(&sub, "Lists.rust", false));
        assert!(!names(&sub, "Listsx", false));
        assert!(names(&Filter::Inboxes, "INBOX", false));
        assert!(names(
            &Filter::Mailboxes(vec!["inbox".into()]),
            "INBOX",
            false
        ));
        assert!(names(&Filter::Subscribed, "x", true));
        assert!(!names(&Filter::Subscribed, "x", false));
    }
}
