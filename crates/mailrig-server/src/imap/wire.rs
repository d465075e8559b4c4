//! Writing IMAP response syntax: strings (atom, quoted or literal, whichever
//! the bytes allow), NIL, flag lists and dates.
//!
//! Responses are written straight into the session's output buffer rather than
//! built as `imap-types` values: FETCH of thousands of messages is the hot path
//! and the exact bytes are easy to check against the RFC this way.

use chrono::{DateTime, FixedOffset, Utc};
use mailrig_core::store::Flags;

/// Appends an IMAP `string`: quoted when the bytes allow it, a literal otherwise.
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable = s.len() <= 1024
        && s.iter()
            .all(|&b| b.is_ascii() && b != b'\r' && b != b'\n' && b != 0);
    if quotable {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        literal(out, s);
    }
}

/// Appends a literal `{n}\r\n` followed by the bytes.
pub fn literal(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'{');
    out.extend_from_slice(s.len().to_string().as_bytes());
    out.extend_from_slice(b"}\r\n");
    out.extend_from_slice(s);
}

/// Appends an `nstring`: NIL or a string.
pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// Whether `s` can be written as a bare atom.
pub fn is_atom(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter().all(|&b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        })
}

/// Appends an `astring`: an atom when possible (`INBOX`, `Sent`), a string otherwise.
pub fn astring(out: &mut Vec<u8>, s: &[u8]) {
    if is_atom(s) {
        out.extend_from_slice(s);
    } else {
        string(out, s);
    }
}

/// Appends a parenthesised flag list, with `\Recent` when asked.
/// Writes `* {n} {what}\r\n` (EXISTS, RECENT, EXPUNGE), without core::fmt.
pub fn untagged_number(out: &mut Vec<u8>, n: usize, what: &[u8]) {
    out.extend_from_slice(b"* ");
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.push(b' ');
    out.extend_from_slice(what);
    out.extend_from_slice(b"\r\n");
}

pub fn flags(out: &mut Vec<u8>, f: &Flags, recent: bool) {
    out.push(b'(');
    let mut first = true;
    let mut sep = |out: &mut Vec<u8>| {
        if !first {
            out.push(b' ');
        }
        first = false;
    };
    for s in f.system() {
        sep(out);
        out.extend_from_slice(s.imap_name().as_bytes());
    }
    for k in f.keywords() {
        sep(out);
        out.extend_from_slice(k.as_bytes());
    }
    if recent {
        sep(out);
        out.extend_from_slice(b"\\Recent");
    }
    out.push(b')');
}

/// Appends a quoted IMAP `date-time`, e.g. `"17-Jul-1996 02:44:25 +0000"`.
pub fn date_time(out: &mut Vec<u8>, d: &DateTime<Utc>) {
    out.extend_from_slice(d.format("\"%e-%b-%Y %H:%M:%S %z\"").to_string().as_bytes());
}

/// Converts an IMAP date-time (with its zone) to UTC for the store.
pub fn to_utc(d: &DateTime<FixedOffset>) -> DateTime<Utc> {
    d.with_timezone(&Utc)
}

/// Appends `text` as one response line's human-readable tail and CRLF.
pub fn line(out: &mut Vec<u8>, parts: &[&[u8]]) {
    for p in parts {
        out.extend_from_slice(p);
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_pick_the_right_form() {
        let mut out = Vec::new();
        string(&mut out, b"a \"b\" \\c");
        assert_eq!(out, b"\"a \\\"b\\\" \\\\c\"");
        out.clear();
        string(&mut out, "Grüße".as_bytes());
        assert_eq!(out, "{7}\r\nGrüße".as_bytes());
        out.clear();
        astring(&mut out, b"INBOX");
        assert_eq!(out, b"INBOX");
        out.clear();
        astring(&mut out, b"My Folder");
        assert_eq!(out, b"\"My Folder\"");
    }

    #[test]
    fn date_time_has_fixed_width_day() {
        let d = DateTime::parse_from_rfc3339("2024-03-05T07:08:09Z")
            .map(|d| d.with_timezone(&Utc))
            .ok();
        let mut out = Vec::new();
        if let Some(d) = d {
            date_time(&mut out, &d);
        }
        assert_eq!(out, b"\" 5-Mar-2024 07:08:09 +0000\"");
    }
}
