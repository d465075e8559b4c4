//! The trace headers written in front of every stored message (`Return-Path:`
//! and `Received:`), and the short texts of every reply (queue IDs, reply
//! codes), built by appending bytes rather than through `core::fmt`.
//!
//! They are built for every message, so they are on the hot path: `format!`
//! with its formatter machinery, and formatting the peer address anew for each
//! message, were a fifth of the instructions spent per 4 KiB message. The peer
//! address is formatted once per connection ([`PeerText`]), the date once per
//! second ([`DateCache`]). The `format!` version is kept in the tests as the
//! oracle of a differential test: the bytes are the same.

use std::net::SocketAddr;

use chrono::{DateTime, Utc};

/// What the trace headers of one message say.
#[derive(Debug, Clone, Copy)]
pub struct Trace<'a> {
    /// The envelope sender, without angle brackets (empty for `<>`).
    pub mail_from: &'a str,
    /// The EHLO/HELO name (`unknown` if none was given).
    pub helo: &'a str,
    /// The client's IP address as text.
    pub peer_ip: &'a str,
    /// Our host name.
    pub hostname: &'a str,
    /// The protocol word: `SMTP`, `ESMTP`, `ESMTPS`, `ESMTPA`, `ESMTPSA`.
    pub with: &'a str,
    pub queue_id: &'a str,
    /// The recipient, when the message has exactly one (the `for` clause).
    pub for_rcpt: Option<&'a str>,
    /// The date in RFC 2822 form.
    pub date: &'a str,
}

impl Trace<'_> {
    /// Appends `Return-Path:` and `Received:`, each ending in CRLF.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        self.write_to(|part| out.extend_from_slice(part));
    }

    /// Writes the headers over `dst`, which is exactly [`Trace::encoded_len`] long
    /// (the prefix a `DataReader` reserved); `false`, with nothing written,
    /// when it is not.
    pub fn write_over(&self, dst: &mut [u8]) -> bool {
        if dst.len() != self.encoded_len() {
            return false;
        }
        let mut at = 0;
        self.write_to(|part| {
            dst[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        });
        true
    }

    /// Hands the headers' bytes to `put`, piece by piece.
    fn write_to(&self, mut put: impl FnMut(&[u8])) {
        for part in [
            "Return-Path: <",
            self.mail_from,
            ">\r\nReceived: from ",
            self.helo,
            " (",
            self.peer_ip,
            " [",
            self.peer_ip,
            "])\r\n\tby ",
            self.hostname,
            " (mailrig) with ",
            self.with,
            " id ",
            self.queue_id,
        ] {
            put(part.as_bytes());
        }
        if let Some(rcpt) = self.for_rcpt {
            put(b"\r\n\tfor <");
            put(rcpt.as_bytes());
            put(b">");
        }
        put(b";\r\n\t");
        put(self.date.as_bytes());
        put(b"\r\n");
    }

    /// The length [`Trace::write`] appends.
    pub fn encoded_len(&self) -> usize {
        const FIXED: usize =
            "Return-Path: <>\r\nReceived: from  ( [])\r\n\tby  (mailrig) with  id ;\r\n\t\r\n"
                .len();
        FIXED
            + self.mail_from.len()
            + self.helo.len()
            + 2 * self.peer_ip.len()
            + self.hostname.len()
            + self.with.len()
            + self.queue_id.len()
            + self.for_rcpt.map_or(0, |r| "\r\n\tfor <>".len() + r.len())
            + self.date.len()
    }
}

/// The peer address of a connection, formatted once for all its messages.
#[derive(Debug, Clone)]
pub struct PeerText {
    /// `ip:port` (IPv6 in brackets), as `SocketAddr` displays it; shared
    /// with the envelope and journal entries of the connection's messages.
    pub addr: mailrig_core::journal::Text,
    /// The IP address alone.
    pub ip: String,
}

impl PeerText {
    pub fn new(peer: SocketAddr) -> PeerText {
        PeerText {
            addr: peer.to_string().into(),
            ip: peer.ip().to_string(),
        }
    }
}

/// The RFC 2822 date of the current second, formatted once per second.
#[derive(Debug, Default)]
pub struct DateCache {
    /// Seconds since the epoch of `text`, `None` before the first use.
    secs: Option<i64>,
    text: String,
}

impl DateCache {
    /// `now` in RFC 2822 form (`Wed, 2 Dec 2026 00:33:57 +0000`).
    pub fn get(&mut self, now: DateTime<Utc>) -> &str {
        let secs = now.timestamp();
        if self.secs != Some(secs) {
            self.text = now.to_rfc2822();
            self.secs = Some(secs);
        }
        &self.text
    }
}

