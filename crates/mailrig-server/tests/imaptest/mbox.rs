//! The messages a script starts from (`NAME.mbox` or `default.mbox`), served
//! in order and from the top again when they run out, as imaptest does. Each
//! message keeps the date of its `From ` line as its APPEND date, and every
//! line up to the next `From ` line (the blank one before it too), with CRLF
//! line ends.

use std::path::Path;

pub struct Message {
    /// The message with CRLF line ends.
    pub raw: Vec<u8>,
    /// `"22-Feb-2008 23:00:00 +0200"`, quotes included, when the `From ` line has a date.
    pub date: Option<String>,
}

pub struct Mbox {
    messages: Vec<Message>,
    next: usize,
}

impl Mbox {
    pub fn open(path: &Path) -> Result<Mbox, String> {
        let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Mbox {
            messages: split(&text),
            next: 0,
        })
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// The next message, wrapping around at the end.
    pub fn next_message(&mut self) -> Option<&Message> {
        if self.messages.is_empty() {
            return None;
        }
        let m = &self.messages[self.next % self.messages.len()];
        self.next += 1;
        Some(m)
    }
}

fn split(text: &[u8]) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::new();
    for line in text.split_inclusive(|&b| b == b'\n') {
        // Only a `From ` line with a date separates messages.
        let date = line
            .strip_prefix(b"From ")
            .and_then(|from| from_line_date(&String::from_utf8_lossy(from)));
        if date.is_some() {
            out.push(Message {
                raw: Vec::new(),
                date,
            });
            continue;
        }
        if let Some(m) = out.last_mut() {
            let l = line.strip_suffix(b"\n").unwrap_or(line);
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            m.raw.extend_from_slice(l);
            m.raw.extend_from_slice(b"\r\n");
        }
    }
    // Like imaptest, the blank line before the next `From ` line stays part
    // of the message.
    out
}

/// `sender Fri Feb 22 23:00:00 2008 +0200` → `"22-Feb-2008 23:00:00 +0200"`.
fn from_line_date(rest: &str) -> Option<String> {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let words: Vec<&str> = rest.split_whitespace().collect();
    let at = words.iter().position(|w| DAYS.contains(w))?;
    let [_, month, day, time, year, rest @ ..] = &words[at..] else {
        return None;
    };
    let zone = rest.first().copied().unwrap_or("+0000");
    let day: u32 = day.parse().ok()?;
    Some(format!("\"{day:02}-{month}-{year} {time} {zone}\""))
}
