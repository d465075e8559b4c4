//! SORT (RFC 5256) with the DISPLAY keys (RFC 5957): the sort keys of one
//! message, the base subject that SORT and THREAD share, and the order of a
//! search result.
//!
//! Strings compare uppercased (close to `i;unicode-casemap`, Dovecot's
//! collation). Ties fall back to the sequence number, ascending whatever
//! REVERSE says, as Dovecot does (imaptest's `sort-*` scripts expect it).

use std::cmp::Ordering;

use imap_codec::imap_types::extensions::sort::{SortCriterion, SortKey};
use mail_parser::{Address, HeaderValue, Message, MessageParser};
use mailrig_core::store::StoredMessage;

use super::mime;

/// What SORT and THREAD read of one message's header.
#[derive(Debug, Clone, Default)]
pub struct Header {
    /// The sent date (`Date:` in UTC seconds), else the internal date.
    pub date: i64,
    /// The uppercased base subject and whether it was a reply or forward.
    pub subject: (String, bool),
    pub from: String,
    pub to: String,
    pub cc: String,
    pub display_from: String,
    pub display_to: String,
    pub message_id: Option<String>,
    /// `References:` message IDs, oldest first.
    pub references: Vec<String>,
    /// The first `In-Reply-To:` message ID.
    pub in_reply_to: Option<String>,
}

impl Header {
    /// Reads the header of `msg`.
    pub fn of(msg: &StoredMessage) -> Header {
        let (h, _) = mime::split(&msg.raw, 0..msg.raw.len());
        let internal = msg.internal_date.timestamp();
        match MessageParser::new().parse_headers(&msg.raw[h]) {
            Some(m) => Header::from_parsed(&m, internal),
            None => Header {
                date: internal,
                ..Header::default()
            },
        }
    }

    fn from_parsed(m: &Message<'_>, internal: i64) -> Header {
        let addr = |name: &str| match m.header(name) {
            Some(HeaderValue::Address(a)) => first_address(a),
            _ => None,
        };
        let mailbox = |a: &Option<First>| {
            a.as_ref()
                .map(|f| f.mailbox.to_uppercase())
                .unwrap_or_default()
        };
        let display = |a: &Option<First>| a.as_ref().map(First::display).unwrap_or_default();
        let (from, to, cc) = (addr("From"), addr("To"), addr("Cc"));
        Header {
            date: m.date().map(|d| d.to_timestamp()).unwrap_or(internal),
            subject: base_subject(m.subject().unwrap_or("")),
            from: mailbox(&from),
            to: mailbox(&to),
            cc: mailbox(&cc),
            display_from: display(&from),
            display_to: display(&to),
            message_id: m.message_id().filter(|s| !s.is_empty()).map(str::to_string),
            references: ids(m.header("References")),
            in_reply_to: ids(m.header("In-Reply-To")).into_iter().next(),
        }
    }
}

fn ids(v: Option<&HeaderValue<'_>>) -> Vec<String> {
    match v {
        Some(HeaderValue::Text(t)) if !t.is_empty() => vec![t.to_string()],
        Some(HeaderValue::TextList(l)) => l
            .iter()
            .filter(|t| !t.is_empty())
            .map(|t| t.to_string())
            .collect(),
        _ => Vec::new(),
    }
}

/// The first entry of an address list as ENVELOPE shows it: a group's start
/// marker has the group's name as its mailbox and no host.
struct First {
    name: Option<String>,
    mailbox: String,
    host: Option<String>,
}

impl First {
    /// RFC 5957: the display name, else the addr-spec; uppercased.
    fn display(&self) -> String {
        match (&self.name, &self.host) {
            (Some(n), _) if !n.trim().is_empty() => n.trim().to_uppercase(),
            (_, Some(h)) => format!("{}@{h}", self.mailbox).to_uppercase(),
            (_, None) => self.mailbox.to_uppercase(),
        }
    }
}

fn first_address(a: &Address<'_>) -> Option<First> {
    let split = |name: Option<&str>, address: Option<&str>| {
        let address = address.unwrap_or("");
        let (mailbox, host) = match address.rfind('@') {
            Some(i) => (&address[..i], Some(address[i + 1..].to_string())),
            None => (address, None),
        };
        First {
            name: name.map(str::to_string),
            mailbox: mailbox.to_string(),
            host,
        }
    };
    match a {
        Address::List(l) => l
            .first()
            .map(|x| split(x.name.as_deref(), x.address.as_deref())),
        Address::Group(groups) => {
            let g = groups.first()?;
            match &g.name {
                Some(name) => Some(First {
                    name: None,
                    mailbox: name.to_string(),
                    host: None,
                }),
                None => g
                    .addresses
                    .first()
                    .map(|x| split(x.name.as_deref(), x.address.as_deref())),
            }
        }
    }
}

