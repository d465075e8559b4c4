//! Finds every fenced code block of README.md and the `<!-- example: ... -->`
//! marker that says how to check it, and matches program output against the
//! README's shape of it. Pure text work; running is in `readme_examples.rs`.
//!
//! Marker grammar (an HTML comment on the line before the fence, blank lines
//! allowed between): `<!-- example: KIND[; OPTION]... -->`, where an option is
//! `KEY VALUE` and quoted values (`replace "A" "B"`) use `"` with `\"`.

use std::path::{Path, PathBuf};

/// How a README block is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A whole scenario file: `mailrig scenario check` passes without warnings.
    Scenario,
    /// `[[fault]]` tables: appended to a base scenario, which must then check clean.
    FaultRule,
    /// A probe target file: loads with mailrig-probe's target loader (and
    /// probes a `mailrig serve` when `serve ARGS` is given).
    Target,
    /// Shell lines run with `bash -e` on 127.0.0.1.
    Sh,
    /// A command synopsis: its flags equal the command's `--help` flags.
    Usage,
    /// Program output: each line (`...` for any lines) appears in the real
    /// output of `run mailrig ARGS`, in order.
    Output,
    /// Rust code that is the text of a compiled file (`file PATH`).
    Compiled,
    /// Not run, with the reason.
    NotRun,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "scenario" => Kind::Scenario,
            "fault-rule" => Kind::FaultRule,
            "target" => Kind::Target,
            "sh" => Kind::Sh,
            "usage" => Kind::Usage,
            "output" => Kind::Output,
            "compiled" => Kind::Compiled,
            "not-run" => Kind::NotRun,
            _ => return None,
        })
    }

    /// The option keys this kind takes.
    fn options(self) -> &'static [&'static str] {
        match self {
            Kind::Scenario => &[],
            Kind::FaultRule => &["base"],
            Kind::Target => &["serve", "exit"],
            Kind::Sh => &["serve", "replace", "exit", "expect"],
            Kind::Usage => &[],
            Kind::Output => &["run", "exit"],
            Kind::Compiled => &["file"],
            Kind::NotRun => &[],
        }
    }

    /// Fence languages the kind accepts ("" is a fence without one).
    fn languages(self) -> &'static [&'static str] {
        match self {
            Kind::Scenario | Kind::FaultRule | Kind::Target => &["toml"],
            Kind::Sh => &["sh", "bash", "shell"],
            Kind::Compiled => &["rust"],
            Kind::Usage | Kind::Output | Kind::NotRun => &["", "text", "sh", "console"],
        }
    }
}

/// One fenced block of the README.
#[derive(Debug, Clone)]
pub struct Block {
    /// 1-based line of the opening fence.
    pub line: usize,
    pub lang: String,
    /// The lines between the fences, each ending in `\n`.
    pub text: String,
    /// The marker, or why there is no usable one.
    pub marker: Result<Marker, String>,
}

/// A parsed `<!-- example: ... -->` marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub kind: Kind,
    /// `(key, value)` in order; for `not-run` the single reason has key "".
    pub options: Vec<(String, String)>,
}

impl Marker {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<&str> {
        self.options
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// `exit N`, default 0.
    pub fn exit(&self) -> Result<i32, String> {
        match self.get("exit") {
            None => Ok(0),
            Some(v) => v
                .parse()
                .map_err(|_| format!("`exit {v}`: give an exit code (a number)")),
        }
    }
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// Every block of the README at the repository root.
pub fn readme_blocks() -> Vec<Block> {
    let path = repo_root().join("README.md");
    let text = std::fs::read_to_string(&path).expect("read README.md");
    parse_blocks(&text)
}

/// Fenced blocks (```lang ... ```) of a Markdown text with their markers.
pub fn parse_blocks(md: &str) -> Vec<Block> {
    let lines: Vec<&str> = md.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].trim_start();
        let Some(info) = l.strip_prefix("```") else {
            i += 1;
            continue;
        };
        let lang = info.trim().to_string();
        let start = i;
        let mut text = String::new();
        i += 1;
        while i < lines.len() && lines[i].trim() != "```" {
            text.push_str(lines[i]);
            text.push('\n');
            i += 1;
        }
        // The marker: the nearest non-blank line above the fence.
        let above = lines[..start]
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim());
        let marker = match above {
            Some(l) if l.starts_with("<!-- example:") => {
                parse_marker(l).and_then(|m| check_language(&m, &lang).map(|()| m))
            }
            _ => Err(
                "no `<!-- example: KIND ... -->` marker on the line before the block \
                 (kinds: scenario, fault-rule, target, sh, usage, output, compiled, not-run; REASON)"
                    .to_string(),
            ),
        };
        blocks.push(Block {
            line: start + 1,
            lang,
            text,
            marker,
        });
        i += 1;
    }
    blocks
}

fn check_language(m: &Marker, lang: &str) -> Result<(), String> {
    if m.kind.languages().contains(&lang) {
        Ok(())
    } else {
        Err(format!(
            "a `{:?}` example must be a block of {:?}, not ```{lang}",
            m.kind,
            m.kind.languages()
        ))
    }
}

