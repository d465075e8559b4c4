//! The mailin-embedded peer of `scripts/bench-peers.sh`: the smallest server a person would write with
//! that crate — accept everything, keep each message (envelope and bytes) in a `Vec` in memory — so the
//! benchmark compares mailrig with the crate's own model, not with a strawman.
//!
//! ```text
//! cargo run --release -p mailrig-benches --example mailin_sink -- SMTP_ADDR THREADS [COUNT_ADDR]
//! ```
//!
//! mailin-embedded serves each session on a fixed thread pool with blocking I/O: `THREADS` is the cap on
//! concurrent sessions (a client beyond it gets no greeting until a session ends), so give at least as many
//! as the load has sessions. Connecting to `COUNT_ADDR` returns the number of messages stored so far as
//! one line, which is how the script checks messages received against messages sent.

use std::io::Write as _;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use mailin_embedded::{Handler, Response, Server, SslConfig, response};

/// One stored message.
#[allow(dead_code)] // kept, never read: the point is to hold it in memory like a test server would
struct Stored {
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

/// Cloned for every connection by mailin-embedded: the shared list, plus this session's message.
#[derive(Clone, Default)]
struct Sink {
    stored: Arc<Mutex<Vec<Stored>>>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Sink {
    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.from = from.to_string();
        self.to = to.to_vec();
        self.data.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let message = Stored {
            from: std::mem::take(&mut self.from),
            to: std::mem::take(&mut self.to),
            data: std::mem::take(&mut self.data),
        };
        match self.stored.lock() {
            Ok(mut list) => {
                list.push(message);
                response::OK
            }
            Err(_) => response::INTERNAL_ERROR,
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(threads)) = (args.next(), args.next()) else {
        eprintln!("usage: mailin_sink SMTP_ADDR THREADS [COUNT_ADDR]");
        std::process::exit(2);
    };
    let Ok(threads) = threads.parse::<u32>() else {
        eprintln!("mailin_sink: THREADS must be a number, got '{threads}'");
        std::process::exit(2);
    };
    let sink = Sink::default();
    if let Some(count_addr) = args.next() {
        let stored = Arc::clone(&sink.stored);
        let listener = TcpListener::bind(&count_addr).unwrap_or_else(|e| {
            eprintln!("mailin_sink: cannot listen on {count_addr}: {e}");
            std::process::exit(1);
        });
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let n = stored.lock().map(|l| l.len()).unwrap_or(0);
                let _ = writeln!(conn, "{n}");
            }
        });
    }
    let mut server = Server::new(sink);
    let configured = server
        .with_name("mailin-sink.test")
        .with_num_threads(threads)
        .with_ssl(SslConfig::None)
        .and_then(|s| s.with_addr(&addr));
    if let Err(e) = configured {
        eprintln!("mailin_sink: {e}");
        std::process::exit(1);
    }
    if let Err(e) = server.serve() {
        eprintln!("mailin_sink: {e}");
        std::process::exit(1);
    }
}
