//! `mailrig serve`: start a fake mail world and run until Ctrl-C or SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use mailrig_core::Scenario;
use mailrig_server::MockServer;

#[derive(Debug, Args)]
#[command(
    after_help = "Listeners: each flag takes HOST:PORT or off. Without one, a listener uses \
                        --listen's address and --port-base N + its standard port (SMTP N+25, SMTPS \
                        N+465, IMAP N+143, IMAPS N+993, POP3 N+110, POP3S N+995, HTTP N+80), or its \
                        default. `--listen 127.0.0.1:0` gives every listener a free port; the banner \
                        prints what was bound.\n\n\
                        Exit codes: 0 stopped by Ctrl-C or SIGTERM, 2 could not start (bad scenario, \
                        a port in use, bad flags)."
)]
pub struct ServeArgs {
    /// Scenario file, or a catalog name (`mailrig scenario list`), describing
    /// the world (default: the built-in default world).
    #[arg(long, value_name = "FILE|NAME")]
    scenario: Option<String>,
    /// Address for every listener: IP (default ports, or --port-base) or IP:0 (a free port each).
    #[arg(long, value_name = "IP[:0]")]
    listen: Option<String>,
    /// Move every listener to N + its standard port number (e.g. 10000: SMTP on 10025).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64540))]
    port_base: Option<u16>,
    /// SMTP listener (STARTTLS offered) [default: 127.0.0.1:2525].
    #[arg(long, value_name = "ADDR|off", value_parser = parse_listener)]
    smtp: Option<Listener>,
    /// SMTP listener with TLS from the first byte [default: 127.0.0.1:4650].
    #[arg(long, value_name = "ADDR|off", value_parser = parse_listener)]
    smtps: Option<Listener>,
    /// IMAP listener (STARTTLS offered) [default: 127.0.0.1:1143].
    #[arg(long, value_name = "ADDR|off", value_parser = parse_listener)]
    imap: Option<Listener>,
    /// IMAP listener with TLS from the first byte [default: 127.0.0.1:9930].
    #[arg(long, value_name = "ADDR|off", value_parser = parse_listener)]
    imaps: Option<Listener>,
    /// POP3 listener (STLS offered) [default: 127.0.0.1:1110].
    #[arg(long, value_name = "ADDR|off", value_parser = parse_listener)]
    pop3: Option<Listener>,
    /// POP3 listener with TLS from the first byte [default: 127.0.0.1:9950].
    #[arg(long, value_name = "ADDR|off", value_parser = parse_listener)]
    pop3s: Option<Listener>,
    /// HTTP control API and web page (no token unless --http-token: keep it on loopback) [default: 127.0.0.1:8025].
    #[arg(long, value_name = "ADDR|off", value_parser = parse_listener)]
    http: Option<Listener>,
    /// The world's DNS server, UDP and TCP on one address (off by default):
    /// authoritative for the scenario's zones ([dns]); port 0 picks a free one.
    #[arg(long, value_name = "ADDR|off", value_parser = parse_listener)]
    dns: Option<Listener>,
    /// Also answer HTTP requests whose Host is NAME (repeatable; '*' for any).
    /// Without it only loopback names and addresses and the listening address
    /// are answered, which stops DNS rebinding.
    #[arg(long, value_name = "NAME")]
    http_allow_host: Vec<String>,
    /// Require `Authorization: Bearer TOKEN` (or HTTP Basic with TOKEN as
    /// password) with every HTTP request.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "MAILRIG_HTTP_TOKEN",
        hide_env_values = true
    )]
    http_token: Option<String>,
    /// Show the training lab in DIR (`mailrig lab start --dir DIR`) on the page and at
    /// `GET /api/v1/lab`: its task, hints revealed, last check and score.
    #[arg(long, value_name = "DIR")]
    lab: Option<PathBuf>,
    /// Persist messages as Maildir under DIR (default: memory only).
    #[arg(long, value_name = "DIR")]
    maildir: Option<PathBuf>,
    /// Where to write the local CA certificate clients should trust.
    #[arg(long, value_name = "PATH", default_value_os_t = std::env::temp_dir().join("mailrig-ca.pem"))]
    ca_out: PathBuf,
    /// Worker threads serving connections (default: one per CPU core).
    /// Measured on 2 cores with `scripts/bench-peers.sh`, two workers were
    /// ahead of mailin-embedded in every row, one worker fell behind it with
    /// 100 KiB and 1 MiB messages (one core copying the bytes); one worker
    /// is a little faster with 4 KiB messages, where no wake-ups cross threads.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// Listen backlog of every listener (default: the scenario's `[limits]
    /// listen_backlog`, else 4096; the kernel caps it at net.core.somaxconn).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    backlog: Option<u32>,
    /// Bind every `[[host]]` listener to port 0 at its host's address
    /// instead of the port the scenario gives (25 for SMTP by default).
    #[arg(long)]
    host_free_ports: bool,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let scenario = match &args.scenario {
        Some(arg) => crate::scenario_cmd::resolve(arg)?,
        None => Scenario::builtin_default(),
    };
    let threads = match args.threads {
        Some(n) => usize::from(n),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let plan = ListenPlan::new(args.listen.as_deref(), args.port_base)?;
    let [smtp, smtps, imap, imaps, pop3, pop3s, http] = [
        (args.smtp, LISTENERS[0]),
        (args.smtps, LISTENERS[1]),
        (args.imap, LISTENERS[2]),
        (args.imaps, LISTENERS[3]),
        (args.pop3, LISTENERS[4]),
        (args.pop3s, LISTENERS[5]),
        (args.http, LISTENERS[6]),
    ]
    .map(|(flag, (_, default, standard))| plan.address(flag, default, standard));
    anyhow::ensure!(
        [smtp, smtps, imap, imaps, pop3, pop3s, http]
            .iter()
            .any(Option::is_some),
        "every listener is off: leave at least one on"
    );
    runtime.block_on(async move {
        let mut builder = MockServer::builder()
            .scenario(scenario)
            .ca_path(&args.ca_out)
            .smtp(smtp)
            .smtps(smtps)
            .imap(imap)
            .imaps(imaps)
            .pop3(pop3)
            .pop3s(pop3s)
            .http(http)
            .dns(match args.dns {
                Some(Listener::At(a)) => Some(a),
                Some(Listener::Off) | None => None,
            });
        if let Some(dir) = &args.maildir {
            builder = builder.maildir(dir);
        }
        if let Some(n) = args.backlog {
            builder = builder.listen_backlog(n);
        }
        if !args.host_free_ports {
            builder = builder.host_ports_as_written();
        }
        for name in &args.http_allow_host {
            builder = builder.http_allow_host(name);
        }
        if let Some(token) = &args.http_token {
            builder = builder.http_token(token);
        }
        let token_required = args.http_token.is_some();
        let server = builder.start().await?;
        if let Some(dir) = &args.lab {
            let _ = server
                .state()
                .lab_dir
                .set(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone()));
        }
        // Handlers first, banner second: a Ctrl-C typed the moment "Press Ctrl-C" shows must stop the
        // server cleanly, not kill it with the default SIGINT action (exit 130).
        let stop = StopSignals::install();
        print_banner(&server, token_required);
        stop.wait().await;
        println!("mailrig: shutting down");
        server.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

fn print_banner(server: &MockServer, token_required: bool) {
    let a = server.addresses();
    let s = server.scenario();
    println!("mailrig serve: {}", s.source);
    let show = |name: &str, addr: Option<SocketAddr>| match addr {
        Some(addr) => println!("  {name:<6} {addr}"),
        None => println!("  {name:<6} off"),
    };
    show("SMTP", a.smtp);
    show("SMTPS", a.smtps);
    show("IMAP", a.imap);
    show("IMAPS", a.imaps);
    show("POP3", a.pop3);
    show("POP3S", a.pop3s);
    match a.http {
        Some(addr) => println!(
            "  HTTP   http://{addr}/  (API: /api/v1, metrics: /metrics{})",
            if token_required {
                "; token required"
            } else {
                ""
            }
        ),
        None => println!("  HTTP   off"),
    }
    if let Some(addr) = a.dns {
        println!(
            "  DNS    {addr}  (UDP and TCP; dig @{} -p {} MX <domain>)",
            addr.ip(),
            addr.port()
        );
    }
    println!(
        "  CA     {}  (trust this file for TLS)",
        server.ca_path().display()
    );
    if let Some(dir) = server.store().maildir_root() {
        println!("  Maildir {}", dir.display());
    }
    for h in server.hosts() {
        let a = h.addresses();
        let mut parts = Vec::new();
        for (name, addr) in [
            ("SMTP", a.smtp),
            ("SMTPS", a.smtps),
            ("submission", a.submission),
            ("IMAP", a.imap),
            ("POP3", a.pop3),
        ] {
            if let Some(addr) = addr {
                parts.push(format!("{name} {addr}"));
            }
        }
        let state = if h.host.down {
            "down".to_string()
        } else {
            parts.join(", ")
        };
        println!("  host {:<12} {} ({})", h.name(), state, h.host.hostname);
    }
    let world = server.world();
    println!();
    print!("{}", s.summary());
    const MAX_LISTED: usize = 50;
    println!("\n  mailbox (login)                         password");
    for m in world.mailboxes.iter().take(MAX_LISTED) {
        println!("  {:<40} {}", m.login, m.password);
    }
    if world.mailboxes.len() > MAX_LISTED {
        println!("  ... and {} more", world.mailboxes.len() - MAX_LISTED);
    }
    println!("\nPress Ctrl-C to stop.");
}

/// A listener flag's value: an address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listener {
    Off,
    At(SocketAddr),
}

fn parse_listener(s: &str) -> Result<Listener, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(Listener::Off);
    }
    s.parse()
        .map(Listener::At)
        .map_err(|_| format!("'{s}' is neither HOST:PORT (e.g. 127.0.0.1:2525, [::1]:0) nor off"))
}

