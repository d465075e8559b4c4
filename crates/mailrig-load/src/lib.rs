//! mailrig-load: the SMTP load driver behind `mailrig load`.
//!
//! A run opens N SMTP sessions against a target, sends messages in a closed loop (each session as fast as
//! replies come) or an open loop (a fixed arrival rate, latency measured from each message's scheduled
//! start, so a stalled server cannot hide), and reports throughput, per-stage latency histograms and errors
//! by kind and reply code. Reports from several machines merge exactly.
//!
//! The path of a run, module by module:
//!
//! ```text
//! config (flags → LoadConfig) ─► run (resolve, spawn) ─► session × N ─► report ─► merge
//!   recipients, message            pacing (tickets)      client (protocol logic), reply (parser),
//!                                                        tls; histogram + accepted fill the tally
//! ```
//!
//! The binary's calls:
//!
//! ```no_run
//! # async fn example(args: mailrig_load::LoadArgs) -> Result<(), mailrig_load::LoadError> {
//! let config = args.into_config(vec![])?; // or addresses taken from a scenario file
//! let report = mailrig_load::run(config, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await?;
//! println!("{}", report.to_table());
//! let combined = mailrig_load::merge(&[report.clone(), report])?; // errors: same run twice
//! # Ok(()) }
//! ```

pub mod accepted;
pub mod client;
pub mod config;
pub mod errors;
pub mod histogram;
pub mod merge;
pub mod message;
pub mod pacing;
pub mod recipients;
pub mod reply;
pub mod report;
mod run;
mod session;
pub mod stage;
pub mod thresholds;
pub mod tls;
pub mod verification;

pub use accepted::{AcceptTimes, AcceptedMessages, message_id};
pub use config::{Credentials, LoadArgs, LoadConfig, Pacing, SizeMix, Target, TlsOptions};
pub use errors::{ErrorKind, LoadError};
pub use histogram::LatencySummary;
pub use merge::merge;
pub use recipients::RecipientPool;
pub use report::{Counts, Errors, Report, RunInfo};
pub use run::{new_run_id, run};
pub use stage::Stage;
pub use thresholds::{ThresholdArgs, Thresholds};
pub use verification::{MailboxVerification, Verification};
