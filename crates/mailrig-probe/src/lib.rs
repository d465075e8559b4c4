//! The delivery prober: send a tagged message to every mailbox of a target,
//! read each one back over IMAP or POP3, and judge, mailbox by mailbox,
//! whether it arrived.
//!
//! This is the check that would have caught the seed incident (mail for 23 of
//! 25 mailboxes accepted with `250` and never delivered). It works against any
//! server — our mock, Postfix + Dovecot, production — and knows nothing of
//! the mock's internals.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mailrig_probe::ProbeError> {
//! use mailrig_probe::{ProbeOptions, Target, probe};
//! let target = Target::load("target.toml".as_ref())?;
//! let report = probe(&target, &ProbeOptions::default()).await?;
//! print!("{}", report.to_table(false));
//! std::process::exit(report.exit_code().into());
//! # }
//! ```
//!
//! # Verdicts
//!
//! | verdict | meaning |
//! |---|---|
//! | `delivered` | seen in its own mailbox once, token and body hash intact; latency from `250` to visible |
//! | `missing` | accepted with `250`, not seen in any probed mailbox before the timeout |
//! | `rejected` | refused with a 5xx reply (code, enhanced code, text reported) |
//! | `deferred` | refused with a 4xx reply, or the connection failed while sending |
//! | `misrouted` | not in its mailbox, found in another probed mailbox (named) |
//! | `duplicated` | more than one copy in its mailbox |
//! | `altered` | one copy, but the body hash, subject, Message-ID or probe header changed |
//! | `unreadable` | the mailbox could not be read (TLS, login); no probe is sent to it |
//! | `misfiled` | not in INBOX, but in another folder of its own mailbox (`Junk`, named) |
//! | `delivered-unauthenticated` | delivered, but its `Authentication-Results` fail a requirement (`--require dkim=pass`) |
//! | `stuck-upstream` | not in its mailbox, but at its `upstream` (the provider's mailbox it is collected from) |
//!
//! Nothing is reported `delivered` that was not read back with its token and
//! body hash. Exit codes ([`exit_code`]): 0 all delivered, 1 any not,
//! 2 the probe could not run (bad target file, SMTP or a whole IMAP/POP3
//! server unreachable — in that case nothing is sent).
//!
//! # Target files
//!
//! ```toml
//! [probe]                       # optional
//! timeout = 30                  # seconds after sending until open verdicts become `missing` (--timeout overrides)
//! connect_timeout = 10          # seconds for one connect + greeting, and for one command
//! concurrency = 64              # mailboxes read at once; up to this many, connections stay open (IDLE)
//! mailboxes_csv = "boxes.csv"   # more mailboxes: address,user,password lines (relative to this file)
//! require = ["dkim=pass", "dmarc=pass"]   # what a delivered copy's Authentication-Results must say (--require overrides)
//!
//! [smtp]                        # where probes are sent (required)
//! host = "127.0.0.1"            # host and port: optional with mx = true
//! port = 2525
//! mx = false                    # true: through every MX host of each domain instead (--each-mx)
//! mx_hosts = ["mx1.p.test", { name = "mx2.p.test", address = "127.0.0.3:2525" }]   # MX hosts without DNS (no host/port: as mx = true)
//! mx_port = 25                  # the port MX hosts are sent to (--mx-port overrides)
//! tls = "none"                  # none | starttls | tls
//! from = "mailrig-probe@mailrig.test"   # envelope sender and From:
//! helo = "mailrig-probe.localhost"
//! connections = 4               # SMTP connections used in parallel
//! auth = { user = "u", password_env = "SMTP_PASSWORD" }   # or password = "..."
//! dkim = { domain = "signer.test", selector = "s1", key_file = "dkim.pem" }   # sign probes (RSA, PKCS#1 PEM)
//!
//! [read]                        # how mailboxes are read unless one says otherwise (required)
//! protocol = "imap"             # imap | pop3
//! host = "127.0.0.1"
//! port = 1143
//! tls = "none"                  # none | starttls | tls
//! password = "secret"           # optional default password (or password_env = "VAR")
//! master_user = "admin"         # optional: one admin credential reads every mailbox as its user
//! master_password_env = "VAR"   # or master_password = "..."
//! master_login = "separator"    # separator: LOGIN user*admin (Dovecot) | authzid: SASL PLAIN (RFC 4616)
//! master_separator = "*"
//!
//! [tls]                         # optional, for SMTP and reading alike
//! ca_file = "ca.pem"            # extra trusted CA (PEM), relative to this file
//! insecure = false              # accept any certificate (test setups only)
//!
//! [[mailbox]]                   # one per mailbox, or per range: "user{01..25}@patente.test"
//! address = "user01@patente.test"
//! user = "user01@patente.test"  # login; defaults to the address
//! password = "secret"           # or password_env = "VAR"; defaults to [read]'s
//! # protocol, host, port, tls: override [read] for this mailbox
//! upstream = { protocol = "pop3", host = "127.0.0.2", port = 110 }   # the previous hop, read too:
//! #   [read]'s keys (tls, password, password_env, master_*) plus user; login and password default to this mailbox's
//! ```
//!
//! In the CSV list, `#` starts a comment, a header line `address,...` is
//! skipped, empty `user`/`password` take the defaults, and `env:NAME` as a
//! password reads the variable `NAME`. Unknown keys, a missing required key,
//! an unset `password_env` variable or a mailbox listed twice are errors that
//! name the file, line and column.
//!
//! # How it works
//!
//! Each run has a random id; each mailbox's message carries a token
//! `<run id>-<n>` in the `X-Mailrig-Probe` header, the Message-ID and the
//! subject, and a SHA-256 of its body is remembered. Readers `UID SEARCH` for
//! the run id (`HEADER X-Mailrig-Probe` or `SUBJECT`; fetching all headers if
//! the server cannot search headers) — so concurrent runs never see each
//! other's messages — and fetch what they find once. With at most
//! `concurrency` mailboxes every IMAP connection stays open and waits in IDLE
//! where the server offers it; otherwise mailboxes are polled with backoff
//! (50 ms doubling to 1 s), as POP3 always is. The run ends as soon as every
//! verdict is known (only `missing` can change by waiting) or at the timeout;
//! then each mailbox is scanned once more and this run's messages — including
//! other mailboxes' misrouted probes — are deleted by UID (`UID EXPUNGE`; plain
//! `EXPUNGE` only when no other message is flagged `\Deleted`) or `DELE`,
//! unless `--keep`. Before that last step the other folders of each IMAP
//! mailbox are searched once (`misfiled`); deletion covers them too, and
//! takes only messages whose own `X-Mailrig-Probe` header carries this run's
//! token. Other mail is never touched. The copy read back says how it was
//! authenticated ([`auth`]: its topmost `Authentication-Results`,
//! `Received-SPF`, a `DKIM-Signature`); a requirement it fails makes it
//! `delivered-unauthenticated`. A mailbox with an `upstream` is read
//! there too, by a reader of its own, the whole run: its probe found there
//! and not in the mailbox is `stuck-upstream` (open until the timeout, as a
//! collector may still fetch it), and [`MailboxResult::hops`] has the time
//! from `250` to each hop. Its copy there is deleted at the end like any
//! other. [`monitor`] runs rounds, keeps
//! Prometheus metrics and writes Nagios status lines.

pub mod auth;
pub mod endpoint_tls;
pub mod imap_reader;
mod mailbox_csv;
mod message;
pub mod monitor;
mod mx;
mod read;
mod report;
mod run;
mod send;
mod target;
mod tls;
mod verdict;

pub use auth::{AuthResults, Method, RequireError, Requirement, parse_requirements};
pub use message::BuildError;
pub use message::{HASH_HEADER, PROBE_HEADER, RunId};
pub use mx::MX_PORT;
pub use read::ReadError;
pub use read::pop3::Pop3Session as Pop3Client;
pub use report::{Cleanup, Counts, DomainSummary, REPORT_SCHEMA, Report, Summary};
pub use run::{Phase, ProbeError, ProbeOptions, Progress, ProgressFn, exit_code, probe};
pub use target::{
    MailboxTarget, MasterLogin, MasterStyle, MxHost, ReadEndpoint, ReadProtocol, SmtpAuth,
    SmtpTarget, Target, TargetError, TlsMode, TlsTrust, Upstream,
};
pub use tls::TrustError;
pub use verdict::{Hop, MailboxResult, SmtpReply, Verdict};
