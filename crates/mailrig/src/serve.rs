//! `mailrig serve`: start a fake mail world and run until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use mailrig_core::Scenario;
use mailrig_server::MockServer;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Scenario file, or a catalog name (`mailrig scenario list`), describing
    /// the world (default: the built-in default world).
    #[arg(long, value_name = "FILE|NAME")]
    scenario: Option<String>,
    /// SMTP listener (STARTTLS offered).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:2525")]
    smtp: SocketAddr,
    /// SMTP listener with TLS from the first byte.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4650")]
    smtps: SocketAddr,
    /// IMAP listener (STARTTLS offered).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:1143")]
    imap: SocketAddr,
    /// IMAP listener with TLS from the first byte.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9930")]
    imaps: SocketAddr,
    /// POP3 listener (STLS offered).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:1110")]
    pop3: SocketAddr,
    /// POP3 listener with TLS from the first byte.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9950")]
    pop3s: SocketAddr,
    /// HTTP control API and web page (no authentication: keep it on loopback).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8025")]
    http: SocketAddr,
    /// Persist messages as Maildir under DIR (default: memory only).
    #[arg(long, value_name = "DIR")]
    maildir: Option<PathBuf>,
    /// Where to write the local CA certificate clients should trust.
    #[arg(long, value_name = "PATH", default_value_os_t = std::env::temp_dir().join("mailrig-ca.pem"))]
    ca_out: PathBuf,
    /// Worker threads serving connections (default: half the CPU cores, at
    /// least one). A fake server usually shares the machine with the client
    /// under test; measured on 2 cores, one worker beat two under smtp-source
    /// load because no wake-ups cross threads.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// Listen backlog of every listener (default: the scenario's `[limits]
    /// listen_backlog`, else 4096; the kernel caps it at net.core.somaxconn).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    backlog: Option<u32>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let scenario = match &args.scenario {
        Some(arg) => crate::scenario_cmd::resolve(arg)?,
        None => Scenario::builtin_default(),
    };
    let threads = match args.threads {
        Some(n) => usize::from(n),
        None => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let mut builder = MockServer::builder()
            .scenario(scenario)
            .ca_path(&args.ca_out)
            .smtp(Some(args.smtp))
            .smtps(Some(args.smtps))
            .imap(Some(args.imap))
            .imaps(Some(args.imaps))
            .pop3(Some(args.pop3))
            .pop3s(Some(args.pop3s))
            .http(Some(args.http));
        if let Some(dir) = &args.maildir {
            builder = builder.maildir(dir);
        }
        if let Some(n) = args.backlog {
            builder = builder.listen_backlog(n);
        }
        let server = builder.start().await?;
        print_banner(&server);
        wait_for_signal().await;
        println!("mailrig: shutting down");
        server.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

fn print_banner(server: &MockServer) {
    let a = server.addresses();
    let s = server.scenario();
    println!("mailrig serve: {}", s.source);
    let show = |name: &str, addr: Option<SocketAddr>| {
        if let Some(addr) = addr {
            println!("  {name:<6} {addr}");
        }
    };
    show("SMTP", a.smtp);
    show("SMTPS", a.smtps);
    show("IMAP", a.imap);
    show("IMAPS", a.imaps);
    show("POP3", a.pop3);
    show("POP3S", a.pop3s);
    if let Some(addr) = a.http {
        println!("  HTTP   http://{addr}/  (API: /api/v1, metrics: /metrics)");
    }
    println!(
        "  CA     {}  (trust this file for TLS)",
        server.ca_path().display()
    );
    if let Some(dir) = server.store().maildir_root() {
        println!("  Maildir {}", dir.display());
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

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
