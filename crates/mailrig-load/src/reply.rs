//! The SMTP reply parser (RFC 5321 §4.2): sans-I/O, zero-copy, and safe against hostile servers.
//!
//! A reply is one or more lines `CODE-text` ending with a line `CODE text` (or a bare `CODE`), each ending in
//! CRLF. Replies may arrive split across reads or several per read (PIPELINING), so [`parse_reply`] looks at
//! the front of a buffer and either returns one complete reply and the bytes it used, or says "need more".
//! The hot path (a `250 2.0.0 Ok` after MAIL) allocates nothing; only the text of EHLO and of failures is
//! ever looked at.

/// Longest reply we accept before calling the server broken (RFC 5321 allows 512-byte lines; EHLO replies
/// with many lines stay far below this).
pub const MAX_REPLY_LEN: usize = 64 * 1024;

/// One complete reply, borrowed from the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply<'a> {
    /// The three-digit code, 200..=599.
    pub code: u16,
    raw: &'a [u8],
}

impl<'a> Reply<'a> {
    /// The text of each line, without the code, separator and line ending.
    pub fn lines(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.raw
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                line.get(4..).unwrap_or(&[])
            })
    }

    /// All lines joined with a space, lossily decoded, for error messages.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (i, line) in self.lines().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(&String::from_utf8_lossy(line));
        }
        out
    }

    /// The class of the reply: 2 positive, 3 intermediate, 4 transient failure, 5 permanent failure.
    pub fn class(&self) -> u16 {
        self.code / 100
    }
}

/// Why the bytes at the front of the buffer are not an SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// A line does not start with three digits followed by `-`, space or the line end.
    #[error("malformed reply line {0:?}")]
    Malformed(String),
    /// The lines of one multi-line reply carry different codes.
    #[error("reply lines carry different codes ({first} then {other})")]
    MixedCodes {
        /// The first line's code.
        first: u16,
        /// The differing code.
        other: u16,
    },
    /// The reply grew past [`MAX_REPLY_LEN`] without ending.
    #[error("reply longer than {MAX_REPLY_LEN} bytes")]
    TooLong,
}

/// Parses one reply from the front of `buf`.
///
/// Returns `Ok(None)` if `buf` holds only part of a reply (read more and call again with the longer buffer),
/// or `Ok(Some((reply, used)))` where `used` is the number of bytes to drop before the next reply.
/// Accepts bare LF line endings as well as CRLF, since some servers send them.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply<'_>, usize)>, ReplyError> {
    let mut pos = 0;
    let mut first_code = None;
    loop {
        let rest = &buf[pos..];
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            if buf.len() > MAX_REPLY_LEN {
                return Err(ReplyError::TooLong);
            }
            // An incomplete line: check what we can now, so garbage is reported without waiting.
            check_prefix(rest)?;
            return Ok(None);
        };
        let line = &rest[..nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let (code, last) = parse_line_head(line)?;
        match first_code {
            None => first_code = Some(code),
            Some(first) if first != code => {
                return Err(ReplyError::MixedCodes { first, other: code });
            }
            Some(_) => {}
        }
        pos += nl + 1;
        if pos > MAX_REPLY_LEN {
            return Err(ReplyError::TooLong);
        }
        if last {
            let reply = Reply {
                code,
                raw: &buf[..pos],
            };
            return Ok(Some((reply, pos)));
        }
    }
}

/// The code of a complete line and whether it is the reply's last line.
fn parse_line_head(line: &[u8]) -> Result<(u16, bool), ReplyError> {
    let code = parse_code(line).ok_or_else(|| malformed(line))?;
    match line.get(3) {
        None | Some(b' ') => Ok((code, true)),
        Some(b'-') => Ok((code, false)),
        Some(_) => Err(malformed(line)),
    }
}

/// Rejects a partial line as early as its first bytes show it cannot be a reply.
fn check_prefix(partial: &[u8]) -> Result<(), ReplyError> {
    for (i, &b) in partial.iter().take(4).enumerate() {
        let ok = match i {
            0 => (b'2'..=b'5').contains(&b),
            1 => (b'0'..=b'5').contains(&b),
            2 => b.is_ascii_digit(),
            _ => b == b' ' || b == b'-' || b == b'\r',
        };
        if !ok {
            return Err(malformed(partial));
        }
    }
    Ok(())
}

fn parse_code(line: &[u8]) -> Option<u16> {
    let digits = line.get(..3)?;
    if !(b'2'..=b'5').contains(&digits[0])
        || !(b'0'..=b'5').contains(&digits[1])
        || !digits[2].is_ascii_digit()
    {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0')),
    )
}

