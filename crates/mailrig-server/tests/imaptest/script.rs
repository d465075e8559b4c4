//! Reading an imaptest script: a `key: value` header, a blank line, then
//! command groups.
//!
//! A command is `[conn] [tagN] OK|NO|BAD|"" command` (the expected tagged reply
//! first), or `[conn] [tagN] command` with the tagged reply on its own line
//! after the untagged ones (`[conn] [tagN] ok [read-only]`, matched as a
//! prefix). Commands with `tagN` are pipelined: they form one group until all
//! their replies are written. Untagged lines: `* reply` must come, `! reply`
//! must not, `? reply` may. `{{{` ... `}}}` (or `~{{{` for binary) is a
//! multi-line literal. `!ordered` makes a group's untagged replies ordered;
//! `!sleep`, `!output`, `!ifenv`/`!ifnenv`/`!else`/`!endif` are read too.

use super::args::{self, Arg};

/// The state the connections are brought to before the script runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    NonAuth,
    Auth,
    Created,
    Appended,
    Selected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existence {
    Must,
    MustNot,
    May,
}

/// One expected (or forbidden) untagged reply.
#[derive(Debug, Clone)]
pub struct Expect {
    pub existence: Existence,
    pub args: Vec<Arg>,
    pub line: usize,
}

/// One command and the tagged reply it must get.
#[derive(Debug, Clone)]
pub struct Command {
    /// The script's `tagN` number; 0 when not pipelined.
    pub tag: u32,
    pub text: Vec<u8>,
    pub reply: Option<Vec<Arg>>,
    pub line: usize,
}

/// Commands sent together on one connection and the untagged replies
/// expected before all their tagged replies are in.
#[derive(Debug, Clone, Default)]
pub struct Group {
    pub conn: usize,
    pub commands: Vec<Command>,
    pub untagged: Vec<Expect>,
    pub ordered: bool,
    pub bye: bool,
    pub sleep_ms: u64,
    pending: usize,
}

#[derive(Debug, Clone)]
pub struct Script {
    pub capabilities: Vec<String>,
    pub connections: usize,
    pub state: State,
    /// `None` = every message of the mbox.
    pub messages: Option<usize>,
    pub ignore_extra_untagged: bool,
    pub groups: Vec<Group>,
    /// Lines read but not acted on: `!output` lines and lines an
    /// `!ifenv`/`!ifnenv` leaves out.
    pub skipped: usize,
}

impl Script {
    /// Parses a script's bytes.
    pub fn parse(text: &[u8]) -> Result<Script, String> {
        let mut p = ScriptParser {
            script: Script {
                capabilities: Vec::new(),
                connections: 1,
                state: State::Selected,
                messages: None,
                ignore_extra_untagged: true,
                groups: Vec::new(),
                skipped: 0,
            },
            ifenv: Vec::new(),
            skip: false,
        };
        let mut header = true;
        for (linenum, line) in logical_lines(text)? {
            if line.is_empty() && header {
                header = false;
                continue;
            }
            if line.is_empty() || line.starts_with(b"#") {
                continue;
            }
            let res = if header {
                p.header_line(&String::from_utf8_lossy(&line))
            } else {
                p.command_line(linenum, &line)
            };
            res.map_err(|e| format!("line {linenum}: {e}"))?;
        }
        if let Some(g) = p.script.groups.last()
            && g.pending > 0
        {
            return Err("the last command has no tagged reply".into());
        }
        p.add_logout();
        Ok(p.script)
    }
}

/// A `{{{` block being read: its first line, the text so far, where the
/// literal starts, and whether it is binary (`~{{{`).
struct Block {
    first: usize,
    text: Vec<u8>,
    start: usize,
    binary: bool,
}

impl Block {
    fn open(first: usize, head: &[u8]) -> Option<Block> {
        let head = head.strip_suffix(b"{{{")?;
        Some(Block {
            first,
            binary: head.ends_with(b"~"),
            text: head.to_vec(),
            start: head.len(),
        })
    }

