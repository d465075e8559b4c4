//! Tests of rule parsing, selectors, counters, stateful actions and determinism.

use super::*;
use crate::scenario::Scenario;

const WORLD: &str = r#"
[[domain]]
name = "kanzlei.test"
mailboxes = ["anna", "bernd", "clara"]
password = "secret"
[[domain]]
name = "patente.test"
mailboxes = ["user01..user25"]
password = "secret"
"#;

fn scenario(faults: &str) -> Result<Scenario, String> {
    Scenario::parse(&format!("{WORLD}{faults}"), "f.toml").map_err(|e| e.to_string())
}

fn facts_for<'a>(w: &'a World, addr: &'a str) -> Facts<'a> {
    Facts {
        mailbox: w.mailbox_by_address(addr),
        domain: addr.split('@').nth(1),
        rcpt: Some(addr),
        sender: Some("s@extern.test"),
        client: Some("127.0.0.1".parse().unwrap()),
        user: None,
        ..Facts::default()
    }
}

#[test]
fn seed_incident_drops_23_of_25() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/catalog/kanzlei-2-of-25.toml");
    let s = Scenario::load(std::path::Path::new(path)).unwrap();
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    let w = &s.world;
    let mut dropped = Vec::new();
    for m in &w.mailboxes {
        let addr = m.address.key();
        let fired = s.faults.decide(Stage::Route, &facts_for(w, &addr));
        if fired.iter().any(|f| f.action == Action::Drop) {
            dropped.push(addr);
        }
    }
    assert_eq!(dropped.len(), 23);
    assert!(!dropped.iter().any(|a| a.starts_with("user01@")
        || a.starts_with("user02@")
        || a.ends_with("kanzlei.test")));
    assert_eq!(s.faults.rule("patente-only-2-of-25").unwrap().fired(), 23);
}

#[test]
fn selector_ranges_use_the_one_range_syntax() {
    // Both spellings of crate::range, with the domain after the range.
    for pattern in ["user{20..22}@patente.test", "user20..user22@patente.test"] {
        let s = scenario(&format!(
            "[[fault]]\nstage='rcpt'\naction='reject'\nmailbox='{pattern}'\n"
        ))
        .unwrap();
        let w = &s.world;
        let hit = |a: &str| !s.faults.decide(Stage::Rcpt, &facts_for(w, a)).is_empty();
        assert!(
            hit("user20@patente.test") && hit("user22@patente.test"),
            "{pattern}"
        );
        assert!(
            !hit("user19@patente.test") && !hit("user23@patente.test"),
            "{pattern}"
        );
    }
    // The same error text as a scenario's `mailboxes` gives.
    let e = scenario("[[fault]]\nstage='rcpt'\naction='reject'\nmailbox='user01..box25'\n")
        .unwrap_err();
    assert!(
        e.ends_with("range 'user01..box25' has different prefixes 'user' and 'box'"),
        "{e}"
    );
}

#[test]
fn selectors_globs_ranges_and_except() {
    let s = scenario("[[fault]]\nstage='rcpt'\naction='reject'\nmailbox=['user0*', 'user20..user22', 'anna@kanzlei.test']\nexcept='user05'\n").unwrap();
    let w = &s.world;
    let hit = |a: &str| !s.faults.decide(Stage::Rcpt, &facts_for(w, a)).is_empty();
    assert!(
        hit("user01@patente.test")
            && hit("user09@patente.test")
            && hit("user21@patente.test")
            && hit("anna@kanzlei.test")
    );
    assert!(
        !hit("user05@patente.test") && !hit("user10@patente.test") && !hit("bernd@kanzlei.test")
    );
    // Not at another stage.
    assert!(
        s.faults
            .decide(Stage::Mail, &facts_for(w, "user01@patente.test"))
            .is_empty()
    );
}

