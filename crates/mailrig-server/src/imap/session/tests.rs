//! Tables of IMAP exchanges without sockets: the bytes a client sends, the
//! responses it gets, and whether the session closes. Covers the
//! not-authenticated state a hostile client meets first: over-long lines and
//! SASL responses, tags that must not be echoed, and the small framing
//! limits before login.

use super::*;
use crate::driver::Session as _;
use crate::driver::script::{play, state};
use crate::tls::TlsMaterial;
use mailrig_core::{Scenario, Store};

fn state_with(extra: &str) -> Arc<ServerState> {
    let s = Scenario::parse(
        &format!("{extra}\n[[domain]]\nname='d.test'\npassword='p'\nmailboxes=['a','b']\n"),
        "t",
    )
    .unwrap();
    let world = Arc::clone(&s.world);
    let store = Arc::new(Store::memory(&world));
    let tls = Arc::new(TlsMaterial::generate("mx.d.test").unwrap());
    ServerState::new(world, store, tls, s.faults.clone())
}

/// Feeds each piece in turn to one new session (as reads of a connection)
/// and returns the responses, the greeting left out, and whether the session
/// asked to close (nothing is fed after that).
fn exchange(state: &Arc<ServerState>, pieces: &[&[u8]]) -> (String, bool) {
    let mut s = Session::new(Arc::clone(state), false);
    let mut out = Vec::new();
    let mut input = BytesMut::new();
    for p in pieces {
        input.extend_from_slice(p);
        // Bounded: every round consumes input or runs one store command.
        for _ in 0..10_000 {
            match Session::input(&mut s, &mut input, &mut out) {
                Action::Close => return (String::from_utf8_lossy(&out).into_owned(), true),
                Action::Blocking => match s.run_blocking(&mut out) {
                    Step::Close => return (String::from_utf8_lossy(&out).into_owned(), true),
                    _ => continue,
                },
                Action::Flush => continue,
                Action::Continue | Action::StartTls => break,
            }
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), false)
}

/// Only the status of each response line: no CAPABILITY lists, no
/// UIDVALIDITY (random per world) in APPENDUID.
fn statuses(out: &str) -> Vec<String> {
    out.lines()
        .map(|l| match (l.find(" [CAPABILITY "), l.find("] ")) {
            (Some(i), Some(j)) if j > i => format!("{} [CAPABILITY ...]{}", &l[..i], &l[j + 1..]),
            _ => match l.find("[APPENDUID ") {
                Some(i) => {
                    let end = l[i..].find(' ').map_or(l.len(), |k| {
                        i + k + l[i + k + 1..].find(' ').map_or(0, |m| m + 1)
                    });
                    format!("{}[APPENDUID _{}", &l[..i], &l[end..])
                }
                None => l.to_string(),
            },
        })
        .collect()
}

struct Case {
    what: &'static str,
    pieces: Vec<Vec<u8>>,
    want: Vec<&'static str>,
    closes: bool,
}

fn run(state: &Arc<ServerState>, cases: Vec<Case>) {
    for c in cases {
        let pieces: Vec<&[u8]> = c.pieces.iter().map(Vec::as_slice).collect();
        let (out, closed) = exchange(state, &pieces);
        assert_eq!(statuses(&out), c.want, "{}", c.what);
        assert_eq!(closed, c.closes, "{}: closes", c.what);
    }
}

