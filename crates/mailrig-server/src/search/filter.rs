//! Which messages a list or a wait asks for — sender, recipient, subject,
//! body text, a header, free text, a date window, a mailbox or domain — and
//! the check of one indexed [`Entry`] against it: string comparisons and
//! substring searches (`memchr::memmem`, needles prepared once per query)
//! over text extracted at indexing time, no parsing.

use chrono::{DateTime, Utc};
use memchr::memmem::Finder;

use super::entry::{Entry, NULL_SENDER, Section};

/// A `header` filter that is not `Name` or `Name: part of value`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not a header filter: give a header field name, optionally ': ' and part of its value (X-Mailer: swaks)"
)]
pub struct BadHeaderFilter(pub String);

/// Which messages: every filter given must match. Text is compared
/// lowercased.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// The mailbox it is stored in, an envelope recipient or a To/Cc address.
    to: Option<String>,
    /// The From address or the envelope sender (empty or `<>`: the null sender).
    from: Option<String>,
    /// Part of the decoded subject.
    subject: Option<Finder<'static>>,
    /// The mailbox it is stored in.
    mailbox: Option<String>,
    /// The domain of the mailbox it is stored in.
    domain: Option<String>,
    /// Part of the decoded text of the body (HTML parts as text).
    text: Option<Finder<'static>>,
    /// A header field name and part of its value.
    header: Option<(String, String)>,
    /// Part of the mailbox, a sender, a recipient, a name, the subject or the body.
    any: Option<Finder<'static>>,
    /// Stored at or after / before.
    after: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
}

fn finder(s: Option<String>) -> Option<Finder<'static>> {
    s.map(|s| Finder::new(s.to_lowercase().as_bytes()).into_owned())
}

fn lower(s: Option<String>) -> Option<String> {
    s.map(|s| s.to_lowercase())
}

/// A test of the (lowercased) address of the mailbox a message is stored in.
#[derive(Debug, Clone, Copy)]
pub enum MailboxTest<'a> {
    /// The mailbox is this address.
    Is(&'a str),
    /// The mailbox's domain is this one.
    InDomain(&'a str),
    /// The address contains this.
    Contains(&'a Finder<'static>),
}

impl MailboxTest<'_> {
    /// Whether `mailbox` (lowercased) passes.
    pub fn passes(&self, mailbox: &str) -> bool {
        match self {
            MailboxTest::Is(want) => *want == mailbox,
            MailboxTest::InDomain(want) => {
                mailbox.rsplit_once('@').is_some_and(|(_, d)| d == *want)
            }
            MailboxTest::Contains(f) => f.find(mailbox.as_bytes()).is_some(),
        }
    }
}

