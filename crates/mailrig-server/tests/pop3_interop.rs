//! Third-party POP3 clients against our server: Python's `poplib` (plain and
//! STLS, trusting the CA file the server wrote) and `curl pop3://`.
//! A missing python3 or curl fails the test with a clear message; it never
//! passes silently.

mod support;

use mailrig_server::MockServer;
use support::pop3::{put, uid_validity};
use support::{KANZLEI, run_tool};
use tokio::process::Command;

const M1: &str = "From: a@extern.test\r\nSubject: one\r\n\r\nfirst\r\n.dot line\r\nlast\r\n";
const M2: &str = "From: b@extern.test\r\nSubject: two\r\n\r\nl1\r\nl2\r\nl3\r\n";

async fn kanzlei() -> MockServer {
    MockServer::builder()
        .scenario_file(KANZLEI)
        .unwrap()
        .start()
        .await
        .unwrap()
}

const POPLIB_SCRIPT: &str = r#"
import json, poplib, ssl, sys
host, port, user, mode, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
if mode == "ssl":
    p = poplib.POP3_SSL(host, port, timeout=10, context=ssl.create_default_context(cafile=ca))
else:
    p = poplib.POP3(host, port, timeout=10)
out = {"welcome": p.getwelcome().decode()}
out["capa"] = sorted(p.capa().keys())
if mode == "stls":
    p.stls(context=ssl.create_default_context(cafile=ca))
    out["capa_tls"] = sorted(p.capa().keys())
p.user(user)
p.pass_("secret")
out["stat"] = list(p.stat())
resp, lines, _ = p.list()
out["list"] = [l.decode() for l in lines]
resp, lines, _ = p.uidl()
out["uidl"] = [l.decode() for l in lines]
resp, lines, octets = p.retr(1)
out["retr1"] = [l.decode() for l in lines]
resp, lines, _ = p.top(2, 1)
out["top2"] = [l.decode() for l in lines]
if mode == "dele":
    out["dele"] = p.dele(1).decode()
    out["stat_after_dele"] = list(p.stat())
out["quit"] = p.quit().decode()
print(json.dumps(out))
"#;

async fn poplib(server: &MockServer, mode: &str) -> serde_json::Value {
    let port = if mode == "ssl" {
        server.pop3s_addr().port()
    } else {
        server.pop3_addr().port()
    }
    .to_string();
    let ca = server.ca_path().to_str().unwrap().to_string();
    let out = run_tool(
        "python3",
        &[
            "-c",
            POPLIB_SCRIPT,
            "127.0.0.1",
            &port,
            "anna@kanzlei.test",
            mode,
            &ca,
        ],
    )
    .await;
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("bad JSON from poplib script ({e}): {out}"))
}

