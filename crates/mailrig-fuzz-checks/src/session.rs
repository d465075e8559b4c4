//! SMTP, IMAP and POP3 sessions fed a client's byte stream cut at arbitrary
//! read boundaries, driven the way their connection loops (`*/conn.rs`) drive
//! them, minus the sockets: the same framing, the same order of calls, STARTTLS
//! ending the clear-text part. Invariants:
//!
//! * what the server says does not depend on where reads end (one read, the
//!   fuzzer's cuts and, for short streams, one byte per read give the same
//!   transcript once the UIDVALIDITY seed, dates and queue ids are masked);
//! * what it says is well-formed: SMTP reply lines `ddd[ -]text CRLF`; every
//!   IMAP response parses with imap-codec, and printed again by imap-codec it
//!   parses to the same response; every POP3 response is one `+OK`/`-ERR`
//!   line, or a dot-stuffed multi-line block where the command calls for one;
//! * SMTP never says `250 ... queued` for a message it stored nowhere.
//!
//! Flags byte: bit 0 = `bare_lf = "reject"`, bit 1 = the world has fault rules.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use bytes::BytesMut;
use chrono::TimeZone;
use imap_codec::decode::Decoder;
use imap_codec::encode::Encoder;
use imap_codec::{GreetingCodec, ResponseCodec};
use mailrig_core::fault::FaultPlan;
use mailrig_core::store::INBOX;
use mailrig_core::{Flags, NewMessage, Scenario, Store};
use mailrig_server::ServerState;
use mailrig_server::driver::{Session as DriverSession, Step};
use mailrig_server::tls::TlsMaterial;

use crate::split::Split;

/// The world every session target runs in: the credentials of the raw-protocol
/// tests (kanzlei.test, patente.test, example.test; password `secret`), an
/// alias and a catch-all. `BARE_LF` is replaced by the policy.
pub const WORLD_TOML: &str = r#"
[server]
hostname = "mx.kanzlei.test"
banner = "mx.kanzlei.test ESMTP mailrig"
bare_lf = "BARE_LF"

[[domain]]
name = "kanzlei.test"
mailboxes = ["anna", "bernd", "clara"]
password = "secret"
[domain.aliases]
team = ["anna", "bernd"]

[[domain]]
name = "patente.test"
mailboxes = ["user01..user25"]
password = "secret"

[[domain]]
name = "example.test"
mailboxes = ["alice", "bob", "carol"]
password = "secret"

[[domain]]
name = "shop.test"
mailboxes = ["orders", "support"]
password = "secret"
catch_all = "support"
"#;

/// Fault rules of the "with faults" worlds: only counters and selectors, no
/// clocks or chance, so two runs of the same stream fire the same faults.
const FAULTS_TOML: &str = r#"
[[fault]]
stage = "rcpt"
action = "reject"
mailbox = "user02"

[[fault]]
stage = "mail"
action = "defer"
every = 3

[[fault]]
stage = "route"
action = "duplicate"
mailbox = "user03"
copies = 2

[[fault]]
stage = "route"
action = "drop"
mailbox = "user04"

[[fault]]
stage = "route"
action = "alter"
domain = "example.test"
strip_headers = ["Subject"]

[[fault]]
stage = "end-of-data"
action = "quota-full"
mailbox = "clara"

[[fault]]
stage = "imap-fetch"
action = "hide-messages"
user = "bob@example.test"

[[fault]]
stage = "pop3"
action = "fail-login"
user = "bernd@kanzlei.test"
"#;

/// Messages in every INBOX of alice, anna and user01 at the start.
const FIXTURES: &[&[u8]] = &[
    b"From: Sender <sender@extern.test>\r\nTo: alice@example.test\r\nSubject: hello\r\nDate: Mon, 4 Mar 2024 10:00:00 +0000\r\nMessage-ID: <1@extern.test>\r\n\r\nHello there.\r\n.a line with a dot\r\n\r\n",
    b"From: =?UTF-8?B?SsO8cmdlbg==?= <j@extern.test>\r\nTo: anna@kanzlei.test, bernd@kanzlei.test\r\nCc: team@kanzlei.test\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\nDate: Tue, 5 Mar 2024 11:30:00 +0100\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n--b1\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\nContent-Disposition: attachment; filename=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n",
    b"Subject: no date, no from\r\n\r\n",
];

