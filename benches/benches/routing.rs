//! Routing in a large world: `routing::resolve` for one recipient, in a world of 100,000 mailboxes
//! (`u000001..u100000` on one domain, plus an alias and a domain that rejects unknown recipients), for
//! each kind of answer the SMTP server asks for at RCPT time. Also the cost of building that world from
//! its scenario text, which `mailrig serve` pays once at start-up.
//!
//! `cargo bench -p mailrig-benches --bench routing`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mailrig_core::Scenario;
use mailrig_core::address::Address;
use mailrig_core::routing::{RouteDecision, resolve};

const MAILBOXES: usize = 100_000;

const BIG_WORLD: &str = r#"
[[domain]]
name = "big.test"
mailboxes = ["u000001..u100000"]
password = "secret"
[domain.aliases]
team = ["u000001", "u050000", "u100000"]

[[domain]]
name = "small.test"
mailboxes = ["anna"]
password = "secret"
"#;

/// 1024 addresses spread over the whole range, so lookups do not all hit one cache line.
fn spread(make: impl Fn(usize) -> String) -> Vec<Address> {
    (0..1024)
        .map(|i| Address::parse(&make(1 + i * (MAILBOXES / 1024))).unwrap())
        .collect()
}

fn routing(c: &mut Criterion) {
    let world = Scenario::parse(BIG_WORLD, "big-world").unwrap().world;
    assert_eq!(world.mailboxes.len(), MAILBOXES + 1);

    let mut group = c.benchmark_group("route_100k_mailboxes");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(1));

    let cases: [(&str, Vec<Address>); 4] = [
        ("mailbox", spread(|n| format!("u{n:06}@big.test"))),
        (
            "mailbox_mixed_case",
            spread(|n| format!("U{n:06}@Big.Test")),
        ),
        (
            "unknown_mailbox",
            spread(|n| format!("nobody{n}@small.test")),
        ),
        (
            "foreign_domain",
            spread(|n| format!("u{n:06}@elsewhere.test")),
        ),
    ];
    for (name, addresses) in &cases {
        let expect_deliver = name.starts_with("mailbox");
        assert_eq!(
            matches!(resolve(&world, &addresses[0]), RouteDecision::Deliver(_)),
            expect_deliver,
            "{name}"
        );
        group.bench_function(*name, |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & 1023;
                black_box(resolve(&world, black_box(&addresses[i])))
            });
        });
    }
    let alias = Address::parse("team@big.test").unwrap();
    assert!(matches!(resolve(&world, &alias), RouteDecision::Deliver(t) if t.len() == 3));
    group.bench_function("alias_to_3", |b| {
        b.iter(|| black_box(resolve(&world, black_box(&alias))))
    });
    group.finish();

    let mut group = c.benchmark_group("world_100k_mailboxes");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("parse_scenario", |b| {
        b.iter(|| black_box(Scenario::parse(black_box(BIG_WORLD), "big-world").unwrap()))
    });
    group.finish();
}

criterion_group!(benches, routing);
criterion_main!(benches);
