//! `mailrig probe` with an `upstream` per mailbox, as an admin runs it
//! against the catalog's `kanzlei-pop3-collector` world (`mailrig serve`):
//! the provider receives every message, the firm's server collects only
//! kanzlei.test, user01 and user02 over POP3. The probe sends to the
//! provider, reads the firm and looks at the provider for what the firm
//! lacks: 23 `stuck-upstream`, the rest delivered with a time for both hops;
//! with the provider dropping user03's mail too (a fault at run time), user03
//! is `missing` (seen nowhere).

mod support;

use support::serve::Serve;

/// The address after `what ` on the banner line of host `host`.
fn host_listener(serve: &Serve, host: &str, what: &str) -> (String, u16) {
    let addr = serve
        .banner
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("host {host} ")))
        .and_then(|l| l.split(&format!("{what} ")).nth(1))
        .and_then(|r| r.split([',', ' ']).next())
        .unwrap_or_else(|| panic!("no {what} of host {host} in the banner:\n{}", serve.banner));
    let (ip, port) = addr.rsplit_once(':').expect("ip:port");
    (ip.to_string(), port.parse().expect("port"))
}

/// The target: send to the provider, read the firm over IMAP; patente.test's
/// upstream is the provider's IMAP, kanzlei.test's its POP3.
fn target(dir: &std::path::Path, serve: &Serve) -> String {
    let (smtp_ip, smtp_port) = host_listener(serve, "provider", "SMTP");
    let (up_ip, up_imap) = host_listener(serve, "provider", "IMAP");
    let (_, up_pop3) = host_listener(serve, "provider", "POP3");
    let (firm_ip, firm_imap) = host_listener(serve, "firm", "IMAP");
    let mut t = format!(
        "[probe]\ntimeout = 4\n\n[smtp]\nhost = '{smtp_ip}'\nport = {smtp_port}\n\n\
         [read]\nhost = '{firm_ip}'\nport = {firm_imap}\npassword = 'secret'\n\n\
         [[mailbox]]\naddress = 'user{{01..25}}@patente.test'\n\
         upstream = {{ host = '{up_ip}', port = {up_imap} }}\n"
    );
    for user in ["anna", "bernd", "clara"] {
        t.push_str(&format!(
            "\n[[mailbox]]\naddress = '{user}@kanzlei.test'\n\
             upstream = {{ protocol = 'pop3', host = '{up_ip}', port = {up_pop3} }}\n"
        ));
    }
    let path = dir.join("chain.toml");
    std::fs::write(&path, t).unwrap();
    path.display().to_string()
}

fn verdicts(report: &serde_json::Value, verdict: &str) -> Vec<String> {
    let mut v: Vec<String> = report["mailboxes"]
        .as_array()
        .expect("mailboxes")
        .iter()
        .filter(|m| m["verdict"] == verdict)
        .map(|m| m["address"].as_str().unwrap_or_default().to_string())
        .collect();
    v.sort();
    v
}

fn patente(range: std::ops::RangeInclusive<u32>) -> Vec<String> {
    range.map(|i| format!("user{i:02}@patente.test")).collect()
}