struct Fixed {
    tls: Arc<TlsMaterial>,
    /// Indexed by the two flag bits.
    scenarios: Vec<Scenario>,
}

fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| {
        let scenarios = (0..4)
            .map(|i| {
                let policy = if i & 1 != 0 { "reject" } else { "normalize" };
                let mut toml = WORLD_TOML.replace("BARE_LF", policy);
                if i & 2 != 0 {
                    toml.push_str(FAULTS_TOML);
                }
                Scenario::parse(&toml, "fuzz-world.toml")
                    .unwrap_or_else(|e| panic!("the fuzz world is invalid: {e}"))
            })
            .collect();
        let tls = TlsMaterial::generate("mx.kanzlei.test")
            .unwrap_or_else(|e| panic!("no test certificate: {e}"));
        Fixed {
            tls: Arc::new(tls),
            scenarios,
        }
    })
}

/// A fresh server (store with the fixtures, fault counters at zero).
pub fn fresh_state(flags: u8) -> Arc<ServerState> {
    let f = fixed();
    let s = &f.scenarios[usize::from(flags & 3)];
    let world = Arc::clone(&s.world);
    let store = Store::memory(&world);
    let date = chrono::Utc
        .with_ymd_and_hms(2024, 3, 4, 10, 0, 0)
        .single()
        .expect("a valid date");
    for user in [
        "alice@example.test",
        "anna@kanzlei.test",
        "user01@patente.test",
    ] {
        let id = world.mailbox_by_address(user).expect("fixture mailbox");
        for raw in FIXTURES {
            let msg = NewMessage {
                raw: bytes::Bytes::from_static(raw),
                envelope: None,
                flags: Flags::default(),
                internal_date: date,
            };
            store
                .mailbox(id)
                .append(INBOX, msg)
                .expect("fixture append");
        }
    }
    let faults: FaultPlan = s.faults.rebuild(&world);
    ServerState::new(world, Arc::new(store), Arc::clone(&f.tls), faults)
}

fn peer() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 40000))
}

/// The UIDVALIDITY every folder of a fresh store starts from.
fn validity_seed(state: &ServerState) -> u32 {
    let id = state
        .world
        .mailbox_by_address("alice@example.test")
        .expect("alice");
    state
        .store
        .mailbox(id)
        .with_folder(INBOX, |f| f.uid_validity)
        .expect("INBOX")
}

/// Masks what legitimately differs between two runs: numbers within 10^6
/// above the UIDVALIDITY seed (taken from the clock), IMAP date-times and
/// SMTP queue ids.
pub fn mask(out: &[u8], seed: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(out.len());
    let mut i = 0;
    while i < out.len() {
        if out[i..].starts_with(b"queued as ") {
            v.extend_from_slice(b"queued as Q");
            i += 10;
            while i < out.len() && out[i].is_ascii_hexdigit() {
                i += 1;
            }
            continue;
        }
        if is_date_time(&out[i..]) {
            v.extend_from_slice(b"<DATE>");
            i += 26;
            continue;
        }
        if out[i].is_ascii_digit() && (i == 0 || !out[i - 1].is_ascii_digit()) {
            let end = out[i..]
                .iter()
                .position(|b| !b.is_ascii_digit())
                .map_or(out.len(), |n| i + n);
            let n: Option<u64> = std::str::from_utf8(&out[i..end])
                .ok()
                .and_then(|s| s.parse().ok());
            match n {
                Some(n) if n >= u64::from(seed) && n < u64::from(seed) + 1_000_000 => {
                    v.extend_from_slice(format!("V+{}", n - u64::from(seed)).as_bytes());
                }
                _ => v.extend_from_slice(&out[i..end]),
            }
            i = end;
            continue;
        }
        v.push(out[i]);
        i += 1;
    }
    v
}

