//! What the index keeps of one message, pulled out once when it is indexed
//! so that no query parses a message again: the lowercased subject,
//! addresses, display names and body text in one string, and where each
//! header field sits in the raw bytes (which the store and the index share).

use bytes::Bytes;
use mail_parser::{Address, MessageParser};
use mailrig_core::store::StoredMessage;

/// The sections of [`Entry::text`], in order; each ends where the next's
/// separator (`\0`) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The decoded Subject.
    Subject = 0,
    /// The envelope sender and the From addresses, one a line.
    From = 1,
    /// The envelope recipients and the To and Cc addresses, one a line.
    To = 2,
    /// The display names of From, To and Cc.
    Names = 3,
    /// The decoded text of the body parts (HTML parts as their text).
    Body = 4,
}

const SECTIONS: usize = 5;

/// How the null sender `MAIL FROM:<>` is written in [`Section::From`].
pub const NULL_SENDER: &str = "<>";

/// Where one header field is in the raw message: the name starts at
/// `field`, the value runs from `start` to `end` (as mail-parser reports it).
#[derive(Debug, Clone, Copy)]
struct HeaderAt {
    field: u32,
    start: u32,
    end: u32,
}

/// One indexed message.
#[derive(Debug)]
pub struct Entry {
    /// The stored bytes, shared with the store (not a copy).
    raw: Bytes,
    headers: Box<[HeaderAt]>,
    /// Every section, lowercased, `\0` between sections.
    text: Box<str>,
    /// The end of each section but the last in `text`.
    ends: [u32; SECTIONS - 1],
}

impl Entry {
    /// Parses a stored message once and keeps what the filters look at.
    pub fn extract(m: &StoredMessage) -> Entry {
        let raw = m.raw.clone();
        let mut sections: [String; SECTIONS] = Default::default();
        let mut headers = Vec::new();
        let mut line = |s: Section, v: &str| {
            let out = &mut sections[s as usize];
            if !v.is_empty() {
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(v);
            }
        };
        if let Some(e) = &m.envelope {
            // The null sender as `<>`, so that `from=` (or `from=<>`) finds bounces.
            let sender = e.mail_from.trim_matches(['<', '>']);
            line(
                Section::From,
                if sender.is_empty() {
                    NULL_SENDER
                } else {
                    sender
                },
            );
            for r in &e.rcpt_to {
                line(Section::To, r.trim_matches(['<', '>']));
            }
        }
        if let Some(p) = MessageParser::new().parse(&raw[..]) {
            line(Section::Subject, p.subject().unwrap_or(""));
            let mut addresses = |s: Section, list: Option<&Address>, names: &mut Vec<String>| {
                for a in list.into_iter().flat_map(|a| a.iter()) {
                    line(s, a.address().unwrap_or(""));
                    if let Some(n) = a.name() {
                        names.push(n.to_string());
                    }
                }
            };
            let mut names = Vec::new();
            addresses(Section::From, p.from(), &mut names);
            addresses(Section::To, p.to(), &mut names);
            addresses(Section::To, p.cc(), &mut names);
            for n in &names {
                line(Section::Names, n);
            }
            // Every inline text part once: mail-parser lists a plain-only
            // message's part as its HTML body too, and an HTML-only one's as
            // its text body (converted to text, which is what is indexed).
            let mut seen = Vec::new();
            for (i, part) in p.text_body.iter().enumerate() {
                seen.push(*part);
                if let Some(t) = p.body_text(i) {
                    line(Section::Body, &t);
                }
            }
            for part in &p.html_body {
                if seen.contains(part) {
                    continue;
                }
                if let Some(mail_parser::PartType::Html(h)) = p.part(*part).map(|x| &x.body) {
                    line(Section::Body, &mail_parser::decoders::html::html_to_text(h));
                }
            }
            headers = p.parts[0]
                .headers
                .iter()
                .map(|h| HeaderAt {
                    field: h.offset_field,
                    start: h.offset_start,
                    end: h.offset_end,
                })
                .collect();
        }
        let mut text = String::with_capacity(sections.iter().map(|s| s.len() + 1).sum());
        let mut ends = [0; SECTIONS - 1];
        for (i, s) in sections.iter().enumerate() {
            if i > 0 {
                ends[i - 1] = text.len() as u32;
                text.push('\0');
            }
            text.push_str(&s.to_lowercase());
        }
        Entry {
            raw,
            headers: headers.into_boxed_slice(),
            text: text.into_boxed_str(),
            ends,
        }
    }

    /// The whole lowercased text: every section.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// One lowercased section.
    pub fn section(&self, s: Section) -> &str {
        let i = s as usize;
        let start = if i == 0 {
            0
        } else {
            self.ends[i - 1] as usize + 1
        };
        let end = self.ends.get(i).map_or(self.text.len(), |&e| e as usize);
        &self.text[start..end]
    }

