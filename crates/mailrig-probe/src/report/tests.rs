//! Unit tests of the prober's report module.
use super::*;
use crate::verdict::SmtpReply;

fn result(address: &str, verdict: Verdict) -> MailboxResult {
    MailboxResult {
        address: address.to_string(),
        domain: crate::target::domain_of(address),
        verdict,
        token: "mrpx-0".into(),
        latency_ms: (verdict == Verdict::Delivered).then_some(120),
        smtp: None,
        accepted: (!matches!(
            verdict,
            Verdict::Rejected | Verdict::Deferred | Verdict::Unreadable
        ))
        .then(|| SmtpReply::from_code_and_text(250, "2.0.0 Ok: queued as 4B7F")),
        found_in: vec![],
        copies: u32::from(verdict == Verdict::Delivered),
        differences: vec![],
        reason: format!("reason for {verdict} <&\"'>"),
        read_via: "IMAP 127.0.0.1:1143".into(),
        folders: vec![],
        via: None,
        hops: vec![],
        auth: None,
    }
}

/// The seed incident's shape: kanzlei.test fine, patente.test 2 of 25.
pub(crate) fn seed_report() -> Report {
    let mut boxes = vec![
        result("anna@kanzlei.test", Verdict::Delivered),
        result("bernd@kanzlei.test", Verdict::Delivered),
        result("clara@kanzlei.test", Verdict::Delivered),
    ];
    for i in 1..=25 {
        let v = if i <= 2 {
            Verdict::Delivered
        } else {
            Verdict::Missing
        };
        boxes.push(result(&format!("user{i:02}@patente.test"), v));
    }
    let mut rejected = result("ghost@kanzlei.test", Verdict::Rejected);
    rejected.smtp = Some(SmtpReply::from_code_and_text(550, "5.1.1 User unknown"));
    boxes.push(rejected);
    let mut unreadable = result("dora@kanzlei.test", Verdict::Unreadable);
    unreadable.reason = "IMAP login as dora refused: \u{1} bad".into();
    boxes.push(unreadable);
    Report::new(
        RunInfo {
            run_id: "mrpx".into(),
            target: "t.toml".into(),
            started_at: "2026-01-01T00:00:00.000Z".into(),
            duration_ms: 1500,
            timeout_ms: 30_000,
            timed_out: true,
        },
        boxes,
        Cleanup {
            deleted: 5,
            ..Cleanup::default()
        },
    )
}

#[test]
fn counts_per_domain_and_exit_code() {
    let r = seed_report();
    assert_eq!(r.summary.total, 30);
    assert_eq!(r.summary.counts.delivered, 5);
    assert!(!r.all_delivered());
    assert_eq!(r.exit_code(), 1);
    let patente = r
        .domains
        .iter()
        .find(|d| d.domain == "patente.test")
        .unwrap();
    assert_eq!(Report::domain_line(patente), "2/25 delivered, 23 missing");
    let kanzlei = r
        .domains
        .iter()
        .find(|d| d.domain == "kanzlei.test")
        .unwrap();
    assert_eq!(
        Report::domain_line(kanzlei),
        "3/5 delivered, 1 rejected, 1 unreadable"
    );

    let good = Report::new(
        RunInfo {
            run_id: "r".into(),
            target: "t".into(),
            started_at: "s".into(),
            duration_ms: 1,
            timeout_ms: 1,
            timed_out: false,
        },
        vec![result("a@b.test", Verdict::Delivered)],
        Cleanup::default(),
    );
    assert_eq!(good.exit_code(), 0);
}

#[test]
fn table_groups_by_domain_and_colours_only_when_asked() {
    let r = seed_report();
    let plain = r.to_table(false);
    assert!(
        plain.contains("patente.test  2/25 delivered, 23 missing"),
        "{plain}"
    );
    assert!(
        plain.contains("kanzlei.test  3/5 delivered, 1 rejected, 1 unreadable"),
        "{plain}"
    );
    assert!(plain.contains("user03@patente.test  missing"), "{plain}");
    assert!(
        plain.contains("anna@kanzlei.test    delivered   0.12 s"),
        "{plain}"
    );
    assert!(plain.contains("total 5/30 delivered"), "{plain}");
    assert!(plain.contains("timeout reached"));
    assert!(!plain.contains('\x1b'));
    let colour = r.to_table(true);
    assert!(colour.contains("\x1b[32m") && colour.contains("\x1b[31m"));
    // kanzlei.test sorts before patente.test.
    assert!(plain.find("kanzlei.test").unwrap() < plain.find("patente.test  2/25").unwrap());
}

