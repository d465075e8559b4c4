//! The timed steps of an SMTP session, as the load driver names them in histograms, errors and reports.
//!
//! A leaf module: histograms, errors, reports and the session all use it, it uses none of them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A timed step of an SMTP session. `Message` is the whole message, from its start (closed loop) or its
/// scheduled start (open loop) to the reply to its end of data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// TCP connect.
    Connect,
    /// TLS handshake (smtps:// at connect, or after STARTTLS).
    TlsHandshake,
    /// The 220 greeting after connect.
    Greeting,
    /// EHLO (and the second EHLO after STARTTLS).
    Ehlo,
    /// The STARTTLS command's reply.
    #[serde(rename = "starttls")]
    StartTls,
    /// The whole AUTH exchange.
    Auth,
    /// MAIL FROM.
    Mail,
    /// Each RCPT TO.
    Rcpt,
    /// DATA (the 354 reply).
    Data,
    /// The reply to the end of data (the server has taken the message).
    EndOfData,
    /// The whole message, as seen by the sender.
    Message,
}

impl Stage {
    /// Every stage, in session order.
    pub const ALL: [Stage; 11] = [
        Stage::Connect,
        Stage::TlsHandshake,
        Stage::Greeting,
        Stage::Ehlo,
        Stage::StartTls,
        Stage::Auth,
        Stage::Mail,
        Stage::Rcpt,
        Stage::Data,
        Stage::EndOfData,
        Stage::Message,
    ];

    /// Name used in tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::TlsHandshake => "tls_handshake",
            Stage::Greeting => "greeting",
            Stage::Ehlo => "ehlo",
            Stage::StartTls => "starttls",
            Stage::Auth => "auth",
            Stage::Mail => "mail",
            Stage::Rcpt => "rcpt",
            Stage::Data => "data",
            Stage::EndOfData => "end_of_data",
            Stage::Message => "message",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
