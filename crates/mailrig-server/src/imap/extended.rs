//! Command syntax of extensions that `imap-codec` 2.0.0-alpha.7 does not
//! parse, read before it sees the command: ESEARCH's `SEARCH RETURN (...)`
//! (RFC 4731), SEARCHRES' `$` (RFC 5182) and MULTIAPPEND's APPEND of
//! several messages (RFC 3502).
//!
//! Both are rewrites of the command's bytes into plain IMAP4rev1 that
//! `imap-codec` does parse: the RETURN clause is cut out (and handed to the
//! SEARCH as [`ReturnOptions`]), and `$` is replaced by the saved result
//! written as a sequence set or search key. A small lexer ([`tokens`]) keeps
//! quoted strings and literals out of reach, so `SUBJECT "$"` stays a subject.

/// What `SEARCH RETURN (...)` or `SORT RETURN (...)` asked for (RFC 4731,
/// RFC 5182, RFC 5267, RFC 9394).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReturnOptions {
    pub min: bool,
    pub max: bool,
    pub all: bool,
    pub count: bool,
    /// SEARCHRES: keep the result for `$`.
    pub save: bool,
    /// PARTIAL: only these positions of the result.
    pub partial: Option<Partial>,
    /// UPDATE (CONTEXT=SEARCH): keep the result up to date.
    pub update: bool,
}

impl ReturnOptions {
    /// Whether an `* ESEARCH` response is sent (SAVE alone sends none).
    pub fn answers(&self) -> bool {
        self.min || self.max || self.all || self.count || self.partial.is_some() || self.update
    }
}

/// A PARTIAL range of result positions (RFC 9394): `first..=last`, 1-based,
/// `first <= last`; negative counts from the end (`-1` is the last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partial {
    pub first: i64,
    pub last: i64,
}

impl Partial {
    /// Reads `m:n` or `-m:-n` (either order).
    pub fn parse(text: &str) -> Option<Partial> {
        let (a, b) = text.split_once(':')?;
        let num = |t: &str| -> Option<i64> {
            let (neg, digits) = match t.strip_prefix('-') {
                Some(d) => (true, d),
                None => (false, t),
            };
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let n: i64 = digits
                .parse()
                .ok()
                .filter(|&n| n > 0 && n <= i64::from(u32::MAX))?;
            Some(if neg { -n } else { n })
        };
        let (a, b) = (num(a)?, num(b)?);
        if (a < 0) != (b < 0) {
            return None;
        }
        let (lo, hi) = if a.abs() <= b.abs() { (a, b) } else { (b, a) };
        Some(Partial {
            first: lo,
            last: hi,
        })
    }

    /// The indexes (0-based) of a result of `len` items that the range names.
    pub fn indexes(&self, len: usize) -> std::ops::Range<usize> {
        let len = len as i64;
        let (from, to) = if self.first > 0 {
            (self.first - 1, self.last)
        } else {
            (len + self.last, len + self.first + 1)
        };
        let clamp = |n: i64| n.clamp(0, len) as usize;
        clamp(from)..clamp(to).max(clamp(from))
    }
}

impl std::fmt::Display for Partial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.first, self.last)
    }
}

/// A command the rewrite could not read: answered `BAD` with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    #[error("Unknown RETURN option {0} (expected MIN, MAX, ALL, COUNT, SAVE, PARTIAL or UPDATE)")]
    UnknownReturnOption(String),
    #[error("RETURN needs a parenthesised list of options")]
    ReturnList,
    #[error("SORT RETURN (UPDATE) is not supported (CONTEXT=SORT); SEARCH RETURN (UPDATE) is")]
    SortUpdate,
    #[error("CANCELUPDATE needs the quoted tags of the searches to stop updating")]
    CancelUpdate,
    #[error("PARTIAL needs a range of result positions such as 1:100 or -1:-100, not {0}")]
    Partial(String),
    #[error("$ (SEARCHRES) stands for a whole sequence set, not part of one")]
    DollarInSet,
    #[error("Error in APPEND: expected [(flags)] [\"date-time\"] literal for each message")]
    AppendSyntax,
    #[error("Error in APPEND: invalid flag {0}")]
    AppendFlag(String),
    #[error("Error in APPEND: invalid date-time {0}")]
    AppendDate(String),
    #[error("Error in APPEND: CATENATE needs a list of TEXT literals and URL strings (RFC 4469)")]
    Catenate,
}

