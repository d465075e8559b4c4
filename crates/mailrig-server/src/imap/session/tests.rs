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
const CAPS: &str =
    "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS MOVE UNSELECT CHILDREN";

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
                "[blocking]* FLAGS*\r\n* OK [PERMANENTFLAGS*\r\n* 0 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY*\r\n* OK [UIDNEXT 1]*\r\ns OK [READ-WRITE] Select completed\r\n",
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
