//! Unit tests of the SMTP session: random command soup, alias fan-out, and
//! tables of exchanges (client bytes in, replies out) without sockets.

use super::*;
use crate::tls::TlsMaterial;
use mailrig_core::{Scenario, Store};

fn state() -> Arc<ServerState> {
    state_with("")
}

/// The test world with extra scenario sections (`[limits]`, `[server]`, ...).
fn state_with(extra: &str) -> Arc<ServerState> {
    let s = Scenario::parse(
        &format!(
            "{extra}\n[[domain]]\nname='d.test'\npassword='p'\nmailboxes=['a','b']\n[domain.aliases]\nall=['a','b']\n"
        ),
        "t",
    )
    .unwrap();
    let world = Arc::clone(&s.world);
    let store = Arc::new(Store::memory(&world));
    let tls = Arc::new(TlsMaterial::generate("mx.d.test").unwrap());
    ServerState::new(world, store, tls, s.faults.clone())
}

/// Every reply line is `ddd[ -]...\r\n`.
fn well_formed(out: &[u8]) -> bool {
    out.split_inclusive(|b| *b == b'\n').all(|l| {
        l.len() >= 6
            && l[..3].iter().all(u8::is_ascii_digit)
            && (l[3] == b' ' || l[3] == b'-')
            && l.ends_with(b"\r\n")
    })
}

#[test]
fn random_command_soup_never_panics_and_always_answers() {
    let state = state();
    let words: [&[u8]; 16] = [
        b"EHLO x",
        b"HELO",
        b"MAIL FROM:<a@b>",
        b"MAIL FROM:<>",
        b"RCPT TO:<a@d.test>",
        b"RCPT TO:<all@d.test>",
        b"RCPT TO:",
        b"DATA",
        b"RSET",
        b"AUTH PLAIN",
        b"AUTH LOGIN",
        b"VRFY",
        b"NOOP x",
        b"\xff\xfe",
        b"MAIL FROM:<\x00>",
        b"RCPT TO:<a@d.test> NOTIFY=BOGUS",
    ];
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..200 {
        let mut s = Session::new(Arc::clone(&state), "127.0.0.1:1".parse().unwrap(), false);
        let mut out = Vec::new();
        s.greeting(&mut out);
        for _ in 0..50 {
            out.clear();
            let mut line: Vec<u8> = words[(next() % 16) as usize].to_vec();
            for _ in 0..(next() % 4) {
                line.push((next() % 256) as u8);
            }
            line.extend_from_slice(b"\r\n");
            if s.in_data() {
                let (_, a) = s.data(&line, &mut out);
                if let Action::Deliver(d) = a {
                    s.delivered(&d.queue_id, Ok(d.copies.len()), &mut out);
                }
                continue;
            }
            match s.line(&line, &mut out) {
                Action::Close => break,
                Action::StartTls => s.tls_started(),
                _ => {}
            }
            assert!(
                !out.is_empty(),
                "no reply to {:?}",
                String::from_utf8_lossy(&line)
            );
            assert!(
                well_formed(&out),
                "{:?} -> {:?}",
                String::from_utf8_lossy(&line),
                String::from_utf8_lossy(&out)
            );
        }
    }
}

#[test]
fn alias_fan_out_stores_one_copy_per_mailbox() {
    let state = state();
    let mut s = Session::new(Arc::clone(&state), "127.0.0.1:1".parse().unwrap(), false);
    let mut out = Vec::new();
    s.line(b"EHLO x\r\n", &mut out);
    s.line(b"MAIL FROM:<s@x.test>\r\n", &mut out);
    s.line(b"RCPT TO:<all@d.test>\r\n", &mut out);
    s.line(b"RCPT TO:<a@d.test>\r\n", &mut out);
    s.line(b"DATA\r\n", &mut out);
    let (_, a) = s.data(b"x\r\n.\r\n", &mut out);
    let Action::Deliver(d) = a else {
        panic!("no delivery")
    };
    let mut boxes: Vec<u32> = d.copies.iter().map(|c| c.mailbox.0).collect();
    boxes.sort();
    assert_eq!(boxes, vec![0, 1]);
}