/// `dd-Mon-yyyy hh:mm:ss +zzzz` (26 bytes; day may start with a space).
fn is_date_time(s: &[u8]) -> bool {
    let p: &[u8] = b"dd-AAA-dddd dd:dd:dd Sdddd";
    s.len() >= p.len()
        && p.iter().zip(s).all(|(p, c)| match p {
            b'd' => c.is_ascii_digit() || *c == b' ',
            b'A' => c.is_ascii_alphabetic(),
            b'S' => *c == b'+' || *c == b'-',
            p => p == c,
        })
}

/// Runs `run` on one read, the fuzzer's cuts and (short streams) one byte
/// per read, asserts the masked transcripts agree, and returns the one-read
/// transcript unmasked.
fn same_for_every_cut(
    what: &str,
    s: &Split<'_>,
    mut run: impl FnMut(&[&[u8]]) -> (Vec<u8>, u32),
) -> Vec<u8> {
    let (raw, seed) = run(&[s.stream]);
    let whole = mask(&raw, seed);
    let show = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (cut, seed) = run(&s.chunks());
    let cut = mask(&cut, seed);
    assert!(
        cut == whole,
        "{what}: reads cut at {:?} get another transcript than one read\n--- one read:\n{}\n--- cut:\n{}",
        s.cuts,
        show(&whole),
        show(&cut)
    );
    if s.stream.len() <= 512 {
        let (bytes, seed) = run(&s.bytes());
        let bytes = mask(&bytes, seed);
        assert!(
            bytes == whole,
            "{what}: one byte per read gets another transcript than one read\n--- one read:\n{}\n--- bytes:\n{}",
            show(&whole),
            show(&bytes)
        );
    }
    // The format checks read what the server really said, not the mask.
    raw
}

// ---- SMTP --------------------------------------------------------------------

/// One SMTP conversation: the transcript, and the copies stored per message
/// the server acknowledged.
pub struct SmtpRun {
    pub out: Vec<u8>,
    pub acknowledged: Vec<usize>,
}

/// Messages stored in the whole world so far.
fn stored_total(state: &ServerState) -> usize {
    state
        .world
        .domains
        .iter()
        .flat_map(|d| d.mailboxes.iter())
        .map(|&id| {
            state
                .store
                .mailbox(id)
                .messages(INBOX)
                .map_or(0, |m| m.len())
        })
        .sum()
}

/// What a session asked the driver for, once the steps it can settle
/// without I/O are carried out.
enum Settled {
    /// Waiting for more input.
    Read,
    /// Closed, aborted, or upgrading to TLS (the rest would be TLS records).
    Stop,
}

/// Carries out steps as `driver::run` does, without a socket: pauses and
/// tarpits cost no time here, blocking effects run inline. `on_blocking`
/// is told of each blocking effect, before and after it runs.
fn settle<S: DriverSession>(
    session: &mut S,
    mut step: Step,
    inbuf: &mut BytesMut,
    out: &mut Vec<u8>,
    on_blocking: &mut dyn FnMut(bool, &[u8]),
) -> Settled {
    loop {
        step = match step {
            Step::Read | Step::Watch(_) | Step::Lend(..) => return Settled::Read,
            Step::Continue | Step::Write | Step::Pause { .. } | Step::Tarpit(_) => {
                session.input(inbuf, out)
            }
            Step::Blocking => {
                on_blocking(false, out);
                let next = session.run_blocking(out);
                on_blocking(true, out);
                next
            }
            Step::StartTls(_) | Step::Close | Step::Abort => return Settled::Stop,
        };
    }
}

/// Drives an SMTP session as the connection driver does.
pub fn run_smtp(state: Arc<ServerState>, reads: &[&[u8]]) -> SmtpRun {
    use mailrig_server::smtp::session::Session;
    let mut run = SmtpRun {
        out: Vec::new(),
        acknowledged: Vec::new(),
    };
    let mut session = Session::new(Arc::clone(&state), peer(), false);
    let mut inbuf = BytesMut::new();
    let mut before = (0, 0);
    let acknowledged = &mut run.acknowledged;
    let mut on_blocking = |done: bool, out: &[u8]| {
        if !done {
            before = (stored_total(&state), out.len());
        } else if out[before.1..].starts_with(b"250") {
            acknowledged.push(stored_total(&state) - before.0);
        }
    };
    let step = DriverSession::greeting(&mut session, &mut run.out);
    if let Settled::Stop = settle(
        &mut session,
        step,
        &mut inbuf,
        &mut run.out,
        &mut on_blocking,
    ) {
        return run;
    }
    for read in reads {
        inbuf.extend_from_slice(read);
        let step = DriverSession::input(&mut session, &mut inbuf, &mut run.out);
        if let Settled::Stop = settle(
            &mut session,
            step,
            &mut inbuf,
            &mut run.out,
            &mut on_blocking,
        ) {
            break;
        }
    }
    run
}

