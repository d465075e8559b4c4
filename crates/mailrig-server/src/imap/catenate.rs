//! CATENATE (RFC 4469): an APPEND whose message is put together from TEXT
//! literals and URLs naming (parts of) messages the user already has. The
//! URLs are the relative IMAP URLs of RFC 5092 that RFC 4469 §5 allows:
//! `/mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s][/;PARTIAL=o[.l]]`.
//!
//! This module reads a URL and cuts the bytes it names out of a message;
//! the session looks the message up and reports a URL that names nothing
//! with `NO [BADURL url]`.

use super::mime;

/// One part of a CATENATE list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(Vec<u8>),
    Url(String),
}

/// A relative IMAP URL, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub mailbox: String,
    pub uid_validity: Option<u32>,
    pub uid: u32,
    /// `HEADER`, `TEXT`, `1.2`, `1.MIME`, `2.HEADER`... upper-cased; empty for the whole message.
    pub section: String,
    /// `PARTIAL=offset[.length]`.
    pub partial: Option<(usize, Option<usize>)>,
}

/// Why a URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("only relative URLs (/mailbox/;UID=n...) of the logged-in user are supported")]
    NotRelative,
    #[error("the URL has no ;UID=n")]
    NoUid,
    #[error("the URL's {0} is not valid")]
    Bad(&'static str),
}

/// Percent-decoding (RFC 3986), as URL mailbox names are written.
fn decode(s: &str) -> Result<String, UrlError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or(UrlError::Bad("escape"))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| UrlError::Bad("escape"))?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UrlError::Bad("mailbox name"))
}

/// Reads `/mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s][/;PARTIAL=o[.l]]`.
pub fn parse_url(url: &str) -> Result<Url, UrlError> {
    let rest = url.strip_prefix('/').ok_or(UrlError::NotRelative)?;
    if rest.starts_with('/') {
        return Err(UrlError::NotRelative);
    }
    let mut pieces = rest.split("/;");
    let first = pieces.next().unwrap_or_default();
    let (mailbox, validity) = match first.split_once(';') {
        Some((m, v)) => {
            let (key, value) = v.split_once('=').ok_or(UrlError::Bad("UIDVALIDITY"))?;
            if !key.eq_ignore_ascii_case("UIDVALIDITY") {
                return Err(UrlError::Bad("mailbox part"));
            }
            let n = value.parse().map_err(|_| UrlError::Bad("UIDVALIDITY"))?;
            (m, Some(n))
        }
        None => (first, None),
    };
    let mailbox = decode(mailbox.strip_suffix('/').unwrap_or(mailbox))?;
    if mailbox.is_empty() {
        return Err(UrlError::Bad("mailbox name"));
    }
    let mut uid = None;
    let mut section = String::new();
    let mut partial = None;
    for p in pieces {
        let (key, value) = p.split_once('=').ok_or(UrlError::Bad("parameters"))?;
        let value = value.strip_suffix('/').unwrap_or(value);
        match key.to_ascii_uppercase().as_str() {
            "UID" => uid = Some(value.parse::<u32>().map_err(|_| UrlError::Bad("UID"))?),
            "SECTION" => section = decode(value)?.to_ascii_uppercase(),
            "PARTIAL" => {
                let (o, l) = match value.split_once('.') {
                    Some((o, l)) => (o, Some(l)),
                    None => (value, None),
                };
                let o = o.parse().map_err(|_| UrlError::Bad("PARTIAL"))?;
                let l = match l {
                    Some(l) => Some(l.parse().map_err(|_| UrlError::Bad("PARTIAL"))?),
                    None => None,
                };
                partial = Some((o, l));
            }
            _ => return Err(UrlError::Bad("parameters")),
        }
    }
    let uid = uid.filter(|u| *u > 0).ok_or(UrlError::NoUid)?;
    Ok(Url {
        mailbox,
        uid_validity: validity,
        uid,
        section,
        partial,
    })
}

