//! What a run is asked to do: the command-line flags ([`LoadArgs`]) and the checked configuration they turn
//! into ([`LoadConfig`]), with the parsers for targets, sizes, size mixes and durations.
//!
//! Every check happens here, before a socket is opened, and every complaint names the flag.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::errors::LoadError;
use crate::recipients::RecipientPool;

/// Flags of `mailrig load`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Server to load: smtp://HOST:PORT (plain, add --starttls to upgrade) or smtps://HOST:PORT (TLS from the
    /// first byte). HOST:PORT alone means smtp://.
    #[arg(value_name = "TARGET")]
    pub target: String,

    /// Upgrade each connection with STARTTLS after EHLO (fails the message if the server does not offer it).
    #[arg(long)]
    pub starttls: bool,

    /// Log in with AUTH (PLAIN if offered, else LOGIN) as USER:PASS before sending.
    #[arg(long, value_name = "USER:PASS")]
    pub auth: Option<String>,

    /// PEM file with CA certificate(s) to trust for TLS besides the system's trust store.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// Accept any TLS certificate (test certificates only: this checks nothing).
    #[arg(long)]
    pub tls_insecure: bool,

    /// Name to verify the server certificate against (default: the target's host).
    #[arg(long, value_name = "NAME")]
    pub tls_server_name: Option<String>,

    /// Concurrent SMTP sessions. Closed loop (no --rate): each sends its next message as soon as the last is
    /// answered. Open loop (--rate): the most messages in flight at once.
    #[arg(long, short = 'c', default_value_t = 1, value_name = "N")]
    pub sessions: u32,

    /// Open loop: start messages at this fixed rate (messages per second) whatever the server does; latency
    /// counts from each message's scheduled start, so a stalled server shows up as latency.
    #[arg(long, short = 'r', value_name = "PER_SECOND")]
    pub rate: Option<f64>,

    /// Stop after this many messages (default: 1000 unless --duration is given).
    #[arg(long, short = 'n', value_name = "M")]
    pub messages: Option<u64>,

    /// Stop after this long, e.g. 30s, 5m, 500ms (messages in flight are finished).
    #[arg(long, short = 'd', value_name = "T")]
    pub duration: Option<String>,

    /// Message size in bytes, headers included: a size (4096, 4k, 1m) or a weighted mix such as
    /// 1k:50,4k:40,100k:10.
    #[arg(long, short = 's', default_value = "4k", value_name = "SIZE|MIX")]
    pub size: String,

    /// Recipients: addresses or range patterns such as user{01..25}@patente.test; repeat the flag or
    /// separate with commas. Messages walk the list round-robin.
    #[arg(long, value_name = "ADDR|PATTERN")]
    pub to: Vec<String>,

    /// File with one recipient address or pattern per line (# starts a comment).
    #[arg(long, value_name = "FILE")]
    pub to_file: Option<PathBuf>,

    /// Recipients (RCPT TO commands) per message.
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub recipients_per_message: u32,

    /// Envelope sender (MAIL FROM) and From: header.
    #[arg(long, default_value = "load@mailrig.test", value_name = "ADDR")]
    pub from: String,

    /// Messages sent over one connection before it is closed and a new one opened: 1 opens a new connection
    /// for every message; 0 keeps each session's connection for the whole run.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub messages_per_connection: u64,

    /// Never pipeline, even when the server advertises PIPELINING (one command per round trip).
    #[arg(long)]
    pub no_pipelining: bool,

    /// Name sent with EHLO.
    #[arg(long, default_value = "mailrig-load", value_name = "NAME")]
    pub ehlo: String,

    /// Longest wait for a connection or any single reply before the message counts as a timeout, e.g. 30s.
    #[arg(long, default_value = "30s", value_name = "T")]
    pub timeout: String,

    /// Identifier of this run, put into each Message-ID (<load-RUNID-SEQ@mailrig>) and X-Mailrig-Load
    /// header (default: random). Give each worker of a distributed run its own.
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,

    /// Also write the report as JSON to this file (for `mailrig load merge`); `-` writes it to standard
    /// output and the table to standard error.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Never show the live progress line (it is shown only when stderr is a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
}