/// Appends `n` in upper-case hexadecimal, without leading zeros (`{n:X}`).
pub fn push_hex(out: &mut String, n: u64) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    let mut v = n;
    loop {
        i -= 1;
        buf[i] = DIGITS[(v & 0xF) as usize];
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    for &b in &buf[i..] {
        out.push(b as char);
    }
}

/// Appends one reply line, `code enhanced text\r\n` (`code text\r\n` when
/// `enhanced` is empty).
pub fn reply(out: &mut Vec<u8>, code: u16, enhanced: &str, text: &str) {
    out.reserve(8 + enhanced.len() + text.len());
    if (100..1000).contains(&code) {
        out.extend_from_slice(&[
            b'0' + (code / 100) as u8,
            b'0' + (code / 10 % 10) as u8,
            b'0' + (code % 10) as u8,
        ]);
    } else {
        // Not a reply code a fault rule can configure; written as it is.
        out.extend_from_slice(code.to_string().as_bytes());
    }
    out.push(b' ');
    if !enhanced.is_empty() {
        out.extend_from_slice(enhanced.as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first version, with `format!`: the oracle.
    fn by_format(t: &Trace<'_>) -> String {
        let for_clause = match t.for_rcpt {
            Some(one) => format!("\r\n\tfor <{one}>"),
            None => String::new(),
        };
        format!(
            "Return-Path: <{}>\r\nReceived: from {} ({} [{}])\r\n\tby {} (mailrig) with {} id {}{for_clause};\r\n\t{}\r\n",
            t.mail_from, t.helo, t.peer_ip, t.peer_ip, t.hostname, t.with, t.queue_id, t.date
        )
    }

    #[test]
    fn trace_headers_are_the_bytes_format_wrote() {
        let now = DateTime::parse_from_rfc2822("Wed, 2 Dec 2026 00:33:57 +0000")
            .unwrap()
            .with_timezone(&Utc);
        let mut dates = DateCache::default();
        let date = dates.get(now).to_string();
        assert_eq!(date, now.to_rfc2822());
        for peer in [
            "127.0.0.1:25",
            "[::1]:4000",
            "[2001:db8::7]:1",
            "10.20.30.40:65535",
        ] {
            let peer = PeerText::new(peer.parse().unwrap());
            for (from, rcpt) in [
                ("a@b.test", Some("user01@patente.test")),
                ("", None),
                ("ünï@b.test", Some("x@y")),
            ] {
                let t = Trace {
                    mail_from: from,
                    helo: "client.test",
                    peer_ip: &peer.ip,
                    hostname: "mx.kanzlei.test",
                    with: "ESMTPSA",
                    queue_id: "1F",
                    for_rcpt: rcpt,
                    date: &date,
                };
                let mut out = Vec::new();
                t.write(&mut out);
                assert_eq!(String::from_utf8(out.clone()).unwrap(), by_format(&t));
                assert_eq!(out.len(), t.encoded_len());
                let mut over = vec![0u8; t.encoded_len()];
                assert!(t.write_over(&mut over));
                assert_eq!(over, out);
                assert!(!t.write_over(&mut vec![0u8; t.encoded_len() + 1]));
            }
        }
    }

    #[test]
    fn hex_and_reply_lines_are_what_format_wrote() {
        for n in [0u64, 1, 9, 10, 15, 16, 255, 0xABCDEF, u64::MAX] {
            let mut s = String::new();
            push_hex(&mut s, n);
            assert_eq!(s, format!("{n:X}"));
        }
        for (code, enh, text) in [
            (250, "2.0.0", "Ok"),
            (354, "", "End data with <CR><LF>.<CR><LF>"),
            (421, "4.7.0", ""),
            (99, "", "odd"),
            (1000, "5.0.0", "odd"),
        ] {
            let mut out = Vec::new();
            reply(&mut out, code, enh, text);
            let want = if enh.is_empty() {
                format!("{code} {text}\r\n")
            } else {
                format!("{code} {enh} {text}\r\n")
            };
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    #[test]
    fn the_date_is_formatted_again_in_a_new_second() {
        let t0 = DateTime::parse_from_rfc2822("Wed, 9 Dec 2026 23:59:59 +0000")
            .unwrap()
            .with_timezone(&Utc);
        let mut dates = DateCache::default();
        assert_eq!(dates.get(t0), t0.to_rfc2822());
        let t1 = t0 + chrono::Duration::milliseconds(999);
        assert_eq!(dates.get(t1), t0.to_rfc2822());
        let t2 = t0 + chrono::Duration::seconds(1);
        assert_eq!(dates.get(t2), "Thu, 10 Dec 2026 00:00:00 +0000");
    }
}
