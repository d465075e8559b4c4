//! `mailrig probe --require` as an admin runs it against the catalog's
//! `dkim-key-rotated` (`mailrig serve`): signer.test's key was rotated in DNS
//! but not in the signer. The prober signs its probes as signer.test
//! (`[smtp] dkim`) with the old key: the server's Authentication-Results say
//! spf=pass dkim=fail dmarc=pass, so `--require dkim=pass` makes the mailbox
//! `delivered-unauthenticated` (exit 1) and `--require dmarc=pass` does not;
//! signed with the new key, dkim=pass is delivered. A bad `--require` is a
//! clear usage error, exit 2.

mod support;

use support::serve::Serve;

fn key(name: &str) -> String {
    format!(
        "{}/../../testdata/dkim/{name}.key.pem",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A target sending as signer.test, signed with testdata/dkim/NAME.key.pem.
fn target(dir: &std::path::Path, serve: &Serve, name: &str) -> String {
    let key_file = key(name);
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "[probe]\ntimeout = 5\n\n[smtp]\nhost = '{}'\nport = {}\nfrom = 'probe@signer.test'\n\
             dkim = {{ domain = 'signer.test', selector = 's1', key_file = '{key_file}' }}\n\n\
             [read]\nhost = '{}'\nport = {}\npassword = 'secret'\n\n\
             [[mailbox]]\naddress = 'user@example.test'\n",
            serve.smtp.ip(),
            serve.smtp.port(),
            serve.imap.ip(),
            serve.imap.port()
        ),
    )
    .unwrap();
    path.display().to_string()
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON report ({e}): {}", support::show(out)))
}

#[test]
fn require_dkim_pass_tells_the_rotated_key_apart() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&[], &["--scenario", "dkim-key-rotated"]);
    let old = target(dir.path(), &serve, "signer");

    // Without --require the results are reported, and delivered is delivered.
    let out = support::mailrig(&["probe", "--target", &old, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", support::show(&out));
    let r = json(&out);
    let m = &r["mailboxes"][0];
    assert_eq!(m["verdict"], "delivered", "{m}");
    assert_eq!(
        (&m["auth"]["spf"], &m["auth"]["dkim"], &m["auth"]["dmarc"]),
        (&"pass".into(), &"fail".into(), &"pass".into()),
        "{m}"
    );
    assert_eq!(m["auth"]["dkim_signed"], true, "{m}");

    let out = support::mailrig(&[
        "probe",
        "--target",
        &old,
        "--require",
        "dkim=pass,dmarc=pass",
    ]);
    let table = support::stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{}", support::show(&out));
    assert!(
        table.contains("user@example.test  delivered-unauthenticated  delivered, but its Authentication-Results say dkim=fail (required: pass)"),
        "{table}"
    );
    assert!(
        table.contains("0/1 delivered, 1 delivered-unauthenticated"),
        "{table}"
    );

    let out = support::mailrig(&[
        "probe",
        "--target",
        &old,
        "--require",
        "dmarc=pass",
        "--format",
        "junit",
    ]);
    let junit = support::stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", support::show(&out));
    assert!(
        junit.contains(r#"<property name="dkim" value="fail"/>"#)
            && junit.contains(r#"<property name="dmarc" value="pass"/>"#),
        "{junit}"
    );

    // Signed with the key DNS publishes now: dkim=pass meets the requirement.
    let new = target(dir.path(), &serve, "rotated");
    let out = support::mailrig(&[
        "probe",
        "--target",
        &new,
        "--require",
        "dkim=pass,dmarc=pass",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", support::show(&out));
    assert_eq!(json(&out)["mailboxes"][0]["auth"]["dkim"], "pass");
    serve.stop();
}

#[test]
fn a_bad_requirement_is_a_clear_error_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("t.toml");
    std::fs::write(
        &t,
        "[probe]\nrequire = ['dkim=pass', 'dmarc=maybe']\n[smtp]\nhost = '127.0.0.1'\nport = 1\n\
         [read]\nhost = '127.0.0.1'\nport = 1\npassword = 'x'\n[[mailbox]]\naddress = 'a@b.test'\n",
    )
    .unwrap();
    let t = t.display().to_string();
    let out = support::mailrig(&["probe", "--target", &t, "--require", "foo=bar"]);
    let err = support::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{}", support::show(&out));
    assert!(err.contains("--require"), "{err}");
    assert!(
        err.contains("'foo=bar': unknown method 'foo' (spf, dkim or dmarc)"),
        "{err}"
    );
    // The same mistake in the target file names its line and column.
    let out = support::mailrig(&["probe", "--target", &t]);
    let err = support::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{}", support::show(&out));
    assert!(
        err.contains(":2:11: [probe] require: 'dmarc=maybe': 'maybe' is not a dmarc result"),
        "{err}"
    );
}