#[test]
fn replies_have_defaults_and_are_checked() {
    let s = scenario("[[fault]]\nstage='mail'\naction='defer'\n[[fault]]\nstage='rcpt'\naction='quota-full'\nmailbox='anna'\npermanent=false\n").unwrap();
    let f = Facts::default();
    assert_eq!(
        s.faults.decide(Stage::Mail, &f)[0].action,
        Action::Reply {
            code: 451,
            enhanced: "4.3.0".into(),
            text: "Error: temporary failure, try again later".into()
        }
    );
    let w = &s.world;
    let fired = s
        .faults
        .decide(Stage::Rcpt, &facts_for(w, "anna@kanzlei.test"));
    assert!(
        matches!(&fired[0].action, Action::Reply { code: 452, enhanced, .. } if enhanced == "4.2.2")
    );
    let e = scenario("[[fault]]\nstage='mail'\naction='reject'\ncode=451\n").unwrap_err();
    assert!(e.contains("needs a 5xx code, not 451"), "{e}");
    let e = scenario("[[fault]]\nstage='mail'\naction='reject'\nenhanced='4.1.1'\n").unwrap_err();
    assert!(e.contains("does not agree"), "{e}");
}

#[test]
fn bad_rules_name_what_is_wrong_and_where() {
    let e = scenario("[[fault]]\nstage='nowhere'\naction='drop'\n").unwrap_err();
    assert!(
        e.starts_with("f.toml:11:7: unknown variant `nowhere`"),
        "{e}"
    );
    let e = scenario("[[fault]]\nstage='route'\naction='explode'\n").unwrap_err();
    assert!(e.contains("unknown variant `explode`"), "{e}");
    let e = scenario("[[fault]]\nstage='route'\naction='drop'\nmailboxx='anna'\n").unwrap_err();
    assert!(e.contains("unknown field `mailboxx`"), "{e}");
    let e = scenario("[[fault]]\nstage='connect'\naction='drop'\n").unwrap_err();
    assert!(
        e.contains("action 'drop' cannot act at stage 'connect'; it works at: route, deliver"),
        "{e}"
    );
    assert!(e.starts_with("f.toml:10:1: [[fault]] #1"), "{e}");
    let e = scenario("[[fault]]\nstage='route'\naction='misroute'\nto='nobody@kanzlei.test'\n")
        .unwrap_err();
    assert!(
        e.contains("misroute target 'nobody@kanzlei.test' is not a mailbox"),
        "{e}"
    );
    let e = scenario("[[fault]]\nstage='route'\naction='misroute'\n").unwrap_err();
    assert!(e.contains("action 'misroute' needs `to`"), "{e}");
    let e = scenario("[[fault]]\nname='x'\nstage='route'\naction='drop'\n[[fault]]\nname='x'\nstage='route'\naction='drop'\n").unwrap_err();
    assert!(e.contains("'x' already exists"), "{e}");
    let e = scenario("[[fault]]\nstage='route'\naction='drop'\nprobability=1.5\n").unwrap_err();
    assert!(e.contains("between 0 and 1"), "{e}");
}

#[test]
fn rules_that_cannot_fire_are_warned_about() {
    let s = scenario("[[fault]]\nname='w'\nstage='route'\naction='drop'\nmailbox='nobody'\n[[fault]]\nname='v'\nstage='connect'\naction='disconnect'\ndomain='patente.test'\n").unwrap();
    assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
    assert!(s.warnings[0].contains("rule 'w': `mailbox` pattern 'nobody' matches no mailbox"));
    assert!(
        s.warnings[1]
            .contains("rule 'v': a mailbox or domain selector can never match at stage 'connect'")
    );
    assert!(s.summary().contains("warning: rule 'w'"));
}

#[test]
fn counters_nth_first_every_after() {
    let count = |rule: &str| {
        let s = scenario(&format!(
            "[[fault]]\nstage='mail'\naction='reject'\n{rule}\n"
        ))
        .unwrap();
        (1..=10)
            .filter(|_| !s.faults.decide(Stage::Mail, &Facts::default()).is_empty())
            .collect::<Vec<_>>()
            .len()
    };
    assert_eq!(count("nth=3"), 1);
    assert_eq!(count("first=4"), 4);
    assert_eq!(count("every=3"), 3);
    assert_eq!(count("after=7"), 3);
    assert_eq!(count("every=2\nfirst=6"), 3);
}

