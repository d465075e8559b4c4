//! Running a parsed script against a server, group by group, as imaptest
//! does: bring the connections to the script's start state over IMAP, send a
//! group's commands (waiting for `+` before each synchronising literal),
//! match every untagged reply against the group's expectations as it arrives,
//! and check each tagged reply as a prefix.

use std::net::SocketAddr;
use std::time::Duration;

use super::args::{self, Arg, show};
use super::matcher::Matcher;
use super::mbox::Mbox;
use super::script::{Command, Existence, Group, Script, State};
use super::wire::{Conn, Response, literal_pieces};

/// Who logs in and which mailbox `$mailbox` names.
pub struct Account {
    pub user: String,
    pub password: String,
    pub mailbox: String,
}

/// What a passing run checked.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Tagged replies and `*` / `!` expectations evaluated.
    pub checked: usize,
    /// `?` expectations (may or may not come: nothing to fail).
    pub optional: usize,
}

/// The server's capabilities as a logged-in client sees them.
pub async fn capabilities(addr: SocketAddr, account: &Account) -> Result<Vec<String>, String> {
    let mut c = Conn::connect(addr).await?;
    login(&mut c, account).await?;
    c.send(b"C CAPABILITY\r\n").await?;
    let mut caps = Vec::new();
    loop {
        match c.read().await? {
            Some(Response::Untagged(l))
                if l.len() > 11 && l[..11].eq_ignore_ascii_case(b"CAPABILITY ") =>
            {
                caps = String::from_utf8_lossy(&l[11..])
                    .split_whitespace()
                    .map(|s| s.to_ascii_uppercase())
                    .collect();
            }
            Some(Response::Tagged(..)) | None => return Ok(caps),
            Some(_) => {}
        }
    }
}

async fn login(c: &mut Conn, a: &Account) -> Result<(), String> {
    let r = c
        .simple(
            "L",
            format!("LOGIN \"{}\" \"{}\"", a.user, a.password).as_bytes(),
        )
        .await?;
    expect_ok("LOGIN", &r)
}

fn expect_ok(what: &str, rest: &[u8]) -> Result<(), String> {
    if rest.len() >= 2 && rest[..2].eq_ignore_ascii_case(b"OK") {
        Ok(())
    } else {
        Err(format!(
            "setup {what} failed: {}",
            String::from_utf8_lossy(rest)
        ))
    }
}

/// Runs `script` against the server at `addr`.
pub async fn run(
    script: &Script,
    mut mbox: Mbox,
    addr: SocketAddr,
    account: &Account,
) -> Result<Outcome, String> {
    let mut conns = Vec::new();
    for _ in 0..script.connections {
        conns.push(Conn::connect(addr).await?);
    }
    setup(script, &mut conns, &mut mbox, account).await?;
    let mut run = Run {
        script,
        conns,
        mbox,
        mailbox: account.mailbox.clone(),
        m: Matcher::default(),
        out: Outcome::default(),
        tags: 0,
    };
    for (k, n) in [
        ("user", &account.user),
        ("password", &account.password),
        ("mailbox", &account.mailbox),
    ] {
        run.m.vars.insert(k.into(), n.clone());
    }
    let (username, domain) = account
        .user
        .split_once('@')
        .unwrap_or((&account.user, "localhost"));
    run.m.vars.insert("username".into(), username.into());
    run.m.vars.insert("domain".into(), domain.into());
    run.m
        .vars
        .insert("mailbox_url".into(), account.mailbox.clone());
    for g in &script.groups {
        run.group(g).await.map_err(|e| {
            let line = g.commands.first().map(|c| c.line).unwrap_or(0);
            let cmd = g
                .commands
                .first()
                .map(|c| String::from_utf8_lossy(&c.text).into_owned())
                .unwrap_or_else(|| "(greeting)".into());
            format!("line {line} `{cmd}` (connection {}): {e}", g.conn + 1)
        })?;
        if g.sleep_ms > 0 {
            tokio::time::sleep(Duration::from_millis(g.sleep_ms)).await;
        }
    }
    Ok(run.out)
}

