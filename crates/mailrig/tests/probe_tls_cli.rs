//! TLS per endpoint from the command line: `mailrig probe` against a `mailrig
//! serve` over SMTP STARTTLS and IMAPS reports each endpoint's TLS version,
//! certificate and expiry (table, JSON `tls`, JUnit suite `tls`);
//! `--warn-cert-days` beyond the certificate's life makes it a warning and
//! Nagios WARNING (exit 1) while the mail itself is delivered (exit 0).
//! Expiring-in-2-days and wrong-name certificates: the unit tests of
//! `mailrig_probe::endpoint_tls`.

mod support;

use support::serve::Serve;

fn banner_addr(serve: &Serve, name: &str) -> String {
    serve
        .banner
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{name} ")))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {name} in the banner:\n{}", serve.banner))
        .to_string()
}

#[test]
fn probe_reports_tls_per_endpoint_and_warns_before_expiry() {
    let serve = Serve::start(&[], &[]);
    let imaps = banner_addr(&serve, "IMAPS");
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("tls.toml");
    std::fs::write(
        &t,
        format!(
            "[probe]\ntimeout = 5\n[smtp]\nhost = '127.0.0.1'\nport = {}\ntls = 'starttls'\n\
             [read]\nhost = '127.0.0.1'\nport = {}\ntls = 'tls'\npassword = 'secret'\n\
             [tls]\nca_file = '{}'\n[[mailbox]]\naddress = 'alice@example.test'\n",
            serve.smtp.port(),
            imaps.rsplit_once(':').unwrap().1,
            serve.ca().display()
        ),
    )
    .unwrap();
    let t = t.display().to_string();

    let out = support::mailrig(&["probe", "--target", &t, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", support::show(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tls = report["tls"].as_array().expect("tls");
    assert_eq!(tls.len(), 2, "{report:#}");
    assert_eq!(
        tls[0]["endpoint"],
        format!("SMTP 127.0.0.1:{} (starttls)", serve.smtp.port())
    );
    assert_eq!(tls[1]["endpoint"], format!("IMAP {imaps} (tls)"));
    for e in tls {
        assert_eq!(e["version"], "TLSv1.3", "{e}");
        assert_eq!(e["subject"], "CN=mx.mailrig.test", "{e}");
        assert_eq!(e["name_matched"], true, "{e}");
        assert_eq!(e["verified"], true, "{e}");
        assert!(e["days_left"].as_i64().unwrap_or(0) > 300, "{e}");
        assert!(e["warning"].is_null(), "{e}");
    }

    let out = support::mailrig(&["probe", "--target", &t, "--warn-cert-days", "400"]);
    let table = support::stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", support::show(&out));
    assert!(
        table.contains(&format!(
            "tls: IMAP {imaps} (tls), TLSv1.3, CN=mx.mailrig.test, expires "
        )),
        "{table}"
    );
    assert!(
        table.contains("WARNING: the certificate expires in 36"),
        "{table}"
    );

    let out = support::mailrig(&[
        "probe",
        "--target",
        &t,
        "--warn-cert-days",
        "400",
        "--format",
        "nagios",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", support::show(&out));
    assert!(
        support::stdout(&out).starts_with("MAILRIG PROBE WARNING - 1/1 delivered|"),
        "{}",
        support::show(&out)
    );

    let out = support::mailrig(&[
        "probe",
        "--target",
        &t,
        "--warn-cert-days",
        "400",
        "--format",
        "junit",
    ]);
    let junit = support::stdout(&out);
    assert!(
        junit.contains(r#"<testsuite name="tls" tests="2" failures="2""#),
        "{junit}"
    );
    assert!(
        junit.contains(r#"<failure type="tls" message="IMAP "#),
        "{junit}"
    );
    serve.stop();
}