/// What a message must have to match a filter, as the search index can
/// look it up without checking messages: every message that
/// [`Filter::matches`] lets through meets every requirement of
/// [`Filter::requirements`] (the converse need not hold: the index checks
/// the messages that meet them). Needles are lowercased.
#[derive(Debug, Clone, Copy)]
pub enum Requirement<'a> {
    /// [`Entry::text`] contains the needle.
    Text(&'a [u8]),
    /// One of the [`Entry::header_values`] contains the needle.
    Header(&'a [u8]),
    /// The mailbox passes.
    Mailbox(MailboxTest<'a>),
    /// [`Entry::text`] contains the needle, or the mailbox passes.
    TextOrMailbox(&'a [u8], MailboxTest<'a>),
}

/// Whether one line of a `\n`-separated section is `want`.
fn has_line(section: &str, want: &str) -> bool {
    section.split('\n').any(|l| l == want)
}

impl Filter {
    /// A filter from query values; `header` is `Name: part of value` (or
    /// just `Name`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        to: Option<String>,
        from: Option<String>,
        subject: Option<String>,
        mailbox: Option<String>,
        domain: Option<String>,
        text: Option<String>,
        header: Option<String>,
        any: Option<String>,
        after: Option<DateTime<Utc>>,
        before: Option<DateTime<Utc>>,
    ) -> Result<Filter, BadHeaderFilter> {
        let header = match header {
            None => None,
            Some(h) => {
                // As the schema's pattern `^[!-9;-~]+(:[\s\S]*)?$`: a field
                // name (RFC 5322 ftext), then optionally a colon and any text.
                let (name, value) = h.split_once(':').unwrap_or((h.as_str(), ""));
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(BadHeaderFilter(h));
                }
                Some((name.to_string(), value.trim().to_lowercase()))
            }
        };
        Ok(Filter {
            to: lower(to),
            from: lower(from).map(|f| {
                if f.is_empty() {
                    NULL_SENDER.to_string()
                } else {
                    f
                }
            }),
            subject: finder(subject),
            mailbox: lower(mailbox),
            domain: lower(domain),
            text: finder(text),
            header,
            any: finder(any),
            after,
            before,
        })
    }

    /// Whether no filter is given (every message matches).
    pub fn is_empty(&self) -> bool {
        self.to.is_none()
            && self.from.is_none()
            && self.subject.is_none()
            && self.mailbox.is_none()
            && self.domain.is_none()
            && self.text.is_none()
            && self.header.is_none()
            && self.any.is_none()
            && self.after.is_none()
            && self.before.is_none()
    }

    /// What a matching message must have; see [`Requirement`].
    pub fn requirements(&self) -> Vec<Requirement<'_>> {
        let mut out = Vec::new();
        if let Some(want) = &self.mailbox {
            out.push(Requirement::Mailbox(MailboxTest::Is(want)));
        }
        if let Some(want) = &self.domain {
            out.push(Requirement::Mailbox(MailboxTest::InDomain(want)));
        }
        // A line of a section is a substring of the whole text.
        if let Some(want) = &self.from {
            out.push(Requirement::Text(want.as_bytes()));
        }
        if let Some(want) = &self.to {
            out.push(Requirement::TextOrMailbox(
                want.as_bytes(),
                MailboxTest::Is(want),
            ));
        }
        for f in [&self.subject, &self.text].into_iter().flatten() {
            out.push(Requirement::Text(f.needle()));
        }
        if let Some((_, want)) = &self.header
            && !want.is_empty()
        {
            out.push(Requirement::Header(want.as_bytes()));
        }
        if let Some(f) = &self.any {
            out.push(Requirement::TextOrMailbox(
                f.needle(),
                MailboxTest::Contains(f),
            ));
        }
        out
    }

    /// Whether the message of `entry`, stored in the mailbox `mailbox`
    /// (lowercased) at `date`, matches.
    pub fn matches(&self, mailbox: &str, date: DateTime<Utc>, entry: &Entry) -> bool {
        if let Some(want) = &self.mailbox
            && !MailboxTest::Is(want).passes(mailbox)
        {
            return false;
        }
        if let Some(want) = &self.domain
            && !MailboxTest::InDomain(want).passes(mailbox)
        {
            return false;
        }
        if self.after.is_some_and(|t| date < t) || self.before.is_some_and(|t| date >= t) {
            return false;
        }
        let found = |f: &Finder, s: &str| f.find(s.as_bytes()).is_some();
        if let Some(f) = &self.subject
            && !found(f, entry.section(Section::Subject))
        {
            return false;
        }
        if let Some(want) = &self.from
            && !has_line(entry.section(Section::From), want)
        {
            return false;
        }
        if let Some(want) = &self.to
            && !MailboxTest::Is(want).passes(mailbox)
            && !has_line(entry.section(Section::To), want)
        {
            return false;
        }
        if let Some(f) = &self.text
            && !found(f, entry.section(Section::Body))
        {
            return false;
        }
        if let Some((name, want)) = &self.header
            && !entry.has_header(name, want)
        {
            return false;
        }
        if let Some(f) = &self.any
            && !MailboxTest::Contains(f).passes(mailbox)
            && !found(f, entry.text())
        {
            return false;
        }
        true
    }
}

/// The filter as the first version ran it, parsing the message for every
/// check: the oracle of the differential test in `super::tests`.
#[cfg(test)]
pub mod oracle {
    use mail_parser::{Address, MessageParser};
    use mailrig_core::store::StoredMessage;