/// Brings every connection to the script's start state, as imaptest's
/// start-up does: log in, create the mailbox, append the messages, select.
async fn setup(
    script: &Script,
    conns: &mut [Conn],
    mbox: &mut Mbox,
    a: &Account,
) -> Result<(), String> {
    if script.state >= State::Auth {
        for c in conns.iter_mut() {
            login(c, a).await?;
        }
    }
    let Some(first) = conns.first_mut() else {
        return Ok(());
    };
    if script.state >= State::Created {
        let r = first
            .simple("S1", format!("CREATE \"{}\"", a.mailbox).as_bytes())
            .await?;
        expect_ok("CREATE", &r)?;
    }
    if script.state >= State::Appended {
        for n in 0..script.messages.unwrap_or(mbox.len()) {
            let msg = mbox.next_message().ok_or("the mbox has no messages")?;
            let head = append_head(
                &format!("\"{}\"", a.mailbox),
                msg.date.as_deref(),
                msg.raw.len(),
            );
            let tag = format!("A{n}");
            let r = send_setup(first, &tag, &[head, with_crlf(&msg.raw)]).await?;
            expect_ok("APPEND", &r)?;
        }
    }
    if script.state == State::Selected {
        for c in conns.iter_mut() {
            let r = c
                .simple("S2", format!("SELECT \"{}\"", a.mailbox).as_bytes())
                .await?;
            expect_ok("SELECT", &r)?;
        }
    }
    Ok(())
}

fn append_head(args: &str, date: Option<&str>, size: usize) -> Vec<u8> {
    match date {
        Some(d) => format!("APPEND {args} {d} {{{size}}}\r\n").into_bytes(),
        None => format!("APPEND {args} {{{size}}}\r\n").into_bytes(),
    }
}

fn with_crlf(b: &[u8]) -> Vec<u8> {
    let mut v = b.to_vec();
    v.extend_from_slice(b"\r\n");
    v
}

/// Sends a setup command in pieces (waiting for `+` between them); returns
/// the tagged reply after the tag.
async fn send_setup(c: &mut Conn, tag: &str, pieces: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    for (k, piece) in pieces.iter().enumerate() {
        let bytes = if k == 0 {
            [format!("{tag} ").as_bytes(), piece].concat()
        } else {
            piece.clone()
        };
        c.send(&bytes).await?;
        if k + 1 == pieces.len() {
            break;
        }
        loop {
            match c.read().await? {
                Some(Response::Continue) => break,
                Some(Response::Tagged(t, rest)) if t == tag => return Ok(rest),
                Some(_) => {}
                None => return Err(format!("closed during {tag}")),
            }
        }
    }
    loop {
        match c.read().await? {
            Some(Response::Tagged(t, rest)) if t == tag => return Ok(rest),
            Some(_) => {}
            None => return Err(format!("closed during {tag}")),
        }
    }
}

struct Run<'a> {
    script: &'a Script,
    conns: Vec<Conn>,
    mbox: Mbox,
    mailbox: String,
    m: Matcher,
    out: Outcome,
    tags: usize,
}

/// Which expectations of the running group have been met, and what came.
struct GroupState {
    found: Vec<bool>,
    received: Vec<String>,
    first_extra: Option<String>,
    /// Script tag number → our wire tag, for commands still waiting.
    pending: Vec<(String, usize)>,
}

