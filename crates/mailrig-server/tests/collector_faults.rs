//! Collector failures as fault rules at run time: each added through the
//! control API with curl (`POST /api/v1/faults`, stage `collect`), seen in
//! the next round, journaled with the rule's name, and gone again when the
//! rule is disabled or removed. A wrong password for one account
//! (`fail-login`), a session dropped before QUIT (`disconnect`: the DELEs
//! never commit, duplicates), lost UIDL state (`forget-uidls`) and a
//! stopped collector (`stop-collector`), with a POP3 and an IMAP collector.

mod support;

use mailrig_server::MockServer;
use serde_json::Value;
use support::hosts::*;
use support::{run_tool, start_toml as start};

/// Provider (first host: the one the HTTP API serves) and firm, one collector.
fn world(protocol: &str, collector: &str) -> String {
    let a = addresses(2);
    format!(
        "{DOMAINS}[[host]]\nname = 'provider'\naddress = '{}'\ndomains = ['kanzlei.test', 'patente.test']\npop3 = true\nimap = true\n\n\
         [[host]]\nname = 'firm'\naddress = '{}'\ndomains = ['kanzlei.test', 'patente.test']\n\n\
         [[collector]]\nname = 'c'\nfrom = 'provider'\nto = 'firm'\nprotocol = '{protocol}'\ninterval_secs = 3600\n{collector}\n",
        a[0], a[1]
    )
}