impl LoadArgs {
    /// Checks the flags and builds the configuration. `extra_recipients` are added to the pool after the
    /// `--to`/`--to-file` ones (the binary passes the addresses of a scenario file here; empty otherwise).
    pub fn into_config(self, extra_recipients: Vec<String>) -> Result<LoadConfig, LoadError> {
        let target = Target::parse(&self.target)?;
        let mut patterns = self.to.clone();
        if let Some(path) = &self.to_file {
            let text = std::fs::read_to_string(path).map_err(|source| LoadError::ReadFile {
                flag: "--to-file",
                path: path.clone(),
                source,
            })?;
            patterns.extend(
                text.lines()
                    .map(|l| l.split('#').next().unwrap_or("").trim())
                    .filter(|l| !l.is_empty())
                    .map(str::to_string),
            );
        }
        let mut addresses = if patterns.is_empty() {
            Vec::new()
        } else {
            RecipientPool::from_patterns(&patterns)?
                .addresses()
                .to_vec()
        };
        addresses.extend(extra_recipients);
        if addresses.is_empty() {
            return Err(LoadError::InvalidFlag {
                flag: "--to",
                reason: "is required: give at least one recipient (address, pattern, --to-file or a scenario)".into(),
            });
        }
        let recipients = RecipientPool::from_addresses(addresses)?;
        let auth = match &self.auth {
            None => None,
            Some(s) => {
                let (user, pass) = s.split_once(':').ok_or(LoadError::InvalidFlag {
                    flag: "--auth",
                    reason: "must be USER:PASS".into(),
                })?;
                Some(Credentials {
                    user: user.to_string(),
                    password: pass.to_string(),
                })
            }
        };
        let tls = TlsOptions {
            ca_file: self.tls_ca,
            insecure: self.tls_insecure,
            server_name: self.tls_server_name,
        };
        let duration = self
            .duration
            .as_deref()
            .map(|d| {
                parse_duration(d).map_err(|reason| LoadError::InvalidFlag {
                    flag: "--duration",
                    reason,
                })
            })
            .transpose()?;
        let pacing = match self.rate {
            Some(rate) => Pacing::Open { rate },
            None => Pacing::Closed,
        };
        let config = LoadConfig {
            target,
            starttls: self.starttls,
            auth,
            tls,
            sessions: self.sessions,
            pacing,
            messages: match (self.messages, duration) {
                (None, None) => Some(1000),
                (m, _) => m,
            },
            duration,
            sizes: SizeMix::parse(&self.size)?,
            recipients,
            recipients_per_message: self.recipients_per_message,
            from: self.from,
            messages_per_connection: self.messages_per_connection,
            pipelining: !self.no_pipelining,
            ehlo: self.ehlo,
            timeout: parse_duration(&self.timeout).map_err(|reason| LoadError::InvalidFlag {
                flag: "--timeout",
                reason,
            })?,
            run_id: self.run_id,
            progress: !self.no_progress,
            record_accept_times: false,
        };
        config.validate()?;
        Ok(config)
    }
}

/// A checked run configuration. Build it with [`LoadArgs::into_config`], or fill the fields directly (tests,
/// other front ends) — [`crate::run`] validates it again.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Where to connect.
    pub target: Target,
    /// STARTTLS after EHLO.
    pub starttls: bool,
    /// AUTH credentials.
    pub auth: Option<Credentials>,
    /// Trust settings for smtps:// and STARTTLS.
    pub tls: TlsOptions,
    /// Concurrent sessions (closed loop) or the cap on messages in flight (open loop).
    pub sessions: u32,
    /// Closed or open loop.
    pub pacing: Pacing,
    /// Stop after this many messages.
    pub messages: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Message sizes.
    pub sizes: SizeMix,
    /// Recipient pool.
    pub recipients: RecipientPool,
    /// RCPT commands per message.
    pub recipients_per_message: u32,
    /// MAIL FROM address.
    pub from: String,
    /// Messages per connection; 0 = unlimited.
    pub messages_per_connection: u64,
    /// Use PIPELINING when the server offers it.
    pub pipelining: bool,
    /// EHLO name.
    pub ehlo: String,
    /// Connect and per-reply timeout.
    pub timeout: Duration,
    /// Run identifier (random if `None`).
    pub run_id: Option<String>,
    /// Show a progress line when stderr is a terminal.
    pub progress: bool,
    /// Keep the time of each message's 250 in memory ([`crate::Report::accept_times`]), so that a verifier
    /// can measure delivery latency. Off by default: it costs 24 bytes per accepted message (bounded by
    /// [`crate::accepted::MAX_ACCEPT_TIMES`]).
    pub record_accept_times: bool,
}

