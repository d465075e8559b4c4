//! SEARCH: evaluating a criteria tree against one message.
//!
//! Flags, sizes, dates and sets are answered from the store's metadata; header
//! and body criteria parse the message with `mail-parser` (decoded values, so
//! `SUBJECT Grüße` finds an RFC 2047-encoded subject), only for the messages
//! and only when such a criterion is present. Matching is case-insensitive
//! substring matching, as RFC 3501 asks.

use chrono::NaiveDate;
use imap_codec::imap_types::search::SearchKey;
use mail_parser::{Address, HeaderValue, MessageParser};
use mailrig_core::store::{StoredMessage, SystemFlag};

use super::mime;
use super::view::View;

/// One message as SEARCH sees it.
pub struct Candidate<'a> {
    pub seq: usize,
    pub msg: &'a StoredMessage,
    pub recent: bool,
    pub view: &'a View,
}

/// Whether `key` matches the candidate.
pub fn matches<'a>(key: &SearchKey<'_>, c: &Candidate<'a>, parsed: &mut Parsed<'a>) -> bool {
    let f = &c.msg.flags;
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().all(|k| matches(k, c, parsed)),
        SearchKey::SequenceSet(set) => c
            .view
            .resolve(set, false)
            .map(|v| v.iter().any(|(s, _)| *s == c.seq))
            .unwrap_or(false),
        SearchKey::Uid(set) => c
            .view
            .resolve(set, true)
            .map(|v| v.iter().any(|(_, u)| *u == c.msg.uid))
            .unwrap_or(false),
        SearchKey::All => true,
        SearchKey::Answered => f.has(SystemFlag::Answered),
        SearchKey::Unanswered => !f.has(SystemFlag::Answered),
        SearchKey::Deleted => f.has(SystemFlag::Deleted),
        SearchKey::Undeleted => !f.has(SystemFlag::Deleted),
        SearchKey::Draft => f.has(SystemFlag::Draft),
        SearchKey::Undraft => !f.has(SystemFlag::Draft),
        SearchKey::Flagged => f.has(SystemFlag::Flagged),
        SearchKey::Unflagged => !f.has(SystemFlag::Flagged),
        SearchKey::Seen => f.has(SystemFlag::Seen),
        SearchKey::Unseen => !f.has(SystemFlag::Seen),
        SearchKey::Keyword(k) => f.has_keyword(k.inner()),
        SearchKey::Unkeyword(k) => !f.has_keyword(k.inner()),
        SearchKey::New => c.recent && !f.has(SystemFlag::Seen),
        SearchKey::Old => !c.recent,
        SearchKey::Recent => c.recent,
        SearchKey::Larger(n) => c.msg.size() > *n as usize,
        SearchKey::Smaller(n) => c.msg.size() < *n as usize,
        SearchKey::Not(k) => !matches(k, c, parsed),
        SearchKey::Or(a, b) => matches(a, c, parsed) || matches(b, c, parsed),
        SearchKey::Before(d) => c.msg.internal_date.date_naive() < *d.as_ref(),
        SearchKey::On(d) => c.msg.internal_date.date_naive() == *d.as_ref(),
        SearchKey::Since(d) => c.msg.internal_date.date_naive() >= *d.as_ref(),
        SearchKey::SentBefore(d) => parsed.sent(c.msg).is_some_and(|s| s < *d.as_ref()),
        SearchKey::SentOn(d) => parsed.sent(c.msg).is_some_and(|s| s == *d.as_ref()),
        SearchKey::SentSince(d) => parsed.sent(c.msg).is_some_and(|s| s >= *d.as_ref()),
        SearchKey::From(s) => parsed.address_matches(c.msg, "From", s.as_ref()),
        SearchKey::To(s) => parsed.address_matches(c.msg, "To", s.as_ref()),
        SearchKey::Cc(s) => parsed.address_matches(c.msg, "Cc", s.as_ref()),
        SearchKey::Bcc(s) => parsed.address_matches(c.msg, "Bcc", s.as_ref()),
        SearchKey::Subject(s) => {
            let needle = lower(s.as_ref());
            parsed
                .with(c.msg, |m| {
                    m.subject().map(|x| x.to_lowercase().contains(&needle))
                })
                .flatten()
                .unwrap_or(false)
        }
        SearchKey::Header(name, value) => {
            let name = String::from_utf8_lossy(name.as_ref()).into_owned();
            let needle = lower(value.as_ref());
            let (h, _) = mime::split(&c.msg.raw, 0..c.msg.raw.len());
            let raw_hit = mime::header_values(&c.msg.raw[h], &name)
                .any(|v| v.to_lowercase().contains(&needle));
            raw_hit
                || parsed
                    .with(c.msg, |m| {
                        m.header(name.as_str())
                            .and_then(HeaderValue::as_text)
                            .is_some_and(|t| t.to_lowercase().contains(&needle))
                    })
                    .unwrap_or(false)
        }
        SearchKey::Body(s) => {
            let needle = lower(s.as_ref());
            parsed.body_contains(c.msg, &needle)
        }
        SearchKey::Text(s) => {
            let needle = lower(s.as_ref());
            let (h, _) = mime::split(&c.msg.raw, 0..c.msg.raw.len());
            String::from_utf8_lossy(&c.msg.raw[h])
                .to_lowercase()
                .contains(&needle)
                || parsed.body_contains(c.msg, &needle)
        }
        // CONDSTORE (RFC 7162 §3.1.5); the per-flag entry is not told apart.
        SearchKey::ModSequence { modseq, .. } => c.msg.modseq >= *modseq,
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

fn lower(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_lowercase()
}

/// Whether a criteria tree has a MODSEQ key: the response then names the
/// highest modseq found (RFC 7162 §3.1.5).
pub fn uses_modseq(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().any(uses_modseq),
        SearchKey::Not(k) => uses_modseq(k),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        SearchKey::ModSequence { .. } => true,
        _ => false,
    }
}

