//! Errors of the load driver, in two families that must not be confused.
//!
//! [`LoadError`] stops a run before it starts (a bad flag, an unreadable file, a report that cannot be
//! merged): its messages name the flag or file and say what to do. [`ErrorKind`] classifies what went wrong
//! with one message *during* a run (refused, reset, timeout, TLS, protocol, rejected by a reply code):
//! those are counted in the report, never returned, because a load run's job is to measure failures.

use std::fmt;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Why a run could not start, or reports could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A flag (or the matching [`crate::LoadConfig`] field) has a value that cannot work.
    #[error("{flag} {reason}")]
    InvalidFlag {
        /// The flag as the user typed it, e.g. `--rate`.
        flag: &'static str,
        /// What is wrong and, where it helps, what would be accepted.
        reason: String,
    },
    /// `--size` holds a size mix that does not parse.
    #[error(
        "--size: cannot parse size mix '{input}' at '{at}': expected SIZE or SIZE:WEIGHT,... (e.g. 4k or 1k:50,4k:40,100k:10)"
    )]
    SizeMix {
        /// The whole value.
        input: String,
        /// The part where parsing failed.
        at: String,
    },
    /// A recipient or recipient pattern is not usable.
    #[error("recipient '{input}': {reason}")]
    Recipient {
        /// The address or pattern.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--to` range is not usable (the text is [`mailrig_core::range`]'s, the same as in scenarios).
    #[error("--to: {0}")]
    Range(#[from] mailrig_core::range::RangeError),
    /// A file named by a flag could not be read.
    #[error("{flag} {path}: {source}")]
    ReadFile {
        /// The flag that named the file.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The target's host name did not resolve.
    #[error("cannot resolve target {target}: {reason}")]
    Resolve {
        /// `host:port`.
        target: String,
        /// Resolver message.
        reason: String,
    },
    /// Nothing answered at the target's address: the run did not start (no message was attempted).
    #[error("cannot connect to {target}: {reason}")]
    Unreachable {
        /// `host:port`.
        target: String,
        /// The connect error.
        reason: String,
    },
    /// The TLS client could not be configured (bad CA file, no usable roots).
    #[error("TLS setup: {0}")]
    TlsSetup(String),
    /// A report could not be read, written or merged.
    #[error("report: {0}")]
    Report(String),
    /// A report's JSON is malformed.
    #[error("report JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The class of a failed message, as counted in [`crate::Report`]'s `errors.by_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The connection was refused (nothing listening, or a firewall said no).
    Refused,
    /// The connection was reset, aborted or closed by the peer mid-session.
    Reset,
    /// No reply (or no connection) within the reply timeout.
    Timeout,
    /// The TLS handshake failed (certificate, protocol version, alert).
    Tls,
    /// The server's bytes were not a valid SMTP reply, or the reply made no sense at that point.
    Protocol,
    /// The server answered with a 4xx or 5xx reply code (see `errors.by_code`).
    Rejected,
    /// Any other local I/O error (out of file descriptors, no route, ...).
    Io,
}

impl ErrorKind {
    /// Every kind, in report order.
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::Refused,
        ErrorKind::Reset,
        ErrorKind::Timeout,
        ErrorKind::Tls,
        ErrorKind::Protocol,
        ErrorKind::Rejected,
        ErrorKind::Io,
    ];

    /// The kind of an I/O error met while connecting, reading or writing.
    pub fn of_io(kind: io::ErrorKind) -> ErrorKind {
        use io::ErrorKind as K;
        match kind {
            K::ConnectionRefused => ErrorKind::Refused,
            K::ConnectionReset
            | K::ConnectionAborted
            | K::BrokenPipe
            | K::UnexpectedEof
            | K::NotConnected => ErrorKind::Reset,
            K::TimedOut | K::WouldBlock => ErrorKind::Timeout,
            K::InvalidData => ErrorKind::Protocol,
            _ => ErrorKind::Io,
        }
    }

    /// The kind of a reply code that ended a message: `None` for success codes (2xx, 3xx).
    pub fn of_reply_code(code: u16) -> Option<ErrorKind> {
        match code {
            200..=399 => None,
            400..=599 => Some(ErrorKind::Rejected),
            _ => Some(ErrorKind::Protocol),
        }
    }

    /// The name used in reports and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Refused => "refused",
            ErrorKind::Reset => "reset",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Tls => "tls",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Rejected => "rejected",
            ErrorKind::Io => "io",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What ended one message attempt badly, inside a session (never leaves the crate as an error:
/// it is counted).
#[derive(Debug)]
pub(crate) struct Failure {
    pub kind: ErrorKind,
    /// The command and reply code when the server said no.
    pub code: Option<(crate::stage::Stage, u16)>,
    /// Whether the connection can still be used (a rejected RCPT leaves it usable; a reset does not).
    pub connection_usable: bool,
    pub detail: String,
}

impl Failure {
    pub fn io(err: &io::Error) -> Failure {
        // rustls reports handshake problems as InvalidData wrapping a rustls::Error.
        let kind = if err
            .get_ref()
            .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            ErrorKind::Tls
        } else {
            ErrorKind::of_io(err.kind())
        };
        Failure {
            kind,
            code: None,
            connection_usable: false,
            detail: err.to_string(),
        }
    }

    pub fn timeout(what: &str) -> Failure {
        Failure {
            kind: ErrorKind::Timeout,
            code: None,
            connection_usable: false,
            detail: format!("no reply to {what} within the timeout"),
        }
    }

    pub fn protocol(detail: impl Into<String>) -> Failure {
        Failure {
            kind: ErrorKind::Protocol,
            code: None,
            connection_usable: false,
            detail: detail.into(),
        }
    }

    pub fn tls(detail: impl Into<String>) -> Failure {
        Failure {
            kind: ErrorKind::Tls,
            code: None,
            connection_usable: false,
            detail: detail.into(),
        }
    }

    pub fn rejected(
        stage: crate::stage::Stage,
        code: u16,
        connection_usable: bool,
        detail: impl Into<String>,
    ) -> Failure {
        Failure {
            kind: ErrorKind::of_reply_code(code).unwrap_or(ErrorKind::Protocol),
            code: Some((stage, code)),
            // 421: the server is closing the channel.
            connection_usable: connection_usable && code != 421,
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_error_kinds_map_to_report_kinds() {
        use io::ErrorKind as K;
        assert_eq!(ErrorKind::of_io(K::ConnectionRefused), ErrorKind::Refused);
        assert_eq!(ErrorKind::of_io(K::ConnectionReset), ErrorKind::Reset);
        assert_eq!(ErrorKind::of_io(K::BrokenPipe), ErrorKind::Reset);
        assert_eq!(ErrorKind::of_io(K::UnexpectedEof), ErrorKind::Reset);
        assert_eq!(ErrorKind::of_io(K::TimedOut), ErrorKind::Timeout);
        assert_eq!(ErrorKind::of_io(K::InvalidData), ErrorKind::Protocol);
        assert_eq!(ErrorKind::of_io(K::AddrNotAvailable), ErrorKind::Io);
    }

    #[test]
    fn reply_codes_map_to_kinds() {
        assert_eq!(ErrorKind::of_reply_code(250), None);
        assert_eq!(ErrorKind::of_reply_code(354), None);
        assert_eq!(ErrorKind::of_reply_code(450), Some(ErrorKind::Rejected));
        assert_eq!(ErrorKind::of_reply_code(550), Some(ErrorKind::Rejected));
        assert_eq!(ErrorKind::of_reply_code(199), Some(ErrorKind::Protocol));
        assert_eq!(ErrorKind::of_reply_code(600), Some(ErrorKind::Protocol));
    }

    #[test]
    fn tls_errors_inside_io_errors_are_tls() {
        let err = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::Expired),
        );
        assert_eq!(Failure::io(&err).kind, ErrorKind::Tls);
        let plain = io::Error::new(io::ErrorKind::InvalidData, "garbage");
        assert_eq!(Failure::io(&plain).kind, ErrorKind::Protocol);
    }

    #[test]
    fn a_421_closes_the_connection() {
        use crate::stage::Stage;
        let f = Failure::rejected(Stage::Mail, 421, true, "closing");
        assert!(!f.connection_usable);
        assert_eq!(f.kind, ErrorKind::Rejected);
        assert!(Failure::rejected(Stage::Mail, 550, true, "no").connection_usable);
    }

    #[test]
    fn flag_errors_name_the_flag() {
        let e = LoadError::InvalidFlag {
            flag: "--rate",
            reason: "must be > 0".into(),
        };
        assert_eq!(e.to_string(), "--rate must be > 0");
    }
}
