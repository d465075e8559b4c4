//! Unit tests of the prober's verdict module.
use std::time::{Duration, Instant};

use super::*;

fn expected(n: usize) -> Vec<Expected> {
    (0..n)
        .map(|i| Expected {
            address: format!("user{i:02}@patente.test"),
            token: format!("mrpx-{i}"),
            message_id: format!("<mrpx-{i}@probe.mailrig.invalid>"),
            subject: format!("mailrig probe mrpx-{i}"),
            body_hash: format!("hash{i}"),
            require: std::sync::Arc::from(Vec::new()),
        })
        .collect()
}

fn intact(e: &Expected, key: &str, at: Instant) -> Sighting {
    Sighting {
        folder: "INBOX".to_string(),
        key: key.to_string(),
        token: e.token.clone(),
        headers: SeenHeaders {
            probe: Some(e.token.clone()),
            message_id: Some(e.message_id.clone()),
            subject: Some(e.subject.clone()),
            auth: crate::auth::AuthResults::default(),
        },
        body_hash: e.body_hash.clone(),
        first_seen: at,
    }
}

fn read_ok() -> ReadState {
    ReadState::Read { last_error: None }
}

fn run(exp: &[Expected], sent: &[SendOutcome], obs: &[Observation]) -> Vec<(MailboxResult, bool)> {
    let index = seen_index(obs);
    (0..exp.len())
        .map(|i| judge(i, exp, &sent[i], obs, &index, "IMAP test".into(), None))
        .collect()
}

#[test]
fn delivered_needs_token_and_hash_and_reports_latency() {
    let exp = expected(1);
    let t0 = Instant::now();
    let sent = [SendOutcome::Accepted {
        at: t0,
        reply: None,
    }];
    let obs = [Observation {
        read: read_ok(),
        seen: vec![intact(&exp[0], "1", t0 + Duration::from_millis(250))],
    }];
    let (r, known) = &run(&exp, &sent, &obs)[0];
    assert!(known);
    assert_eq!(r.verdict, Verdict::Delivered);
    assert_eq!(r.latency_ms, Some(250));
    assert_eq!(r.copies, 1);
    assert_eq!(r.domain, "patente.test");
}

#[test]
fn missing_is_the_only_open_verdict() {
    let exp = expected(1);
    let sent = [SendOutcome::Accepted {
        at: Instant::now(),
        reply: None,
    }];
    let obs = [Observation {
        read: read_ok(),
        seen: vec![],
    }];
    let (r, known) = &run(&exp, &sent, &obs)[0];
    assert!(!known);
    assert_eq!(r.verdict, Verdict::Missing);
    assert!(r.reason.contains("250"));
}

#[test]
fn misrouted_names_the_mailbox_it_landed_in() {
    let exp = expected(3);
    let t0 = Instant::now();
    let sent = vec![
        SendOutcome::Accepted {
            at: t0,
            reply: None
        };
        3
    ];
    let obs = [
        Observation {
            read: read_ok(),
            seen: vec![intact(&exp[0], "1", t0), intact(&exp[1], "2", t0)],
        },
        Observation {
            read: read_ok(),
            seen: vec![],
        },
        Observation {
            read: read_ok(),
            seen: vec![intact(&exp[2], "1", t0)],
        },
    ];
    let results = run(&exp, &sent, &obs);
    assert_eq!(results[0].0.verdict, Verdict::Delivered);
    assert_eq!(results[1].0.verdict, Verdict::Misrouted);
    assert_eq!(
        results[1].0.found_in,
        vec!["user00@patente.test".to_string()]
    );
    assert!(results[1].0.reason.contains("user00@patente.test"));
    assert!(results[1].1);
    assert_eq!(results[2].0.verdict, Verdict::Delivered);
}

#[test]
fn duplicated_and_altered() {
    let exp = expected(3);
    let t0 = Instant::now();
    let sent = vec![
        SendOutcome::Accepted {
            at: t0,
            reply: None
        };
        3
    ];
    let mut changed_body = intact(&exp[1], "1", t0);
    changed_body.body_hash = "other".into();
    let mut stripped = intact(&exp[2], "1", t0);
    stripped.headers.probe = None;
    stripped.headers.subject = Some("[SPAM] mailrig probe mrpx-2".into());
    let obs = [
        Observation {
            read: read_ok(),
            seen: vec![intact(&exp[0], "1", t0), intact(&exp[0], "2", t0)],
        },
        Observation {
            read: read_ok(),
            seen: vec![changed_body],
        },
        Observation {
            read: read_ok(),
            seen: vec![stripped],
        },
    ];
    let results = run(&exp, &sent, &obs);
    assert_eq!(results[0].0.verdict, Verdict::Duplicated);
    assert_eq!(results[0].0.copies, 2);
    assert_eq!(results[1].0.verdict, Verdict::Altered);
    assert!(results[1].0.differences[0].starts_with("body hash differs"));
    assert_eq!(results[2].0.verdict, Verdict::Altered);
    assert_eq!(
        results[2].0.differences,
        vec![
            "X-Mailrig-Probe header missing".to_string(),
            "subject changed to '[SPAM] mailrig probe mrpx-2'".to_string()
        ]
    );
}