#[test]
fn the_pop3_collector_world_shows_23_mailboxes_stuck_at_the_provider() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(
        &[],
        &["--scenario", "kanzlei-pop3-collector", "--host-free-ports"],
    );
    let t = target(dir.path(), &serve);

    let out = support::mailrig(&["probe", "--target", &t, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", support::show(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(
        verdicts(&report, "stuck-upstream"),
        patente(3..=25),
        "{report:#}"
    );
    let mut delivered = vec![
        "anna@kanzlei.test".to_string(),
        "bernd@kanzlei.test".into(),
        "clara@kanzlei.test".into(),
    ];
    delivered.extend(patente(1..=2));
    assert_eq!(verdicts(&report, "delivered"), delivered, "{report:#}");
    assert_eq!(report["summary"]["counts"]["stuck-upstream"], 23);
    for m in report["mailboxes"].as_array().unwrap() {
        let hops = m["hops"].as_array().expect("hops");
        assert_eq!(hops.len(), 2, "{m}");
        assert_eq!(
            (&hops[0]["hop"], &hops[1]["hop"]),
            (&"upstream".into(), &"mailbox".into())
        );
        assert!(hops[0]["latency_ms"].is_u64(), "seen at the provider: {m}");
        let collected = m["verdict"] == "delivered";
        assert_eq!(hops[1]["latency_ms"].is_u64(), collected, "{m}");
        if collected {
            assert_eq!(hops[1]["latency_ms"], m["latency_ms"], "{m}");
        }
    }
    // 28 copies at the provider, 5 collected ones at the firm.
    assert_eq!(report["cleanup"]["deleted"], 33, "{:#}", report["cleanup"]);
    assert_eq!(report["cleanup"]["left"], 0, "{:#}", report["cleanup"]);
    let anna = &report["mailboxes"].as_array().unwrap()[25];
    assert_eq!(anna["address"], "anna@kanzlei.test");
    assert!(
        anna["hops"][0]["read_via"]
            .as_str()
            .unwrap()
            .starts_with("POP3 "),
        "{anna}"
    );

    // The table a person reads, and Nagios' status line.
    let out = support::mailrig(&["probe", "--target", &t, "--only-failures"]);
    let table = support::stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{}", support::show(&out));
    assert!(
        table.contains("patente.test  2/25 delivered, 23 stuck-upstream"),
        "{table}"
    );
    assert!(
        table.contains(
            "user03@patente.test  stuck-upstream  accepted with 250 and at the upstream IMAP "
        ),
        "{table}"
    );
    assert!(table.contains("but never collected into IMAP "), "{table}");
    let out = support::mailrig(&["probe", "--target", &t, "--format", "nagios"]);
    let line = support::stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{}", support::show(&out));
    assert!(
        line.starts_with("MAILRIG PROBE CRITICAL - 5/28 delivered, 23 stuck-upstream"),
        "{line}"
    );
    assert!(line.contains("stuck-upstream=23;;;0;28"), "{line}");

    // The provider now drops user03's mail as well: seen nowhere is missing.
    let curl = std::process::Command::new("curl")
        .args(["-sS", "-f", "-X", "POST", "-H", "Content-Type: application/json", "-d"])
        .arg(r#"{"name": "provider-drops-user03", "stage": "route", "action": "drop", "mailbox": "user03@patente.test"}"#)
        .arg(serve.url("/api/v1/faults"))
        .output()
        .expect("curl (scripts/install-test-deps.sh installs it)");
    assert!(curl.status.success(), "{}", support::show(&curl));
    let out = support::mailrig(&["probe", "--target", &t, "--format", "junit"]);
    let junit = support::stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{}", support::show(&out));
    assert_eq!(
        junit.matches("<failure type=\"stuck-upstream\"").count(),
        22,
        "{junit}"
    );
    assert_eq!(
        junit.matches("<failure type=\"missing\"").count(),
        1,
        "{junit}"
    );
    assert!(
        junit.contains(
            "missing: accepted with 250 but seen neither at its upstream nor in any probed mailbox"
        ),
        "{junit}"
    );
    let user03 = junit
        .split("<testcase ")
        .find(|c| c.contains("name=\"user03@patente.test\""))
        .expect("a test case for user03");
    assert!(user03.contains("type=\"missing\""), "{user03}");
    assert!(user03.contains("hop upstream (IMAP "), "{user03}");
    assert!(user03.contains("): not seen"), "{user03}");

    // An upstream nobody answers at is the probe that cannot run: exit 2, nothing sent.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = std::fs::read_to_string(&t).unwrap();
    let down = dir.path().join("down.toml");
    std::fs::write(
        &down,
        format!(
            "{}[[mailbox]]\naddress = 'anna@kanzlei.test'\nupstream = {{ host = '127.0.0.1', port = {free} }}\n",
            text.split("[[mailbox]]").next().unwrap()
        ),
    )
    .unwrap();
    let out = support::mailrig(&["probe", "--target", down.to_str().unwrap()]);
    let err = support::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{}", support::show(&out));
    assert!(
        err.contains(&format!(
            "cannot reach the upstream IMAP 127.0.0.1:{free} (where 1 mailbox(es) are read)"
        )),
        "{err}"
    );
    assert!(err.contains("nothing was sent"), "{err}");

    // Every probe was deleted at both hops (the API shows the provider, the first host).
    for address in [
        "user05@patente.test",
        "user01@patente.test",
        "anna@kanzlei.test",
    ] {
        let list: serde_json::Value =
            serde_json::from_str(&serve.get(&format!("/api/v1/mailboxes/{address}/messages")))
                .expect("message list JSON");
        assert_eq!(
            list["messages"].as_array().map(Vec::len),
            Some(0),
            "{address}: {list:#}"
        );
    }
    serve.stop();
}
