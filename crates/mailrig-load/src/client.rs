//! The SMTP client's protocol logic, separate from sockets: which command bytes to write next and what each
//! reply means. [`crate::session`] owns the connection and the clock and feeds replies in here.
//!
//! A mail transaction is the [`Transaction`] state machine. With PIPELINING (RFC 2920) it writes
//! `MAIL`, every `RCPT` and `DATA` in one write and then reads the replies in order; without, one command per
//! round trip. Either way the result is the same [`Outcome`], including the RFC 2920 corner where `DATA` is
//! accepted although every recipient was refused (the client must then send an empty message's `.`).

use base64::Engine as _;

use crate::config::Credentials;
use crate::reply::Reply;
use crate::stage::Stage;

/// What the server offered in its EHLO reply (only what this client uses).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// PIPELINING (RFC 2920).
    pub pipelining: bool,
    /// STARTTLS (RFC 3207).
    pub starttls: bool,
    /// AUTH PLAIN offered.
    pub auth_plain: bool,
    /// AUTH LOGIN offered.
    pub auth_login: bool,
    /// SIZE, with the limit if given (RFC 1870).
    pub size: Option<u64>,
}

impl Capabilities {
    /// Reads the keywords of an EHLO reply (the first line is the server's name and is skipped).
    pub fn from_ehlo(reply: &Reply<'_>) -> Capabilities {
        let mut caps = Capabilities::default();
        for line in reply.lines().skip(1) {
            let text = String::from_utf8_lossy(line).to_ascii_uppercase();
            let mut words = text.split([' ', '=']);
            match words.next() {
                Some("PIPELINING") => caps.pipelining = true,
                Some("STARTTLS") => caps.starttls = true,
                Some("SIZE") => {
                    caps.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0));
                }
                Some("AUTH") => {
                    for mech in words {
                        match mech {
                            "PLAIN" => caps.auth_plain = true,
                            "LOGIN" => caps.auth_login = true,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        caps
    }
}

/// Appends `EHLO name`.
pub fn write_ehlo(name: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"EHLO ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends `HELO name` (the fallback for servers that refuse EHLO).
pub fn write_helo(name: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"HELO ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The STARTTLS command.
pub const STARTTLS: &[u8] = b"STARTTLS\r\n";
/// The RSET command, sent after a failed transaction so the connection can carry the next one.
pub const RSET: &[u8] = b"RSET\r\n";
/// The QUIT command.
pub const QUIT: &[u8] = b"QUIT\r\n";
/// The end of message content.
pub const END_OF_DATA: &[u8] = b".\r\n";

/// The AUTH exchange (PLAIN preferred, LOGIN otherwise).
#[derive(Debug)]
pub struct Auth {
    state: AuthState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthState {
    PlainSent,
    LoginStarted,
    LoginUserSent,
    LoginPasswordSent,
}

/// What to do after an AUTH reply.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthStep {
    /// Write `out`, then read the next reply.
    Write,
    /// Logged in.
    Done,
    /// The server said no (or answered out of turn) with this code.
    Failed(u16),
}

impl Auth {
    /// Starts AUTH with a mechanism the server offers, writing the first command into `out`; `None` if the
    /// server offers neither PLAIN nor LOGIN.
    pub fn start(caps: &Capabilities, creds: &Credentials, out: &mut Vec<u8>) -> Option<Auth> {
        let b64 = base64::engine::general_purpose::STANDARD;
        if caps.auth_plain {
            let token = format!("\0{}\0{}", creds.user, creds.password);
            out.extend_from_slice(b"AUTH PLAIN ");
            out.extend_from_slice(b64.encode(token).as_bytes());
            out.extend_from_slice(b"\r\n");
            Some(Auth {
                state: AuthState::PlainSent,
            })
        } else if caps.auth_login {
            out.extend_from_slice(b"AUTH LOGIN\r\n");
            Some(Auth {
                state: AuthState::LoginStarted,
            })
        } else {
            None
        }
    }

    /// Feeds one reply; may write the next line into `out`.
    pub fn on_reply(&mut self, code: u16, creds: &Credentials, out: &mut Vec<u8>) -> AuthStep {
        let b64 = base64::engine::general_purpose::STANDARD;
        match (self.state, code) {
            (_, 235) => AuthStep::Done,
            (AuthState::LoginStarted, 334) => {
                out.extend_from_slice(b64.encode(&creds.user).as_bytes());
                out.extend_from_slice(b"\r\n");
                self.state = AuthState::LoginUserSent;
                AuthStep::Write
            }
            (AuthState::LoginUserSent, 334) => {
                out.extend_from_slice(b64.encode(&creds.password).as_bytes());
                out.extend_from_slice(b"\r\n");
                self.state = AuthState::LoginPasswordSent;
                AuthStep::Write
            }
            (_, code) => AuthStep::Failed(code),
        }
    }
}

/// The outcome of one mail transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The end of data was accepted. `refused_slots` are the recipients (by slot) whose RCPT was refused.
    Accepted {
        /// Slots of refused recipients, in order; usually empty.
        refused_slots: Vec<u32>,
        /// The first refusal's code, if any.
        refused_code: Option<u16>,
    },
    /// The message was not accepted.
    Failed {
        /// The command whose reply decided it.
        stage: Stage,
        /// That reply's code.
        code: u16,
        /// Whether an RSET should be sent before the next transaction on this connection.
        needs_rset: bool,
    },
}

/// What the caller does next in a transaction.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Read the next reply (already-written commands are still owed replies).
    Read,
    /// Write what was appended to `out`, then read.
    Write,
    /// Write the message content followed by [`END_OF_DATA`], then read.
    WriteContent,
    /// The transaction is over.
    Done(Outcome),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    Mail,
    Rcpt(u32),
    Data,
    EndOfData,
    Finished,
}

/// One mail transaction: MAIL, RCPT × k, DATA, content, end of data.
#[derive(Debug)]
pub struct Transaction {
    recipients: u32,
    pipelined: bool,
    awaiting: Awaiting,
    mail_refused: Option<u16>,
    accepted_rcpts: u32,
    refused_slots: Vec<u32>,
    first_refusal: Option<(Stage, u16)>,
    /// DATA got 354 although nothing can be delivered: we sent an empty message's "." only.
    aborting: bool,
}

impl Transaction {
    /// Starts a transaction for `recipients` RCPTs, writing the first command(s) into `out`. `rcpt(slot)`
    /// gives each recipient's address; `size` adds the SIZE= parameter.
    pub fn start<'a>(
        from: &str,
        recipients: u32,
        rcpt: impl Fn(u32) -> &'a str,
        size: Option<usize>,
        pipelined: bool,
        out: &mut Vec<u8>,
    ) -> Transaction {
        write_mail(from, size, out);
        if pipelined {
            for slot in 0..recipients {
                write_rcpt(rcpt(slot), out);
            }
            out.extend_from_slice(b"DATA\r\n");
        }
        Transaction {
            recipients: recipients.max(1),
            pipelined,
            awaiting: Awaiting::Mail,
            mail_refused: None,
            accepted_rcpts: 0,
            refused_slots: Vec::new(),
            first_refusal: None,
            aborting: false,
        }
    }

    /// The command the next reply answers.
    pub fn stage(&self) -> Stage {
        match self.awaiting {
            Awaiting::Mail => Stage::Mail,
            Awaiting::Rcpt(_) => Stage::Rcpt,
            Awaiting::Data => Stage::Data,
            Awaiting::EndOfData | Awaiting::Finished => Stage::EndOfData,
        }
    }

    /// Feeds the next reply code; may append the next command to `out`.
    pub fn on_reply<'a>(
        &mut self,
        code: u16,
        rcpt: impl Fn(u32) -> &'a str,
        out: &mut Vec<u8>,
    ) -> Step {
        let ok = (200..300).contains(&code);
        match self.awaiting {
            Awaiting::Mail => {
                if !ok {
                    if !self.pipelined {
                        return self.finish_failed(Stage::Mail, code, true);
                    }
                    self.mail_refused = Some(code);
                    self.first_refusal.get_or_insert((Stage::Mail, code));
                }
                self.awaiting = Awaiting::Rcpt(0);
                if self.pipelined {
                    Step::Read
                } else {
                    write_rcpt(rcpt(0), out);
                    Step::Write
                }
            }
            Awaiting::Rcpt(slot) => {
                if ok {
                    self.accepted_rcpts += 1;
                } else {
                    self.refused_slots.push(slot);
                    self.first_refusal.get_or_insert((Stage::Rcpt, code));
                }
                let next = slot + 1;
                if next < self.recipients {
                    self.awaiting = Awaiting::Rcpt(next);
                    if self.pipelined {
                        return Step::Read;
                    }
                    write_rcpt(rcpt(next), out);
                    return Step::Write;
                }
                if self.pipelined {
                    self.awaiting = Awaiting::Data;
                    return Step::Read;
                }
                if self.accepted_rcpts == 0 {
                    return self.finish_failed(Stage::Rcpt, self.refusal_code(code), true);
                }
                self.awaiting = Awaiting::Data;
                out.extend_from_slice(b"DATA\r\n");
                Step::Write
            }
            Awaiting::Data => {
                let deliverable = self.mail_refused.is_none() && self.accepted_rcpts > 0;
                if code == 354 {
                    self.awaiting = Awaiting::EndOfData;
                    if deliverable {
                        Step::WriteContent
                    } else {
                        // RFC 2920 §3.1: DATA accepted with no valid recipient; end it with an empty body.
                        self.aborting = true;
                        out.extend_from_slice(END_OF_DATA);
                        Step::Write
                    }
                } else {
                    let (stage, code) = self.first_refusal.unwrap_or((Stage::Data, code));
                    let stage = if deliverable { Stage::Data } else { stage };
                    self.finish_failed(stage, code, true)
                }
            }
            Awaiting::EndOfData => {
                if self.aborting {
                    let (stage, first) = self.first_refusal.unwrap_or((Stage::EndOfData, code));
                    self.finish_failed(stage, first, false)
                } else if ok {
                    self.awaiting = Awaiting::Finished;
                    Step::Done(Outcome::Accepted {
                        refused_slots: std::mem::take(&mut self.refused_slots),
                        refused_code: self.first_refusal.map(|(_, c)| c),
                    })
                } else {
                    self.finish_failed(Stage::EndOfData, code, false)
                }
            }
            Awaiting::Finished => Step::Done(Outcome::Failed {
                stage: Stage::EndOfData,
                code,
                needs_rset: true,
            }),
        }
    }

    fn refusal_code(&self, fallback: u16) -> u16 {
        self.first_refusal.map_or(fallback, |(_, c)| c)
    }

    fn finish_failed(&mut self, stage: Stage, code: u16, needs_rset: bool) -> Step {
        self.awaiting = Awaiting::Finished;
        Step::Done(Outcome::Failed {
            stage,
            code,
            needs_rset,
        })
    }
}

fn write_mail(from: &str, size: Option<usize>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"MAIL FROM:<");
    out.extend_from_slice(from.as_bytes());
    out.push(b'>');
    if let Some(size) = size {
        out.extend_from_slice(b" SIZE=");
        out.extend_from_slice(size.to_string().as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

fn write_rcpt(to: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"RCPT TO:<");
    out.extend_from_slice(to.as_bytes());
    out.extend_from_slice(b">\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::parse_reply;

    const RCPTS: [&str; 3] = ["a@x", "b@x", "c@x"];

    fn rcpt(slot: u32) -> &'static str {
        RCPTS[slot as usize]
    }

    /// Drives a transaction with scripted reply codes; returns everything written and the outcome.
    fn drive(pipelined: bool, n: u32, codes: &[u16]) -> (String, Outcome) {
        let mut out = Vec::new();
        let mut tx = Transaction::start("f@x", n, rcpt, Some(100), pipelined, &mut out);
        for &code in codes {
            match tx.on_reply(code, rcpt, &mut out) {
                Step::Read | Step::Write => {}
                Step::WriteContent => out.extend_from_slice(b"<content>\r\n.\r\n"),
                Step::Done(outcome) => return (String::from_utf8(out).unwrap(), outcome),
            }
        }
        panic!("transaction not finished after {codes:?}");
    }

    #[test]
    fn pipelined_writes_everything_in_one_group() {
        let mut out = Vec::new();
        let tx = Transaction::start("f@x", 2, rcpt, None, true, &mut out);
        assert_eq!(
            out,
            b"MAIL FROM:<f@x>\r\nRCPT TO:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n"
        );
        assert_eq!(tx.stage(), Stage::Mail);
        let (_, outcome) = drive(true, 2, &[250, 250, 250, 354, 250]);
        assert_eq!(
            outcome,
            Outcome::Accepted {
                refused_slots: vec![],
                refused_code: None
            }
        );
    }

    #[test]
    fn unpipelined_writes_one_command_per_reply() {
        let (written, outcome) = drive(false, 2, &[250, 250, 250, 354, 250]);
        assert_eq!(
            written,
            "MAIL FROM:<f@x> SIZE=100\r\nRCPT TO:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n<content>\r\n.\r\n"
        );
        assert!(matches!(outcome, Outcome::Accepted { .. }));
    }

    #[test]
    fn one_refused_recipient_still_delivers_to_the_others() {
        for pipelined in [true, false] {
            let (_, outcome) = drive(pipelined, 3, &[250, 250, 550, 250, 354, 250]);
            assert_eq!(
                outcome,
                Outcome::Accepted {
                    refused_slots: vec![1],
                    refused_code: Some(550)
                }
            );
        }
    }

    #[test]
    fn all_recipients_refused_fails_at_rcpt() {
        let (written, outcome) = drive(false, 2, &[250, 550, 551]);
        assert!(!written.contains("DATA"));
        assert_eq!(
            outcome,
            Outcome::Failed {
                stage: Stage::Rcpt,
                code: 550,
                needs_rset: true
            }
        );
        // pipelined: the server refuses DATA too (554 no valid recipients)
        let (_, outcome) = drive(true, 2, &[250, 550, 551, 554]);
        assert_eq!(
            outcome,
            Outcome::Failed {
                stage: Stage::Rcpt,
                code: 550,
                needs_rset: true
            }
        );
    }

    #[test]
    fn pipelined_data_accepted_without_recipients_sends_an_empty_message() {
        let (written, outcome) = drive(true, 1, &[250, 550, 354, 250]);
        assert!(written.ends_with("DATA\r\n.\r\n"), "{written:?}");
        assert!(!written.contains("<content>"));
        assert_eq!(
            outcome,
            Outcome::Failed {
                stage: Stage::Rcpt,
                code: 550,
                needs_rset: false
            }
        );
    }

    #[test]
    fn refused_mail_from() {
        let (written, outcome) = drive(false, 1, &[451]);
        assert_eq!(written, "MAIL FROM:<f@x> SIZE=100\r\n");
        assert_eq!(
            outcome,
            Outcome::Failed {
                stage: Stage::Mail,
                code: 451,
                needs_rset: true
            }
        );
        let (_, outcome) = drive(true, 1, &[451, 503, 503]);
        assert!(matches!(
            outcome,
            Outcome::Failed {
                stage: Stage::Mail,
                code: 451,
                ..
            }
        ));
    }

    #[test]
    fn refused_content() {
        let (_, outcome) = drive(true, 1, &[250, 250, 354, 552]);
        assert_eq!(
            outcome,
            Outcome::Failed {
                stage: Stage::EndOfData,
                code: 552,
                needs_rset: false
            }
        );
        let (_, outcome) = drive(true, 1, &[250, 250, 451]);
        assert!(matches!(
            outcome,
            Outcome::Failed {
                stage: Stage::Data,
                code: 451,
                ..
            }
        ));
    }

    #[test]
    fn capabilities_from_ehlo() {
        let input = b"250-mx.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-STARTTLS\r\n250-AUTH=LOGIN\r\n250 AUTH PLAIN LOGIN\r\n";
        let (reply, _) = parse_reply(input).unwrap().unwrap();
        let caps = Capabilities::from_ehlo(&reply);
        assert!(caps.pipelining && caps.starttls && caps.auth_plain && caps.auth_login);
        assert_eq!(caps.size, Some(1000));
        let (reply, _) = parse_reply(b"250 just-a-name\r\n").unwrap().unwrap();
        assert_eq!(Capabilities::from_ehlo(&reply), Capabilities::default());
    }

    #[test]
    fn auth_plain_and_login() {
        let creds = Credentials {
            user: "u".into(),
            password: "p".into(),
        };
        let plain = Capabilities {
            auth_plain: true,
            ..Default::default()
        };
        let mut out = Vec::new();
        let mut auth = Auth::start(&plain, &creds, &mut out).unwrap();
        assert_eq!(out, b"AUTH PLAIN AHUAcA==\r\n");
        assert_eq!(auth.on_reply(235, &creds, &mut out), AuthStep::Done);

        let login = Capabilities {
            auth_login: true,
            ..Default::default()
        };
        let mut out = Vec::new();
        let mut auth = Auth::start(&login, &creds, &mut out).unwrap();
        assert_eq!(auth.on_reply(334, &creds, &mut out), AuthStep::Write);
        assert_eq!(auth.on_reply(334, &creds, &mut out), AuthStep::Write);
        assert_eq!(out, b"AUTH LOGIN\r\ndQ==\r\ncA==\r\n");
        assert_eq!(auth.on_reply(535, &creds, &mut out), AuthStep::Failed(535));
        assert!(Auth::start(&Capabilities::default(), &creds, &mut out).is_none());
    }
}
