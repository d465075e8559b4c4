//! The messages a load run sends: small real headers (with the run's tracking `Message-ID` and
//! `X-Mailrig-Load`), then filler text up to the requested size.
//!
//! Building a message must cost next to nothing next to sending it, so the filler for each size is made once
//! and each message copies a tail of it. The filler never has a line starting with `.` and its lines are
//! short, so no dot-stuffing is ever needed and the content can go on the wire as is.

use crate::config::SizeMix;

const FILLER_LINE: &[u8] =
    b"mailrig load filler: the quick brown fox jumps over the lazy dog 0123456789";

/// Makes the content of each message of a run.
#[derive(Debug, Clone)]
pub struct MessageFactory {
    run_id: String,
    fixed_headers: Vec<u8>,
    sizes: SizeMix,
    /// For each size in the mix: filler of at least that many bytes, lines ending in CRLF.
    fillers: Vec<Vec<u8>>,
}

impl MessageFactory {
    /// A factory for run `run_id`, sender `from`, with the `Date:` of `unix_secs`.
    pub fn new(run_id: &str, from: &str, sizes: SizeMix, unix_secs: u64) -> MessageFactory {
        let fixed_headers = format!(
            "From: <{from}>\r\nDate: {}\r\nSubject: mailrig load {run_id}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n",
            rfc5322_date(unix_secs)
        )
        .into_bytes();
        let fillers = sizes
            .entries
            .iter()
            .map(|&(size, _)| filler(size))
            .collect();
        MessageFactory {
            run_id: run_id.to_string(),
            fixed_headers,
            sizes,
            fillers,
        }
    }

    /// Writes the content of message `seq` (headers and body, CRLF lines, without the final `.`) into `out`,
    /// replacing what was there. `to` is the address for the `To:` header.
    pub fn write(&self, seq: u64, to: &str, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.fixed_headers);
        out.extend_from_slice(b"To: <");
        out.extend_from_slice(to.as_bytes());
        out.extend_from_slice(b">\r\nMessage-ID: <load-");
        out.extend_from_slice(self.run_id.as_bytes());
        out.push(b'-');
        out.extend_from_slice(seq.to_string().as_bytes());
        out.extend_from_slice(b"@mailrig>\r\nX-Mailrig-Load: ");
        out.extend_from_slice(self.run_id.as_bytes());
        out.push(b' ');
        out.extend_from_slice(seq.to_string().as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        let i = self.sizes.pick(seq);
        let target = self.sizes.entries[i].0;
        let filler = &self.fillers[i];
        let want = target.saturating_sub(out.len()).min(filler.len());
        let mut from = filler.len() - want;
        // Never start the body with the LF of a CRLF pair.
        if filler.get(from) == Some(&b'\n') {
            from = from.saturating_sub(1);
        }
        out.extend_from_slice(&filler[from..]);
    }
}

/// At least `size` bytes of filler lines, ending with CRLF.
fn filler(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + FILLER_LINE.len() + 2);
    while out.len() < size {
        out.extend_from_slice(FILLER_LINE);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// `Thu, 01 Jan 1970 00:00:00 +0000` for a Unix time.
pub fn rfc5322_date(unix_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_the_requested_size_and_tracking_headers() {
        let f = MessageFactory::new("run1", "f@x", SizeMix::parse("1k:1,4k:1").unwrap(), 0);
        let mut out = Vec::new();
        for seq in 0..200 {
            f.write(seq, "someone@example.test", &mut out);
            let text = String::from_utf8(out.clone()).unwrap();
            assert!(
                out.len() == 1024 || out.len() == 4096 || out.len() == 1025 || out.len() == 4097,
                "{}",
                out.len()
            );
            assert!(text.contains(&format!("\r\nMessage-ID: <load-run1-{seq}@mailrig>\r\n")));
            assert!(text.contains(&format!("\r\nX-Mailrig-Load: run1 {seq}\r\n")));
            assert!(text.ends_with("\r\n"));
            assert!(!text.contains("\r\n."), "no line may start with a dot");
            assert!(
                text.split("\r\n")
                    .all(|l| l.len() <= 998 && !l.contains('\n'))
            );
        }
    }

    #[test]
    fn tiny_sizes_still_make_a_valid_message() {
        let f = MessageFactory::new("r", "f@x", SizeMix::fixed(10), 0);
        let mut out = Vec::new();
        f.write(1, "t@x", &mut out);
        assert!(out.ends_with(b"\r\n\r\n"));
    }

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_767_225_599),
            "Wed, 31 Dec 2025 23:59:59 +0000"
        );
    }
}