#[test]
fn smtp_refusals_win_and_are_classified() {
    let exp = expected(3);
    let sent = [
        SendOutcome::Failed {
            reply: Some(SmtpReply::from_code_and_text(
                550,
                "5.1.1 <x>: User unknown",
            )),
            reason: "rejected with 550 5.1.1 <x>: User unknown".into(),
        },
        SendOutcome::Failed {
            reply: Some(SmtpReply::from_code_and_text(451, "4.3.0 try later")),
            reason: "deferred".into(),
        },
        SendOutcome::Failed {
            reply: None,
            reason: "connection failed while sending: reset".into(),
        },
    ];
    let obs = vec![
        Observation {
            read: read_ok(),
            seen: vec![],
        };
        3
    ];
    let results = run(&exp, &sent, &obs);
    let r = &results[0].0;
    assert_eq!(r.verdict, Verdict::Rejected);
    let reply = r.smtp.as_ref().unwrap();
    assert_eq!(
        (reply.code, reply.enhanced.as_deref(), reply.text.as_str()),
        (550, Some("5.1.1"), "<x>: User unknown")
    );
    assert!(reply.permanent);
    assert_eq!(results[1].0.verdict, Verdict::Deferred);
    assert!(!results[1].0.smtp.as_ref().unwrap().permanent);
    assert_eq!(results[2].0.verdict, Verdict::Deferred);
    assert!(results[2].0.smtp.is_none());
    assert!(results.iter().all(|(_, known)| *known));
}

#[test]
fn unreadable_before_sending_or_never_read() {
    let exp = expected(2);
    let sent = [
        SendOutcome::RcptAccepted,
        SendOutcome::Accepted {
            at: Instant::now(),
            reply: None,
        },
    ];
    let obs = [
        Observation {
            read: ReadState::Failed("IMAP login as a refused: no".into()),
            seen: vec![],
        },
        Observation {
            read: ReadState::Failed("TLS failed".into()),
            seen: vec![],
        },
    ];
    let results = run(&exp, &sent, &obs);
    assert_eq!(results[0].0.verdict, Verdict::Unreadable);
    assert!(results[0].0.reason.contains("IMAP login as a refused"));
    assert!(results[0].0.reason.contains("no probe was sent"));
    assert_eq!(results[1].0.verdict, Verdict::Unreadable);
    assert_eq!(results[1].0.reason, "TLS failed");
}

#[test]
fn never_delivered_without_its_own_token() {
    // A message of another mailbox, even intact, does not make this one delivered.
    let exp = expected(2);
    let t0 = Instant::now();
    let sent = vec![
        SendOutcome::Accepted {
            at: t0,
            reply: None
        };
        2
    ];
    let obs = [
        Observation {
            read: read_ok(),
            seen: vec![intact(&exp[1], "1", t0)],
        },
        Observation {
            read: read_ok(),
            seen: vec![],
        },
    ];
    let results = run(&exp, &sent, &obs);
    assert_eq!(results[0].0.verdict, Verdict::Missing);
    assert_eq!(results[1].0.verdict, Verdict::Misrouted);
}

#[test]
fn smtp_reply_parsing() {
    let r = SmtpReply::from_code_and_text(552, "5.2.2 Mailbox full");
    assert_eq!(r.to_string(), "552 5.2.2 Mailbox full");
    let r = SmtpReply::from_code_and_text(554, "Transaction failed");
    assert_eq!((r.enhanced, r.text.as_str()), (None, "Transaction failed"));
    let r = SmtpReply::from_code_and_text(421, "4.7.0");
    assert_eq!(r.enhanced.as_deref(), Some("4.7.0"));
    assert!(!r.permanent);
    let r = SmtpReply::from_code_and_text(550, "1.2.3.4 blocked");
    assert_eq!(r.enhanced, None);
}