fn bytes(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn over_long_input_before_login() {
    let state = state_with("");
    let base64ish = vec![b'Q'; 100_000];
    let long_token = vec![b't'; 70_000];
    run(
        &state,
        vec![
            Case {
                what: "an over-long SASL response ends the exchange; the next command is a command",
                pieces: vec![
                    b"a1 AUTHENTICATE PLAIN\r\n".to_vec(),
                    bytes(&[&base64ish, b"\r\n"]),
                    b"a2 NOOP\r\n".to_vec(),
                ],
                want: vec![
                    "+ ",
                    "a1 BAD Command line too long; authentication exchange ended",
                    "a2 OK NOOP completed",
                ],
                closes: false,
            },
            Case {
                what: "the same with the line's end in a later read",
                pieces: vec![
                    b"a1 AUTHENTICATE PLAIN\r\n".to_vec(),
                    base64ish.clone(),
                    bytes(&[&base64ish, b"\r\na2 NOOP\r\n"]),
                ],
                want: vec![
                    "+ ",
                    "a1 BAD Command line too long; authentication exchange ended",
                    "a2 OK NOOP completed",
                ],
                closes: false,
            },
            Case {
                what: "a SASL response announcing a literal over the limit",
                pieces: vec![b"a1 AUTHENTICATE PLAIN\r\n{99999}\r\na2 NOOP\r\n".to_vec()],
                want: vec![
                    "+ ",
                    "a1 BAD [TOOBIG] Literal of 99999 bytes exceeds the limit of 4096 bytes; authentication exchange ended",
                    "a2 OK NOOP completed",
                ],
                closes: false,
            },
            Case {
                what: "an over-long first token is not echoed as a tag",
                pieces: vec![bytes(&[&long_token, b" NOOP\r\n"]), b"a2 NOOP\r\n".to_vec()],
                want: vec!["* BAD Command line too long", "a2 OK NOOP completed"],
                closes: false,
            },
            Case {
                what: "a tag of 65 characters is not echoed either",
                pieces: vec![bytes(&[&[b't'; 65], b" FOO\r\n"])],
                want: vec!["* BAD Error in IMAP command: no valid tag"],
                closes: false,
            },
            Case {
                what: "a line over 64 KiB",
                pieces: vec![bytes(&[b"a1 NOOP ", &[b'x'; 64 * 1024], b"\r\n"])],
                want: vec!["a1 BAD Command line too long"],
                closes: false,
            },
        ],
    );
}

#[test]
fn literals_before_login() {
    let state = state_with("");
    let mut chain = b"a1 LOGIN {0+}\r\n".to_vec();
    for _ in 0..100_000 {
        chain.extend_from_slice(b" {0+}\r\n");
    }
    run(
        &state,
        vec![
            Case {
                what: "LOGIN with two literals",
                pieces: vec![
                    b"a1 LOGIN {8}\r\n".to_vec(),
                    b"a@d.test {1}\r\n".to_vec(),
                    b"p\r\n".to_vec(),
                ],
                want: vec!["+ OK", "+ OK", "a1 OK [CAPABILITY ...] Logged in"],
                closes: false,
            },
            Case {
                what: "a chain of {0+} literals is cut off at the fifth",
                pieces: vec![chain],
                want: vec!["* BYE [LIMIT] Command has more than 4 literals"],
                closes: true,
            },
            Case {
                what: "synchronizing literals: the fifth is refused and the command forgotten",
                pieces: vec![
                    b"a1 LOGIN {0}\r\n {0}\r\n {0}\r\n {0}\r\n {0}\r\na2 NOOP\r\n".to_vec(),
                ],
                want: vec![
                    "+ OK",
                    "+ OK",
                    "+ OK",
                    "+ OK",
                    "a1 BAD [LIMIT] Command has more than 4 literals",
                    "a2 OK NOOP completed",
                ],
                closes: false,
            },
            Case {
                what: "a LITERAL+ literal over 4 KiB before login",
                pieces: vec![b"a1 LOGIN {5000+}\r\n".to_vec()],
                want: vec!["* BYE [TOOBIG] Literal of 5000 bytes exceeds the limit of 4096 bytes"],
                closes: true,
            },
            Case {
                what: "a synchronizing literal over 4 KiB before login: refused, not read",
                pieces: vec![b"a1 LOGIN {5000}\r\na2 NOOP\r\n".to_vec()],
                want: vec![
                    "a1 NO [TOOBIG] Literal of 5000 bytes exceeds the limit of 4096 bytes",
                    "a2 OK NOOP completed",
                ],
                closes: false,
            },
            Case {
                what: "lines and literals that add up to more than 64 KiB",
                pieces: vec![bytes(&[
                    b"a1 LOGIN {4000+}\r\n",
                    &[b'u'; 4000],
                    b" ",
                    &[b'y'; 60_000],
                    b" {4000+}\r\n",
                ])],
                want: vec![
                    "* BYE [TOOBIG] Command exceeds the limit of 65536 bytes with its literals",
                ],
                closes: true,
            },
            Case {
                what: "after login the world's limits apply",
                pieces: vec![
                    b"a1 LOGIN a@d.test p\r\n".to_vec(),
                    b"a2 APPEND INBOX {5000}\r\n".to_vec(),
                    bytes(&[b"Subject: x\r\n\r\n", &[b'y'; 4986], b"\r\n"]),
                ],
                want: vec![
                    "a1 OK [CAPABILITY ...] Logged in",
                    "+ OK",
                    "a2 OK [APPENDUID _ 1] Append completed",
                ],
                closes: false,
            },
        ],
    );
}

#[test]
fn failed_logins_and_authorization_identities() {
    run(
        &state_with(""),
        vec![
            Case {
                what: "two failures, then a login",
                pieces: vec![b"a1 LOGIN a@d.test x\r\na2 LOGIN a@d.test y\r\na3 LOGIN a@d.test p\r\n".to_vec()],
                want: vec![
                    "a1 NO [AUTHENTICATIONFAILED] Authentication failed.",
                    "a2 NO [AUTHENTICATIONFAILED] Authentication failed.",
                    "a3 OK [CAPABILITY ...] Logged in",
                ],
                closes: false,
            },
            Case {
                what: "the third failure, LOGIN and AUTHENTICATE mixed, closes",
                pieces: vec![
                    // "\0a@d.test\0wrong"
                    b"a1 LOGIN a@d.test x\r\na2 AUTHENTICATE PLAIN AGFAZC50ZXN0AHdyb25n\r\na3 AUTHENTICATE PLAIN\r\n".to_vec(),
                    b"AGFAZC50ZXN0AHdyb25n\r\na4 NOOP\r\n".to_vec(),
                ],
                want: vec![
                    "a1 NO [AUTHENTICATIONFAILED] Authentication failed.",
                    "a2 NO [AUTHENTICATIONFAILED] Authentication failed.",
                    "+ ",
                    "a3 NO [AUTHENTICATIONFAILED] Authentication failed.",
                    "* BYE Too many failed authentication attempts",
                ],
                closes: true,
            },
            Case {
                what: "RFC 4616: another user's authorization identity is refused and counts",
                // "b@d.test\0a@d.test\0p", then "A@D.TEST\0a@d.test\0p"
                pieces: vec![b"a1 AUTHENTICATE PLAIN YkBkLnRlc3QAYUBkLnRlc3QAcA==\r\na2 AUTHENTICATE PLAIN QUBELlRFU1QAYUBkLnRlc3QAcA==\r\n".to_vec()],
                want: vec![
                    "a1 NO [AUTHORIZATIONFAILED] Authentication failed: cannot act as another user (the authorization identity differs from the login)",
                    "a2 OK [CAPABILITY ...] Logged in",
                ],
                closes: false,
            },
            Case {
                what: "an unreadable PLAIN response is BAD and not a failed login",
                // "a@d.test\0p"
                pieces: vec![b"a1 AUTHENTICATE PLAIN YUBkLnRlc3QAcA==\r\n".to_vec()],
                want: vec![
                    "a1 BAD Malformed PLAIN response: expected authzid NUL authcid NUL password in UTF-8",
                ],
                closes: false,
            },
        ],
    );
    let strict = state_with("[limits]\nmax_auth_failures = 1");
    run(
        &strict,
        vec![Case {
            what: "max_auth_failures = 1",
            pieces: vec![b"a1 LOGIN a@d.test x\r\na2 NOOP\r\n".to_vec()],
            want: vec![
                "a1 NO [AUTHENTICATIONFAILED] Authentication failed.",
                "* BYE Too many failed authentication attempts",
            ],
            closes: true,
        }],
    );
}

// Whole conversations through the driver contract (from `main`).

const WORLD: &str = "[[domain]]\nname = 'd.test'\nmailboxes = ['a']\npassword = 'p'\n";
const CAPS: &str = "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS MOVE UNSELECT CHILDREN ESEARCH SEARCHRES BINARY MULTIAPPEND LIST-EXTENDED LIST-STATUS SPECIAL-USE CONDSTORE QRESYNC CATENATE NOTIFY QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE SORT SORT=DISPLAY ESORT PARTIAL CONTEXT=SEARCH THREAD=ORDEREDSUBJECT THREAD=REFERENCES";

/// Whole conversations, sans I/O: client bytes in, server bytes and
/// steps out.
#[test]
fn exchanges() {
    let mut s = Session::new(state(WORLD), false);
    let greeting =
        format!("* OK [CAPABILITY {CAPS} STARTTLS AUTH=PLAIN] mailrig IMAP4rev1 ready\r\n");
    let logged_in = format!("l OK [CAPABILITY {CAPS}] Logged in\r\n");
    play(
        &mut s,
        &[
            (b"", &greeting),
            (
                b"a NOOP\r\nb SELECT INBOX\r\n",
                "a OK NOOP completed\r\nb BAD Not authenticated: SELECT not allowed in this state\r\n",
            ),
            // A command split over reads, its literal announced first.
            (b"l LOGIN {8}\r\n", "+ OK\r\n"),
            (b"a@d.test p\r\n", &logged_in),
            // Commands that write the store are blocking effects.
            (
                b"s SELECT INBOX\r\n",
                "[blocking]* FLAGS*\r\n* OK [PERMANENTFLAGS*\r\n* 0 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY*\r\n* OK [UIDNEXT 1]*\r\n* OK [HIGHESTMODSEQ 1] Highest\r\ns OK [READ-WRITE] Select completed\r\n",
            ),
            (
                b"p APPEND INBOX {5+}\r\nhello\r\n",
                "[blocking]* 1 EXISTS\r\n* 1 RECENT\r\np OK [APPENDUID*\r\n",
            ),
            (b"i IDLE\r\n", "+ idling\r\n"),
            (b"DONE\r\n", "i OK Idle completed\r\n"),
            (
                b"f FETCH 1 BODY.PEEK[]\r\n",
                "* 1 FETCH (BODY[] {5}\r\nhello)\r\nf OK Fetch completed\r\n",
            ),
            (
                b"o LOGOUT\r\n",
                "* BYE Logging out\r\no OK Logout completed\r\n[close]",
            ),
        ],
    );
}

#[test]
fn starttls_drops_pipelined_input() {
    let mut s = Session::new(state(WORLD), false);
    play(
        &mut s,
        &[
            (b"", "**\r\n"),
            (
                b"t STARTTLS\r\nx NOOP\r\n",
                "t OK Begin TLS negotiation now\r\n[starttls]",
            ),
            (
                b"c CAPABILITY\r\n",
                &format!("* CAPABILITY {CAPS} AUTH=PLAIN\r\nc OK Capability completed\r\n"),
            ),
        ],
    );
}

#[test]
fn not_offered_tls_fault_hides_starttls() {
    let st = state(&format!(
        "{WORLD}[[fault]]\nname = 'r'\nstage = 'tls'\naction = 'tls'\ntls = 'not-offered'\n"
    ));
    let mut s = Session::new(st, false).with_peer("127.0.0.1:9".parse().unwrap());
    play(
        &mut s,
        &[
            (
                b"",
                &format!("* OK [CAPABILITY {CAPS} AUTH=PLAIN] mailrig IMAP4rev1 ready\r\n"),
            ),
            (b"t STARTTLS\r\n", "t BAD STARTTLS is not offered\r\n"),
        ],
    );
}

// Two sessions on one mailbox: what a session tells its client about
// changes that it or another session made.

/// One logged-in session kept across exchanges, so that two of them can
/// interleave on one store.
struct Peer {
    s: Session,
    input: BytesMut,
}

impl Peer {
    fn login(state: &Arc<ServerState>) -> Peer {
        let mut p = Peer {
            s: Session::new(Arc::clone(state), true),
            input: BytesMut::new(),
        };
        let r = p.send("l LOGIN a@d.test p");
        assert!(r.contains("l OK"), "login: {r}");
        p
    }

    /// Sends one command line (CRLF added) and returns every response line
    /// up to and including its tagged reply.
    fn send(&mut self, line: &str) -> String {
        self.send_bytes(format!("{line}\r\n").as_bytes())
    }

    fn send_bytes(&mut self, bytes: &[u8]) -> String {
        let mut out = Vec::new();
        self.input.extend_from_slice(bytes);
        for _ in 0..10_000 {
            match Session::input(&mut self.s, &mut self.input, &mut out) {
                Action::Blocking => {
                    self.s.run_blocking(&mut out);
                }
                Action::Flush => {}
                Action::Continue | Action::StartTls | Action::Close => break,
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Appends `n` small messages to INBOX, each with `flags`.
    fn append(&mut self, n: usize, flags: &str) {
        for i in 0..n {
            let body = format!("Subject: m{i}\r\n\r\nbody {i}\r\n");
            let r = self.send_bytes(
                format!(
                    "ap APPEND INBOX ({flags}) {{{}+}}\r\n{body}\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            assert!(r.contains("ap OK"), "append: {r}");
        }
    }
}

/// The response lines, with the text of each `* OK [...]` cut after its code.
fn lines(out: &str) -> Vec<&str> {
    out.lines()
        .map(|l| match (l.starts_with("* OK ["), l.find("] ")) {
            (true, Some(i)) => &l[..=i],
            _ => l,
        })
        .collect()
}

const SYSTEM: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

/// RFC 3501 §7.2.6: a keyword that STORE, APPEND or COPY introduces is
/// announced in `* FLAGS` and `* OK [PERMANENTFLAGS]` before any FETCH shows
/// it, in the session that introduced it and in every other session that
/// has the folder selected.
#[test]
fn new_keywords_are_announced_before_use() {
    let st = state_with("");
    let mut a = Peer::login(&st);
    let mut b = Peer::login(&st);
    a.append(2, "");
    a.send("s SELECT INBOX");
    b.send("s SELECT INBOX");
    let flags = |kws: &str| format!("* FLAGS ({SYSTEM}{kws})");
    let perm = |kws: &str| format!("* OK [PERMANENTFLAGS ({SYSTEM}{kws} \\*)]");

    // STORE in the session that introduces the keyword...
    let r = a.send("t1 STORE 1 +FLAGS ($Kw1)");
    assert_eq!(
        lines(&r),
        [
            flags(" $Kw1").as_str(),
            perm(" $Kw1").as_str(),
            "* 1 FETCH (FLAGS ($Kw1 \\Recent))",
            "t1 OK Store completed"
        ],
        "STORE: {r}"
    );
    // ...and in the other, whether it asks with NOOP or FETCH first.
    let r = b.send("t2 FETCH 1 (FLAGS)");
    assert_eq!(
        lines(&r)[..2],
        [flags(" $Kw1"), perm(" $Kw1")],
        "FETCH: {r}"
    );
    assert!(r.contains("* 1 FETCH (FLAGS ($Kw1))"), "{r}");
    let r = b.send("t3 NOOP");
    assert_eq!(lines(&r), ["t3 OK NOOP completed"], "announced once: {r}");

    // STORE .SILENT shows no flags, but the keyword is announced all the same.
    let r = a.send("t4 STORE 2 +FLAGS.SILENT ($Kw2)");
    assert_eq!(
        lines(&r),
        [
            flags(" $Kw1 $Kw2").as_str(),
            perm(" $Kw1 $Kw2").as_str(),
            "t4 OK Store completed"
        ],
        "STORE.SILENT: {r}"
    );
    let r = b.send("t5 NOOP");
    assert_eq!(
        lines(&r),
        [
            flags(" $Kw1 $Kw2").as_str(),
            perm(" $Kw1 $Kw2").as_str(),
            "* 2 FETCH (FLAGS ($Kw2))",
            "t5 OK NOOP completed"
        ],
        "{r}"
    );

    // APPEND of a message with a new keyword into the selected folder.
    a.append(1, "$Kw3");
    let r = b.send("t6 NOOP");
    assert_eq!(
        lines(&r)[..3],
        [
            flags(" $Kw1 $Kw2 $Kw3"),
            perm(" $Kw1 $Kw2 $Kw3"),
            "* 3 EXISTS".to_string()
        ],
        "APPEND: {r}"
    );

    // COPY into a folder another session has selected.
    a.send("c CREATE Other");
    b.send("s SELECT Other");
    let r = b.send("t7 NOOP");
    assert_eq!(lines(&r), ["t7 OK NOOP completed"], "{r}");
    let r = a.send("t8 COPY 3 Other");
    assert!(r.contains("t8 OK"), "{r}");
    let r = b.send("t9 NOOP");
    assert_eq!(
        lines(&r)[..3],
        [flags(" $Kw3"), perm(" $Kw3"), "* 1 EXISTS".to_string()],
        "COPY: {r}"
    );

    // Read-only: the keywords are announced, none is permanent.
    b.send("e EXAMINE INBOX");
    a.send("t10 STORE 1 +FLAGS ($Kw4)");
    let r = b.send("t11 NOOP");
    assert_eq!(
        lines(&r)[..3],
        [
            flags(" $Kw1 $Kw2 $Kw3 $Kw4"),
            "* OK [PERMANENTFLAGS ()]".to_string(),
            "* 1 FETCH (FLAGS ($Kw1 $Kw4))".to_string()
        ],
        "EXAMINE: {r}"
    );
}

/// RFC 2180 §4.1.2: a message another session expunged keeps its sequence
/// number, and stays readable, until this session sends its EXPUNGE; commands
/// that cannot act on it say so with `[EXPUNGEISSUED]` (RFC 5530).
#[test]
fn messages_expunged_elsewhere_stay_until_expunge_is_sent() {
    let st = state_with("");
    let mut a = Peer::login(&st);
    let mut b = Peer::login(&st);
    a.append(4, "");
    a.send("c CREATE Other");
    a.send("s SELECT INBOX");
    b.send("s SELECT INBOX");
    let r = b.send("x1 STORE 3 +FLAGS.SILENT (\\Deleted)");
    assert!(r.contains("x1 OK"), "{r}");
    // A sees the flag change, then (below) not yet the EXPUNGE.
    let r = a.send("n NOOP");
    assert_eq!(
        lines(&r),
        [
            "* 3 FETCH (FLAGS (\\Deleted \\Recent))",
            "n OK NOOP completed"
        ],
        "{r}"
    );
    let r = b.send("x2 EXPUNGE");
    assert!(r.contains("* 3 EXPUNGE"), "{r}");

    let r = a.send("t1 FETCH 1:4 (UID)");
    assert_eq!(
        lines(&r),
        [
            "* 1 FETCH (UID 1)",
            "* 2 FETCH (UID 2)",
            "* 3 FETCH (UID 3)",
            "* 4 FETCH (UID 4)",
            "t1 OK Fetch completed"
        ],
        "FETCH: {r}"
    );
    let r = a.send("t2 SEARCH 1:4");
    assert_eq!(
        lines(&r),
        ["* SEARCH 1 2 3 4", "t2 OK Search completed"],
        "{r}"
    );
    let r = a.send("t3 SEARCH DELETED");
    assert_eq!(lines(&r), ["* SEARCH 3", "t3 OK Search completed"], "{r}");
    let r = a.send("t4 FETCH 3 (BODY.PEEK[TEXT] FLAGS)");
    assert_eq!(
        r,
        "* 3 FETCH (BODY[TEXT] {8}\r\nbody 2\r\n FLAGS (\\Deleted \\Recent))\r\nt4 OK Fetch completed\r\n"
    );
    // STORE, COPY and MOVE cannot act on it: visibly refused, the rest done.
    let r = a.send("t5 STORE 2:3 +FLAGS (\\Flagged)");
    assert_eq!(
        lines(&r),
        [
            "* 2 FETCH (FLAGS (\\Flagged \\Recent))",
            "t5 NO [EXPUNGEISSUED] Some of the messages were expunged by another session"
        ],
        "STORE: {r}"
    );
    let r = a.send("t6 COPY 3:4 Other");
    assert_eq!(
        lines(&r),
        [
            "t6 NO [EXPUNGEISSUED] Some of the messages were expunged by another session; nothing copied"
        ],
        "COPY: {r}"
    );
    let r = a.send("t7 MOVE 3 Other");
    assert!(r.starts_with("t7 NO [EXPUNGEISSUED]"), "MOVE: {r}");
    // Still at 3 after a sequence-number FETCH, STORE and SEARCH...
    let r = a.send("t8 FETCH 4 (UID)");
    assert_eq!(
        lines(&r),
        ["* 4 FETCH (UID 4)", "t8 OK Fetch completed"],
        "{r}"
    );
    // ...until a command that may send EXPUNGE.
    let r = a.send("t9 STATUS Other (MESSAGES)");
    assert_eq!(
        lines(&r),
        [
            "* STATUS Other (MESSAGES 0)",
            "* 3 EXPUNGE",
            "t9 OK Status completed"
        ],
        "COPY and MOVE copied nothing: {r}"
    );
    let r = a.send("t10 NOOP");
    assert_eq!(lines(&r), ["t10 OK NOOP completed"], "{r}");
    let r = a.send("t11 FETCH 1:* (UID)");
    assert_eq!(
        lines(&r),
        [
            "* 1 FETCH (UID 1)",
            "* 2 FETCH (UID 2)",
            "* 3 FETCH (UID 4)",
            "t11 OK Fetch completed"
        ],
        "{r}"
    );
}

/// ESEARCH (RFC 4731) and SEARCHRES (RFC 5182): RETURN options, `$` in
/// every place a set or key goes, and bad input answered BAD with the
/// session going on.
#[test]
fn esearch_and_searchres() {
    let st = state_with("");
    let mut a = Peer::login(&st);
    a.append(5, "");
    a.send("s SELECT INBOX");
    a.send("f STORE 2,4 +FLAGS.SILENT (\\Seen)");
    let cases: &[(&str, &[&str])] = &[
        (
            "t1 SEARCH RETURN (MIN MAX COUNT ALL) SEEN",
            &[
                "* ESEARCH (TAG \"t1\") MIN 2 MAX 4 ALL 2,4 COUNT 2",
                "t1 OK Search completed",
            ],
        ),
        (
            "t2 UID SEARCH RETURN () 2:3",
            &[
                "* ESEARCH (TAG \"t2\") UID ALL 2:3",
                "t2 OK Search completed",
            ],
        ),
        (
            "p1 SEARCH RETURN (PARTIAL 3:2) UNSEEN",
            &[
                "* ESEARCH (TAG \"p1\") PARTIAL (2:3 3,5)",
                "p1 OK Search completed",
            ],
        ),
        (
            "p2 UID SEARCH RETURN (COUNT PARTIAL -1:-2) ALL",
            &[
                "* ESEARCH (TAG \"p2\") UID COUNT 5 PARTIAL (-1:-2 4:5)",
                "p2 OK Search completed",
            ],
        ),
        (
            "p3 SEARCH RETURN (PARTIAL 9:10) ALL",
            &[
                "* ESEARCH (TAG \"p3\") PARTIAL (9:10 NIL)",
                "p3 OK Search completed",
            ],
        ),
        // All five arrived in the same second: ties stay in sequence order.
        (
            "p4 SORT RETURN (MIN MAX ALL PARTIAL 1:2) (REVERSE ARRIVAL) UTF-8 UNSEEN",
            &[
                "* ESEARCH (TAG \"p4\") MIN 1 MAX 5 ALL 1,3,5 PARTIAL (1:2 1,3)",
                "p4 OK Sort completed",
            ],
        ),
        (
            "t3 SEARCH RETURN (COUNT) 1000",
            &["* ESEARCH (TAG \"t3\") COUNT 0", "t3 OK Search completed"],
        ),
        (
            "t4 SEARCH RETURN (MIN) KEYWORD $None",
            &["* ESEARCH (TAG \"t4\")", "t4 OK Search completed"],
        ),
        (
            "t5 SEARCH RETURN (SAVE) UNSEEN",
            &["t5 OK Search completed"],
        ),
        (
            "t6 FETCH $ (UID)",
            &[
                "* 1 FETCH (UID 1)",
                "* 3 FETCH (UID 3)",
                "* 5 FETCH (UID 5)",
                "t6 OK Fetch completed",
            ],
        ),
        ("t7 SEARCH $ 2:3", &["* SEARCH 3", "t7 OK Search completed"]),
        (
            "t8 SEARCH OR $ SEEN SUBJECT $",
            &["* SEARCH", "t8 OK Search completed"],
        ),
        (
            "t9 UID STORE $ +FLAGS.SILENT ($Kw)",
            &[
                "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Kw)",
                "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Kw \\*)]",
                "t9 OK Store completed",
            ],
        ),
        (
            "t10 SEARCH RETURN (SAVE MIN) KEYWORD $Kw",
            &["* ESEARCH (TAG \"t10\") MIN 1", "t10 OK Search completed"],
        ),
        (
            "t11 UID FETCH $ (UID)",
            &["* 1 FETCH (UID 1)", "t11 OK Fetch completed"],
        ),
        (
            "t12 SEARCH RETURN (SAVE) KEYWORD $Nothing",
            &["t12 OK Search completed"],
        ),
        ("t13 COPY $ INBOX", &["t13 OK COPY completed (no messages)"]),
        ("t14 SEARCH $", &["* SEARCH", "t14 OK Search completed"]),
        // Bad input: BAD naming the problem, and the session goes on.
        (
            "t15 SEARCH RETURN (PARTIAL 1:*) ALL",
            &[
                "t15 BAD PARTIAL needs a range of result positions such as 1:100 or -1:-100, not 1:*",
            ],
        ),
        (
            "t16 SEARCH RETURN MIN ALL",
            &["t16 BAD RETURN needs a parenthesised list of options"],
        ),
        (
            "t17 SEARCH RETURN (MIN",
            &["t17 BAD RETURN needs a parenthesised list of options"],
        ),
        (
            "t18 FETCH $,1 (UID)",
            &["t18 BAD $ (SEARCHRES) stands for a whole sequence set, not part of one"],
        ),
        (
            "t19 SEARCH RETURN (ALL) NOSUCHKEY",
            &["t19 BAD Error in IMAP command: could not parse it"],
        ),
        ("t20 NOOP", &["t20 OK NOOP completed"]),
    ];
    for (cmd, want) in cases {
        let r = a.send(cmd);
        assert_eq!(lines(&r), *want, "{cmd}: {r}");
    }
    // A new SELECT forgets the saved result.
    a.send("u SEARCH RETURN (SAVE) ALL");
    a.send("s SELECT INBOX");
    let r = a.send("t21 FETCH $ (UID)");
    assert_eq!(lines(&r), ["t21 OK FETCH completed (no messages)"], "{r}");
}

/// BINARY (RFC 3516): decoded parts, and parts that cannot be decoded
/// answered NO naming the part, the session going on.
#[test]
fn binary_fetch_and_broken_encodings() {
    let st = state_with("");
    let mut a = Peer::login(&st);
    let msg = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8A\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!\r\n--b\r\nContent-Transfer-Encoding: x-unknown\r\n\r\nabc\r\n--b--\r\n";
    let r = a.send_bytes(format!("ap APPEND INBOX {{{}+}}\r\n{msg}\r\n", msg.len()).as_bytes());
    assert!(r.contains("ap OK"), "{r}");
    a.send("s SELECT INBOX");
    let cases: &[(&str, &str)] = &[
        (
            "t1 FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])",
            "* 1 FETCH (BINARY.SIZE[1] 6 BINARY[1] ~{6}\r\nhello\0)\r\nt1 OK Fetch completed\r\n",
        ),
        (
            "t2 FETCH 1 (BINARY.PEEK[1]<1.3>)",
            "* 1 FETCH (BINARY[1]<1> {3}\r\nell)\r\nt2 OK Fetch completed\r\n",
        ),
        (
            "t3 FETCH 1 (BINARY.PEEK[2])",
            "t3 NO [PARSE] Part 2 is not valid base64\r\n",
        ),
        (
            "t4 FETCH 1 (BINARY.SIZE[3])",
            "t4 NO [UNKNOWN-CTE] Part 3 has the unknown Content-Transfer-Encoding x-unknown\r\n",
        ),
        (
            "t5 FETCH 1 (BINARY.PEEK[9])",
            "* 1 FETCH (BINARY[9] NIL)\r\nt5 OK Fetch completed\r\n",
        ),
        (
            "t6 FETCH 1 (BINARY.PEEK[1.x])",
            "t6 BAD Error in IMAP command: could not parse it\r\n",
        ),
        ("t7 NOOP", "t7 OK NOOP completed\r\n"),
    ];
    for (cmd, want) in cases {
        assert_eq!(a.send(cmd), *want, "{cmd}");
    }
}

/// MULTIAPPEND (RFC 3502): several messages in one APPEND, all or none;
/// bad input answered BAD, the session going on.
#[test]
fn multiappend_all_or_none() {
    let st = state_with("");
    let mut a = Peer::login(&st);
    let r = a.send_bytes(b"m1 APPEND INBOX (\\Seen) {3+}\r\none {3+}\r\ntwo ($K) \" 4-Mar-2024 10:00:00 +0000\" {5+}\r\nthree\r\n");
    assert!(r.ends_with(" 1:3] Append completed\r\n"), "{r}");
    let cases: &[(&[u8], &str)] = &[
        (
            b"m2 APPEND Nowhere {1+}\r\na {1+}\r\nb\r\n",
            "m2 NO [TRYCREATE] Destination folder does not exist\r\n",
        ),
        (
            b"m3 APPEND INBOX {1+}\r\na (\\Bogus) {1+}\r\nb\r\n",
            "m3 BAD Error in APPEND: invalid flag \\Bogus\r\n",
        ),
        (
            b"m4 APPEND INBOX {1+}\r\na \"soon\" {1+}\r\nb\r\n",
            "m4 BAD Error in APPEND: invalid date-time soon\r\n",
        ),
        (
            // Found by the imap_session fuzz target: the echoed date held a
            // byte that is not ASCII, and the BAD line was not IMAP text.
            b"m4b APPEND INBOX {1+}\r\na \" 4-Mar-\xb2024 10:00:00 +0000\" {1+}\r\nb\r\n",
            "m4b BAD Error in APPEND: invalid date-time  4-Mar-?024 10:00:00 +0000\r\n",
        ),
        (
            // Also found by the fuzzer: a MULTIAPPEND's tag was echoed
            // without the tag check every other command gets.
            b"t\xff; APPEND INBOX {1+}\r\na {1+}\r\nb\r\n",
            "* BAD Error in IMAP command: no valid tag\r\n",
        ),
        (
            b"m5 APPEND INBOX {1+}\r\na junk {1+}\r\nb\r\n",
            "m5 BAD Error in APPEND: expected [(flags)] [\"date-time\"] literal for each message\r\n",
        ),
        (
            b"m6 STATUS INBOX (MESSAGES)\r\n",
            "* STATUS INBOX (MESSAGES 3)\r\nm6 OK Status completed\r\n",
        ),
    ];
    for (cmd, want) in cases {
        assert_eq!(a.send_bytes(cmd), *want, "{}", String::from_utf8_lossy(cmd));
    }
    a.send("s SELECT INBOX");
    let r = a.send("f FETCH 1:3 (FLAGS BODY.PEEK[])");
    assert!(
        r.contains("* 1 FETCH (FLAGS (\\Seen \\Recent) BODY[] {3}\r\none)"),
        "{r}"
    );
    assert!(
        r.contains("* 2 FETCH (FLAGS (\\Recent) BODY[] {3}\r\ntwo)"),
        "{r}"
    );
    assert!(
        r.contains("* 3 FETCH (FLAGS ($K \\Recent) BODY[] {5}\r\nthree)"),
        "{r}"
    );
}

#[test]
fn status_lines_tagged_or_untagged_write_client_bytes_as_ascii() {
    // Untagged BAD/BYE texts echo decoder errors, which may quote client bytes.
    for (tag, status) in [("a1", "NO"), ("*", "BAD"), ("*", "BYE")] {
        let mut out = Vec::new();
        super::tagged(&mut out, tag, status, "bad date \u{b2}\u{7f}x");
        assert_eq!(out, format!("{tag} {status} bad date ??x\r\n").into_bytes());
    }
}
