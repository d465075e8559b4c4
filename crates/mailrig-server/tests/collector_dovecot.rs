//! The IMAP collector against a server no one here wrote: a private Dovecot
//! (`scripts/realmail/start.sh`, Postfix + Dovecot on 127.0.0.1) is the
//! outside server, given by address and credentials. Python's imaplib
//! APPENDs 300 messages to `anna@kanzlei.test` at Dovecot (more than one
//! `UID FETCH` batch), a mailrig world collects them into its firm host:
//! with `keep` each message once (a second round fetches nothing, Dovecot
//! still holds all of them, none `\Seen`), without `keep` Dovecot's INBOX is
//! empty afterwards. The test FAILS (never skips) when Dovecot or Postfix
//! are missing: run `scripts/install-test-deps.sh`.

#[path = "../../../scripts/realmail/started.rs"]
mod started;
mod support;

use std::path::Path;

use support::faults::python;
use support::hosts::*;
use support::start_toml as start;

/// A running realmail instance (Postfix into Dovecot); stopped on drop,
/// also when the test fails.
struct RealMail(started::Started);

impl RealMail {
    fn start() -> RealMail {
        for tool in ["/usr/sbin/postfix", "/usr/sbin/dovecot"] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is not installed: this test needs a real Dovecot; run scripts/install-test-deps.sh"
            );
        }
        let args = ["--mailboxes".to_string(), "2".into()];
        RealMail(started::Started::realmail("mrc-dv-", &args))
    }

    fn imap_port(&self) -> &str {
        self.0.get("IMAP_PORT")
    }
}

/// imaplib: APPEND `n` messages to INBOX, or (n = 0) print INBOX's
/// message count and how many are `\Seen`.
const IMAPLIB: &str = r#"
import imaplib, sys
port, user, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
m = imaplib.IMAP4("127.0.0.1", port, timeout=10)
m.login(user, "secret")
if n:
    for i in range(n):
        msg = ("From: s@extern.test\r\nTo: %s\r\nSubject: m%d\r\n"
               "Message-ID: <dv%d@extern.test>\r\n\r\nbody %d\r\n" % (user, i, i, i))
        typ, _ = m.append("INBOX", None, None, msg.encode())
        assert typ == "OK", typ
    print(n)
else:
    typ, data = m.select("INBOX", readonly=True)
    count = int(data[0])
    seen = 0
    if count:
        typ, flags = m.fetch("1:*", "(FLAGS)")
        seen = sum(b"\\Seen" in f for f in flags)
    print(count, seen)
m.logout()
"#;

async fn at_dovecot(rm: &RealMail) -> (usize, usize) {
    let out = python(IMAPLIB, &[rm.imap_port(), "anna@kanzlei.test", "0"]).await;
    let v: Vec<usize> = out.split_whitespace().map(|w| w.parse().unwrap()).collect();
    (v[0], v[1])
}

fn world(rm: &RealMail, keep: bool) -> String {
    let a = addresses(1);
    format!(
        "{DOMAINS}[[host]]\nname = 'firm'\naddress = '{}'\ndomains = ['kanzlei.test', 'patente.test']\n\n\
         [[collector]]\nname = 'c'\nserver = '127.0.0.1:{}'\nto = 'firm'\nprotocol = 'imap'\nkeep = {keep}\ninterval_secs = 3600\n\
         [[collector.account]]\nlogin = 'anna@kanzlei.test'\npassword = 'secret'\ndeliver_to = 'clara@kanzlei.test'\n",
        a[0],
        rm.imap_port()
    )
}

#[tokio::test]
async fn the_imap_collector_fetches_from_a_real_dovecot_in_batches() {
    let rm = RealMail::start();
    let out = python(IMAPLIB, &[rm.imap_port(), "anna@kanzlei.test", "300"]).await;
    assert_eq!(out.trim(), "300");
    assert_eq!(at_dovecot(&rm).await, (300, 0));

    // keep: every message once, by UID, left unread at Dovecot.
    let server = start(&world(&rm, true)).await;
    let round = server.collect_now("c").await.unwrap();
    assert_eq!((round.fetched, round.delivered), (300, 300), "{round:?}");
    assert!(round.failed.is_empty(), "{round:?}");
    let got = server
        .host("firm")
        .unwrap()
        .inbox("clara@kanzlei.test")
        .unwrap();
    assert_eq!(got.len(), 300);
    for i in [0, 255, 256, 299] {
        let id = format!("<dv{i}@extern.test>");
        assert!(
            got.iter()
                .any(|m| String::from_utf8_lossy(&m.raw).contains(&id)),
            "{id} was not collected"
        );
    }
    let round = server.collect_now("c").await.unwrap();
    assert_eq!(round.fetched, 0, "{round:?}");
    assert_eq!(at_dovecot(&rm).await, (300, 0));
    server.shutdown().await;

    // Without keep: fetched, flagged \Deleted and expunged at Dovecot.
    let server = start(&world(&rm, false)).await;
    let round = server.collect_now("c").await.unwrap();
    assert_eq!((round.fetched, round.delivered), (300, 300), "{round:?}");
    assert_eq!(at_dovecot(&rm).await, (0, 0));
    server.shutdown().await;
}