#[test]
fn peek_neither_fires_nor_counts() {
    let s = scenario(
        "[[fault]]\nname='hide'\nstage='imap-select'\naction='hide-messages'\nmailbox='anna'\nfirst=2\n",
    )
    .unwrap();
    let anna = facts_for(&s.world, "anna@kanzlei.test");
    let rule = s.faults.rule("hide").unwrap();
    for _ in 0..5 {
        assert_eq!(
            s.faults.peek(Stage::ImapSelect, &anna)[0].action,
            Action::HideMessages
        );
    }
    assert_eq!(rule.fired(), 0);
    // The counters were left alone: `first=2` still allows two real firings.
    assert_eq!(s.faults.decide(Stage::ImapSelect, &anna).len(), 1);
    assert_eq!(s.faults.decide(Stage::ImapSelect, &anna).len(), 1);
    assert_eq!(rule.fired(), 2);
    // And a peek now says what the next real decision would: nothing.
    assert!(s.faults.peek(Stage::ImapSelect, &anna).is_empty());
    assert!(s.faults.decide(Stage::ImapSelect, &anna).is_empty());
    let bernd = facts_for(&s.world, "bernd@kanzlei.test");
    assert!(s.faults.peek(Stage::ImapSelect, &bernd).is_empty());
}

#[test]
fn quota_full_is_seen_for_the_rules_mailboxes_only() {
    let s = scenario(
        "[[fault]]\nname='full'\nstage='rcpt'\naction='quota-full'\nmailbox='anna'\n\
         [[fault]]\nstage='rcpt'\naction='reject'\nmailbox='bernd'\n\
         [[fault]]\nstage='end-of-data'\naction='quota-full'\npermanent=false\nmailbox='clara'\n\
         [[fault]]\nstage='rcpt'\naction='quota-full'\nmailbox='user01'\nsender='x@extern.test'\n",
    )
    .unwrap();
    let w = &s.world;
    let looks = |addr: &str| {
        let f = Facts {
            mailbox: w.mailbox_by_address(addr),
            domain: addr.split('@').nth(1),
            rcpt: Some(addr),
            ..Facts::default()
        };
        s.faults.quota_full(&f)
    };
    assert!(looks("anna@kanzlei.test"));
    assert!(
        looks("clara@kanzlei.test"),
        "end-of-data, 452 4.2.2: full too"
    );
    assert!(
        !looks("bernd@kanzlei.test"),
        "a reject is not a full mailbox"
    );
    assert!(!looks("user01@patente.test"), "full for one sender only");
    assert!(!looks("user02@patente.test"));
    assert_eq!(s.faults.rule("full").unwrap().fired(), 0);
    s.faults.rule("full").unwrap().set_enabled(false);
    assert!(!looks("anna@kanzlei.test"));
}

#[test]
fn seeded_probability_is_deterministic() {
    let run = || {
        let s = scenario("[[fault]]\nstage='mail'\naction='defer'\nprobability=0.3\nseed=42\n")
            .unwrap();
        (0..1000)
            .map(|_| !s.faults.decide(Stage::Mail, &Facts::default()).is_empty())
            .collect::<Vec<bool>>()
    };
    let a = run();
    assert_eq!(a, run());
    let fired = a.iter().filter(|x| **x).count();
    assert!((200..400).contains(&fired), "{fired} of 1000 at p=0.3");
    let other = {
        let s = scenario("[[fault]]\nstage='mail'\naction='defer'\nprobability=0.3\nseed=43\n")
            .unwrap();
        (0..1000)
            .map(|_| !s.faults.decide(Stage::Mail, &Facts::default()).is_empty())
            .collect::<Vec<bool>>()
    };
    assert_ne!(a, other, "another seed, another sequence");
}

