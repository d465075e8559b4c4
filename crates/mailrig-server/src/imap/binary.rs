//! BINARY (RFC 3516): a part's content with its Content-Transfer-Encoding
//! undone, for `BINARY[...]` and `BINARY.SIZE[...]`, and APPEND of binary
//! content, which is stored base64-encoded so that `BODY[...]` stays 7-bit.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use super::mime::{self, Entity, SectionText};

/// Why a part cannot be decoded; FETCH answers `NO` with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinaryError {
    #[error("[UNKNOWN-CTE] Part {part} has the unknown Content-Transfer-Encoding {cte}")]
    UnknownCte { part: String, cte: String },
    #[error("[PARSE] Part {part} is not valid base64")]
    BrokenBase64 { part: String },
}

/// The entity a BINARY section names (`[]` is the whole message);
/// `None` when there is no such part.
fn entity<'e>(root: &'e Entity, section: &[u32]) -> Option<&'e Entity> {
    if section.is_empty() {
        return Some(root);
    }
    mime::resolve(root, section)
}

/// The decoded content of a section; `Ok(None)` when the part does not exist.
pub fn decoded<'a>(
    raw: &'a [u8],
    root: &Entity,
    section: &[u32],
) -> Result<Option<SectionText<'a>>, BinaryError> {
    if section.is_empty() {
        return Ok(Some(SectionText::Bytes(raw)));
    }
    let Some(e) = entity(root, section) else {
        return Ok(None);
    };
    let body = &raw[e.body.clone()];
    if e.is_multipart() || e.is_message() {
        return Ok(Some(SectionText::Bytes(body)));
    }
    let cte = mime::header_value(&raw[e.header.clone()], "content-transfer-encoding")
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let part = || {
        section
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(".")
    };
    match cte.as_str() {
        "" | "7bit" | "8bit" | "binary" => Ok(Some(SectionText::Bytes(body))),
        "base64" => {
            let clean: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            B64.decode(&clean)
                .map(|v| Some(SectionText::Owned(v)))
                .map_err(|_| BinaryError::BrokenBase64 { part: part() })
        }
        "quoted-printable" => Ok(Some(SectionText::Owned(quoted_printable(body)))),
        _ => Err(BinaryError::UnknownCte { part: part(), cte }),
    }
}

/// Undoes quoted-printable (RFC 2045 §6.7): `=XX` escapes, soft line
/// breaks, trailing blanks. A malformed `=` is kept as it is.
pub fn quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    for line in body.split_inclusive(|&b| b == b'\n') {
        let (text, eol): (&[u8], &[u8]) = match line.strip_suffix(b"\r\n") {
            Some(t) => (t, b"\r\n"),
            None => match line.strip_suffix(b"\n") {
                Some(t) => (t, b"\n"),
                None => (line, b""),
            },
        };
        let mut end = text.len();
        while end > 0 && matches!(text[end - 1], b' ' | b'\t') {
            end -= 1;
        }
        let text = &text[..end];
        let (text, soft) = match text.strip_suffix(b"=") {
            Some(t) => (t, true),
            None => (text, false),
        };
        let hex = |c: u8| (c as char).to_digit(16);
        let mut i = 0;
        while i < text.len() {
            if text[i] == b'='
                && i + 2 < text.len()
                && let (Some(h), Some(l)) = (hex(text[i + 1]), hex(text[i + 2]))
            {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
            out.push(text[i]);
            i += 1;
        }
        if !soft {
            out.extend_from_slice(eol);
        }
    }
    out
}

