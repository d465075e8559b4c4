//! The truth of a find-it lab: which mailboxes lost mail, and at which stage, read from the fake
//! world's journal (`GET /api/v1/journal` of `mailrig serve`), and the judgement of an answer.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, bail};

/// Recipients whose mail was lost (dropped, rejected or misrouted), each with the stages that did it.
pub type Lost = BTreeMap<String, BTreeSet<String>>;

/// Reads the journal of the `mailrig serve` whose HTTP API listens on `port`.
pub fn lost_mail(port: u16) -> anyhow::Result<Lost> {
    let body = http_get(port, "/api/v1/journal")?;
    let journal: serde_json::Value =
        serde_json::from_str(&body).context("the journal is not JSON")?;
    Ok(lost_from(&journal))
}

/// The lost recipients of a journal document.
pub fn lost_from(journal: &serde_json::Value) -> Lost {
    let mut lost = Lost::new();
    let entries = journal
        .get("entries")
        .and_then(|e| e.as_array())
        .cloned()
        .unwrap_or_default();
    for e in entries {
        let kind = e.pointer("/event/kind").and_then(|k| k.as_str());
        if !matches!(kind, Some("dropped" | "rejected" | "misrouted")) {
            continue;
        }
        let (Some(rcpt), Some(stage)) = (
            e.get("rcpt").and_then(|r| r.as_str()),
            e.get("stage").and_then(|s| s.as_str()),
        ) else {
            continue;
        };
        lost.entry(rcpt.to_ascii_lowercase())
            .or_default()
            .insert(stage.to_string());
    }
    lost
}

/// What is wrong with an answer, without naming the right one: empty when it is right.
pub fn judge(lost: &Lost, named: &BTreeSet<String>, stage: Option<&str>) -> Vec<String> {
    let mut problems = Vec::new();
    if lost.is_empty() {
        problems.push(
            "the journal shows no lost mail yet: send some first (`mailrig probe probe.toml`)"
                .to_string(),
        );
        return problems;
    }
    let truth: BTreeSet<&String> = lost.keys().collect();
    let right = named.iter().filter(|n| truth.contains(n)).count();
    let wrong = named.len() - right;
    let forgotten = truth.len() - right;
    if wrong > 0 || forgotten > 0 {
        let mut p = format!(
            "of the {} mailboxes you named, {right} lose mail",
            named.len()
        );
        if wrong > 0 {
            p.push_str(&format!(
                " and {wrong} {}",
                if wrong == 1 { "does not" } else { "do not" }
            ));
        }
        if forgotten > 0 {
            p.push_str(&format!(
                "; {forgotten} more mailbox{} lose{} mail",
                if forgotten == 1 { "" } else { "es" },
                if forgotten == 1 { "s" } else { "" }
            ));
        }
        problems.push(p);
    }
    let stages: BTreeSet<&String> = lost.values().flatten().collect();
    match stage {
        None => problems.push(
            "say where the mail is lost too: `mailrig lab answer --stage STAGE ...`".to_string(),
        ),
        Some(s) if !stages.iter().any(|t| t.as_str() == s) => {
            problems.push(format!("the mail is not lost at stage '{s}'"))
        }
        Some(_) => {}
    }
    problems
}

/// A plain HTTP/1.1 GET on 127.0.0.1 (the control API of a local `mailrig serve`).
fn http_get(port: u16, path: &str) -> anyhow::Result<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .with_context(|| format!("cannot reach the journal at http://{addr}{path}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nAccept: application/json\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("http://{addr}{path}: no HTTP response");
    };
    if !head.starts_with("HTTP/1.1 200") {
        bail!(
            "http://{addr}{path}: {}",
            head.lines().next().unwrap_or_default()
        );
    }
    if head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"))
    {
        return Ok(dechunk(body));
    }
    Ok(body.to_string())
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lost() -> Lost {
        let j = serde_json::json!({"dropped": 0, "entries": [
            {"rcpt": "User03@patente.test", "stage": "route", "event": {"kind": "dropped"}},
            {"rcpt": "user04@patente.test", "stage": "route", "event": {"kind": "dropped"}},
            {"rcpt": "anna@kanzlei.test", "stage": "deliver", "event": {"kind": "delivered", "mailbox": "anna@kanzlei.test", "uid": 1}},
        ]});
        lost_from(&j)
    }

    #[test]
    fn only_lost_mail_counts() {
        let l = lost();
        assert_eq!(l.len(), 2);
        assert!(l.contains_key("user03@patente.test"));
    }

    #[test]
    fn a_right_answer_has_no_problems() {
        let named = ["user03@patente.test", "user04@patente.test"]
            .map(String::from)
            .into();
        assert!(judge(&lost(), &named, Some("route")).is_empty());
    }

    #[test]
    fn a_wrong_answer_counts_without_naming() {
        let named = ["user03@patente.test", "anna@kanzlei.test"]
            .map(String::from)
            .into();
        let p = judge(&lost(), &named, Some("deliver"));
        assert_eq!(
            p,
            [
                "of the 2 mailboxes you named, 1 lose mail and 1 does not; 1 more mailbox loses mail",
                "the mail is not lost at stage 'deliver'"
            ]
        );
        assert!(!p.join(" ").contains("user04"));
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }
}
