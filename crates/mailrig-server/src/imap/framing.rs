//! Splits the client's byte stream into whole commands before any parsing:
//! lines, and the literals (`{n}` / `{n+}` / `~{n}`) announced at their ends.
//!
//! Doing this first, with hard limits, is what keeps a client from making the
//! server buffer without bound: a line longer than [`MAX_LINE`] is dropped up
//! to its end, a literal larger than the world's `max_literal` is refused
//! before a byte of it is read, and a whole command never exceeds the literal
//! limit plus [`MAX_LINE`]. The parser (`imap-codec`) then only ever sees
//! complete commands.

use bytes::{Buf, BytesMut};

/// Longest command line (excluding literal data) accepted.
pub const MAX_LINE: usize = 64 * 1024;

/// One unit of client input, as the session sees it.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole command (or continuation line): its lines and literal bytes.
    Complete(Vec<u8>),
    /// A synchronizing literal was announced and accepted: send `+`.
    Continue,
    /// A literal larger than allowed: refused, its bytes are not read.
    /// `sync == false` (LITERAL+) means the client sends them anyway.
    LiteralTooLarge {
        tag: Option<String>,
        size: u64,
        sync: bool,
    },
    /// A line longer than [`MAX_LINE`]; it is being discarded.
    LineTooLong { tag: Option<String> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a line of the current command.
    Line,
    /// Reading `n` more bytes of literal data.
    Literal(usize),
    /// Dropping input up to the next LF.
    DiscardLine,
}

/// The command framer of one connection.
#[derive(Debug)]
pub struct Framer {
    command: Vec<u8>,
    state: State,
    max_literal: usize,
}

impl Framer {
    pub fn new(max_literal: usize) -> Framer {
        Framer {
            command: Vec::new(),
            state: State::Line,
            max_literal,
        }
    }

    /// Forgets any partial command (after STARTTLS).
    pub fn reset(&mut self) {
        self.command.clear();
        self.state = State::Line;
    }

    /// Takes what it can from `input`; `None` means more bytes are needed.
    pub fn next(&mut self, input: &mut BytesMut) -> Option<Frame> {
        loop {
            match self.state {
                State::DiscardLine => match memchr::memchr(b'\n', input) {
                    Some(i) => {
                        input.advance(i + 1);
                        self.state = State::Line;
                    }
                    None => {
                        input.clear();
                        return None;
                    }
                },
                State::Literal(n) => {
                    let take = n.min(input.len());
                    self.command.extend_from_slice(&input[..take]);
                    input.advance(take);
                    if take < n {
                        self.state = State::Literal(n - take);
                        return None;
                    }
                    self.state = State::Line;
                }
                State::Line => {
                    let Some(i) = memchr::memchr(b'\n', input) else {
                        if input.len() > MAX_LINE {
                            let tag = self.tag_of(input);
                            input.clear();
                            self.command.clear();
                            self.state = State::DiscardLine;
                            return Some(Frame::LineTooLong { tag });
                        }
                        return None;
                    };
                    if i + 1 > MAX_LINE {
                        let tag = self.tag_of(input);
                        input.advance(i + 1);
                        self.command.clear();
                        return Some(Frame::LineTooLong { tag });
                    }
                    let line_start = self.command.len();
                    self.command.extend_from_slice(&input[..=i]);
                    input.advance(i + 1);
                    match literal_at_end(&self.command[line_start..]) {
                        None => return Some(Frame::Complete(std::mem::take(&mut self.command))),
                        Some((size, sync)) => {
                            let room =
                                (self.max_literal + MAX_LINE).saturating_sub(self.command.len());
                            if size > self.max_literal as u64 || size > room as u64 {
                                let tag = tag_in(&self.command);
                                self.command.clear();
                                return Some(Frame::LiteralTooLarge { tag, size, sync });
                            }
                            // Bounded by max_literal above.
                            let n = usize::try_from(size).unwrap_or(usize::MAX);
                            self.command.reserve(n.min(1 << 20));
                            self.state = State::Literal(n);
                            if sync {
                                return Some(Frame::Continue);
                            }
                        }
                    }
                }
            }
        }
    }

    fn tag_of(&self, input: &[u8]) -> Option<String> {
        if self.command.is_empty() {
            tag_in(input)
        } else {
            tag_in(&self.command)
        }
    }
}

/// The tag a command starts with, if it is a valid one.
pub fn tag_in(command: &[u8]) -> Option<String> {
    let end = command
        .iter()
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')
        .unwrap_or(command.len());
    let tag = &command[..end];
    let ok = !tag.is_empty()
        && end < command.len()
        && tag.iter().all(|&b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b'+')
        });
    ok.then(|| String::from_utf8_lossy(tag).into_owned())
}

/// `{n}`, `{n+}` or `~{n}` right before the line end: (size, synchronizing).
fn literal_at_end(line: &[u8]) -> Option<(u64, bool)> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let inner = line.strip_suffix(b"}")?;
    let open = memchr::memrchr(b'{', inner)?;
    let mut digits = &inner[open + 1..];
    let sync = match digits.strip_suffix(b"+") {
        Some(d) => {
            digits = d;
            false
        }
        None => true,
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let size = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((size, sync))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(f: &mut Framer, bytes: &[u8]) -> Vec<Frame> {
        let mut input = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(fr) = f.next(&mut input) {
            out.push(fr);
        }
        out
    }

    #[test]
    fn lines_and_literals() {
        let mut f = Framer::new(100);
        assert_eq!(
            feed(&mut f, b"a NOOP\r\nb LOGIN {3}\r\n"),
            vec![Frame::Complete(b"a NOOP\r\n".to_vec()), Frame::Continue]
        );
        assert_eq!(
            feed(&mut f, b"bob pw\r\n"),
            vec![Frame::Complete(b"b LOGIN {3}\r\nbob pw\r\n".to_vec())]
        );
        assert_eq!(
            feed(&mut f, b"c APPEND x {2+}\r\nhi\r\n"),
            vec![Frame::Complete(b"c APPEND x {2+}\r\nhi\r\n".to_vec())]
        );
    }

    #[test]
    fn refuses_large_literals_and_long_lines() {
        let mut f = Framer::new(10);
        assert_eq!(
            feed(&mut f, b"a APPEND x {11}\r\n"),
            vec![Frame::LiteralTooLarge {
                tag: Some("a".into()),
                size: 11,
                sync: true
            }]
        );
        let mut long = b"t1 ".to_vec();
        long.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        let frames = feed(&mut f, &long);
        assert_eq!(
            frames,
            vec![Frame::LineTooLong {
                tag: Some("t1".into())
            }]
        );
        assert_eq!(
            feed(&mut f, b"xxx\r\nb NOOP\r\n"),
            vec![Frame::Complete(b"b NOOP\r\n".to_vec())]
        );
    }
}
