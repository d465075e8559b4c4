//! Splits the client's byte stream into whole commands before any parsing:
//! lines, and the literals (`{n}` / `{n+}` / `~{n}`) announced at their ends.
//!
//! Doing this first, with hard limits, is what keeps a client from making the
//! server buffer without bound. [`FrameLimits`] bounds one line, one literal,
//! the number of literals of one command and the whole command (lines and
//! literals together); a line over the limit is dropped up to its end, a
//! literal or command over it is refused before its bytes are read. Before
//! login the limits are small (as Dovecot's imap-login keeps them): a client
//! that never authenticates cannot make the server hold more than
//! [`FrameLimits::BEFORE_LOGIN`] allows, whatever chain of `{0+}` literals it
//! sends. The parser (`imap-codec`) then only ever sees complete commands.

use bytes::{Buf, BytesMut};

/// Longest command line (excluding literal data) accepted after login.
pub const MAX_LINE: usize = 64 * 1024;

/// Longest tag echoed back in a response; a longer or invalid one gets an
/// untagged `* BAD` instead, so a hostile first token is never reflected.
pub const MAX_TAG: usize = 64;

/// What one command may make the server hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Longest line, CRLF included, literal data not counted.
    pub max_line: usize,
    /// Largest single literal (synchronizing or LITERAL+).
    pub max_literal: usize,
    /// Most literals in one command.
    pub max_literals: usize,
    /// Most bytes of one command: its lines and literals together.
    pub max_command: usize,
}

impl FrameLimits {
    /// Before authentication: enough for LOGIN and AUTHENTICATE with literals
    /// and SASL-IR, and for the 32 KB ID command of Dovecot's imaptest, no more.
    pub const BEFORE_LOGIN: FrameLimits = FrameLimits {
        max_line: MAX_LINE,
        max_literal: 4 * 1024,
        max_literals: 4,
        max_command: MAX_LINE,
    };

    /// After login: literals up to the world's `max_literal` (APPEND).
    pub fn logged_in(max_literal: usize) -> FrameLimits {
        FrameLimits {
            max_line: MAX_LINE,
            max_literal,
            max_literals: 1024,
            max_command: max_literal.saturating_add(MAX_LINE),
        }
    }
}

/// Which limit a refused command broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandLimit {
    /// More bytes than `max_command`, lines and literals together.
    Bytes(usize),
    /// More literals than `max_literals`.
    Literals(usize),
}

/// One unit of client input, as the session sees it.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole command (or continuation line): its lines and literal bytes.
    Complete(Vec<u8>),
    /// A synchronizing literal was announced and accepted: send `+`.
    Continue,
    /// A literal larger than `limit`: refused, its bytes are not read.
    /// `sync == false` (LITERAL+) means the client sends them anyway.
    LiteralTooLarge {
        tag: Option<String>,
        size: u64,
        limit: usize,
        sync: bool,
    },
    /// A command over a [`CommandLimit`]: refused and forgotten. `sync ==
    /// false` means a LITERAL+ literal's bytes follow anyway.
    CommandTooLarge {
        tag: Option<String>,
        limit: CommandLimit,
        sync: bool,
    },
    /// A line longer than the line limit; it is being discarded.
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
    /// Literals announced so far in `command`.
    literals: usize,
    state: State,
    limits: FrameLimits,
}

impl Framer {
    pub fn new(limits: FrameLimits) -> Framer {
        Framer {
            command: Vec::new(),
            literals: 0,
            state: State::Line,
            limits,
        }
    }

    /// Applies new limits from the next command on (after login).
    pub fn set_limits(&mut self, limits: FrameLimits) {
        self.limits = limits;
    }

    /// Forgets any partial command (after STARTTLS).
    pub fn reset(&mut self) {
        self.command.clear();
        self.literals = 0;
        self.state = State::Line;
    }

