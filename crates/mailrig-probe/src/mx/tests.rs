use super::*;
use crate::report::Cleanup;
use crate::target::{MxHost, ReadEndpoint, ReadProtocol};

fn target(addresses: &[&str]) -> Target {
    Target::from_credentials(
        "127.0.0.1:2525".parse().unwrap(),
        ReadEndpoint::plain(ReadProtocol::Imap, "127.0.0.1:1143".parse().unwrap()),
        addresses.iter().map(|a| (*a, *a, "secret")),
    )
}

fn rec(domain: Option<&str>, preference: u16, name: &str, addr: &str) -> MxRecord {
    MxRecord {
        domain: domain.map(str::to_string),
        preference,
        name: name.to_string(),
        addr: addr.parse().unwrap(),
    }
}

#[test]
fn every_mailbox_goes_through_every_mx_of_its_domain_in_preference_order() {
    let t = target(&["a@p.test", "b@k.test", "c@p.test"]);
    let routes = plan(
        &t,
        &[
            rec(Some("p.test"), 20, "mx2.p.test", "127.0.0.3:25"),
            rec(Some("p.test"), 10, "mx1.p.test", "127.0.0.2:25"),
            // one host that is MX for both domains is one route
            rec(Some("k.test"), 10, "mx1.p.test", "127.0.0.2:25"),
        ],
    );
    assert_eq!(routes.len(), 2);
    assert_eq!(routes[0].name, "mx1.p.test");
    assert_eq!(routes[0].mailboxes, vec![0, 1, 2]);
    assert_eq!(routes[1].name, "mx2.p.test");
    assert_eq!(routes[1].mailboxes, vec![0, 2]);
}

#[test]
fn hosts_from_the_file_serve_every_domain() {
    let t = target(&["a@p.test", "b@k.test"]);
    let routes = plan(
        &t,
        &[
            rec(None, 0, "mx1", "127.0.0.2:25"),
            rec(None, 1, "mx2", "127.0.0.3:25"),
        ],
    );
    assert_eq!(routes.len(), 2);
    assert!(routes.iter().all(|r| r.mailboxes == vec![0, 1]));
}

fn result(address: &str, verdict: Verdict) -> MailboxResult {
    MailboxResult {
        address: address.to_string(),
        domain: domain_of(address),
        verdict,
        token: String::new(),
        latency_ms: None,
        smtp: None,
        found_in: vec![],
        copies: 0,
        differences: vec![],
        reason: String::new(),
        read_via: String::new(),
        folders: vec![],
        via: None,
        hops: vec![],
        auth: None,
    }
}

fn report(rows: Vec<MailboxResult>) -> Report {
    Report::new(
        RunInfo {
            run_id: "r".into(),
            target: "t".into(),
            started_at: String::new(),
            duration_ms: 0,
            timeout_ms: 1000,
            timed_out: false,
        },
        rows,
        Cleanup {
            deleted: 1,
            ..Cleanup::default()
        },
    )
}

#[test]
fn merged_rows_name_their_mx_and_an_unreachable_mx_defers_its_mailboxes() {
    let t = target(&["a@p.test", "b@p.test"]);
    let routes = vec![
        MxRoute {
            name: "mx1.p.test".into(),
            addr: "127.0.0.2:25".parse().unwrap(),
            mailboxes: vec![0, 1],
        },
        MxRoute {
            name: "mx2.p.test".into(),
            addr: "127.0.0.3:25".parse().unwrap(),
            mailboxes: vec![0, 1],
        },
        MxRoute {
            name: "mx3.p.test".into(),
            addr: "127.0.0.4:25".parse().unwrap(),
            mailboxes: vec![1],
        },
    ];
    let merged = merge(
        &t,
        &routes,
        vec![
            RouteOutcome::Probed(Box::new(report(vec![
                result("a@p.test", Verdict::Delivered),
                result("b@p.test", Verdict::Delivered),
            ]))),
            RouteOutcome::Probed(Box::new(report(vec![
                result("a@p.test", Verdict::Missing),
                result("b@p.test", Verdict::Missing),
            ]))),
            RouteOutcome::Unreachable("connection refused".into()),
        ],
        String::new(),
    );
    let rows: Vec<(String, String)> = merged
        .mailboxes
        .iter()
        .map(|m| (m.address.clone(), m.verdict_label()))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("a@p.test".into(), "delivered via mx1.p.test".into()),
            ("a@p.test".into(), "missing via mx2.p.test".into()),
            ("b@p.test".into(), "delivered via mx1.p.test".into()),
            ("b@p.test".into(), "missing via mx2.p.test".into()),
            ("b@p.test".into(), "deferred via mx3.p.test".into()),
        ]
    );
    assert_eq!(merged.summary.total, 5);
    assert_eq!(merged.summary.counts.missing, 2);
    assert_eq!(merged.exit_code(), 1);
    assert_eq!(merged.cleanup.deleted, 2);
    assert!(merged.mailboxes[4].reason.contains("connection refused"));
    assert!(merged.notes[0].contains("mx2.p.test (127.0.0.3:25, 2 mailbox(es))"));
}

#[test]
fn mx_host_entries_parse_or_say_what_is_wrong() {
    let h = MxHost::parse("mx2.Patente.test").unwrap();
    assert_eq!(
        (h.name.as_str(), h.ip, h.port),
        ("mx2.patente.test", None, None)
    );
    let h = MxHost::parse("mx2.patente.test:2525").unwrap();
    assert_eq!(h.port, Some(2525));
    let h = MxHost::parse("127.0.0.3:2525").unwrap();
    assert_eq!(h.ip, Some("127.0.0.3".parse().unwrap()));
    assert_eq!(h.port, Some(2525));
    let h = MxHost::parse("127.0.0.3").unwrap();
    assert_eq!(h.port, None);
    assert!(MxHost::parse("mx2:0").unwrap_err().contains("port"));
    assert!(
        MxHost::parse("mx 2")
            .unwrap_err()
            .contains("not a host name")
    );
    assert!(MxHost::parse("").is_err());
}

fn progress(phase: Phase, total: usize, done: usize, known: usize) -> Option<Progress> {
    Some(Progress {
        phase,
        total,
        done,
        known,
        elapsed: Duration::from_millis(100 * total as u64),
    })
}

#[test]
fn progress_of_every_mx_run_is_one_line_summed_over_the_runs() {
    assert!(combine(&[None, None]).is_none());
    // A run not heard from yet keeps the line at logging in.
    let c = combine(&[progress(Phase::Sending, 6, 3, 0), None]).unwrap();
    assert_eq!((c.phase, c.total, c.done), (Phase::Connecting, 6, 6));
    // The run furthest behind names the phase; runs past it count as done.
    let c = combine(&[
        progress(Phase::Waiting, 6, 6, 4),
        progress(Phase::Sending, 6, 2, 0),
    ])
    .unwrap();
    assert_eq!(
        (c.phase, c.total, c.done, c.known),
        (Phase::Sending, 12, 8, 4)
    );
    assert_eq!(c.elapsed, Duration::from_millis(600));
    let c = combine(&[
        progress(Phase::Waiting, 6, 6, 4),
        progress(Phase::Waiting, 2, 2, 1),
    ])
    .unwrap();
    assert_eq!((c.phase, c.total, c.known), (Phase::Waiting, 8, 5));
}