async fn api(server: &MockServer, method: &str, path: &str, body: Option<&str>) -> Value {
    let url = format!("http://{}{path}", server.http_addr());
    let mut args = vec!["-sS", "--max-time", "10", "-X", method];
    if let Some(b) = body {
        args.extend(["-H", "content-type: application/json", "-d", b]);
    }
    args.push(&url);
    let out = run_tool("curl", &args).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

async fn add_rule(server: &MockServer, json: &str) {
    let v = api(server, "POST", "/api/v1/faults", Some(json)).await;
    assert!(v.get("error").is_none(), "{v}");
}

/// Journal entries of this kind (stage collect) naming this rule.
async fn journaled(server: &MockServer, kind: &str, rule: &str) -> Vec<Value> {
    let v = api(
        server,
        "GET",
        &format!("/api/v1/journal?kind={kind}&rule={rule}"),
        None,
    )
    .await;
    let entries = v["entries"].as_array().unwrap().clone();
    assert!(entries.iter().all(|e| e["stage"] == "collect"), "{v}");
    entries
}

fn inbox(server: &MockServer, host: &str, address: &str) -> usize {
    server.host(host).unwrap().inbox(address).unwrap().len()
}

async fn send(server: &MockServer, to: &str, id: &str) {
    swaks_ok(server.host("provider").unwrap().smtp_addr(), to, id).await;
}

#[tokio::test]
async fn a_fail_login_rule_refuses_one_account_as_a_wrong_password_would() {
    for protocol in ["pop3", "imap"] {
        let server = start(&world(
            protocol,
            "accounts = ['anna@kanzlei.test', 'bernd@kanzlei.test']",
        ))
        .await;
        send(&server, "anna@kanzlei.test", "l1").await;
        send(&server, "bernd@kanzlei.test", "l2").await;
        add_rule(
            &server,
            r#"{"name": "bernd-password-changed", "stage": "collect", "action": "fail-login", "user": "bernd@*"}"#,
        )
        .await;
        let round = server.collect_now("c").await.unwrap();
        assert_eq!(round.fetched, 1, "{protocol}: {round:?}");
        assert_eq!(round.failed.len(), 1, "{protocol}: {round:?}");
        assert_eq!(round.failed[0].0, "bernd@kanzlei.test");
        assert_eq!(inbox(&server, "firm", "bernd@kanzlei.test"), 0);
        let j = journaled(&server, "collect-failed", "bernd-password-changed").await;
        assert_eq!(j.len(), 1, "{protocol}: {j:#?}");
        assert_eq!(j[0]["host"], "firm");
        assert_eq!(j[0]["event"]["account"], "bernd@kanzlei.test");
        assert!(
            j[0]["event"]["reason"]
                .as_str()
                .unwrap()
                .contains("bernd-password-changed"),
            "{j:#?}"
        );
        // The password "fixed": the rule disabled, bernd's mail comes.
        api(
            &server,
            "POST",
            "/api/v1/faults/bernd-password-changed/disable",
            None,
        )
        .await;
        let round = server.collect_now("c").await.unwrap();
        assert_eq!((round.fetched, round.failed.len()), (1, 0), "{round:?}");
        assert_eq!(inbox(&server, "firm", "bernd@kanzlei.test"), 1);
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_disconnect_rule_drops_the_session_before_quit_and_brings_duplicates() {
    for protocol in ["pop3", "imap"] {
        let server = start(&world(
            protocol,
            "accounts = ['anna@kanzlei.test']\nkeep = false",
        ))
        .await;
        send(&server, "anna@kanzlei.test", "q1").await;
        send(&server, "anna@kanzlei.test", "q2").await;
        add_rule(
            &server,
            r#"{"name": "connector-crashes", "stage": "collect", "action": "disconnect", "first": 1}"#,
        )
        .await;
        assert_eq!(server.collect_now("c").await.unwrap().fetched, 2);
        // Nothing was deleted at the provider.
        assert_eq!(
            inbox(&server, "provider", "anna@kanzlei.test"),
            2,
            "{protocol}"
        );
        // `first = 1`: the next round ends normally, and fetches both again.
        assert_eq!(server.collect_now("c").await.unwrap().fetched, 2);
        assert_eq!(
            inbox(&server, "provider", "anna@kanzlei.test"),
            0,
            "{protocol}"
        );
        assert_eq!(
            inbox(&server, "firm", "anna@kanzlei.test"),
            4,
            "{protocol}: duplicates"
        );
        let j = journaled(&server, "fault", "connector-crashes").await;
        assert_eq!(j.len(), 1, "{protocol}: {j:#?}");
        assert_eq!(j[0]["rcpt"], "anna@kanzlei.test");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_forget_uidls_rule_makes_a_keeping_collector_fetch_everything_again() {
    for protocol in ["pop3", "imap"] {
        let server = start(&world(
            protocol,
            "accounts = ['anna@kanzlei.test', 'bernd@kanzlei.test']",
        ))
        .await;
        send(&server, "anna@kanzlei.test", "u1").await;
        send(&server, "bernd@kanzlei.test", "u2").await;
        assert_eq!(server.collect_now("c").await.unwrap().fetched, 2);
        assert_eq!(server.collect_now("c").await.unwrap().fetched, 0);
        add_rule(
            &server,
            r#"{"name": "uidl-file-lost", "stage": "collect", "action": "forget-uidls", "user": "anna@kanzlei.test"}"#,
        )
        .await;
        // anna's state is lost (every round while the rule is on); bernd's is not.
        assert_eq!(server.collect_now("c").await.unwrap().fetched, 1);
        assert_eq!(inbox(&server, "firm", "anna@kanzlei.test"), 2, "{protocol}");
        assert_eq!(
            inbox(&server, "firm", "bernd@kanzlei.test"),
            1,
            "{protocol}"
        );
        api(&server, "DELETE", "/api/v1/faults/uidl-file-lost", None).await;
        assert_eq!(server.collect_now("c").await.unwrap().fetched, 0);
        let j = journaled(&server, "fault", "uidl-file-lost").await;
        assert_eq!(j.len(), 1, "{protocol}: {j:#?}");
        assert_eq!(j[0]["event"]["action"], "UIDL state lost");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_stop_collector_rule_stops_the_rounds_until_it_is_lifted() {
    let server = start(&world("pop3", "accounts = ['kanzlei.test']")).await;
    send(&server, "clara@kanzlei.test", "s1").await;
    add_rule(
        &server,
        r#"{"name": "connector-service-stopped", "stage": "collect", "action": "stop-collector"}"#,
    )
    .await;
    let round = server.collect_now("c").await.unwrap();
    assert!(round.stopped, "{round:?}");
    assert_eq!(round.fetched, 0);
    assert_eq!(inbox(&server, "firm", "clara@kanzlei.test"), 0);
    let j = journaled(&server, "fault", "connector-service-stopped").await;
    assert_eq!(j.len(), 1, "one entry per stopped round: {j:#?}");
    assert_eq!(j[0]["event"]["action"], "collector stopped");
    api(
        &server,
        "POST",
        "/api/v1/faults/connector-service-stopped/disable",
        None,
    )
    .await;
    let round = server.collect_now("c").await.unwrap();
    assert!(!round.stopped && round.fetched == 1, "{round:?}");
    // A rule at a stage where the action cannot act is refused, naming both.
    let v = api(
        &server,
        "POST",
        "/api/v1/faults",
        Some(r#"{"stage": "rcpt", "action": "stop-collector"}"#),
    )
    .await;
    let e = v["error"].as_str().unwrap();
    assert!(e.contains("stop-collector") && e.contains("collect"), "{e}");
    server.shutdown().await;
}