/// One message of a MULTIAPPEND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    pub flags: Vec<String>,
    pub date: Option<chrono::DateTime<chrono::FixedOffset>>,
    pub data: Vec<u8>,
    /// Sent as `~{n}` (BINARY).
    pub literal8: bool,
    /// CATENATE (RFC 4469): the parts the message is put together from
    /// (then `data` is empty).
    pub catenate: Option<Vec<super::catenate::Part>>,
}

/// An APPEND of more than one message (RFC 3502).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiAppend {
    pub tag: String,
    pub mailbox: String,
    pub messages: Vec<AppendMessage>,
}

/// The text of an astring token (atom, quoted string or literal).
pub(super) fn astring(b: &[u8], t: &(Token, std::ops::Range<usize>)) -> Option<String> {
    let raw = &b[t.1.clone()];
    match t.0 {
        Token::Atom => Some(String::from_utf8_lossy(raw).into_owned()),
        Token::Quoted => {
            let inner = raw.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
            let mut out = Vec::new();
            let mut i = 0;
            while i < inner.len() {
                if inner[i] == b'\\' && i + 1 < inner.len() {
                    i += 1;
                }
                out.push(inner[i]);
                i += 1;
            }
            Some(String::from_utf8_lossy(&out).into_owned())
        }
        Token::Literal => {
            let (n, head) = literal_len(raw)?;
            Some(String::from_utf8_lossy(raw.get(head..head + n)?).into_owned())
        }
        _ => None,
    }
}

/// `tag APPEND mailbox` followed by more than one message, or by a
/// CATENATE list: the parsed command. `None` for anything else (a single
/// plain APPEND is imap-codec's).
pub fn multiappend(b: &[u8]) -> Option<Result<MultiAppend, SyntaxError>> {
    let toks = tokens(b);
    if !toks.get(1).is_some_and(|t| atom_is(b, t, "APPEND")) {
        return None;
    }
    let literals = toks.iter().filter(|t| t.0 == Token::Literal).count();
    // The mailbox may itself be a literal.
    let mailbox_is_literal = toks.get(2).is_some_and(|t| t.0 == Token::Literal);
    let catenate = toks.iter().skip(3).any(|t| atom_is(b, t, "CATENATE"));
    if !catenate && literals - usize::from(mailbox_is_literal) < 2 {
        return None;
    }
    // Only a valid tag is ever echoed; the normal path answers the rest.
    let tag = super::framing::tag_in(b)?;
    let Some(mailbox) = toks.get(2).and_then(|t| astring(b, t)) else {
        return Some(Err(SyntaxError::AppendSyntax));
    };
    let mut messages = Vec::new();
    let mut i = 3;
    while i < toks.len() {
        let mut flags = Vec::new();
        if toks[i].0 == Token::Open {
            i += 1;
            loop {
                match toks.get(i) {
                    Some((Token::Close, _)) => break,
                    Some((Token::Atom, r)) => {
                        let f = String::from_utf8_lossy(&b[r.clone()]).into_owned();
                        let system = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"];
                        let ok = if f.starts_with('\\') {
                            system.iter().any(|s| s.eq_ignore_ascii_case(&f))
                        } else {
                            super::wire::is_atom(f.as_bytes())
                        };
                        if !ok {
                            return Some(Err(SyntaxError::AppendFlag(f)));
                        }
                        flags.push(f);
                    }
                    _ => return Some(Err(SyntaxError::AppendSyntax)),
                }
                i += 1;
            }
            i += 1;
        }
        let mut date = None;
        if let Some(t @ (Token::Quoted, _)) = toks.get(i) {
            let text = astring(b, t).unwrap_or_default();
            match chrono::DateTime::parse_from_str(text.trim(), "%d-%b-%Y %H:%M:%S %z") {
                Ok(d) => date = Some(d),
                Err(_) => return Some(Err(SyntaxError::AppendDate(text))),
            }
            i += 1;
        }
        if toks.get(i).is_some_and(|t| atom_is(b, t, "CATENATE")) {
            let Some((parts, next)) = catenate_parts(b, &toks, i + 1) else {
                return Some(Err(SyntaxError::Catenate));
            };
            messages.push(AppendMessage {
                flags,
                date,
                data: Vec::new(),
                literal8: false,
                catenate: Some(parts),
            });
            i = next;
            continue;
        }
        let Some((Token::Literal, r)) = toks.get(i) else {
            return Some(Err(SyntaxError::AppendSyntax));
        };
        let raw = &b[r.clone()];
        let Some((n, head)) = literal_len(raw) else {
            return Some(Err(SyntaxError::AppendSyntax));
        };
        let Some(data) = raw.get(head..head + n) else {
            return Some(Err(SyntaxError::AppendSyntax));
        };
        messages.push(AppendMessage {
            flags,
            date,
            data: data.to_vec(),
            literal8: raw.first() == Some(&b'~'),
            catenate: None,
        });
        i += 1;
    }
    Some(Ok(MultiAppend {
        tag,
        mailbox,
        messages,
    }))
}

