//! Reading mail and following the world over HTTP the way a test in another
//! language does, from Python's standard library only: a MIME message with
//! an attachment sent with smtplib, then found by body text, header and
//! free-text search, taken apart (`.../parsed`), its attachment downloaded
//! byte for byte, its raw form shown inline; the journal paged forward with
//! a `since` cursor and back with `before`, and emptied; and the Server-Sent Events stream followed
//! while mail arrives (delivery, journal and fault events, resuming with
//! `Last-Event-ID`). A missing python3 fails the test with a hint.

use mailrig_server::MockServer;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const KANZLEI: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../mailrig-core/catalog/kanzlei.toml"
);

/// The user's test: argv[1] is the API base URL, argv[2] the SMTP port.
const PY: &str = r#"
import json, queue, smtplib, sys, threading, time, urllib.error, urllib.parse, urllib.request
from email.message import EmailMessage

BASE, SMTP_PORT = sys.argv[1], int(sys.argv[2])

def call(method, path, body=None, raw=False):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            if raw:
                return r.status, r.headers, r.read()
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)

def send_plain(to, subject):
    with smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=10) as s:
        s.sendmail("tester@extern.test", [to],
                   f"From: tester@extern.test\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nhello\r\n")

PAYLOAD = bytes(range(256)) * 3
msg = EmailMessage()
msg["From"] = "Erika Muster <erika@extern.test>"
msg["To"] = "anna@kanzlei.test"
msg["Subject"] = "Grüße zum Vertrag"
msg["X-Case"] = "4711-B"
msg.set_content("Der Vertrag liegt bei. Stichwort: Zitronenfalter.\n")
msg.add_alternative("<p>Der <b>Vertrag</b> liegt bei.</p>", subtype="html")
msg.add_attachment(PAYLOAD, maintype="application", subtype="octet-stream", filename="vertrag.bin")

# An event stream opened before the mail is sent sees it arrive.
events = queue.Queue()
def follow(headers):
    req = urllib.request.Request(BASE + "/api/v1/events", headers=headers)
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.headers["Content-Type"].startswith("text/event-stream"), r.headers
        ev = {}
        for line in r:
            line = line.decode().rstrip("\n")
            if line == "":
                if ev:
                    events.put(ev)
                    if ev.get("event") == "delivery":
                        return
                ev = {}
            elif line.startswith(":"):
                continue
            else:
                k, _, v = line.partition(":")
                ev[k] = v[1:] if v.startswith(" ") else v

def next_event(kind):
    while True:
        ev = events.get(timeout=20)
        if ev.get("event") == kind:
            return ev

t = threading.Thread(target=follow, args=({},), daemon=True)
t.start()
hello = json.loads(next_event("hello")["data"])
assert hello["messages"] == 0, hello
with smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=10) as s:
    s.send_message(msg, from_addr="erika@extern.test", to_addrs=["anna@kanzlei.test"])
journal_ev = next_event("journal")
entry = json.loads(journal_ev["data"])
assert entry["event"]["kind"] == "delivered" and journal_ev["id"] == str(entry["seq"]), journal_ev
delivery = json.loads(next_event("delivery")["data"])
assert delivery["mailbox"] == "anna@kanzlei.test" and delivery["subject"] == "Grüße zum Vertrag", delivery
uid = delivery["uid"]
t.join(10)

# Search: body text, a header, free text, a date window.
def subjects(query):
    status, body = call("GET", "/api/v1/messages?" + query)
    assert status == 200, (query, body)
    return [m["subject"] for m in body["messages"]]
send_plain("bernd@kanzlei.test", "anderes")
assert subjects("text=zitronenfalter") == ["Grüße zum Vertrag"]
assert subjects("text=nirgends") == []
assert subjects(urllib.parse.urlencode({"header": "X-Case: 4711"})) == ["Grüße zum Vertrag"]
assert subjects("header=X-Case") == ["Grüße zum Vertrag"]
assert subjects("q=erika") == ["Grüße zum Vertrag"]
assert subjects("q=vertrag") == ["Grüße zum Vertrag"]
assert subjects("q=BERND") == ["anderes"]
assert subjects("after=2000-01-01T00:00:00Z&before=2999-01-01T00:00:00Z") == ["anderes", "Grüße zum Vertrag"]
assert subjects("before=2000-01-01T00:00:00Z") == []
status, body = call("GET", "/api/v1/messages?header=" + urllib.parse.quote(": nothing"))
assert status == 400 and "'header'" in body["error"], body
status, body = call("GET", "/api/v1/messages/wait?text=zitronenfalter&timeout=5")
assert status == 200 and body["total"] == 1, body

