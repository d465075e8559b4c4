//! `mailrig probe --each-mx` as an admin runs it: against a `mailrig serve
//! --dns` world with a primary MX and a backup MX whose queue is thrown away
//! (the catalog's `backup-mx-blackhole`, on test addresses), every mailbox is
//! `delivered via` the primary and `missing via` the backup, in the table,
//! JSON and JUnit; the target's `mx_hosts` do the same without DNS; an MX
//! lookup that fails (REFUSED, NXDOMAIN, a resolver that does not answer) is
//! a clear message naming the domain and exit 2, with nothing sent; an MX
//! that does not answer defers the probes meant for it.

mod support;

use std::net::Ipv4Addr;

use support::serve::Serve;

/// The catalog's backup-MX blackhole, every host at a test address on one
/// port, mx1 also readable over IMAP on a free port.
fn world(ips: &[Ipv4Addr], port: u16) -> String {
    format!(
        "[[domain]]\nname = 'kanzlei.test'\nmailboxes = ['anna', 'bernd', 'clara']\npassword = 'secret'\n\n\
         [[domain]]\nname = 'patente.test'\nmailboxes = ['user01..user05']\npassword = 'secret'\n\n\
         [[host]]\nname = 'mx2'\nhostname = 'mx2.kanzlei.test'\naddress = '{}'\nsmtp = {port}\n\
         domains = ['kanzlei.test', 'patente.test']\nrole = 'backup-mx'\nforward_to = 'mx1'\n\
         [[host.fault]]\nname = 'backup-mx-discards'\nstage = 'deliver'\naction = 'drop'\n\n\
         [[host]]\nname = 'mx1'\nhostname = 'mx.kanzlei.test'\naddress = '{}'\nsmtp = {port}\nimap = 0\n\
         domains = ['kanzlei.test', 'patente.test']\n",
        ips[0], ips[1]
    )
}

/// The address after `what ` on the banner line of host `host`.
fn host_listener(serve: &Serve, host: &str, what: &str) -> String {
    serve
        .banner
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("host {host} ")))
        .and_then(|l| l.split(&format!("{what} ")).nth(1))
        .and_then(|r| r.split([',', ' ']).next())
        .unwrap_or_else(|| panic!("no {what} of host {host} in the banner:\n{}", serve.banner))
        .to_string()
}

fn dns(serve: &Serve) -> String {
    serve
        .banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("DNS "))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no DNS line in the banner:\n{}", serve.banner))
        .to_string()
}

const MAILBOXES: &str = "[[mailbox]]\naddress = 'user{01..05}@patente.test'\n[[mailbox]]\naddress = 'anna@kanzlei.test'\n";

/// A target reading mx1 over IMAP; `smtp` is the `[smtp]` table's body.
fn target(dir: &std::path::Path, imap: &str, smtp: &str) -> String {
    let (host, port) = imap.rsplit_once(':').expect("ip:port");
    let path = dir.join("target.toml");
    std::fs::write(
        &path,
        format!(
            "[probe]\ntimeout = 3\n[smtp]\n{smtp}\n[read]\nhost = '{host}'\nport = {port}\npassword = 'secret'\n{MAILBOXES}"
        ),
    )
    .unwrap();
    path.display().to_string()
}

fn start(dir: &std::path::Path) -> (Serve, u16) {
    let ips = support::loopback_addresses(2);
    let port = support::port_free_on(&ips);
    let file = dir.join("world.toml");
    std::fs::write(&file, world(&ips, port)).unwrap();
    let serve = Serve::start(
        &[],
        &["--scenario", file.to_str().unwrap(), "--dns", "127.0.0.1:0"],
    );
    (serve, port)
}

/// Every mailbox twice: delivered via the primary, missing via the backup.
fn assert_backup_loses_everything(report: &serde_json::Value) {
    let rows = report["mailboxes"].as_array().expect("mailboxes");
    assert_eq!(rows.len(), 12, "{report:#}");
    for r in rows {
        let expected = match r["via"].as_str() {
            Some("mx.kanzlei.test") => "delivered",
            Some("mx2.kanzlei.test") => "missing",
            other => panic!("a row via {other:?}: {r}"),
        };
        assert_eq!(r["verdict"], expected, "{r}");
    }
    assert_eq!(report["summary"]["counts"]["delivered"], 6, "{report:#}");
    assert_eq!(report["summary"]["counts"]["missing"], 6, "{report:#}");
}