impl LoadConfig {
    /// A closed-loop configuration with defaults: one session, 1000 messages of 4 KiB, pipelining on.
    pub fn new(target: Target, recipients: RecipientPool) -> LoadConfig {
        LoadConfig {
            target,
            starttls: false,
            auth: None,
            tls: TlsOptions::default(),
            sessions: 1,
            pacing: Pacing::Closed,
            messages: Some(1000),
            duration: None,
            sizes: SizeMix::fixed(4096),
            recipients,
            recipients_per_message: 1,
            from: "load@mailrig.test".into(),
            messages_per_connection: 0,
            pipelining: true,
            ehlo: "mailrig-load".into(),
            timeout: Duration::from_secs(30),
            run_id: None,
            progress: false,
            record_accept_times: false,
        }
    }

    /// Checks the cross-field rules; each complaint names the flag.
    pub fn validate(&self) -> Result<(), LoadError> {
        let bad = |flag, reason: &str| {
            Err(LoadError::InvalidFlag {
                flag,
                reason: reason.to_string(),
            })
        };
        if self.sessions == 0 {
            return bad("--sessions", "must be > 0");
        }
        if self.sessions > 100_000 {
            return bad("--sessions", "must be <= 100000");
        }
        if let Pacing::Open { rate } = self.pacing
            && !(rate.is_finite() && rate > 0.0)
        {
            return bad("--rate", "must be > 0");
        }
        if self.messages.is_none() && self.duration.is_none() {
            return bad(
                "--messages",
                "or --duration is required: a run must be bounded",
            );
        }
        if self.messages == Some(0) {
            return bad("--messages", "must be > 0");
        }
        if self.duration == Some(Duration::ZERO) {
            return bad("--duration", "must be > 0");
        }
        if self.timeout.is_zero() {
            return bad("--timeout", "must be > 0");
        }
        if self.recipients_per_message == 0 {
            return bad("--recipients-per-message", "must be > 0");
        }
        if self.recipients_per_message as usize > self.recipients.len() {
            return Err(LoadError::InvalidFlag {
                flag: "--recipients-per-message",
                reason: format!(
                    "({}) must not exceed the number of recipients ({})",
                    self.recipients_per_message,
                    self.recipients.len()
                ),
            });
        }
        if crate::recipients::check_address(&self.from).is_err() {
            return bad("--from", "must be a bare address like load@mailrig.test");
        }
        if self.ehlo.is_empty()
            || self
                .ehlo
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return bad("--ehlo", "must be a host name without spaces");
        }
        if let Some(id) = &self.run_id
            && (id.is_empty()
                || id.len() > 64
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        {
            return bad(
                "--run-id",
                "must be 1-64 characters of letters, digits, '-', '_' or '.'",
            );
        }
        if self.tls.insecure && self.tls.ca_file.is_some() {
            return bad(
                "--tls-insecure",
                "and --tls-ca contradict each other: pick one",
            );
        }
        if self.starttls && self.target.implicit_tls {
            return bad(
                "--starttls",
                "cannot be combined with an smtps:// target (already TLS)",
            );
        }
        Ok(())
    }
}

/// The server to load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Host name or address (without IPv6 brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// smtps://: TLS from the first byte.
    pub implicit_tls: bool,
}

