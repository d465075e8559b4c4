//! The truth of a find-it lab: which mailboxes lost mail, and at which stage, read from the fake
//! world's journal (`GET /api/v1/journal` of `mailrig serve`), which got it late (put off with a
//! 4xx, forwarded late, stored late), and the judgement of an answer.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// Recipients whose mail the journal shows affected, each with the stages that did it.
pub type Affected = BTreeMap<String, BTreeSet<String>>;

/// What happened to a mailbox's mail, as an answer claims and as the journal shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Accepted and never stored (dropped, misrouted) or refused for good (5xx).
    #[default]
    Lost,
    /// Put off (a 4xx reply such as greylisting's, a deferred forward) or stored late: a sender
    /// that retries gets it through, after a while.
    Delayed,
}

impl Outcome {
    fn other(self) -> Outcome {
        match self {
            Outcome::Lost => Outcome::Delayed,
            Outcome::Delayed => Outcome::Lost,
        }
    }

    /// "lose mail" / "get mail late", agreeing with `n`.
    fn verb(self, n: usize) -> &'static str {
        match (self, n == 1) {
            (Outcome::Lost, true) => "loses mail",
            (Outcome::Lost, false) => "lose mail",
            (Outcome::Delayed, true) => "gets mail late",
            (Outcome::Delayed, false) => "get mail late",
        }
    }
}

/// The journal's truth: the mailboxes that lose mail and those that get it late. A mailbox with
/// both is counted as losing mail (the graver outcome).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Truth {
    pub lost: Affected,
    pub delayed: Affected,
}

