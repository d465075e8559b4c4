//! The MIME structure of a stored message as IMAP addresses it: exact byte
//! ranges of every part's header and body (for `BODY[1.2.MIME]`, `BODY[2.TEXT]`,
//! partial fetches), and the ENVELOPE and BODYSTRUCTURE built from them.
//!
//! The tree itself (where headers end, where boundaries cut) is found here,
//! because IMAP needs byte-exact ranges with the CRLF before a boundary
//! belonging to the boundary; header *values* (Content-Type parameters,
//! addresses, encoded words, dates) are parsed by `mail-parser`.

use std::ops::Range;

use mail_parser::{Address, HeaderValue, Message, MessageParser, MimeHeaders};

use super::wire;

/// Deepest nesting of multiparts / messages followed.
const MAX_DEPTH: usize = 24;
/// Most parts in one multipart.
const MAX_PARTS: usize = 1000;

/// One MIME entity: header and body byte ranges in the raw message.
#[derive(Debug, Clone)]
pub struct Entity {
    pub header: Range<usize>,
    pub body: Range<usize>,
    pub ctype: String,
    pub subtype: String,
    pub params: Vec<(String, String)>,
    /// Parts of a multipart.
    pub parts: Vec<Entity>,
    /// The message inside a message/rfc822 part.
    pub message: Option<Box<Entity>>,
}

impl Entity {
    pub fn is_multipart(&self) -> bool {
        self.ctype.eq_ignore_ascii_case("multipart")
    }

    pub fn is_message(&self) -> bool {
        self.ctype.eq_ignore_ascii_case("message")
            && (self.subtype.eq_ignore_ascii_case("rfc822")
                || self.subtype.eq_ignore_ascii_case("global"))
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Where a message's header ends: (header range incl. the blank line, body range).
pub fn split(raw: &[u8], range: Range<usize>) -> (Range<usize>, Range<usize>) {
    let s = &raw[range.clone()];
    if s.starts_with(b"\r\n") {
        return (range.start..range.start + 2, range.start + 2..range.end);
    }
    if s.starts_with(b"\n") {
        return (range.start..range.start + 1, range.start + 1..range.end);
    }
    let mut i = 0;
    while let Some(p) = memchr::memchr(b'\n', &s[i..]) {
        let at = i + p + 1;
        if s[at..].starts_with(b"\r\n") {
            let end = range.start + at + 2;
            return (range.start..end, end..range.end);
        }
        if s[at..].starts_with(b"\n") {
            let end = range.start + at + 1;
            return (range.start..end, end..range.end);
        }
        i = at;
    }
    (range.clone(), range.end..range.end)
}

/// Parses the MIME tree of a whole message.
pub fn parse(raw: &[u8]) -> Entity {
    entity(raw, 0..raw.len(), false, 0)
}

fn entity(raw: &[u8], range: Range<usize>, in_digest: bool, depth: usize) -> Entity {
    let (header, body) = split(raw, range);
    let (mut ctype, mut subtype, mut params) = if in_digest {
        ("message".to_string(), "rfc822".to_string(), Vec::new())
    } else {
        (
            "text".to_string(),
            "plain".to_string(),
            vec![("charset".to_string(), "us-ascii".to_string())],
        )
    };
    if let Some(v) = header_value(&raw[header.clone()], "content-type") {
        let parsed = parse_content_type(&v);
        if let Some((t, s, p)) = parsed {
            ctype = t;
            subtype = s;
            params = p;
        }
    }
    let mut e = Entity {
        header,
        body: body.clone(),
        ctype,
        subtype,
        params,
        parts: Vec::new(),
        message: None,
    };
    if depth >= MAX_DEPTH {
        return e;
    }
    if e.is_multipart() {
        if let Some(boundary) = e.param("boundary").map(str::to_owned) {
            let digest = e.subtype.eq_ignore_ascii_case("digest");
            for r in multipart_ranges(raw, body, boundary.as_bytes()) {
                e.parts.push(entity(raw, r, digest, depth + 1));
            }
        }
    } else if e.is_message() {
        e.message = Some(Box::new(entity(raw, body, false, depth + 1)));
    }
    e
}

/// The byte ranges of the parts of a multipart body.
fn multipart_ranges(raw: &[u8], body: Range<usize>, boundary: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut delim = b"--".to_vec();
    delim.extend_from_slice(boundary);
    let mut part_start: Option<usize> = None;
    let mut pos = body.start;
    while pos < body.end {
        let line_end = memchr::memchr(b'\n', &raw[pos..body.end]).map_or(body.end, |i| pos + i + 1);
        let line = &raw[pos..line_end];
        if line.starts_with(&delim) {
            let rest = &line[delim.len()..];
            let closing = rest.starts_with(b"--");
            let rest = if closing { &rest[2..] } else { rest };
            if rest.iter().all(|b| b.is_ascii_whitespace()) {
                if let Some(start) = part_start.take() {
                    // The line break before the delimiter belongs to it.
                    let mut end = pos.max(start);
                    if end > start && raw[end - 1] == b'\n' {
                        end -= 1;
                        if end > start && raw[end - 1] == b'\r' {
                            end -= 1;
                        }
                    }
                    out.push(start..end);
                    if out.len() >= MAX_PARTS {
                        return out;
                    }
                }
                if closing {
                    return out;
                }
                part_start = Some(line_end);
            }
        }
        pos = line_end;
    }
    if let Some(start) = part_start {
        out.push(start..body.end);
    }
    out
}

/// Iterates the fields of a header block: (name, whole field bytes incl. CRLF).
pub fn fields(header: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        loop {
            if pos >= header.len() {
                return None;
            }
            let start = pos;
            let mut end =
                memchr::memchr(b'\n', &header[pos..]).map_or(header.len(), |i| pos + i + 1);
            while end < header.len() && matches!(header[end], b' ' | b'\t') {
                end = memchr::memchr(b'\n', &header[end..]).map_or(header.len(), |i| end + i + 1);
            }
            pos = end;
            let field = &header[start..end];
            if let Some(colon) = memchr::memchr(b':', field) {
                let name = trim(&field[..colon]);
                if !name.is_empty() {
                    return Some((name, field));
                }
            }
        }
    })
}