/// A message appended as binary (a literal8 or with NULs): every leaf part
/// whose content is binary is re-encoded as base64, its header saying so,
/// so that `BODY[...]` serves 7-bit text and `BINARY[...]` the original
/// bytes. Other messages come back unchanged.
pub fn encode_binary_parts(raw: &[u8]) -> Option<Vec<u8>> {
    let root = mime::parse(raw);
    let mut leaves = Vec::new();
    collect_binary_leaves(raw, &root, &mut leaves);
    if leaves.is_empty() {
        return None;
    }
    // From the end, so the earlier ranges stay valid.
    leaves.sort_by_key(|(h, _)| std::cmp::Reverse(h.start));
    let mut out = raw.to_vec();
    for (header, body) in leaves {
        let mut encoded = Vec::new();
        let text = B64.encode(&raw[body.clone()]);
        for chunk in text.as_bytes().chunks(76) {
            encoded.extend_from_slice(chunk);
            encoded.extend_from_slice(b"\r\n");
        }
        out.splice(body.clone(), encoded);
        let new_header = with_base64_cte(&raw[header.clone()]);
        out.splice(header, new_header);
    }
    Some(out)
}

fn collect_binary_leaves(
    raw: &[u8],
    e: &Entity,
    out: &mut Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
) {
    if e.is_multipart() {
        for p in &e.parts {
            collect_binary_leaves(raw, p, out);
        }
        return;
    }
    if let Some(m) = e.message.as_deref() {
        collect_binary_leaves(raw, m, out);
        return;
    }
    let cte = mime::header_value(&raw[e.header.clone()], "content-transfer-encoding")
        .map(|v| v.trim().to_ascii_lowercase());
    let body = &raw[e.body.clone()];
    let binary = cte.as_deref() == Some("binary") || body.contains(&0);
    if binary && e.header.end <= e.body.start {
        out.push((e.header.clone(), e.body.clone()));
    }
}

/// The header with its Content-Transfer-Encoding set to base64.
fn with_base64_cte(header: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len() + 40);
    let mut replaced = false;
    let mut lines = header.split_inclusive(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let is_cte =
            line.len() > 26 && line[..26].eq_ignore_ascii_case(b"content-transfer-encoding:");
        if is_cte {
            out.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n");
            replaced = true;
            // Its folded continuation lines go too.
            while lines
                .peek()
                .is_some_and(|l| l.first().is_some_and(|c| *c == b' ' || *c == b'\t'))
            {
                lines.next();
            }
            continue;
        }
        if !replaced && (line == b"\r\n" || line == b"\n") {
            out.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n");
            replaced = true;
        }
        out.extend_from_slice(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_printable_decodes() {
        assert_eq!(
            quoted_printable(b"a=3Db=\r\nc  \r\nd=XZ\r\n"),
            b"a=bc\r\nd=XZ\r\n"
        );
        assert_eq!(quoted_printable(b"=4"), b"=4");
        assert_eq!(quoted_printable(b"="), b"");
    }

    #[test]
    fn binary_parts_become_base64_and_decode_back() {
        let raw = b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\xff\r\n";
        let stored = encode_binary_parts(raw).expect("re-encoded");
        assert!(!stored.contains(&0), "{stored:?}");
        let root = mime::parse(&stored);
        let back = decoded(&stored, &root, &[1]).unwrap().unwrap();
        assert_eq!(back.as_slice(), b"\x00\x01\xff\r\n");
        assert_eq!(encode_binary_parts(b"Subject: x\r\n\r\ntext\r\n"), None);
    }

    #[test]
    fn broken_and_unknown_encodings_are_errors() {
        let raw = b"Content-Transfer-Encoding: base64\r\n\r\n!!!!\r\n";
        let root = mime::parse(raw);
        assert!(matches!(
            decoded(raw, &root, &[1]),
            Err(BinaryError::BrokenBase64 { .. })
        ));
        let raw = b"Content-Transfer-Encoding: x-uuencode\r\n\r\nabc\r\n";
        let root = mime::parse(raw);
        assert!(matches!(
            decoded(raw, &root, &[1]),
            Err(BinaryError::UnknownCte { .. })
        ));
        assert!(matches!(decoded(raw, &root, &[7]), Ok(None)));
    }
}