/// Asserts every line is `ddd[ -]text CRLF` and continuation lines keep their code.
pub fn assert_smtp_replies(out: &[u8]) {
    let mut continued: Option<&[u8]> = None;
    for l in out.split_inclusive(|b| *b == b'\n') {
        let shown = String::from_utf8_lossy(l);
        assert!(
            l.len() >= 6
                && l[..3].iter().all(u8::is_ascii_digit)
                && (b'2'..=b'5').contains(&l[0])
                && (l[3] == b' ' || l[3] == b'-')
                && l.ends_with(b"\r\n")
                && !l[..l.len() - 2].contains(&b'\r'),
            "malformed SMTP reply line {shown:?}"
        );
        if let Some(code) = continued {
            assert_eq!(
                &l[..3],
                code,
                "multi-line reply changes its code at {shown:?}"
            );
        }
        continued = (l[3] == b'-').then(|| &l[..3]);
    }
    assert!(
        continued.is_none(),
        "the transcript ends inside a multi-line reply"
    );
}

/// The fuzz target `smtp_session`.
pub fn check_smtp(input: &[u8]) {
    let s = Split::parse(input);
    let faults = s.flags & 2 != 0;
    let out = same_for_every_cut("SMTP", &s, |reads| {
        let state = fresh_state(s.flags);
        let seed = validity_seed(&state);
        let run = run_smtp(state, reads);
        if !faults {
            assert!(
                run.acknowledged.iter().all(|&n| n > 0),
                "a message was acknowledged with 250 but stored nowhere"
            );
        }
        (run.out, seed)
    });
    assert_smtp_replies(&out);
}

// ---- IMAP --------------------------------------------------------------------

/// Drives an IMAP session as the connection driver does (no other session
/// changes the store, so IDLE never has news).
pub fn run_imap(state: Arc<ServerState>, reads: &[&[u8]]) -> Vec<u8> {
    use mailrig_server::imap::Session;
    let mut out = Vec::new();
    let mut session = Session::new(state, false).with_peer(peer());
    let mut inbuf = BytesMut::new();
    let step = DriverSession::greeting(&mut session, &mut out);
    if let Settled::Stop = settle(&mut session, step, &mut inbuf, &mut out, &mut |_, _| {}) {
        return out;
    }
    for read in reads {
        inbuf.extend_from_slice(read);
        let step = DriverSession::input(&mut session, &mut inbuf, &mut out);
        if let Settled::Stop = settle(&mut session, step, &mut inbuf, &mut out, &mut |_, _| {}) {
            break;
        }
    }
    out
}

/// Asserts the transcript is a greeting and then whole responses, each of
/// which imap-codec parses, prints, and parses again to the same response.
pub fn assert_imap_responses(out: &[u8]) {
    let show = |b: &[u8]| {
        let end = b
            .iter()
            .position(|&c| c == b'\n')
            .map_or(b.len(), |i| i + 1);
        String::from_utf8_lossy(&b[..end.min(300)]).into_owned()
    };
    let (mut rest, greeting) = GreetingCodec::default()
        .decode(out)
        .unwrap_or_else(|e| panic!("greeting {:?} does not parse: {e:?}", show(out)));
    let printed = GreetingCodec::default().encode(&greeting).dump();
    let (_, again) = GreetingCodec::default()
        .decode(&printed)
        .unwrap_or_else(|e| {
            panic!(
                "reprinted greeting {:?} does not parse: {e:?}",
                show(&printed)
            )
        });
    assert_eq!(again, greeting, "greeting changes when printed and parsed");
    let codec = ResponseCodec::default();
    while !rest.is_empty() {
        if let Some(next) = esearch_response(rest) {
            rest = next;
            continue;
        }
        let (next, response) = codec
            .decode(rest)
            .unwrap_or_else(|e| panic!("response {:?} does not parse: {e:?}", show(rest)));
        let printed = codec.encode(&response).dump();
        match codec.decode(&printed) {
            Ok((left, again)) => {
                assert!(
                    left.is_empty(),
                    "reprinted {:?} leaves bytes",
                    show(&printed)
                );
                assert_eq!(
                    again,
                    response,
                    "response {:?} changes when printed and parsed",
                    show(rest)
                );
            }
            Err(e) => panic!(
                "response {:?} reprinted as {:?} does not parse: {e:?}",
                show(rest),
                show(&printed)
            ),
        }
        rest = next;
    }
}