    /// Whether a header field `name` (ASCII, any case) has a value that
    /// contains `want` (lowercased; empty: any value). Works on the raw
    /// bytes: only the values of fields with that name are lowercased.
    pub fn has_header(&self, name: &str, want: &str) -> bool {
        self.headers.iter().any(|h| {
            let (f, s, e) = (h.field as usize, h.start as usize, h.end as usize);
            let Some(field) = self.raw.get(f..s) else {
                return false;
            };
            // `field` is the name, optional blanks and the colon.
            let n = field.strip_suffix(b":").unwrap_or(field).trim_ascii_end();
            if !n.eq_ignore_ascii_case(name.as_bytes()) {
                return false;
            }
            if want.is_empty() {
                return true;
            }
            let Some(value) = self.raw.get(s..e) else {
                return false;
            };
            if value.is_ascii() && want.is_ascii() {
                let w = want.as_bytes();
                value.len() >= w.len() && value.windows(w.len()).any(|x| x.eq_ignore_ascii_case(w))
            } else {
                std::str::from_utf8(value).is_ok_and(|v| v.to_lowercase().contains(want))
            }
        })
    }

    /// The value of every header field as [`Entry::has_header`] searches
    /// it: ASCII lowercased, other UTF-8 lowercased; a value that is not
    /// UTF-8 is left out (no search finds text in it).
    pub fn header_values(&self) -> impl Iterator<Item = Vec<u8>> + '_ {
        self.headers.iter().filter_map(|h| {
            let value = self.raw.get(h.start as usize..h.end as usize)?;
            if value.is_ascii() {
                Some(value.to_ascii_lowercase())
            } else {
                let v = std::str::from_utf8(value).ok()?;
                Some(v.to_lowercase().into_bytes())
            }
        })
    }

    /// Bytes this entry holds beyond the message it shares with the store.
    pub fn heap_size(&self) -> usize {
        std::mem::size_of::<Entry>()
            + self.text.len()
            + self.headers.len() * std::mem::size_of::<HeaderAt>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(raw: &str) -> StoredMessage {
        let store = crate::search::testing::store();
        let id =
            crate::search::testing::deliver(&store, "anna@kanzlei.test", raw, "Bounce@Extern.test");
        store.mailbox(id).messages("INBOX").unwrap().remove(0)
    }

    #[test]
    fn the_sections_hold_decoded_lowercased_fields() {
        let e = Entry::extract(&stored(
            "From: Erika Muster <Erika@Extern.test>\nTo: anna@kanzlei.test\nCc: \"Bernd B.\" <bernd@kanzlei.test>\n\
             Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= zum Vertrag\nX-Case: 4711-B\n\nDer VERTRAG liegt bei.\n",
        ));
        assert_eq!(e.section(Section::Subject), "grüße zum vertrag");
        assert_eq!(
            e.section(Section::From),
            "bounce@extern.test\nerika@extern.test"
        );
        assert_eq!(
            e.section(Section::To),
            "anna@kanzlei.test\nanna@kanzlei.test\nbernd@kanzlei.test"
        );
        assert_eq!(e.section(Section::Names), "erika muster\nbernd b.");
        assert_eq!(e.section(Section::Body), "der vertrag liegt bei.\r\n");
        assert!(e.has_header("x-case", "4711-b"));
        assert!(e.has_header("X-CASE", ""));
        assert!(!e.has_header("X-Case", "4712"));
        assert!(!e.has_header("X-Cas", ""));
        assert!(e.has_header("subject", "=?utf-8?q?gr=c3"), "the raw value");
        let values: Vec<Vec<u8>> = e.header_values().collect();
        let shown: Vec<String> = values
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        assert!(shown.iter().any(|v| v.contains("4711-b")), "{shown:?}");
        assert!(
            shown
                .iter()
                .any(|v| v.contains("grüße") || v.contains("=?utf-8?q?gr=c3"))
        );
        assert!(shown.iter().all(|v| *v == v.to_lowercase()), "{shown:?}");
    }

    #[test]
    fn an_alternative_is_indexed_as_text_once_and_html_only_as_its_text() {
        let alt = Entry::extract(&stored(
            "Subject: a\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\n\
             plain words\n--b\nContent-Type: text/html\n\n<p>HTML <b>words</b></p>\n--b--\n",
        ));
        let body = alt.section(Section::Body);
        assert!(
            body.contains("plain words") && body.contains("html words"),
            "{body:?}"
        );
        assert!(!body.contains("<b>"), "{body:?}");
        let plain = Entry::extract(&stored("Subject: b\n\nonly once\n"));
        assert_eq!(plain.section(Section::Body).matches("only once").count(), 1);
    }

    #[test]
    fn a_message_without_headers_has_empty_sections() {
        let e = Entry::extract(&stored("\n"));
        assert_eq!(e.section(Section::Subject), "");
        assert_eq!(e.section(Section::Body), "");
        assert_eq!(e.section(Section::From), "bounce@extern.test");
    }
}
