//! The DATA phase as a state machine over bytes: dot-unstuffing, end-of-data
//! detection across any read boundary, the bare-LF policy, the optional
//! line-length limit and the size limit. No I/O: the connection feeds it
//! whatever it read and it says how much it consumed and whether the message
//! is complete.
//!
//! Content lines have no length limit unless the scenario sets
//! `max_line_length`: Postfix, Exchange and Mailpit accept the unwrapped HTML
//! lines that real applications send, so refusing them by default would fail
//! mail that passes in production. Memory stays bounded either way, since
//! nothing beyond the message size limit is kept.

/// What went wrong with a message body (reported at end of data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyProblem {
    TooBig,
    LineTooLong,
    BareLf,
}

impl BodyProblem {
    /// Which problem is reported when a message has several: size above all
    /// (a client must learn that the message is too big), then the bare-LF
    /// policy, then the line limit.
    fn severity(self) -> u8 {
        match self {
            BodyProblem::TooBig => 3,
            BodyProblem::BareLf => 2,
            BodyProblem::LineTooLong => 1,
        }
    }
}

/// The largest buffer reserved up front, whatever size the client announced
/// (`MAIL FROM:<..> SIZE=n`): larger bodies grow it as they arrive.
pub const MAX_SIZE_HINT: usize = 4 << 20;

/// Accumulates one message body.
#[derive(Debug)]
pub struct DataReader {
    /// The prefix reserved for the trace headers, then the body.
    body: Vec<u8>,
    /// Bytes at the front of `body` that are not content (see [`DataReader::with_prefix`]).
    prefix: usize,
    max_size: usize,
    reject_bare_lf: bool,
    /// Longest content line accepted, line end included (`None`: any length).
    max_line: Option<usize>,
    at_line_start: bool,
    last_was_cr: bool,
    line_len: usize,
    /// Bytes of the body, counted even after the size limit stopped storing.
    size: usize,
    problem: Option<BodyProblem>,
}

/// Result of one `feed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub consumed: usize,
    pub done: bool,
}

impl DataReader {
    /// A reader that keeps at most `max_size` bytes and accepts content lines
    /// of any length.
    pub fn new(max_size: usize, reject_bare_lf: bool, size_hint: usize) -> DataReader {
        DataReader {
            body: Vec::with_capacity(size_hint.clamp(4096, MAX_SIZE_HINT)),
            prefix: 0,
            max_size,
            reject_bare_lf,
            max_line: None,
            at_line_start: true,
            last_was_cr: false,
            line_len: 0,
            size: 0,
            problem: None,
        }
    }

    /// Reserves `len` bytes (zeros) in front of the content, where the
    /// session writes its trace headers at end of data: the stored message is
    /// then this one buffer, never copied to put the headers in front. Call
    /// before the first [`DataReader::feed`]; the prefix is not content (not
    /// counted by [`DataReader::size`] nor against the size limit).
    pub fn with_prefix(mut self, len: usize) -> DataReader {
        self.body.truncate(self.prefix);
        self.body.resize(len, 0);
        self.prefix = len;
        self
    }

    /// Length of the prefix reserved by [`DataReader::with_prefix`].
    pub fn prefix_len(&self) -> usize {
        self.prefix
    }

    /// Refuses (at end of data) a message with a content line longer than
    /// `max_line` bytes, its line end included; `None` accepts any length.
    pub fn with_max_line(mut self, max_line: Option<usize>) -> DataReader {
        self.max_line = max_line;
        self
    }

