//! Bad input: malformed commands, oversized literals and lines, garbage bytes.
//! Each gets its refusal and the session goes on.

mod support;

use support::imap::*;

#[tokio::test]
async fn malformed_commands_get_bad_and_the_session_goes_on() {
    let server = start().await;
    let mut c = Client::connect(server.imap_addr()).await;
    assert_eq!(
        c.cmd("a1 FROBNICATE").await,
        "a1 BAD Error in IMAP command: could not parse it\r\n"
    );
    assert_eq!(
        c.cmd("a2 LOGIN").await,
        "a2 BAD Error in IMAP command: could not parse it\r\n"
    );
    c.send(b"\r\n").await;
    assert_eq!(
        c.line().await,
        "* BAD Error in IMAP command: no valid tag\r\n"
    );
    c.send(b"*** garbage\r\n").await;
    assert_eq!(
        c.line().await,
        "* BAD Error in IMAP command: no valid tag\r\n"
    );
    c.send(b"\x00\xff\xfe binary\r\n").await;
    assert_eq!(
        c.line().await,
        "* BAD Error in IMAP command: no valid tag\r\n"
    );
    assert_eq!(
        c.cmd("a3 NOOP extra").await,
        "a3 BAD Error in IMAP command: could not parse it\r\n"
    );
    c.cmd("a4 LOGIN alice@example.test secret").await;
    assert_eq!(
        c.cmd("a5 SELECT INBOX INBOX").await,
        "a5 BAD Error in IMAP command: could not parse it\r\n"
    );
    c.cmd("a6 SELECT INBOX").await;
    assert_eq!(
        c.cmd("a7 FETCH 0 FLAGS").await,
        "a7 BAD Error in IMAP command: could not parse it\r\n"
    );
    assert_eq!(
        c.cmd("a8 FETCH 1 (FLAGS").await,
        "a8 BAD Error in IMAP command: could not parse it\r\n"
    );
    assert_eq!(
        c.cmd("a9 SEARCH FROM").await,
        "a9 BAD Error in IMAP command: could not parse it\r\n"
    );
    assert_eq!(
        c.cmd("b1 UID FROB 1").await,
        "b1 BAD Error in IMAP command: could not parse it\r\n"
    );
    assert_eq!(
        c.cmd("b2 GETMETADATA INBOX /private/comment").await,
        "b2 BAD Command not supported: GETMETADATA\r\n"
    );
    assert_eq!(c.cmd("b3 NOOP").await, "b3 OK NOOP completed\r\n");
}

#[tokio::test]
async fn oversized_literal_is_refused_before_its_bytes() {
    let server = start_with(&scenario("[limits]\nmax_literal = 1000\n")).await;
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    // Synchronizing: refused instead of "+", the client does not send the bytes.
    assert_eq!(
        c.cmd("a1 APPEND INBOX {5000}").await,
        "a1 NO [TOOBIG] Literal of 5000 bytes exceeds the limit of 1000 bytes\r\n"
    );
    assert_eq!(
        c.cmd("a2 APPEND INBOX {99999999999999999}").await,
        "a2 NO [TOOBIG] Literal of 99999999999999999 bytes exceeds the limit of 1000 bytes\r\n"
    );
    assert_eq!(c.cmd("a3 NOOP").await, "a3 OK NOOP completed\r\n");
    // Within the limit it works.
    let r = c.cmd("a4 APPEND INBOX {10+}\r\nSubject: x").await;
    assert!(r.starts_with("a4 OK [APPENDUID"), "{r}");
    // Non-synchronizing and too large: the bytes are on their way; the server hangs up.
    c.send(b"a5 APPEND INBOX {5000+}\r\n").await;
    assert_eq!(
        c.rest().await,
        "* BYE [TOOBIG] Literal of 5000 bytes exceeds the limit of 1000 bytes\r\n"
    );
}

#[tokio::test]
async fn overlong_line_is_dropped() {
    let server = start().await;
    let mut c = Client::connect(server.imap_addr()).await;
    let mut line = b"a1 LOGIN ".to_vec();
    line.extend(std::iter::repeat_n(b'x', 200_000));
    line.extend_from_slice(b" secret\r\n");
    c.send(&line).await;
    assert_eq!(c.line().await, "a1 BAD Command line too long\r\n");
    assert_eq!(c.cmd("a2 NOOP").await, "a2 OK NOOP completed\r\n");
}