fn malformed(line: &[u8]) -> ReplyError {
    let shown = &line[..line.len().min(80)];
    ReplyError::Malformed(String::from_utf8_lossy(shown).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(input: &[u8]) -> (u16, usize, Vec<String>) {
        let (reply, used) = parse_reply(input).unwrap().unwrap();
        let lines = reply
            .lines()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        (reply.code, used, lines)
    }

    #[test]
    fn single_line_reply() {
        let (code, used, lines) = one(b"250 2.1.0 Ok\r\n");
        assert_eq!((code, used), (250, 14));
        assert_eq!(lines, ["2.1.0 Ok"]);
    }

    #[test]
    fn bare_code_and_empty_text() {
        assert_eq!(one(b"250\r\n").0, 250);
        // smtp-sink ends its EHLO reply with "250 " and nothing after.
        let (code, _, lines) = one(b"250-smtp-sink\r\n250-PIPELINING\r\n250 \r\n");
        assert_eq!(code, 250);
        assert_eq!(lines, ["smtp-sink", "PIPELINING", ""]);
    }

    #[test]
    fn multi_line_reply() {
        let input = b"250-mx.example Hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 AUTH PLAIN LOGIN\r\n";
        let (code, used, lines) = one(input);
        assert_eq!(code, 250);
        assert_eq!(used, input.len());
        assert_eq!(
            lines,
            [
                "mx.example Hello",
                "PIPELINING",
                "SIZE 10240000",
                "AUTH PLAIN LOGIN"
            ]
        );
    }

    #[test]
    fn pipelined_replies_come_one_at_a_time() {
        let input = b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n";
        let mut pos = 0;
        let mut codes = vec![];
        while pos < input.len() {
            let (reply, used) = parse_reply(&input[pos..]).unwrap().unwrap();
            codes.push(reply.code);
            pos += used;
        }
        assert_eq!(codes, [250, 250, 354]);
    }

    #[test]
    fn a_reply_split_across_reads_waits_for_the_rest() {
        let input = b"250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n";
        // Every split point: the prefix is incomplete, the whole is complete.
        for cut in 0..input.len() {
            assert_eq!(parse_reply(&input[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(one(input).0, 250);
    }

    #[test]
    fn bare_lf_is_accepted() {
        let (code, used, lines) = one(b"220-hello\n220 there\n");
        assert_eq!((code, used), (220, 20));
        assert_eq!(lines, ["hello", "there"]);
    }

    #[test]
    fn garbage_is_an_error_even_before_the_line_ends() {
        assert!(matches!(
            parse_reply(b"HTTP/1.1 400"),
            Err(ReplyError::Malformed(_))
        ));
        assert!(matches!(
            parse_reply(b"2x0 ok\r\n"),
            Err(ReplyError::Malformed(_))
        ));
        assert!(matches!(
            parse_reply(b"250+ok\r\n"),
            Err(ReplyError::Malformed(_))
        ));
        assert!(matches!(
            parse_reply(b"25\r\n"),
            Err(ReplyError::Malformed(_))
        ));
        assert!(matches!(
            parse_reply(b"650 no\r\n"),
            Err(ReplyError::Malformed(_))
        ));
    }

    #[test]
    fn mixed_codes_are_an_error() {
        assert_eq!(
            parse_reply(b"250-a\r\n550 b\r\n"),
            Err(ReplyError::MixedCodes {
                first: 250,
                other: 550
            })
        );
    }

    #[test]
    fn endless_replies_are_cut_off() {
        let mut input = Vec::new();
        while input.len() <= MAX_REPLY_LEN {
            input.extend_from_slice(b"250-more and more capabilities\r\n");
        }
        assert_eq!(parse_reply(&input), Err(ReplyError::TooLong));
        let long_line = vec![b'2'; 3]
            .into_iter()
            .chain(std::iter::repeat_n(b'x', 0))
            .chain(b" ".iter().copied())
            .chain(std::iter::repeat_n(b'a', MAX_REPLY_LEN + 1))
            .collect::<Vec<u8>>();
        assert_eq!(parse_reply(&long_line), Err(ReplyError::TooLong));
    }

    #[test]
    fn text_joins_lines() {
        let (reply, _) = parse_reply(b"550-5.1.1 No such user\r\n550 5.1.1 here\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(reply.text(), "5.1.1 No such user 5.1.1 here");
        assert_eq!(reply.class(), 5);
    }
}
