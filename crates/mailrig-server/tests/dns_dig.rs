//! The world's DNS server against `dig` (Debian `bind9-dnsutils`; `make test`
//! installs it, a missing `dig` fails the test with a hint): MX/A/TXT/PTR
//! answers with the AA bit, NXDOMAIN, REFUSED, TCP, truncation and the retry
//! over TCP, the DNS faults (SERVFAIL, timeout, wrong records) added at
//! runtime, and the journal entry of every query.

use std::net::SocketAddr;
use std::process::Command;

use mailrig_core::JournalEvent;
use mailrig_core::fault::Stage;
use mailrig_server::MockServer;

const WORLD: &str = r#"
[[domain]]
name = "example.test"
mailboxes = ["alice", "bob"]
password = "secret"

[[domain]]
name = "shop.test"
mailboxes = ["orders"]
password = "secret"

[dns]
ttl = 120

[[dns.record]]
name = "example.test"
type = "TXT"
value = "v=spf1 ip4:127.0.0.1 -all"

[[dns.record]]
name = "_dmarc.example.test"
type = "TXT"
value = "v=DMARC1; p=reject; rua=mailto:dmarc@example.test"

[[dns.record]]
name = "shop.test"
type = "MX"
value = "20 backup.shop.test"

[[dns.record]]
name = "shop.test"
type = "MX"
value = "10 mx.shop.test"

[[dns.record]]
name = "backup.shop.test"
type = "A"
value = "127.0.0.3"

[[dns.record]]
name = "www.shop.test"
type = "CNAME"
value = "mx.shop.test"
"#;

fn dig_path() -> &'static str {
    for p in ["/usr/bin/dig", "/usr/local/bin/dig"] {
        if std::path::Path::new(p).exists() {
            return p;
        }
    }
    panic!("`dig` is not installed (Debian bind9-dnsutils): run scripts/install-test-deps.sh");
}

struct Dig {
    ok: bool,
    code: Option<i32>,
    out: String,
}

/// Runs dig against the server, off the runtime.
async fn dig(addr: SocketAddr, args: &[&str]) -> Dig {
    let mut cmd = Command::new(dig_path());
    cmd.arg(format!("@{}", addr.ip()))
        .arg("-p")
        .arg(addr.port().to_string())
        .args(["+time=2", "+tries=1", "+norecurse"])
        .args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("run dig");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Dig {
        ok: out.status.success(),
        code: out.status.code(),
        out: text,
    }
}

/// The header's status and flags, and the answer section's lines.
fn status(out: &str) -> &str {
    out.split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("<no header>")
}