/// Each listener: its name, its default port and the standard port `--port-base` adds to.
const LISTENERS: [(&str, u16, u16); 7] = [
    ("SMTP", 2525, 25),
    ("SMTPS", 4650, 465),
    ("IMAP", 1143, 143),
    ("IMAPS", 9930, 993),
    ("POP3", 1110, 110),
    ("POP3S", 9950, 995),
    ("HTTP", 8025, 80),
];

/// Where listeners without a flag of their own go: `--listen` and `--port-base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ListenPlan {
    ip: IpAddr,
    ports: PortChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortChoice {
    Default,
    Free,
    Base(u16),
}

impl ListenPlan {
    fn new(listen: Option<&str>, port_base: Option<u16>) -> anyhow::Result<ListenPlan> {
        let (ip, free) = match listen {
            None => (IpAddr::from([127, 0, 0, 1]), false),
            Some(s) => match (s.parse::<IpAddr>(), s.parse::<SocketAddr>()) {
                (Ok(ip), _) => (ip, false),
                (_, Ok(a)) if a.port() == 0 => (a.ip(), true),
                (_, Ok(a)) => anyhow::bail!(
                    "--listen {s}: one port ({}) cannot serve every listener: give {}:0 for a free port each, or --port-base N",
                    a.port(),
                    a.ip()
                ),
                _ => anyhow::bail!("--listen {s}: give an IP address (127.0.0.1, ::1) or IP:0"),
            },
        };
        let ports = match (free, port_base) {
            (true, Some(_)) => {
                anyhow::bail!("--listen IP:0 and --port-base contradict each other: pick one")
            }
            (true, None) => PortChoice::Free,
            (false, Some(n)) => PortChoice::Base(n),
            (false, None) => PortChoice::Default,
        };
        Ok(ListenPlan { ip, ports })
    }