/// imap-codec does not know ESEARCH (RFC 4731), so an `* ESEARCH` line is
/// checked against its grammar here: an optional `(TAG "...")`, an optional
/// `UID`, then return-data pairs of a known name and a number or sequence
/// set. Returns what follows the line, or `None` when `out` does not start
/// with an ESEARCH response; panics when it does and breaks the grammar.
fn esearch_response(out: &[u8]) -> Option<&[u8]> {
    let body = out.strip_prefix(b"* ESEARCH")?;
    let end = body
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or_else(|| {
            panic!(
                "ESEARCH response {:?} has no CRLF",
                String::from_utf8_lossy(out)
            )
        });
    let line = std::str::from_utf8(&body[..end]).unwrap_or_else(|_| {
        panic!(
            "ESEARCH response {:?} is not UTF-8",
            String::from_utf8_lossy(out)
        )
    });
    let mut rest = line;
    if let Some(tagged) = rest.strip_prefix(" (TAG \"") {
        let close = tagged
            .find("\")")
            .unwrap_or_else(|| panic!("ESEARCH {line:?}: unterminated TAG"));
        rest = &tagged[close + 2..];
    }
    if let Some(after) = rest
        .strip_prefix(" UID")
        .filter(|a| a.is_empty() || a.starts_with(' '))
    {
        rest = after;
    }
    // Words, a parenthesised group (PARTIAL, ADDTO, REMOVEFROM) being one.
    let mut words: Vec<&str> = Vec::new();
    let mut i = 0;
    let bytes = rest.as_bytes();
    while i < bytes.len() {
        if bytes[i] == b' ' {
            i += 1;
            continue;
        }
        let end = if bytes[i] == b'(' {
            rest[i..]
                .find(')')
                .map(|e| i + e + 1)
                .unwrap_or_else(|| panic!("ESEARCH {line:?}: unclosed ("))
        } else {
            rest[i..].find(' ').map_or(bytes.len(), |e| i + e)
        };
        words.push(&rest[i..end]);
        i = end;
    }
    assert!(
        rest.is_empty() || rest.starts_with(' '),
        "ESEARCH {line:?}: expected a space before {rest:?}"
    );
    assert!(
        words.len().is_multiple_of(2),
        "ESEARCH {line:?}: a name without a value"
    );
    for pair in words.chunks(2) {
        let (name, value) = (pair[0], pair[1]);
        let set_ok = |v: &str| {
            !v.is_empty()
                && v.split([',', ':'])
                    .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        };
        match name {
            "MIN" | "MAX" | "COUNT" | "MODSEQ" => assert!(
                !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()),
                "ESEARCH {line:?}: {name} needs a number, got {value:?}"
            ),
            "ALL" => assert!(
                set_ok(value),
                "ESEARCH {line:?}: ALL needs a sequence set, got {value:?}"
            ),
            "PARTIAL" | "ADDTO" | "REMOVEFROM" => {
                let inner = value
                    .strip_prefix('(')
                    .and_then(|v| v.strip_suffix(')'))
                    .unwrap_or_else(|| {
                        panic!("ESEARCH {line:?}: {name} needs (a b), got {value:?}")
                    });
                let (head, set) = inner.split_once(' ').unwrap_or_else(|| {
                    panic!("ESEARCH {line:?}: {name} needs two parts, got {value:?}")
                });
                let head_ok = if name == "PARTIAL" {
                    head.split_once(':').is_some_and(|(a, b)| {
                        [a, b].iter().all(|n| {
                            let d = n.strip_prefix('-').unwrap_or(n);
                            !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit())
                        })
                    })
                } else {
                    !head.is_empty() && head.bytes().all(|c| c.is_ascii_digit())
                };
                assert!(head_ok, "ESEARCH {line:?}: {name} starts with {head:?}");
                assert!(
                    set_ok(set) || (name == "PARTIAL" && set == "NIL"),
                    "ESEARCH {line:?}: {name} needs a sequence set, got {set:?}"
                );
            }
            other => panic!("ESEARCH {line:?}: unknown return data {other:?}"),
        }
    }
    Some(&body[end + 2..])
}