    /// Ends the literal: `{n}\r\n` (or `~{n}\r\n`) goes before its text.
    fn close_literal(&mut self, last_line_end: usize) {
        self.text.truncate(last_line_end.max(self.start));
        let size = self.text.len() - self.start;
        let at = if self.binary {
            self.start - 1
        } else {
            self.start
        };
        let head = format!("{}{{{size}}}\r\n", if self.binary { "~" } else { "" });
        self.text.splice(at..self.start, head.bytes());
    }
}

/// Joins `{{{ ... }}}` blocks into single lines with `{n}\r\n` literals. As
/// in imaptest, a text literal's lines end in CRLF, a binary one's keep their
/// bytes (a CR included) and end in LF; the last line end is not part of it.
fn logical_lines(text: &[u8]) -> Result<Vec<(usize, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut block: Option<(Block, usize)> = None; // and where the last line ended
    for (n, raw) in text.split(|&b| b == b'\n').enumerate() {
        let linenum = n + 1;
        let Some((mut b, mut last_end)) = block.take() else {
            let line = raw.strip_suffix(b"\r").unwrap_or(raw);
            match Block::open(linenum, line) {
                Some(b) => {
                    let end = b.text.len();
                    block = Some((b, end));
                }
                None => out.push((linenum, line.to_vec())),
            }
            continue;
        };
        let Some(rest) = raw.strip_prefix(b"}}}") else {
            b.text.extend_from_slice(raw);
            last_end = b.text.len();
            b.text
                .extend_from_slice(if b.binary { b"\n" } else { b"\r\n" });
            block = Some((b, last_end));
            continue;
        };
        b.close_literal(last_end);
        let rest = rest.strip_suffix(b"\r").unwrap_or(rest);
        let mut joined = b.text;
        joined.extend_from_slice(rest);
        match Block::open(b.first, &joined) {
            Some(more) => {
                let end = more.text.len();
                block = Some((more, end));
            }
            None => out.push((b.first, joined)),
        }
    }
    if let Some((b, _)) = block {
        return Err(format!(
            "multi-line literal from line {} is not closed",
            b.first
        ));
    }
    Ok(out)
}

struct ScriptParser {
    script: Script,
    /// For each open `!ifenv`: whether lines were skipped before it.
    ifenv: Vec<bool>,
    skip: bool,
}

/// `tagN ` at the start of a line: (N, rest).
fn strip_tag(line: &[u8]) -> (u32, &[u8]) {
    let word = line.split(|&b| b == b' ').next().unwrap_or(b"");
    if word.len() > 3 && word[..3].eq_ignore_ascii_case(b"tag") {
        let n = std::str::from_utf8(&word[3..])
            .ok()
            .and_then(|s| s.parse::<u32>().ok());
        if let Some(n) = n.filter(|&n| n > 0) {
            return (n, line.get(word.len() + 1..).unwrap_or(b""));
        }
    }
    (0, line)
}

/// `ok|no|bad|"" ` at the start of a line: (reply, rest).
fn strip_reply(line: &[u8]) -> (Option<&'static str>, &[u8]) {
    let word = line.split(|&b| b == b' ').next().unwrap_or(b"");
    let reply = ["ok", "no", "bad"]
        .into_iter()
        .find(|r| word.eq_ignore_ascii_case(r.as_bytes()))
        .or((word == b"\"\"").then_some(""));
    match reply {
        Some(r) => (Some(r), line.get(word.len() + 1..).unwrap_or(b"")),
        None => (None, line),
    }
}

/// `N ` at the start of a line: (N, rest).
fn strip_conn(line: &[u8]) -> Option<(usize, &[u8])> {
    let word = line.split(|&b| b == b' ').next()?;
    let n = std::str::from_utf8(word).ok()?.parse::<usize>().ok()?;
    (n > 0).then(|| (n, line.get(word.len() + 1..).unwrap_or(b"")))
}

fn untagged_kind(line: &[u8]) -> Option<Existence> {
    match line.get(..2)? {
        b"* " => Some(Existence::Must),
        b"! " => Some(Existence::MustNot),
        b"? " => Some(Existence::May),
        _ => None,
    }
}

