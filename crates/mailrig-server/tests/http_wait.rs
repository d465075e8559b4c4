//! The endpoints a test in another language asserts with, used the way such
//! a test would: from Python's standard library only (urllib for the API,
//! smtplib to send), against a `MockServer` on port 0. `GET
//! /api/v1/messages/wait` replaces a polling loop (and answers 408 at its
//! timeout), `GET /api/v1/messages` lists across mailboxes with filters and
//! paging, `POST /api/v1/reset` isolates one test case from the next. A
//! missing python3 fails the test with a hint; it never skips.

use mailrig_server::MockServer;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const KANZLEI: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../mailrig-core/catalog/kanzlei.toml"
);

/// The user's test: argv[1] is the API base URL, argv[2] the SMTP port.
const PY: &str = r#"
import json, smtplib, sys, threading, time, urllib.error, urllib.request

BASE, SMTP_PORT = sys.argv[1], int(sys.argv[2])

def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)

def send(to, subject):
    with smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=10) as s:
        s.sendmail("tester@extern.test", [to],
                   f"From: tester@extern.test\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nhello\r\n")

# 1. Wait for two messages that are sent while the call is open.
result = {}
def waiter():
    result["r"] = call("GET", "/api/v1/messages/wait?to=anna@kanzlei.test&count=2&timeout=30")
t = threading.Thread(target=waiter)
t.start()
time.sleep(0.3)
assert t.is_alive(), "wait returned before any mail was sent: %r" % result
send("anna@kanzlei.test", "eins")
send("bernd@kanzlei.test", "nicht fuer anna")
send("anna@kanzlei.test", "Zwei")
t.join(30)
assert not t.is_alive(), "wait did not return after the second message"
status, body = result["r"]
assert status == 200, (status, body)
assert body["total"] == 2, body
assert [m["subject"] for m in body["messages"]] == ["Zwei", "eins"], body
assert all(m["mailbox"] == "anna@kanzlei.test" for m in body["messages"]), body

# Already there: answered at once.
status, body = call("GET", "/api/v1/messages/wait?to=bernd@kanzlei.test")
assert status == 200 and body["total"] == 1, (status, body)

# 2. Nothing comes: 408 at the timeout, saying how many arrived.
started = time.monotonic()
status, body = call("GET", "/api/v1/messages/wait?to=clara@kanzlei.test&count=1&timeout=0.5")
assert status == 408, (status, body)
assert "timed out after 0.5 s: 0 of 1" in body["error"], body
assert time.monotonic() - started < 10
status, body = call("GET", "/api/v1/messages/wait?count=0")
assert status == 400 and "'count'" in body["error"], (status, body)
status, body = call("GET", "/api/v1/messages/wait?timeout=1000")
assert status == 400 and "'timeout'" in body["error"], (status, body)

# 3. All mailboxes, newest first, filters and paging.
status, body = call("GET", "/api/v1/messages")
assert status == 200, body
assert body["total"] == 3 and body["offset"] == 0 and body["limit"] == 50, body
assert [m["subject"] for m in body["messages"]] == ["Zwei", "nicht fuer anna", "eins"], body
status, body = call("GET", "/api/v1/messages?limit=1&offset=1")
assert [m["subject"] for m in body["messages"]] == ["nicht fuer anna"] and body["total"] == 3, body
status, body = call("GET", "/api/v1/messages?offset=5")
assert body["messages"] == [] and body["total"] == 3, body
for query, subjects in [
    ("to=BERND@kanzlei.test", ["nicht fuer anna"]),
    ("subject=zwei", ["Zwei"]),
    ("from=tester@extern.test&mailbox=anna@kanzlei.test", ["Zwei", "eins"]),
    ("domain=patente.test", []),
    ("from=someone@else.test", []),
]:
    status, body = call("GET", "/api/v1/messages?" + query)
    assert status == 200 and [m["subject"] for m in body["messages"]] == subjects, (query, body)
status, body = call("GET", "/api/v1/messages?rcpt=anna@kanzlei.test")
assert status == 400 and "unknown query parameter 'rcpt'" in body["error"], body
assert "to, from, subject, mailbox, domain, text, header, q, after, before, limit, offset" in body["error"], body
status, body = call("GET", "/api/v1/messages?limit=0")
assert status == 400 and "'limit'" in body["error"], body

# 4. Reset: messages, journal, fault rules and their counters as at start.
try:
    send("user03@patente.test", "refused")
    raise AssertionError("user03 should be refused by the scenario's rule")
except smtplib.SMTPRecipientsRefused:
    pass
status, faults = call("GET", "/api/v1/faults")
assert [(f["name"], f["fired"]) for f in faults] == [("no-user03", 1)], faults
status, _ = call("POST", "/api/v1/faults", {"name": "extra", "stage": "rcpt", "action": "reject", "mailbox": "user04"})
assert status == 201
status, _ = call("POST", "/api/v1/faults/no-user03/disable")
assert status == 200
status, journal = call("GET", "/api/v1/journal")
assert len(journal["entries"]) >= 1, journal

status, body = call("POST", "/api/v1/reset")
assert status == 200, body
assert body == {"deleted": 3, "faults": 1}, body
status, faults = call("GET", "/api/v1/faults")
assert [(f["name"], f["enabled"], f["fired"]) for f in faults] == [("no-user03", True, 0)], faults
assert call("GET", "/api/v1/messages")[1]["total"] == 0
assert call("GET", "/api/v1/journal")[1]["entries"] == []
assert call("GET", "/api/v1/health")[1]["messages"] == 0
# The restored rule works again.
try:
    send("user03@patente.test", "refused again")
    raise AssertionError("user03 should be refused after the reset")
except smtplib.SMTPRecipientsRefused:
    pass
status, body = call("POST", "/api/v1/reset?journal=true")
assert status == 400 and "takes no query parameters" in body["error"], body
print("python: all API assertions held")
"#;

#[tokio::test]
async fn a_python_test_waits_lists_and_resets_over_http() {
    let scenario = format!(
        "{}\n[[fault]]\nname = \"no-user03\"\nstage = \"rcpt\"\naction = \"reject\"\nmailbox = \"user03\"\n",
        std::fs::read_to_string(KANZLEI).unwrap()
    );
    let server = MockServer::builder()
        .scenario_toml(&scenario)
        .unwrap()
        .start()
        .await
        .unwrap();
    let mut child = Command::new("python3")
        .arg("-")
        .arg(format!("http://{}", server.http_addr()))
        .arg(server.smtp_addr().port().to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("this test needs python3 ({e}): run `bash scripts/install-test-deps.sh`")
        });
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(PY.as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        child.wait_with_output(),
    )
    .await
    .expect("the Python test did not finish within 120 s")
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the Python test failed:\n{text}");
    assert!(text.contains("all API assertions held"), "{text}");
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_a_pending_wait() {
    let server = MockServer::builder()
        .scenario_file(KANZLEI)
        .unwrap()
        .start()
        .await
        .unwrap();
    let url = format!(
        "http://{}/api/v1/messages/wait?to=anna@kanzlei.test&timeout=300",
        server.http_addr()
    );
    let curl = Command::new("curl")
        .args(["-sS", "--max-time", "60", "-w", "\n%{http_code}", &url])
        .kill_on_drop(true)
        .output();
    let curl = tokio::spawn(curl);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    tokio::time::timeout(std::time::Duration::from_secs(30), server.shutdown())
        .await
        .expect("shutdown waited for a 300 s wait");
    let out = curl.await.unwrap().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("408"), "{text}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}