fn trim(s: &[u8]) -> &[u8] {
    let a = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let b = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(a, |i| i + 1);
    &s[a..b]
}

/// The unfolded, trimmed value of the first field with this name.
pub fn header_value(header: &[u8], name: &str) -> Option<String> {
    fields(header)
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, f)| unfold(f))
}

/// Every value of fields with this name, unfolded.
pub fn header_values<'a>(header: &'a [u8], name: &'a str) -> impl Iterator<Item = String> + 'a {
    fields(header)
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, f)| unfold(f))
}

fn unfold(field: &[u8]) -> String {
    let colon = memchr::memchr(b':', field).map_or(0, |i| i + 1);
    let v: Vec<u8> = field[colon..]
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    String::from_utf8_lossy(trim(&v)).into_owned()
}

/// `HEADER.FIELDS` / `HEADER.FIELDS.NOT`: the chosen fields and a closing CRLF.
pub fn filter_fields(header: &[u8], names: &[Vec<u8>], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, field) in fields(header) {
        let listed = names.iter().any(|n| n.eq_ignore_ascii_case(name));
        if listed != not {
            out.extend_from_slice(field);
            if !field.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A parsed Content-Type: type, subtype, parameters.
type ContentType = (String, String, Vec<(String, String)>);

fn parse_content_type(value: &str) -> Option<ContentType> {
    let text = format!("Content-Type: {value}\r\n\r\n");
    let msg = MessageParser::new().parse_headers(text.as_bytes())?;
    let ct = msg.content_type()?;
    let params = ct
        .attributes()
        .map(|a| {
            a.iter()
                .map(|x| (x.name.to_string(), x.value.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let subtype = ct.subtype().unwrap_or("plain");
    Some((ct.ctype().to_string(), subtype.to_string(), params))
}

/// Appends `ENVELOPE` data for a message whose header is `header`.
pub fn envelope(out: &mut Vec<u8>, header: &[u8]) {
    let parsed = MessageParser::new().parse_headers(header);
    let get = |name: &str| header_value(header, name);
    out.push(b'(');
    nstr(out, get("date"));
    out.push(b' ');
    nstr(out, get("subject"));
    let addr = |name: &'static str| address_header(parsed.as_ref(), name);
    let from = addr("From");
    for (name, fallback) in [
        ("From", None),
        ("Sender", from),
        ("Reply-To", from),
        ("To", None),
        ("Cc", None),
        ("Bcc", None),
    ] {
        out.push(b' ');
        address_list(out, addr(name).or(fallback));
    }
    out.push(b' ');
    nstr(out, get("in-reply-to"));
    out.push(b' ');
    nstr(out, get("message-id"));
    out.push(b')');
}

fn address_header<'m>(p: Option<&'m Message<'m>>, name: &'static str) -> Option<&'m Address<'m>> {
    match p?.header(name)? {
        HeaderValue::Address(a) => Some(a),
        _ => None,
    }
}

fn nstr(out: &mut Vec<u8>, s: Option<String>) {
    wire::nstring(out, s.as_deref().map(str::as_bytes));
}

fn address_list(out: &mut Vec<u8>, a: Option<&Address<'_>>) {
    let Some(a) = a else {
        out.extend_from_slice(b"NIL");
        return;
    };
    let mut body = Vec::new();
    match a {
        Address::List(list) => {
            for x in list {
                one_address(&mut body, x.name.as_deref(), x.address.as_deref());
            }
        }
        Address::Group(groups) => {
            for g in groups {
                if let Some(name) = &g.name {
                    body.extend_from_slice(b"(NIL NIL ");
                    wire::string(&mut body, name.as_bytes());
                    body.extend_from_slice(b" NIL)");
                    for x in &g.addresses {
                        one_address(&mut body, x.name.as_deref(), x.address.as_deref());
                    }
                    body.extend_from_slice(b"(NIL NIL NIL NIL)");
                } else {
                    for x in &g.addresses {
                        one_address(&mut body, x.name.as_deref(), x.address.as_deref());
                    }
                }
            }
        }
    }
    if body.is_empty() {
        out.extend_from_slice(b"NIL");
    } else {
        out.push(b'(');
        out.extend_from_slice(&body);
        out.push(b')');
    }
}

fn one_address(out: &mut Vec<u8>, name: Option<&str>, address: Option<&str>) {
    let address = address.unwrap_or("");
    let (local, host) = match address.rfind('@') {
        Some(i) => (&address[..i], Some(&address[i + 1..])),
        None => (address, None),
    };
    out.push(b'(');
    match name {
        Some(n) if !n.is_ascii() => {
            let encoded = encode_word(n);
            wire::string(out, encoded.as_bytes());
        }
        Some(n) => wire::string(out, n.as_bytes()),
        None => out.extend_from_slice(b"NIL"),
    }
    out.extend_from_slice(b" NIL ");
    wire::string(out, local.as_bytes());
    out.push(b' ');
    wire::nstring(out, host.map(str::as_bytes));
    out.push(b')');
}

/// RFC 2047 B-encoding, so ENVELOPE stays 7-bit as clients expect.
fn encode_word(s: &str) -> String {
    use base64::Engine;
    format!(
        "=?utf-8?b?{}?=",
        base64::engine::general_purpose::STANDARD.encode(s)
    )
}

/// Appends `BODYSTRUCTURE` (`extended`) or `BODY` for an entity.
pub fn body_structure(out: &mut Vec<u8>, raw: &[u8], e: &Entity, extended: bool) {
    let hdr = &raw[e.header.clone()];
    if e.is_multipart() {
        out.push(b'(');
        if e.parts.is_empty() {
            // A multipart without parts: describe it as an empty text part.
            out.extend_from_slice(
                b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)",
            );
        }
        for p in &e.parts {
            body_structure(out, raw, p, extended);
        }
        out.push(b' ');
        wire::string(out, e.subtype.as_bytes());
        if extended {
            out.push(b' ');
            params(out, &e.params);
            out.push(b' ');
            disposition(out, hdr);
            out.push(b' ');
            nstr(out, header_value(hdr, "content-language"));
            out.push(b' ');
            nstr(out, header_value(hdr, "content-location"));
        }
        out.push(b')');
        return;
    }
    out.push(b'(');
    wire::string(out, e.ctype.as_bytes());
    out.push(b' ');
    wire::string(out, e.subtype.as_bytes());
    out.push(b' ');
    params(out, &e.params);
    out.push(b' ');
    nstr(out, header_value(hdr, "content-id"));
    out.push(b' ');
    nstr(out, header_value(hdr, "content-description"));
    out.push(b' ');
    let enc = header_value(hdr, "content-transfer-encoding").unwrap_or_else(|| "7bit".into());
    wire::string(out, enc.as_bytes());
    out.push(b' ');
    let body = &raw[e.body.clone()];
    out.extend_from_slice(body.len().to_string().as_bytes());
    let lines = memchr::memchr_iter(b'\n', body).count();
    if let Some(m) = &e.message {
        out.push(b' ');
        envelope(out, &raw[m.header.clone()]);
        out.push(b' ');
        body_structure(out, raw, m, extended);
        out.push(b' ');
        out.extend_from_slice(lines.to_string().as_bytes());
    } else if e.ctype.eq_ignore_ascii_case("text") {
        out.push(b' ');
        out.extend_from_slice(lines.to_string().as_bytes());
    }
    if extended {
        out.push(b' ');
        nstr(out, header_value(hdr, "content-md5"));
        out.push(b' ');
        disposition(out, hdr);
        out.push(b' ');
        nstr(out, header_value(hdr, "content-language"));
        out.push(b' ');
        nstr(out, header_value(hdr, "content-location"));
    }
    out.push(b')');
}

fn params(out: &mut Vec<u8>, p: &[(String, String)]) {
    if p.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (k, v)) in p.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        wire::string(out, k.as_bytes());
        out.push(b' ');
        wire::string(out, v.as_bytes());
    }
    out.push(b')');
}

fn disposition(out: &mut Vec<u8>, hdr: &[u8]) {
    let Some(v) = header_value(hdr, "content-disposition") else {
        out.extend_from_slice(b"NIL");
        return;
    };
    let text = format!("Content-Disposition: {v}\r\n\r\n");
    let parsed = MessageParser::new().parse_headers(text.as_bytes());
    let ct = parsed
        .as_ref()
        .and_then(|m| m.header("Content-Disposition"))
        .and_then(|h| h.as_content_type());
    match ct {
        Some(ct) => {
            out.push(b'(');
            wire::string(out, ct.ctype().as_bytes());
            out.push(b' ');
            let p: Vec<(String, String)> = ct
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|x| (x.name.to_string(), x.value.to_string()))
                        .collect()
                })
                .unwrap_or_default();
            params(out, &p);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
}

/// What a `BODY[...]` section names, resolved to bytes.
pub enum SectionText<'a> {
    Bytes(&'a [u8]),
    Owned(Vec<u8>),
}

impl SectionText<'_> {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            SectionText::Bytes(b) => b,
            SectionText::Owned(v) => v,
        }
    }
}