/// `( TEXT literal / URL astring ... )` from token `i` (the open paren):
/// the parts and the index after the close paren; `None` when malformed.
fn catenate_parts(
    b: &[u8],
    toks: &[(Token, std::ops::Range<usize>)],
    mut i: usize,
) -> Option<(Vec<super::catenate::Part>, usize)> {
    use super::catenate::Part;
    if toks.get(i)?.0 != Token::Open {
        return None;
    }
    i += 1;
    let mut parts = Vec::new();
    loop {
        let t = toks.get(i)?;
        if t.0 == Token::Close {
            break;
        }
        let value = toks.get(i + 1)?;
        if atom_is(b, t, "TEXT") && value.0 == Token::Literal {
            let raw = &b[value.1.clone()];
            let (n, head) = literal_len(raw)?;
            parts.push(Part::Text(raw.get(head..head + n)?.to_vec()));
        } else if atom_is(b, t, "URL")
            && matches!(value.0, Token::Atom | Token::Quoted | Token::Literal)
        {
            parts.push(Part::Url(astring(b, value)?));
        } else {
            return None;
        }
        i += 2;
    }
    (!parts.is_empty()).then_some((parts, i + 1))
}

/// One token of a command: where it is and what kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    Atom,
    Quoted,
    Literal,
    Open,
    Close,
}

/// Splits a whole command (lines and literal bytes, as the framer gives it)
/// into tokens with their byte ranges. Never fails: what it cannot read
/// becomes atoms, and `imap-codec` judges the command afterwards.
pub fn tokens(b: &[u8]) -> Vec<(Token, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' | b'\r' | b'\n' => i += 1,
            b'(' => {
                out.push((Token::Open, i..i + 1));
                i += 1;
            }
            b')' => {
                out.push((Token::Close, i..i + 1));
                i += 1;
            }
            b'"' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(b.len());
                out.push((Token::Quoted, start..i));
            }
            b'{' | b'~' if literal_len(&b[i..]).is_some() => {
                let start = i;
                let (n, head) = literal_len(&b[i..]).unwrap_or((0, 1));
                i = (i + head).saturating_add(n).min(b.len());
                out.push((Token::Literal, start..i));
            }
            _ => {
                let start = i;
                while i < b.len() && !matches!(b[i], b' ' | b'\r' | b'\n' | b'(' | b')') {
                    // `BODY[HEADER.FIELDS (A B)]` is one atom.
                    if b[i] == b'[' {
                        while i < b.len() && b[i] != b']' {
                            i += 1;
                        }
                    }
                    i += 1;
                }
                out.push((Token::Atom, start..i.min(b.len())));
            }
        }
    }
    out
}

