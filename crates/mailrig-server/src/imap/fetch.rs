//! Rendering one `* n FETCH (...)` response from a stored message and the
//! items asked for: flags, UID, dates and sizes, ENVELOPE, BODY/BODYSTRUCTURE,
//! and body sections with partial ranges.
//!
//! The MIME tree is parsed only when an item needs it; header-only items
//! (the common "list the INBOX" fetch) only look for the end of the header.

use imap_codec::imap_types::fetch::{MessageDataItemName, Section};
use mailrig_core::store::StoredMessage;

use super::binary;
use super::mime::{self, Entity, SectionText};
use super::wire;

/// Whether fetching these items sets `\Seen` (non-PEEK body items).
pub fn sets_seen(items: &[MessageDataItemName<'_>]) -> bool {
    items.iter().any(|i| {
        matches!(
            i,
            MessageDataItemName::BodyExt { peek: false, .. }
                | MessageDataItemName::Rfc822
                | MessageDataItemName::Rfc822Text
                | MessageDataItemName::Binary { peek: false, .. }
        )
    })
}

/// One message to render.
pub struct FetchInput<'a> {
    pub seq: usize,
    pub msg: &'a StoredMessage,
    pub recent: bool,
    /// Add `UID` even if not asked (UID FETCH).
    pub force_uid: bool,
    /// Add `FLAGS` even if not asked (\Seen was just set).
    pub force_flags: bool,
    /// Add `MODSEQ` even if not asked (CONDSTORE is on and the flags changed).
    pub force_modseq: bool,
}