    /// Takes what it can from `input`; `None` means more bytes are needed.
    pub fn next(&mut self, input: &mut BytesMut) -> Option<Frame> {
        let limits = self.limits;
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
                        if input.len() > limits.max_line {
                            let tag = self.tag_of(input);
                            input.clear();
                            self.reset();
                            self.state = State::DiscardLine;
                            return Some(Frame::LineTooLong { tag });
                        }
                        return None;
                    };
                    if i + 1 > limits.max_line {
                        let tag = self.tag_of(input);
                        input.advance(i + 1);
                        self.reset();
                        return Some(Frame::LineTooLong { tag });
                    }
                    let line_start = self.command.len();
                    self.command.extend_from_slice(&input[..=i]);
                    input.advance(i + 1);
                    let literal = literal_at_end(&self.command[line_start..]);
                    let sync = literal.is_none_or(|(_, sync)| sync);
                    if self.command.len() > limits.max_command {
                        return Some(self.refuse(CommandLimit::Bytes(limits.max_command), sync));
                    }
                    let Some((size, sync)) = literal else {
                        self.literals = 0;
                        return Some(Frame::Complete(std::mem::take(&mut self.command)));
                    };
                    self.literals += 1;
                    if size > limits.max_literal as u64 {
                        let tag = tag_in(&self.command);
                        self.reset();
                        return Some(Frame::LiteralTooLarge {
                            tag,
                            size,
                            limit: limits.max_literal,
                            sync,
                        });
                    }
                    if self.literals > limits.max_literals {
                        return Some(
                            self.refuse(CommandLimit::Literals(limits.max_literals), sync),
                        );
                    }
                    // Bounded by max_literal above.
                    let n = usize::try_from(size).unwrap_or(usize::MAX);
                    if self.command.len().saturating_add(n) > limits.max_command {
                        return Some(self.refuse(CommandLimit::Bytes(limits.max_command), sync));
                    }
                    self.command.reserve(n.min(1 << 20));
                    self.state = State::Literal(n);
                    if sync {
                        return Some(Frame::Continue);
                    }
                }
            }
        }
    }

    /// Forgets the current command, refused for breaking `limit`.
    fn refuse(&mut self, limit: CommandLimit, sync: bool) -> Frame {
        let tag = tag_in(&self.command);
        self.reset();
        Frame::CommandTooLarge { tag, limit, sync }
    }

    fn tag_of(&self, input: &[u8]) -> Option<String> {
        if self.command.is_empty() {
            tag_in(input)
        } else {
            tag_in(&self.command)
        }
    }
}

