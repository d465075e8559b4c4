//! How a fuzz input of the byte-stream targets chooses its read boundaries.
//!
//! Layout: byte 0 holds flags (meaning per target), byte 1 the number of cuts
//! (low 3 bits, so 0..=7), then two bytes (little-endian) per cut; the rest is
//! the stream itself. Cut positions are taken modulo the stream length + 1,
//! sorted and de-duplicated, so every input is valid. A short input is all
//! stream with flags 0 and no cuts.

/// A decoded input: flags, the stream, and where reads end.
#[derive(Debug, Clone)]
pub struct Split<'a> {
    pub flags: u8,
    pub stream: &'a [u8],
    pub cuts: Vec<usize>,
}

impl<'a> Split<'a> {
    pub fn parse(input: &'a [u8]) -> Split<'a> {
        let (flags, n) = match input {
            [f, n, ..] => (*f, usize::from(n & 7)),
            _ => {
                return Split {
                    flags: 0,
                    stream: input,
                    cuts: Vec::new(),
                };
            }
        };
        let header = (2 + 2 * n).min(input.len());
        let stream = &input[header..];
        let mut cuts: Vec<usize> = input[2..header]
            .chunks_exact(2)
            .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])) % (stream.len() + 1))
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        Split {
            flags,
            stream,
            cuts,
        }
    }

    /// The stream as the reads the cuts describe (empty reads left out).
    pub fn chunks(&self) -> Vec<&'a [u8]> {
        let mut out = Vec::new();
        let mut last = 0;
        for &c in self.cuts.iter().chain(std::iter::once(&self.stream.len())) {
            if c > last {
                out.push(&self.stream[last..c]);
                last = c;
            }
        }
        out
    }

    /// The stream one byte per read.
    pub fn bytes(&self) -> Vec<&'a [u8]> {
        self.stream.chunks(1).collect()
    }

    /// The header that makes `parse` give back `flags`, no cuts and `stream`.
    pub fn encode(flags: u8, stream: &[u8]) -> Vec<u8> {
        let mut v = vec![flags, 0];
        v.extend_from_slice(stream);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_are_clamped_sorted_and_cover_the_stream() {
        let s = Split::parse(&[1, 3, 9, 0, 2, 0, 200, 200, b'a', b'b', b'c', b'd']);
        assert_eq!(s.flags, 1);
        assert_eq!(s.stream, b"abcd");
        assert_eq!(s.chunks().concat(), b"abcd");
        assert!(s.chunks().iter().all(|c| !c.is_empty()));
        assert_eq!(
            Split::parse(&Split::encode(5, b"xy")).chunks(),
            vec![&b"xy"[..]]
        );
        assert_eq!(Split::parse(b"z").stream, b"z");
    }
}
