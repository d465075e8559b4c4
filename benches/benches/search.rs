//! The message list and search of `GET /api/v1/messages` at 100,000 stored
//! messages, without HTTP: the search index (mailrig_server::search) over a
//! memory store of 1,000 mailboxes in 4 domains, holding messages of the
//! shapes tests send (plain text, quoted-printable, multipart/alternative
//! with HTML, HTML only, one in fifty with a 16 KiB attachment; bodies of
//! 200 B to 4 KiB). Each benchmark is one query as the endpoint runs it:
//! sync with the store (nothing new), scan, and the first page of 50.
//!
//! Setup prints what building the index took (time, entry bytes per
//! message, growth of the resident set). `MESSAGES=N` changes the count.
//!
//! ```text
//! cargo bench -p mailrig-benches --bench search
//! ```

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use chrono::{Duration, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use mailrig_core::store::NewMessage;
use mailrig_core::world::MailboxId;
use mailrig_core::{Envelope, Scenario, Store};
use mailrig_server::search::{Filter, SearchIndex};

const WORLD: &str = "
[[domain]]
name = 'kanzlei.test'
mailboxes = ['u001..u250']
password = 'secret'
[[domain]]
name = 'patente.test'
mailboxes = ['u001..u250']
password = 'secret'
[[domain]]
name = 'firma.test'
mailboxes = ['u001..u250']
password = 'secret'
[[domain]]
name = 'extern.test'
mailboxes = ['u001..u250']
password = 'secret'
";

const WORDS: &[&str] = &[
    "vertrag",
    "frist",
    "patent",
    "rechnung",
    "termin",
    "akte",
    "mandant",
    "gericht",
    "anlage",
    "schreiben",
    "bitte",
    "danke",
    "heute",
    "morgen",
    "woche",
    "prüfung",
    "Grüße",
    "Ärger",
    "invoice",
    "meeting",
    "report",
    "status",
    "release",
    "deploy",
    "build",
    "ticket",
    "review",
    "customer",
];

/// A small deterministic generator (xorshift), so every run indexes the same mail.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn words(&mut self, n: usize) -> String {
        let mut s = String::new();
        for i in 0..n {
            if i > 0 {
                s.push(if i % 12 == 0 { '\n' } else { ' ' });
            }
            s.push_str(WORDS[self.below(WORDS.len())]);
        }
        s
    }
}