/// Appends the FETCH response for one message.
pub fn render(out: &mut Vec<u8>, items: &[MessageDataItemName<'_>], input: &FetchInput<'_>) {
    let raw: &[u8] = &input.msg.raw;
    let mut tree: Option<Entity> = None;
    let mut header_split: Option<(std::ops::Range<usize>, std::ops::Range<usize>)> = None;
    let mut split = |raw: &[u8]| {
        header_split
            .get_or_insert_with(|| mime::split(raw, 0..raw.len()))
            .clone()
    };

    out.extend_from_slice(b"* ");
    out.extend_from_slice(input.seq.to_string().as_bytes());
    out.extend_from_slice(b" FETCH (");
    let mut first = true;
    let mut sep = |out: &mut Vec<u8>| {
        if !first {
            out.push(b' ');
        }
        first = false;
    };
    let asked_uid = items.iter().any(|i| matches!(i, MessageDataItemName::Uid));
    let asked_flags = items
        .iter()
        .any(|i| matches!(i, MessageDataItemName::Flags));
    if input.force_uid && !asked_uid {
        sep(out);
        out.extend_from_slice(format!("UID {}", input.msg.uid).as_bytes());
    }
    if input.force_flags && !asked_flags {
        sep(out);
        out.extend_from_slice(b"FLAGS ");
        wire::flags(out, &input.msg.flags, input.recent);
    }
    let asked_modseq = items
        .iter()
        .any(|i| matches!(i, MessageDataItemName::ModSeq));
    if input.force_modseq && !asked_modseq {
        sep(out);
        out.extend_from_slice(format!("MODSEQ ({})", input.msg.modseq).as_bytes());
    }
    for item in items {
        sep(out);
        match item {
            MessageDataItemName::Uid => {
                out.extend_from_slice(format!("UID {}", input.msg.uid).as_bytes());
            }
            MessageDataItemName::Flags => {
                out.extend_from_slice(b"FLAGS ");
                wire::flags(out, &input.msg.flags, input.recent);
            }
            MessageDataItemName::ModSeq => {
                out.extend_from_slice(format!("MODSEQ ({})", input.msg.modseq).as_bytes());
            }
            MessageDataItemName::InternalDate => {
                out.extend_from_slice(b"INTERNALDATE ");
                wire::date_time(out, &input.msg.internal_date);
            }
            MessageDataItemName::Rfc822Size => {
                out.extend_from_slice(format!("RFC822.SIZE {}", raw.len()).as_bytes());
            }
            MessageDataItemName::Rfc822 => {
                out.extend_from_slice(b"RFC822 ");
                wire::literal(out, raw);
            }
            MessageDataItemName::Rfc822Header => {
                let (h, _) = split(raw);
                out.extend_from_slice(b"RFC822.HEADER ");
                wire::literal(out, &raw[h]);
            }
            MessageDataItemName::Rfc822Text => {
                let (_, b) = split(raw);
                out.extend_from_slice(b"RFC822.TEXT ");
                wire::literal(out, &raw[b]);
            }
            MessageDataItemName::Envelope => {
                let (h, _) = split(raw);
                out.extend_from_slice(b"ENVELOPE ");
                mime::envelope(out, &raw[h]);
            }
            MessageDataItemName::Body | MessageDataItemName::BodyStructure => {
                let extended = matches!(item, MessageDataItemName::BodyStructure);
                let t = tree.get_or_insert_with(|| mime::parse(raw));
                out.extend_from_slice(if extended {
                    b"BODYSTRUCTURE "
                } else {
                    b"BODY "
                });
                mime::body_structure(out, raw, t, extended);
            }
            MessageDataItemName::BodyExt {
                section, partial, ..
            } => {
                out.extend_from_slice(b"BODY[");
                write_section(out, section.as_ref());
                out.push(b']');
                let text = match section {
                    None => Some(SectionText::Bytes(raw)),
                    Some(Section::Header(None)) => Some(SectionText::Bytes(&raw[split(raw).0])),
                    Some(Section::Text(None)) => Some(SectionText::Bytes(&raw[split(raw).1])),
                    Some(Section::HeaderFields(None, names))
                    | Some(Section::HeaderFieldsNot(None, names)) => {
                        let not = matches!(section, Some(Section::HeaderFieldsNot(..)));
                        let names: Vec<Vec<u8>> =
                            names.as_ref().iter().map(|n| n.as_ref().to_vec()).collect();
                        Some(SectionText::Owned(mime::filter_fields(
                            &raw[split(raw).0],
                            &names,
                            not,
                        )))
                    }
                    Some(s) => {
                        let t = tree.get_or_insert_with(|| mime::parse(raw));
                        section_text(raw, t, s)
                    }
                };
                match (text, partial) {
                    (None, Some((start, _))) => {
                        out.extend_from_slice(format!("<{start}> NIL").as_bytes());
                    }
                    (None, None) => out.extend_from_slice(b" NIL"),
                    (Some(t), None) => {
                        out.push(b' ');
                        wire::literal(out, t.as_slice());
                    }
                    (Some(t), Some((start, count))) => {
                        let s = t.as_slice();
                        let a = (*start as usize).min(s.len());
                        let b = a.saturating_add(count.get() as usize).min(s.len());
                        out.extend_from_slice(format!("<{start}> ").as_bytes());
                        wire::literal(out, &s[a..b]);
                    }
                }
            }
            MessageDataItemName::Binary {
                section, partial, ..
            } => {
                let path: Vec<u32> = section.iter().map(|n| n.get()).collect();
                let t = tree.get_or_insert_with(|| mime::parse(raw));
                out.extend_from_slice(format!("BINARY[{}]", dotted(&path)).as_bytes());
                // Errors were answered before rendering (see `binary_problem`).
                match binary::decoded(raw, t, &path).ok().flatten() {
                    None => out.extend_from_slice(b" NIL"),
                    Some(text) => {
                        let s = text.as_slice();
                        let s = match partial {
                            Some((start, count)) => {
                                out.extend_from_slice(format!("<{start}>").as_bytes());
                                let a = (*start as usize).min(s.len());
                                let b = a.saturating_add(count.get() as usize).min(s.len());
                                &s[a..b]
                            }
                            None => s,
                        };
                        out.push(b' ');
                        if s.contains(&0) {
                            // NULs need a literal8 (RFC 3516 §4.2).
                            out.push(b'~');
                        }
                        wire::literal(out, s);
                    }
                }
            }
            MessageDataItemName::BinarySize { section } => {
                let path: Vec<u32> = section.iter().map(|n| n.get()).collect();
                let t = tree.get_or_insert_with(|| mime::parse(raw));
                let size = binary::decoded(raw, t, &path)
                    .ok()
                    .flatten()
                    .map_or(0, |s| s.as_slice().len());
                out.extend_from_slice(format!("BINARY.SIZE[{}] {size}", dotted(&path)).as_bytes());
            }
            #[allow(unreachable_patterns)]
            _ => out.extend_from_slice(b"X-UNSUPPORTED NIL"),
        }
    }
    out.extend_from_slice(b")\r\n");
}

/// `1.2.3` of a part path.
fn dotted(path: &[u32]) -> String {
    path.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// Why the BINARY items of `items` cannot be answered for this message
/// (an unknown or broken Content-Transfer-Encoding), if they cannot.
pub fn binary_problem(
    items: &[MessageDataItemName<'_>],
    msg: &StoredMessage,
) -> Option<binary::BinaryError> {
    let mut tree: Option<Entity> = None;
    for item in items {
        let section = match item {
            MessageDataItemName::Binary { section, .. }
            | MessageDataItemName::BinarySize { section } => section,
            _ => continue,
        };
        let path: Vec<u32> = section.iter().map(|n| n.get()).collect();
        let t = tree.get_or_insert_with(|| mime::parse(&msg.raw));
        if let Err(e) = binary::decoded(&msg.raw, t, &path) {
            return Some(e);
        }
    }
    None
}

fn section_text<'a>(raw: &'a [u8], root: &Entity, s: &Section<'_>) -> Option<SectionText<'a>> {
    let path = |p: &Option<imap_codec::imap_types::fetch::Part>| -> Vec<u32> {
        p.as_ref()
            .map(|p| p.0.as_ref().iter().map(|n| n.get()).collect())
            .unwrap_or_default()
    };
    match s {
        Section::Part(p) => {
            let e = mime::resolve(root, &path(&Some(p.clone())))?;
            if e.is_multipart() && !std::ptr::eq(e, root) {
                // BODY[n] of a multipart part: its body, boundaries included.
                return Some(SectionText::Bytes(&raw[e.body.clone()]));
            }
            Some(SectionText::Bytes(&raw[e.body.clone()]))
        }
        Section::Mime(p) => {
            let e = mime::resolve(root, &path(&Some(p.clone())))?;
            Some(SectionText::Bytes(&raw[e.header.clone()]))
        }
        Section::Header(p) => {
            let m = mime::message_of(root, &path(p))?;
            Some(SectionText::Bytes(&raw[m.header.clone()]))
        }
        Section::Text(p) => {
            let m = mime::message_of(root, &path(p))?;
            Some(SectionText::Bytes(&raw[m.body.clone()]))
        }
        Section::HeaderFields(p, names) | Section::HeaderFieldsNot(p, names) => {
            let m = mime::message_of(root, &path(p))?;
            let names: Vec<Vec<u8>> = names.as_ref().iter().map(|n| n.as_ref().to_vec()).collect();
            let not = matches!(s, Section::HeaderFieldsNot(..));
            Some(SectionText::Owned(mime::filter_fields(
                &raw[m.header.clone()],
                &names,
                not,
            )))
        }
    }
}

/// Echoes a section spec as the client wrote it (upper-cased keywords).
fn write_section(out: &mut Vec<u8>, s: Option<&Section<'_>>) {
    let Some(s) = s else { return };
    let part = |out: &mut Vec<u8>, p: &imap_codec::imap_types::fetch::Part, dot: bool| {
        let nums: Vec<String> = p.0.as_ref().iter().map(|n| n.get().to_string()).collect();
        out.extend_from_slice(nums.join(".").as_bytes());
        if dot {
            out.push(b'.');
        }
    };
    let names = |out: &mut Vec<u8>, names: &[imap_codec::imap_types::core::AString<'_>]| {
        out.extend_from_slice(b" (");
        for (i, n) in names.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            let upper = n.as_ref().to_ascii_uppercase();
            wire::astring(out, &upper);
        }
        out.push(b')');
    };
    match s {
        Section::Part(p) => part(out, p, false),
        Section::Mime(p) => {
            part(out, p, true);
            out.extend_from_slice(b"MIME");
        }
        Section::Header(p) => {
            if let Some(p) = p {
                part(out, p, true);
            }
            out.extend_from_slice(b"HEADER");
        }
        Section::Text(p) => {
            if let Some(p) = p {
                part(out, p, true);
            }
            out.extend_from_slice(b"TEXT");
        }
        Section::HeaderFields(p, n) => {
            if let Some(p) = p {
                part(out, p, true);
            }
            out.extend_from_slice(b"HEADER.FIELDS");
            names(out, n.as_ref());
        }
        Section::HeaderFieldsNot(p, n) => {
            if let Some(p) = p {
                part(out, p, true);
            }
            out.extend_from_slice(b"HEADER.FIELDS.NOT");
            names(out, n.as_ref());
        }
    }
}