impl Target {
    /// Parses `smtp://host:port`, `smtps://host:port`, `host:port` or `[v6addr]:port` (ports default to 25
    /// and 465).
    pub fn parse(input: &str) -> Result<Target, LoadError> {
        let bad = |reason: String| LoadError::InvalidFlag {
            flag: "TARGET",
            reason,
        };
        let (implicit_tls, rest) = if let Some(r) = input.strip_prefix("smtp://") {
            (false, r)
        } else if let Some(r) = input.strip_prefix("smtps://") {
            (true, r)
        } else if let Some((scheme, _)) = input.split_once("://") {
            return Err(bad(format!(
                "'{input}': unsupported scheme '{scheme}' (use smtp:// or smtps://)"
            )));
        } else {
            (false, input)
        };
        let rest = rest.trim_end_matches('/');
        let default_port = if implicit_tls { 465 } else { 25 };
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| bad(format!("'{input}': missing ']' after IPv6 address")))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(bad(format!("'{input}': expected ':PORT' after ']'"))),
            };
            (h.to_string(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (rest.to_string(), None),
            }
        };
        if host.is_empty() || host.contains('/') || host.contains('@') {
            return Err(bad(format!(
                "'{input}': expected smtp://HOST:PORT or smtps://HOST:PORT"
            )));
        }
        let port = match port {
            None => default_port,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| bad(format!("'{input}': port '{p}' is not 1-65535")))?,
        };
        Ok(Target {
            host,
            port,
            implicit_tls,
        })
    }

    /// `host:port` for resolving (IPv6 addresses bracketed).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The URL form.
    pub fn url(&self) -> String {
        let scheme = if self.implicit_tls { "smtps" } else { "smtp" };
        format!("{scheme}://{}", self.authority())
    }
}

/// AUTH credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// TLS trust settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM CA file; `None` uses the system trust store.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate.
    pub insecure: bool,
    /// Name to check the certificate against instead of the target host.
    pub server_name: Option<String>,
}

/// How messages are started.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum Pacing {
    /// Each session sends its next message when the previous one is answered.
    Closed,
    /// Messages start on a fixed schedule of `rate` per second.
    Open {
        /// Messages per second.
        rate: f64,
    },
}

/// Message sizes and how often each is used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeMix {
    /// `(size in bytes, weight)` pairs; weights are relative.
    pub entries: Vec<(usize, u32)>,
}

/// Largest message size accepted by `--size`.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

impl SizeMix {
    /// Every message has this size.
    pub fn fixed(size: usize) -> SizeMix {
        SizeMix {
            entries: vec![(size, 1)],
        }
    }

    /// Parses `4k` or `1k:50,4k:40,100k:10`.
    pub fn parse(input: &str) -> Result<SizeMix, LoadError> {
        let err = |at: &str| LoadError::SizeMix {
            input: input.to_string(),
            at: at.to_string(),
        };
        let mut entries = Vec::new();
        for part in input.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return Err(err(part));
            }
            let (size, weight) = match part.split_once(':') {
                Some((s, w)) => {
                    let w = w.trim();
                    let weight = w.parse::<u32>().map_err(|_| err(w))?;
                    (s.trim(), weight)
                }
                None => (part, 1),
            };
            let size = parse_size(size).ok_or_else(|| err(size))?;
            if size > MAX_MESSAGE_SIZE {
                return Err(err(part));
            }
            entries.push((size, weight));
        }
        if entries.iter().all(|&(_, w)| w == 0) {
            return Err(err(input));
        }
        let total: u64 = entries.iter().map(|&(_, w)| u64::from(w)).sum();
        if total > u64::from(u32::MAX) {
            return Err(err(input));
        }
        Ok(SizeMix { entries })
    }

    /// The index into `entries` for a message, picked deterministically from `seq` by weight.
    pub fn pick(&self, seq: u64) -> usize {
        let total: u64 = self.entries.iter().map(|&(_, w)| u64::from(w)).sum();
        if total == 0 || self.entries.len() == 1 {
            return 0;
        }
        let mut x = splitmix64(seq) % total;
        for (i, &(_, w)) in self.entries.iter().enumerate() {
            if x < u64::from(w) {
                return i;
            }
            x -= u64::from(w);
        }
        self.entries.len() - 1
    }
}

/// A fast, well-mixed hash of a sequence number (SplitMix64's finaliser).
pub(crate) fn splitmix64(seq: u64) -> u64 {
    let mut z = seq.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Parses a byte size: `4096`, `4k`/`4kb`/`4KiB` (×1024), `1m` (×1024²).
pub fn parse_size(input: &str) -> Option<usize> {
    let s = input.trim().to_ascii_lowercase();
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(digits_end);
    let n: usize = num.parse().ok()?;
    let mult = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        _ => return None,
    };
    let size = n.checked_mul(mult)?;
    (size > 0).then_some(size)
}

