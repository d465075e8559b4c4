//! mailrig-server: the fake mail world on the network.
//!
//! * [`smtp`] — mail in (ESMTP with PIPELINING, SIZE, STARTTLS, AUTH, ...);
//! * [`imap`] and [`pop3`] — mail out, over the same store;
//! * [`sasl`] — SASL PLAIN responses, read by one rule for SMTP and IMAP;
//! * [`tls`] — the local CA and certificates made at start-up;
//! * [`listener`] and [`net`] — the accept loop and the plain/TLS stream all
//!   protocols share;
//! * [`hosts`] — the world's `[[host]]`s, each on its own loopback address,
//!   and the store-and-forward of backup MX and relay hosts;
//! * [`collector`] — `[[collector]]`s fetching over POP3 between hosts;
//! * [`dns`] — the world's DNS server (UDP and TCP, hickory-server),
//!   authoritative for the scenario's zones, with DNS faults;
//! * [`mock`] — [`MockServer`], which starts a whole world on port 0 for tests
//!   and `mailrig serve` alike, and stops every task on `shutdown()`.

pub mod collector;
pub mod cpus;
pub mod delivered;
pub mod dns;
pub mod driver;
pub mod faults;
pub mod hosts;
pub mod http;
pub mod imap;
pub mod listener;
pub mod mock;
pub mod net;
pub mod pop3;
pub mod sasl;
pub mod search;
pub mod sender_auth;
pub mod smtp;
pub mod state;
pub mod tls;

pub use faults::{FaultError, FaultInfo};
pub use mock::{MockServer, MockServerBuilder, StartError};
pub use state::ServerState;