/// The JSON report's keys are a contract (docs/probe-report-schema.json).
#[test]
fn json_schema_is_stable() {
    let r = seed_report();
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&v),
        [
            "cleanup",
            "domains",
            "duration_ms",
            "error",
            "mailboxes",
            "notes",
            "run_id",
            "schema",
            "started_at",
            "summary",
            "target",
            "timed_out",
            "timeout_ms",
            "tls"
        ]
    );
    assert_eq!(v["schema"], "mailrig.probe.report/v1");
    assert_eq!(keys(&v["summary"]), ["all_delivered", "counts", "total"]);
    assert_eq!(
        keys(&v["summary"]["counts"]),
        [
            "altered",
            "deferred",
            "delivered",
            "delivered-unauthenticated",
            "duplicated",
            "misfiled",
            "misrouted",
            "missing",
            "rejected",
            "stuck-upstream",
            "unreadable"
        ]
    );
    assert_eq!(keys(&v["domains"][0]), ["counts", "domain", "total"]);
    assert_eq!(keys(&v["cleanup"]), ["deleted", "kept", "left", "notes"]);
    let m = &v["mailboxes"][0];
    assert_eq!(
        keys(m),
        [
            "accepted",
            "address",
            "auth",
            "copies",
            "differences",
            "domain",
            "folders",
            "found_in",
            "hops",
            "latency_ms",
            "read_via",
            "reason",
            "smtp",
            "token",
            "verdict",
            "via"
        ]
    );
    assert_eq!(m["verdict"], "delivered");
    assert!(v["mailboxes"][3]["smtp"].is_null());
    assert_eq!(v["mailboxes"][3]["accepted"]["code"], 250);
    assert_eq!(v["mailboxes"][3]["accepted"]["permanent"], false);
    let rejected = v["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["verdict"] == "rejected")
        .unwrap();
    assert_eq!(
        keys(&rejected["smtp"]),
        ["code", "enhanced", "permanent", "text"]
    );
    assert_eq!(rejected["smtp"]["code"], 550);
    assert_eq!(rejected["smtp"]["enhanced"], "5.1.1");
    // Round trip.
    let back: Report = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(back, r);
}

/// Every key the report writes is described in the published schema.
#[test]
fn published_schema_lists_every_key() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../../../docs/probe-report-schema.json")).unwrap();
    let top = schema["properties"].as_object().unwrap();
    let v: serde_json::Value = serde_json::from_str(&seed_report().to_json()).unwrap();
    for k in v.as_object().unwrap().keys() {
        assert!(top.contains_key(k), "schema lacks {k}");
    }
    let mb = schema["$defs"]["mailbox"]["properties"]
        .as_object()
        .unwrap();
    for k in v["mailboxes"][0].as_object().unwrap().keys() {
        assert!(mb.contains_key(k), "schema lacks mailbox.{k}");
    }
    let verdicts: Vec<&str> = schema["$defs"]["mailbox"]["properties"]["verdict"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(verdicts, Verdict::ALL.map(|v| v.as_str()));
}

#[test]
fn junit_is_well_formed_xml() {
    let xml = seed_report().to_junit();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junit.xml");
    std::fs::write(&path, &xml).unwrap();
    let script = r#"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "testsuites", root.tag
cases = root.findall("./testsuite/testcase")
fails = root.findall("./testsuite/testcase/failure")
errors = root.findall("./testsuite/testcase/error")
print(len(cases), len(fails), len(errors), root.get("tests"), root.get("failures"), root.get("errors"))
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .expect("python3 is needed to check the JUnit XML");
    assert!(
        out.status.success(),
        "{}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "30 24 1 30 24 1"
    );
    assert!(xml.contains("<failure type=\"missing\""));
    assert!(xml.contains("&lt;&amp;&quot;&apos;&gt;"));
}

/// A probe that could not run still has a report: JSON with every key and `error` set, JUnit with one
/// error case, exit code 2.
#[test]
fn a_probe_that_could_not_run_reports_one_error() {
    let r = Report::could_not_run(
        "t.toml",
        "cannot reach the SMTP server 127.0.0.1:1: refused",
    );
    assert_eq!(r.exit_code(), 2);
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(
        v["error"],
        "cannot reach the SMTP server 127.0.0.1:1: refused"
    );
    assert_eq!(v["summary"]["all_delivered"], false);
    assert_eq!(v["mailboxes"], serde_json::json!([]));
    let xml = r.to_junit();
    assert!(
        xml.contains("tests=\"1\" failures=\"0\" errors=\"1\""),
        "{xml}"
    );
    assert!(xml.contains("<error type=\"could-not-run\""), "{xml}");
    assert_eq!(seed_report().error, None);
    assert!(seed_report().to_json().contains("\"error\": null"));
}

