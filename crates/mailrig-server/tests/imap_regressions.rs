//! Server bugs the imaptest conformance scripts found, pinned down over raw
//! bytes so they stay fixed even where the scripts are not run.

mod support;

use support::imap::*;

/// fetch-envelope: an obsolete source route (`<@route:user@domain>`) belongs
/// in the address's adl field, not glued to the mailbox name (RFC 3501
/// §7.4.2); a comment alone in a group (`group2: (foo) ;`) is no member.
#[tokio::test]
async fn envelope_source_route_and_comment_only_group() {
    let server = start().await;
    deliver(
        &server,
        ALICE,
        b"From: <@route:user@domain>\r\nCc: group2: (foo) ;\r\nDate: Thu, 15 Feb 2007 01:02:03 +0200\r\n\r\nbody\r\n",
    );
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    c.cmd("a1 SELECT INBOX").await;
    assert_eq!(
        c.cmd("a2 FETCH 1 ENVELOPE").await,
        "* 1 FETCH (ENVELOPE (\"Thu, 15 Feb 2007 01:02:03 +0200\" NIL \
         ((NIL \"@route\" \"user\" \"domain\")) ((NIL \"@route\" \"user\" \"domain\")) \
         ((NIL \"@route\" \"user\" \"domain\")) NIL \
         ((NIL NIL \"group2\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL))\r\n\
         a2 OK Fetch completed\r\n"
    );
}

/// subscribe: with `box.sub.leaf` subscribed but `box.sub` not, `LSUB "" box.%`
/// returns `box.sub` flagged `\Noselect`, and not the leaf (RFC 3501 §6.3.9),
/// even when `box.sub` exists. `*` returns the leaf itself.
#[tokio::test]
async fn lsub_percent_reports_unsubscribed_parent_as_noselect() {
    let server = start().await;
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    for (tag, cmd) in [
        ("a1", "CREATE box"),
        ("a2", "CREATE box.sub.leaf"),
        ("a3", "SUBSCRIBE box.sub.leaf"),
    ] {
        let r = c.cmd(&format!("{tag} {cmd}")).await;
        assert!(r.starts_with(&format!("{tag} OK")), "{cmd}: {r}");
    }
    assert_eq!(
        c.cmd("a4 LSUB \"\" box.%").await,
        "* LSUB (\\Noselect \\HasChildren) \".\" box.sub\r\na4 OK LSUB completed\r\n"
    );
    assert_eq!(
        c.cmd("a5 LSUB \"\" box.*").await,
        "* LSUB (\\HasNoChildren) \".\" box.sub.leaf\r\na5 OK LSUB completed\r\n"
    );
    let r = c.cmd("a6 UNSUBSCRIBE box.sub.leaf").await;
    assert!(r.starts_with("a6 OK"), "{r}");
    assert_eq!(
        c.cmd("a7 LSUB \"\" box.%").await,
        "a7 OK LSUB completed\r\n"
    );
}
