use super::*;
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

#[test]
fn the_note_names_every_mx_and_how_many_mailboxes_go_through_it() {
    let routes = vec![
        MxRoute {
            name: "mx1.p.test".into(),
            addr: "127.0.0.2:25".parse().unwrap(),
            mailboxes: vec![0, 1],
        },
        MxRoute {
            name: "mx2.p.test".into(),
            addr: "127.0.0.3:25".parse().unwrap(),
            mailboxes: vec![1],
        },
    ];
    assert_eq!(
        route_note(&routes),
        "each MX: one probe per mailbox through mx1.p.test (127.0.0.2:25, 2 mailbox(es)), mx2.p.test (127.0.0.3:25, 1 mailbox(es))"
    );
}