/// `{n}\r\n`, `{n+}\r\n` or `~{n}\r\n` at the start: (n, header length).
fn literal_len(b: &[u8]) -> Option<(usize, usize)> {
    let start = usize::from(b.first() == Some(&b'~'));
    if b.get(start) != Some(&b'{') {
        return None;
    }
    let close = b.iter().take(32).position(|&c| c == b'}')?;
    let digits = std::str::from_utf8(&b[start + 1..close]).ok()?;
    let n: usize = digits.strip_suffix('+').unwrap_or(digits).parse().ok()?;
    let mut head = close + 1;
    if b.get(head) == Some(&b'\r') {
        head += 1;
    }
    if b.get(head) != Some(&b'\n') {
        return None;
    }
    Some((n, head + 1))
}

fn atom_is(b: &[u8], t: &(Token, std::ops::Range<usize>), word: &str) -> bool {
    t.0 == Token::Atom && b[t.1.clone()].eq_ignore_ascii_case(word.as_bytes())
}

/// The index of the command name's token (after the tag and a `UID`), and
/// whether it is a UID command.
fn command_word(b: &[u8], toks: &[(Token, std::ops::Range<usize>)]) -> Option<(usize, bool)> {
    let uid = toks.get(1).is_some_and(|t| atom_is(b, t, "UID"));
    let i = if uid { 2 } else { 1 };
    (toks.get(i)?.0 == Token::Atom).then_some((i, uid))
}

/// `tag [UID] SEARCH RETURN (opts) ...` or `tag [UID] SORT RETURN (opts)
/// ...`: the command without its RETURN clause, and the options. `None` when
/// the command has no RETURN clause.
pub fn search_return(b: &[u8]) -> Option<Result<(Vec<u8>, ReturnOptions), SyntaxError>> {
    let toks = tokens(b);
    let (w, _) = command_word(b, &toks)?;
    let searches = atom_is(b, &toks[w], "SEARCH") || atom_is(b, &toks[w], "SORT");
    if !searches || !toks.get(w + 1).is_some_and(|t| atom_is(b, t, "RETURN")) {
        return None;
    }
    let Some((Token::Open, open)) = toks.get(w + 2).cloned() else {
        return Some(Err(SyntaxError::ReturnList));
    };
    let mut opts = ReturnOptions::default();
    let mut i = w + 3;
    let close = loop {
        match toks.get(i) {
            Some((Token::Close, r)) => break r.clone(),
            Some((Token::Atom, r)) => {
                let word = String::from_utf8_lossy(&b[r.clone()]).to_ascii_uppercase();
                match word.as_str() {
                    "MIN" => opts.min = true,
                    "MAX" => opts.max = true,
                    "ALL" => opts.all = true,
                    "COUNT" => opts.count = true,
                    "SAVE" => opts.save = true,
                    "UPDATE" if atom_is(b, &toks[w], "SORT") => {
                        return Some(Err(SyntaxError::SortUpdate));
                    }
                    "UPDATE" => opts.update = true,
                    "PARTIAL" => {
                        i += 1;
                        let range = match toks.get(i) {
                            Some((Token::Atom, r)) => {
                                String::from_utf8_lossy(&b[r.clone()]).into_owned()
                            }
                            _ => return Some(Err(SyntaxError::Partial("nothing".into()))),
                        };
                        match Partial::parse(&range) {
                            Some(p) => opts.partial = Some(p),
                            None => return Some(Err(SyntaxError::Partial(range))),
                        }
                    }
                    _ => return Some(Err(SyntaxError::UnknownReturnOption(word))),
                }
            }
            _ => return Some(Err(SyntaxError::ReturnList)),
        }
        i += 1;
    };
    if !opts.answers() && !opts.save {
        // `RETURN ()` means ALL (RFC 4731 §3.1).
        opts.all = true;
    }
    let _ = open;
    let cut_from = toks[w + 1].1.start;
    let mut out = b[..cut_from].to_vec();
    let rest = &b[close.end..];
    out.extend_from_slice(rest.strip_prefix(b" ").unwrap_or(rest));
    Some(Ok((out, opts)))
}