#[test]
fn greylisting_defers_each_triplet_once_per_window() {
    let s = scenario("[[fault]]\nstage='rcpt'\naction='greylist'\nsecs=3600\n").unwrap();
    let w = &s.world;
    let f = facts_for(w, "anna@kanzlei.test");
    assert!(matches!(
        &s.faults.decide(Stage::Rcpt, &f)[0].action,
        Action::Reply { code: 450, .. }
    ));
    assert_eq!(
        s.faults.decide(Stage::Rcpt, &f).len(),
        1,
        "still within the window"
    );
    let s = scenario("[[fault]]\nstage='rcpt'\naction='greylist'\nsecs=0\n").unwrap();
    assert!(
        s.faults
            .decide(Stage::Rcpt, &facts_for(&s.world, "anna@kanzlei.test"))
            .is_empty(),
        "window over"
    );
}

#[test]
fn rate_limit_counts_per_minute() {
    let s =
        scenario("[[fault]]\nstage='mail'\naction='rate-limit'\nper_minute=3\ncode=451\n").unwrap();
    let fired: Vec<bool> = (0..5)
        .map(|_| !s.faults.decide(Stage::Mail, &Facts::default()).is_empty())
        .collect();
    assert_eq!(fired, vec![false, false, false, true, true]);
}

#[test]
fn runtime_add_disable_remove_rebuild() {
    let s = scenario("").unwrap();
    let mut plan = s.faults.clone();
    let mut spec = FaultRuleSpec::new(Stage::Route, spec::ActionKind::Misroute);
    spec.to = Some("anna@kanzlei.test".into());
    spec.mailbox = Some(spec::OneOrMany::One("bernd".into()));
    plan.add(spec, &s.world).unwrap();
    let f = facts_for(&s.world, "bernd@kanzlei.test");
    let anna = s.world.mailbox_by_address("anna@kanzlei.test").unwrap();
    assert!(
        matches!(&plan.decide(Stage::Route, &f)[0].action, Action::Misroute { to, .. } if *to == anna)
    );
    plan.rule("fault-1").unwrap().set_enabled(false);
    assert!(plan.decide(Stage::Route, &f).is_empty());
    let fresh = plan.rebuild(&s.world);
    assert!(
        !fresh.rule("fault-1").unwrap().enabled(),
        "rebuild keeps enabled state"
    );
    assert!(plan.remove("fault-1"));
    assert!(plan.is_empty());
}