#[tokio::test]
async fn many_literals_cannot_grow_a_command_without_bound() {
    let server = start_with(&scenario("[limits]\nmax_literal = 1000\n")).await;
    let mut c = Client::connect(server.imap_addr()).await;
    // A LOGIN made of ever more literals: the whole command is capped too.
    c.send(b"a1 LOGIN {900+}\r\n").await;
    let mut total = 0;
    let mut refused = String::new();
    for _ in 0..200 {
        let mut chunk = vec![b'x'; 900];
        chunk.extend_from_slice(b" {900+}\r\n");
        c.send(&chunk).await;
        total += chunk.len();
        if total > 200_000 {
            break;
        }
    }
    refused.push_str(&c.rest().await);
    assert!(
        refused.starts_with("* BYE [TOOBIG]") || refused.starts_with("* BYE [LIMIT]"),
        "{refused}"
    );
}

#[tokio::test]
async fn idle_needs_done() {
    let server = start().await;
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    c.send(b"i1 IDLE\r\n").await;
    assert_eq!(c.line().await, "+ idling\r\n");
    c.send(b"NOOP\r\n").await;
    assert_eq!(c.line().await, "i1 BAD Expected DONE\r\n");
    assert_eq!(c.cmd("i2 NOOP").await, "i2 OK NOOP completed\r\n");
}

#[tokio::test]
async fn random_bytes_never_kill_the_server() {
    let server = start().await;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..20 {
        let mut c = Client::connect(server.imap_addr()).await;
        let mut junk = Vec::new();
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let b = (seed & 0xff) as u8;
            // Keep some structure so the parser gets deep.
            junk.push(match b % 7 {
                0 => b'\n',
                1 => b' ',
                2 => b'(',
                3 => b'{',
                _ => b,
            });
        }
        c.send(&junk).await;
        c.send(b"\r\nz9 NOOP\r\n").await;
        // Whatever happened to the junk, the server is still there.
        let mut fresh = Client::connect(server.imap_addr()).await;
        assert_eq!(
            fresh.cmd("z1 NOOP").await,
            "z1 OK NOOP completed\r\n",
            "round {round}"
        );
    }
}

/// SORT and THREAD with what a server cannot do: a sort key or algorithm it
/// does not know, a charset it does not read, no folder selected. Each is
/// refused and the session goes on.
#[tokio::test]
async fn sort_and_thread_refuse_what_they_cannot_do() {
    let server = start().await;
    deliver(&server, ALICE, &message("b@x.test", "one", "body"));
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    let refused = c.cmd("s1 SORT (SUBJECT) UTF-8 ALL").await;
    assert!(refused.starts_with("s1 BAD"), "{refused}");
    c.cmd("s2 SELECT INBOX").await;
    assert_eq!(
        c.cmd("s3 SORT (COLOUR) UTF-8 ALL").await,
        "s3 BAD Error in IMAP command: could not parse it\r\n"
    );
    assert_eq!(
        c.cmd("s4 SORT (SUBJECT) KOI8-R ALL").await,
        "s4 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset\r\n"
    );
    assert_eq!(
        c.cmd("s5 SORT () UTF-8 ALL").await,
        "s5 BAD Error in IMAP command: could not parse it\r\n"
    );
    assert_eq!(
        c.cmd("t1 THREAD SPAGHETTI UTF-8 ALL").await,
        "t1 BAD Unknown threading algorithm \"SPAGHETTI\": this server has ORDEREDSUBJECT and REFERENCES\r\n"
    );
    assert_eq!(
        c.cmd("t2 THREAD REFERENCES EBCDIC ALL").await,
        "t2 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset\r\n"
    );
    assert_eq!(
        c.cmd("s6 UID SORT (REVERSE ARRIVAL) US-ASCII ALL").await,
        "* SORT 1\r\ns6 OK Sort completed\r\n"
    );
    assert_eq!(
        c.cmd("t3 THREAD ORDEREDSUBJECT UTF-8 SUBJECT nothing-like-this")
            .await,
        "* THREAD\r\nt3 OK Thread completed\r\n"
    );
}