/// The base subject of a decoded subject (RFC 5256 §2.1), uppercased, and
/// whether the subject was a reply or forward: a `re:`/`fwd:` leader, a
/// `(fwd)` trailer or a `[fwd: ...]` wrapper was taken off.
pub fn base_subject(subject: &str) -> (String, bool) {
    // (1) Whitespace runs become one space.
    let mut s = String::with_capacity(subject.len());
    for c in subject.to_uppercase().chars() {
        let c = if c.is_whitespace() { ' ' } else { c };
        if !(c == ' ' && s.ends_with(' ')) {
            s.push(c);
        }
    }
    let mut reply = false;
    loop {
        // (2) Trailers: `(fwd)` and whitespace.
        loop {
            if s.ends_with(' ') {
                s.pop();
            } else if s.ends_with("(FWD)") {
                s.truncate(s.len() - 5);
                reply = true;
            } else {
                break;
            }
        }
        // (3)-(5) Leaders, and a leading blob that is not all there is.
        loop {
            if let Some(rest) = s.strip_prefix(' ') {
                s = rest.to_string();
            } else if let Some(n) = refwd_leader(&s) {
                s.drain(..n);
                reply = true;
            } else if let Some(n) = blob(&s).filter(|&n| s[n..].contains(|c| c != ' ')) {
                s.drain(..n);
            } else {
                break;
            }
        }
        // (6) A `[fwd: ...]` wrapper.
        if s.starts_with("[FWD:") && s.ends_with(']') {
            s = s[5..s.len() - 1].to_string();
            reply = true;
        } else {
            return (s, reply);
        }
    }
}

/// `subj-blob`: `[` text without brackets `]` and the spaces after it.
fn blob(s: &str) -> Option<usize> {
    let rest = s.strip_prefix('[')?;
    let close = rest.find([']', '['])?;
    if rest.as_bytes()[close] != b']' {
        return None;
    }
    let mut n = 1 + close + 1;
    while s[n..].starts_with(' ') {
        n += 1;
    }
    Some(n)
}

/// `*subj-blob subj-refwd`: blobs, then `re`, `fw` or `fwd`, spaces, an
/// optional blob and `:`.
fn refwd_leader(s: &str) -> Option<usize> {
    let mut n = 0;
    while let Some(b) = blob(&s[n..]) {
        n += b;
    }
    let rest = &s[n..];
    n += if rest.starts_with("RE") || rest.starts_with("FW") {
        if rest.starts_with("FWD") { 3 } else { 2 }
    } else {
        return None;
    };
    while s[n..].starts_with(' ') {
        n += 1;
    }
    if let Some(b) = blob(&s[n..]) {
        n += b;
    }
    s[n..].starts_with(':').then_some(n + 1)
}

/// One message to sort: its sequence number, the store's facts and, when a
/// criterion needs it, its header.
pub struct Item {
    pub seq: usize,
    pub arrival: i64,
    pub size: usize,
    pub header: Option<Header>,
}

impl Item {
    pub fn new(seq: usize, msg: &StoredMessage, criteria: &[SortCriterion]) -> Item {
        let needs_header = criteria
            .iter()
            .any(|c| !matches!(c.key, SortKey::Arrival | SortKey::Size));
        Item {
            seq,
            arrival: msg.internal_date.timestamp(),
            size: msg.size(),
            header: needs_header.then(|| Header::of(msg)),
        }
    }

    fn compare(&self, other: &Item, key: &SortKey) -> Ordering {
        let text = |f: fn(&Header) -> &str| {
            let a = self.header.as_ref().map(f).unwrap_or("");
            let b = other.header.as_ref().map(f).unwrap_or("");
            a.cmp(b)
        };
        match key {
            SortKey::Arrival => self.arrival.cmp(&other.arrival),
            SortKey::Size => self.size.cmp(&other.size),
            SortKey::Date => {
                let date = |i: &Item| i.header.as_ref().map_or(i.arrival, |h| h.date);
                date(self).cmp(&date(other))
            }
            SortKey::Subject => text(|h| &h.subject.0),
            SortKey::From => text(|h| &h.from),
            SortKey::To => text(|h| &h.to),
            SortKey::Cc => text(|h| &h.cc),
            SortKey::DisplayFrom => text(|h| &h.display_from),
            SortKey::DisplayTo => text(|h| &h.display_to),
        }
    }
}