    /// Consumes as much of `input` as can be decided on. A few bytes may be left
    /// (a `.` or `.\r` at a line start) until more data arrives.
    pub fn feed(&mut self, input: &[u8]) -> Progress {
        let mut pos = 0;
        while pos < input.len() {
            let rest = &input[pos..];
            if self.at_line_start && rest[0] == b'.' {
                match rest.get(1) {
                    None => {
                        return Progress {
                            consumed: pos,
                            done: false,
                        };
                    }
                    Some(b'\r') => match rest.get(2) {
                        None => {
                            return Progress {
                                consumed: pos,
                                done: false,
                            };
                        }
                        Some(b'\n') => {
                            return Progress {
                                consumed: pos + 3,
                                done: true,
                            };
                        }
                        Some(_) => {
                            // ".\rX": an unstuffed dot followed by a stray CR.
                            pos += 1;
                            self.at_line_start = false;
                            continue;
                        }
                    },
                    Some(b'\n') => {
                        // ".\n" is not the end of data: only CRLF.CRLF is, so
                        // nothing can be smuggled past us with bare LFs. Drop
                        // the dot; the bare LF is handled below.
                        pos += 1;
                        self.at_line_start = false;
                        continue;
                    }
                    Some(_) => {
                        pos += 1; // drop the stuffed dot
                        self.at_line_start = false;
                        continue;
                    }
                }
            }
            // Whole runs of ordinary lines are copied at once; the loop stops
            // at a line that starts with '.', which the code above handles.
            let mut run_start = 0;
            let mut line_start = 0;
            let mut stopped_at = None;
            for i in memchr::memchr_iter(b'\n', rest) {
                let had_cr = if i == 0 {
                    self.last_was_cr
                } else {
                    rest[i - 1] == b'\r'
                };
                if !had_cr {
                    if self.reject_bare_lf {
                        self.flag(BodyProblem::BareLf);
                    }
                    self.push(&rest[run_start..i]);
                    self.push(b"\r\n");
                    run_start = i + 1;
                }
                self.line_len += i + 1 - line_start;
                self.check_line();
                self.line_len = 0;
                line_start = i + 1;
                self.last_was_cr = false;
                // Only a real CRLF starts a line where "." can end data.
                self.at_line_start = had_cr;
                if had_cr && rest.get(i + 1) == Some(&b'.') {
                    stopped_at = Some(i + 1);
                    break;
                }
            }
            match stopped_at {
                Some(end) => {
                    self.push(&rest[run_start..end]);
                    pos += end;
                }
                None => {
                    self.push(&rest[run_start..]);
                    let tail = &rest[line_start..];
                    if !tail.is_empty() {
                        self.line_len += tail.len();
                        self.check_line();
                        self.last_was_cr = tail.last() == Some(&b'\r');
                        self.at_line_start = false;
                    }
                    pos = input.len();
                }
            }
        }
        Progress {
            consumed: pos,
            done: false,
        }
    }