/// The fuzz target `imap_session`.
pub fn check_imap(input: &[u8]) {
    let s = Split::parse(input);
    let out = same_for_every_cut("IMAP", &s, |reads| {
        let state = fresh_state(s.flags);
        let seed = validity_seed(&state);
        (run_imap(state, reads), seed)
    });
    assert_imap_responses(&out);
}

// ---- POP3 --------------------------------------------------------------------

/// Drives a POP3 session as the connection driver does; returns the
/// transcript cut into (command line or `None` for the greeting and
/// over-long lines, what the server answered to it). The reads are cut
/// once more after every line end, so that each answer can be paired with
/// its command; the cuts inside lines stay where the input put them.
pub fn run_pop3(state: Arc<ServerState>, reads: &[&[u8]]) -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
    use mailrig_server::pop3::session::{MAX_COMMAND_LINE, Session};
    let mut turns = Vec::new();
    let mut session = Session::new(Arc::clone(&state), false).with_peer(peer());
    let mut out = Vec::new();
    let mut inbuf = BytesMut::new();
    let step = DriverSession::greeting(&mut session, &mut out);
    let settled = settle(&mut session, step, &mut inbuf, &mut out, &mut |_, _| {});
    turns.push((None, std::mem::take(&mut out)));
    if let Settled::Stop = settled {
        return turns;
    }
    let mut line: Vec<u8> = Vec::new();
    for read in reads {
        for piece in read.split_inclusive(|&b| b == b'\n') {
            line.extend_from_slice(piece);
            inbuf.extend_from_slice(piece);
            let step = DriverSession::input(&mut session, &mut inbuf, &mut out);
            let settled = settle(&mut session, step, &mut inbuf, &mut out, &mut |_, _| {});
            if piece.ends_with(b"\n") {
                let said = (line.len() <= MAX_COMMAND_LINE).then(|| std::mem::take(&mut line));
                line.clear();
                turns.push((said, std::mem::take(&mut out)));
            } else if !out.is_empty() {
                // An over-long line answered before its end.
                turns.push((None, std::mem::take(&mut out)));
            }
            if let Settled::Stop = settled {
                return turns;
            }
        }
    }
    turns
}

/// Whether a successful answer to `line` is a multi-line block (RFC 1939,
/// RFC 2449 CAPA).
fn multi_line(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // As the session splits it: the verb up to the first space, then
    // arguments between spaces, empty ones dropped ("UIDL  " has none).
    let (verb, arg) = match line.iter().position(|&b| b == b' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, &b""[..]),
    };
    let verb = verb.to_ascii_uppercase();
    let has_arg = arg.split(|&b| b == b' ').any(|a| !a.is_empty());
    match verb.as_slice() {
        b"CAPA" | b"RETR" | b"TOP" => true,
        b"LIST" | b"UIDL" => !has_arg,
        _ => false,
    }
}

