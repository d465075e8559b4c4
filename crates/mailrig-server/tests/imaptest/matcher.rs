//! Matching a server reply against a script's expectation, as imaptest does.
//!
//! * Text is compared case-insensitively. `$name` / `${name}` in expected text
//!   is compared with the variable's value, or, when the variable has no value
//!   yet, bound to the reply's text up to the next expected character. `$` alone
//!   matches anything (a whole list, too); `$]` skips to the closing `]`;
//!   `$$` is a literal dollar; `$N` (a number) is sequence N of the command's
//!   start, moved down by the EXPUNGEs seen since.
//! * Lists are compared in order and in full unless they start with
//!   directives: `$!unordered` (any order, extra items allowed unless
//!   `$!noextra`), `$!unordered=N` (chains of N items, e.g. FETCH name/value
//!   pairs), `$!ordered`, `$!extra`, `$!noextra`, `$!ignore=X` (an extra item X is
//!   fine), `$!ban=X` (an extra item X is not). [`super::script`] adds imaptest's
//!   default directives to LIST/LSUB/STATUS/FETCH replies.
//! * A reply starting OK/NO/BAD/BYE (and every tagged reply) is matched as a
//!   prefix: the last expected item may be a prefix of the reply's, and the
//!   human-readable text after it is ignored.

use std::collections::HashMap;

use super::args::Arg;

/// Variables bound so far and the sequence map of the running command group.
#[derive(Debug, Default, Clone)]
pub struct Matcher {
    pub vars: HashMap<String, String>,
    /// Initial sequence → current sequence (0 = expunged).
    pub seqmap: Vec<u32>,
}

/// List-matching rules read from `$!` directives.
#[derive(Debug)]
struct Directives<'a> {
    unordered: bool,
    chain: usize,
    noextra: bool,
    ignore: Vec<&'a str>,
    ban: Vec<&'a str>,
}

fn is_var_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Splits `$name` / `${name}` at the start of `s` (just after the `$`):
/// (name, bytes consumed).
fn var_name(s: &[u8]) -> (String, usize) {
    if s.first() == Some(&b'{')
        && let Some(close) = s.iter().position(|&c| c == b'}')
    {
        return (
            String::from_utf8_lossy(&s[1..close]).into_owned(),
            close + 1,
        );
    }
    let n = s.iter().take_while(|&&c| is_var_char(c)).count();
    (String::from_utf8_lossy(&s[..n]).into_owned(), n)
}

impl Matcher {
    /// Starts a command group on a connection that sees `exists` messages.
    pub fn start_group(&mut self, exists: u32) {
        self.seqmap = (1..=exists).collect();
    }

    /// Records `* seq EXPUNGE` in the sequence map.
    pub fn expunged(&mut self, seq: u32) {
        for s in self.seqmap.iter_mut() {
            if *s == seq {
                *s = 0;
            } else if *s > seq {
                *s -= 1;
            }
        }
    }

    fn relative_seq(&self, n: usize) -> String {
        match self.seqmap.get(n.wrapping_sub(1)) {
            _ if n == 0 => "<zero seq>".into(),
            None => "<out of range>".into(),
            Some(0) => "<expunged>".into(),
            Some(s) => s.to_string(),
        }
    }

    /// Expands the variables of a command line; an unbound one is an error.
    pub fn expand_command(&self, line: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(line.len());
        let mut i = 0;
        while i < line.len() {
            if line[i] != b'$' || i + 1 == line.len() {
                out.push(line[i]);
                i += 1;
                continue;
            }
            i += 1;
            match line[i] {
                b'$' => {
                    out.push(b'$');
                    i += 1;
                }
                b'!' => {
                    // A directive: not part of the command.
                    while i < line.len() && line[i] != b' ' {
                        i += 1;
                    }
                    i += 1;
                }
                _ => {
                    let (name, used) = var_name(&line[i..]);
                    i += used;
                    let value = match name.parse::<usize>() {
                        Ok(n) => self.relative_seq(n),
                        Err(_) => self
                            .vars
                            .get(&name)
                            .cloned()
                            .ok_or(format!("uninitialized variable ${name}"))?,
                    };
                    out.extend_from_slice(value.as_bytes());
                }
            }
        }
        Ok(out)
    }