/// Feeds `input` to a new session through the driver contract, the way
/// [`crate::driver::run`] does: each read (the input split at `cuts`) is
/// handed to [`driver::Session::input`] until it asks for more, a
/// [`Step::Blocking`] delivery is run by [`driver::Session::run_blocking`]
/// (stored in the memory store), and `Step::Close`/`Step::Abort` end the
/// exchange. Returns every reply, the greeting left out, and whether the
/// session closed.
fn exchange(state: &Arc<ServerState>, input: &[u8], cuts: &[usize]) -> (String, bool) {
    use crate::driver::Session as _;
    let mut s = Session::new(Arc::clone(state), "127.0.0.1:1".parse().unwrap(), false);
    let mut out = Vec::new();
    let _ = driver::Session::greeting(&mut s, &mut out);
    out.clear();
    let text = |out: &[u8]| String::from_utf8_lossy(out).into_owned();
    let mut buf = BytesMut::new();
    let mut last = 0;
    for &c in cuts.iter().chain(std::iter::once(&input.len())) {
        buf.extend_from_slice(&input[last..c]);
        last = c;
        // Bounded: a session that never asks to read fails the test.
        let mut rounds = 0;
        loop {
            rounds += 1;
            assert!(rounds < 100_000, "the session never asked for more input");
            match driver::Session::input(&mut s, &mut buf, &mut out) {
                Step::Read => break,
                Step::Close | Step::Abort => return (text(&out), true),
                Step::Blocking => match s.run_blocking(&mut out) {
                    Step::Close | Step::Abort => return (text(&out), true),
                    _ => {}
                },
                Step::StartTls(_) => {
                    buf.clear();
                    driver::Session::tls_started(&mut s);
                }
                _ => {}
            }
        }
    }
    (text(&out), false)
}

/// The reply lines of an exchange, without the queue ids.
fn replies(out: &str) -> Vec<String> {
    out.lines()
        .map(|l| match l.find("queued as ") {
            Some(i) => l[..i + "queued as".len()].to_string(),
            None => l.to_string(),
        })
        .collect()
}

const TX: &str = "EHLO x\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<a@d.test>\r\nDATA\r\n";
const TX_REPLIES: [&str; 3] = [
    "250 2.1.0 Ok",
    "250 2.1.5 Ok",
    "354 End data with <CR><LF>.<CR><LF>",
];

/// DATA exchanges: (scenario sections, message content, its last reply).
#[test]
fn data_exchanges() {
    let long = |n: usize| "y".repeat(n);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "",
            format!("{}\r\n.\r\n", long(3_000)),
            "250 2.0.0 Ok: queued as",
        ),
        (
            "",
            format!("{}\r\n.\r\n", long(100_000)),
            "250 2.0.0 Ok: queued as",
        ),
        (
            "[limits]\nmax_line_length = 1000",
            format!("{}\r\n.\r\n", long(998)),
            "250 2.0.0 Ok: queued as",
        ),
        (
            "[limits]\nmax_line_length = 1000",
            format!("{}\r\n.\r\n", long(999)),
            "500 5.5.2 Error: line too long in message content",
        ),
        (
            "[limits]\nmax_message_size = 2000\nmax_line_length = 1000",
            format!("{}\r\n.\r\n", long(3_000)),
            "552 5.3.4 Error: message file too big",
        ),
        ("", "a\nb\r\n.\r\n".into(), "250 2.0.0 Ok: queued as"),
        (
            "[server]\nbare_lf = 'reject'",
            "a\nb\r\n.\r\n".into(),
            "550 5.6.2 Error: bare <LF> received in message content",
        ),
        // The case: a long line ended by a bare LF, strict on both counts.
        (
            "[server]\nbare_lf = 'reject'\n[limits]\nmax_line_length = 1000",
            format!("{}\nz\r\n.\r\n", long(1_500)),
            "550 5.6.2 Error: bare <LF> received in message content",
        ),
    ];
    for (extra, content, last) in cases {
        let state = state_with(extra);
        let input = format!("{TX}{content}QUIT\r\n");
        let (out, closed) = exchange(&state, input.as_bytes(), &[]);
        let got = replies(&out);
        assert!(closed, "{extra}: QUIT closes");
        assert_eq!(&got[got.len() - 5..got.len() - 2], &TX_REPLIES, "{extra}");
        assert_eq!(
            got[got.len() - 2],
            last,
            "{extra}: {} bytes of content",
            content.len()
        );
        assert_eq!(got[got.len() - 1], "221 2.0.0 Bye");
        // The same bytes in two reads, cut anywhere in the content: the same replies.
        for cut in [
            TX.len() + 1,
            TX.len() + content.len() / 2,
            TX.len() + content.len() - 3,
        ] {
            let (split, _) = exchange(&state, input.as_bytes(), &[cut]);
            assert_eq!(replies(&split), got, "{extra}: cut at {cut}");
        }
    }
}