    /// The address of one listener: its own flag wins, then the plan.
    fn address(&self, flag: Option<Listener>, default: u16, standard: u16) -> Option<SocketAddr> {
        match flag {
            Some(Listener::Off) => None,
            Some(Listener::At(a)) => Some(a),
            None => Some(SocketAddr::new(
                self.ip,
                match self.ports {
                    PortChoice::Default => default,
                    PortChoice::Free => 0,
                    PortChoice::Base(n) => n + standard,
                },
            )),
        }
    }
}

/// Ctrl-C and SIGTERM, listened for from the moment this is made.
struct StopSignals {
    #[cfg(unix)]
    unix: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl StopSignals {
    fn install() -> StopSignals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let unix = signal(SignalKind::interrupt())
                .and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
                .ok();
            StopSignals { unix }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    async fn wait(self) {
        #[cfg(unix)]
        if let Some((mut int, mut term)) = self.unix {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn listener_flags_win_over_the_plan() {
        let plan = ListenPlan::new(None, Some(10000)).unwrap();
        assert_eq!(plan.address(None, 2525, 25), addr("127.0.0.1:10025"));
        assert_eq!(plan.address(None, 8025, 80), addr("127.0.0.1:10080"));
        assert_eq!(plan.address(Some(Listener::Off), 1110, 110), None);
        let own = parse_listener("127.0.0.1:7000").unwrap();
        assert_eq!(plan.address(Some(own), 2525, 25), addr("127.0.0.1:7000"));
        let plan = ListenPlan::new(Some("127.0.0.1:0"), None).unwrap();
        assert_eq!(plan.address(None, 2525, 25), addr("127.0.0.1:0"));
        let plan = ListenPlan::new(Some("::1"), None).unwrap();
        assert_eq!(plan.address(None, 2525, 25), addr("[::1]:2525"));
        let plan = ListenPlan::new(None, None).unwrap();
        assert_eq!(plan.address(None, 1143, 143), addr("127.0.0.1:1143"));
    }

    #[test]
    fn contradictions_and_bad_values_are_named() {
        let e = ListenPlan::new(Some("127.0.0.1:2525"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("127.0.0.1:0"), "{e}");
        let e = ListenPlan::new(Some("127.0.0.1:0"), Some(10000))
            .unwrap_err()
            .to_string();
        assert!(e.contains("contradict"), "{e}");
        assert!(ListenPlan::new(Some("localhost"), None).is_err());
        assert_eq!(parse_listener("OFF").unwrap(), Listener::Off);
        assert!(parse_listener("nowhere").unwrap_err().contains("nor off"));
    }
}
