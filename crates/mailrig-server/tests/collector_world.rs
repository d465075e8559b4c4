//! Collectors between hosts, driven by real clients: swaks delivers to the
//! provider's address, Python's poplib reads what waits there, and the
//! collector's rounds move it into the firm's host. Each failure of the
//! issue is reproduced: only some accounts configured (the seed), a wrong
//! password, a stopped collector, duplicates when UIDL state is lost or the
//! session drops before QUIT, multidrop losing a Bcc recipient.

mod support;

use mailrig_core::JournalEvent;
use mailrig_core::fault::Stage;
use support::faults::python;
use support::hosts::*;
use support::{eventually, start_toml as start};

const POPLIB: &str = r#"
import poplib, sys
host, port, user = sys.argv[1], int(sys.argv[2]), sys.argv[3]
p = poplib.POP3(host, port, timeout=10)
p.user(user)
p.pass_("secret")
count, _ = p.stat()
subjects = []
for i in range(1, count + 1):
    lines = p.retr(i)[1]
    subjects += [l.decode() for l in lines if l.lower().startswith(b"message-id:")]
p.quit()
print(count)
for s in subjects:
    print(s)
"#;

/// Provider (POP3) and firm hosts over DOMAINS, and one collector with `extra` keys.
fn world(collector: &str) -> String {
    let a = addresses(2);
    format!(
        "{DOMAINS}[[host]]\nname = 'provider'\naddress = '{}'\ndomains = ['kanzlei.test', 'patente.test']\npop3 = true\n\n\
         [[host]]\nname = 'firm'\naddress = '{}'\ndomains = ['kanzlei.test', 'patente.test']\nimap = true\n\n\
         [[collector]]\nname = 'c'\nfrom = 'provider'\nto = 'firm'\ninterval_secs = 3600\n{collector}\n",
        a[0], a[1]
    )
}

fn inbox(server: &mailrig_server::MockServer, host: &str, address: &str) -> usize {
    server.host(host).unwrap().inbox(address).unwrap().len()
}

