//! IMAP commands over raw bytes, asserting the exact responses (mini-redis style).

mod support;

use mailrig_core::store::INBOX;
use mailrig_server::MockServer;
use support::imap::*;

const CAPS: &str = "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS MOVE UNSELECT CHILDREN ESEARCH SEARCHRES BINARY MULTIAPPEND LIST-EXTENDED LIST-STATUS SPECIAL-USE CONDSTORE QRESYNC CATENATE NOTIFY QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE SORT SORT=DISPLAY ESORT PARTIAL CONTEXT=SEARCH THREAD=ORDEREDSUBJECT THREAD=REFERENCES";

fn validity(server: &MockServer, user: &str, folder: &str) -> u32 {
    let id = server.world().mailbox_by_address(user).expect("mailbox");
    server
        .store()
        .mailbox(id)
        .with_folder(folder, |f| f.uid_validity)
        .expect("folder")
}

#[tokio::test]
async fn greeting_capability_noop_logout() {
    let server = start().await;
    let mut c = Client::connect(server.imap_addr()).await;
    assert_eq!(
        c.greeting,
        format!("* OK [CAPABILITY {CAPS} STARTTLS AUTH=PLAIN] mailrig IMAP4rev1 ready\r\n")
    );
    assert_eq!(
        c.cmd("a1 CAPABILITY").await,
        format!("* CAPABILITY {CAPS} STARTTLS AUTH=PLAIN\r\na1 OK Capability completed\r\n")
    );
    assert_eq!(c.cmd("a2 NOOP").await, "a2 OK NOOP completed\r\n");
    assert_eq!(
        c.cmd("a3 LOGOUT").await,
        "* BYE Logging out\r\na3 OK Logout completed\r\n"
    );
    assert_eq!(c.rest().await, "");
}

