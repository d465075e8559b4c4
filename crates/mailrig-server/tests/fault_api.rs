//! The fault-rule control API, driven by `curl` over HTTP (and swaks for the
//! mail it affects), plus the same operations through `MockServer`'s methods.
//! A missing curl or swaks fails the test with a clear message
//! (`scripts/install-test-deps.sh` installs them).

use mailrig_core::JournalEvent;
use mailrig_core::fault::spec::{ActionKind, OneOrMany};
use mailrig_core::fault::{FaultRuleSpec, Stage};
use mailrig_server::MockServer;
use serde_json::{Value, json};
use tokio::process::Command;

const KANZLEI: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../crates/mailrig-core/catalog/kanzlei.toml"
);

async fn kanzlei() -> MockServer {
    MockServer::builder()
        .scenario_file(KANZLEI)
        .unwrap()
        .start()
        .await
        .unwrap()
}

/// Runs a tool: (exit status success, stdout + stderr). A missing tool fails the test.
async fn tool(program: &str, args: &[&str]) -> (bool, String) {
    let out = match Command::new(program).args(args).output().await {
        Ok(o) => o,
        Err(e) => panic!(
            "this test needs `{program}` on PATH ({e}); run scripts/install-test-deps.sh — the test does not skip"
        ),
    };
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// One HTTP request with curl: (status, body).
async fn curl(
    server: &MockServer,
    method: &str,
    path: &str,
    body: Option<(&str, &str)>,
) -> (u16, String) {
    let url = format!("http://{}{path}", server.http_addr());
    let mut args = vec![
        "-sS",
        "--max-time",
        "10",
        "-X",
        method,
        "-w",
        "\n%{http_code}",
    ];
    let header;
    if let Some((content_type, data)) = body {
        header = format!("Content-Type: {content_type}");
        args.extend_from_slice(&["-H", &header, "--data-binary", data]);
    }
    args.push(&url);
    let (ok, out) = tool("curl", &args).await;
    assert!(ok, "curl {method} {path} failed: {out}");
    let (body, code) = out.rsplit_once('\n').expect("status line");
    (code.trim().parse().expect("status"), body.to_string())
}

async fn curl_json(
    server: &MockServer,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, Value) {
    let (code, text) = curl(server, method, path, body.map(|b| ("application/json", b))).await;
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (code, v)
}

/// Sends one message with swaks: (accepted, transcript).
async fn swaks(server: &MockServer, to: &str) -> (bool, String) {
    let addr = server.smtp_addr().to_string();
    tool(
        "swaks",
        &[
            "--server",
            &addr,
            "--from",
            "sender@extern.test",
            "--to",
            to,
            "--timeout",
            "20",
            "--header",
            "Message-Id: <api-test@extern.test>",
        ],
    )
    .await
}

const USER03: &str = "user03@patente.test";

#[tokio::test]
async fn rules_over_http_change_what_swaks_sees() {
    let server = kanzlei().await;
    let (code, list) = curl_json(&server, "GET", "/api/v1/faults", None).await;
    assert_eq!((code, list), (200, json!([])));

    let rule = r#"{"name": "no-user03", "stage": "rcpt", "action": "reject",
                   "mailbox": "user03", "text": "mailbox unavailable"}"#;
    let (code, added) = curl_json(&server, "POST", "/api/v1/faults", Some(rule)).await;
    assert_eq!(code, 201, "{added}");
    assert_eq!(added["rule"]["name"], "no-user03");
    assert_eq!(added["rule"]["stage"], "rcpt");
    assert_eq!(added["rule"]["action"], "reject");
    assert_eq!(added["rule"]["enabled"], true);
    assert_eq!(added["rule"]["fired"], 0);
    assert_eq!(added["rule"]["spec"]["mailbox"], "user03");
    assert_eq!(added["warnings"], json!([]));

    // The rule bites: RCPT refused with 550, the journal names the rule.
    let (ok, out) = swaks(&server, USER03).await;
    assert!(!ok, "swaks must fail:\n{out}");
    assert!(out.contains("<** 550 5.7.1 mailbox unavailable"), "{out}");
    let (code, j) = curl_json(
        &server,
        "GET",
        "/api/v1/journal?mailbox=user03@patente.test",
        None,
    )
    .await;
    assert_eq!(code, 200);
    let entries = j["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{j}");
    assert_eq!(entries[0]["rule"], "no-user03");
    assert_eq!(entries[0]["stage"], "rcpt");
    assert_eq!(entries[0]["event"]["kind"], "rejected");
    assert_eq!(entries[0]["event"]["code"], 550);
    // Other mailboxes are untouched.
    let (ok, out) = swaks(&server, "user04@patente.test").await;
    assert!(ok, "{out}");

    let (code, metrics) = curl(&server, "GET", "/metrics", None).await;
    assert_eq!(code, 200);
    assert!(
        metrics
            .lines()
            .any(|l| l == "mailrig_faults_fired_total{rule=\"no-user03\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l == "mailrig_domain_recipients_rejected_total{domain=\"patente.test\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l == "mailrig_domain_delivered_total{domain=\"patente.test\"} 1"),
        "{metrics}"
    );
    let (_, one) = curl_json(&server, "GET", "/api/v1/faults/no-user03", None).await;
    assert_eq!(one["fired"], 1);

    // Disabled: 250 again.
    let (code, off) = curl_json(&server, "POST", "/api/v1/faults/no-user03/disable", None).await;
    assert_eq!((code, &off["enabled"]), (200, &json!(false)), "{off}");
    let (ok, out) = swaks(&server, USER03).await;
    assert!(ok, "{out}");
    assert!(out.contains("<-  250"), "{out}");
    assert_eq!(server.inbox(USER03).unwrap().len(), 1);

    // Enabled again with PATCH, then with /enable.
    let (code, on) = curl_json(
        &server,
        "PATCH",
        "/api/v1/faults/no-user03",
        Some(r#"{"enabled": true}"#),
    )
    .await;
    assert_eq!((code, &on["enabled"]), (200, &json!(true)), "{on}");
    let (code, _) = curl_json(&server, "POST", "/api/v1/faults/no-user03/enable", None).await;
    assert_eq!(code, 200);
    let (ok, _) = swaks(&server, USER03).await;
    assert!(!ok);

    // Deleted: gone, and a second delete is a 404 that names the rule.
    let (code, _) = curl_json(&server, "DELETE", "/api/v1/faults/no-user03", None).await;
    assert_eq!(code, 200);
    let (code, err) = curl_json(&server, "DELETE", "/api/v1/faults/no-user03", None).await;
    assert_eq!(code, 404, "{err}");
    assert!(
        err["error"].as_str().unwrap().contains("no-user03"),
        "{err}"
    );
    let (code, _) = curl_json(&server, "GET", "/api/v1/faults/no-user03", None).await;
    assert_eq!(code, 404);
    let (ok, out) = swaks(&server, USER03).await;
    assert!(ok, "{out}");
    server.shutdown().await;
}

#[tokio::test]
async fn bad_rules_are_refused_with_errors_that_name_the_problem() {
    let server = kanzlei().await;
    let post = |body: &'static str| {
        let server = &server;
        async move { curl_json(server, "POST", "/api/v1/faults", Some(body)).await }
    };
    let cases: [(&str, u16, &str); 8] = [
        (r#"{"stage": "rcpt", "action": "#, 400, "not valid JSON"),
        (r#"{"stage": "rcpt", "action": "rejekt"}"#, 422, "rejekt"),
        (r#"{"stage": "rcptt", "action": "reject"}"#, 422, "rcptt"),
        (
            r#"{"stage": "rcpt", "action": "reject", "mailboxx": "a"}"#,
            422,
            "mailboxx",
        ),
        (r#"{"action": "reject"}"#, 422, "stage"),
        (
            r#"{"stage": "connect", "action": "hide-messages"}"#,
            422,
            "hide-messages",
        ),
        (
            r#"{"stage": "route", "action": "misroute", "to": "nobody@nowhere.test"}"#,
            422,
            "nobody@nowhere.test",
        ),
        (
            r#"{"stage": "rcpt", "action": "reject", "code": 250}"#,
            422,
            "250",
        ),
    ];
    for (body, status, needle) in cases {
        let (code, err) = post(body).await;
        assert_eq!(code, status, "{body} -> {err}");
        let text = err["error"].as_str().unwrap_or_else(|| panic!("{err}"));
        assert!(
            text.contains(needle),
            "{body}: '{text}' should name '{needle}'"
        );
    }
    let (code, err) = curl_json(
        &server,
        "PATCH",
        "/api/v1/faults/nope",
        Some(r#"{"enabled": true}"#),
    )
    .await;
    assert_eq!(code, 404, "{err}");
    let (code, err) = curl_json(&server, "POST", "/api/v1/faults/nope/enable", None).await;
    assert_eq!(code, 404, "{err}");

    // Nothing was added by the failures.
    let (_, list) = curl_json(&server, "GET", "/api/v1/faults", None).await;
    assert_eq!(list, json!([]));

    // A duplicate name is a conflict; a bad PATCH body names the key.
    let rule = r#"{"name": "dup", "stage": "pop3", "action": "fail-login"}"#;
    assert_eq!(post(rule).await.0, 201);
    let (code, err) = post(rule).await;
    assert_eq!(code, 409, "{err}");
    assert!(err["error"].as_str().unwrap().contains("dup"));
    let (code, err) = curl_json(
        &server,
        "PATCH",
        "/api/v1/faults/dup",
        Some(r#"{"enabeld": false}"#),
    )
    .await;
    assert_eq!(code, 422, "{err}");
    assert!(err["error"].as_str().unwrap().contains("enabeld"), "{err}");
    server.shutdown().await;
}

#[tokio::test]
async fn toml_bodies_warnings_auto_names_and_delete_all() {
    let server = kanzlei().await;
    // TOML, as in a scenario file; a selector matching nothing is a warning.
    let (code, text) = curl(
        &server,
        "POST",
        "/api/v1/faults",
        Some((
            "application/toml",
            "stage = \"rcpt\"\naction = \"defer\"\nmailbox = \"ghost\"\n",
        )),
    )
    .await;
    assert_eq!(code, 201, "{text}");
    let added: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(added["rule"]["name"], "fault-1");
    assert_eq!(added["rule"]["action"], "defer");
    let warnings = added["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{added}");
    assert!(warnings[0].as_str().unwrap().contains("ghost"));

    let (code, err) = curl(
        &server,
        "POST",
        "/api/v1/faults",
        Some(("application/toml", "stage = \"rcpt\"\naction = \"nope\"\n")),
    )
    .await;
    assert_eq!(code, 422, "{err}");
    assert!(err.contains("nope"), "{err}");

    // Unnamed rules get names that do not collide after a removal.
    let json_rule = r#"{"stage": "mail", "action": "delay", "ms": 1}"#;
    let (_, b) = curl_json(&server, "POST", "/api/v1/faults", Some(json_rule)).await;
    assert_eq!(b["rule"]["name"], "fault-2");
    let (code, _) = curl_json(&server, "DELETE", "/api/v1/faults/fault-1", None).await;
    assert_eq!(code, 200);
    let (code, c) = curl_json(&server, "POST", "/api/v1/faults", Some(json_rule)).await;
    assert_eq!(code, 201, "{c}");
    assert_ne!(c["rule"]["name"], "fault-2");

    let (_, list) = curl_json(&server, "GET", "/api/v1/faults", None).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (code, gone) = curl_json(&server, "DELETE", "/api/v1/faults", None).await;
    assert_eq!((code, gone), (200, json!({"deleted": 2})));
    let (_, list) = curl_json(&server, "GET", "/api/v1/faults", None).await;
    assert_eq!(list, json!([]));
    server.shutdown().await;
}

#[tokio::test]
async fn mock_server_fault_methods() {
    let server = kanzlei().await;
    let mut spec = FaultRuleSpec::new(Stage::Rcpt, ActionKind::Reject);
    spec.name = Some("r".into());
    spec.mailbox = Some(OneOrMany::One("user03".into()));
    assert_eq!(server.add_fault(spec.clone()), Ok(vec![]));
    let dup = server.add_fault(spec).unwrap_err();
    assert!(dup.contains("'r'"), "{dup}");
    let err = server
        .add_fault_toml("stage = \"imap-login\"\naction = \"drop\"")
        .unwrap_err();
    assert!(err.contains("drop") && err.contains("imap-login"), "{err}");
    let warnings = server
        .add_fault_toml(
            "name = \"w\"\nstage = \"pop3\"\naction = \"fail-login\"\nmailbox = \"nobody\"",
        )
        .unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");

    let infos = server.faults();
    assert_eq!(
        infos.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
        ["r", "w"]
    );
    assert_eq!(infos[0].stage, Stage::Rcpt);
    assert_eq!(infos[0].action, ActionKind::Reject);

    // The rule acts on mail sent with swaks; journal_for finds the entry.
    let (ok, out) = swaks(&server, USER03).await;
    assert!(!ok, "{out}");
    let by_box = server.journal_for(USER03);
    assert_eq!(by_box.len(), 1);
    assert!(matches!(
        by_box[0].event,
        JournalEvent::Rejected { code: 550, .. }
    ));

    assert!(server.set_fault_enabled("r", false));
    assert!(!server.fault("r").unwrap().enabled);
    assert!(!server.set_fault_enabled("nope", false));
    let (ok, out) = swaks(&server, USER03).await;
    assert!(ok, "{out}");

    // A silent drop: 250 for swaks, and journal_for_message names the rule.
    server
        .add_fault_toml(
            "name = \"lost\"\nstage = \"route\"\naction = \"drop\"\nmailbox = \"user04\"",
        )
        .unwrap();
    let (ok, out) = swaks(&server, "user04@patente.test").await;
    assert!(ok, "{out}");
    // The copy stored for user03 while `r` was off, then the drop.
    let by_id = server.journal_for_message("api-test@extern.test");
    assert_eq!(by_id.len(), 2, "{by_id:?}");
    assert!(
        matches!(&by_id[0].event, JournalEvent::Delivered { mailbox, .. } if &**mailbox == USER03),
        "{by_id:?}"
    );
    assert_eq!(by_id[1].event, JournalEvent::Dropped);
    assert_eq!(by_id[1].rule.as_deref(), Some("lost"));
    assert_eq!(
        server.journal_for_message("<api-test@extern.test>").len(),
        2
    );
    assert!(server.inbox("user04@patente.test").unwrap().is_empty());

    assert!(server.remove_fault("r"));
    assert!(!server.remove_fault("r"));
    assert_eq!(server.clear_faults(), 2);
    assert!(server.faults().is_empty());
    server.shutdown().await;
}