    /// The first, line-at-a-time version of `feed`: slower, obviously
    /// right, kept as the oracle of a differential test.
    #[cfg(test)]
    fn feed_by_line(&mut self, input: &[u8]) -> Progress {
        let mut pos = 0;
        while pos < input.len() {
            let rest = &input[pos..];
            if self.at_line_start && rest[0] == b'.' {
                match rest.get(1) {
                    None => {
                        return Progress {
                            consumed: pos,
                            done: false,
                        };
                    }
                    Some(b'\r') => match rest.get(2) {
                        None => {
                            return Progress {
                                consumed: pos,
                                done: false,
                            };
                        }
                        Some(b'\n') => {
                            return Progress {
                                consumed: pos + 3,
                                done: true,
                            };
                        }
                        Some(_) => {
                            // ".\rX": an unstuffed dot followed by a stray CR.
                            pos += 1;
                            self.at_line_start = false;
                            continue;
                        }
                    },
                    Some(b'\n') => {
                        // ".\n" is not the end of data: only CRLF.CRLF is, so
                        // nothing can be smuggled past us with bare LFs. Drop
                        // the dot; the bare LF is handled below.
                        pos += 1;
                        self.at_line_start = false;
                        continue;
                    }
                    Some(_) => {
                        pos += 1; // drop the stuffed dot
                        self.at_line_start = false;
                        continue;
                    }
                }
            }
            match memchr::memchr(b'\n', rest) {
                None => {
                    self.push(rest);
                    self.line_len += rest.len();
                    self.check_line();
                    self.last_was_cr = rest.last() == Some(&b'\r');
                    self.at_line_start = false;
                    pos = input.len();
                }
                Some(i) => {
                    let had_cr = if i == 0 {
                        self.last_was_cr
                    } else {
                        rest[i - 1] == b'\r'
                    };
                    if had_cr {
                        self.push(&rest[..=i]);
                    } else {
                        if self.reject_bare_lf {
                            self.flag(BodyProblem::BareLf);
                        }
                        self.push(&rest[..i]);
                        self.push(b"\r\n");
                    }
                    self.line_len += i + 1;
                    self.check_line();
                    self.line_len = 0;
                    self.last_was_cr = false;
                    // Only a real CRLF starts a line where "." can end data.
                    self.at_line_start = had_cr;
                    pos += i + 1;
                }
            }
        }
        Progress {
            consumed: pos,
            done: false,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.size += bytes.len();
        if self.size > self.max_size {
            self.flag(BodyProblem::TooBig);
            return;
        }
        self.body.extend_from_slice(bytes);
    }

    fn check_line(&mut self) {
        if self.max_line.is_some_and(|max| self.line_len > max) {
            self.flag(BodyProblem::LineTooLong);
        }
    }

    fn flag(&mut self, p: BodyProblem) {
        // The gravest problem is the one reported, never the first found: the
        // order of finding depends on how TCP split the input (a long line is
        // seen to be too long before its bare LF arrives, or after it).
        if self.problem.is_none_or(|q| p.severity() > q.severity()) {
            self.problem = Some(p);
        }
    }

    /// Bytes received so far (after unstuffing).
    pub fn size(&self) -> usize {
        self.size
    }

    /// The finished body (after the [prefix](DataReader::with_prefix), if
    /// one was reserved), or what was wrong with it.
    pub fn finish(self) -> Result<Vec<u8>, BodyProblem> {
        match self.problem {
            Some(p) => Err(p),
            None => Ok(self.body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        chunks: &[&[u8]],
        max: usize,
        reject_lf: bool,
    ) -> (Result<Vec<u8>, BodyProblem>, Vec<u8>) {
        run_limited(chunks, max, reject_lf, None)
    }

    fn run_limited(
        chunks: &[&[u8]],
        max: usize,
        reject_lf: bool,
        max_line: Option<usize>,
    ) -> (Result<Vec<u8>, BodyProblem>, Vec<u8>) {
        let mut r = DataReader::new(max, reject_lf, 0).with_max_line(max_line);
        let mut buf: Vec<u8> = Vec::new();
        for c in chunks {
            buf.extend_from_slice(c);
            let p = r.feed(&buf);
            buf.drain(..p.consumed);
            if p.done {
                return (r.finish(), buf);
            }
        }
        panic!("no end of data");
    }

    #[test]
    fn simple_and_unstuffing() {
        let (body, rest) = run(&[b"Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n"], 1000, false);
        assert_eq!(body.unwrap(), b"Subject: x\r\n\r\n.dot\r\n");
        assert_eq!(rest, b"QUIT\r\n");
    }

    #[test]
    fn end_split_at_every_boundary() {
        let msg: &[u8] = b"a\r\n..b\r\n.\r\n";
        for i in 0..msg.len() {
            for j in i..msg.len() {
                let (body, rest) = run(&[&msg[..i], &msg[i..j], &msg[j..]], 1000, false);
                assert_eq!(body.unwrap(), b"a\r\n.b\r\n", "split {i} {j}");
                assert!(rest.is_empty());
            }
        }
    }

    #[test]
    fn empty_body() {
        let (body, _) = run(&[b".\r\n"], 10, false);
        assert_eq!(body.unwrap(), b"");
    }

    #[test]
    fn bare_lf_policies() {
        let (body, _) = run(&[b"a\nb\r\n.\r\n"], 1000, false);
        assert_eq!(body.unwrap(), b"a\r\nb\r\n");
        let (body, _) = run(&[b"a\nb\r\n.\r\n"], 1000, true);
        assert_eq!(body, Err(BodyProblem::BareLf));
        // Smuggling attempts: neither "\r\n.\n" nor "\n.\r\n" ends data.
        let (body, _) = run(&[b"a\r\n.\nMAIL FROM:<x>\r\n.\r\n"], 1000, true);
        assert_eq!(body, Err(BodyProblem::BareLf));
        let (body, _) = run(&[b"a\r\n.\nMAIL FROM:<x>\r\n.\r\n"], 1000, false);
        assert_eq!(body.unwrap(), b"a\r\n\r\nMAIL FROM:<x>\r\n");
        let (body, _) = run(&[b"a\n.\r\nX\r\n.\r\n"], 1000, false);
        assert_eq!(body.unwrap(), b"a\r\n.\r\nX\r\n");
    }

    #[test]
    fn limits() {
        let (body, _) = run(&[b"0123456789\r\n.\r\n"], 5, false);
        assert_eq!(body, Err(BodyProblem::TooBig));
    }

    /// The prefix reserved for the trace headers is not content: the same
    /// content follows it, and neither the size nor the limit counts it.
    #[test]
    fn a_prefix_is_kept_in_front_and_not_counted() {
        let input: &[u8] = b"a\r\n..b\nc\r\n.\r\n";
        for (prefix, hint) in [(0, 0), (7, 0), (200, 16 * 1024), (5000, 10)] {
            let mut r = DataReader::new(10, false, hint).with_prefix(prefix);
            assert_eq!(r.prefix_len(), prefix);
            let p = r.feed(input);
            assert!(p.done);
            assert_eq!(r.size(), 10, "prefix {prefix}");
            let body = r.finish().unwrap();
            assert_eq!(&body[..prefix], vec![0u8; prefix].as_slice());
            assert_eq!(&body[prefix..], b"a\r\n.b\r\nc\r\n");
            let mut r = DataReader::new(9, false, hint).with_prefix(prefix);
            r.feed(input);
            assert_eq!(r.finish(), Err(BodyProblem::TooBig));
        }
    }

    /// Long content lines (unwrapped HTML) are stored as they came, split
    /// anywhere, unless a line limit is set; the limit counts the CRLF.
    #[test]
    fn long_lines_are_accepted_unless_a_limit_is_set() {
        for len in [998, 999, 3_000, 100_000] {
            let mut msg = vec![b'x'; len];
            msg.extend_from_slice(b"\r\nend\r\n.\r\n");
            let (body, _) = run(&[&msg[..len / 2], &msg[len / 2..]], 1 << 20, true);
            assert_eq!(body.unwrap(), &msg[..msg.len() - 3], "{len}");
            let (body, _) = run_limited(&[&msg], 1 << 20, false, Some(1000));
            if len + 2 <= 1000 {
                assert_eq!(body.unwrap().len(), len + 7, "{len}");
            } else {
                assert_eq!(body, Err(BodyProblem::LineTooLong), "{len}");
            }
        }
        // Without a line limit the size limit still bounds what is kept.
        let long = vec![b'x'; 100_000];
        let mut r = DataReader::new(1000, false, 0);
        assert!(!r.feed(&long).done);
        assert!(r.body.len() <= 1000);
        assert_eq!(r.size(), 100_000);
        assert!(r.feed(b"\r\n.\r\n").done);
        assert_eq!(r.finish(), Err(BodyProblem::TooBig));
    }

    /// The run-copying `feed` and the line-at-a-time oracle agree on random
    /// bodies (dots, CRs, bare LFs, long lines) cut at random places.
    #[test]
    fn fast_feed_matches_the_line_by_line_oracle() {
        let mut x: u64 = 0xD1B5_4A32_D192_ED03;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let pieces: [&[u8]; 9] = [
            b"abc",
            b"\r\n",
            b"\n",
            b".",
            b"..",
            b"\r",
            b"x",
            b"\r\n.\r\n",
            b"0123456789",
        ];
        for round in 0..3000 {
            let mut input = Vec::new();
            for _ in 0..next(60) {
                let p = pieces[next(9) as usize];
                let times = if p == b"0123456789" { next(150) + 1 } else { 1 };
                for _ in 0..times {
                    input.extend_from_slice(p);
                }
            }
            input.extend_from_slice(b"\r\n.\r\n");
            let cuts: Vec<usize> = {
                let mut c: Vec<usize> = (0..next(5))
                    .map(|_| next(input.len() as u64) as usize)
                    .collect();
                c.sort();
                c
            };
            let reject = round % 2 == 0;
            let max = if round % 7 == 0 { 200 } else { 1 << 20 };
            let max_line = if round % 3 == 0 { None } else { Some(1000) };
            let run = |by_line: bool| {
                let mut r = DataReader::new(max, reject, 0).with_max_line(max_line);
                let mut buf: Vec<u8> = Vec::new();
                let mut last = 0;
                for &c in cuts.iter().chain(std::iter::once(&input.len())) {
                    buf.extend_from_slice(&input[last..c]);
                    last = c;
                    loop {
                        let p = if by_line {
                            r.feed_by_line(&buf)
                        } else {
                            r.feed(&buf)
                        };
                        buf.drain(..p.consumed);
                        if p.done {
                            return Some((r.finish(), buf));
                        }
                        if p.consumed == 0 {
                            break;
                        }
                    }
                }
                None
            };
            assert!(
                run(false) == run(true),
                "round {round}: input of {} bytes cut at {cuts:?}",
                input.len()
            );
        }
    }

    /// The body (or its problem) and the bytes left after end of data.
    type Outcome = (Result<Vec<u8>, BodyProblem>, Vec<u8>);

    /// Feeds `input` cut at `cuts` (sorted offsets) the way the connection
    /// does: unconsumed bytes stay buffered until more arrive.
    fn feed_cut(
        input: &[u8],
        cuts: &[usize],
        by_line: bool,
        reader: impl Fn() -> DataReader,
    ) -> Option<Outcome> {
        let mut r = reader();
        let mut buf: Vec<u8> = Vec::new();
        let mut last = 0;
        for &c in cuts.iter().chain(std::iter::once(&input.len())) {
            buf.extend_from_slice(&input[last..c]);
            last = c;
            loop {
                let p = if by_line {
                    r.feed_by_line(&buf)
                } else {
                    r.feed(&buf)
                };
                buf.drain(..p.consumed);
                if p.done {
                    // What follows end of data is the next command's.
                    buf.extend_from_slice(&input[last..]);
                    return Some((r.finish(), buf));
                }
                if p.consumed == 0 {
                    break;
                }
            }
        }
        None
    }

    /// Issue 9, found by a differential fuzz: with `bare_lf = "reject"` and a
    /// line limit, a long line ended by a bare LF got `550 5.6.2` in one read
    /// and `500 5.5.2` when TCP split it. The outcome (problem or stored
    /// bytes, and what is left after end of data) must be the same for every
    /// split point, byte-at-a-time included, in both readers.
    #[test]
    fn outcome_never_depends_on_how_the_input_was_split() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let pieces: [&[u8]; 10] = [
            b"abc",
            b"\r\n",
            b"\n",
            b".",
            b"..",
            b"\r",
            b"x",
            b"\r\n.\r\n",
            b"\r\n.\n",
            b"0123456789",
        ];
        // The reported case first: a line over the limit ended by a bare LF.
        let mut inputs: Vec<(Vec<u8>, usize)> = vec![
            ([&[b'y'; 1500][..], b"\nz\r\n.\r\n"].concat(), 1000),
            (
                [&b"ok\r\n"[..], &[b'y'; 1001], b"\n.\r\nz\r\n.\r\n"].concat(),
                1000,
            ),
        ];
        for _ in 0..1500 {
            let mut input = Vec::new();
            for _ in 0..next(25) {
                let p = pieces[next(10) as usize];
                let times = if p == b"0123456789" { next(4) + 1 } else { 1 };
                for _ in 0..times {
                    input.extend_from_slice(p);
                }
            }
            input.extend_from_slice(b"\r\n.\r\nQUIT\r\n");
            inputs.push((input, 8 + next(40) as usize));
        }
        for (n, (input, max_line)) in inputs.iter().enumerate() {
            for reject in [true, false] {
                let max = if n % 5 == 4 { 60 } else { 1 << 20 };
                let reader = || DataReader::new(max, reject, 0).with_max_line(Some(*max_line));
                let whole = feed_cut(input, &[], false, reader);
                assert!(whole.is_some(), "input {n} has an end of data");
                let bytewise: Vec<usize> = (1..input.len()).collect();
                for by_line in [false, true] {
                    let mut splits: Vec<Vec<usize>> = (1..input.len()).map(|i| vec![i]).collect();
                    splits.push(bytewise.clone());
                    for cuts in splits {
                        let got = feed_cut(input, &cuts, by_line, reader);
                        assert!(
                            got == whole,
                            "input {n} ({:?}), reject {reject}, line limit {max_line}, by_line {by_line}: split at {:?} gave {:?}, one piece {:?}",
                            String::from_utf8_lossy(input),
                            if cuts.len() > 1 {
                                "every byte".to_string()
                            } else {
                                format!("{cuts:?}")
                            },
                            got.as_ref().map(|g| &g.0),
                            whole.as_ref().map(|w| &w.0),
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn dot_then_stray_cr() {
        let (body, _) = run(&[b".\rx\r\n.\r\n"], 100, false);
        assert_eq!(body.unwrap(), b"\rx\r\n");
    }
}