# Taken apart.
path = f"/api/v1/mailboxes/anna@kanzlei.test/messages/{uid}"
status, p = call("GET", path + "/parsed")
assert status == 200, p
assert p["message"]["subject"] == "Grüße zum Vertrag", p
assert "Zitronenfalter" in p["text"] and "<b>Vertrag</b>" in p["html"], p
assert {"name": "X-Case", "value": "4711-B"} in p["headers"], p["headers"]
assert [(a["index"], a["filename"], a["size"]) for a in p["attachments"]] == [(0, "vertrag.bin", len(PAYLOAD))], p
assert p["mime"]["content_type"] == "multipart/mixed", p["mime"]
kinds = [c["content_type"] for c in p["mime"]["children"]]
assert kinds == ["multipart/alternative", "application/octet-stream"], kinds
status, headers, data = call("GET", path + "/attachments/0", raw=True)
assert status == 200 and data == PAYLOAD, (status, len(data))
assert headers["Content-Disposition"].startswith('attachment; filename="vertrag.bin"'), headers
status, body = call("GET", path + "/attachments/1")
assert status == 404 and "no attachment 1" in body["error"], body
status, headers, data = call("GET", path + "/raw", raw=True)
assert headers["Content-Disposition"] == "inline" and headers["Content-Type"] == "message/rfc822", headers
assert b"X-Case: 4711-B" in data
status, headers, _ = call("GET", path + "/raw?download=true", raw=True)
assert headers["Content-Disposition"] == f'attachment; filename="message-{uid}.eml"', headers

# The journal: a cursor, a limit, filters named as the fields, DELETE.
status, j = call("GET", "/api/v1/journal?limit=1")
assert status == 200 and len(j["entries"]) == 1, j
first = j["entries"][0]["seq"]
assert j["next_since"] == first, j
status, j2 = call("GET", f"/api/v1/journal?since={first}")
assert [e["seq"] for e in j2["entries"]] and all(e["seq"] > first for e in j2["entries"]), j2
status, j3 = call("GET", "/api/v1/journal?rcpt=bernd@kanzlei.test&kind=delivered")
assert [e["rcpt"] for e in j3["entries"]] == ["bernd@kanzlei.test"], j3
status, j4 = call("GET", "/api/v1/journal?peer=127.0.0.1&stage=deliver")
assert len(j4["entries"]) == 2, j4
# Paging back from the newest: `before` and `limit`, the first seq as the next cursor.
status, every = call("GET", "/api/v1/journal")
seqs = [e["seq"] for e in every["entries"]]
status, newest = call("GET", "/api/v1/journal?before=18446744073709551615&limit=1")
assert status == 200 and [e["seq"] for e in newest["entries"]] == seqs[-1:], (newest, seqs)
status, older = call("GET", f"/api/v1/journal?before={seqs[-1]}&limit=100")
assert [e["seq"] for e in older["entries"]] == seqs[:-1], (older, seqs)
status, body = call("DELETE", "/api/v1/journal")
assert status == 200 and body["deleted"] >= 2, body
status, j5 = call("GET", "/api/v1/journal")
assert j5["entries"] == [] and j5["next_since"] >= j2["next_since"], j5

# A fault that fires shows in a `faults` event; a reconnect with
# Last-Event-ID resumes after the entry it names.
status, _ = call("POST", "/api/v1/faults", {"name": "no-clara", "stage": "rcpt", "action": "reject", "mailbox": "clara"})
assert status == 201
seq_before = call("GET", "/api/v1/journal")[1]["next_since"]
try:
    send_plain("clara@kanzlei.test", "refused")
    raise AssertionError("clara should be refused")
except smtplib.SMTPRecipientsRefused:
    pass
send_plain("anna@kanzlei.test", "nach dem Fehler")
events = queue.Queue()
t = threading.Thread(target=follow, args=({"Last-Event-ID": str(seq_before)},), daemon=True)
t.start()
rejected = json.loads(next_event("journal")["data"])
assert rejected["rule"] == "no-clara" and rejected["event"]["kind"] == "rejected", rejected
assert rejected["seq"] == seq_before + 1, rejected
assert json.loads(next_event("delivery")["data"])["subject"] == "nach dem Fehler"
t.join(10)
print("python: all read and event assertions held")
"#;

#[tokio::test]
async fn a_python_test_reads_messages_pages_the_journal_and_follows_events() {
    let server = MockServer::builder()
        .scenario_file(KANZLEI)
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
    assert!(
        text.contains("all read and event assertions held"),
        "{text}"
    );
    server.shutdown().await;
}

/// An open event stream does not hold up shutdown.
#[tokio::test]
async fn shutdown_ends_an_open_event_stream() {
    let server = MockServer::builder()
        .scenario_file(KANZLEI)
        .unwrap()
        .start()
        .await
        .unwrap();
    let url = format!("http://{}/api/v1/events", server.http_addr());
    let curl = Command::new("curl")
        .args(["-sSN", "--max-time", "60", &url])
        .kill_on_drop(true)
        .output();
    let curl = tokio::spawn(curl);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    tokio::time::timeout(std::time::Duration::from_secs(30), server.shutdown())
        .await
        .expect("shutdown waited for an open event stream");
    let out = curl.await.unwrap().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("event: hello\n"), "{text}");
}