/// Parses `<!-- example: KIND[; KEY VALUE]... -->`.
pub fn parse_marker(line: &str) -> Result<Marker, String> {
    let body = line
        .trim()
        .strip_prefix("<!-- example:")
        .and_then(|r| r.strip_suffix("-->"))
        .ok_or_else(|| {
            format!("marker `{line}` must be `<!-- example: KIND ... -->` on one line")
        })?;
    let mut parts = body.split(';').map(str::trim);
    let kind_word = parts.next().unwrap_or("");
    let kind = Kind::parse(kind_word)
        .ok_or_else(|| format!("marker `{line}`: unknown kind `{kind_word}`"))?;
    let rest: Vec<&str> = parts.collect();
    if kind == Kind::NotRun {
        let reason = rest.join("; ");
        if reason.trim().is_empty() {
            return Err(format!("marker `{line}`: `not-run` needs a reason"));
        }
        return Ok(Marker {
            kind,
            options: vec![(String::new(), reason)],
        });
    }
    let mut options = Vec::new();
    for opt in rest {
        if opt.is_empty() {
            continue;
        }
        let (key, value) = opt.split_once(' ').unwrap_or((opt, ""));
        if !kind.options().contains(&key) {
            return Err(format!(
                "marker `{line}`: `{kind_word}` takes no option `{key}` (it takes {:?})",
                kind.options()
            ));
        }
        options.push((key.to_string(), value.trim().to_string()));
    }
    Ok(Marker { kind, options })
}

/// The `"..."` strings of an option value (`replace "A" "B"`).
pub fn quoted(value: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => return Ok(out),
            Some('"') => {}
            Some(c) => return Err(format!("`{value}`: expected a \"quoted\" string at `{c}`")),
        }
        let mut s = String::new();
        loop {
            match chars.next() {
                None => return Err(format!("`{value}`: unterminated quoted string")),
                Some('\\') => s.extend(chars.next()),
                Some('"') => break,
                Some(c) => s.push(c),
            }
        }
        out.push(s);
    }
}

/// Splits a command line into words (plain whitespace, no quoting: the
/// marker commands are simple).
pub fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

// ---- output shape ------------------------------------------------------------

/// Whether README token `want` matches real token `got`: equal, or equal
/// where `…` stands for any characters, or both measurements of the same
/// shape (a decimal like `0.01`, a time like `16:43:07.927`). Integers must
/// be equal: `2/25 delivered, 23 missing` is the claim, not an example value.
pub fn token_matches(want: &str, got: &str) -> bool {
    if want == got {
        return true;
    }
    if let Some((head, tail)) = want.split_once('…') {
        return got.len() >= head.len() + tail.len()
            && got.starts_with(head)
            && token_matches_suffix(tail, &got[head.len()..]);
    }
    let is_measure = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == ':')
            && s.contains(['.', ':'])
            && s.starts_with(|c: char| c.is_ascii_digit())
    };
    let shape = |s: &str| -> String {
        // digits runs collapse, so 0.01 and 12.5 share a shape
        let mut out = String::new();
        for c in s.chars() {
            let d = if c.is_ascii_digit() { '9' } else { c };
            if !(d == '9' && out.ends_with('9')) {
                out.push(d);
            }
        }
        out
    };
    is_measure(want) && is_measure(got) && shape(want) == shape(got)
}

fn token_matches_suffix(want: &str, got: &str) -> bool {
    if want.contains('…') {
        // another wildcard: try every split
        (0..=got.len())
            .filter(|&i| got.is_char_boundary(i))
            .any(|i| token_matches(want, &got[i..]))
    } else {
        got.ends_with(want)
    }
}

/// Whether a README line matches a real line, token by token.
pub fn line_matches(want: &str, got: &str) -> bool {
    let w: Vec<&str> = want.split_whitespace().collect();
    let g: Vec<&str> = got.split_whitespace().collect();
    w.len() == g.len() && w.iter().zip(&g).all(|(a, b)| token_matches(a, b))
}

/// Checks that every line of `shown` (the README block; `...` lines stand for
/// any lines) matches a line of `real`, in order. Returns the first README
/// line that matches nothing after the previous match.
pub fn shape_mismatch(shown: &str, real: &str) -> Option<String> {
    let real: Vec<&str> = real.lines().collect();
    let mut at = 0;
    for want in shown.lines() {
        let t = want.trim();
        if t.is_empty() || t == "..." || t == "…" {
            continue;
        }
        match real[at..].iter().position(|got| line_matches(want, got)) {
            Some(p) => at += p + 1,
            None => return Some(want.to_string()),
        }
    }
    None
}

// ---- shell scripts -----------------------------------------------------------

/// The 1-based line range `(first, last)` of the last command of a script
/// (continuation lines with `\` joined; blank and comment lines skipped).
pub fn last_command_lines(script: &str) -> Option<(usize, usize)> {
    let mut last = None;
    let mut open: Option<usize> = None;
    for (i, l) in script.lines().enumerate() {
        let n = i + 1;
        let t = l.trim();
        if open.is_none() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        let first = *open.get_or_insert(n);
        if t.ends_with('\\') {
            continue;
        }
        last = Some((first, n));
        open = None;
    }
    last
}

/// A `mailrig serve ARGS [&]` line of a shell block: its ARGS.
pub fn serve_line_args(line: &str) -> Option<Vec<String>> {
    let t = line.trim();
    let t = t.strip_suffix('&').unwrap_or(t).trim_end();
    let rest = t.strip_prefix("mailrig serve")?;
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    Some(words(rest))
}
