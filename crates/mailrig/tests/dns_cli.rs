//! `mailrig serve --dns ADDR` as a user runs it: the banner names the DNS
//! address, `dig` gets the scenario's records over UDP and TCP, a DNS fault
//! added through the HTTP API changes the answer and shows in the journal
//! and `/metrics`; `mailrig scenario check` names the place of a bad `[dns]`
//! record. Needs `dig` and `curl` (scripts/install-test-deps.sh).

mod support;

use std::process::Command;

use support::BIN;
use support::serve::Serve;

const SCENARIO: &str = r#"
[[domain]]
name = "example.test"
mailboxes = ["alice"]
password = "secret"

[[dns.record]]
name = "sel._domainkey.example.test"
type = "TXT"
value = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
"#;

fn tool(name: &str) -> String {
    for dir in ["/usr/bin", "/usr/local/bin"] {
        let p = format!("{dir}/{name}");
        if std::path::Path::new(&p).exists() {
            return p;
        }
    }
    panic!("`{name}` is not installed: run scripts/install-test-deps.sh (dig: bind9-dnsutils)");
}

fn run(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(tool(program))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), s)
}

fn dig(dns: &str, args: &[&str]) -> String {
    let (ip, port) = dns.rsplit_once(':').expect("ip:port");
    let mut all = vec![format!("@{ip}"), "-p".into(), port.into()];
    all.extend(["+time=2", "+tries=1"].map(String::from));
    all.extend(args.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    run("dig", &refs).1
}

#[test]
fn serve_dns_answers_the_scenario_and_takes_faults_at_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dns.toml");
    std::fs::write(&file, SCENARIO).unwrap();
    let serve = Serve::start(
        &[],
        &["--scenario", file.to_str().unwrap(), "--dns", "127.0.0.1:0"],
    );
    let dns = serve
        .banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("DNS "))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no DNS line in the banner:\n{}", serve.banner))
        .to_string();

    assert_eq!(
        dig(&dns, &["+short", "MX", "example.test"]).trim(),
        "10 mx.example.test."
    );
    assert_eq!(
        dig(&dns, &["+short", "+tcp", "A", "mx.example.test"]).trim(),
        serve.smtp.ip().to_string()
    );
    let dkim = dig(&dns, &["+short", "TXT", "sel._domainkey.example.test"]);
    assert!(dkim.contains("v=DKIM1; k=ed25519"), "{dkim}");

    let http = format!("http://{}", serve.http);
    let (ok, added) = run(
        "curl",
        &[
            "-sS",
            "-f",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
            r#"{"name":"mx-servfail","stage":"dns","action":"servfail","qtype":"MX"}"#,
            &format!("{http}/api/v1/faults"),
        ],
    );
    assert!(ok, "{added}");
    let sf = dig(&dns, &["MX", "example.test"]);
    assert!(sf.contains("status: SERVFAIL"), "{sf}");

    let (_, journal) = run("curl", &["-sS", &format!("{http}/api/v1/journal")]);
    let j: serde_json::Value = serde_json::from_str(&journal).expect("journal JSON");
    let last = j["entries"]
        .as_array()
        .and_then(|e| e.last())
        .cloned()
        .expect("a journal entry");
    assert_eq!(last["stage"], "dns", "{last}");
    assert_eq!(last["rule"], "mx-servfail", "{last}");
    assert_eq!(last["event"]["kind"], "dns", "{last}");
    assert_eq!(last["event"]["rcode"], "SERVFAIL", "{last}");
    assert_eq!(last["event"]["qname"], "example.test", "{last}");

    let (_, metrics) = run("curl", &["-sS", &format!("{http}/metrics")]);
    assert!(
        metrics.contains("mailrig_dns_queries_total{rcode=\"SERVFAIL\",transport=\"udp\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mailrig_dns_queries_total{rcode=\"NOERROR\",transport=\"tcp\"} 1"),
        "{metrics}"
    );
    serve.stop();
}

#[test]
fn scenario_check_names_the_place_of_a_bad_dns_record() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[[domain]]\nname = \"example.test\"\nmailboxes = [\"a\"]\npassword = \"p\"\n\n[[dns.record]]\nname = \"example.test\"\ntype = \"MX\"\nvalue = \"10 nowhere.example.test\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["scenario", "check", file.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "{}:9:9: [dns]: MX of 'example.test' points at 'nowhere.example.test', which has no A or AAAA record",
            file.display()
        )),
        "{err}"
    );
}
