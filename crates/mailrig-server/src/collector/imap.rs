//! The IMAP side of a collector: the few commands a fetching connector
//! (fetchmail, Exchange's POP3/IMAP connectors) sends — LOGIN, SELECT INBOX,
//! UID SEARCH ALL, UID FETCH (BODY.PEEK[]), UID STORE +FLAGS.SILENT
//! (\Deleted), EXPUNGE, LOGOUT — over plain TCP.
//!
//! Messages are fetched in batches: one `UID FETCH` names up to
//! [`FETCH_BATCH`] UIDs (as ranges where they run on), and each message is
//! handed to the caller as its response arrives ([`ImapFetcher::next_fetched`]),
//! so a batch costs one round trip and holds at most one message (plus what
//! one read brought) in memory.
//!
//! The response reading is apart from the socket: [`Responses`] assembles
//! lines with their literals from bytes fed to it, and the parsers
//! ([`uidvalidity`], [`search_uids`], [`fetched_body`]) read one response
//! each; [`ImapFetcher`] only writes commands and feeds what comes back.
//! Every wait is bounded by the caller's limit; a server's odd answer is an
//! error naming the command, never a panic.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest literal accepted from the server (a fetched message).
const MAX_LITERAL: usize = 64 * 1024 * 1024;

/// Longest response line (literals aside) and most literal bytes in one
/// response accepted from the server: a peer that never sends CRLF, or
/// chains literals without end, gets an error, not all of our memory.
const MAX_LINE: usize = 1024 * 1024;
const MAX_RESPONSE: usize = MAX_LITERAL + MAX_LINE;

/// One response: its text line(s) with each literal's bytes taken out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    /// The line text, literals replaced by `{N}` as sent.
    pub text: String,
    pub literals: Vec<Vec<u8>>,
}

/// Assembles responses from bytes as they arrive.
#[derive(Debug, Default)]
pub struct Responses {
    buf: Vec<u8>,
    /// Where the unread bytes of `buf` begin (what is before was taken).
    pos: usize,
    current: Response,
    /// Bytes of a literal still to come.
    literal: Option<usize>,
}

impl Responses {
    pub fn feed(&mut self, bytes: &[u8]) {
        // Taken bytes are dropped when nothing follows them or when they
        // are many, so that taking a response never moves the rest.
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos >= 64 * 1024 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete response, `Ok(None)` when more bytes are needed.
    pub fn next_response(&mut self) -> Result<Option<Response>, String> {
        loop {
            if let Some(n) = self.literal {
                if self.buf.len() - self.pos < n {
                    return Ok(None);
                }
                let end = self.pos + n;
                self.current.literals.push(self.buf[self.pos..end].to_vec());
                self.pos = end;
                self.literal = None;
            }
            let Some(len) = memchr::memchr(b'\n', &self.buf[self.pos..]) else {
                if self.buf.len() - self.pos > MAX_LINE {
                    return Err(format!(
                        "the server sent a response line of more than {MAX_LINE} bytes without CRLF"
                    ));
                }
                return Ok(None);
            };
            let end = self.pos + len + 1;
            let line = String::from_utf8_lossy(&self.buf[self.pos..end]);
            let line = line.trim_end_matches(['\r', '\n']).to_string();
            self.pos = end;
            self.current.text.push_str(&line);
            match literal_size(&line) {
                Some(n) if n > MAX_LITERAL => {
                    return Err(format!(
                        "the server announced a literal of {n} bytes (at most {MAX_LITERAL})"
                    ));
                }
                Some(n) => {
                    let taken: usize = self.current.literals.iter().map(Vec::len).sum();
                    if taken + n + self.current.text.len() > MAX_RESPONSE {
                        return Err(format!(
                            "the server sent a response of more than {MAX_RESPONSE} bytes"
                        ));
                    }
                    self.literal = Some(n);
                }
                None => return Ok(Some(std::mem::take(&mut self.current))),
            }
        }
    }
}

/// `N` of a line ending in `{N}` (or `{N+}`); a number too large for
/// memory is `usize::MAX`, which the size check refuses.
fn literal_size(line: &str) -> Option<usize> {
    let inner = line.strip_suffix('}')?;
    let open = inner.rfind('{')?;
    let digits = inner[open + 1..].trim_end_matches('+');
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse().unwrap_or(usize::MAX))
}

/// `UIDVALIDITY` of a `* OK [UIDVALIDITY n]` response.
pub fn uidvalidity(r: &Response) -> Option<u32> {
    let at = r.text.find("[UIDVALIDITY ")?;
    let rest = &r.text[at + "[UIDVALIDITY ".len()..];
    rest.split(']').next()?.trim().parse().ok()
}