/// The tag a command starts with, if it is a valid one of at most
/// [`MAX_TAG`] bytes (only such a tag is ever echoed back).
pub fn tag_in(command: &[u8]) -> Option<String> {
    let end = command
        .iter()
        .take(MAX_TAG + 1)
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')?;
    let tag = &command[..end];
    let ok = !tag.is_empty()
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

    /// Small limits for the tables below.
    const SMALL: FrameLimits = FrameLimits {
        max_line: 100,
        max_literal: 10,
        max_literals: 2,
        max_command: 120,
    };

    fn complete(b: &[u8]) -> Frame {
        Frame::Complete(b.to_vec())
    }

    fn tag(t: &str) -> Option<String> {
        Some(t.to_string())
    }

    /// Exchanges: the bytes a client sends in one piece, the frames they give
    /// (each case on a new framer), then a NOOP that must come out whole.
    #[test]
    fn frame_table() {
        use CommandLimit::{Bytes, Literals};
        let long_tag = "t".repeat(MAX_TAG + 1);
        let over_line = [b"t1 LOGIN ".as_slice(), &[b'x'; 100], b"\r\n"].concat();
        let long_tag_line = format!("{long_tag} {}\r\n", "x".repeat(100));
        let cases: Vec<(Vec<u8>, Vec<Frame>)> = vec![
            (b"a NOOP\r\n".to_vec(), vec![complete(b"a NOOP\r\n")]),
            (b"b LOGIN {3}\r\n".to_vec(), vec![Frame::Continue]),
            (
                b"c APPEND x {2+}\r\nhi\r\n".to_vec(),
                vec![complete(b"c APPEND x {2+}\r\nhi\r\n")],
            ),
            (
                b"d LOGIN {1+}\r\nu {1+}\r\np\r\n".to_vec(),
                vec![complete(b"d LOGIN {1+}\r\nu {1+}\r\np\r\n")],
            ),
            (
                b"e APPEND x {11}\r\n".to_vec(),
                vec![Frame::LiteralTooLarge {
                    tag: tag("e"),
                    size: 11,
                    limit: 10,
                    sync: true,
                }],
            ),
            (
                b"f APPEND x {11+}\r\n".to_vec(),
                vec![Frame::LiteralTooLarge {
                    tag: tag("f"),
                    size: 11,
                    limit: 10,
                    sync: false,
                }],
            ),
            // A chain of {0+} literals: the third is one too many.
            (
                b"g LOGIN {0+}\r\n {0+}\r\n {0+}\r\n".to_vec(),
                vec![Frame::CommandTooLarge {
                    tag: tag("g"),
                    limit: Literals(2),
                    sync: false,
                }],
            ),
            (b"h LOGIN {0}\r\n".to_vec(), vec![Frame::Continue]),
            // Lines after literals count towards the whole command.
            (
                [
                    b"i X {0+}\r\n".as_slice(),
                    &[b'y'; 90],
                    b" {0+}\r\n",
                    &[b'y'; 90],
                    b"\r\n",
                ]
                .concat(),
                vec![Frame::CommandTooLarge {
                    tag: tag("i"),
                    limit: Bytes(120),
                    sync: true,
                }],
            ),
            (
                [b"j X {10+}\r\n".as_slice(), &[b'y'; 100], b" {10+}\r\n"].concat(),
                vec![Frame::CommandTooLarge {
                    tag: tag("j"),
                    limit: Bytes(120),
                    sync: false,
                }],
            ),
            (over_line, vec![Frame::LineTooLong { tag: tag("t1") }]),
            // Only a short, valid tag is echoed.
            (
                long_tag_line.into_bytes(),
                vec![Frame::LineTooLong { tag: None }],
            ),
        ];
        for (input, want) in cases {
            let mut f = Framer::new(SMALL);
            let mut got = feed(&mut f, &input);
            let shown = String::from_utf8_lossy(&input).into_owned();
            if got.last() == Some(&Frame::Continue) {
                assert_eq!(got, want, "{shown}");
                continue;
            }
            // Refused literals were never read: the framer is at a command start.
            let noop = feed(&mut f, b"z NOOP\r\n");
            got.extend(noop);
            let mut want = want;
            want.push(complete(b"z NOOP\r\n"));
            assert_eq!(got, want, "{shown}");
        }
    }

    #[test]
    fn a_long_line_is_dropped_up_to_its_end_across_reads() {
        let mut f = Framer::new(SMALL);
        let mut long = b"t1 ".to_vec();
        long.extend(std::iter::repeat_n(b'x', 200));
        assert_eq!(
            feed(&mut f, &long),
            vec![Frame::LineTooLong { tag: tag("t1") }]
        );
        assert_eq!(feed(&mut f, &[b'x'; 500]), vec![]);
        assert_eq!(
            feed(&mut f, b"xxx\r\nb NOOP\r\n"),
            vec![complete(b"b NOOP\r\n")]
        );
    }

    #[test]
    fn limits_change_from_the_next_command_on() {
        let mut f = Framer::new(FrameLimits::BEFORE_LOGIN);
        assert!(matches!(
            feed(&mut f, b"a APPEND x {5000}\r\n")[..],
            [Frame::LiteralTooLarge {
                size: 5000,
                limit: 4096,
                ..
            }]
        ));
        f.set_limits(FrameLimits::logged_in(1 << 20));
        assert_eq!(
            feed(&mut f, b"a APPEND x {5000}\r\n"),
            vec![Frame::Continue]
        );
    }

    #[test]
    fn tags() {
        assert_eq!(tag_in(b"a1 NOOP\r\n"), tag("a1"));
        assert_eq!(tag_in(b"a1\r\n"), tag("a1"));
        assert_eq!(tag_in(b"a1"), None, "no end of the tag seen");
        assert_eq!(tag_in(b"* NOOP\r\n"), None);
        assert_eq!(tag_in(b"a{1 NOOP\r\n"), None);
        assert_eq!(tag_in(b" NOOP\r\n"), None);
        let t = "t".repeat(MAX_TAG);
        assert_eq!(tag_in(format!("{t} NOOP\r\n").as_bytes()), Some(t.clone()));
        assert_eq!(tag_in(format!("{t}t NOOP\r\n").as_bytes()), None);
        assert_eq!(tag_in(&[b'x'; 70_000]), None);
    }
}
