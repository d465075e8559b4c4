//! The README's `MockServer` example, compiled and run by `make test`.
//! The README shows this file from its first line after these `//!` lines;
//! `crates/mailrig/tests/readme_examples.rs` fails when the two differ.

use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use mailrig_server::MockServer;

// dev-dependencies: mailrig-server, tokio (macros, rt), lettre (tokio1, builder, smtp-transport)
#[tokio::test]
async fn anna_gets_her_mail_and_user03_is_refused() -> Result<(), Box<dyn std::error::Error>> {
    let server = MockServer::builder()
        .scenario_toml(
            r#"
            [[domain]]
            name = "kanzlei.test"
            mailboxes = ["anna", "bernd", "clara"]
            password = "secret"

            [[domain]]
            name = "patente.test"
            mailboxes = ["user01..user25"]
            password = "secret"
            "#,
        )? // or .scenario_file("crates/mailrig-core/catalog/kanzlei.toml")?
        .start()
        .await?; // every listener on 127.0.0.1:0
    let smtp = server.smtp_addr(); // also imap_addr(), pop3_addr(), http_addr(), ca_path()

    // Send with any SMTP client; here lettre, plain SMTP to the port the server got.
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(smtp.port())
        .build();
    let mail = |to: &str| {
        Message::builder()
            .from("sender@extern.test".parse()?)
            .to(to.parse()?)
            .subject("Hello")
            .body(String::from("Hello from a test.\r\n"))
            .map_err(Box::<dyn std::error::Error>::from)
    };
    mailer.send(mail("anna@kanzlei.test")?).await?;
    assert_eq!(server.inbox("anna@kanzlei.test").unwrap().len(), 1);

    // Break it on purpose: refuse user03 at RCPT, then ask the journal why.
    server.add_fault_toml(
        "name = \"no-user03\"\nstage = \"rcpt\"\naction = \"reject\"\nmailbox = \"user03\"",
    )?;
    let refused = mailer.send(mail("user03@patente.test")?).await.unwrap_err();
    assert!(refused.is_permanent(), "{refused}"); // a 5xx reply
    assert!(server.inbox("user03@patente.test").unwrap().is_empty());
    let what_happened = server.journal_for("user03@patente.test");
    assert_eq!(what_happened.len(), 1);
    assert_eq!(what_happened[0].rule.as_deref(), Some("no-user03"));

    server.shutdown().await; // ends every task
    Ok(())
}