fn in_folder(e: &Expected, folder: &str, at: Instant) -> Sighting {
    Sighting {
        folder: folder.to_string(),
        ..intact(e, "7", at)
    }
}

#[test]
fn misfiled_names_the_folder_and_is_final() {
    let exp = expected(2);
    let t0 = Instant::now();
    let sent = vec![
        SendOutcome::Accepted {
            at: t0,
            reply: None
        };
        2
    ];
    let obs = [
        Observation {
            read: read_ok(),
            seen: vec![in_folder(&exp[0], "Junk", t0 + Duration::from_millis(40))],
        },
        Observation {
            read: read_ok(),
            seen: vec![intact(&exp[1], "1", t0)],
        },
    ];
    let results = run(&exp, &sent, &obs);
    let (r, known) = &results[0];
    assert!(known);
    assert_eq!(r.verdict, Verdict::Misfiled);
    assert_eq!(r.folders, vec!["Junk".to_string()]);
    assert_eq!(r.verdict_label(), "misfiled (Junk)");
    assert_eq!(r.latency_ms, Some(40));
    assert!(r.reason.contains("Junk instead of INBOX"), "{}", r.reason);
    assert!(r.found_in.is_empty());
    assert_eq!(results[1].0.verdict, Verdict::Delivered);
    assert!(results[1].0.folders.is_empty());
}

#[test]
fn a_copy_in_inbox_and_one_in_junk_is_duplicated_not_misfiled() {
    let exp = expected(1);
    let t0 = Instant::now();
    let sent = [SendOutcome::Accepted {
        at: t0,
        reply: None,
    }];
    let obs = [Observation {
        read: read_ok(),
        seen: vec![intact(&exp[0], "1", t0), in_folder(&exp[0], "Junk", t0)],
    }];
    let (r, _) = &run(&exp, &sent, &obs)[0];
    assert_eq!(r.verdict, Verdict::Duplicated);
    assert_eq!(r.copies, 2);
    assert!(
        r.reason.contains("1 in INBOX, more in Junk"),
        "{}",
        r.reason
    );
}

#[test]
fn a_probe_in_another_mailboxs_junk_is_misrouted() {
    let exp = expected(2);
    let t0 = Instant::now();
    let sent = vec![
        SendOutcome::Accepted {
            at: t0,
            reply: None
        };
        2
    ];
    let obs = [
        Observation {
            read: read_ok(),
            seen: vec![intact(&exp[0], "1", t0), in_folder(&exp[1], "Junk", t0)],
        },
        Observation {
            read: read_ok(),
            seen: vec![],
        },
    ];
    let results = run(&exp, &sent, &obs);
    assert_eq!(results[0].0.verdict, Verdict::Delivered);
    assert_eq!(results[1].0.verdict, Verdict::Misrouted);
    assert_eq!(
        results[1].0.found_in,
        vec!["user00@patente.test".to_string()]
    );
}

/// Judges one mailbox with an upstream observation.
fn with_upstream(
    exp: &[Expected],
    sent: &SendOutcome,
    own: &Observation,
    upstream: &Observation,
) -> (MailboxResult, bool) {
    let obs = std::slice::from_ref(own);
    let index = seen_index(obs);
    judge(
        0,
        exp,
        sent,
        obs,
        &index,
        "IMAP firm:143".into(),
        Some(UpstreamView {
            observed: upstream,
            read_via: "POP3 provider:110",
        }),
    )
}

#[test]
fn seen_only_upstream_is_stuck_upstream_and_stays_open() {
    let exp = expected(1);
    let t0 = Instant::now();
    let sent = SendOutcome::Accepted {
        at: t0,
        reply: None,
    };
    let own = Observation {
        read: read_ok(),
        seen: vec![],
    };
    let up = Observation {
        read: read_ok(),
        seen: vec![intact(&exp[0], "u1", t0 + Duration::from_millis(120))],
    };
    let (r, known) = with_upstream(&exp, &sent, &own, &up);
    assert!(!known, "a collector may still fetch it");
    assert_eq!(r.verdict, Verdict::StuckUpstream);
    assert_eq!(r.verdict.as_str(), "stuck-upstream");
    assert_eq!(
        r.reason,
        "accepted with 250 and at the upstream POP3 provider:110 after 0.12 s, but never collected into IMAP firm:143"
    );
    assert_eq!(
        r.hops.iter().map(Hop::label).collect::<Vec<_>>(),
        ["upstream 0.12 s", "mailbox not seen"]
    );
    assert_eq!(r.latency_ms, None);
}