#[tokio::test]
async fn login_ok_and_wrong_password() {
    let server = start().await;
    let mut c = Client::connect(server.imap_addr()).await;
    assert_eq!(
        c.cmd("a1 LOGIN alice@example.test wrong").await,
        "a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    );
    assert_eq!(
        c.cmd("a2 LOGIN nobody@example.test secret").await,
        "a2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    );
    assert_eq!(
        c.cmd("a3 LOGIN alice@example.test").await,
        "a3 BAD Error in IMAP command: could not parse it\r\n"
    );
    assert!(
        c.cmd("a4 LOGIN ALICE@EXAMPLE.TEST secret")
            .await
            .starts_with("a4 OK [CAPABILITY")
    );
}

#[tokio::test]
async fn login_with_literal_password() {
    let server = start().await;
    let mut c = Client::connect(server.imap_addr()).await;
    c.send(b"a1 LOGIN \"alice@example.test\" {6}\r\n").await;
    assert_eq!(c.line().await, "+ OK\r\n");
    c.send(b"secret\r\n").await;
    assert_eq!(
        c.until_tag("a1").await,
        format!("a1 OK [CAPABILITY {CAPS}] Logged in\r\n")
    );
    // LITERAL+: no continuation request.
    let mut c = Client::connect(server.imap_addr()).await;
    assert_eq!(
        c.cmd("a1 LOGIN {18+}\r\nalice@example.test secret").await,
        format!("a1 OK [CAPABILITY {CAPS}] Logged in\r\n")
    );
}

#[tokio::test]
async fn authenticate_plain_inline_and_continued() {
    let server = start().await;
    let mut c = Client::connect(server.imap_addr()).await;
    // base64("\0alice@example.test\0secret")
    let b64 = "AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=";
    assert_eq!(
        c.cmd(&format!("a1 AUTHENTICATE PLAIN {b64}")).await,
        format!("a1 OK [CAPABILITY {CAPS}] Logged in\r\n")
    );
    let mut c = Client::connect(server.imap_addr()).await;
    c.send(b"a1 AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(c.line().await, "+ \r\n");
    // base64("\0alice@example.test\0nope")
    c.send(b"AGFsaWNlQGV4YW1wbGUudGVzdABub3Bl\r\n").await;
    assert_eq!(
        c.until_tag("a1").await,
        "a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    );
    c.send(b"a2 AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(c.line().await, "+ \r\n");
    c.send(b"*\r\n").await;
    assert_eq!(c.until_tag("a2").await, "a2 BAD Authentication aborted\r\n");
    assert_eq!(
        c.cmd("a3 AUTHENTICATE CRAM-MD5").await,
        "a3 NO Unsupported authentication mechanism\r\n"
    );
}

#[tokio::test]
async fn logindisabled_without_tls_when_plaintext_is_forbidden() {
    let server = start_with(&scenario("[security]\nplaintext_auth = false\n")).await;
    let mut c = Client::connect(server.imap_addr()).await;
    assert_eq!(
        c.greeting,
        format!("* OK [CAPABILITY {CAPS} STARTTLS LOGINDISABLED] mailrig IMAP4rev1 ready\r\n")
    );
    assert_eq!(
        c.cmd("a1 LOGIN alice@example.test secret").await,
        "a1 NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure connections\r\n"
    );
    assert_eq!(
        c.cmd("a2 AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=")
            .await,
        "a2 NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure connections\r\n"
    );
    // IMAPS allows it.
    let tcp = tokio::net::TcpStream::connect(server.imaps_addr())
        .await
        .expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = tls_connector(&server)
        .connect(name, tcp)
        .await
        .expect("TLS");
    let mut c = Client::over(Box::new(tls));
    c.greeting = c.line().await;
    assert_eq!(
        c.greeting,
        format!("* OK [CAPABILITY {CAPS} AUTH=PLAIN] mailrig IMAP4rev1 ready\r\n")
    );
    assert!(
        c.cmd("a1 LOGIN alice@example.test secret")
            .await
            .starts_with("a1 OK")
    );
}

#[tokio::test]
async fn starttls_then_login() {
    let server = start_with(&scenario("[security]\nplaintext_auth = false\n")).await;
    let mut c = Client::connect(server.imap_addr()).await;
    assert_eq!(
        c.cmd("a1 STARTTLS").await,
        "a1 OK Begin TLS negotiation now\r\n"
    );
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = tls_connector(&server)
        .connect(name, c.into_inner())
        .await
        .expect("TLS");
    let mut c = Client::over(Box::new(tls));
    assert_eq!(
        c.cmd("a2 CAPABILITY").await,
        format!("* CAPABILITY {CAPS} AUTH=PLAIN\r\na2 OK Capability completed\r\n")
    );
    assert_eq!(
        c.cmd("a3 STARTTLS").await,
        "a3 BAD TLS is already active\r\n"
    );
    assert!(
        c.cmd("a4 LOGIN alice@example.test secret")
            .await
            .starts_with("a4 OK")
    );
    assert_eq!(
        c.cmd("a5 STARTTLS").await,
        "a5 BAD Already authenticated: STARTTLS not allowed in this state\r\n"
    );
}

#[tokio::test]
async fn id_enable_namespace() {
    let server = start().await;
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    assert_eq!(
        c.cmd("a1 ID (\"name\" \"test\")").await,
        format!(
            "* ID (\"name\" \"mailrig\" \"version\" \"{}\")\r\na1 OK ID completed\r\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert_eq!(
        c.cmd("a2 ENABLE UTF8=ACCEPT").await,
        "* ENABLED\r\na2 OK Enabled\r\n"
    );
    assert_eq!(
        c.cmd("a3 NAMESPACE").await,
        "* NAMESPACE ((\"\" \".\")) NIL NIL\r\na3 OK Namespace completed\r\n"
    );
}

#[tokio::test]
async fn commands_in_the_wrong_state_are_refused() {
    let server = start().await;
    let mut c = Client::connect(server.imap_addr()).await;
    assert_eq!(
        c.cmd("a1 SELECT INBOX").await,
        "a1 BAD Not authenticated: SELECT not allowed in this state\r\n"
    );
    assert_eq!(
        c.cmd("a2 FETCH 1 FLAGS").await,
        "a2 BAD Not authenticated: FETCH not allowed in this state\r\n"
    );
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    assert_eq!(
        c.cmd("a3 FETCH 1 FLAGS").await,
        "a3 BAD No mailbox selected: FETCH not allowed in this state\r\n"
    );
    assert_eq!(
        c.cmd("a4 EXPUNGE").await,
        "a4 BAD No mailbox selected: EXPUNGE not allowed in this state\r\n"
    );
    assert_eq!(
        c.cmd("a5 LOGIN alice@example.test secret").await,
        "a5 BAD Already authenticated: LOGIN not allowed in this state\r\n"
    );
}

#[tokio::test]
async fn select_empty_mailbox() {
    let server = start().await;
    let v = validity(&server, ALICE, INBOX);
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    assert_eq!(
        c.cmd("a1 SELECT INBOX").await,
        format!(
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
             * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.\r\n\
             * 0 EXISTS\r\n* 0 RECENT\r\n\
             * OK [UIDVALIDITY {v}] UIDs valid\r\n\
             * OK [UIDNEXT 1] Predicted next UID\r\n\
             * OK [HIGHESTMODSEQ 1] Highest\r\n\
             a1 OK [READ-WRITE] Select completed\r\n"
        )
    );
    assert_eq!(
        c.cmd("a2 FETCH 1:* FLAGS").await,
        "a2 OK Fetch completed\r\n"
    );
    assert_eq!(
        c.cmd("a3 SEARCH ALL").await,
        "* SEARCH\r\na3 OK Search completed\r\n"
    );
    assert_eq!(
        c.cmd("a4 FETCH 1 FLAGS").await,
        "a4 BAD Error in IMAP command: invalid message sequence number\r\n"
    );
    assert_eq!(
        c.cmd("a5 UID FETCH 1:* FLAGS").await,
        "a5 OK Fetch completed\r\n"
    );
}

#[tokio::test]
async fn select_examine_status_recent_and_unseen() {
    let server = start().await;
    for i in 1..=3 {
        deliver(
            &server,
            ALICE,
            &message("Bob <bob@example.test>", &format!("m{i}"), "hello"),
        );
    }
    let v = validity(&server, ALICE, INBOX);
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    assert_eq!(
        c.cmd("a1 STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)")
            .await,
        format!(
            "* STATUS INBOX (MESSAGES 3 RECENT 3 UIDNEXT 4 UIDVALIDITY {v} UNSEEN 3)\r\na1 OK Status completed\r\n"
        )
    );
    assert_eq!(
        c.cmd("a2 EXAMINE INBOX").await,
        format!(
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
             * OK [PERMANENTFLAGS ()] Read-only mailbox.\r\n\
             * 3 EXISTS\r\n* 3 RECENT\r\n\
             * OK [UNSEEN 1] First unseen.\r\n\
             * OK [UIDVALIDITY {v}] UIDs valid\r\n\
             * OK [UIDNEXT 4] Predicted next UID\r\n\
             * OK [HIGHESTMODSEQ 4] Highest\r\n\
             a2 OK [READ-ONLY] Examine completed\r\n"
        )
    );
    assert_eq!(
        c.cmd("a3 STORE 1 +FLAGS (\\Seen)").await,
        "a3 NO [READ-ONLY] Mailbox is read-only\r\n"
    );
    assert_eq!(c.cmd("a4 CLOSE").await, "a4 OK Close completed\r\n");
    let sel = c.cmd("a5 SELECT inbox").await;
    assert!(sel.contains("* 3 EXISTS\r\n* 3 RECENT\r\n"), "{sel}");
    assert!(
        sel.ends_with("a5 OK [READ-WRITE] Select completed\r\n"),
        "{sel}"
    );
    assert_eq!(
        c.cmd("a6 FETCH 1 FLAGS").await,
        "* 1 FETCH (FLAGS (\\Recent))\r\na6 OK Fetch completed\r\n"
    );
    assert_eq!(c.cmd("a7 UNSELECT").await, "a7 OK Unselect completed\r\n");
    // Recent was claimed by the SELECT.
    assert_eq!(
        c.cmd("a8 STATUS INBOX (RECENT MESSAGES)").await,
        "* STATUS INBOX (RECENT 0 MESSAGES 3)\r\na8 OK Status completed\r\n"
    );
    assert_eq!(
        c.cmd("a9 SELECT Nope").await,
        "a9 NO [NONEXISTENT] folder 'Nope' does not exist\r\n"
    );
}

#[tokio::test]
async fn folders_list_create_rename_delete_subscribe() {
    let server = start().await;
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    assert_eq!(
        c.cmd("a1 LIST \"\" \"\"").await,
        "* LIST (\\Noselect) \".\" \"\"\r\na1 OK LIST completed\r\n"
    );
    assert_eq!(
        c.cmd("a2 LIST \"\" *").await,
        "* LIST (\\HasNoChildren) \".\" INBOX\r\na2 OK LIST completed\r\n"
    );
    assert_eq!(
        c.cmd("a3 CREATE Archive.2024").await,
        "a3 OK Create completed\r\n"
    );
    assert_eq!(
        c.cmd("a4 CREATE \"My Stuff\"").await,
        "a4 OK Create completed\r\n"
    );
    assert_eq!(
        c.cmd("a5 CREATE INBOX").await,
        "a5 NO [ALREADYEXISTS] folder 'INBOX' already exists\r\n"
    );
    assert_eq!(
        c.cmd("a6 LIST \"\" *").await,
        "* LIST (\\HasChildren \\Archive) \".\" Archive\r\n\
         * LIST (\\HasNoChildren) \".\" Archive.2024\r\n\
         * LIST (\\HasNoChildren) \".\" INBOX\r\n\
         * LIST (\\HasNoChildren) \".\" \"My Stuff\"\r\n\
         a6 OK LIST completed\r\n"
    );
    assert_eq!(
        c.cmd("a7 LIST \"\" %").await,
        "* LIST (\\HasChildren \\Archive) \".\" Archive\r\n\
         * LIST (\\HasNoChildren) \".\" INBOX\r\n\
         * LIST (\\HasNoChildren) \".\" \"My Stuff\"\r\n\
         a7 OK LIST completed\r\n"
    );
    assert_eq!(
        c.cmd("a8 LIST Archive. %").await,
        "* LIST (\\HasNoChildren) \".\" Archive.2024\r\na8 OK LIST completed\r\n"
    );
    assert_eq!(
        c.cmd("a9 RENAME Archive Old").await,
        "a9 OK Rename completed\r\n"
    );
    assert_eq!(
        c.cmd("b1 LIST \"\" Old*").await,
        "* LIST (\\HasChildren) \".\" Old\r\n* LIST (\\HasNoChildren) \".\" Old.2024\r\nb1 OK LIST completed\r\n"
    );
    assert_eq!(
        c.cmd("b2 SUBSCRIBE Old").await,
        "b2 OK Subscribe completed\r\n"
    );
    assert_eq!(
        c.cmd("b3 LSUB \"\" *").await,
        "* LSUB (\\HasNoChildren) \".\" INBOX\r\n* LSUB (\\HasChildren) \".\" Old\r\nb3 OK LSUB completed\r\n"
    );
    assert_eq!(
        c.cmd("b4 UNSUBSCRIBE Old").await,
        "b4 OK Unsubscribe completed\r\n"
    );
    assert_eq!(
        c.cmd("b5 DELETE Old.2024").await,
        "b5 OK Delete completed\r\n"
    );
    assert_eq!(
        c.cmd("b6 DELETE INBOX").await,
        "b6 NO [CANNOT] INBOX cannot be deleted\r\n"
    );
    assert_eq!(
        c.cmd("b7 DELETE Missing").await,
        "b7 NO [NONEXISTENT] folder 'Missing' does not exist\r\n"
    );
    assert_eq!(
        c.cmd("b8 LSUB \"\" *").await,
        "* LSUB (\\HasNoChildren) \".\" INBOX\r\nb8 OK LSUB completed\r\n"
    );
}

#[tokio::test]
async fn folder_names_cannot_escape() {
    let server = start().await;
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    for (i, bad) in [
        "\"../etc\"",
        "\"a/b\"",
        "\".hidden\"",
        "\"x..y\"",
        "\"a\\\\b\"",
    ]
    .iter()
    .enumerate()
    {
        let r = c.cmd(&format!("c{i} CREATE {bad}")).await;
        assert!(r.starts_with(&format!("c{i} NO [CANNOT] ")), "{bad}: {r}");
    }
    assert_eq!(
        c.cmd("r1 RENAME INBOX \"../x\"").await.split(' ').nth(2),
        Some("[CANNOT]")
    );
    assert_eq!(
        c.cmd("l1 LIST \"\" *").await,
        "* LIST (\\HasNoChildren) \".\" INBOX\r\nl1 OK LIST completed\r\n"
    );
}

#[tokio::test]
async fn users_see_only_their_own_mailbox() {
    let server = start().await;
    deliver(
        &server,
        BOB,
        &message("x <x@y.test>", "for bob", "secret of bob"),
    );
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    let r = c.cmd("a1 SELECT INBOX").await;
    assert!(r.contains("* 0 EXISTS"), "{r}");
    assert_eq!(
        c.cmd("a2 SEARCH TEXT bob").await,
        "* SEARCH\r\na2 OK Search completed\r\n"
    );
    assert_eq!(
        c.cmd("a3 SELECT bob@example.test").await,
        // The failed SELECT still leaves INBOX (RFC 7162 §3.2.11).
        "* OK [CLOSED] Previous mailbox closed.\r\n\
         a3 NO [NONEXISTENT] folder 'bob@example.test' does not exist\r\n"
    );
    let r = c
        .cmd("a4 STATUS \"bob@example.test.INBOX\" (MESSAGES)")
        .await;
    assert_eq!(
        r,
        "a4 NO [NONEXISTENT] folder 'bob@example.test.INBOX' does not exist\r\n"
    );
}

const MULTIPART: &str = "From: \"Bob B.\" <bob@example.test>\r\n\
To: alice@example.test, Carol <carol@example.test>\r\n\
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\
Date: Tue, 5 Mar 2024 09:30:00 +0100\r\n\
Message-ID: <multi@example.test>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n\
\r\n\
This is a multipart message.\r\n\
--XYZ\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Hello Alice\r\n\
--XYZ\r\n\
Content-Type: application/pdf; name=\"a.pdf\"\r\n\
Content-Disposition: attachment; filename=\"a.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0=\r\n\
--XYZ\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: Dan <dan@example.test>\r\n\
Subject: inner\r\n\
\r\n\
inner text\r\n\
--XYZ--\r\n";

fn header_len(m: &str) -> usize {
    m.find("\r\n\r\n").map_or(m.len(), |i| i + 4)
}

#[tokio::test]
async fn fetch_items_and_sections() {
    let server = start().await;
    let simple = message("Bob <bob@example.test>", "first", "body one");
    deliver(&server, ALICE, &simple);
    deliver(&server, ALICE, MULTIPART.as_bytes());
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    c.cmd("s SELECT INBOX").await;
    assert_eq!(
        c.cmd("a1 FETCH 1 (UID FLAGS INTERNALDATE RFC822.SIZE)")
            .await,
        format!(
            "* 1 FETCH (UID 1 FLAGS (\\Recent) INTERNALDATE \" 4-Mar-2024 10:00:00 +0000\" RFC822.SIZE {})\r\na1 OK Fetch completed\r\n",
            simple.len()
        )
    );
    assert_eq!(
        c.cmd("a2 FETCH 1 ENVELOPE").await,
        "* 1 FETCH (ENVELOPE (\"Mon, 4 Mar 2024 10:00:00 +0000\" \"first\" ((\"Bob\" NIL \"bob\" \"example.test\")) \
         ((\"Bob\" NIL \"bob\" \"example.test\")) ((\"Bob\" NIL \"bob\" \"example.test\")) \
         ((\"Alice\" NIL \"alice\" \"example.test\")) NIL NIL NIL \"<13@mailrig.test>\"))\r\na2 OK Fetch completed\r\n"
    );
    assert_eq!(
        c.cmd("a3 FETCH 1 BODY.PEEK[HEADER.FIELDS (Subject From)]")
            .await,
        "* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT FROM)] {48}\r\nFrom: Bob <bob@example.test>\r\nSubject: first\r\n\r\n)\r\na3 OK Fetch completed\r\n"
    );
    assert_eq!(
        c.cmd("a4 FETCH 1 BODY.PEEK[TEXT]<0.4>").await,
        "* 1 FETCH (BODY[TEXT]<0> {4}\r\nbody)\r\na4 OK Fetch completed\r\n"
    );
    assert_eq!(
        c.cmd("a5 FETCH 1 BODY.PEEK[TEXT]<5.100>").await,
        "* 1 FETCH (BODY[TEXT]<5> {5}\r\none\r\n)\r\na5 OK Fetch completed\r\n"
    );
    assert_eq!(
        c.cmd("a6 FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (To From Date Message-ID)]")
            .await,
        "* 1 FETCH (BODY[HEADER.FIELDS.NOT (TO FROM DATE MESSAGE-ID)] {18}\r\nSubject: first\r\n\r\n)\r\na6 OK Fetch completed\r\n"
    );
    // Parts of the multipart.
    assert_eq!(
        c.cmd("b1 FETCH 2 BODY.PEEK[1]").await,
        "* 2 FETCH (BODY[1] {11}\r\nHello Alice)\r\nb1 OK Fetch completed\r\n"
    );
    assert_eq!(
        c.cmd("b2 FETCH 2 BODY.PEEK[2.MIME]").await,
        "* 2 FETCH (BODY[2.MIME] {133}\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\nContent-Disposition: attachment; filename=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n)\r\nb2 OK Fetch completed\r\n"
    );
    assert_eq!(
        c.cmd("b3 FETCH 2 BODY.PEEK[3.HEADER]").await,
        "* 2 FETCH (BODY[3.HEADER] {48}\r\nFrom: Dan <dan@example.test>\r\nSubject: inner\r\n\r\n)\r\nb3 OK Fetch completed\r\n"
    );
    assert_eq!(
        c.cmd("b4 FETCH 2 BODY.PEEK[3.1]").await,
        "* 2 FETCH (BODY[3.1] {10}\r\ninner text)\r\nb4 OK Fetch completed\r\n"
    );
    assert_eq!(
        c.cmd("b5 FETCH 2 BODY.PEEK[3.TEXT]").await,
        "* 2 FETCH (BODY[3.TEXT] {10}\r\ninner text)\r\nb5 OK Fetch completed\r\n"
    );
    assert_eq!(
        c.cmd("b6 FETCH 2 BODY.PEEK[9]").await,
        "* 2 FETCH (BODY[9] NIL)\r\nb6 OK Fetch completed\r\n"
    );
    assert_eq!(
        c.cmd("b7 FETCH 2 BODYSTRUCTURE").await,
        "* 2 FETCH (BODYSTRUCTURE (\
         (\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 11 0 NIL NIL NIL NIL)\
         (\"application\" \"pdf\" (\"name\" \"a.pdf\") NIL NIL \"base64\" 8 NIL (\"attachment\" (\"filename\" \"a.pdf\")) NIL NIL)\
         (\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 58 (NIL \"inner\" ((\"Dan\" NIL \"dan\" \"example.test\")) ((\"Dan\" NIL \"dan\" \"example.test\")) ((\"Dan\" NIL \"dan\" \"example.test\")) NIL NIL NIL NIL NIL) \
         (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 0 NIL NIL NIL NIL) 3 NIL NIL NIL NIL) \
         \"mixed\" (\"boundary\" \"XYZ\") NIL NIL NIL))\r\nb7 OK Fetch completed\r\n"
    );
    assert_eq!(
        c.cmd("b8 FETCH 1 BODY").await,
        "* 1 FETCH (BODY (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 1))\r\nb8 OK Fetch completed\r\n"
    );
    let env = c.cmd("b9 FETCH 2 ENVELOPE").await;
    assert!(env.contains("\"=?utf-8?q?Gr=C3=BC=C3=9Fe?=\""), "{env}");
    assert!(
        env.contains("((\"Bob B.\" NIL \"bob\" \"example.test\")) "),
        "{env}"
    );
    assert!(
        env.contains(
            "((NIL NIL \"alice\" \"example.test\")(\"Carol\" NIL \"carol\" \"example.test\"))"
        ),
        "{env}"
    );
    // Nothing was marked \Seen by PEEK.
    assert_eq!(
        c.cmd("c1 FETCH 1:2 FLAGS").await,
        "* 1 FETCH (FLAGS (\\Recent))\r\n* 2 FETCH (FLAGS (\\Recent))\r\nc1 OK Fetch completed\r\n"
    );
    // BODY[] sets \Seen and reports it.
    let full = c.cmd("c2 FETCH 1 BODY[]").await;
    assert_eq!(
        full,
        format!(
            "* 1 FETCH (FLAGS (\\Seen \\Recent) BODY[] {{{}}}\r\n{})\r\nc2 OK Fetch completed\r\n",
            simple.len(),
            String::from_utf8_lossy(&simple)
        )
    );
    assert_eq!(
        c.cmd("c3 FETCH 2 RFC822.HEADER").await.lines().next(),
        Some(format!("* 2 FETCH (RFC822.HEADER {{{}}}", header_len(MULTIPART)).as_str())
    );
    assert_eq!(
        c.cmd("c4 UID FETCH 2 (FLAGS)").await,
        "* 2 FETCH (UID 2 FLAGS (\\Recent))\r\nc4 OK Fetch completed\r\n"
    );
    assert_eq!(
        c.cmd("c5 FETCH 2 RFC822.TEXT").await.lines().next(),
        Some(
            format!(
                "* 2 FETCH (FLAGS (\\Seen \\Recent) RFC822.TEXT {{{}}}",
                MULTIPART.len() - header_len(MULTIPART)
            )
            .as_str()
        )
    );
    assert_eq!(
        c.cmd("c6 FETCH 1 FAST").await,
        format!(
            "* 1 FETCH (FLAGS (\\Seen \\Recent) INTERNALDATE \" 4-Mar-2024 10:00:00 +0000\" RFC822.SIZE {})\r\nc6 OK Fetch completed\r\n",
            simple.len()
        )
    );
}

#[tokio::test]
async fn store_flags_and_keywords() {
    let server = start().await;
    for i in 1..=3 {
        deliver(
            &server,
            ALICE,
            &message("b@example.test", &format!("s{i}"), "x"),
        );
    }
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    c.cmd("s EXAMINE INBOX").await; // leave \Recent alone
    c.cmd("s CLOSE").await;
    c.cmd("s SELECT INBOX").await;
    assert_eq!(
        c.cmd("a1 STORE 1 +FLAGS (\\Seen \\Flagged)").await,
        "* 1 FETCH (FLAGS (\\Flagged \\Seen \\Recent))\r\na1 OK Store completed\r\n"
    );
    assert_eq!(
        c.cmd("a2 STORE 1 -FLAGS (\\Flagged)").await,
        "* 1 FETCH (FLAGS (\\Seen \\Recent))\r\na2 OK Store completed\r\n"
    );
    assert_eq!(
        c.cmd("a3 STORE 2:3 FLAGS ($Label1 \\Answered)").await,
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1)\r\n\
         * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1 \\*)] Flags permitted.\r\n\
         * 2 FETCH (FLAGS (\\Answered $Label1 \\Recent))\r\n* 3 FETCH (FLAGS (\\Answered $Label1 \\Recent))\r\na3 OK Store completed\r\n"
    );
    assert_eq!(
        c.cmd("a4 STORE 1:3 +FLAGS.SILENT (\\Draft)").await,
        "a4 OK Store completed\r\n"
    );
    assert_eq!(
        c.cmd("a5 UID STORE 3 -FLAGS ($Label1)").await,
        "* 3 FETCH (UID 3 FLAGS (\\Answered \\Draft \\Recent))\r\na5 OK Store completed\r\n"
    );
    assert_eq!(
        c.cmd("a6 SEARCH KEYWORD $Label1").await,
        "* SEARCH 2\r\na6 OK Search completed\r\n"
    );
    assert_eq!(
        c.cmd("a7 STORE 9 +FLAGS (\\Seen)").await,
        "a7 BAD Error in IMAP command: invalid message sequence number\r\n"
    );
    assert_eq!(
        c.cmd("a8 UID STORE 9 +FLAGS (\\Seen)").await,
        "a8 OK Store completed\r\n"
    );
}

#[tokio::test]
async fn search_criteria() {
    let server = start().await;
    let d = |day| {
        chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2024, 3, day, 12, 0, 0)
            .single()
            .expect("date")
    };
    deliver_dated(
        &server,
        ALICE,
        &message("Bob <bob@example.test>", "Invoice 42", "please pay"),
        d(1),
    );
    deliver_dated(
        &server,
        ALICE,
        &message("Carol <carol@shop.test>", "Lunch", "pizza today?"),
        d(2),
    );
    deliver_dated(
        &server,
        ALICE,
        "From: Dan <dan@example.test>\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nDate: Sun, 10 Mar 2024 08:00:00 +0000\r\nCc: bob@example.test\r\nX-Tag: special\r\n\r\nviele Grüße\r\n".as_bytes(),
        d(3),
    );
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    c.cmd("s SELECT INBOX").await;
    c.cmd("s STORE 1 +FLAGS (\\Seen)").await;
    c.cmd("s STORE 2 +FLAGS (\\Deleted \\Answered)").await;
    let q = |s: &str| format!("* SEARCH{s}\r\n");
    let cases: &[(&str, &str)] = &[
        ("ALL", " 1 2 3"),
        ("1:2", " 1 2"),
        ("UID 2:*", " 2 3"),
        ("SEEN", " 1"),
        ("UNSEEN", " 2 3"),
        ("DELETED", " 2"),
        ("UNDELETED", " 1 3"),
        ("ANSWERED", " 2"),
        ("FLAGGED", ""),
        ("NEW", " 2 3"),
        ("OLD", ""),
        ("RECENT", " 1 2 3"),
        ("FROM bob", " 1"),
        ("FROM CAROL", " 2"),
        ("TO alice", " 1 2"),
        ("CC bob@example", " 3"),
        ("SUBJECT invoice", " 1"),
        ("CHARSET UTF-8 SUBJECT {7}\r\ngrüße", " 3"),
        ("HEADER X-Tag spec", " 3"),
        ("BODY pizza", " 2"),
        ("TEXT Lunch", " 2"),
        ("TEXT pay", " 1"),
        ("SINCE 2-Mar-2024", " 2 3"),
        ("BEFORE 2-Mar-2024", " 1"),
        ("ON 2-Mar-2024", " 2"),
        ("SENTSINCE 5-Mar-2024", " 3"),
        ("SENTBEFORE 5-Mar-2024", " 1 2"),
        ("LARGER 200", ""),
        ("SMALLER 1000", " 1 2 3"),
        ("NOT SEEN", " 2 3"),
        ("OR SEEN DELETED", " 1 2"),
        ("(SEEN) (FROM bob)", " 1"),
        ("NOT (OR SEEN DELETED)", " 3"),
        ("UNSEEN NOT FROM dan", " 2"),
    ];
    for (i, (crit, expect)) in cases.iter().enumerate() {
        let tag = format!("q{i}");
        let got = if crit.contains("{7}") {
            let (head, tail) = crit.split_once("\r\n").unwrap_or((crit, ""));
            c.send(format!("{tag} SEARCH {head}\r\n").as_bytes()).await;
            assert_eq!(c.line().await, "+ OK\r\n");
            c.send(format!("{tail}\r\n").as_bytes()).await;
            c.until_tag(&tag).await
        } else {
            c.cmd(&format!("{tag} SEARCH {crit}")).await
        };
        assert_eq!(
            got,
            format!("{}{tag} OK Search completed\r\n", q(expect)),
            "SEARCH {crit}"
        );
    }
    assert_eq!(
        c.cmd("u1 UID SEARCH FROM carol").await,
        "* SEARCH 2\r\nu1 OK Search completed\r\n"
    );
    assert_eq!(
        c.cmd("u2 SEARCH CHARSET KOI8-R ALL").await,
        "u2 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset\r\n"
    );
}

#[tokio::test]
async fn copy_move_expunge_with_uidplus() {
    let server = start().await;
    for i in 1..=4 {
        deliver(
            &server,
            ALICE,
            &message("b@example.test", &format!("c{i}"), "x"),
        );
    }
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    c.cmd("s CREATE Archive").await;
    let av = validity(&server, ALICE, "Archive");
    c.cmd("s SELECT INBOX").await;
    assert_eq!(
        c.cmd("a1 COPY 1:2 Archive").await,
        format!("a1 OK [COPYUID {av} 1:2 1:2] Copy completed\r\n")
    );
    assert_eq!(
        c.cmd("a2 COPY 1 Nowhere").await,
        "a2 NO [TRYCREATE] Destination folder does not exist\r\n"
    );
    assert_eq!(
        c.cmd("a3 UID MOVE 3 Archive").await,
        format!("* OK [COPYUID {av} 3 3] Moved\r\n* 3 EXPUNGE\r\na3 OK Move completed\r\n")
    );
    assert_eq!(
        c.cmd("a4 MOVE 1 Archive").await,
        format!("* OK [COPYUID {av} 1 4] Moved\r\n* 1 EXPUNGE\r\na4 OK Move completed\r\n")
    );
    // Left: UIDs 2 and 4 as 1 and 2.
    assert_eq!(
        c.cmd("a5 UID SEARCH ALL").await,
        "* SEARCH 2 4\r\na5 OK Search completed\r\n"
    );
    c.cmd("s STORE 1:2 +FLAGS.SILENT (\\Deleted)").await;
    assert_eq!(
        c.cmd("a6 UID EXPUNGE 4").await,
        "* 2 EXPUNGE\r\na6 OK Expunge completed\r\n"
    );
    assert_eq!(
        c.cmd("a7 EXPUNGE").await,
        "* 1 EXPUNGE\r\na7 OK Expunge completed\r\n"
    );
    assert_eq!(
        c.cmd("a8 STATUS Archive (MESSAGES UIDNEXT)").await,
        "* STATUS Archive (MESSAGES 4 UIDNEXT 5)\r\na8 OK Status completed\r\n"
    );
    c.cmd("s SELECT Archive").await;
    c.cmd("s STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    assert_eq!(c.cmd("a9 CLOSE").await, "a9 OK Close completed\r\n");
    assert_eq!(
        c.cmd("b1 STATUS Archive (MESSAGES)").await,
        "* STATUS Archive (MESSAGES 3)\r\nb1 OK Status completed\r\n"
    );
}

#[tokio::test]
async fn append_with_literals_flags_and_date() {
    let server = start().await;
    let v = validity(&server, ALICE, INBOX);
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    let msg = "From: me@example.test\r\nSubject: draft\r\n\r\nhi\r\n";
    c.send(
        format!(
            "a1 APPEND INBOX (\\Seen $Work) \" 7-Feb-2024 21:52:25 +0100\" {{{}}}\r\n",
            msg.len()
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(c.line().await, "+ OK\r\n");
    c.send(format!("{msg}\r\n").as_bytes()).await;
    assert_eq!(
        c.until_tag("a1").await,
        format!("a1 OK [APPENDUID {v} 1] Append completed\r\n")
    );
    assert_eq!(
        c.cmd(&format!("a2 APPEND INBOX {{{}+}}\r\n{msg}", msg.len()))
            .await,
        format!("a2 OK [APPENDUID {v} 2] Append completed\r\n")
    );
    assert_eq!(
        c.cmd(&format!("a3 APPEND Nope {{{}+}}\r\n{msg}", msg.len()))
            .await,
        "a3 NO [TRYCREATE] Destination folder does not exist\r\n"
    );
    c.cmd("s SELECT INBOX").await;
    assert_eq!(
        c.cmd("a4 FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE)").await,
        format!(
            "* 1 FETCH (FLAGS (\\Seen $Work \\Recent) INTERNALDATE \" 7-Feb-2024 20:52:25 +0000\" RFC822.SIZE {})\r\na4 OK Fetch completed\r\n",
            msg.len()
        )
    );
    // APPEND to the selected folder is announced.
    assert_eq!(
        c.cmd(&format!("a5 APPEND INBOX {{{}+}}\r\n{msg}", msg.len()))
            .await,
        format!("* 3 EXISTS\r\n* 3 RECENT\r\na5 OK [APPENDUID {v} 3] Append completed\r\n")
    );
}

#[tokio::test]
async fn utf8_and_quoted_names_round_trip() {
    let server = start().await;
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    assert_eq!(
        c.cmd("a1 CREATE \"Ablage \\\"alt\\\"\"").await,
        "a1 OK Create completed\r\n"
    );
    assert_eq!(
        c.cmd("a2 LIST \"\" Ablage*").await,
        "* LIST (\\HasNoChildren) \".\" \"Ablage \\\"alt\\\"\"\r\na2 OK LIST completed\r\n"
    );
    let r = c.cmd("a3 SELECT \"Ablage \\\"alt\\\"\"").await;
    assert!(
        r.ends_with("a3 OK [READ-WRITE] Select completed\r\n"),
        "{r}"
    );
}

/// imaptest's append-binary, byte for byte: a `~{n}` APPEND of a body that
/// starts with NUL and mixes bare LF with CRLF comes back from BINARY[1]
/// unchanged, and BINARY.SIZE[1] counts exactly those bytes (the imaptest
/// runner compares literals as C strings, so this is where the rest is checked).
#[tokio::test]
async fn binary_append_round_trips_nul_and_bare_lf_exactly() {
    let server = start().await;
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    let body: &[u8] = b"\x00-\xe4\n\r\n\n";
    let mut msg = b"From: user@domain.org\r\nMime-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n".to_vec();
    msg.extend_from_slice(body);
    let mut wire = format!("A1 APPEND INBOX ~{{{}+}}\r\n", msg.len()).into_bytes();
    wire.extend_from_slice(&msg);
    wire.extend_from_slice(b"\r\n");
    c.send(&wire).await;
    let r = c.until_tag("A1").await;
    assert!(r.contains("A1 OK"), "{r}");
    c.cmd("A2 SELECT INBOX").await;
    let r = c.cmd("A3 FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])").await;
    let want = format!(
        "* 1 FETCH (BINARY.SIZE[1] 7 BINARY[1] ~{{7}}\r\n{})\r\n",
        String::from_utf8_lossy(body)
    );
    assert!(r.starts_with(&want), "want {want:?}\ngot  {r:?}");
}

/// SPECIAL-USE and LIST-STATUS as a client that looks for the Junk folder
/// uses them: the attribute comes in a plain LIST and when asked for in an
/// extended one, the selection option keeps only special-use folders, and
/// STATUS follows each LIST line.
#[tokio::test]
async fn special_use_folders_and_list_status() {
    let server = start().await;
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    for f in ["Junk", "Sent", "Projects"] {
        assert!(c.cmd(&format!("c CREATE {f}")).await.starts_with("c OK"));
    }
    c.send(b"ap APPEND Junk {12}\r\nSubject: x\r\n\r\n").await;
    assert!(c.until_tag("ap").await.contains("ap OK"));
    assert_eq!(
        c.cmd("a1 LIST \"\" %").await,
        "* LIST (\\HasNoChildren) \".\" INBOX\r\n\
         * LIST (\\HasNoChildren \\Junk) \".\" Junk\r\n\
         * LIST (\\HasNoChildren) \".\" Projects\r\n\
         * LIST (\\HasNoChildren \\Sent) \".\" Sent\r\n\
         a1 OK LIST completed\r\n"
    );
    // Extended without RETURN (SPECIAL-USE): no special-use attributes.
    assert_eq!(
        c.cmd("a2 LIST \"\" (Junk Sent)").await,
        "* LIST (\\HasNoChildren) \".\" Junk\r\n\
         * LIST (\\HasNoChildren) \".\" Sent\r\n\
         a2 OK LIST completed\r\n"
    );
    assert_eq!(
        c.cmd("a3 LIST (SPECIAL-USE) \"\" * RETURN (STATUS (MESSAGES UNSEEN))")
            .await,
        "* LIST (\\HasNoChildren \\Junk) \".\" Junk\r\n\
         * STATUS Junk (MESSAGES 1 UNSEEN 1)\r\n\
         * LIST (\\HasNoChildren \\Sent) \".\" Sent\r\n\
         * STATUS Sent (MESSAGES 0 UNSEEN 0)\r\n\
         a3 OK LIST completed\r\n"
    );
    assert_eq!(
        c.cmd("a4 LIST (BOGUS) \"\" *").await,
        "a4 BAD Unknown LIST selection option BOGUS (expected SUBSCRIBED, REMOTE, RECURSIVEMATCH or SPECIAL-USE)\r\n"
    );
}

/// CONDSTORE's conditional STORE (RFC 7162 §3.1.3): a message changed since
/// the client's modseq is left alone and named in `[MODIFIED]` (sequence
/// numbers for STORE, UIDs for UID STORE); the others change; once enabled,
/// a flag change by another session arrives with its MODSEQ.
#[tokio::test]
async fn condstore_unchangedsince_and_unsolicited_modseq() {
    let server = start().await;
    for i in 0..3 {
        deliver(&server, ALICE, &message("b@x.test", &format!("m{i}"), "x"));
    }
    let mut a = Client::login(server.imap_addr(), ALICE).await;
    let sel = a.cmd("a1 SELECT INBOX (CONDSTORE)").await;
    assert!(sel.contains("* OK [HIGHESTMODSEQ 4] Highest\r\n"), "{sel}");
    let mut b = Client::login(server.imap_addr(), ALICE).await;
    b.cmd("b1 SELECT INBOX").await;
    // Another session flags message 2: its modseq goes to 5.
    assert!(
        b.cmd("b2 STORE 2 +FLAGS.SILENT (\\Flagged)")
            .await
            .contains("b2 OK")
    );
    let r = a
        .cmd("a2 STORE 1:3 (UNCHANGEDSINCE 4) +FLAGS.SILENT (\\Seen)")
        .await;
    assert!(
        r.contains("* 2 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (5))\r\n"),
        "{r}"
    );
    assert!(
        r.ends_with("a2 OK [MODIFIED 2] Conditional STORE failed\r\n"),
        "{r}"
    );
    let r = a.cmd("a3 FETCH 1:3 (FLAGS MODSEQ)").await;
    assert!(
        r.contains("* 1 FETCH (FLAGS (\\Seen \\Recent) MODSEQ (6))"),
        "{r}"
    );
    assert!(
        r.contains("* 2 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (5))"),
        "{r}"
    );
    assert!(
        r.contains("* 3 FETCH (FLAGS (\\Seen \\Recent) MODSEQ (7))"),
        "{r}"
    );
    let r = a
        .cmd("a4 UID STORE 1:3 (UNCHANGEDSINCE 6) -FLAGS (\\Seen)")
        .await;
    assert!(
        r.ends_with("a4 OK [MODIFIED 3] Conditional STORE failed\r\n"),
        "{r}"
    );
    assert!(
        r.contains("* 1 FETCH (UID 1 FLAGS (\\Recent) MODSEQ (8))"),
        "{r}"
    );
    let r = a.cmd("a5 SEARCH MODSEQ 7").await;
    assert_eq!(r, "* SEARCH 1 3 (MODSEQ 8)\r\na5 OK Search completed\r\n");
    let r = a.cmd("a6 FETCH 1:* (FLAGS) (CHANGEDSINCE 7)").await;
    assert_eq!(
        r,
        "* 1 FETCH (FLAGS (\\Recent) MODSEQ (8))\r\na6 OK Fetch completed\r\n"
    );
    let r = a.cmd("a7 STATUS INBOX (HIGHESTMODSEQ MESSAGES)").await;
    assert!(
        r.starts_with("* STATUS INBOX (HIGHESTMODSEQ 8 MESSAGES 3)\r\n"),
        "{r}"
    );
    let r = a.cmd("a8 FETCH 1 (FLAGS) (VANISHED)").await;
    assert!(r.starts_with("a8 BAD "), "{r}");
}

/// CONTEXT=SEARCH: a search kept up to date hears of a delivery and of
/// another session's flag change at its next command, and stops at
/// CANCELUPDATE; a tag that is not kept up to date is refused.
#[tokio::test]
async fn search_update_follows_deliveries_and_other_sessions() {
    let server = start().await;
    deliver(&server, ALICE, &message("b@x.test", "one", "body"));
    let mut a = Client::login(server.imap_addr(), ALICE).await;
    a.cmd("s SELECT INBOX").await;
    assert_eq!(
        a.cmd("u1 UID SEARCH RETURN (UPDATE ALL) UNSEEN").await,
        "* ESEARCH (TAG \"u1\") UID ALL 1\r\nu1 OK Search completed\r\n"
    );
    let uid = deliver(&server, ALICE, &message("c@x.test", "two", "body"));
    assert_eq!(
        a.cmd("n1 NOOP").await,
        format!(
            "* 2 EXISTS\r\n* 2 RECENT\r\n* ESEARCH (TAG \"u1\") UID ADDTO (0 {uid})\r\nn1 OK NOOP completed\r\n"
        )
    );
    let mut b = Client::login(server.imap_addr(), ALICE).await;
    b.cmd("s SELECT INBOX").await;
    b.cmd("f STORE 1 +FLAGS.SILENT (\\Seen)").await;
    let r = a.cmd("n2 NOOP").await;
    assert!(
        r.contains("* ESEARCH (TAG \"u1\") UID REMOVEFROM (0 1)\r\n"),
        "{r}"
    );
    assert_eq!(
        a.cmd("c1 CANCELUPDATE \"nope\"").await,
        "c1 BAD CANCELUPDATE names a tag whose search is not kept up to date\r\n"
    );
    assert_eq!(
        a.cmd("c2 CANCELUPDATE \"u1\"").await,
        "c2 OK Updates cancelled\r\n"
    );
    b.cmd("g STORE 1 -FLAGS.SILENT (\\Seen)").await;
    let r = a.cmd("n3 NOOP").await;
    assert!(!r.contains("ESEARCH"), "cancelled, yet: {r}");
}

/// QRESYNC (RFC 7162 §3.2): after ENABLE QRESYNC another session's expunge
/// arrives as `* VANISHED` and its flag change with the UID; a SELECT with
/// the old UIDVALIDITY and modseq gets `[CLOSED]` for the folder it leaves,
/// `* VANISHED (EARLIER)` and FETCHes of what changed (only of the known
/// UIDs when they are named, nothing with another UIDVALIDITY); `UID FETCH
/// (CHANGEDSINCE n VANISHED)` says the same. Malformed parameters are BAD
/// and leave the folder selected.
#[tokio::test]
async fn qresync_select_vanished_and_uid_fetch() {
    let server = start().await;
    for i in 0..5 {
        deliver(&server, ALICE, &message("b@x.test", &format!("m{i}"), "x"));
    }
    let v = validity(&server, ALICE, INBOX);
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    assert!(
        c.cmd(&format!("c1 SELECT INBOX (QRESYNC ({v} 6))"))
            .await
            .starts_with("c1 BAD The QRESYNC parameter needs ENABLE QRESYNC first")
    );
    let mut a = Client::login(server.imap_addr(), ALICE).await;
    assert_eq!(
        a.cmd("a1 ENABLE QRESYNC").await,
        "* ENABLED QRESYNC\r\na1 OK Enabled\r\n"
    );
    let sel = a.cmd("a2 SELECT INBOX").await;
    assert!(sel.contains("* OK [HIGHESTMODSEQ 6] Highest\r\n"), "{sel}");
    assert!(!sel.contains("CLOSED"), "{sel}");
    let mut b = Client::login(server.imap_addr(), ALICE).await;
    b.cmd("b1 SELECT INBOX").await;
    // uid 2 gets modseq 7; uid 4 is flagged (8) and expunged (9).
    for cmd in [
        "b2 STORE 2 +FLAGS.SILENT (\\Seen)",
        "b3 STORE 4 +FLAGS.SILENT (\\Deleted)",
        "b4 EXPUNGE",
    ] {
        let r = b.cmd(cmd).await;
        assert!(r.contains(" OK "), "{cmd}: {r}");
    }
    assert_eq!(
        a.cmd("a3 NOOP").await,
        "* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent) MODSEQ (7))\r\n\
         * VANISHED 4\r\n\
         a3 OK NOOP completed\r\n"
    );
    assert_eq!(
        a.cmd(&format!("a4 SELECT INBOX (QRESYNC ({v} 6))")).await,
        format!(
            "* OK [CLOSED] Previous mailbox closed.\r\n\
             * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
             * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.\r\n\
             * 4 EXISTS\r\n\
             * 0 RECENT\r\n\
             * OK [UNSEEN 1] First unseen.\r\n\
             * OK [UIDVALIDITY {v}] UIDs valid\r\n\
             * OK [UIDNEXT 6] Predicted next UID\r\n\
             * OK [HIGHESTMODSEQ 9] Highest\r\n\
             * VANISHED (EARLIER) 4\r\n\
             * 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ (7))\r\n\
             a4 OK [READ-WRITE] Select completed\r\n"
        )
    );
    // Known UIDs 3:5: uid 2's change and uid 4's expunge... only 4 is theirs.
    let r = a
        .cmd(&format!("a5 EXAMINE INBOX (QRESYNC ({v} 6 3:5))"))
        .await;
    assert!(r.contains("* VANISHED (EARLIER) 4\r\n"), "{r}");
    assert!(!r.contains("FETCH"), "{r}");
    let r = a
        .cmd(&format!("a6 SELECT INBOX (QRESYNC ({v} 6 1:2))"))
        .await;
    assert!(!r.contains("VANISHED"), "{r}");
    assert!(
        r.contains("* 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ (7))\r\n"),
        "{r}"
    );
    // Seq-match data is accepted (the history is enough without it).
    let r = a
        .cmd(&format!("a7 SELECT INBOX (QRESYNC ({v} 6 1:5 (1:3 1:3)))"))
        .await;
    assert!(r.contains("* VANISHED (EARLIER) 4\r\n"), "{r}");
    // Another UIDVALIDITY: no resynchronization, the client starts over.
    let r = a
        .cmd(&format!("a8 SELECT INBOX (QRESYNC ({} 6))", v + 1))
        .await;
    assert!(!r.contains("VANISHED") && !r.contains("FETCH"), "{r}");
    assert!(
        r.ends_with("a8 OK [READ-WRITE] Select completed\r\n"),
        "{r}"
    );
    let r = a
        .cmd("a9 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 6 VANISHED)")
        .await;
    assert!(r.starts_with("* VANISHED (EARLIER) 4\r\n"), "{r}");
    assert!(r.contains("* 2 FETCH ("), "{r}");
    assert!(r.contains("UID 2") && r.contains("MODSEQ (7)"), "{r}");
    assert!(r.ends_with("a9 OK Fetch completed\r\n"), "{r}");
    assert_eq!(
        a.cmd("a10 UID FETCH 1:3 (FLAGS) (CHANGEDSINCE 7 VANISHED)")
            .await,
        "a10 OK Fetch completed\r\n"
    );
    // Bad input: tagged BAD, the folder stays selected.
    for (cmd, text) in [
        (
            "b1 FETCH 1:* (FLAGS) (CHANGEDSINCE 6 VANISHED)",
            "b1 BAD The VANISHED modifier is only allowed in UID FETCH\r\n",
        ),
        (
            "b2 UID FETCH 1:* (FLAGS) (VANISHED)",
            "b2 BAD The VANISHED modifier needs CHANGEDSINCE\r\n",
        ),
        (
            "b3 SELECT INBOX (QRESYNC (7))",
            "b3 BAD Error in IMAP command: could not parse it\r\n",
        ),
        (
            "b4 SELECT INBOX (QRESYNC (0 6))",
            "b4 BAD Error in IMAP command: could not parse it\r\n",
        ),
        (
            "b5 SELECT INBOX (QRESYNC (7 6 1:*))",
            "b5 BAD QRESYNC known UIDs must not contain '*' (RFC 7162 section 3.2.5)\r\n",
        ),
        (
            "b6 SELECT INBOX (QRESYNC (7 6 1:5 (1:3 1,2)))",
            "b6 BAD QRESYNC sequence match data names 3 message numbers but 2 UIDs; they must pair up (RFC 7162 section 3.2.5)\r\n",
        ),
        (
            "b7 SELECT INBOX (QRESYNC (7 x))",
            "b7 BAD Error in IMAP command: could not parse it\r\n",
        ),
    ] {
        assert_eq!(a.cmd(cmd).await, text, "{cmd}");
    }
    let r = a.cmd("b8 FETCH 1 (UID)").await;
    assert_eq!(r, "* 1 FETCH (UID 1)\r\nb8 OK Fetch completed\r\n");
}

/// `forget-modseq` at `imap-select`: SELECT answers `NOMODSEQ` instead of
/// HIGHESTMODSEQ and ignores a QRESYNC parameter, STATUS says
/// `HIGHESTMODSEQ 0`, and the commands that need mod-sequences are BAD;
/// another mailbox keeps its mod-sequences.
#[tokio::test]
async fn forget_modseq_answers_nomodseq() {
    let server = start_with(&scenario(
        "[[fault]]\nname = \"lost-modseqs\"\nstage = \"imap-select\"\naction = \"forget-modseq\"\nmailbox = \"alice\"\n",
    ))
    .await;
    for i in 0..2 {
        deliver(&server, ALICE, &message("b@x.test", &format!("m{i}"), "x"));
    }
    let v = validity(&server, ALICE, INBOX);
    let mut a = Client::login(server.imap_addr(), ALICE).await;
    a.cmd("a1 ENABLE QRESYNC").await;
    let r = a.cmd(&format!("a2 SELECT INBOX (QRESYNC ({v} 1))")).await;
    assert!(
        r.contains("* OK [NOMODSEQ] Sorry, this mailbox format doesn't support modsequences\r\n"),
        "{r}"
    );
    assert!(!r.contains("HIGHESTMODSEQ") && !r.contains("FETCH"), "{r}");
    assert!(
        r.ends_with("a2 OK [READ-WRITE] Select completed\r\n"),
        "{r}"
    );
    assert_eq!(
        a.cmd("a3 STATUS INBOX (HIGHESTMODSEQ MESSAGES)").await,
        "* STATUS INBOX (HIGHESTMODSEQ 0 MESSAGES 2)\r\na3 OK Status completed\r\n"
    );
    for (cmd, what) in [
        ("a4 FETCH 1 (MODSEQ)", "FETCH MODSEQ or CHANGEDSINCE"),
        (
            "a5 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1)",
            "FETCH MODSEQ or CHANGEDSINCE",
        ),
        (
            "a6 STORE 1 (UNCHANGEDSINCE 5) +FLAGS (\\Seen)",
            "STORE UNCHANGEDSINCE",
        ),
        ("a7 SEARCH MODSEQ 1", "SEARCH MODSEQ"),
    ] {
        let tag = cmd.split(' ').next().unwrap_or_default();
        assert_eq!(
            a.cmd(cmd).await,
            format!(
                "{tag} BAD {what} needs mod-sequences, and this folder has none (NOMODSEQ)\r\n"
            ),
            "{cmd}"
        );
    }
    // A flag change still arrives, without MODSEQ.
    let mut b = Client::login(server.imap_addr(), ALICE).await;
    b.cmd("b1 SELECT INBOX").await;
    b.cmd("b2 STORE 2 +FLAGS.SILENT (\\Flagged)").await;
    let r = a.cmd("a8 NOOP").await;
    assert_eq!(
        r, "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))\r\na8 OK NOOP completed\r\n",
        "{r}"
    );
    // Bob's mailbox is not selected by the rule.
    let mut c = Client::login(server.imap_addr(), BOB).await;
    let r = c.cmd("c1 SELECT INBOX").await;
    assert!(r.contains("* OK [HIGHESTMODSEQ 1] Highest\r\n"), "{r}");
}

/// CATENATE (RFC 4469): a message put together from a URL's HEADER and a
/// TEXT literal, and from a whole message; a URL with a wrong UIDVALIDITY,
/// a missing UID or section fails the APPEND with `NO [BADURL ...]` and
/// stores nothing; more bytes than `max_literal` in all is `NO [TOOBIG]`.
#[tokio::test]
async fn catenate_builds_messages_from_urls_and_text() {
    let server = start_with(&scenario("[limits]\nmax_literal = 200\n")).await;
    deliver(
        &server,
        ALICE,
        b"From: foo@example.com\r\n\r\nHello world body\r\n",
    );
    let v = validity(&server, ALICE, INBOX);
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    c.cmd("a0 CREATE Box").await;
    let r = c
        .cmd(&format!(
            "a1 APPEND Box (\\Seen) CATENATE (URL \"/INBOX;UIDVALIDITY={v}/;UID=1/;SECTION=HEADER\" TEXT {{7+}}\r\nbody1\r\n)"
        ))
        .await;
    assert!(r.starts_with("a1 OK [APPENDUID "), "{r}");
    let r = c.cmd("a2 APPEND Box CATENATE (URL \"/INBOX/;uid=1\") CATENATE (TEXT {3+}\r\nx\r\n URL \"/INBOX/;uid=1/;section=1/;partial=6.5\")").await;
    assert!(r.starts_with("a2 OK [APPENDUID "), "{r}");
    let box_msgs = |server: &MockServer| {
        let id = server.world().mailbox_by_address(ALICE).unwrap();
        server.store().mailbox(id).messages("Box").unwrap()
    };
    let raw: Vec<String> = box_msgs(&server)
        .iter()
        .map(|m| String::from_utf8_lossy(&m.raw).into_owned())
        .collect();
    assert_eq!(
        raw,
        [
            "From: foo@example.com\r\n\r\nbody1\r\n",
            "From: foo@example.com\r\n\r\nHello world body\r\n",
            "x\r\nworld",
        ]
    );
    for (cmd, code) in [
        (
            format!(
                "b1 APPEND Box CATENATE (URL \"/INBOX;UIDVALIDITY={}/;UID=1\")",
                v + 1
            ),
            "b1 NO [BADURL /INBOX;UIDVALIDITY=",
        ),
        (
            "b2 APPEND Box CATENATE (TEXT {1+}\r\nx URL \"/INBOX/;UID=9\")".to_string(),
            "b2 NO [BADURL /INBOX/;UID=9] no message with UID 9",
        ),
        (
            "b3 APPEND Box CATENATE (URL \"/INBOX/;UID=1/;SECTION=4\")".to_string(),
            "b3 NO [BADURL /INBOX/;UID=1/;SECTION=4] the message has no section 4",
        ),
        (
            "b4 APPEND Box CATENATE (URL \"/Nope/;UID=1\")".to_string(),
            "b4 NO [BADURL /Nope/;UID=1] folder Nope does not exist",
        ),
        (
            "b5 APPEND Box CATENATE (URL \"imap://h/INBOX/;UID=1\")".to_string(),
            "b5 NO [BADURL imap://h/INBOX/;UID=1] only relative URLs",
        ),
        (
            "b6 APPEND Box CATENATE (TEXT \"x\")".to_string(),
            "b6 BAD Error in APPEND: CATENATE needs",
        ),
        (
            format!(
                "b7 APPEND Box CATENATE (TEXT {{150+}}\r\n{} TEXT {{150+}}\r\n{})",
                "a".repeat(150),
                "b".repeat(150)
            ),
            "b7 NO [TOOBIG] The CATENATE message exceeds the limit of 200 bytes",
        ),
    ] {
        let r = c.cmd(&cmd).await;
        assert!(r.starts_with(code), "{cmd}: {r}");
    }
    assert_eq!(box_msgs(&server).len(), 3, "nothing stored by the failures");
    // A MULTIAPPEND with one bad URL stores none of its messages.
    let r = c
        .cmd("c1 APPEND Box {1+}\r\nz CATENATE (URL \"/INBOX/;UID=7\")")
        .await;
    assert!(r.starts_with("c1 NO [BADURL "), "{r}");
    assert_eq!(box_msgs(&server).len(), 3);
    assert!(c.cmd("c2 NOOP").await.contains("c2 OK"));
}