/// The bytes `section` (as in a URL: `HEADER`, `1.2.MIME`, ...) names in
/// `raw`; `None` when the message has no such part.
pub fn section_bytes(raw: &[u8], section: &str) -> Option<Vec<u8>> {
    if section.is_empty() {
        return Some(raw.to_vec());
    }
    let root = mime::parse(raw);
    let mut path = Vec::new();
    let mut word = "";
    for (i, piece) in section.split('.').enumerate() {
        match piece.parse::<u32>() {
            Ok(n) if n > 0 && word.is_empty() => path.push(n),
            _ if i == section.split('.').count() - 1 => word = piece,
            _ => return None,
        }
    }
    let range = match word {
        "" => mime::resolve(&root, &path)?.body.clone(),
        "MIME" if !path.is_empty() => mime::resolve(&root, &path)?.header.clone(),
        "HEADER" => mime::message_of(&root, &path)?.header.clone(),
        "TEXT" => mime::message_of(&root, &path)?.body.clone(),
        _ => return None,
    };
    raw.get(range).map(<[u8]>::to_vec)
}

/// Applies `PARTIAL=offset[.length]` (RFC 5092: like FETCH's `<o.l>`).
pub fn cut(bytes: Vec<u8>, partial: Option<(usize, Option<usize>)>) -> Vec<u8> {
    match partial {
        None => bytes,
        Some((o, l)) => {
            let start = o.min(bytes.len());
            let end = l.map_or(bytes.len(), |l| start.saturating_add(l).min(bytes.len()));
            bytes[start..end].to_vec()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: foo@example.com\r\n\r\nHello world body\r\n";

    #[test]
    fn urls_are_read() {
        assert_eq!(
            parse_url("/testbox;UIDVALIDITY=385759045/;UID=20/;SECTION=1.2/;PARTIAL=0.1024"),
            Ok(Url {
                mailbox: "testbox".into(),
                uid_validity: Some(385759045),
                uid: 20,
                section: "1.2".into(),
                partial: Some((0, Some(1024))),
            })
        );
        let u = parse_url("/my%20box/;uid=3/;section=header").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (u.mailbox.as_str(), u.uid, u.section.as_str()),
            ("my box", 3, "HEADER")
        );
        assert_eq!(
            parse_url("/box/;uid=3").map(|u| u.section),
            Ok(String::new())
        );
        assert_eq!(parse_url("imap://h/box/;uid=1"), Err(UrlError::NotRelative));
        assert_eq!(parse_url("//h/box/;uid=1"), Err(UrlError::NotRelative));
        assert_eq!(parse_url("/box"), Err(UrlError::NoUid));
        assert_eq!(parse_url("/box/;uid=x"), Err(UrlError::Bad("UID")));
        assert_eq!(
            parse_url("/box;uidvalidity=x/;uid=1"),
            Err(UrlError::Bad("UIDVALIDITY"))
        );
        assert_eq!(
            parse_url("/box/;uid=1/;zap=2"),
            Err(UrlError::Bad("parameters"))
        );
    }

    #[test]
    fn sections_and_partials_cut_the_message() {
        let s =
            |sec: &str| section_bytes(MSG, sec).map(|b| String::from_utf8_lossy(&b).into_owned());
        assert_eq!(
            s("HEADER").as_deref(),
            Some("From: foo@example.com\r\n\r\n")
        );
        assert_eq!(s("TEXT").as_deref(), Some("Hello world body\r\n"));
        assert_eq!(s("1").as_deref(), Some("Hello world body\r\n"));
        assert_eq!(s(""), Some(String::from_utf8_lossy(MSG).into_owned()));
        assert_eq!(s("2"), None);
        assert_eq!(s("HEADER.X"), None);
        assert_eq!(cut(b"abcdef".to_vec(), Some((2, Some(3)))), b"cde");
        assert_eq!(cut(b"abc".to_vec(), Some((100000, Some(1)))), b"");
        assert_eq!(cut(b"abc".to_vec(), Some((1, None))), b"bc");
    }
}