/// Asserts each answer is one status line, or a status line and a
/// dot-stuffed block ending in `.` CRLF when the command calls for one.
pub fn assert_pop3_responses(turns: &[(Option<Vec<u8>>, Vec<u8>)]) {
    for (said, answer) in turns {
        let shown = |b: &[u8]| {
            String::from_utf8_lossy(b)
                .chars()
                .take(400)
                .collect::<String>()
        };
        let what = said
            .as_deref()
            .map(shown)
            .unwrap_or_else(|| "(greeting / over-long line)".into());
        let mut lines = answer.split_inclusive(|b| *b == b'\n');
        let Some(first) = lines.next() else {
            // A command after QUIT gets no answer: the session has ended.
            continue;
        };
        assert!(
            (first.starts_with(b"+OK ")
                || first == b"+OK\r\n"
                || first.starts_with(b"-ERR ")
                || first == b"-ERR\r\n")
                && first.ends_with(b"\r\n")
                && !first[..first.len() - 2].contains(&b'\r'),
            "to {what:?} the first line {:?} is no status line",
            shown(first)
        );
        let block = first.starts_with(b"+OK") && said.as_deref().is_some_and(multi_line);
        let rest: Vec<&[u8]> = lines.collect();
        if !block {
            assert!(
                rest.is_empty(),
                "to {what:?} more than one line: {:?}",
                shown(answer)
            );
            continue;
        }
        let (last, body) = rest
            .split_last()
            .unwrap_or_else(|| panic!("to {what:?} a block without its end: {:?}", shown(answer)));
        assert_eq!(
            *last, b".\r\n",
            "to {what:?} the block does not end with .CRLF"
        );
        for l in body {
            assert!(
                l.ends_with(b"\r\n"),
                "to {what:?} line {:?} lacks CRLF",
                shown(l)
            );
            assert!(
                !l.starts_with(b".") || l.starts_with(b".."),
                "to {what:?} line {:?} is not dot-stuffed",
                shown(l)
            );
        }
    }
}

/// The fuzz target `pop3_session`.
pub fn check_pop3(input: &[u8]) {
    let s = Split::parse(input);
    let mut turns = Vec::new();
    same_for_every_cut("POP3", &s, |reads| {
        let state = fresh_state(s.flags);
        let seed = validity_seed(&state);
        let t = run_pop3(state, reads);
        let flat: Vec<u8> = t.iter().flat_map(|(_, a)| a.iter().copied()).collect();
        turns = t;
        (flat, seed)
    });
    assert_pop3_responses(&turns);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_smtp_transaction_passes() {
        check_smtp(&Split::encode(
            0,
            b"EHLO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<anna@kanzlei.test>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n",
        ));
    }

    #[test]
    fn imap_login_select_fetch_passes() {
        check_imap(&Split::encode(
            0,
            b"a LOGIN alice@example.test secret\r\nb SELECT INBOX\r\nc FETCH 1:* (FLAGS BODYSTRUCTURE ENVELOPE BODY[])\r\nd LOGOUT\r\n",
        ));
    }

    #[test]
    fn imap_esearch_responses_pass_their_own_grammar_check() {
        check_imap(&Split::encode(
            0,
            b"a LOGIN alice@example.test secret\r\nb SELECT INBOX\r\nc SEARCH RETURN (MIN MAX COUNT ALL) ALL\r\nd UID SEARCH RETURN () ALL\r\ne SEARCH RETURN (SAVE) ALL\r\nf FETCH $ (UID)\r\ng LOGOUT\r\n",
        ));
        let line = b"* ESEARCH (TAG \"c\") UID MIN 1 MAX 4 ALL 1:2,4 COUNT 3\r\nrest";
        assert_eq!(esearch_response(line), Some(&b"rest"[..]));
        assert_eq!(esearch_response(b"* 1 EXISTS\r\n"), None);
    }

    #[test]
    #[should_panic(expected = "COUNT needs a number")]
    fn a_broken_esearch_response_fails_the_check() {
        esearch_response(b"* ESEARCH (TAG \"c\") COUNT x\r\n");
    }

    #[test]
    fn pop3_login_list_retr_passes() {
        check_pop3(&Split::encode(
            0,
            b"USER anna@kanzlei.test\r\nPASS secret\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 2 1\r\nDELE 1\r\nQUIT\r\n",
        ));
    }

    #[test]
    fn the_mask_hides_seeded_numbers_dates_and_queue_ids() {
        let m = mask(
            b"* OK [UIDVALIDITY 1700000001] 04-Mar-2024 10:00:00 +0000 queued as 1F\r\n",
            1_700_000_000,
        );
        assert_eq!(m, b"* OK [UIDVALIDITY V+1] <DATE> queued as Q\r\n");
    }
}