#[test]
fn json_form_is_the_same_shape() {
    let json = r#"{"name":"j","stage":"rcpt","action":"reject","mailbox":["user03"],"code":550,"enhanced":"5.1.1","text":"gone"}"#;
    let spec: FaultRuleSpec = serde_json::from_str(json).unwrap();
    let s = scenario("").unwrap();
    let mut plan = FaultPlan::default();
    plan.add(spec.clone(), &s.world).unwrap();
    let back = serde_json::to_value(&plan.rules()[0].spec).unwrap();
    assert_eq!(back["mailbox"], serde_json::json!(["user03"]));
    let bad: Result<FaultRuleSpec, _> = serde_json::from_str(r#"{"stage":"rcpt","action":"zap"}"#);
    assert!(
        bad.unwrap_err()
            .to_string()
            .contains("unknown variant `zap`")
    );
}

fn dns_facts<'a>(qname: &'a str, qtype: &'a str) -> Facts<'a> {
    Facts {
        client: Some("127.0.0.1".parse().unwrap()),
        qname: Some(qname),
        qtype: Some(qtype),
        ..Facts::default()
    }
}

#[test]
fn dns_rules_select_by_query_name_and_type() {
    let s = scenario(
        r#"
[[fault]]
name = "mx-servfail"
stage = "dns"
action = "servfail"
qname = "*.test"
qtype = ["MX", "a"]

[[fault]]
name = "wrong-mx"
stage = "dns"
action = "answer"
qname = "x.test"
qtype = "MX"
answer = ["10 mx.elsewhere.test"]
"#,
    )
    .unwrap();
    let fired = s.faults.decide(Stage::Dns, &dns_facts("x.test", "MX"));
    let names: Vec<_> = fired.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(names, ["mx-servfail", "wrong-mx"]);
    assert_eq!(
        fired[1].action,
        Action::Dns(DnsFault::Answer(vec![crate::dns::RecordData::Mx {
            preference: 10,
            exchange: "mx.elsewhere.test".into()
        }]))
    );
    assert!(
        s.faults
            .decide(Stage::Dns, &dns_facts("x.test", "TXT"))
            .is_empty()
    );
    assert_eq!(
        s.faults.decide(Stage::Dns, &dns_facts("a.test", "a")).len(),
        1
    );
    // A DNS selector never matches a mail stage's facts.
    let w = &s.world;
    assert!(
        s.faults
            .decide(Stage::Rcpt, &facts_for(w, "user01@x.test"))
            .is_empty()
    );
}

#[test]
fn dns_rules_are_checked() {
    let e = scenario("[[fault]]\nstage = \"dns\"\naction = \"answer\"\nqtype = \"A\"\nanswer = [\"300.1.1.1\"]\n")
        .unwrap_err();
    assert!(e.contains("not an IPv4 address"), "{e}");
    let e = scenario("[[fault]]\nstage = \"dns\"\naction = \"answer\"\nanswer = [\"1.1.1.1\"]\n")
        .unwrap_err();
    assert!(e.contains("exactly one `qtype`"), "{e}");
    let e = scenario("[[fault]]\nstage = \"rcpt\"\naction = \"servfail\"\n").unwrap_err();
    assert!(e.contains("works at: dns"), "{e}");
    let s =
        scenario("[[fault]]\nstage = \"rcpt\"\naction = \"reject\"\nqname = \"x.test\"\n").unwrap();
    assert!(
        s.warnings[0].contains("only at stage 'dns'"),
        "{:?}",
        s.warnings
    );
}

#[test]
fn misfile_defaults_to_junk_and_refuses_inbox_and_bad_names() {
    let s = scenario("[[fault]]\nstage='deliver'\naction='misfile'\nmailbox='bernd'\n").unwrap();
    let f = facts_for(&s.world, "bernd@kanzlei.test");
    assert_eq!(
        s.faults.decide(Stage::Deliver, &f)[0].action,
        Action::Misfile {
            folder: "Junk".into()
        }
    );
    let s =
        scenario("[[fault]]\nstage='route'\naction='misfile'\nfolder='Spam.Filtered'\n").unwrap();
    assert_eq!(
        s.faults.decide(Stage::Route, &f)[0].action,
        Action::Misfile {
            folder: "Spam.Filtered".into()
        }
    );
    let e = scenario("[[fault]]\nstage='deliver'\naction='misfile'\nfolder='inbox'\n").unwrap_err();
    assert!(e.contains("other than INBOX"), "{e}");
    let e = scenario("[[fault]]\nstage='deliver'\naction='misfile'\nfolder='a..b'\n").unwrap_err();
    assert!(
        e.contains("`folder`") && e.contains("not a valid folder name"),
        "{e}"
    );
    let e = scenario("[[fault]]\nstage='rcpt'\naction='misfile'\n").unwrap_err();
    assert!(e.contains("cannot act at stage 'rcpt'"), "{e}");
}

#[test]
fn forget_modseq_acts_at_imap_select_only() {
    let s = scenario("[[fault]]\nstage='imap-select'\naction='forget-modseq'\nmailbox='anna'\n")
        .unwrap();
    let f = facts_for(&s.world, "anna@kanzlei.test");
    assert_eq!(
        s.faults.decide(Stage::ImapSelect, &f)[0].action,
        Action::ForgetModseq
    );
    let e = scenario("[[fault]]\nstage='imap-fetch'\naction='forget-modseq'\n").unwrap_err();
    assert!(e.contains("works at: imap-select"), "{e}");
}