    /// Matches expected text (with variables) against received text. Binds
    /// unbound variables; returns the expanded expectation, or `None` on a
    /// mismatch already seen.
    fn expand_input(&mut self, pat: &str, input: &str) -> Option<String> {
        let (pat, inp) = (pat.as_bytes(), input.as_bytes());
        let (mut p, mut q) = (0, 0);
        let mut out = Vec::new();
        while p < pat.len() {
            if pat[p] != b'$' || pat.get(p + 1) == Some(&b'$') {
                if pat[p] == b'$' {
                    p += 1;
                }
                if !pat[p].eq_ignore_ascii_case(inp.get(q)?) {
                    return None;
                }
                out.push(pat[p]);
                p += 1;
                q += 1;
                continue;
            }
            let (name, used) = var_name(&pat[p + 1..]);
            p += 1 + used;
            let value = if let Ok(n) = name.parse::<usize>() {
                self.relative_seq(n)
            } else if let Some(v) = self.vars.get(&name).filter(|_| !name.is_empty()) {
                v.clone()
            } else {
                // Unbound: take the input up to the next expected character.
                let stop = pat.get(p).map(|c| c.to_ascii_uppercase());
                let len = inp[q..]
                    .iter()
                    .position(|c| Some(c.to_ascii_uppercase()) == stop)
                    .unwrap_or(inp.len() - q);
                let v = String::from_utf8_lossy(&inp[q..q + len]).into_owned();
                if !name.is_empty() {
                    self.vars.insert(name, v.clone());
                }
                v
            };
            if !inp[q..].starts_with(value.as_bytes()) {
                return None;
            }
            q += value.len();
            out.extend_from_slice(value.as_bytes());
        }
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    /// Matches one expected text against received text; `prefix` allows the
    /// received text to go on.
    fn match_text(&mut self, exp: &str, got: &str, prefix: bool) -> bool {
        let Some(want) = self.expand_input(exp, got) else {
            return false;
        };
        if prefix {
            got.len() >= want.len()
                && got.as_bytes()[..want.len()].eq_ignore_ascii_case(want.as_bytes())
        } else {
            got.eq_ignore_ascii_case(&want)
        }
    }

    /// Matches expected arguments against received ones, in order. With
    /// `prefix`, the last expected one may be a prefix and more may follow.
    pub fn match_args(&mut self, exp: &[Arg], got: &[Arg], prefix: bool) -> bool {
        let mut g = 0;
        for (k, e) in exp.iter().enumerate() {
            let last = k + 1 == exp.len();
            let here = got.get(g);
            match e {
                Arg::Nil => {
                    if here != Some(&Arg::Nil) {
                        return false;
                    }
                }
                Arg::Atom(s) | Arg::Str(s) | Arg::Literal(s) => {
                    if s == "$" && matches!(here, Some(Arg::List(_))) {
                        g += 1;
                        continue;
                    }
                    if s == "$]" {
                        while let Some(a) = got.get(g).and_then(Arg::atom) {
                            if a.contains(']') {
                                break;
                            }
                            g += 1;
                        }
                        g += 1;
                        continue;
                    }
                    let Some(text) = here.and_then(Arg::astring) else {
                        return false;
                    };
                    if !self.match_text(s, text, prefix && last) {
                        return false;
                    }
                }
                Arg::List(items) => {
                    let Some(Arg::List(have)) = here else {
                        return false;
                    };
                    if !self.match_list(items, have) {
                        return false;
                    }
                }
            }
            g += 1;
        }
        prefix || g >= got.len()
    }

    /// Matches a list, honouring its leading `$!` directives.
    fn match_list(&mut self, exp: &[Arg], got: &[Arg]) -> bool {
        let (d, exp) = directives(exp);
        if !d.unordered {
            return self.match_args(exp, got, false);
        }
        if d.chain == 0 || !got.len().is_multiple_of(d.chain) || !exp.len().is_multiple_of(d.chain)
        {
            return false;
        }
        let mut matched = vec![false; got.len() / d.chain];
        for want in exp.chunks(d.chain) {
            let hit = got.chunks(d.chain).position(|have| {
                let saved = self.vars.clone();
                let ok = self.match_args(want, have, false);
                if !ok {
                    self.vars = saved;
                }
                ok
            });
            match hit {
                Some(i) => matched[i] = true,
                None => return false,
            }
        }
        let extras = got
            .chunks(d.chain)
            .zip(&matched)
            .filter(|(_, m)| !**m)
            .filter_map(|(c, _)| c[0].astring());
        let listed = |list: &[&str], s: &str| list.iter().any(|x| x.eq_ignore_ascii_case(s));
        if d.noextra {
            extras.into_iter().all(|s| listed(&d.ignore, s))
        } else {
            extras.into_iter().all(|s| !listed(&d.ban, s))
        }
    }
}

/// Reads the `$!` directives at the head of a list; returns them and the rest.
fn directives(list: &[Arg]) -> (Directives<'_>, &[Arg]) {
    let mut d = Directives {
        unordered: false,
        chain: 1,
        noextra: true,
        ignore: Vec::new(),
        ban: Vec::new(),
    };
    let mut noextra = None;
    let mut n = 0;
    while let Some(s) = list
        .get(n)
        .and_then(Arg::atom)
        .and_then(|a| a.strip_prefix("$!"))
    {
        if let Some(rest) = s.strip_prefix("unordered") {
            d.unordered = true;
            noextra.get_or_insert(false);
            if let Some(c) = rest.strip_prefix('=') {
                d.chain = c.parse().unwrap_or(0);
            }
        } else if s == "ordered" {
            d.unordered = false;
        } else if s == "extra" {
            noextra = Some(false);
        } else if s == "noextra" {
            noextra = Some(true);
        } else if let Some(x) = s.strip_prefix("ignore=") {
            d.ignore.push(x);
        } else if let Some(x) = s.strip_prefix("ban=") {
            d.ban.push(x);
        }
        n += 1;
    }
    d.noextra = noextra.unwrap_or(true);
    (d, &list[n..])
}
