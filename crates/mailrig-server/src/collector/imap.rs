//! The IMAP side of a collector: the few commands a fetching connector
//! (fetchmail, Exchange's POP3/IMAP connectors) sends — LOGIN, SELECT INBOX,
//! UID SEARCH ALL, UID FETCH (BODY.PEEK[]), UID STORE +FLAGS.SILENT
//! (\Deleted), EXPUNGE, LOGOUT — over plain TCP.
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
    current: Response,
    /// Bytes of a literal still to come.
    literal: Option<usize>,
}

impl Responses {
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete response, `Ok(None)` when more bytes are needed.
    pub fn next_response(&mut self) -> Result<Option<Response>, String> {
        loop {
            if let Some(n) = self.literal {
                if self.buf.len() < n {
                    return Ok(None);
                }
                let rest = self.buf.split_off(n);
                self.current
                    .literals
                    .push(std::mem::replace(&mut self.buf, rest));
                self.literal = None;
            }
            let Some(end) = memchr::memchr(b'\n', &self.buf) else {
                return Ok(None);
            };
            let rest = self.buf.split_off(end + 1);
            let line = std::mem::replace(&mut self.buf, rest);
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\r', '\n']);
            self.current.text.push_str(line);
            match literal_size(line) {
                Some(n) if n > MAX_LITERAL => {
                    return Err(format!(
                        "the server announced a literal of {n} bytes (at most {MAX_LITERAL})"
                    ));
                }
                Some(n) => self.literal = Some(n),
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

/// `(uid, body)` of a `* n FETCH (UID u BODY[] {N})` response.
pub fn fetched_body(r: &Response) -> Option<(u32, &[u8])> {
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
    if !upper.contains("BODY[]") {
        return None;
    }
    Some((uid, r.literals.first()?.as_slice()))
}

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

/// A logged-in IMAP connection with INBOX selected.
pub struct ImapFetcher {
    tcp: TcpStream,
    responses: Responses,
    read_buf: Vec<u8>,
    tag: u32,
    limit: Duration,
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

    /// The whole message with this UID (without setting `\Seen`).
    pub async fn fetch(&mut self, uid: u32) -> Result<Vec<u8>, String> {
        let untagged = self
            .run(&format!("UID FETCH {uid} (BODY.PEEK[])"), "UID FETCH")
            .await?;
        untagged
            .iter()
            .filter_map(fetched_body)
            .find(|(u, _)| *u == uid)
            .map(|(_, b)| b.to_vec())
            .ok_or_else(|| format!("UID FETCH {uid}: the server sent no BODY[] for it"))
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

    /// Sends one command; its untagged responses once it ended in OK.
    async fn run(&mut self, command: &str, what: &str) -> Result<Vec<Response>, String> {
        self.tag += 1;
        let tag = format!("c{}", self.tag);
        let line = format!("{tag} {command}\r\n");
        tokio::time::timeout(self.limit, self.tcp.write_all(line.as_bytes()))
            .await
            .map_err(|_| format!("IMAP {what}: timed out sending"))?
            .map_err(|e| format!("IMAP {what}: {e}"))?;
        let mut untagged = Vec::new();
        loop {
            let r = self
                .response()
                .await
                .map_err(|e| format!("IMAP {what}: {e}"))?;
            if let Some(status) = r.text.strip_prefix(&format!("{tag} ")) {
                return if status
                    .get(..2)
                    .is_some_and(|w| w.eq_ignore_ascii_case("OK"))
                {
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
    fn a_literal_is_taken_out_of_its_line_whatever_the_chunks() {
        let wire = b"* 1 FETCH (UID 7 BODY[] {12}\r\nSubject: x\r\n)\r\nc3 OK done\r\n";
        let whole = all(wire);
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].text, "* 1 FETCH (UID 7 BODY[] {12})");
        assert_eq!(fetched_body(&whole[0]), Some((7, &b"Subject: x\r\n"[..])));
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
        assert_eq!(fetched_body(&r("* 1 FETCH (UID 7 FLAGS (\\Seen))")), None);
        assert_eq!(fetched_body(&r("* 1 FETCH (UID 7 BODY[] {3})")), None);
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