/// Sorts `items` by `criteria`, then by sequence number.
pub fn sort(items: &mut [Item], criteria: &[SortCriterion]) {
    items.sort_by(|a, b| {
        criteria
            .iter()
            .map(|c| {
                let o = a.compare(b, &c.key);
                if c.reverse { o.reverse() } else { o }
            })
            .find(|o| o.is_ne())
            .unwrap_or_else(|| a.seq.cmp(&b.seq))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(s: &str) -> String {
        base_subject(s).0
    }

    #[test]
    fn base_subject_strips_leaders_trailers_and_wrappers() {
        assert_eq!(base("a"), "A");
        assert_eq!(base("[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)"), "B");
        assert_eq!(base("Re: [FWD: c]"), "C");
        assert_eq!(base("re: [fwd: [fwd: re: [fwd: babylon]]]"), "BABYLON");
        assert_eq!(base("Re [list]: hello"), "HELLO");
        assert_eq!(base("  two\t\tspaces  "), "TWO SPACES");
        assert_eq!(base(" "), "");
        assert_eq!(base(""), "");
    }

    #[test]
    fn base_subject_keeps_what_is_not_a_leader() {
        // A blob that is the whole subject stays; "Ad:" is no leader.
        assert_eq!(base("[xyz]"), "[XYZ]");
        assert_eq!(base("Ad: Re: x"), "AD: RE: X");
        assert_eq!(base("b (a)"), "B (A)");
        assert_eq!(base("Reply needed"), "REPLY NEEDED");
        assert_eq!(base("[unclosed subject"), "[UNCLOSED SUBJECT");
    }

    #[test]
    fn reply_marks_only_what_removed_a_reply_sign() {
        assert!(!base_subject("foo").1);
        assert!(!base_subject("[list] foo").1);
        assert!(base_subject("Re: foo").1);
        assert!(base_subject("foo (fwd)").1);
        assert!(base_subject("[fwd: foo]").1);
    }

    fn header_of(raw: &str) -> Header {
        let m = MessageParser::new().parse_headers(raw.as_bytes()).unwrap();
        Header::from_parsed(&m, 7)
    }

    #[test]
    fn address_keys_read_the_first_address_like_envelope() {
        let h = header_of("From: Foo Bar <b@c.d>\r\nTo: grp: x@y.z;\r\nCc: x@y, z@w\r\n\r\n");
        assert_eq!((h.from.as_str(), h.display_from.as_str()), ("B", "FOO BAR"));
        assert_eq!((h.to.as_str(), h.display_to.as_str()), ("GRP", "GRP"));
        assert_eq!(h.cc, "X");
        let bare = header_of("From: d\r\nTo: <e@f>\r\n\r\n");
        assert_eq!(
            (bare.display_from.as_str(), bare.display_to.as_str()),
            ("D", "E@F")
        );
        assert_eq!(h.date, 7, "no Date: the internal date");
    }

    #[test]
    fn thread_headers_are_message_ids_without_brackets() {
        let h =
            header_of("Message-ID: <m@x>\r\nReferences: <a@x> <b@x>\r\nIn-Reply-To: <b@x>\r\n\r\n");
        assert_eq!(h.message_id.as_deref(), Some("m@x"));
        assert_eq!(h.references, ["a@x", "b@x"]);
        assert_eq!(h.in_reply_to.as_deref(), Some("b@x"));
    }

    #[test]
    fn ties_keep_sequence_order_even_reversed() {
        let item = |seq, size| Item {
            seq,
            arrival: 0,
            size,
            header: None,
        };
        let mut items = vec![item(1, 5), item(2, 3), item(3, 5), item(4, 3)];
        let crit = |reverse| SortCriterion {
            reverse,
            key: SortKey::Size,
        };
        sort(&mut items, &[crit(true)]);
        let seqs: Vec<usize> = items.iter().map(|i| i.seq).collect();
        assert_eq!(seqs, [1, 3, 2, 4]);
        sort(&mut items, &[crit(false)]);
        let seqs: Vec<usize> = items.iter().map(|i| i.seq).collect();
        assert_eq!(seqs, [2, 4, 1, 3]);
    }
}