/// Finds the entity a part path (`1.2.3`) names; `None` when it does not exist.
pub fn resolve<'e>(root: &'e Entity, path: &[u32]) -> Option<&'e Entity> {
    let mut cur = root;
    for (i, &n) in path.iter().enumerate() {
        let container = if i > 0 && cur.is_message() {
            cur.message.as_deref()?
        } else {
            cur
        };
        if container.is_multipart() {
            cur = container.parts.get((n as usize).checked_sub(1)?)?;
        } else if n == 1 {
            cur = container;
        } else {
            return None;
        }
    }
    Some(cur)
}

/// The message whose HEADER/TEXT a section with this part path means.
pub fn message_of<'e>(root: &'e Entity, path: &[u32]) -> Option<&'e Entity> {
    if path.is_empty() {
        return Some(root);
    }
    let e = resolve(root, path)?;
    e.message.as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTI: &[u8] = b"From: A <a@x.org>\r\nSubject: hi\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\npart one\r\n--b1\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--b1--\r\n";

    #[test]
    fn parts_have_exact_ranges() {
        let e = parse(MULTI);
        assert!(e.is_multipart());
        assert_eq!(e.parts.len(), 2);
        let p1 = resolve(&e, &[1]).map(|p| &MULTI[p.body.clone()]);
        assert_eq!(p1, Some(&b"part one"[..]));
        let inner = message_of(&e, &[2]).map(|m| &MULTI[m.body.clone()]);
        assert_eq!(inner, Some(&b"inner body"[..]));
        let inner_p1 = resolve(&e, &[2, 1]).map(|p| &MULTI[p.body.clone()]);
        assert_eq!(inner_p1, Some(&b"inner body"[..]));
        assert!(resolve(&e, &[3]).is_none());
    }

    #[test]
    fn header_fields_filter() {
        let (h, _) = split(MULTI, 0..MULTI.len());
        let got = filter_fields(&MULTI[h], &[b"subject".to_vec()], false);
        assert_eq!(got, b"Subject: hi\r\n\r\n");
    }

    #[test]
    fn envelope_of_simple_message() {
        let mut out = Vec::new();
        envelope(&mut out, b"From: A <a@x.org>\r\nSubject: hi\r\n\r\n");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "(NIL \"hi\" ((\"A\" NIL \"a\" \"x.org\")) ((\"A\" NIL \"a\" \"x.org\")) ((\"A\" NIL \"a\" \"x.org\")) NIL NIL NIL NIL NIL)"
        );
    }
}
