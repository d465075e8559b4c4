//! One client connection of a script run: whole responses (literals
//! included) in, command bytes out, and the message count the connection has
//! been told about (for `$N` relative sequences).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Conn {
    io: BufReader<TcpStream>,
    pub greeting: Vec<u8>,
    /// Messages in the selected mailbox, as far as this connection was told.
    pub exists: u32,
    pub closed: bool,
}

/// A response received: an untagged line, a continuation, or a tagged reply.
#[derive(Debug)]
pub enum Response {
    /// `* ...` without the `* `.
    Untagged(Vec<u8>),
    Continue,
    /// The tag and the rest after it.
    Tagged(String, Vec<u8>),
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Result<Conn, String> {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let mut c = Conn {
            io: BufReader::new(tcp),
            greeting: Vec::new(),
            exists: 0,
            closed: false,
        };
        c.greeting = c.read_raw().await?.ok_or("closed before the greeting")?;
        Ok(c)
    }

    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        let w = self.io.get_mut();
        w.write_all(bytes)
            .await
            .map_err(|e| format!("write: {e}"))?;
        w.flush().await.map_err(|e| format!("flush: {e}"))
    }

    /// One response with its literals; `None` at end of stream.
    async fn read_raw(&mut self) -> Result<Option<Vec<u8>>, String> {
        let mut out = Vec::new();
        loop {
            let mut buf = Vec::new();
            let n = tokio::time::timeout(TIMEOUT, self.io.read_until(b'\n', &mut buf))
                .await
                .map_err(|_| "timed out waiting for the server".to_string())?
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                self.closed = true;
                return Ok((!out.is_empty()).then_some(out));
            }
            out.extend_from_slice(&buf);
            match literal_at_end(&buf) {
                Some(size) => {
                    let mut lit = vec![0u8; size];
                    tokio::time::timeout(TIMEOUT, self.io.read_exact(&mut lit))
                        .await
                        .map_err(|_| "timed out reading a literal".to_string())?
                        .map_err(|e| format!("read literal: {e}"))?;
                    out.extend_from_slice(&lit);
                }
                None => return Ok(Some(out)),
            }
        }
    }

    /// The next response; `None` when the server closed the connection.
    pub async fn read(&mut self) -> Result<Option<Response>, String> {
        let Some(raw) = self.read_raw().await? else {
            return Ok(None);
        };
        let line = raw.strip_suffix(b"\r\n").unwrap_or(&raw).to_vec();
        if let Some(rest) = line.strip_prefix(b"* ") {
            self.observe(rest);
            return Ok(Some(Response::Untagged(rest.to_vec())));
        }
        if line.starts_with(b"+") {
            return Ok(Some(Response::Continue));
        }
        let sp = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
        let tag = String::from_utf8_lossy(&line[..sp]).into_owned();
        let rest = line.get(sp + 1..).unwrap_or(b"").to_vec();
        Ok(Some(Response::Tagged(tag, rest)))
    }

    /// Keeps `exists` current from `n EXISTS` / `n EXPUNGE`.
    fn observe(&mut self, untagged: &[u8]) {
        let text = String::from_utf8_lossy(untagged);
        let mut words = text.split(' ');
        let (Some(n), Some(kind)) = (words.next(), words.next()) else {
            return;
        };
        let Ok(n) = n.parse::<u32>() else { return };
        if kind.eq_ignore_ascii_case("exists") {
            self.exists = n;
        } else if kind.eq_ignore_ascii_case("expunge") {
            self.exists = self.exists.saturating_sub(1);
        }
    }

    /// Sends a whole command and reads up to its tagged reply (setup steps).
    pub async fn simple(&mut self, tag: &str, command: &[u8]) -> Result<Vec<u8>, String> {
        let mut line = format!("{tag} ").into_bytes();
        line.extend_from_slice(command);
        line.extend_from_slice(b"\r\n");
        self.send(&line).await?;
        loop {
            match self.read().await? {
                None => return Err(format!("closed during {tag}")),
                Some(Response::Tagged(t, rest)) if t == tag => return Ok(rest),
                Some(_) => {}
            }
        }
    }
}

/// The size of a `{n}` literal announced at the end of a line.
pub fn literal_at_end(line: &[u8]) -> Option<usize> {
    let t = line.strip_suffix(b"\r\n").or(line.strip_suffix(b"\n"))?;
    let t = t.strip_suffix(b"}")?;
    let open = t.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&t[open + 1..])
        .ok()?
        .trim_end_matches('+')
        .parse()
        .ok()
}

/// Splits a command into the pieces sent before each synchronising literal:
/// every piece but the last ends with `{n}\r\n` and must wait for `+`.
pub fn literal_pieces(cmd: &[u8]) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < cmd.len() {
        if cmd[i] == b'{'
            && let Some(close) = cmd[i..].iter().position(|&c| c == b'}')
            && cmd[i + close + 1..].starts_with(b"\r\n")
            && let Ok(n) = std::str::from_utf8(&cmd[i + 1..i + close])
                .unwrap_or("x")
                .trim_end_matches('+')
                .parse::<usize>()
        {
            let sync = cmd[i + close - 1] != b'+';
            let body = i + close + 3;
            if sync {
                pieces.push(&cmd[start..body]);
                start = body;
            }
            i = (body + n).min(cmd.len());
            continue;
        }
        i += 1;
    }
    pieces.push(&cmd[start..]);
    pieces
}
