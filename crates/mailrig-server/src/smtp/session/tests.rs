//! Unit tests of the SMTP session: random command soup, alias fan-out.

use super::*;
use crate::tls::TlsMaterial;
use mailrig_core::{Scenario, Store};

fn state() -> Arc<ServerState> {
    let s = Scenario::parse(
        "[[domain]]\nname='d.test'\npassword='p'\nmailboxes=['a','b']\n[domain.aliases]\nall=['a','b']\n",
        "t",
    )
    .unwrap();
    let world = Arc::new(s.world.clone());
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
