//! Unit tests of the prober's target module.
use std::path::Path;
use std::time::Duration;

use super::*;

const GOOD: &str = r#"
[probe]
timeout = 12.5
concurrency = 8

[smtp]
host = "127.0.0.1"
port = 2525
tls = "starttls"
auth = { user = "sender", password_env = "SMTP_PW" }
connections = 2

[read]
protocol = "imap"
host = "127.0.0.1"
port = 1143
password = "secret"

[tls]
insecure = true

[[mailbox]]
address = "anna@kanzlei.test"

[[mailbox]]
address = "bernd@kanzlei.test"
user = "bernd"
password_env = "BERND_PW"
protocol = "pop3"
port = 1110
"#;

fn env(k: &str) -> Option<String> {
    match k {
        "SMTP_PW" => Some("smtp-secret".into()),
        "BERND_PW" => Some("bernd-secret".into()),
        _ => None,
    }
}

fn parse(src: &str) -> Result<Target, TargetError> {
    Target::parse_with(src, "t.toml", Path::new("."), &env)
}

fn err(src: &str) -> String {
    parse(src).unwrap_err().to_string()
}

#[test]
fn full_file_with_defaults_and_overrides() {
    let t = parse(GOOD).unwrap();
    assert_eq!(t.source, "t.toml");
    assert_eq!(t.timeout, Duration::from_secs_f64(12.5));
    assert_eq!(t.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
    assert_eq!(t.concurrency, 8);
    assert_eq!(t.smtp.tls, TlsMode::Starttls);
    assert_eq!(t.smtp.connections, 2);
    assert_eq!(t.smtp.from, DEFAULT_FROM);
    let auth = t.smtp.auth.as_ref().unwrap();
    assert_eq!(
        (auth.user.as_str(), auth.password.as_str()),
        ("sender", "smtp-secret")
    );
    assert!(t.trust.insecure);
    assert_eq!(t.mailboxes.len(), 2);
    let anna = &t.mailboxes[0];
    assert_eq!(anna.user, "anna@kanzlei.test");
    assert_eq!(anna.password, "secret");
    assert_eq!(anna.read.protocol, ReadProtocol::Imap);
    assert_eq!(anna.read.port, 1143);
    let bernd = &t.mailboxes[1];
    assert_eq!(bernd.user, "bernd");
    assert_eq!(bernd.password, "bernd-secret");
    assert_eq!(bernd.read.protocol, ReadProtocol::Pop3);
    assert_eq!(bernd.read.port, 1110);
    assert_eq!(bernd.read.host, "127.0.0.1");
    assert_eq!(bernd.domain(), "kanzlei.test");
    // Passwords never show in debug output.
    assert!(!format!("{t:?}").contains("secret"));
}

#[test]
fn minimal_file_uses_defaults() {
    let t = parse(
        "[smtp]\nhost = \"h\"\nport = 25\n[read]\nhost = \"h\"\nport = 143\n[[mailbox]]\naddress = \"a@b.test\"\npassword = \"p\"\n",
    )
    .unwrap();
    assert_eq!(t.timeout, DEFAULT_TIMEOUT);
    assert_eq!(t.concurrency, DEFAULT_CONCURRENCY);
    assert_eq!(t.smtp.tls, TlsMode::None);
    assert_eq!(t.mailboxes[0].read.protocol, ReadProtocol::Imap);
    assert_eq!(t.mailboxes[0].read.tls, TlsMode::None);
}

#[test]
fn missing_field_names_file_line_and_field() {
    let e = err("[smtp]\nhost = \"h\"\n[read]\nhost = \"h\"\nport = 143\n");
    assert!(e.starts_with("t.toml:1:1: "), "{e}");
    assert!(e.contains("[smtp] host needs a port"), "{e}");
    let e = err("[read]\nhost = \"h\"\nport = 143\n");
    assert!(e.contains("missing field `smtp`"), "{e}");
}

#[test]
fn unknown_key_is_an_error_with_position() {
    let e = err("[smtp]\nhost = \"h\"\nport = 25\nprot = 3\n[read]\nhost = \"h\"\nport = 143\n");
    assert!(e.starts_with("t.toml:4:1: unknown field `prot`"), "{e}");
    let e = err(&GOOD.replace("user = \"bernd\"", "usr = \"bernd\""));
    assert!(e.contains("unknown field `usr`"), "{e}");
    let line = GOOD
        .lines()
        .position(|l| l.starts_with("user = \"bernd\""))
        .unwrap()
        + 1;
    assert!(e.starts_with(&format!("t.toml:{line}:1:")), "{e}");
}

#[test]
fn bad_values_are_explained() {
    let e = err(&GOOD.replace("tls = \"starttls\"", "tls = \"ssl\""));
    assert!(
        e.contains("unknown variant `ssl`") && e.contains("none") && e.contains("starttls"),
        "{e}"
    );
    let e = err(&GOOD.replace("port = 2525", "port = 70000"));
    assert!(
        e.starts_with("t.toml:8:8:") && e.contains("expected u16"),
        "{e}"
    );
    let e = err(&GOOD.replace("timeout = 12.5", "timeout = -1.0"));
    assert!(
        e.contains("[probe] timeout must be a number of seconds"),
        "{e}"
    );
    let e = err(&GOOD.replace("concurrency = 8", "concurrency = 0"));
    assert!(e.contains("[probe] concurrency must be between 1"), "{e}");
    let e = err(&GOOD.replace("address = \"anna@kanzlei.test\"", "address = \"anna\""));
    assert!(e.contains("'anna' is not a mailbox address"), "{e}");
}

#[test]
fn password_rules() {
    let e = err(&GOOD.replace("BERND_PW", "UNSET_PW"));
    assert!(
        e.contains("environment variable UNSET_PW (password_env) is not set"),
        "{e}"
    );
    let e = err(&GOOD.replace(
        "password_env = \"BERND_PW\"",
        "password_env = \"BERND_PW\"\npassword = \"x\"",
    ));
    assert!(e.contains("either password or password_env"), "{e}");
    let no_default = GOOD.replace("password = \"secret\"\n", "");
    let e = err(&no_default);
    assert!(
        e.contains("mailbox anna@kanzlei.test has no password"),
        "{e}"
    );
    let e = err(&GOOD.replace("password_env = \"SMTP_PW\"", "password_env = \"NOPE\""));
    assert!(e.contains("[smtp] auth: environment variable NOPE"), "{e}");
}

#[test]
fn duplicates_and_empty_lists_are_errors() {
    let e = err(&format!(
        "{GOOD}\n[[mailbox]]\naddress = \"ANNA@kanzlei.test\"\n"
    ));
    assert!(e.contains("listed twice (first on line"), "{e}");
    let e = err("[smtp]\nhost = \"h\"\nport = 25\n[read]\nhost = \"h\"\nport = 143\n");
    assert!(e.contains("no mailboxes to probe"), "{e}");
}

#[test]
fn csv_list_and_ca_file_relative_to_the_target() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("boxes.csv"),
        "address,user,password\nuser01@patente.test,,\nuser02@patente.test,u2,pw2\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("ca.pem"), "-----BEGIN CERTIFICATE-----\n").unwrap();
    let src = format!(
        "{}\n",
        GOOD.replace(
            "concurrency = 8",
            "concurrency = 8\nmailboxes_csv = \"boxes.csv\""
        )
        .replace("insecure = true", "ca_file = \"ca.pem\"")
    );
    let path = dir.path().join("t.toml");
    std::fs::write(&path, &src).unwrap();
    // The real environment has no BERND_PW: use parse_with for the env part.
    let t = Target::parse_with(&src, "t.toml", dir.path(), &env).unwrap();
    assert_eq!(t.mailboxes.len(), 4);
    assert_eq!(t.mailboxes[2].address, "user01@patente.test");
    assert_eq!(t.mailboxes[2].password, "secret");
    assert_eq!(t.mailboxes[3].user, "u2");
    assert!(
        t.trust
            .ca_pem
            .as_deref()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );

    let e = Target::parse_with(
        &src.replace("boxes.csv", "nope.csv"),
        "t.toml",
        dir.path(),
        &env,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("t.toml:") && e.contains("cannot read mailboxes_csv"),
        "{e}"
    );
    let e = Target::load(&dir.path().join("absent.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("absent.toml: cannot read target file"), "{e}");
}

#[test]
fn from_credentials_builds_a_plain_target() {
    let t = Target::from_credentials(
        "127.0.0.1:2525".parse().unwrap(),
        ReadEndpoint::plain(ReadProtocol::Imap, "127.0.0.1:1143".parse().unwrap()),
        [("anna@kanzlei.test", "anna@kanzlei.test", "secret")],
    );
    assert_eq!(t.smtp.port, 2525);
    assert_eq!(t.mailboxes[0].read.port, 1143);
    assert_eq!(t.mailboxes[0].read.to_string(), "IMAP 127.0.0.1:1143");
}

const MASTER: &str = r#"
[smtp]
host = "127.0.0.1"
port = 2525

[read]
host = "127.0.0.1"
port = 1143
master_user = "admin"
master_password_env = "SMTP_PW"

[[mailbox]]
address = "user{01..25}@patente.test"

[[mailbox]]
address = "anna@kanzlei.test"
"#;

#[test]
fn master_user_needs_no_mailbox_passwords_and_ranges_expand() {
    let t = parse(MASTER).unwrap();
    assert_eq!(t.mailboxes.len(), 26);
    assert_eq!(t.mailboxes[0].address, "user01@patente.test");
    assert_eq!(t.mailboxes[24].address, "user25@patente.test");
    assert_eq!(t.mailboxes[24].user, "user25@patente.test");
    let m = t.mailboxes[25].master.as_ref().unwrap();
    assert_eq!(
        (m.user.as_str(), m.password.as_str()),
        ("admin", "smtp-secret")
    );
    assert_eq!(m.style, MasterStyle::Separator);
    assert_eq!(m.login_name("anna@kanzlei.test"), "anna@kanzlei.test*admin");
    assert_eq!(m.sasl_plain("anna"), b"anna\0admin\0smtp-secret");
    assert!(!format!("{m:?}").contains("smtp-secret"));

    let authzid = MASTER.replace(
        "master_user = \"admin\"",
        "master_user = \"admin\"\nmaster_login = \"authzid\"\nmaster_separator = \"%\"",
    );
    let m = parse(&authzid).unwrap().mailboxes[0]
        .master
        .clone()
        .unwrap();
    assert_eq!((m.style, m.separator.as_str()), (MasterStyle::Authzid, "%"));
}

#[test]
fn master_and_range_mistakes_name_file_line_and_column() {
    assert_eq!(
        err(&MASTER.replace("master_password_env = \"SMTP_PW\"\n", "")),
        "t.toml:9:15: [read] master_user needs master_password or master_password_env"
    );
    assert!(
        err(&MASTER.replace("master_user = \"admin\"\n", ""))
            .starts_with("t.toml:9:23: [read] master_* keys need master_user"),
        "{}",
        err(&MASTER.replace("master_user = \"admin\"\n", ""))
    );
    let bad_login = err(&MASTER.replace(
        "master_user = \"admin\"",
        "master_user = \"admin\"\nmaster_login = \"sudo\"",
    ));
    assert!(bad_login.starts_with("t.toml:10:16: "), "{bad_login}");
    assert!(bad_login.contains("separator"), "{bad_login}");
    // A bad address in a range: the range's position, the address named.
    let bad = err(&MASTER.replace("user{01..25}@patente.test", "user{01..03}.patente.test"));
    assert!(bad.starts_with("t.toml:13:11: "), "{bad}");
    let bad = err(&MASTER.replace("user{01..25}@patente.test", "user{01..}@patente.test"));
    assert!(
        bad.starts_with("t.toml:13:11: range 'user{01..}@patente.test'"),
        "{bad}"
    );
    // Two ranges that overlap: listed twice.
    let twice = err(&MASTER.replace("anna@kanzlei.test", "user2{0..9}@patente.test"));
    assert!(
        twice.contains("mailbox user20@patente.test is listed twice"),
        "{twice}"
    );
    // Without a master user, mailboxes still need a password.
    let no_pw = err(&MASTER
        .replace("master_user = \"admin\"\n", "")
        .replace("master_password_env = \"SMTP_PW\"\n", ""));
    assert!(
        no_pw.contains("mailbox user01@patente.test has no password"),
        "{no_pw}"
    );
}

#[test]
fn mx_keys_parse_and_a_bad_mx_host_names_its_position() {
    let t = parse(
        "[smtp]\nhost='127.0.0.1'\nport=25\nmx=true\nmx_port=2525\nmx_hosts=['127.0.0.3', { name = 'mx2.p.test', address = '127.0.0.4:2526' }]\n[read]\nhost='127.0.0.1'\nport=143\npassword='x'\n[[mailbox]]\naddress='a@p.test'\n",
    )
    .unwrap();
    assert!(t.smtp.mx);
    assert_eq!(t.smtp.mx_port, 2525);
    assert_eq!(t.smtp.mx_hosts[1].name, "mx2.p.test");
    assert_eq!(t.smtp.mx_hosts[1].port, Some(2526));
    let e = err(
        "[smtp]\nhost='127.0.0.1'\nport=25\nmx_hosts=['mx 2']\n[read]\nhost='127.0.0.1'\nport=143\npassword='x'\n[[mailbox]]\naddress='a@p.test'\n",
    );
    assert!(e.contains(":4:") && e.contains("mx_hosts"), "{e}");
}

#[test]
fn smtp_host_is_optional_only_when_sending_through_the_mx_hosts() {
    let read =
        "[read]\nhost='127.0.0.1'\nport=143\npassword='x'\n[[mailbox]]\naddress='a@p.test'\n";
    let t = parse(&format!("[smtp]\nmx=true\n{read}")).unwrap();
    assert!(t.smtp.mx);
    // MX hosts go to port 25 unless the file says otherwise.
    assert_eq!(t.smtp.mx_port, crate::mx::MX_PORT);
    assert_eq!(crate::mx::MX_PORT, 25);
    // mx_hosts without host and port: sent through them, as with mx = true.
    let t = parse(&format!("[smtp]\nmx_hosts=['127.0.0.3:2525']\n{read}")).unwrap();
    assert!(t.smtp.mx, "{:?}", t.smtp);
    // With a host as well, mx_hosts wait for --each-mx.
    let t = parse(&format!(
        "[smtp]\nhost='127.0.0.1'\nport=25\nmx_hosts=['127.0.0.3:2525']\n{read}"
    ))
    .unwrap();
    assert!(!t.smtp.mx);
    let e = err(&format!("[smtp]\ntls='none'\n{read}"));
    assert!(
        e.contains(":1:1: [smtp] needs host and port (or mx = true"),
        "{e}"
    );
    let e = err(&format!("[smtp]\nhost='127.0.0.1'\n{read}"));
    assert!(e.contains("[smtp] host needs a port"), "{e}");
}

/// The seed's chain: the firm's server read over IMAP, the provider's POP3 upstream.
const UPSTREAM: &str = r#"
[smtp]
host = "127.0.0.2"
port = 25

[read]
host = "127.0.0.3"
port = 143
password = "secret"

[[mailbox]]
address = "user{01..03}@patente.test"
upstream = { protocol = "pop3", host = "127.0.0.2", port = 110 }

[[mailbox]]
address = "anna@kanzlei.test"
[mailbox.upstream]
host = "127.0.0.2"
port = 143
user = "anna"
password_env = "BERND_PW"

[[mailbox]]
address = "bernd@kanzlei.test"
"#;

#[test]
fn upstream_reads_the_previous_hop_with_the_mailboxs_login_by_default() {
    let t = parse(UPSTREAM).unwrap();
    assert_eq!(t.mailboxes.len(), 5);
    let u = t.mailboxes[1].upstream.as_ref().unwrap();
    assert_eq!(u.read.to_string(), "POP3 127.0.0.2:110");
    assert_eq!(
        (u.user.as_str(), u.password.as_str()),
        ("user02@patente.test", "secret")
    );
    assert!(u.master.is_none());
    let a = t.mailboxes[3].upstream.as_ref().unwrap();
    assert_eq!(a.read.to_string(), "IMAP 127.0.0.2:143");
    assert_eq!(
        (a.user.as_str(), a.password.as_str()),
        ("anna", "bernd-secret")
    );
    assert!(t.mailboxes[4].upstream.is_none());
    // The reader of the upstream hop logs in there, as the same address.
    let at = t.mailboxes[3].at_upstream().unwrap();
    assert_eq!(
        (at.address.as_str(), at.user.as_str(), at.read.port),
        ("anna@kanzlei.test", "anna", 143)
    );
    assert!(at.upstream.is_none());
    assert!(t.mailboxes[4].at_upstream().is_none());
    // Passwords stay out of Debug output.
    assert!(!format!("{:?}", t.mailboxes[3]).contains("bernd-secret"));
    // An upstream master user needs no password per mailbox.
    let t = parse(&UPSTREAM.replace(
        "upstream = { protocol = \"pop3\", host = \"127.0.0.2\", port = 110 }",
        "upstream = { host = \"127.0.0.2\", port = 143, master_user = \"admin\", master_password = \"m\" }",
    ))
    .unwrap();
    let u = t.mailboxes[0].upstream.as_ref().unwrap();
    assert_eq!(
        u.master.as_ref().unwrap().login_name(&u.user),
        "user01@patente.test*admin"
    );
}

#[test]
fn upstream_mistakes_name_file_line_and_column() {
    assert_eq!(
        err(&UPSTREAM.replace("port = 110 }", "port = 110, pasword = \"x\" }")),
        "t.toml:13:65: unknown field `pasword`, expected one of `protocol`, `host`, `port`, `tls`, `user`, `password`, `password_env`, `master_user`, `master_password`, `master_password_env`, `master_login`, `master_separator`"
    );
    assert_eq!(
        err(&UPSTREAM.replace(
            "protocol = \"pop3\", host = \"127.0.0.2\", port = 110",
            "host = \"127.0.0.3\", port = 143"
        )),
        "t.toml:13:12: upstream of user01@patente.test: IMAP 127.0.0.3:143 is where the mailbox itself is read; the upstream is the previous hop (the provider's server its mail is collected from)"
    );
    assert_eq!(
        err(&UPSTREAM.replace("port = 110 }", "port = 110, user = \"x\" }")),
        "t.toml:13:12: upstream of user01@patente.test: a mailbox range cannot have one upstream user (each login defaults to the mailbox's)"
    );
    assert_eq!(
        err(&UPSTREAM.replace("password_env = \"BERND_PW\"", "password_env = \"NOPE\"")),
        "t.toml:21:16: upstream of anna@kanzlei.test: environment variable NOPE (password_env) is not set"
    );
    assert!(
        err(&UPSTREAM.replace("port = 110 }", "port = 110, master_login = \"authzid\" }"))
            .contains("upstream of user01@patente.test master_* keys need master_user"),
    );
}

#[test]
fn require_and_dkim_signing_keys_parse_and_are_checked_when_read() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/dkim");
    let src = "[probe]\nrequire = [\"dkim=pass\", \"DMARC=pass\"]\n[smtp]\nhost = \"127.0.0.1\"\nport = 25\nfrom = \"p@signer.test\"\n\
         dkim = { domain = \"Signer.test\", selector = \"s1\", key_file = \"signer.key.pem\" }\n\
         [read]\nhost = \"127.0.0.1\"\nport = 143\npassword = \"x\"\n[[mailbox]]\naddress = \"a@b.test\"\n"
        .to_string();
    let t = Target::parse_with(&src, "t.toml", &root, &env).unwrap();
    assert_eq!(
        t.require
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["dkim=pass", "dmarc=pass"]
    );
    let k = t.smtp.dkim.as_ref().unwrap();
    assert_eq!(
        (k.domain.as_str(), k.selector.as_str()),
        ("signer.test", "s1")
    );
    assert!(k.key_pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    assert!(
        !format!("{:?}", t.smtp).contains("BEGIN RSA"),
        "keys stay out of Debug"
    );
    let e = |s: &str| {
        Target::parse_with(s, "t.toml", &root, &env)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        e(&src.replace("\"DMARC=pass\"", "\"foo=bar\"")),
        "t.toml:2:11: [probe] require: 'foo=bar': unknown method 'foo' (spf, dkim or dmarc)"
    );
    assert!(e(&src.replace("signer.key.pem", "signer.pub.b64")).contains("[smtp] dkim: key_file "));
    assert!(
        e(&src.replace("signer.key.pem", "nope.pem"))
            .contains("[smtp] dkim: cannot read key_file ")
    );
    assert!(
        e(&src.replace("selector = \"s1\"", "selector = \"a b\"")).contains("is not a DNS label")
    );
    assert!(
        e(&src.replace("selector = \"s1\",", "selector = \"s1\", algo = \"rsa\","))
            .contains("unknown field `algo`")
    );
    // Without [smtp] dkim probes are not signed, and nothing is required.
    assert!(parse(GOOD).unwrap().smtp.dkim.is_none());
    assert!(parse(GOOD).unwrap().require.is_empty());
}