/// AUTH exchanges: (scenario sections, client lines, every reply after
/// EHLO's, whether the session closes).
#[test]
fn auth_exchanges() {
    // base64 of "\0a@d.test\0p", "\0a@d.test\0wrong", "b@d.test\0a@d.test\0p",
    // "A@D.TEST\0a@d.test\0p" and "a@d.test\0p" (no authzid field).
    let (good, wrong, other, same, short) = (
        "AGFAZC50ZXN0AHA=",
        "AGFAZC50ZXN0AHdyb25n",
        "YkBkLnRlc3QAYUBkLnRlc3QAcA==",
        "QUBELlRFU1QAYUBkLnRlc3QAcA==",
        "YUBkLnRlc3QAcA==",
    );
    let failed = "535 5.7.8 Error: authentication failed";
    let bye = "421 4.7.0 mx.mailrig.test Error: too many failed authentication attempts";
    let other_user = "535 5.7.8 Error: authentication failed: cannot act as another user (the authorization identity differs from the login)";
    let cases: Vec<(&str, Vec<String>, Vec<&str>, bool)> = vec![
        (
            "",
            vec![format!("AUTH PLAIN {wrong}"), format!("AUTH PLAIN {good}")],
            vec![failed, "235 2.7.0 Authentication successful"],
            false,
        ),
        (
            "",
            vec![
                format!("AUTH PLAIN {wrong}"),
                "AUTH PLAIN".into(),
                wrong.into(),
                "AUTH LOGIN YUBkLnRlc3Q=".into(),
                "d3Jvbmc=".into(),
                "NOOP".into(),
            ],
            vec![failed, "334 ", failed, "334 UGFzc3dvcmQ6", failed, bye],
            true,
        ),
        (
            "[limits]\nmax_auth_failures = 1",
            vec![format!("AUTH PLAIN {wrong}"), "NOOP".into()],
            vec![failed, bye],
            true,
        ),
        // Aborted exchanges and unreadable responses are not failed logins.
        (
            "[limits]\nmax_auth_failures = 1",
            vec![
                "AUTH PLAIN".into(),
                "*".into(),
                "AUTH PLAIN !!".into(),
                format!("AUTH PLAIN {short}"),
                format!("AUTH PLAIN {good}"),
            ],
            vec![
                "334 ",
                "501 5.7.0 Authentication aborted",
                "501 5.5.2 Error: invalid base64 data",
                "501 5.5.2 Error: malformed PLAIN response: expected authzid NUL authcid NUL password in UTF-8",
                "235 2.7.0 Authentication successful",
            ],
            false,
        ),
        // RFC 4616: an authorization identity other than the login is refused.
        (
            "",
            vec![format!("AUTH PLAIN {other}")],
            vec![other_user],
            false,
        ),
        (
            "",
            vec![format!("AUTH PLAIN {same}")],
            vec!["235 2.7.0 Authentication successful"],
            false,
        ),
    ];
    for (extra, lines, want, closes) in cases {
        let state = state_with(extra);
        let mut input = String::from("EHLO x\r\n");
        for l in &lines {
            input.push_str(l);
            input.push_str("\r\n");
        }
        let (out, closed) = exchange(&state, input.as_bytes(), &[]);
        let got: Vec<&str> = out.lines().skip_while(|l| l.starts_with("250")).collect();
        assert_eq!(got, want, "{extra} {lines:?}");
        assert_eq!(closed, closes, "{extra} {lines:?}: closes");
    }
}

mod exchanges {
    //! Whole SMTP conversations, sans I/O: client bytes in, server bytes and
    //! the driver steps (delay, tarpit, TLS, storing, closing) out.

    use super::*;
    use crate::driver::script::{play, state};