    /// The query values, as given.
    #[derive(Debug, Default, Clone)]
    pub struct Query {
        pub to: Option<String>,
        pub from: Option<String>,
        pub subject: Option<String>,
        pub mailbox: Option<String>,
        pub domain: Option<String>,
        pub text: Option<String>,
        pub header: Option<(String, String)>,
        pub any: Option<String>,
    }

    fn body_text(m: &StoredMessage) -> String {
        let Some(p) = MessageParser::new().parse(&m.raw[..]) else {
            return String::new();
        };
        let mut out = String::new();
        for i in 0..p.text_body_count() {
            if let Some(t) = p.body_text(i) {
                out.push_str(&t.to_lowercase());
                out.push('\n');
            }
        }
        for i in 0..p.html_body_count() {
            if let Some(mail_parser::PartType::Html(h)) = p.html_part(i as u32).map(|x| &x.body) {
                out.push_str(&mail_parser::decoders::html::html_to_text(h).to_lowercase());
            }
        }
        out
    }

    pub fn matches(q: &Query, mailbox: &str, m: &StoredMessage) -> bool {
        let eq = |a: &str, b: &str| a.to_lowercase() == b.to_lowercase();
        if q.mailbox.as_ref().is_some_and(|w| !eq(w, mailbox)) {
            return false;
        }
        if let Some(want) = &q.domain
            && !mailbox.rsplit_once('@').is_some_and(|(_, d)| eq(d, want))
        {
            return false;
        }
        if let Some(want) = &q.text
            && !body_text(m).contains(&want.to_lowercase())
        {
            return false;
        }
        let parsed = MessageParser::new().parse_headers(&m.raw[..]);
        let addresses = |list: Option<&Address>| -> Vec<String> {
            list.map(|a| {
                a.iter()
                    .filter_map(|x| x.address().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
        };
        if let Some(want) = &q.to {
            let mut all = vec![mailbox.to_string()];
            if let Some(e) = &m.envelope {
                all.extend(e.rcpt_to.iter().cloned());
            }
            if let Some(p) = &parsed {
                all.extend(addresses(p.to()));
                all.extend(addresses(p.cc()));
            }
            if !all.iter().any(|a| eq(a.trim_matches(['<', '>']), want)) {
                return false;
            }
        }
        if let Some(want) = &q.from {
            let mut all = Vec::new();
            if let Some(e) = &m.envelope {
                all.push(e.mail_from.to_string());
            }
            if let Some(p) = &parsed {
                all.extend(addresses(p.from()));
            }
            let want = if want == "<>" { "" } else { want };
            if !all.iter().any(|a| eq(a, want)) {
                return false;
            }
        }
        if let Some(want) = &q.subject {
            let subject = parsed.as_ref().and_then(|p| p.subject()).unwrap_or("");
            if !subject.to_lowercase().contains(&want.to_lowercase()) {
                return false;
            }
        }
        if let Some((name, want)) = &q.header {
            let want = want.to_lowercase();
            let found = parsed.as_ref().is_some_and(|p| {
                p.headers_raw().any(|(n, v)| {
                    n.eq_ignore_ascii_case(name) && v.to_lowercase().contains(want.as_str())
                })
            });
            if !found {
                return false;
            }
        }
        if let Some(want) = &q.any {
            let want = want.to_lowercase();
            let mut hay = mailbox.to_lowercase();
            if let Some(e) = &m.envelope {
                hay.push(' ');
                hay.push_str(&e.mail_from.to_lowercase());
                for r in &e.rcpt_to {
                    hay.push(' ');
                    hay.push_str(&r.to_lowercase());
                }
            }
            if let Some(p) = &parsed {
                for a in [p.from(), p.to(), p.cc()].into_iter().flatten() {
                    for x in a.iter() {
                        hay.push(' ');
                        hay.push_str(&x.address().unwrap_or("").to_lowercase());
                        hay.push(' ');
                        hay.push_str(&x.name().unwrap_or("").to_lowercase());
                    }
                }
                hay.push(' ');
                hay.push_str(&p.subject().unwrap_or("").to_lowercase());
            }
            if !hay.contains(&want) && !body_text(m).contains(&want) {
                return false;
            }
        }
        true
    }
}