fn flags(out: &str) -> Vec<String> {
    out.lines()
        .find_map(|l| l.strip_prefix(";; flags: "))
        .map(|l| {
            l.split(';')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn answers(out: &str) -> Vec<String> {
    let Some(section) = out.split(";; ANSWER SECTION:\n").nth(1) else {
        return Vec::new();
    };
    section
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

async fn start() -> MockServer {
    MockServer::builder()
        .scenario_toml(WORLD)
        .unwrap()
        .dns(Some(SocketAddr::from(([127, 0, 0, 1], 0))))
        .start()
        .await
        .unwrap()
}

fn dns_events(server: &MockServer) -> Vec<(Option<String>, JournalEvent)> {
    server
        .journal()
        .entries()
        .into_iter()
        .filter(|e| e.stage == Stage::Dns)
        .map(|e| (e.rule.as_deref().map(str::to_string), e.event))
        .collect()
}

#[tokio::test]
async fn answers_the_worlds_records_authoritatively() {
    let server = start().await;
    let a = server.dns_addr();
    let smtp_ip = server.smtp_addr().ip().to_string();

    let mx = dig(a, &["MX", "example.test"]).await;
    assert!(mx.ok, "{}", mx.out);
    assert_eq!(status(&mx.out), "NOERROR", "{}", mx.out);
    assert!(flags(&mx.out).contains(&"aa".to_string()), "{}", mx.out);
    assert!(
        !flags(&mx.out).contains(&"ra".to_string()),
        "not a resolver: {}",
        mx.out
    );
    assert_eq!(
        answers(&mx.out),
        ["example.test. 120 IN MX 10 mx.example.test."]
    );

    let host = dig(a, &["+short", "A", "mx.example.test"]).await;
    assert_eq!(
        host.out.trim(),
        smtp_ip,
        "the generated MX host is the SMTP listener"
    );

    let mut shop = answers(&dig(a, &["MX", "shop.test"]).await.out);
    shop.sort();
    assert_eq!(
        shop,
        [
            "shop.test. 120 IN MX 10 mx.shop.test.",
            "shop.test. 120 IN MX 20 backup.shop.test."
        ],
        "explicit MX records replace the generated one"
    );
    let backup = dig(a, &["+short", "A", "backup.shop.test"]).await;
    assert_eq!(backup.out.trim(), "127.0.0.3");

    let spf = dig(a, &["+short", "TXT", "example.test"]).await;
    assert_eq!(spf.out.trim(), "\"v=spf1 ip4:127.0.0.1 -all\"");
    let dmarc = dig(a, &["+short", "TXT", "_DMARC.Example.Test"]).await;
    assert!(dmarc.out.contains("v=DMARC1; p=reject"), "{}", dmarc.out);

    let ptr = dig(a, &["+short", "-x", &smtp_ip]).await;
    assert_eq!(ptr.out.trim(), "mx.example.test.");

    let cname = answers(&dig(a, &["A", "www.shop.test"]).await.out);
    assert_eq!(cname.len(), 2, "{cname:?}");
    assert!(cname[0].contains("CNAME mx.shop.test."), "{cname:?}");

    let tcp = dig(a, &["+tcp", "MX", "example.test"]).await;
    assert!(
        tcp.ok && flags(&tcp.out).contains(&"aa".to_string()),
        "{}",
        tcp.out
    );
    assert_eq!(answers(&tcp.out).len(), 1, "{}", tcp.out);

    let events = dns_events(&server);
    let tcp_entry = events.iter().find(
        |(_, e)| matches!(e, JournalEvent::Dns(d) if d.transport == "tcp" && d.qtype == "MX"),
    );
    assert!(tcp_entry.is_some(), "{events:?}");
    assert!(server.state().dns.queries("NOERROR", "udp") >= 8);
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_names_are_nxdomain_names_outside_are_refused() {
    let server = start().await;
    let a = server.dns_addr();
    let nx = dig(a, &["A", "nobody.example.test"]).await;
    assert_eq!(status(&nx.out), "NXDOMAIN", "{}", nx.out);
    assert!(flags(&nx.out).contains(&"aa".to_string()), "{}", nx.out);
    assert!(
        nx.out.contains("IN SOA") || nx.out.contains("\tSOA\t"),
        "{}",
        nx.out
    );

    let nodata = dig(a, &["AAAA", "example.test"]).await;
    assert_eq!(status(&nodata.out), "NOERROR", "{}", nodata.out);
    assert!(answers(&nodata.out).is_empty(), "{}", nodata.out);

    let refused = dig(a, &["A", "example.org"]).await;
    assert_eq!(status(&refused.out), "REFUSED", "{}", refused.out);
    assert!(
        !flags(&refused.out).contains(&"aa".to_string()),
        "{}",
        refused.out
    );

    let events = dns_events(&server);
    let codes: Vec<(String, String)> = events
        .iter()
        .filter_map(|(_, e)| match e {
            JournalEvent::Dns(d) => Some((d.qname.clone(), d.rcode.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        codes,
        [
            ("nobody.example.test".to_string(), "NXDOMAIN".to_string()),
            ("example.test".to_string(), "NOERROR".to_string()),
            ("example.org".to_string(), "REFUSED".to_string()),
        ]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_truncate_fault_forces_the_retry_over_tcp() {
    let server = start().await;
    let a = server.dns_addr();
    server
        .add_fault_toml(
            "name = \"mx-over-tcp-only\"\nstage = \"dns\"\naction = \"truncate\"\nqname = \"example.test\"\nqtype = \"MX\"",
        )
        .unwrap();
    // +ignore: dig keeps the truncated UDP answer.
    let udp = dig(a, &["+ignore", "MX", "example.test"]).await;
    assert!(flags(&udp.out).contains(&"tc".to_string()), "{}", udp.out);
    assert!(answers(&udp.out).is_empty(), "{}", udp.out);
    // Without it, dig asks again over TCP and gets the MX.
    let retry = dig(a, &["MX", "example.test"]).await;
    assert!(retry.out.contains("retrying in TCP mode"), "{}", retry.out);
    assert_eq!(
        answers(&retry.out),
        ["example.test. 120 IN MX 10 mx.example.test."]
    );
    let events = dns_events(&server);
    let seen: Vec<(Option<String>, String, bool)> = events
        .into_iter()
        .filter_map(|(rule, e)| match e {
            JournalEvent::Dns(d) => Some((rule, d.transport, d.truncated)),
            _ => None,
        })
        .collect();
    let rule = Some("mx-over-tcp-only".to_string());
    assert_eq!(
        seen,
        [
            (rule.clone(), "udp".into(), true),
            (rule.clone(), "udp".into(), true),
            (rule, "tcp".into(), false),
        ]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn long_values_are_split_and_long_answers_truncated_over_udp() {
    let mut world = WORLD.to_string();
    for i in 0..12 {
        world.push_str(&format!(
            "[[dns.record]]\nname = \"big.example.test\"\ntype = \"TXT\"\nvalue = \"{}{i:02}\"\n",
            "x".repeat(60)
        ));
    }
    world.push_str(&format!(
        "[[dns.record]]\nname = \"key.example.test\"\ntype = \"TXT\"\nvalue = \"v=DKIM1; p={}\"\n",
        "A".repeat(300)
    ));
    let server = MockServer::builder()
        .scenario_toml(&world)
        .unwrap()
        .dns(Some(SocketAddr::from(([127, 0, 0, 1], 0))))
        .start()
        .await
        .unwrap();
    let a = server.dns_addr();
    // A DKIM-sized value (over 255 bytes) goes out as several character-strings.
    let key = dig(a, &["+short", "TXT", "key.example.test"]).await;
    let parts: Vec<&str> = key.out.trim().split("\" \"").collect();
    assert_eq!(parts.len(), 2, "{}", key.out);
    assert_eq!(
        key.out.trim().trim_matches('"').replace("\" \"", ""),
        format!("v=DKIM1; p={}", "A".repeat(300))
    );
    let udp = dig(a, &["+noedns", "+ignore", "TXT", "big.example.test"]).await;
    assert!(flags(&udp.out).contains(&"tc".to_string()), "{}", udp.out);
    let full = dig(a, &["+noedns", "TXT", "big.example.test"]).await;
    assert_eq!(answers(&full.out).len(), 12, "{}", full.out);
    server.shutdown().await;
}

#[tokio::test]
async fn servfail_timeout_and_wrong_records_come_from_fault_rules() {
    let server = start().await;
    let a = server.dns_addr();
    server
        .add_fault_toml("name = \"resolver-broken\"\nstage = \"dns\"\naction = \"servfail\"\nqname = \"shop.test\"")
        .unwrap();
    server
        .add_fault_toml("name = \"dns-down\"\nstage = \"dns\"\naction = \"timeout\"\nqname = \"*.shop.test\"\nqtype = \"A\"")
        .unwrap();
    server
        .add_fault_toml(
            "name = \"wrong-mx\"\nstage = \"dns\"\naction = \"answer\"\nqname = \"example.test\"\nqtype = \"MX\"\nanswer = [\"10 mx.old-provider.test\"]",
        )
        .unwrap();
    server
        .add_fault_toml(
            "name = \"stale-a\"\nstage = \"dns\"\naction = \"answer\"\nqname = \"mx.example.test\"\nqtype = \"A\"\nanswer = [\"127.0.0.99\"]",
        )
        .unwrap();

    let sf = dig(a, &["MX", "shop.test"]).await;
    assert_eq!(status(&sf.out), "SERVFAIL", "{}", sf.out);

    let to = dig(a, &["+time=1", "+tries=1", "A", "mx.shop.test"]).await;
    assert!(!to.ok, "{}", to.out);
    assert_eq!(
        to.code,
        Some(9),
        "dig exits 9 when no reply came: {}",
        to.out
    );
    assert!(to.out.contains("timed out"), "{}", to.out);

    let wrong = dig(a, &["+short", "MX", "example.test"]).await;
    assert_eq!(wrong.out.trim(), "10 mx.old-provider.test.");
    let stale = dig(a, &["+short", "A", "mx.example.test"]).await;
    assert_eq!(stale.out.trim(), "127.0.0.99");

    // Disabled at runtime, the world's records are back.
    assert!(server.set_fault_enabled("wrong-mx", false));
    let back = dig(a, &["+short", "MX", "example.test"]).await;
    assert_eq!(back.out.trim(), "10 mx.example.test.");

    let events = dns_events(&server);
    let by_rule: Vec<(Option<String>, String)> = events
        .into_iter()
        .filter_map(|(rule, e)| match e {
            JournalEvent::Dns(d) => Some((rule, d.rcode)),
            _ => None,
        })
        .collect();
    assert_eq!(
        by_rule,
        [
            (Some("resolver-broken".into()), "SERVFAIL".into()),
            (Some("dns-down".into()), "none".into()),
            (Some("wrong-mx".into()), "NOERROR".into()),
            (Some("stale-a".into()), "NOERROR".into()),
            (None, "NOERROR".into()),
        ]
    );
    assert_eq!(server.state().dns.queries("none", "udp"), 1);
    server.shutdown().await;
}
