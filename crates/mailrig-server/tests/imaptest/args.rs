//! IMAP arguments as imaptest compares them: atoms, quoted strings, literals,
//! NIL and parenthesised lists, read from a script line or a server response.
//!
//! One parser serves both sides so that an expectation and a reply are cut the
//! same way. An atom runs to a space, CR/LF, `(` or `)`, except inside `[...]`:
//! `BODY[HEADER.FIELDS (FROM)]` and `[UIDVALIDITY 3]` stay one atom each, and
//! variables inside them are matched as text (see [`super::matcher`]).

/// One IMAP argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Nil,
    Atom(String),
    /// A quoted string.
    Str(String),
    /// A literal (`{n}`, `{n+}`, `~{n}`).
    Literal(String),
    List(Vec<Arg>),
}

impl Arg {
    /// The text of an atom or string (imaptest's `imap_arg_get_astring`).
    pub fn astring(&self) -> Option<&str> {
        match self {
            Arg::Atom(s) | Arg::Str(s) | Arg::Literal(s) => Some(s),
            Arg::Nil | Arg::List(_) => None,
        }
    }

    pub fn atom(&self) -> Option<&str> {
        match self {
            Arg::Atom(s) => Some(s),
            _ => None,
        }
    }
}

/// Writes arguments back as IMAP-ish text, for failure messages.
pub fn show(args: &[Arg]) -> String {
    fn one(a: &Arg) -> String {
        match a {
            Arg::Nil => "NIL".into(),
            Arg::Atom(s) => s.clone(),
            Arg::Str(s) | Arg::Literal(s) if s.len() > 120 => {
                format!("\"{}…\"", s.chars().take(120).collect::<String>())
            }
            Arg::Str(s) | Arg::Literal(s) => format!("\"{s}\""),
            Arg::List(l) => format!("({})", show(l)),
        }
    }
    args.iter().map(one).collect::<Vec<_>>().join(" ")
}

/// Parses a whole line (literals included); trailing CRLF is ignored.
pub fn parse(line: &[u8]) -> Result<Vec<Arg>, String> {
    let mut p = Parser { b: line, i: 0 };
    let args = p.list_items(false)?;
    Ok(args)
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    /// Items up to `)` (when `nested`) or the end of input.
    fn list_items(&mut self, nested: bool) -> Result<Vec<Arg>, String> {
        let mut out = Vec::new();
        loop {
            while matches!(self.peek(), Some(b' ' | b'\r' | b'\n')) {
                self.i += 1;
            }
            match self.peek() {
                None if nested => return Err("unclosed list".into()),
                None => return Ok(out),
                Some(b')') if nested => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b')') => return Err("unbalanced ')'".into()),
                Some(b'(') => {
                    self.i += 1;
                    out.push(Arg::List(self.list_items(true)?));
                }
                Some(b'"') => out.push(self.quoted()?),
                Some(b'{' | b'~') if self.literal_size().is_some() => out.push(self.literal()?),
                Some(_) => out.push(self.atom()),
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn quoted(&mut self) -> Result<Arg, String> {
        self.i += 1;
        let mut s = Vec::new();
        loop {
            match self.peek() {
                None => return Err("unterminated quoted string".into()),
                Some(b'"') => break,
                Some(b'\\') => {
                    self.i += 1;
                    if let Some(c) = self.peek() {
                        s.push(c);
                    }
                }
                Some(c) => s.push(c),
            }
            self.i += 1;
        }
        self.i += 1;
        Ok(Arg::Str(String::from_utf8_lossy(&s).into_owned()))
    }

    /// `{n}`, `{n+}` or `~{n}` followed by CRLF: (size, bytes of the header).
    fn literal_size(&self) -> Option<(usize, usize)> {
        let rest = &self.b[self.i..];
        let start = usize::from(rest.first() == Some(&b'~'));
        if rest.get(start) != Some(&b'{') {
            return None;
        }
        let close = rest.iter().position(|&c| c == b'}')?;
        let digits = std::str::from_utf8(&rest[start + 1..close]).ok()?;
        let n = digits.trim_end_matches('+').parse().ok()?;
        let after = &rest[close + 1..];
        let crlf = if after.starts_with(b"\r\n") {
            2
        } else if after.starts_with(b"\n") {
            1
        } else {
            return None;
        };
        Some((n, close + 1 + crlf))
    }

    fn literal(&mut self) -> Result<Arg, String> {
        let (n, header) = self.literal_size().ok_or("bad literal")?;
        let start = self.i + header;
        let end = start + n;
        if end > self.b.len() {
            return Err(format!("literal of {n} bytes runs past the end"));
        }
        self.i = end;
        // imaptest keeps every argument as a C string (`p_strdup`), so a
        // literal ends at its first NUL byte, on both sides of a comparison
        // (append-binary's body starts with one). Exact bytes of BINARY
        // fetches are checked in the server's own tests.
        let bytes = &self.b[start..end];
        let text = bytes.split(|&b| b == 0).next().unwrap_or_default();
        Ok(Arg::Literal(String::from_utf8_lossy(text).into_owned()))
    }

    fn atom(&mut self) -> Arg {
        let start = self.i;
        let mut depth = 0i32;
        while let Some(c) = self.peek() {
            match c {
                b'[' => depth += 1,
                b']' => depth -= 1,
                b'\r' | b'\n' => break,
                b' ' | b'(' | b')' if depth <= 0 => break,
                _ => {}
            }
            self.i += 1;
        }
        let s = String::from_utf8_lossy(&self.b[start..self.i]).into_owned();
        if s.eq_ignore_ascii_case("nil") {
            Arg::Nil
        } else {
            Arg::Atom(s)
        }
    }
}