/// Whether a criteria tree needs the parsed message.
pub fn needs_parse(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().any(needs_parse),
        SearchKey::Not(k) => needs_parse(k),
        SearchKey::Or(a, b) => needs_parse(a) || needs_parse(b),
        SearchKey::From(_)
        | SearchKey::To(_)
        | SearchKey::Cc(_)
        | SearchKey::Bcc(_)
        | SearchKey::Subject(_)
        | SearchKey::Header(..)
        | SearchKey::Body(_)
        | SearchKey::Text(_)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_) => true,
        _ => false,
    }
}

/// The parsed form of the current candidate, made on first use.
#[derive(Default)]
pub struct Parsed<'a> {
    msg: Option<Option<mail_parser::Message<'a>>>,
}

impl<'a> Parsed<'a> {
    pub fn new() -> Self {
        Parsed { msg: None }
    }

    fn with<R>(
        &mut self,
        m: &'a StoredMessage,
        f: impl FnOnce(&mail_parser::Message<'a>) -> R,
    ) -> Option<R> {
        let parsed = self
            .msg
            .get_or_insert_with(|| MessageParser::default().parse(&m.raw[..]));
        parsed.as_ref().map(f)
    }

    fn sent(&mut self, m: &'a StoredMessage) -> Option<NaiveDate> {
        self.with(m, |p| {
            p.date().and_then(|d| {
                NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
            })
        })
        .flatten()
    }

    fn address_matches(&mut self, m: &'a StoredMessage, header: &str, needle: &[u8]) -> bool {
        let needle = lower(needle);
        self.with(m, |p| {
            let Some(HeaderValue::Address(a)) = p.header(header) else {
                return false;
            };
            let hit = |name: Option<&str>, addr: Option<&str>| {
                name.is_some_and(|n| n.to_lowercase().contains(&needle))
                    || addr.is_some_and(|x| x.to_lowercase().contains(&needle))
            };
            match a {
                Address::List(l) => l
                    .iter()
                    .any(|x| hit(x.name.as_deref(), x.address.as_deref())),
                Address::Group(g) => g.iter().any(|g| {
                    g.name
                        .as_deref()
                        .is_some_and(|n| n.to_lowercase().contains(&needle))
                        || g.addresses
                            .iter()
                            .any(|x| hit(x.name.as_deref(), x.address.as_deref()))
                }),
            }
        })
        .unwrap_or(false)
    }

    fn body_contains(&mut self, m: &'a StoredMessage, needle: &str) -> bool {
        self.with(m, |p| {
            (0..p.text_body.len()).any(|i| {
                p.body_text(i)
                    .is_some_and(|t| t.to_lowercase().contains(needle))
            }) || (0..p.html_body.len()).any(|i| {
                p.body_html(i)
                    .is_some_and(|t| t.to_lowercase().contains(needle))
            })
        })
        .unwrap_or(false)
    }
}
