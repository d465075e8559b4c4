//! Command-line framing for the line-based protocols (SMTP, POP3): splits
//! input at LF with a hard cap on a line's length, and drops an over-long
//! line up to its end without buffering it.

use bytes::BytesMut;

/// One unit of line input.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A whole line, its line ending included.
    Complete(BytesMut),
    /// A line longer than the cap ended; it was discarded.
    TooLong,
}

/// The line framer of one connection.
#[derive(Debug)]
pub struct LineReader {
    /// Longest line accepted, line ending included.
    max: usize,
    /// Inside an over-long line: dropping input up to its LF.
    discarding: bool,
}

impl LineReader {
    pub fn new(max: usize) -> LineReader {
        LineReader {
            max,
            discarding: false,
        }
    }

    /// Forgets a partly discarded line (after STARTTLS).
    pub fn reset(&mut self) {
        self.discarding = false;
    }

    /// The next line of `input`; `None` means more bytes are needed. An
    /// unfinished line already at the cap is dropped at once, so the buffer
    /// never holds more than one line.
    pub fn next(&mut self, input: &mut BytesMut) -> Option<Line> {
        match memchr::memchr(b'\n', input) {
            None => {
                if self.discarding || input.len() >= self.max {
                    self.discarding = true;
                    input.clear();
                }
                None
            }
            Some(end) => {
                let line = input.split_to(end + 1);
                if self.discarding || line.len() > self.max {
                    self.discarding = false;
                    return Some(Line::TooLong);
                }
                Some(Line::Complete(line))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(max: usize, chunks: &[&[u8]]) -> Vec<Option<Line>> {
        let mut r = LineReader::new(max);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for c in chunks {
            buf.extend_from_slice(c);
            loop {
                let l = r.next(&mut buf);
                let done = l.is_none();
                got.push(l);
                if done {
                    break;
                }
            }
        }
        got
    }

    /// (cap, the reads, what the framer yields after each).
    type Case<'a> = (usize, Vec<&'a [u8]>, Vec<Option<Line>>);

    #[test]
    fn table() {
        let c = |s: &[u8]| Some(Line::Complete(BytesMut::from(s)));
        let cases: Vec<Case> = vec![
            (10, vec![b"a\r\nb\n"], vec![c(b"a\r\n"), c(b"b\n"), None]),
            (10, vec![b"ab", b"c\r\n"], vec![None, c(b"abc\r\n"), None]),
            // exactly the cap, line ending included
            (5, vec![b"abc\r\n"], vec![c(b"abc\r\n"), None]),
            (5, vec![b"abcd\r\n"], vec![Some(Line::TooLong), None]),
            // an unfinished line at the cap is dropped as it arrives
            (
                4,
                vec![b"abcd", b"efgh", b"ij\nok\n"],
                vec![None, None, Some(Line::TooLong), c(b"ok\n"), None],
            ),
        ];
        for (max, chunks, want) in cases {
            assert_eq!(lines(max, &chunks), want, "{chunks:?}");
        }
    }
}
