//! A stored message taken apart for a reader: its header fields, decoded
//! subject, text and HTML bodies, attachments (metadata here, the bytes by
//! index from [`attachment`]) and the MIME tree, parsed with mail-parser.
//! The shapes are what `GET .../messages/{uid}/parsed` answers.

use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};
use serde::Serialize;

/// One header field as written (name, value unfolded of its line breaks).
#[derive(Debug, Clone, Serialize)]
pub struct HeaderField {
    pub name: String,
    pub value: String,
}

/// One attachment (or inline part with a file name or Content-ID).
#[derive(Debug, Clone, Serialize)]
pub struct Attachment {
    /// Its place among the attachments: the `{index}` of the download URL.
    pub index: usize,
    pub filename: Option<String>,
    pub content_type: String,
    /// Decoded octets.
    pub size: usize,
    pub content_id: Option<String>,
    /// `Content-Disposition: inline` (an image the HTML shows, say).
    pub inline: bool,
}

/// One node of the MIME tree.
#[derive(Debug, Clone, Serialize)]
pub struct MimeNode {
    pub content_type: String,
    /// Decoded octets of a leaf; the raw length of a multipart.
    pub size: usize,
    pub filename: Option<String>,
    pub encoding: Option<String>,
    pub children: Vec<MimeNode>,
}

/// The parts a reader wants.
#[derive(Debug, Clone, Serialize)]
pub struct ParsedBody {
    pub headers: Vec<HeaderField>,
    /// The text bodies joined (none when the message has none).
    pub text: Option<String>,
    /// The HTML bodies joined; exactly as sent, so never put into a page
    /// without a sandbox.
    pub html: Option<String>,
    pub attachments: Vec<Attachment>,
    pub mime: MimeNode,
}

fn content_type(p: &MessagePart) -> String {
    match p.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_lowercase(),
            None => ct.ctype().to_lowercase(),
        },
        None => match &p.body {
            PartType::Html(_) => "text/html".into(),
            PartType::Multipart(_) => "multipart/mixed".into(),
            PartType::Message(_) => "message/rfc822".into(),
            PartType::Text(_) => "text/plain".into(),
            _ => "application/octet-stream".into(),
        },
    }
}

fn node(m: &Message, p: &MessagePart, depth: usize) -> MimeNode {
    let children = match &p.body {
        // Deep nesting is a hostile message's trick; 32 levels show enough.
        PartType::Multipart(ids) if depth < 32 => ids
            .iter()
            .filter_map(|id| m.part(*id))
            .map(|c| node(m, c, depth + 1))
            .collect(),
        PartType::Message(inner) if depth < 32 => vec![node(inner, inner.root_part(), depth + 1)],
        _ => Vec::new(),
    };
    let size = match &p.body {
        PartType::Multipart(_) | PartType::Message(_) => p.raw_len() as usize,
        _ => p.len(),
    };
    MimeNode {
        content_type: content_type(p),
        size,
        filename: p.attachment_name().map(str::to_string),
        encoding: p.content_transfer_encoding().map(str::to_lowercase),
        children,
    }
}

/// Parses `raw`; a message mail-parser cannot read at all gives only its
/// MIME root as `text/plain` of the whole size.
pub fn parse(raw: &[u8]) -> ParsedBody {
    let Some(m) = MessageParser::new().parse(raw) else {
        return ParsedBody {
            headers: Vec::new(),
            text: Some(String::from_utf8_lossy(raw).into_owned()),
            html: None,
            attachments: Vec::new(),
            mime: MimeNode {
                content_type: "text/plain".into(),
                size: raw.len(),
                filename: None,
                encoding: None,
                children: Vec::new(),
            },
        };
    };
    let headers = m
        .headers_raw()
        .map(|(name, value)| HeaderField {
            name: name.to_string(),
            value: unfold(value),
        })
        .collect();
    let join = |parts: Vec<String>| (!parts.is_empty()).then(|| parts.join("\n"));
    let text = join(
        (0..m.text_body_count())
            .filter(|i| m.text_part(*i as u32).is_some_and(|p| !p.is_text_html()))
            .filter_map(|i| m.body_text(i).map(|t| t.into_owned()))
            .collect(),
    );
    let html = join(
        (0..m.html_body_count())
            .filter(|i| m.html_part(*i as u32).is_some_and(|p| p.is_text_html()))
            .filter_map(|i| m.body_html(i).map(|t| t.into_owned()))
            .collect(),
    );
    let attachments = m
        .attachments()
        .enumerate()
        .map(|(index, p)| Attachment {
            index,
            filename: p.attachment_name().map(str::to_string),
            content_type: content_type(p),
            size: p.len(),
            content_id: p.content_id().map(str::to_string),
            inline: p.content_disposition().is_some_and(|d| d.is_inline()),
        })
        .collect();
    ParsedBody {
        headers,
        text,
        html,
        attachments,
        mime: node(&m, m.root_part(), 0),
    }
}

/// A header value with its folding line breaks taken out.
fn unfold(v: &str) -> String {
    v.replace("\r\n", "").replace('\n', "").trim().to_string()
}

/// The `index`th attachment of `raw`: (file name, content type, decoded bytes).
pub fn attachment(raw: &[u8], index: usize) -> Option<(Option<String>, String, Vec<u8>)> {
    let m = MessageParser::new().parse(raw)?;
    let p = m.attachment(u32::try_from(index).ok()?)?;
    let bytes = match &p.body {
        PartType::Message(inner) => inner.raw_message().to_vec(),
        _ => p.contents().to_vec(),
    };
    Some((
        p.attachment_name().map(str::to_string),
        content_type(p),
        bytes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &[u8] = b"From: a@x.test\r\nTo: b@y.test\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\
X-Long: one\r\n two\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n\
--B\r\nContent-Type: multipart/alternative; boundary=\"A\"\r\n\r\n\
--A\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain body\r\n\
--A\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html body</p>\r\n--A--\r\n\
--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"data.bin\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\nAAEC/w==\r\n--B--\r\n";

    #[test]
    fn a_multipart_message_is_taken_apart() {
        let p = parse(MIXED);
        assert_eq!(p.text.as_deref().map(str::trim), Some("plain body"));
        assert!(p.html.as_deref().unwrap().contains("<p>html body</p>"));
        assert_eq!(p.attachments.len(), 1);
        let a = &p.attachments[0];
        assert_eq!(a.filename.as_deref(), Some("data.bin"));
        assert_eq!(a.size, 4);
        assert_eq!(a.content_type, "application/octet-stream");
        assert!(!a.inline);
        let long = p.headers.iter().find(|h| h.name == "X-Long").unwrap();
        assert_eq!(long.value, "one two");
        assert_eq!(p.mime.content_type, "multipart/mixed");
        assert_eq!(p.mime.children.len(), 2);
        assert_eq!(p.mime.children[0].children.len(), 2);
        assert_eq!(p.mime.children[1].filename.as_deref(), Some("data.bin"));
        let (name, ct, bytes) = attachment(MIXED, 0).unwrap();
        assert_eq!(name.as_deref(), Some("data.bin"));
        assert_eq!(ct, "application/octet-stream");
        assert_eq!(bytes, vec![0, 1, 2, 0xff]);
        assert!(attachment(MIXED, 1).is_none());
    }

    #[test]
    fn a_plain_message_has_text_and_no_html() {
        let p = parse(b"Subject: hi\r\n\r\njust text\r\n");
        assert_eq!(p.text.as_deref().map(str::trim), Some("just text"));
        assert!(p.html.is_none());
        assert!(p.attachments.is_empty());
        assert_eq!(p.mime.content_type, "text/plain");
    }
}