#[test]
fn misfiled_shows_its_folder_in_table_and_junit() {
    let mut m = result("user04@patente.test", Verdict::Misfiled);
    m.folders = vec!["Junk".into()];
    m.reason = "accepted, but filed into Junk instead of INBOX".into();
    let mut r = Report::new(
        RunInfo {
            run_id: "mrpx".into(),
            target: "t.toml".into(),
            started_at: "2026-01-01T00:00:00.000Z".into(),
            duration_ms: 1,
            timeout_ms: 1,
            timed_out: false,
        },
        vec![m, result("user05@patente.test", Verdict::Delivered)],
        Cleanup::default(),
    );
    r.notes
        .push("1 mailbox(es) read over POP3: only INBOX was searched".into());
    assert_eq!(r.exit_code(), 1, "misfiled is not delivered");
    assert_eq!(r.summary.counts.misfiled, 1);
    let table = r.to_table(false);
    assert!(
        table.contains("user04@patente.test  misfiled (Junk)  accepted, but filed into Junk"),
        "{table}"
    );
    assert!(table.contains("1/2 delivered, 1 misfiled"), "{table}");
    assert!(
        table.contains("note: 1 mailbox(es) read over POP3"),
        "{table}"
    );
    let junit = r.to_junit();
    assert!(junit.contains("<failure type=\"misfiled\""), "{junit}");
    assert!(junit.contains("filed into: Junk"), "{junit}");
}

#[test]
fn stuck_upstream_names_both_hops_in_table_junit_and_nagios() {
    let mut stuck = result("user05@patente.test", Verdict::StuckUpstream);
    stuck.reason = "accepted with 250 and at the upstream POP3 p:110 after 0.10 s, but never collected into IMAP f:143".into();
    stuck.hops = vec![
        crate::verdict::Hop {
            hop: "upstream".into(),
            read_via: "POP3 p:110".into(),
            latency_ms: Some(100),
        },
        crate::verdict::Hop {
            hop: "mailbox".into(),
            read_via: "IMAP f:143".into(),
            latency_ms: None,
        },
    ];
    let mut ok = result("user01@patente.test", Verdict::Delivered);
    ok.hops = vec![
        crate::verdict::Hop {
            hop: "upstream".into(),
            read_via: "POP3 p:110".into(),
            latency_ms: Some(90),
        },
        crate::verdict::Hop {
            hop: "mailbox".into(),
            read_via: "IMAP f:143".into(),
            latency_ms: Some(1200),
        },
    ];
    let r = Report::new(
        RunInfo {
            run_id: "mrpx".into(),
            target: "t.toml".into(),
            started_at: "2026-01-01T00:00:00.000Z".into(),
            duration_ms: 1,
            timeout_ms: 1,
            timed_out: true,
        },
        vec![ok, stuck],
        Cleanup::default(),
    );
    assert_eq!(r.exit_code(), 1, "stuck-upstream is not delivered");
    assert_eq!(r.summary.counts.stuck_upstream, 1);
    let table = r.to_table(false);
    assert!(
        table.contains(
            "user05@patente.test  stuck-upstream  accepted with 250 and at the upstream POP3 p:110"
        ),
        "{table}"
    );
    assert!(
        table.contains("user01@patente.test  delivered   0.12 s (upstream 0.09 s, mailbox 1.20 s)"),
        "{table}"
    );
    assert!(table.contains("1/2 delivered, 1 stuck-upstream"), "{table}");
    let junit = r.to_junit();
    assert!(
        junit.contains("<failure type=\"stuck-upstream\""),
        "{junit}"
    );
    assert!(
        junit.contains("hop upstream (POP3 p:110): seen 0.100 s after 250"),
        "{junit}"
    );
    assert!(
        junit.contains("hop mailbox (IMAP f:143): not seen"),
        "{junit}"
    );
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(v["summary"]["counts"]["stuck-upstream"], 1);
    assert_eq!(v["mailboxes"][1]["verdict"], "stuck-upstream");
    assert_eq!(v["mailboxes"][1]["hops"][0]["latency_ms"], 100);
    assert!(v["mailboxes"][1]["hops"][1]["latency_ms"].is_null());
    let (line, code) = crate::monitor::nagios::status_line(&r);
    assert_eq!(code, 2, "{line}");
    assert!(
        line.contains("user05@patente.test stuck-upstream"),
        "{line}"
    );
    assert!(line.contains("stuck-upstream=1;;;0;2"), "{line}");
    assert!(r.to_html().contains("class=\"cell v-stuck-upstream\""));
}
