//! mailrig-core: the fake mail world as pure logic.
//!
//! A message's path through mailrig reads in one direction, and this crate holds
//! every part of it that needs no socket:
//!
//! * [`world`] — domains, mailboxes, credentials, aliases, catch-alls, limits;
//! * [`scenario`] — scenario files (TOML) that describe a world, with errors that
//!   name the file, line and column;
//! * [`catalog`] — the scenario files of `catalog/` (product, not test data), embedded;
//! * [`located`] — the one error type of files a person wrote
//!   (`file:line:column: what is wrong`), for scenario and target files;
//! * [`range`] — the one mailbox-range syntax (`user01..user25`, `user{01..25}`)
//!   and its expander, for scenarios, fault selectors and load recipients;
//! * [`routing`] — where a recipient address leads (`RouteDecision`);
//! * [`host`] — the world's hosts (`[[host]]`): several mail servers, each
//!   with its own address, listeners, domains, mailboxes and faults;
//! * [`collector`] — POP3 collectors (`[[collector]]`) between hosts;
//! * [`dns`] — the world's zones: generated MX/A/PTR records, explicit ones, lookups;
//! * [`duration`] — the one `30s`/`5m`/`250ms` syntax of flags and files;
//! * [`fault`] — the fault plan: what a stage of a session should do instead of
//!   the normal thing;
//! * [`store`] — mailboxes, folders and messages with IMAP semantics, in memory
//!   or persisted as Maildir;
//! * [`journal`] — the record of every decision that changed a message's fate;
//! * [`signal`] — a change counter with wake-ups, for waiters on the store and journal.
//!
//! Servers (SMTP, IMAP, POP3, HTTP) live in `mailrig-server` and only call into
//! these types.

pub mod address;
pub mod catalog;
pub mod collector;
pub mod dns;
pub mod duration;
pub mod fault;
pub mod host;
pub mod journal;
pub mod located;
pub mod range;
pub mod routing;
pub mod scenario;
pub mod sender_auth;
pub mod signal;
pub mod store;
pub mod world;

pub use address::Address;
pub use journal::{Journal, JournalEntry, JournalEvent};
pub use routing::RouteDecision;
pub use scenario::{Scenario, ScenarioError};
pub use store::{Envelope, Flags, NewMessage, Store, StoreError, StoredMessage};
pub use world::{MailboxId, World};