/// `tag CANCELUPDATE "t1" ["t2" ...]` (RFC 5267 §4.2): the command's tag and
/// the tags named. `None` for another command.
pub fn cancel_update(b: &[u8]) -> Option<Result<(String, Vec<String>), SyntaxError>> {
    let toks = tokens(b);
    let (w, uid) = command_word(b, &toks)?;
    if uid || !atom_is(b, &toks[w], "CANCELUPDATE") {
        return None;
    }
    let tag = String::from_utf8_lossy(&b[toks[0].1.clone()]).into_owned();
    let mut tags = Vec::new();
    for (kind, r) in &toks[w + 1..] {
        let text = &b[r.clone()];
        let inner = match kind {
            Token::Quoted => text
                .strip_prefix(b"\"")
                .and_then(|t| t.strip_suffix(b"\""))
                .unwrap_or(text),
            _ => return Some(Err(SyntaxError::CancelUpdate)),
        };
        tags.push(
            String::from_utf8_lossy(inner)
                .replace("\\\"", "\"")
                .replace("\\\\", "\\"),
        );
    }
    if tags.is_empty() {
        return Some(Err(SyntaxError::CancelUpdate));
    }
    Some(Ok((tag, tags)))
}

/// Search keys whose next argument is a string or number, never a set.
const KEYS_WITH_ARGUMENT: &[&str] = &[
    "BCC",
    "BEFORE",
    "BODY",
    "CC",
    "FROM",
    "KEYWORD",
    "LARGER",
    "ON",
    "SENTBEFORE",
    "SENTON",
    "SENTSINCE",
    "SINCE",
    "SMALLER",
    "SUBJECT",
    "TEXT",
    "TO",
    "UNKEYWORD",
    "UID",
    "CHARSET",
];

/// Where `$` stands for the saved result in a command, and how to write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DollarUse {
    /// The sequence set of FETCH, STORE, COPY, MOVE, UID EXPUNGE (UIDs when
    /// `uid`).
    Set { uid: bool },
    /// A search key.
    SearchKey,
}

/// The `$` tokens of a command that stand for the saved search result.
pub fn dollars(b: &[u8]) -> Result<Vec<(std::ops::Range<usize>, DollarUse)>, SyntaxError> {
    let toks = tokens(b);
    let Some((w, uid)) = command_word(b, &toks) else {
        return Ok(Vec::new());
    };
    let word = String::from_utf8_lossy(&b[toks[w].1.clone()]).to_ascii_uppercase();
    let mut out = Vec::new();
    match word.as_str() {
        "FETCH" | "STORE" | "COPY" | "MOVE" | "EXPUNGE" => {
            if let Some((Token::Atom, r)) = toks.get(w + 1) {
                let set = &b[r.clone()];
                if set == b"$" {
                    out.push((r.clone(), DollarUse::Set { uid }));
                } else if set.contains(&b'$') {
                    return Err(SyntaxError::DollarInSet);
                }
            }
        }
        "SEARCH" => {
            let mut prev: Option<&[u8]> = None;
            for (kind, r) in &toks[w + 1..] {
                let text = &b[r.clone()];
                let after_key = prev.is_some_and(|p| {
                    KEYS_WITH_ARGUMENT
                        .iter()
                        .any(|k| p.eq_ignore_ascii_case(k.as_bytes()))
                });
                if *kind == Token::Atom && text == b"$" && !after_key {
                    out.push((r.clone(), DollarUse::SearchKey));
                }
                prev = (*kind == Token::Atom).then_some(text);
            }
        }
        _ => {}
    }
    Ok(out)
}

