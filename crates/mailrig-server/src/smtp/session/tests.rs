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