#[tokio::test]
async fn the_seed_catalog_world_collects_only_the_configured_accounts() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../mailrig-core/catalog/kanzlei-pop3-collector.toml"
    );
    let server = mailrig_server::MockServer::builder()
        .scenario_file(path)
        .unwrap()
        .start()
        .await
        .unwrap();
    let provider = server.host("provider").unwrap();
    assert_eq!(provider.smtp_addr().ip().to_string(), "127.0.0.2");
    for (i, to) in [
        "anna@kanzlei.test",
        "user01@patente.test",
        "user03@patente.test",
    ]
    .iter()
    .enumerate()
    {
        swaks_ok(provider.smtp_addr(), to, &format!("s{i}")).await;
    }
    let round = server.collect_now("firm-pop3-connector").await.unwrap();
    assert_eq!(
        (round.fetched, round.delivered, round.lost),
        (2, 2, 0),
        "{round:?}"
    );
    assert!(round.failed.is_empty());
    assert_eq!(inbox(&server, "firm", "anna@kanzlei.test"), 1);
    assert_eq!(inbox(&server, "firm", "user01@patente.test"), 1);
    assert_eq!(inbox(&server, "firm", "user03@patente.test"), 0);
    // Python's poplib at the provider: user03's mail waits there, unread.
    let pop = provider.pop3_addr();
    let out = python(
        POPLIB,
        &[
            &pop.ip().to_string(),
            &pop.port().to_string(),
            "user03@patente.test",
        ],
    )
    .await;
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1"), "{out}");
    assert!(lines.next().unwrap().contains("s2@extern.test"), "{out}");
    // keep: user01's copy stays at the provider too.
    assert_eq!(inbox(&server, "provider", "user01@patente.test"), 1);
    // The next round fetches nothing again (UIDLs remembered).
    let round = server.collect_now("firm-pop3-connector").await.unwrap();
    assert_eq!(round.fetched, 0, "{round:?}");
    let collected: Vec<_> = server
        .journal()
        .entries()
        .into_iter()
        .filter(|e| matches!(e.event, JournalEvent::Collected(_)))
        .collect();
    assert_eq!(collected.len(), 2);
    assert!(
        collected
            .iter()
            .all(|e| e.host.as_deref() == Some("firm") && e.stage == Stage::Collect)
    );
    assert!(
        collected
            .iter()
            .any(|e| e.message_id.as_deref() == Some("<s1@extern.test>")),
        "{collected:#?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_interval_collects_without_being_asked() {
    let text = world("accounts = ['anna@kanzlei.test']")
        .replace("interval_secs = 3600", "interval_secs = 0.1");
    let server = start(&text).await;
    swaks_ok(
        server.host("provider").unwrap().smtp_addr(),
        "anna@kanzlei.test",
        "i1",
    )
    .await;
    assert!(
        eventually(std::time::Duration::from_secs(10), || inbox(
            &server,
            "firm",
            "anna@kanzlei.test"
        ) == 1)
        .await
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_wrong_password_fails_one_account_and_journals_it() {
    let server = start(&world(
        "accounts = ['anna@kanzlei.test']\n[[collector.account]]\naddress = 'bernd@kanzlei.test'\npassword = 'wrong'\n",
    ))
    .await;
    let smtp = server.host("provider").unwrap().smtp_addr();
    swaks_ok(smtp, "anna@kanzlei.test", "w1").await;
    swaks_ok(smtp, "bernd@kanzlei.test", "w2").await;
    let round = server.collect_now("c").await.unwrap();
    assert_eq!(round.delivered, 1);
    assert_eq!(round.failed.len(), 1, "{round:?}");
    assert_eq!(round.failed[0].0, "bernd@kanzlei.test");
    assert_eq!(inbox(&server, "firm", "bernd@kanzlei.test"), 0);
    let j = server.journal_for("bernd@kanzlei.test");
    assert!(
        j.iter().any(
            |e| matches!(&e.event, JournalEvent::CollectFailed(c) if c.reason.contains("refused"))
        ),
        "{j:#?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_stopped_collector_fetches_nothing() {
    let server = start(&world("accounts = ['kanzlei.test']\nenabled = false")).await;
    swaks_ok(
        server.host("provider").unwrap().smtp_addr(),
        "anna@kanzlei.test",
        "x1",
    )
    .await;
    let round = server.collect_now("c").await.unwrap();
    assert!(round.stopped);
    assert_eq!(inbox(&server, "firm", "anna@kanzlei.test"), 0);
    assert_eq!(inbox(&server, "provider", "anna@kanzlei.test"), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn lost_uidl_state_duplicates_every_round() {
    let server = start(&world(
        "accounts = ['anna@kanzlei.test']\nforget_uidls = true",
    ))
    .await;
    swaks_ok(
        server.host("provider").unwrap().smtp_addr(),
        "anna@kanzlei.test",
        "d1",
    )
    .await;
    for _ in 0..3 {
        server.collect_now("c").await.unwrap();
    }
    assert_eq!(inbox(&server, "firm", "anna@kanzlei.test"), 3);
    server.shutdown().await;
}

#[tokio::test]
async fn delete_after_fetch_empties_the_provider_unless_the_session_drops_before_quit() {
    let server = start(&world("accounts = ['anna@kanzlei.test']\nkeep = false")).await;
    swaks_ok(
        server.host("provider").unwrap().smtp_addr(),
        "anna@kanzlei.test",
        "k1",
    )
    .await;
    server.collect_now("c").await.unwrap();
    server.collect_now("c").await.unwrap();
    assert_eq!(inbox(&server, "firm", "anna@kanzlei.test"), 1);
    assert_eq!(inbox(&server, "provider", "anna@kanzlei.test"), 0);
    server.shutdown().await;

    let server = start(&world(
        "accounts = ['anna@kanzlei.test']\nkeep = false\ndrop_before_quit = true",
    ))
    .await;
    swaks_ok(
        server.host("provider").unwrap().smtp_addr(),
        "anna@kanzlei.test",
        "k2",
    )
    .await;
    server.collect_now("c").await.unwrap();
    server.collect_now("c").await.unwrap();
    // No QUIT, no UPDATE state: the DELEs were never committed.
    assert!(
        eventually(std::time::Duration::from_secs(5), || inbox(
            &server,
            "provider",
            "anna@kanzlei.test"
        ) == 1)
        .await
    );
    assert_eq!(inbox(&server, "firm", "anna@kanzlei.test"), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn multidrop_distributes_by_headers_and_loses_the_bcc_recipient() {
    let a = addresses(2);
    let text = format!(
        "[[domain]]\nname = 'kanzlei.test'\nmailboxes = ['anna', 'bernd', 'clara', 'sammel']\npassword = 'secret'\ncatch_all = 'sammel'\nunknown_recipient = 'catch-all'\n\n\
         [[host]]\nname = 'provider'\naddress = '{}'\ndomains = ['kanzlei.test']\nmailboxes = ['sammel@kanzlei.test']\npop3 = true\n\n\
         [[host]]\nname = 'firm'\naddress = '{}'\ndomains = ['kanzlei.test']\n\n\
         [[collector]]\nname = 'sbs'\nfrom = 'provider'\nto = 'firm'\ninterval_secs = 3600\n[[collector.multidrop]]\nlogin = 'sammel@kanzlei.test'\n",
        a[0], a[1]
    );
    let server = start(&text).await;
    let smtp = server.host("provider").unwrap().smtp_addr();
    // One transaction: anna in To, bernd in Cc, clara only in the envelope (Bcc).
    let out = swaks(
        smtp,
        "anna@kanzlei.test,bernd@kanzlei.test,clara@kanzlei.test",
        "m1",
        &[
            "--header",
            "To: Anna <anna@kanzlei.test>",
            "--header",
            "Cc: bernd@kanzlei.test",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The provider holds everything in the one domain mailbox.
    assert_eq!(inbox(&server, "provider", "sammel@kanzlei.test"), 1);
    let round = server.collect_now("sbs").await.unwrap();
    assert_eq!(
        (round.fetched, round.delivered, round.lost),
        (1, 2, 0),
        "{round:?}"
    );
    assert_eq!(inbox(&server, "firm", "anna@kanzlei.test"), 1);
    assert_eq!(inbox(&server, "firm", "bernd@kanzlei.test"), 1);
    assert_eq!(
        inbox(&server, "firm", "clara@kanzlei.test"),
        0,
        "the Bcc recipient is in no header"
    );
    let j = server.journal_for("anna@kanzlei.test");
    assert!(
        j.iter().any(
            |e| matches!(&e.event, JournalEvent::Collected(c)
            if c.delivered_to == ["anna@kanzlei.test".to_string(), "bernd@kanzlei.test".to_string()])
        ),
        "{j:#?}"
    );
    assert!(server.journal_for("clara@kanzlei.test").is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn a_collector_fetches_from_an_outside_server_by_address_and_credentials() {
    // The outside server: another, one-server world (the built-in default).
    let outside = mailrig_server::MockServer::start_default().await.unwrap();
    swaks_ok(outside.smtp_addr(), "alice@example.test", "o1").await;
    let text = world("").replace(
        "from = 'provider'",
        &format!("server = '{}'", outside.pop3_addr()),
    ) + "[[collector.account]]\nlogin = 'alice@example.test'\npassword = 'secret'\ndeliver_to = 'clara@kanzlei.test'\n";
    let server = start(&text).await;
    let round = server.collect_now("c").await.unwrap();
    assert_eq!((round.fetched, round.delivered), (1, 1), "{round:?}");
    let got = server
        .host("firm")
        .unwrap()
        .inbox("clara@kanzlei.test")
        .unwrap();
    assert!(String::from_utf8_lossy(&got[0].raw).contains("<o1@extern.test>"));
    server.shutdown().await;
    outside.shutdown().await;
}