/// `b` with each range replaced by its text.
pub fn replace(b: &[u8], parts: &[(std::ops::Range<usize>, String)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut at = 0;
    for (r, text) in parts {
        out.extend_from_slice(&b[at..r.start]);
        out.extend_from_slice(text.as_bytes());
        at = r.end;
    }
    out.extend_from_slice(&b[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_ranges_read_either_order_and_count_from_the_end() {
        let p = Partial::parse("4:2").unwrap();
        assert_eq!((p.first, p.last, p.to_string()), (2, 4, "2:4".to_string()));
        assert_eq!(p.indexes(5), 1..4);
        assert_eq!(p.indexes(2), 1..2);
        assert_eq!(p.indexes(1), 1..1);
        let last = Partial::parse("-1:-2").unwrap();
        assert_eq!(last.to_string(), "-1:-2");
        assert_eq!(last.indexes(5), 3..5);
        assert_eq!(last.indexes(1), 0..1);
        for bad in [
            "1",
            "1:*",
            "*:1",
            "0:3",
            "-1:2",
            "a:b",
            ":",
            "1:99999999999",
        ] {
            assert_eq!(Partial::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn cancel_update_reads_quoted_tags() {
        assert_eq!(
            cancel_update(b"c1 CANCELUPDATE \"s1\" \"s\\\"2\"\r\n"),
            Some(Ok((
                "c1".to_string(),
                vec!["s1".to_string(), "s\"2".to_string()]
            )))
        );
        assert_eq!(
            cancel_update(b"c2 CANCELUPDATE\r\n"),
            Some(Err(SyntaxError::CancelUpdate))
        );
        assert_eq!(
            cancel_update(b"c3 CANCELUPDATE s1\r\n"),
            Some(Err(SyntaxError::CancelUpdate))
        );
        assert_eq!(cancel_update(b"c4 NOOP\r\n"), None);
        assert_eq!(
            search_return(b"a SORT RETURN (UPDATE) (DATE) UTF-8 ALL"),
            Some(Err(SyntaxError::SortUpdate))
        );
    }

    #[test]
    fn sort_return_is_cut_like_search_return() {
        let (rest, o) = search_return(b"a SORT RETURN (MIN PARTIAL 1:3) (ARRIVAL) UTF-8 ALL")
            .unwrap()
            .unwrap();
        assert_eq!(rest, b"a SORT (ARRIVAL) UTF-8 ALL");
        assert!(o.min && !o.all);
        assert_eq!(o.partial, Partial::parse("1:3"));
        assert_eq!(
            search_return(b"a SEARCH RETURN (PARTIAL 1:*) ALL").unwrap(),
            Err(SyntaxError::Partial("1:*".into()))
        );
    }

    #[test]
    fn return_clauses_are_cut_out() {
        let (cmd, o) = search_return(b"a UID SEARCH RETURN (MIN count) SEEN\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(cmd, b"a UID SEARCH SEEN\r\n");
        assert!(o.min && o.count && !o.all && !o.max && !o.save);
        let (cmd, o) = search_return(b"a SEARCH RETURN () ALL\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(cmd, b"a SEARCH ALL\r\n");
        assert!(o.all);
        assert_eq!(search_return(b"a SEARCH ALL\r\n"), None);
        assert_eq!(search_return(b"a FETCH 1 RETURN\r\n"), None);
        assert_eq!(
            search_return(b"a SEARCH RETURN (PARTIAL) ALL\r\n"),
            Some(Err(SyntaxError::Partial("nothing".into())))
        );
        assert_eq!(
            search_return(b"a SEARCH RETURN (FIRST) ALL\r\n"),
            Some(Err(SyntaxError::UnknownReturnOption("FIRST".into())))
        );
        assert_eq!(
            search_return(b"a SEARCH RETURN MIN ALL\r\n"),
            Some(Err(SyntaxError::ReturnList))
        );
        assert_eq!(
            search_return(b"a SEARCH RETURN (MIN\r\n"),
            Some(Err(SyntaxError::ReturnList))
        );
    }

    #[test]
    fn dollars_only_where_a_set_or_key_goes() {
        let d = |s: &str| {
            dollars(s.as_bytes()).map(|v| v.into_iter().map(|(_, u)| u).collect::<Vec<_>>())
        };
        assert_eq!(
            d("a FETCH $ FLAGS\r\n"),
            Ok(vec![DollarUse::Set { uid: false }])
        );
        assert_eq!(
            d("a UID COPY $ Box\r\n"),
            Ok(vec![DollarUse::Set { uid: true }])
        );
        assert_eq!(d("a SEARCH $ SEEN\r\n"), Ok(vec![DollarUse::SearchKey]));
        assert_eq!(d("a SEARCH OR $ 1:3 NOT $\r\n").map(|v| v.len()), Ok(2));
        assert_eq!(d("a SEARCH SUBJECT $\r\n"), Ok(vec![]));
        assert_eq!(d("a SEARCH SUBJECT \"$\" KEYWORD $\r\n"), Ok(vec![]));
        assert_eq!(d("a SEARCH TEXT {1}\r\n$\r\n"), Ok(vec![]));
        assert_eq!(d("a FETCH 1:3 BODY[HEADER.FIELDS ($)]\r\n"), Ok(vec![]));
        assert_eq!(d("a FETCH $,1 FLAGS\r\n"), Err(SyntaxError::DollarInSet));
        assert_eq!(d("a NOOP\r\n"), Ok(vec![]));
        assert_eq!(d(""), Ok(vec![]));
    }

    #[test]
    fn multiappend_reads_each_message() {
        let m = multiappend(
            b"a APPEND Box (\\Seen $K) \" 4-Mar-2024 10:00:00 +0000\" {2}\r\nab {1+}\r\nc\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(m.mailbox, "Box");
        assert_eq!(m.messages.len(), 2);
        assert_eq!(m.messages[0].flags, ["\\Seen", "$K"]);
        assert!(m.messages[0].date.is_some());
        assert_eq!(m.messages[1].data, b"c");
        assert_eq!(multiappend(b"a APPEND Box {2}\r\nab\r\n"), None);
        assert_eq!(
            multiappend(b"a APPEND Box {1}\r\na (\\Bogus) {1}\r\nb\r\n"),
            Some(Err(SyntaxError::AppendFlag("\\Bogus".into())))
        );
        assert_eq!(
            multiappend(b"a APPEND Box {1}\r\na \"yesterday\" {1}\r\nb\r\n"),
            Some(Err(SyntaxError::AppendDate("yesterday".into())))
        );
        assert_eq!(
            multiappend(b"a APPEND Box {1}\r\na x {1}\r\nb\r\n"),
            Some(Err(SyntaxError::AppendSyntax))
        );
    }

    #[test]
    fn catenate_reads_text_and_url_parts() {
        use super::super::catenate::Part;
        let m = multiappend(
            b"a APPEND Box (\\Seen) CATENATE (URL \"/Box/;uid=1/;section=header\" TEXT {3}\r\nabc) {1}\r\nz\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(m.messages.len(), 2);
        assert_eq!(
            m.messages[0].catenate,
            Some(vec![
                Part::Url("/Box/;uid=1/;section=header".into()),
                Part::Text(b"abc".to_vec())
            ])
        );
        assert_eq!(m.messages[0].flags, ["\\Seen"]);
        assert_eq!(m.messages[1].data, b"z");
        // One message is enough with CATENATE.
        let one = multiappend(b"a APPEND Box CATENATE (TEXT {1}\r\nx)\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            one.messages[0].catenate,
            Some(vec![Part::Text(b"x".to_vec())])
        );
        for bad in [
            &b"a APPEND Box CATENATE ()\r\n"[..],
            b"a APPEND Box CATENATE (TEXT \"x\")\r\n",
            b"a APPEND Box CATENATE (URL)\r\n",
            b"a APPEND Box CATENATE (BOGUS {1}\r\nx)\r\n",
            b"a APPEND Box CATENATE TEXT {1}\r\nx\r\n",
        ] {
            assert_eq!(
                multiappend(bad),
                Some(Err(SyntaxError::Catenate)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_lexer_survives_anything() {
        for b in [
            &b"a {99}\r\n"[..],
            b"\"",
            b"((",
            b"~{",
            b"a [",
            b"{5+}\r\nab",
        ] {
            let _ = tokens(b);
            let _ = search_return(b);
            let _ = dollars(b);
            let _ = multiappend(b);
        }
    }
}