#[test]
fn each_mx_through_the_worlds_dns_finds_the_backup_that_discards() {
    let dir = tempfile::tempdir().unwrap();
    let (serve, port) = start(dir.path());
    let imap = host_listener(&serve, "mx1", "IMAP");
    // [smtp] host/port are not used with --each-mx: nothing listens there.
    let t = target(dir.path(), &imap, "host = '127.0.0.1'\nport = 1");
    let dns = dns(&serve);
    let port = port.to_string();
    let base = [
        "probe",
        "--target",
        &t,
        "--each-mx",
        "--resolver",
        &dns,
        "--mx-port",
        &port,
    ];

    let out = support::mailrig(&[&base[..], &["--format", "json"]].concat());
    assert_eq!(out.status.code(), Some(1), "{}", support::show(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_backup_loses_everything(&report);
    let note = report["notes"][0].as_str().unwrap_or_default();
    assert!(
        note.contains("mx.kanzlei.test") && note.contains("mx2.kanzlei.test"),
        "{report:#}"
    );

    let out = support::mailrig(&base);
    let table = support::stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{}", support::show(&out));
    assert!(
        table.contains("user03@patente.test  missing via mx2.kanzlei.test  accepted with 250"),
        "{table}"
    );
    assert!(
        table.contains("patente.test  5/10 delivered, 5 missing"),
        "{table}"
    );

    let out = support::mailrig(&[&base[..], &["--format", "junit"]].concat());
    let junit = support::stdout(&out);
    assert!(
        junit.contains(r#"name="user03@patente.test via mx2.kanzlei.test""#),
        "{junit}"
    );
    assert!(
        junit.contains(r#"name="user03@patente.test via mx.kanzlei.test" time="#),
        "{junit}"
    );
    serve.stop();
}

#[test]
fn mx_hosts_in_the_target_file_need_no_dns() {
    let dir = tempfile::tempdir().unwrap();
    let (serve, port) = start(dir.path());
    let imap = host_listener(&serve, "mx1", "IMAP");
    let mx1 = host_listener(&serve, "mx1", "SMTP");
    let mx2 = host_listener(&serve, "mx2", "SMTP");
    assert!(mx1.ends_with(&format!(":{port}")), "{}", serve.banner);
    let smtp = format!(
        "host = '127.0.0.1'\nport = 1\nmx = true\nmx_hosts = [\
         {{ name = 'mx.kanzlei.test', address = '{mx1}' }}, {{ name = 'mx2.kanzlei.test', address = '{mx2}' }}]"
    );
    let t = target(dir.path(), &imap, &smtp);
    let out = support::mailrig(&["probe", "--target", &t, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", support::show(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_backup_loses_everything(&report);
    serve.stop();
}

#[test]
fn a_failed_mx_lookup_is_a_clear_error_exit_2_and_nothing_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (serve, _) = start(dir.path());
    let imap = host_listener(&serve, "mx1", "IMAP");
    let dns = dns(&serve);
    // other.test is in none of the world's zones: its DNS answers REFUSED.
    let (host, port) = imap.rsplit_once(':').unwrap();
    let t = dir.path().join("other.toml");
    std::fs::write(
        &t,
        format!(
            "[probe]\ntimeout = 3\n[smtp]\nhost = '127.0.0.1'\nport = 1\n[read]\nhost = '{host}'\nport = {port}\n\
             password = 'secret'\n[[mailbox]]\naddress = 'anna@kanzlei.test'\n[[mailbox]]\naddress = 'x@other.test'\n"
        ),
    )
    .unwrap();
    let t = t.display().to_string();
    let out = support::mailrig(&["probe", "--target", &t, "--each-mx", "--resolver", &dns]);
    let err = support::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{}", support::show(&out));
    assert!(
        err.contains(&format!(
            "cannot find the MX hosts of other.test: MX lookup through {dns} failed"
        )),
        "{err}"
    );
    assert!(err.contains("nothing was sent"), "{err}");

    let out = support::mailrig(&[
        "probe",
        "--target",
        &t,
        "--each-mx",
        "--resolver",
        &dns,
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", support::show(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let error = report["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("cannot find the MX hosts of other.test"),
        "{report:#}"
    );

    // Nothing was sent: the world's journal holds DNS queries only.
    let journal: serde_json::Value =
        serde_json::from_str(&serve.get("/api/v1/journal")).expect("journal JSON");
    let entries = journal["entries"].as_array().expect("entries");
    assert!(entries.iter().any(|e| e["stage"] == "dns"), "{journal:#}");
    assert!(entries.iter().all(|e| e["stage"] == "dns"), "{journal:#}");
    serve.stop();
}

/// Runs `probe --each-mx` for `other` beside anna@kanzlei.test through
/// `resolver`; returns stderr after checking exit 2.
fn failed_lookup(dir: &std::path::Path, imap: &str, other: &str, resolver: &str) -> String {
    let (host, port) = imap.rsplit_once(':').unwrap();
    let t = dir.join("failing.toml");
    std::fs::write(
        &t,
        format!(
            "[probe]\ntimeout = 3\n[smtp]\nhost = '127.0.0.1'\nport = 1\n[read]\nhost = '{host}'\nport = {port}\n\
             password = 'secret'\n[[mailbox]]\naddress = 'anna@kanzlei.test'\n[[mailbox]]\naddress = '{other}'\n"
        ),
    )
    .unwrap();
    let t = t.display().to_string();
    let out = support::mailrig(&["probe", "--target", &t, "--each-mx", "--resolver", resolver]);
    assert_eq!(out.status.code(), Some(2), "{}", support::show(&out));
    support::stderr(&out)
}

#[test]
fn an_mx_lookup_of_a_name_that_does_not_exist_names_the_domain_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let (serve, _) = start(dir.path());
    let imap = host_listener(&serve, "mx1", "IMAP");
    let dns = dns(&serve);
    // Inside the world's zone but not a name in it: NXDOMAIN.
    let err = failed_lookup(dir.path(), &imap, "x@ghost.kanzlei.test", &dns);
    assert!(
        err.contains(&format!(
            "cannot find the MX hosts of ghost.kanzlei.test: MX lookup through {dns} failed"
        )),
        "{err}"
    );
    assert!(err.contains("nothing was sent"), "{err}");
    serve.stop();
}

#[test]
fn an_unreachable_resolver_names_the_domain_and_the_resolver_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let (serve, _) = start(dir.path());
    let imap = host_listener(&serve, "mx1", "IMAP");
    // A port nothing answers DNS on (the world's SMTP port is bound on test
    // addresses only; 127.0.0.1 port 1 refuses).
    let err = failed_lookup(dir.path(), &imap, "x@patente.test", "127.0.0.1:1");
    assert!(
        err.contains(
            "cannot find the MX hosts of kanzlei.test: MX lookup through 127.0.0.1:1 failed"
        ),
        "{err}"
    );
    assert!(err.contains("nothing was sent"), "{err}");
    serve.stop();
}

#[test]
fn an_mx_that_does_not_answer_defers_the_probes_through_it_and_the_others_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let (serve, _) = start(dir.path());
    let imap = host_listener(&serve, "mx1", "IMAP");
    let mx1 = host_listener(&serve, "mx1", "SMTP");
    let smtp = format!(
        "host = '127.0.0.1'\nport = 1\nmx = true\nmx_hosts = [\
         {{ name = 'mx.kanzlei.test', address = '{mx1}' }}, {{ name = 'mx3.kanzlei.test', address = '127.0.0.1:1' }}]"
    );
    let t = target(dir.path(), &imap, &smtp);
    let out = support::mailrig(&["probe", "--target", &t, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", support::show(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let rows = report["mailboxes"].as_array().expect("mailboxes");
    assert_eq!(rows.len(), 12, "{report:#}");
    for r in rows {
        match r["via"].as_str() {
            Some("mx.kanzlei.test") => assert_eq!(r["verdict"], "delivered", "{r}"),
            Some("mx3.kanzlei.test") => {
                assert_eq!(r["verdict"], "deferred", "{r}");
                let reason = r["reason"].as_str().unwrap_or_default();
                assert!(
                    reason.contains("the MX mx3.kanzlei.test (127.0.0.1:1) could not be reached, nothing was sent through it"),
                    "{r}"
                );
            }
            other => panic!("a row via {other:?}: {r}"),
        }
    }
    serve.stop();
}