#[tokio::test]
async fn python_poplib_stat_list_uidl_retr_top_dele_quit() {
    let server = kanzlei().await;
    put(&server, "anna@kanzlei.test", M1);
    put(&server, "anna@kanzlei.test", M2);
    let v = uid_validity(&server, "anna@kanzlei.test");
    let r = poplib(&server, "dele").await;
    assert_eq!(r["welcome"], "+OK mx.kanzlei.test POP3 mailrig ready");
    let capa: Vec<&str> = r["capa"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for c in ["STLS", "TOP", "UIDL", "USER", "RESP-CODES", "PIPELINING"] {
        assert!(capa.contains(&c), "{c} missing in {capa:?}");
    }
    assert_eq!(r["stat"], serde_json::json!([2, M1.len() + M2.len()]));
    assert_eq!(
        r["list"],
        serde_json::json!([format!("1 {}", M1.len()), format!("2 {}", M2.len())])
    );
    assert_eq!(
        r["uidl"],
        serde_json::json!([format!("1 {v}.1"), format!("2 {v}.2")])
    );
    // poplib removes the dot-stuffing again: the lines are the message's own.
    assert_eq!(
        r["retr1"],
        serde_json::json!([
            "From: a@extern.test",
            "Subject: one",
            "",
            "first",
            ".dot line",
            "last"
        ])
    );
    assert_eq!(
        r["top2"],
        serde_json::json!(["From: b@extern.test", "Subject: two", "", "l1"])
    );
    assert_eq!(r["dele"], "+OK message 1 deleted");
    assert_eq!(r["stat_after_dele"], serde_json::json!([1, M2.len()]));
    assert_eq!(
        r["quit"],
        "+OK mx.kanzlei.test POP3 mailrig signing off (1 message(s) left)"
    );
    let left = server.inbox("anna@kanzlei.test").unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(&left[0].raw[..], M2.as_bytes());
    server.shutdown().await;
}

#[tokio::test]
async fn python_poplib_over_implicit_tls_pop3s() {
    let server = kanzlei().await;
    put(&server, "anna@kanzlei.test", M1);
    put(&server, "anna@kanzlei.test", M2);
    let r = poplib(&server, "ssl").await;
    assert_eq!(
        r["welcome"], "+OK mx.kanzlei.test POP3 mailrig ready",
        "{r}"
    );
    let capa: Vec<&str> = r["capa"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(!capa.contains(&"STLS"), "no STLS inside TLS: {capa:?}");
    assert_eq!(r["stat"], serde_json::json!([2, M1.len() + M2.len()]));
    assert_eq!(r["retr1"][4], ".dot line");
    server.shutdown().await;
}

#[tokio::test]
async fn python_poplib_over_stls_with_the_servers_ca() {
    let text = std::fs::read_to_string(KANZLEI).unwrap() + "\n[security]\nplaintext_auth = false\n";
    let server = MockServer::builder()
        .scenario_toml(&text)
        .unwrap()
        .start()
        .await
        .unwrap();
    put(&server, "anna@kanzlei.test", M1);
    put(&server, "anna@kanzlei.test", M2);
    let r = poplib(&server, "stls").await;
    let capa: Vec<&str> = r["capa"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        capa.contains(&"STLS") && !capa.contains(&"USER"),
        "{capa:?}"
    );
    let capa_tls: Vec<&str> = r["capa_tls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        capa_tls.contains(&"USER") && !capa_tls.contains(&"STLS"),
        "{capa_tls:?}"
    );
    assert_eq!(r["stat"], serde_json::json!([2, M1.len() + M2.len()]));
    assert_eq!(r["retr1"][4], ".dot line");
    assert_eq!(
        r["quit"],
        "+OK mx.kanzlei.test POP3 mailrig signing off (2 message(s) left)"
    );
    assert_eq!(server.inbox("anna@kanzlei.test").unwrap().len(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn curl_lists_and_retrieves() {
    let server = kanzlei().await;
    put(&server, "bernd@kanzlei.test", M1);
    put(&server, "bernd@kanzlei.test", M2);
    let base = format!("pop3://127.0.0.1:{}/", server.pop3_addr().port());
    let user = "bernd@kanzlei.test:secret";
    let list = run_tool("curl", &["-sS", "--max-time", "10", "--user", user, &base]).await;
    assert_eq!(list, format!("1 {}\r\n2 {}\r\n", M1.len(), M2.len()));
    let retr = run_tool(
        "curl",
        &[
            "-sS",
            "--max-time",
            "10",
            "--user",
            user,
            &format!("{base}1"),
        ],
    )
    .await;
    assert_eq!(retr, M1);
    // STLS required, CA from the server's file.
    let ca = server.ca_path().to_str().unwrap();
    let tls = run_tool(
        "curl",
        &[
            "-sS",
            "--max-time",
            "10",
            "--ssl-reqd",
            "--cacert",
            ca,
            "--user",
            user,
            &format!("{base}2"),
        ],
    )
    .await;
    assert_eq!(tls, M2);
    // A wrong password is an error exit with curl's "login denied" code 67.
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "--user",
            "bernd@kanzlei.test:nope",
            &base,
        ])
        .output()
        .await
        .expect("curl on PATH");
    assert_eq!(
        out.status.code(),
        Some(67),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Reading deletes nothing.
    assert_eq!(server.inbox("bernd@kanzlei.test").unwrap().len(), 2);
    server.shutdown().await;
}