impl Run<'_> {
    async fn group(&mut self, g: &Group) -> Result<(), String> {
        let c = g.conn;
        if c >= self.conns.len() {
            return Err(format!("no connection {}", c + 1));
        }
        self.m.start_group(self.conns[c].exists);
        let mut st = GroupState {
            found: vec![false; g.untagged.len()],
            received: Vec::new(),
            first_extra: None,
            pending: Vec::new(),
        };
        if g.commands.is_empty() {
            // A banner check: the greeting is the group's only reply.
            let greeting = self.conns[c].greeting.clone();
            let line = greeting.strip_suffix(b"\r\n").unwrap_or(&greeting);
            let line = line.strip_prefix(b"* ").ok_or("greeting is not untagged")?;
            self.untagged(g, &mut st, line)?;
            return self.finish(g, &st);
        }
        for (k, cmd) in g.commands.iter().enumerate() {
            self.tags += 1;
            let tag = format!("{}.{}", c + 1, self.tags);
            st.pending.push((tag.clone(), k));
            self.send(g, &mut st, &tag, cmd).await?;
        }
        while !st.pending.is_empty() {
            match self.conns[c].read().await? {
                Some(resp) => self.response(g, &mut st, resp)?,
                None if g.bye => break,
                None => return Err("the server closed the connection".into()),
            }
        }
        self.finish(g, &st)
    }

    /// The pieces of a command on the wire: APPEND of the next mbox message
    /// when the script gives no body, otherwise the command split before each
    /// synchronising literal.
    fn pieces(&mut self, tag: &str, text: &[u8]) -> Result<Vec<Vec<u8>>, String> {
        if text.eq_ignore_ascii_case(b"append") {
            let msg = self.mbox.next_message().ok_or("the mbox has no messages")?;
            let head = append_head(
                &format!("\"{}\"", self.mailbox),
                msg.date.as_deref(),
                msg.raw.len(),
            );
            return Ok(vec![
                [format!("{tag} ").as_bytes(), &head].concat(),
                with_crlf(&msg.raw),
            ]);
        }
        if text.len() > 7
            && text[..7].eq_ignore_ascii_case(b"append ")
            && !append_has_body(&text[7..])
        {
            let msg = self.mbox.next_message().ok_or("the mbox has no messages")?;
            let args = String::from_utf8_lossy(&text[7..]);
            let head = append_head(&args, None, msg.raw.len());
            return Ok(vec![
                [format!("{tag} ").as_bytes(), &head].concat(),
                with_crlf(&msg.raw),
            ]);
        }
        let mut line = format!("{tag} ").into_bytes();
        line.extend_from_slice(text);
        line.extend_from_slice(b"\r\n");
        Ok(literal_pieces(&line)
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect())
    }

    async fn send(
        &mut self,
        g: &Group,
        st: &mut GroupState,
        tag: &str,
        cmd: &Command,
    ) -> Result<(), String> {
        let text = self.m.expand_command(&cmd.text)?;
        let pieces = self.pieces(tag, &text)?;
        for (k, piece) in pieces.iter().enumerate() {
            self.conns[g.conn].send(piece).await?;
            if k + 1 == pieces.len() {
                break;
            }
            // Wait for the continuation; a tagged reply means the command was refused.
            loop {
                match self.conns[g.conn].read().await? {
                    Some(Response::Continue) => break,
                    Some(resp) => {
                        self.response(g, st, resp)?;
                        if !st.pending.iter().any(|(t, _)| t == tag) {
                            return Ok(());
                        }
                    }
                    None => return Err("the server closed the connection".into()),
                }
            }
        }
        Ok(())
    }

    fn response(&mut self, g: &Group, st: &mut GroupState, resp: Response) -> Result<(), String> {
        match resp {
            Response::Untagged(line) => self.untagged(g, st, &line),
            Response::Continue => Err("unexpected continuation request".into()),
            Response::Tagged(tag, rest) => self.tagged(g, st, &tag, &rest),
        }
    }

    fn tagged(
        &mut self,
        g: &Group,
        st: &mut GroupState,
        tag: &str,
        rest: &[u8],
    ) -> Result<(), String> {
        let at = st
            .pending
            .iter()
            .position(|(t, _)| t == tag)
            .ok_or_else(|| format!("reply for an unknown tag {tag}"))?;
        let (_, k) = st.pending.remove(at);
        let got = args::parse(rest)?;
        let want = g.commands[k].reply.as_deref().unwrap_or(&[]);
        self.m.vars.insert("tag".into(), tag.into());
        let ok = self.m.match_args(want, &got, true);
        self.m.vars.remove("tag");
        self.out.checked += 1;
        if !ok {
            return Err(format!(
                "expected tagged reply `{}`, got `{tag} {}`\nuntagged replies:\n{}",
                show(want),
                String::from_utf8_lossy(rest),
                st.received.join("\n")
            ));
        }
        Ok(())
    }

    /// Matches one untagged reply against every expectation not met yet.
    fn untagged(&mut self, g: &Group, st: &mut GroupState, line: &[u8]) -> Result<(), String> {
        let text = String::from_utf8_lossy(line).into_owned();
        st.received.push(format!("* {}", shorten(&text)));
        let got = args::parse(line)?;
        let prefix = matches!(got.first().and_then(Arg::atom),
            Some(a) if ["ok", "no", "bad", "bye"].iter().any(|s| a.eq_ignore_ascii_case(s)));
        let mut any = false;
        for (i, exp) in g.untagged.iter().enumerate() {
            if st.found[i] {
                continue;
            }
            let saved = self.m.vars.clone();
            if self.m.match_args(&exp.args, &got, prefix) {
                if exp.existence == Existence::MustNot {
                    return Err(format!(
                        "forbidden untagged reply came (script line {}): `! {}` matched `* {}`",
                        exp.line,
                        show(&exp.args),
                        shorten(&text)
                    ));
                }
                st.found[i] = true;
                any = true;
                if g.ordered {
                    break;
                }
                continue;
            }
            self.m.vars = saved;
            if g.ordered && exp.existence == Existence::Must {
                break;
            }
        }
        if !any && st.first_extra.is_none() {
            st.first_extra = Some(text.clone());
        }
        // EXPUNGE moves the sequence map only after it was matched.
        if let [Arg::Atom(n), Arg::Atom(kind), ..] = got.as_slice()
            && kind.eq_ignore_ascii_case("expunge")
            && let Ok(seq) = n.parse()
        {
            self.m.expunged(seq);
        }
        Ok(())
    }

    fn finish(&mut self, g: &Group, st: &GroupState) -> Result<(), String> {
        for (exp, found) in g.untagged.iter().zip(&st.found) {
            match exp.existence {
                Existence::Must if !found => {
                    return Err(format!(
                        "missing untagged reply (script line {}): `* {}`\nreceived:\n{}",
                        exp.line,
                        show(&exp.args),
                        st.received.join("\n")
                    ));
                }
                Existence::Must | Existence::MustNot => self.out.checked += 1,
                Existence::May => self.out.optional += 1,
            }
        }
        if !self.script.ignore_extra_untagged
            && let Some(extra) = &st.first_extra
        {
            return Err(format!("unexpected untagged reply: * {extra}"));
        }
        Ok(())
    }
}

fn shorten(s: &str) -> String {
    if s.len() > 2000 {
        format!("{}…", s.chars().take(2000).collect::<String>())
    } else {
        s.to_string()
    }
}

/// Whether `APPEND` arguments carry the message (a literal or CATENATE) or
/// the runner must supply the next mbox message.
fn append_has_body(args: &[u8]) -> bool {
    let Ok(a) = args::parse(args) else {
        return false;
    };
    let mut i = 1; // the mailbox
    if matches!(a.get(i), Some(Arg::List(_))) {
        i += 1;
    }
    if matches!(a.get(i), Some(Arg::Str(_))) {
        i += 1;
    }
    match a.get(i) {
        Some(Arg::Literal(_)) => true,
        Some(Arg::Atom(s)) => s.eq_ignore_ascii_case("catenate"),
        _ => false,
    }
}
