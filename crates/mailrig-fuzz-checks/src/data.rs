//! The SMTP DATA reader (`mailrig_server::smtp::data`) cut at arbitrary read
//! boundaries: the result (body or problem, and the bytes left after the end
//! of data) must not depend on where reads end, and must agree with
//! [`reference`], a decoder written from RFC 5321 §4.5.2 with no state across
//! reads at all.
//!
//! Flags byte: bit 0 = reject bare LF (`bare_lf = "reject"`), bits 1-2 choose
//! the size limit (1 MiB, 64, 1000, 2500 bytes), bit 3 sets a content-line limit
//! of 1000 bytes (`[limits] max_line_length`; by default any length is accepted).

use mailrig_server::smtp::data::{BodyProblem, DataReader};

use crate::split::Split;

/// What one reading of a stream gave: `None` if the end of data never came.
pub type Outcome = Option<(Result<Vec<u8>, BodyProblem>, usize, Vec<u8>)>;

/// Feeds `reads` to a fresh reader the way the SMTP connection does: append,
/// feed until it stops consuming, keep what it left.
pub fn read(reads: &[&[u8]], max: usize, reject_bare_lf: bool, max_line: Option<usize>) -> Outcome {
    let mut r = DataReader::new(max, reject_bare_lf, 0).with_max_line(max_line);
    let mut buf: Vec<u8> = Vec::new();
    for (n, chunk) in reads.iter().enumerate() {
        buf.extend_from_slice(chunk);
        loop {
            let p = r.feed(&buf);
            assert!(
                p.consumed <= buf.len(),
                "feed consumed more than it was given"
            );
            buf.drain(..p.consumed);
            if p.done {
                // What the client sent after the end of data is left over too.
                reads[n + 1..].iter().for_each(|c| buf.extend_from_slice(c));
                let size = r.size();
                return Some((r.finish(), size, buf));
            }
            if p.consumed == 0 {
                break;
            }
        }
        // The documented contract: at most a "." or ".\r" waits for more input.
        assert!(
            buf.is_empty() || buf == b"." || buf == b".\r",
            "feed left {:?} unconsumed without finishing",
            String::from_utf8_lossy(&buf)
        );
    }
    None
}

/// What the reference decoder found: the body, its size, the problems seen
/// (in no particular order) and the bytes after the end of data.
#[derive(Debug, PartialEq, Eq)]
pub struct Reference {
    pub body: Vec<u8>,
    pub bare_lf: bool,
    pub line_too_long: bool,
    pub rest: Vec<u8>,
}

/// Line by line over the whole stream: a line that is exactly `.` CRLF right
/// after a CRLF (or at the start) ends the data; a leading dot there is
/// removed; a bare LF becomes CRLF (and is a problem when rejected); a line
/// over `max_line` bytes (counted after unstuffing, with its line end) is a
/// problem. `None` if the end of data is not in `input`.
pub fn reference(input: &[u8], reject_bare_lf: bool, max_line: Option<usize>) -> Option<Reference> {
    let mut r = Reference {
        body: Vec::new(),
        bare_lf: false,
        line_too_long: false,
        rest: Vec::new(),
    };
    let mut i = 0;
    let mut after_crlf = true;
    loop {
        let line_start = i;
        if after_crlf {
            if input[i..].starts_with(b".\r\n") {
                r.rest = input[i + 3..].to_vec();
                return Some(r);
            }
            if input.get(i) == Some(&b'.') {
                i += 1;
            }
        }
        let lf = i + memchr::memchr(b'\n', &input[i..])?;
        let had_cr = lf > line_start && input[lf - 1] == b'\r';
        if max_line.is_some_and(|m| lf + 1 - i > m) {
            r.line_too_long = true;
        }
        if had_cr {
            r.body.extend_from_slice(&input[i..=lf]);
        } else {
            r.bare_lf |= reject_bare_lf;
            r.body.extend_from_slice(&input[i..lf]);
            r.body.extend_from_slice(b"\r\n");
        }
        after_crlf = had_cr;
        i = lf + 1;
    }
}

/// The fuzz target `smtp_data`.
pub fn check(input: &[u8]) {
    let s = Split::parse(input);
    let reject = s.flags & 1 != 0;
    let max = [1 << 20, 64, 1000, 2500][usize::from((s.flags >> 1) & 3)];
    let max_line = (s.flags & 8 != 0).then_some(1000);
    let whole = read(&[s.stream], max, reject, max_line);
    let cut = read(&s.chunks(), max, reject, max_line);
    assert_eq!(
        cut, whole,
        "reads cut at {:?} give another result than one read (reject bare LF: {reject}, limit {max})",
        s.cuts
    );
    if s.stream.len() <= 4096 {
        let bytes = read(&s.bytes(), max, reject, max_line);
        assert_eq!(
            bytes, whole,
            "one byte per read gives another result than one read (reject bare LF: {reject}, limit {max})"
        );
    }
    let reference = reference(s.stream, reject, max_line);
    match (&whole, &reference) {
        (None, None) => {}
        (Some((result, size, rest)), Some(r)) => {
            assert_eq!(rest, &r.rest, "bytes after the end of data");
            assert_eq!(
                *size,
                r.body.len(),
                "size() is not the unstuffed body's length"
            );
            let too_big = r.body.len() > max;
            match result {
                Ok(body) => {
                    assert!(
                        !too_big && !r.bare_lf && !r.line_too_long,
                        "accepted a body the reference refuses: {r:?}"
                    );
                    assert_eq!(body, &r.body, "body differs from the reference decoder's");
                }
                Err(p) => {
                    let seen = match p {
                        BodyProblem::TooBig => too_big,
                        BodyProblem::BareLf => r.bare_lf && !too_big,
                        BodyProblem::LineTooLong => r.line_too_long && !too_big && !r.bare_lf,
                    };
                    assert!(
                        seen,
                        "reported {p:?}; the reference saw too big: {too_big}, bare LF: {}, line too long: {}",
                        r.bare_lf, r.line_too_long
                    );
                }
            }
        }
        _ => panic!(
            "end of data found by the reader: {}, by the reference: {}",
            whole.is_some(),
            reference.is_some()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_decodes_the_rfc_cases() {
        let r = reference(b"a\r\n..b\r\n.\nc\n.\r\n.\r\nQUIT\r\n", false, None).unwrap();
        assert_eq!(r.body, b"a\r\n.b\r\n\r\nc\r\n.\r\n");
        assert_eq!(r.rest, b"QUIT\r\n");
        assert!(reference(b"a\n.\r\n", false, None).is_none());
        assert!(reference(b"x\nb\r\n.\r\n", true, None).unwrap().bare_lf);
    }

    #[test]
    fn check_accepts_plain_messages() {
        check(&Split::encode(
            0,
            b"Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n",
        ));
        check(&Split::encode(1, b"a\nb\r\n.\r\n"));
        // A line over the limit that ends in a bare LF: the bare LF is
        // reported, however the reads are cut (the bug the fuzzer found).
        let mut long = vec![b'y'; 1500];
        long.extend_from_slice(b"\nz\r\n.\r\n");
        check(&Split::encode(1 | 8, &long));
    }
}