/// Parses a duration: `30s`, `5m`, `1h`, `250ms`, or a bare number of seconds (`1.5`).
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    mailrig_core::duration::parse_duration(input, "a duration")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: LoadArgs,
    }

    fn args(extra: &[&str]) -> LoadArgs {
        let mut argv = vec!["load"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn help_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("--messages-per-connection"), "{help}");
    }

    #[test]
    fn size_mix_parses() {
        let mix = SizeMix::parse("1k:50,4k:40,100k:10").unwrap();
        assert_eq!(mix.entries, [(1024, 50), (4096, 40), (102_400, 10)]);
        assert_eq!(SizeMix::parse("4096").unwrap(), SizeMix::fixed(4096));
        assert_eq!(SizeMix::parse("2KiB").unwrap(), SizeMix::fixed(2048));
        assert_eq!(SizeMix::parse("1m").unwrap(), SizeMix::fixed(1024 * 1024));
    }

    #[test]
    fn size_mix_errors_point_at_the_bad_part() {
        let e = SizeMix::parse("1k:50,4q:40").unwrap_err().to_string();
        assert!(
            e.contains("cannot parse size mix '1k:50,4q:40' at '4q'"),
            "{e}"
        );
        let e = SizeMix::parse("1k:x").unwrap_err().to_string();
        assert!(e.contains("at 'x'"), "{e}");
        assert!(SizeMix::parse("1k:50,,4k:1").is_err());
        assert!(SizeMix::parse("0").is_err());
        assert!(SizeMix::parse("1k:0").is_err());
        assert!(SizeMix::parse("1000m").is_err());
    }

    #[test]
    fn size_mix_picks_by_weight() {
        let mix = SizeMix::parse("1k:50,4k:40,100k:10").unwrap();
        let mut counts = [0u32; 3];
        for seq in 0..100_000 {
            counts[mix.pick(seq)] += 1;
        }
        // deterministic hash, so these bounds are fixed, not flaky
        assert!((48_000..52_000).contains(&counts[0]), "{counts:?}");
        assert!((38_000..42_000).contains(&counts[1]), "{counts:?}");
        assert!((9_000..11_000).contains(&counts[2]), "{counts:?}");
    }

    #[test]
    fn targets_parse() {
        let t = Target::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.implicit_tls),
            ("127.0.0.1", 2525, false)
        );
        let t = Target::parse("smtps://mx.example").unwrap();
        assert_eq!((t.port, t.implicit_tls), (465, true));
        let t = Target::parse("[::1]:25").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 25));
        assert_eq!(t.authority(), "[::1]:25");
        assert!(
            Target::parse("http://x")
                .unwrap_err()
                .to_string()
                .contains("unsupported scheme")
        );
        assert!(
            Target::parse("smtp://x:99999")
                .unwrap_err()
                .to_string()
                .contains("port")
        );
        assert!(Target::parse("smtp://:25").is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("3 days").is_err());
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn args_become_a_config() {
        let c = args(&[
            "smtp://127.0.0.1:2525",
            "--to",
            "user{01..25}@patente.test",
            "-c",
            "4",
        ])
        .into_config(vec!["extra@x.test".into()])
        .unwrap();
        assert_eq!(c.recipients.len(), 26);
        assert_eq!(c.sessions, 4);
        assert_eq!(c.messages, Some(1000));
        assert_eq!(c.pacing, Pacing::Closed);
    }

    #[test]
    fn bad_flags_are_named() {
        let e = |a: &[&str]| args(a).into_config(vec![]).unwrap_err().to_string();
        assert_eq!(
            e(&["x:25", "--to", "a@b", "--rate", "0"]),
            "--rate must be > 0"
        );
        assert!(e(&["x:25", "--to", "a@b", "-c", "0"]).starts_with("--sessions"));
        assert!(e(&["x:25"]).starts_with("--to is required"));
        assert!(
            e(&["x:25", "--to", "a@b", "--recipients-per-message", "2"])
                .starts_with("--recipients-per-message")
        );
        assert!(e(&["x:25", "--to", "a@b", "--duration", "soon"]).starts_with("--duration"));
        assert!(e(&["x:25", "--to", "a@b", "--auth", "nopass"]).starts_with("--auth"));
        assert!(e(&["x:25", "--to", "a@b", "--size", "1k:x"]).starts_with("--size"));
        assert!(e(&["smtps://x", "--to", "a@b", "--starttls"]).starts_with("--starttls"));
        assert!(e(&["x:25", "--to", "a@b", "--run-id", "a b"]).starts_with("--run-id"));
    }
}