/// The UIDs of a `* SEARCH ...` response (`None` for another response).
pub fn search_uids(r: &Response) -> Option<Vec<u32>> {
    let rest = r.text.strip_prefix("* SEARCH")?;
    Some(
        rest.split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect(),
    )
}

/// `(uid, body)` of a `* n FETCH (UID u BODY[] {N})` response, the body
/// taken out of it (`None` for another response: a FETCH of flags only, a
/// body without its literal).
pub fn fetched_body(mut r: Response) -> Option<(u32, Vec<u8>)> {
    let upper = r.text.to_ascii_uppercase();
    if !upper.starts_with("* ") || !upper.contains(" FETCH (") {
        return None;
    }
    let at = upper.find("UID ")?;
    let uid = upper[at + 4..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    if !upper.contains("BODY[]") || r.literals.is_empty() {
        return None;
    }
    Some((uid, r.literals.swap_remove(0)))
}

/// A UID set for a command: ascending runs written as ranges
/// (`1:3,7,9:10`).
pub fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let first = sorted[i];
        let mut last = first;
        while i + 1 < sorted.len() && sorted[i + 1] == last + 1 {
            i += 1;
            last = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if first == last {
            out.push_str(&first.to_string());
        } else {
            out.push_str(&format!("{first}:{last}"));
        }
        i += 1;
    }
    out
}

/// At most this many UIDs in one `UID FETCH` (one round trip each batch;
/// the command line stays short whatever the UIDs).
pub const FETCH_BATCH: usize = 256;