/// Message `i` to `to`, CRLF line ends.
fn message(rng: &mut Rng, i: usize, to: &str) -> String {
    let from = format!("sender{}@extern{}.test", rng.below(200), rng.below(5));
    let subject = format!("{} {} #{i}", rng.words(3), WORDS[i % WORDS.len()]);
    let body_words = 30 + rng.below(600);
    let mut m = format!(
        "From: Absender {i} <{from}>\nTo: {to}\nSubject: {subject}\nMessage-ID: <m{i}@bench.test>\n\
         Date: Mon, 1 Dec 2026 10:00:00 +0000\nX-Case: {}-{}\nMIME-Version: 1.0\n",
        rng.below(10_000),
        WORDS[rng.below(WORDS.len())]
    );
    match i % 10 {
        0..=4 => m.push_str(&format!(
            "Content-Type: text/plain; charset=utf-8\n\n{}\n",
            rng.words(body_words)
        )),
        5 | 6 => m.push_str(&format!(
            "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n{}\n",
            rng.words(body_words).replace('ü', "=C3=BC").replace('ß', "=C3=9F")
        )),
        7 | 8 => {
            let text = rng.words(body_words / 2);
            m.push_str(&format!(
                "Content-Type: multipart/alternative; boundary=alt\n\n--alt\nContent-Type: text/plain; charset=utf-8\n\n{text}\n\
                 --alt\nContent-Type: text/html; charset=utf-8\n\n<html><body><p>{}</p></body></html>\n--alt--\n",
                text.replace('\n', "</p><p>")
            ));
        }
        _ => m.push_str(&format!(
            "Content-Type: text/html; charset=utf-8\n\n<html><body><h1>{}</h1><p>{}</p></body></html>\n",
            rng.words(4),
            rng.words(body_words)
        )),
    }
    if i.is_multiple_of(50) {
        // A 16 KiB attachment after the body.
        let head = m
            .split_once("\n\n")
            .map(|(h, _)| h.to_string())
            .unwrap_or_default();
        let body = m
            .split_once("\n\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        let head = head
            .lines()
            .filter(|l| !l.starts_with("Content-"))
            .collect::<Vec<_>>()
            .join("\n");
        let line = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\n";
        m = format!(
            "{head}\nContent-Type: multipart/mixed; boundary=mix\n\n--mix\nContent-Type: text/plain; charset=utf-8\n\n{body}\n\
             --mix\nContent-Type: application/pdf; name=akte.pdf\nContent-Disposition: attachment; filename=akte.pdf\n\
             Content-Transfer-Encoding: base64\n\n{}--mix--\n",
            line.repeat(16 * 1024 / 76 * 4 / 3)
        );
    }
    m.replace('\n', "\r\n")
}

/// A field of /proc/self/status in bytes (`VmRSS`).
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The store of `n` messages round-robin over the world's mailboxes, one second apart.
fn filled_store(n: usize) -> (Store, usize) {
    let scenario = Scenario::parse(WORLD, "bench").unwrap();
    let store = Store::memory(&scenario.world);
    let boxes = scenario.world.mailboxes.len();
    let start = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
    let mut rng = Rng(0x5eed_1234_abcd);
    let mut bytes = 0;
    for i in 0..n {
        let id = MailboxId((i % boxes) as u32);
        let to = scenario.world.mailbox(id).address.to_string();
        let raw = message(&mut rng, i, &to);
        bytes += raw.len();
        let at = start + Duration::seconds(i as i64);
        let envelope = Envelope {
            mail_from: format!("bounce{}@extern.test", i % 100).into(),
            rcpt_to: vec![to].into(),
            peer: "127.0.0.1:40000".into(),
            helo: "bench".into(),
            auth_user: None,
            tls: false,
            received_at: at,
            auth: None,
        };
        store
            .deliver(
                id,
                NewMessage::received(Bytes::from(raw), Arc::new(envelope)),
            )
            .unwrap();
    }
    (store, bytes)
}

fn filter(field: &str, value: &str) -> Filter {
    let v = || Some(value.to_string());
    let mut f: [Option<String>; 8] = Default::default();
    let i = [
        "to", "from", "subject", "mailbox", "domain", "text", "header", "q",
    ]
    .iter()
    .position(|n| *n == field)
    .expect("a filter name");
    f[i] = v();
    let [to, from, subject, mailbox, domain, text, header, q] = f;
    Filter::new(
        to, from, subject, mailbox, domain, text, header, q, None, None,
    )
    .unwrap()
}

fn search(c: &mut Criterion) {
    let n: usize = std::env::var("MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let (store, bytes) = filled_store(n);
    let index = SearchIndex::new();
    let before = rss();
    let t = Instant::now();
    index.sync(&store);
    let took = t.elapsed();
    let grown = rss().saturating_sub(before);
    let size = index.size();
    println!(
        "search index of {n} messages ({:.1} MiB raw, {:.0} B a message): built in {:.2} s ({:.1} µs a message); \
         entries {:.0} B a message, trigram postings {:.0} B a message, resident set grew {:.0} B a message \
         ({:.2} × the raw bytes, {:.0} MiB)",
        bytes as f64 / 1048576.0,
        bytes as f64 / n as f64,
        took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / n as f64,
        size.entry_bytes as f64 / n as f64,
        size.posting_bytes as f64 / n as f64,
        grown as f64 / n as f64,
        grown as f64 / bytes as f64,
        grown as f64 / 1048576.0,
    );

    let start = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
    let window = Filter::new(
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        Some(start + Duration::seconds(n as i64 / 2)),
        Some(start + Duration::seconds(n as i64 / 2 + 3600)),
    )
    .unwrap();
    let cases: Vec<(&str, Filter, usize)> = vec![
        ("list_first_page", Filter::default(), 0),
        ("list_last_page", Filter::default(), n.saturating_sub(50)),
        ("subject", filter("subject", "#4711"), 0),
        ("from", filter("from", "sender7@extern3.test"), 0),
        ("to", filter("to", "u042@patente.test"), 0),
        ("mailbox", filter("mailbox", "u042@patente.test"), 0),
        ("domain", filter("domain", "firma.test"), 0),
        ("body_text_found", filter("text", "prüfung"), 0),
        ("body_text_missing", filter("text", "zitronenfalter"), 0),
        ("header", filter("header", "X-Case: 4711-"), 0),
        ("free_text_q", filter("q", "absender 4711"), 0),
        ("date_window", window, 0),
    ];
    let mut group = c.benchmark_group(format!("search_{}k", n / 1000));
    for (name, f, offset) in &cases {
        let found = index.search(&store, f, *offset, 50);
        println!("{name}: {} of {n} match", found.total);
        group.bench_function(*name, |b| {
            b.iter(|| {
                let found = index.search(&store, f, *offset, 50);
                // The page as the endpoint takes it: each hit fetched from the store.
                found.hits.iter().filter_map(|h| h.fetch(&store)).count()
            })
        });
    }
    // A delivery, then the first page: the sync takes the new message in.
    let mut rng = Rng(7);
    let mut i = n;
    group.bench_function("deliver_then_list_first_page", |b| {
        b.iter(|| {
            i += 1;
            let to = "u001@kanzlei.test";
            let raw = message(&mut rng, i, to);
            let envelope = Envelope {
                mail_from: "x@extern.test".into(),
                rcpt_to: vec![to.into()].into(),
                peer: "127.0.0.1:40000".into(),
                helo: "bench".into(),
                auth_user: None,
                tls: false,
                received_at: Utc::now(),
                auth: None,
            };
            store
                .deliver(
                    MailboxId(0),
                    NewMessage::received(Bytes::from(raw), Arc::new(envelope)),
                )
                .unwrap();
            index.search(&store, &Filter::default(), 0, 50).hits.len()
        })
    });
    group.finish();
}

criterion_group!(benches, search);
criterion_main!(benches);