    const WORLD: &str = "[server]\nhostname = 'mx.d.test'\nbanner = 'mx.d.test ESMTP mailrig'\n[[domain]]\nname = 'd.test'\nmailboxes = ['a', 'b']\npassword = 'p'\n";

    fn session(extra: &str) -> (Arc<ServerState>, Session) {
        let st = state(&format!("{WORLD}{extra}"));
        let s = Session::new(Arc::clone(&st), "127.0.0.1:9".parse().unwrap(), false);
        (st, s)
    }

    fn inbox(st: &ServerState, address: &str) -> usize {
        let id = st.world.mailbox_by_address(address).unwrap();
        st.store.mailbox(id).messages("INBOX").unwrap().len()
    }

    #[test]
    fn a_pipelined_transaction() {
        let (st, mut s) = session("");
        play(
            &mut s,
            &[
                (b"", "220 mx.d.test ESMTP mailrig\r\n"),
                (b"HELO c.test\r\n", "250 mx.d.test\r\n"),
                // One write, every reply in order; the store effect runs
                // after end of data.
                (
                    b"MAIL FROM:<s@x.test>\r\nRCPT TO:<a@d.test>\r\nRCPT TO:<nobody@d.test>\r\nDATA\r\n",
                    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 <nobody@d.test>: Recipient address rejected: User unknown\r\n354 End data with <CR><LF>.<CR><LF>\r\n",
                ),
                (b"Subject: x\r\n\r\n..dot\r\n", ""),
                (b".\r\nNOOP\r\n", "[blocking]250 2.0.0 Ok: queued as *\r\n250 2.0.0 Ok\r\n"),
                (&[b'A'; 1200], ""),
                (b"\r\nRSET\r\n", "500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n"),
                (b"QUIT\r\nNOOP\r\n", "221 2.0.0 Bye\r\n[close]"),
            ],
        );
        assert_eq!(inbox(&st, "a@d.test"), 1);
    }

    #[test]
    fn starttls_forgets_the_plain_text_session() {
        let (_, mut s) = session("");
        play(
            &mut s,
            &[
                (b"", "220 mx.d.test ESMTP mailrig\r\n"),
                (
                    b"HELO c.test\r\nSTARTTLS\r\nMAIL FROM:<s@x.test>\r\n",
                    "250 mx.d.test\r\n220 2.0.0 Ready to start TLS\r\n[starttls]",
                ),
                (
                    b"MAIL FROM:<s@x.test>\r\n",
                    "503 5.5.1 Error: send HELO/EHLO first\r\n",
                ),
                (b"STARTTLS\r\n", "554 5.5.1 Error: TLS already active\r\n"),
            ],
        );
    }

    #[test]
    fn fault_steps() {
        // A delay: the replies before the delayed one go out first.
        let (_, mut s) =
            session("[[fault]]\nname = 'r'\nstage = 'mail'\naction = 'delay'\nms = 250\n");
        play(
            &mut s,
            &[
                (b"", "220 mx.d.test ESMTP mailrig\r\n"),
                (
                    b"HELO c.test\r\nMAIL FROM:<s@x.test>\r\n",
                    "250 mx.d.test\r\n[pause 250ms]250 2.1.0 Ok\r\n",
                ),
            ],
        );
        // A tarpit applies to every write from then on.
        let (_, mut s) = session(
            "[[fault]]\nname = 'r'\nstage = 'greeting'\naction = 'tarpit'\nbytes_per_sec = 20\n",
        );
        play(
            &mut s,
            &[(b"", "[tarpit 20]220 mx.d.test ESMTP mailrig\r\n")],
        );
        // Disconnect in the middle of DATA: nothing stored, nothing more written.
        let (st, mut s) = session(
            "[[fault]]\nname = 'r'\nstage = 'data'\naction = 'disconnect'\nwhen = 'mid-data'\n",
        );
        play(
            &mut s,
            &[
                (b"", "220 mx.d.test ESMTP mailrig\r\n"),
                (
                    b"HELO c.test\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<a@d.test>\r\nDATA\r\n",
                    "250 mx.d.test\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n",
                ),
                (b"Subject: x\r\n\r\nbody\r\n.\r\n", "[abort]"),
            ],
        );
        assert_eq!(inbox(&st, "a@d.test"), 0);
    }
}