/// An IMAP string argument: quoted, with `\` and `"` escaped.
fn quoted(s: &str) -> Result<String, String> {
    if s.contains(['\r', '\n', '\0']) {
        return Err("a login or password with a line break cannot be sent".into());
    }
    Ok(format!(
        "\"{}\"",
        s.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// Whether a tagged status is OK.
fn is_ok(status: &str) -> bool {
    status
        .get(..2)
        .is_some_and(|w| w.eq_ignore_ascii_case("OK"))
}

/// A logged-in IMAP connection with INBOX selected.
pub struct ImapFetcher {
    tcp: TcpStream,
    responses: Responses,
    read_buf: Vec<u8>,
    tag: u32,
    limit: Duration,
    /// The tag of a `UID FETCH` whose responses are still coming.
    fetching: Option<String>,
    /// INBOX's UIDVALIDITY (0 if the server named none).
    pub uidvalidity: u32,
}

impl ImapFetcher {
    /// Connects, reads the greeting, logs in and selects INBOX.
    pub async fn connect(
        addr: SocketAddr,
        login: &str,
        password: &str,
        limit: Duration,
    ) -> Result<ImapFetcher, String> {
        let tcp = tokio::time::timeout(limit, TcpStream::connect(addr))
            .await
            .map_err(|_| format!("IMAP connect to {addr}: timed out"))?
            .map_err(|e| format!("IMAP connect to {addr}: {e}"))?;
        let mut f = ImapFetcher {
            tcp,
            responses: Responses::default(),
            read_buf: vec![0u8; 64 * 1024],
            tag: 0,
            limit,
            fetching: None,
            uidvalidity: 0,
        };
        let greeting = f.response().await?;
        if !greeting.text.starts_with("* OK") && !greeting.text.starts_with("* PREAUTH") {
            return Err(format!("IMAP greeting: {}", greeting.text));
        }
        let cmd = format!("LOGIN {} {}", quoted(login)?, quoted(password)?);
        f.run(&cmd, "LOGIN").await?;
        let selected = f.run("SELECT INBOX", "SELECT INBOX").await?;
        f.uidvalidity = selected.iter().find_map(uidvalidity).unwrap_or(0);
        Ok(f)
    }

    /// Every UID in INBOX.
    pub async fn uids(&mut self) -> Result<Vec<u32>, String> {
        let untagged = self.run("UID SEARCH ALL", "UID SEARCH ALL").await?;
        Ok(untagged.iter().filter_map(search_uids).flatten().collect())
    }

    /// Asks for the whole messages with these UIDs (without setting
    /// `\Seen`), at most [`FETCH_BATCH`] of them; read them with
    /// [`ImapFetcher::next_fetched`] until it says `None`.
    pub async fn start_fetch(&mut self, uids: &[u32]) -> Result<(), String> {
        if self.fetching.is_some() {
            return Err("UID FETCH: the previous fetch was not read to its end".into());
        }
        let tag = self
            .send(
                &format!("UID FETCH {} (BODY.PEEK[])", uid_set(uids)),
                "UID FETCH",
            )
            .await?;
        self.fetching = Some(tag);
        Ok(())
    }

    /// The next message of the fetch [`ImapFetcher::start_fetch`] began, as
    /// `(uid, body)`; `None` once the server ended it with OK. Responses
    /// without a body (flag updates, EXISTS) are passed over.
    pub async fn next_fetched(&mut self) -> Result<Option<(u32, Vec<u8>)>, String> {
        let Some(tag) = self.fetching.clone() else {
            return Ok(None);
        };
        loop {
            let r = self
                .response()
                .await
                .map_err(|e| format!("IMAP UID FETCH: {e}"))?;
            if let Some(status) = r.text.strip_prefix(&tag).and_then(|s| s.strip_prefix(' ')) {
                self.fetching = None;
                return if is_ok(status) {
                    Ok(None)
                } else {
                    Err(format!("IMAP UID FETCH refused: {status}"))
                };
            }
            if let Some(fetched) = fetched_body(r) {
                return Ok(Some(fetched));
            }
        }
    }

    /// Flags these UIDs `\Deleted` and expunges them.
    pub async fn delete(&mut self, uids: &[u32]) -> Result<(), String> {
        if uids.is_empty() {
            return Ok(());
        }
        let set: Vec<String> = uids.iter().map(u32::to_string).collect();
        self.run(
            &format!("UID STORE {} +FLAGS.SILENT (\\Deleted)", set.join(",")),
            "UID STORE",
        )
        .await?;
        self.run("EXPUNGE", "EXPUNGE").await?;
        Ok(())
    }

    pub async fn logout(mut self) -> Result<(), String> {
        // The server answers BYE and the tagged OK, or just closes.
        let _ = self.run("LOGOUT", "LOGOUT").await;
        Ok(())
    }

    /// Writes one command; its tag.
    async fn send(&mut self, command: &str, what: &str) -> Result<String, String> {
        self.tag += 1;
        let tag = format!("c{}", self.tag);
        let line = format!("{tag} {command}\r\n");
        tokio::time::timeout(self.limit, self.tcp.write_all(line.as_bytes()))
            .await
            .map_err(|_| format!("IMAP {what}: timed out sending"))?
            .map_err(|e| format!("IMAP {what}: {e}"))?;
        Ok(tag)
    }

    /// Sends one command; its untagged responses once it ended in OK.
    async fn run(&mut self, command: &str, what: &str) -> Result<Vec<Response>, String> {
        let tag = self.send(command, what).await?;
        let mut untagged = Vec::new();
        loop {
            let r = self
                .response()
                .await
                .map_err(|e| format!("IMAP {what}: {e}"))?;
            if let Some(status) = r.text.strip_prefix(&tag).and_then(|s| s.strip_prefix(' ')) {
                return if is_ok(status) {
                    Ok(untagged)
                } else {
                    Err(format!("IMAP {what} refused: {status}"))
                };
            }
            untagged.push(r);
        }
    }

    /// The next response, reading as needed (bounded by the limit).
    async fn response(&mut self) -> Result<Response, String> {
        let deadline = tokio::time::Instant::now() + self.limit;
        loop {
            if let Some(r) = self.responses.next_response()? {
                return Ok(r);
            }
            let n = tokio::time::timeout_at(deadline, self.tcp.read(&mut self.read_buf))
                .await
                .map_err(|_| "no answer in time".to_string())?
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("the server closed the connection".into());
            }
            self.responses.feed(&self.read_buf[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(bytes: &[u8]) -> Vec<Response> {
        let mut r = Responses::default();
        r.feed(bytes);
        let mut out = Vec::new();
        while let Some(x) = r.next_response().unwrap() {
            out.push(x);
        }
        out
    }

    #[test]
    fn a_line_without_end_or_literals_without_end_are_errors_not_memory() {
        let mut r = Responses::default();
        let chunk = vec![b'x'; 64 * 1024];
        let mut failed = None;
        for _ in 0..32 {
            r.feed(&chunk);
            if let Err(e) = r.next_response() {
                failed = Some(e);
                break;
            }
        }
        let e = failed.expect("a line of 2 MiB without CRLF is refused");
        assert!(e.contains("without CRLF"), "{e}");

        let mut r = Responses::default();
        let big = MAX_LITERAL;
        let mut failed = None;
        r.feed(format!("* 1 FETCH (BODY[] {{{big}}}\r\n").as_bytes());
        for _ in 0..4 {
            match r.next_response() {
                Err(e) => {
                    failed = Some(e);
                    break;
                }
                Ok(_) => {
                    // The literal's bytes, then another literal announced.
                    r.feed(&vec![b'y'; big]);
                    r.feed(format!(" X {{{big}}}\r\n").as_bytes());
                }
            }
        }
        let e = failed.expect("a chain of 64 MiB literals is refused");
        assert!(e.contains("response of more than"), "{e}");
    }

    #[test]
    fn a_literal_is_taken_out_of_its_line_whatever_the_chunks() {
        let wire = b"* 1 FETCH (UID 7 BODY[] {12}\r\nSubject: x\r\n)\r\nc3 OK done\r\n";
        let whole = all(wire);
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].text, "* 1 FETCH (UID 7 BODY[] {12})");
        assert_eq!(
            fetched_body(whole[0].clone()),
            Some((7, b"Subject: x\r\n".to_vec()))
        );
        // Byte by byte: the same responses.
        let mut r = Responses::default();
        let mut got = Vec::new();
        for b in wire {
            r.feed(&[*b]);
            while let Some(x) = r.next_response().unwrap() {
                got.push(x);
            }
        }
        assert_eq!(got, whole);
    }

    #[test]
    fn the_parsers_read_what_they_are_for_and_nothing_else() {
        let r = |t: &str| Response {
            text: t.into(),
            literals: Vec::new(),
        };
        assert_eq!(
            uidvalidity(&r("* OK [UIDVALIDITY 1733]  UIDs valid")),
            Some(1733)
        );
        assert_eq!(uidvalidity(&r("* OK [UIDNEXT 4]")), None);
        assert_eq!(search_uids(&r("* SEARCH 2 4 9")), Some(vec![2, 4, 9]));
        assert_eq!(search_uids(&r("* SEARCH")), Some(vec![]));
        assert_eq!(search_uids(&r("* 3 EXISTS")), None);
        // A FETCH without the body, or without its literal, is not a body.
        assert_eq!(fetched_body(r("* 1 FETCH (UID 7 FLAGS (\\Seen))")), None);
        assert_eq!(fetched_body(r("* 1 FETCH (UID 7 BODY[] {3})")), None);
    }

    #[test]
    fn a_batch_of_bodies_in_one_read_comes_out_in_order_and_whole() {
        let mut wire = Vec::new();
        for uid in 1..=50u32 {
            let body = format!("Subject: m{uid}\r\n\r\n{}\r\n", "x".repeat(uid as usize));
            wire.extend_from_slice(
                format!("* {uid} FETCH (UID {uid} BODY[] {{{}}}\r\n", body.len()).as_bytes(),
            );
            wire.extend_from_slice(body.as_bytes());
            wire.extend_from_slice(b")\r\n");
            if uid == 20 {
                // A flag update in between is no body.
                wire.extend_from_slice(b"* 3 FETCH (FLAGS (\\Seen))\r\n");
            }
        }
        wire.extend_from_slice(b"c9 OK UID FETCH completed\r\n");
        // Fed in uneven chunks, the last response the tagged OK.
        let mut r = Responses::default();
        let mut got = Vec::new();
        for chunk in wire.chunks(777) {
            r.feed(chunk);
            while let Some(x) = r.next_response().unwrap() {
                got.push(x);
            }
        }
        assert_eq!(got.len(), 52);
        assert_eq!(got[51].text, "c9 OK UID FETCH completed");
        let bodies: Vec<(u32, Vec<u8>)> = got.into_iter().filter_map(fetched_body).collect();
        assert_eq!(bodies.len(), 50);
        for (i, (uid, body)) in bodies.iter().enumerate() {
            assert_eq!(*uid, i as u32 + 1);
            let want = format!("Subject: m{uid}\r\n\r\n{}\r\n", "x".repeat(*uid as usize));
            assert_eq!(body, want.as_bytes());
        }
    }

    #[test]
    fn uid_sets_write_runs_as_ranges() {
        assert_eq!(uid_set(&[]), "");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[10, 9, 3, 1, 2, 2]), "1:3,9:10");
        assert_eq!(
            uid_set(&[u32::MAX - 1, u32::MAX]),
            format!("{}:{}", u32::MAX - 1, u32::MAX)
        );
    }

    #[test]
    fn a_huge_literal_is_refused_not_buffered() {
        let mut r = Responses::default();
        r.feed(b"* 1 FETCH (BODY[] {99999999999}\r\n");
        assert!(r.next_response().unwrap_err().contains("literal"));
        let mut r = Responses::default();
        r.feed(b"* 1 FETCH (BODY[] {999999999999999999999999}\r\n");
        assert!(r.next_response().unwrap_err().contains("literal"));
        assert_eq!(literal_size("x {5+}"), Some(5));
        assert_eq!(literal_size("x {}"), None);
        assert_eq!(literal_size("x {a1}"), None);
        assert!(quoted("a\r\nb").is_err());
        assert_eq!(quoted("p\"w\\").unwrap(), "\"p\\\"w\\\\\"");
    }
}