impl Truth {
    pub fn of(&self, outcome: Outcome) -> &Affected {
        match outcome {
            Outcome::Lost => &self.lost,
            Outcome::Delayed => &self.delayed,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.lost.is_empty() && self.delayed.is_empty()
    }
}

/// Reads the journal of the `mailrig serve` whose HTTP API listens on `port`.
pub fn read(port: u16) -> anyhow::Result<Truth> {
    let body = http_get(port, "/api/v1/journal")?;
    let journal: serde_json::Value =
        serde_json::from_str(&body).context("the journal is not JSON")?;
    Ok(truth_from(&journal))
}

/// What one journal entry means for its recipient's mail, if anything.
fn outcome_of(entry: &serde_json::Value) -> Option<Outcome> {
    let event = entry.get("event")?;
    match event.get("kind")?.as_str()? {
        "dropped" | "misrouted" => Some(Outcome::Lost),
        "rejected" => match event.get("code").and_then(|c| c.as_u64()) {
            Some(400..=499) => Some(Outcome::Delayed),
            _ => Some(Outcome::Lost),
        },
        "forward-deferred" => Some(Outcome::Delayed),
        // The fault plan's `late` action, journaled by its description ("delivered 90 s late").
        "fault" => event
            .get("action")
            .and_then(|a| a.as_str())
            .filter(|a| a.starts_with("delivered ") && a.ends_with(" s late"))
            .map(|_| Outcome::Delayed),
        _ => None,
    }
}

/// The truth of a journal document.
pub fn truth_from(journal: &serde_json::Value) -> Truth {
    let mut truth = Truth::default();
    let entries = journal
        .get("entries")
        .and_then(|e| e.as_array())
        .cloned()
        .unwrap_or_default();
    for e in entries {
        let Some(outcome) = outcome_of(&e) else {
            continue;
        };
        let (Some(rcpt), Some(stage)) = (
            e.get("rcpt").and_then(|r| r.as_str()),
            e.get("stage").and_then(|s| s.as_str()),
        ) else {
            continue;
        };
        let into = match outcome {
            Outcome::Lost => &mut truth.lost,
            Outcome::Delayed => &mut truth.delayed,
        };
        into.entry(rcpt.to_ascii_lowercase())
            .or_default()
            .insert(stage.to_string());
    }
    let lost = truth.lost.clone();
    truth.delayed.retain(|rcpt, _| !lost.contains_key(rcpt));
    truth
}

/// What is wrong with an answer, without naming the right one: empty when it is right. The answer
/// claims that the `named` mailboxes' mail has `claim`'s outcome, at `stage`.
pub fn judge(
    truth: &Truth,
    claim: Outcome,
    named: &BTreeSet<String>,
    stage: Option<&str>,
) -> Vec<String> {
    let mut problems = Vec::new();
    if truth.is_empty() {
        problems.push(
            "the journal shows no lost or delayed mail yet: send some first (`mailrig probe probe.toml`)"
                .to_string(),
        );
        return problems;
    }
    let truth_set = truth.of(claim);
    if truth_set.is_empty() {
        problems.push(match claim {
            Outcome::Lost => "the journal shows no lost mail: the mail it shows is put off and comes late (answer which mailboxes get it late with `--delayed`)".to_string(),
            Outcome::Delayed => "the journal shows no delayed mail: the mail it shows is lost (answer without `--delayed`)".to_string(),
        });
        return problems;
    }
    let other_set = truth.of(claim.other());
    let right = named.iter().filter(|n| truth_set.contains_key(*n)).count();
    let other = named.iter().filter(|n| other_set.contains_key(*n)).count();
    let wrong = named.len() - right - other;
    let forgotten = truth_set.len() - right;
    if other > 0 || wrong > 0 || forgotten > 0 {
        let mut p = format!(
            "of the {} mailbox{} you named, {right} {}",
            named.len(),
            if named.len() == 1 { "" } else { "es" },
            claim.verb(right)
        );
        if other > 0 {
            p.push_str(&match claim {
                Outcome::Lost => {
                    let s = if other == 1 { "s" } else { "" };
                    format!(", {other} get{s} it late but lose{s} none")
                }
                Outcome::Delayed => format!(
                    ", {other} lose{} it instead",
                    if other == 1 { "s" } else { "" }
                ),
            });
        }
        if wrong > 0 {
            p.push_str(&format!(
                " and {wrong} {}",
                if wrong == 1 { "does not" } else { "do not" }
            ));
        }
        if forgotten > 0 {
            p.push_str(&format!(
                "; {forgotten} more mailbox{} {}",
                if forgotten == 1 { "" } else { "es" },
                claim.verb(forgotten)
            ));
        }
        problems.push(p);
    }
    let stages: BTreeSet<&String> = truth_set.values().flatten().collect();
    let how = match claim {
        Outcome::Lost => "lost",
        Outcome::Delayed => "put off",
    };
    match stage {
        None => problems.push(format!(
            "say where the mail is {how} too: `mailrig lab answer --stage STAGE ...`"
        )),
        Some(s) if !stages.iter().any(|t| t.as_str() == s) => {
            problems.push(format!("the mail is not {how} at stage '{s}'"))
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

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    /// user03/04 dropped at route, anna delivered, bernd greylisted then delivered, clara put off
    /// and not yet through, user05 stored late, user06 refused for good.
    fn truth() -> Truth {
        let j = serde_json::json!({"dropped": 0, "entries": [
            {"rcpt": "User03@patente.test", "stage": "route", "event": {"kind": "dropped"}},
            {"rcpt": "user04@patente.test", "stage": "route", "event": {"kind": "dropped"}},
            {"rcpt": "anna@kanzlei.test", "stage": "deliver", "event": {"kind": "delivered", "mailbox": "anna@kanzlei.test", "uid": 1}},
            {"rcpt": "bernd@kanzlei.test", "stage": "rcpt", "event": {"kind": "rejected", "code": 450, "enhanced": "4.2.0", "text": "Greylisted"}},
            {"rcpt": "bernd@kanzlei.test", "stage": "deliver", "event": {"kind": "delivered", "mailbox": "bernd@kanzlei.test", "uid": 1}},
            {"rcpt": "clara@kanzlei.test", "stage": "rcpt", "event": {"kind": "rejected", "code": 450, "enhanced": "4.2.0", "text": "Greylisted"}},
            {"rcpt": "user05@patente.test", "stage": "deliver", "event": {"kind": "fault", "action": "delivered 90 s late"}},
            {"rcpt": "user06@patente.test", "stage": "rcpt", "event": {"kind": "rejected", "code": 550, "enhanced": "5.1.1", "text": "User unknown"}},
            {"rcpt": "user07@patente.test", "stage": "data", "event": {"kind": "fault", "action": "delay 400 ms"}},
        ]});
        truth_from(&j)
    }

    #[test]
    fn lost_and_delayed_mail_are_told_apart() {
        let t = truth();
        assert_eq!(
            t.lost.keys().collect::<Vec<_>>(),
            [
                "user03@patente.test",
                "user04@patente.test",
                "user06@patente.test"
            ]
        );
        assert_eq!(
            t.delayed.keys().collect::<Vec<_>>(),
            [
                "bernd@kanzlei.test",
                "clara@kanzlei.test",
                "user05@patente.test"
            ],
            "4xx replies and late stores are delays; a slow reply is neither"
        );
        assert_eq!(t.delayed["bernd@kanzlei.test"], set(&["rcpt"]));
    }

    #[test]
    fn a_mailbox_that_is_put_off_and_then_dropped_loses_mail() {
        let j = serde_json::json!({"entries": [
            {"rcpt": "anna@kanzlei.test", "stage": "rcpt", "event": {"kind": "rejected", "code": 451, "enhanced": "4.3.0", "text": "later"}},
            {"rcpt": "anna@kanzlei.test", "stage": "route", "event": {"kind": "dropped"}},
        ]});
        let t = truth_from(&j);
        assert!(t.delayed.is_empty());
        assert_eq!(t.lost.len(), 1);
    }

    #[test]
    fn a_right_answer_has_no_problems() {
        let t = truth();
        let lost = set(&[
            "user03@patente.test",
            "user04@patente.test",
            "user06@patente.test",
        ]);
        assert_eq!(
            judge(&t, Outcome::Lost, &lost, Some("route")),
            Vec::<String>::new()
        );
        let late = set(&[
            "bernd@kanzlei.test",
            "clara@kanzlei.test",
            "user05@patente.test",
        ]);
        assert_eq!(
            judge(&t, Outcome::Delayed, &late, Some("rcpt")),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_wrong_answer_counts_without_naming() {
        let named = set(&["user03@patente.test", "anna@kanzlei.test"]);
        let p = judge(&truth(), Outcome::Lost, &named, Some("deliver"));
        assert_eq!(
            p,
            [
                "of the 2 mailboxes you named, 1 loses mail and 1 does not; 2 more mailboxes lose mail",
                "the mail is not lost at stage 'deliver'"
            ]
        );
        assert!(!p.join(" ").contains("user04"));
    }

    #[test]
    fn delayed_mailboxes_named_as_lost_are_counted_as_late() {
        let named = set(&[
            "user03@patente.test",
            "user04@patente.test",
            "user06@patente.test",
            "bernd@kanzlei.test",
        ]);
        assert_eq!(
            judge(&truth(), Outcome::Lost, &named, Some("route")),
            ["of the 4 mailboxes you named, 3 lose mail, 1 gets it late but loses none"]
        );
    }

    #[test]
    fn a_delayed_answer_is_judged_against_the_delays() {
        let named = set(&[
            "bernd@kanzlei.test",
            "user03@patente.test",
            "anna@kanzlei.test",
        ]);
        assert_eq!(
            judge(&truth(), Outcome::Delayed, &named, Some("route")),
            [
                "of the 3 mailboxes you named, 1 gets mail late, 1 loses it instead and 1 does not; 2 more mailboxes get mail late",
                "the mail is not put off at stage 'route'"
            ]
        );
        assert_eq!(
            judge(
                &truth(),
                Outcome::Delayed,
                &set(&["bernd@kanzlei.test"]),
                None
            )[1],
            "say where the mail is put off too: `mailrig lab answer --stage STAGE ...`"
        );
    }

    #[test]
    fn the_wrong_kind_of_answer_is_named_when_the_journal_has_only_the_other() {
        let only_late = Truth {
            lost: Affected::new(),
            delayed: truth().delayed,
        };
        let p = judge(
            &only_late,
            Outcome::Lost,
            &set(&["bernd@kanzlei.test"]),
            Some("rcpt"),
        );
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("the journal shows no lost mail"), "{p:?}");
        assert!(p[0].contains("--delayed"), "{p:?}");
        let only_lost = Truth {
            lost: truth().lost,
            delayed: Affected::new(),
        };
        let p = judge(
            &only_lost,
            Outcome::Delayed,
            &set(&["user03@patente.test"]),
            Some("route"),
        );
        assert!(
            p[0].starts_with("the journal shows no delayed mail"),
            "{p:?}"
        );
        let p = judge(
            &Truth::default(),
            Outcome::Delayed,
            &set(&["a@b.test"]),
            None,
        );
        assert!(p[0].contains("send some first"), "{p:?}");
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }
}