impl ScriptParser {
    fn header_line(&mut self, line: &str) -> Result<(), String> {
        let (key, value) = line.split_once(':').ok_or("missing ':' in the header")?;
        let value = value.trim();
        let s = &mut self.script;
        match key.trim().to_ascii_lowercase().as_str() {
            "capabilities" => s.capabilities = value.split_whitespace().map(String::from).collect(),
            "connections" => s.connections = value.parse().map_err(|_| "bad connections")?,
            "ignore_extra_untagged" => s.ignore_extra_untagged = value.starts_with('y'),
            "messages" if value == "all" => s.messages = None,
            "messages" => s.messages = Some(value.parse().map_err(|_| "bad messages")?),
            k if k.starts_with("user ") => {} // the login of connection N: one user here
            "state" => {
                s.state = match value.to_ascii_lowercase().as_str() {
                    "nonauth" => State::NonAuth,
                    "auth" => State::Auth,
                    "created" => State::Created,
                    "appended" => State::Appended,
                    "selected" => State::Selected,
                    other => return Err(format!("unknown state {other}")),
                }
            }
            other => return Err(format!("unknown header {other}")),
        }
        Ok(())
    }

    /// `!ifenv` and friends; true when the line was one of them.
    fn conditional(&mut self, line: &[u8]) -> Result<bool, String> {
        let text = String::from_utf8_lossy(line);
        if let Some((kind, env)) = text.split_once(' ')
            && (kind == "!ifenv" || kind == "!ifnenv")
        {
            let set = std::env::var_os(env).is_some();
            self.ifenv.push(self.skip);
            if set != (kind == "!ifenv") {
                self.skip = true;
            }
            return Ok(true);
        }
        match text.as_ref() {
            "!else" => {
                let before = *self.ifenv.last().ok_or("!else without !ifenv")?;
                if !before {
                    self.skip = !self.skip;
                }
                Ok(true)
            }
            "!endif" => {
                self.skip = self.ifenv.pop().ok_or("!endif without !ifenv")?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn command_line(&mut self, linenum: usize, line: &[u8]) -> Result<(), String> {
        if self.conditional(line)? {
            return Ok(());
        }
        if self.skip {
            self.script.skipped += 1;
            return Ok(());
        }
        let multi = self.script.connections > 1;
        if let Some(group) = self.script.groups.last_mut() {
            if let Some(ms) = line.strip_prefix(b"!sleep ") {
                let ms = String::from_utf8_lossy(ms);
                group.sleep_ms = ms
                    .trim_end_matches("ms")
                    .parse()
                    .map_err(|_| "bad !sleep")?;
                return Ok(());
            }
            if line.starts_with(b"!output ") {
                self.script.skipped += 1;
                return Ok(());
            }
            if line == b"!ordered" {
                group.ordered = true;
                return Ok(());
            }
            if let Some(existence) = untagged_kind(line) {
                return add_untagged(group, existence, linenum, &line[2..]);
            }
            if group.pending > 0 {
                let (conn, rest) = match strip_conn(line).filter(|_| multi) {
                    Some((c, rest)) => (Some(c), rest),
                    None => (None, line),
                };
                let (tag, after_tag) = strip_tag(rest);
                if strip_reply(after_tag).0.is_some() {
                    // release-2.3 scripts may leave the connection number out.
                    if conn.is_some_and(|c| c != group.conn + 1) {
                        return Err("tagged reply for the wrong connection".into());
                    }
                    return finish_command(group, tag, after_tag);
                }
            }
        }
        self.start_command(linenum, line)
    }

    fn start_command(&mut self, linenum: usize, line: &[u8]) -> Result<(), String> {
        let mut line = line;
        let mut conn = 0;
        if self.script.connections > 1 {
            let (c, rest) = strip_conn(line).ok_or("missing connection number")?;
            conn = c - 1;
            line = rest;
        }
        let need_new = self.script.groups.last().is_none_or(|g| g.pending == 0);
        if need_new {
            self.script.groups.push(Group {
                conn,
                ..Group::default()
            });
        }
        let group = self.script.groups.last_mut().ok_or("no group")?;
        if !group.commands.is_empty() && group.conn != conn {
            return Err("pipelined commands must use one connection".into());
        }
        group.conn = conn;
        let (tag, rest) = strip_tag(line);
        let (reply, command) = strip_reply(rest);
        if tag == 0 && group.pending > 0 {
            return Err("missing reply of the previous command".into());
        }
        if group.commands.is_empty()
            && let Some(existence) = untagged_kind(command)
        {
            // A banner check: matched against the greeting.
            return add_untagged(group, existence, linenum, &command[2..]);
        }
        if reply.is_none() {
            group.pending += 1;
        }
        group.commands.push(Command {
            tag,
            text: command.to_vec(),
            reply: reply.map(|r| vec![Arg::Atom(r.to_string())]),
            line: linenum,
        });
        Ok(())
    }

    /// imaptest ends every script that does not log out with `ok logout`.
    fn add_logout(&mut self) {
        let s = &mut self.script;
        let logs_out = s.groups.iter().any(|g| {
            g.bye
                || g.commands
                    .iter()
                    .any(|c| c.text.eq_ignore_ascii_case(b"logout"))
        });
        if !logs_out {
            s.groups.push(Group {
                commands: vec![Command {
                    tag: 0,
                    text: b"logout".to_vec(),
                    reply: Some(vec![Arg::Atom("ok".into())]),
                    line: 0,
                }],
                ..Group::default()
            });
        }
    }
}

fn finish_command(group: &mut Group, tag: u32, reply_line: &[u8]) -> Result<(), String> {
    let cmd = group
        .commands
        .iter_mut()
        .find(|c| c.tag == tag)
        .ok_or("reply for an unknown tag")?;
    if cmd.reply.is_some() {
        return Err("command already has a reply".into());
    }
    cmd.reply = Some(args::parse(reply_line)?);
    group.pending -= 1;
    Ok(())
}

fn add_untagged(
    group: &mut Group,
    existence: Existence,
    line: usize,
    text: &[u8],
) -> Result<(), String> {
    let mut args = args::parse(text)?;
    let name_at = usize::from(matches!(
        args.first().and_then(Arg::atom),
        Some(a) if a.starts_with('$') || a.starts_with(|c: char| c.is_ascii_digit())
    ));
    let name = args
        .get(name_at)
        .and_then(Arg::atom)
        .unwrap_or("")
        .to_ascii_lowercase();
    add_default_directives(&name, &mut args);
    if name.starts_with("bye") && existence == Existence::Must {
        group.bye = true;
    }
    group.untagged.push(Expect {
        existence,
        args,
        line,
    });
    Ok(())
}

fn has_directives(list: &[Arg]) -> bool {
    matches!(list.first().and_then(Arg::atom), Some(a) if a.starts_with("$!"))
}

fn directive(s: &str) -> Arg {
    Arg::Atom(s.to_string())
}

/// imaptest's defaults for lists written without directives: LIST/LSUB flags
/// in any order (extras allowed), STATUS and FETCH items as unordered pairs
/// (extras allowed), FETCH FLAGS in any order, complete but for `\Recent`.
fn add_default_directives(name: &str, args: &mut [Arg]) {
    let at = match name {
        "list" | "lsub" => 1,
        "status" | "fetch" => 2,
        _ => return,
    };
    let Some(Arg::List(list)) = args.get_mut(at) else {
        return;
    };
    if has_directives(list) {
        return;
    }
    if name == "list" || name == "lsub" {
        list.insert(0, directive("$!unordered"));
        return;
    }
    if name == "fetch" {
        // `flags (...)` inside the FETCH list.
        for k in 1..list.len() {
            let after_flags =
                matches!(list[k - 1].atom(), Some(a) if a.eq_ignore_ascii_case("flags"));
            if let (true, Arg::List(flags)) = (after_flags, &mut list[k])
                && !has_directives(flags)
            {
                for d in [
                    "$!ignore=$HasNoAttachment",
                    "$!ignore=$HasAttachment",
                    "$!ignore=\\recent",
                    "$!noextra",
                    "$!unordered",
                ] {
                    flags.insert(0, directive(d));
                }
            }
        }
    }
    list.insert(0, directive("$!unordered=2"));
}