#[test]
fn seen_nowhere_with_an_upstream_is_missing_and_says_where_it_looked() {
    let exp = expected(1);
    let sent = SendOutcome::Accepted {
        at: Instant::now(),
        reply: None,
    };
    let own = Observation {
        read: read_ok(),
        seen: vec![],
    };
    let up = Observation {
        read: read_ok(),
        seen: vec![],
    };
    let (r, known) = with_upstream(&exp, &sent, &own, &up);
    assert!(!known);
    assert_eq!(r.verdict, Verdict::Missing);
    assert!(r.reason.contains("neither at its upstream"), "{}", r.reason);
    // An upstream that could not be read is named: missing is then not proven.
    let broken = Observation {
        read: ReadState::Failed("POP3 login as x refused: no".into()),
        seen: vec![],
    };
    let (r, _) = with_upstream(&exp, &sent, &own, &broken);
    assert_eq!(r.verdict, Verdict::Missing);
    assert!(
        r.reason
            .contains("the upstream POP3 provider:110 could not be read: POP3 login as x refused"),
        "{}",
        r.reason
    );
}

#[test]
fn delivered_through_an_upstream_reports_both_hops() {
    let exp = expected(1);
    let t0 = Instant::now();
    let sent = SendOutcome::Accepted {
        at: t0,
        reply: None,
    };
    let own = Observation {
        read: read_ok(),
        seen: vec![intact(&exp[0], "7", t0 + Duration::from_millis(1300))],
    };
    let up = Observation {
        read: read_ok(),
        seen: vec![intact(&exp[0], "u1", t0 + Duration::from_millis(100))],
    };
    let (r, known) = with_upstream(&exp, &sent, &own, &up);
    assert!(known);
    assert_eq!(r.verdict, Verdict::Delivered);
    assert_eq!(r.latency_ms, Some(1300));
    assert_eq!(
        r.hops,
        [
            Hop {
                hop: "upstream".into(),
                read_via: "POP3 provider:110".into(),
                latency_ms: Some(100)
            },
            Hop {
                hop: "mailbox".into(),
                read_via: "IMAP firm:143".into(),
                latency_ms: Some(1300)
            }
        ]
    );
    // Another mailbox's probe at the upstream does not count for this one.
    let mut other = expected(2);
    other.remove(0);
    let stray = Observation {
        read: read_ok(),
        seen: vec![intact(&other[0], "u2", t0)],
    };
    let empty = Observation {
        read: read_ok(),
        seen: vec![],
    };
    let (r, _) = with_upstream(&exp, &sent, &empty, &stray);
    assert_eq!(r.verdict, Verdict::Missing);
}

#[test]
fn a_copy_failing_a_requirement_is_delivered_unauthenticated() {
    let mut exp = expected(1);
    exp[0].require = crate::auth::parse_requirements("dkim=pass,dmarc=pass")
        .unwrap()
        .into();
    let t0 = Instant::now();
    let sent = [SendOutcome::Accepted {
        at: t0,
        reply: None,
    }];
    let mut copy = intact(&exp[0], "1", t0);
    copy.headers.auth = crate::auth::AuthResults {
        spf: Some("pass".into()),
        dkim: Some("fail".into()),
        dmarc: Some("pass".into()),
        dkim_signed: true,
        authserv_id: Some("mx.test".into()),
    };
    let obs = [Observation {
        read: read_ok(),
        seen: vec![copy.clone()],
    }];
    let (r, known) = &run(&exp, &sent, &obs)[0];
    assert!(known);
    assert_eq!(r.verdict, Verdict::DeliveredUnauthenticated);
    assert_eq!(r.verdict.as_str(), "delivered-unauthenticated");
    assert_eq!(
        r.reason,
        "delivered, but its Authentication-Results say dkim=fail (required: pass)"
    );
    assert_eq!(
        r.auth.as_ref().unwrap().summary(),
        "spf=pass dkim=fail dmarc=pass"
    );
    // Meeting every requirement is delivered, with the results reported.
    copy.headers.auth.dkim = Some("pass".into());
    let obs = [Observation {
        read: read_ok(),
        seen: vec![copy],
    }];
    let (r, _) = &run(&exp, &sent, &obs)[0];
    assert_eq!(r.verdict, Verdict::Delivered);
    assert_eq!(r.auth.as_ref().unwrap().dkim.as_deref(), Some("pass"));
}
