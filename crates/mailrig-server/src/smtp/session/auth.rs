//! SMTP AUTH (RFC 4954) in the session: PLAIN and LOGIN, with or without an
//! initial response, checked against the world's credentials and the
//! `auth`-stage fault rules. PLAIN is read by [`crate::sasl`], the rule IMAP
//! uses too (no authorization identity other than the login). After
//! `max_auth_failures` failed attempts the connection is closed with
//! `421 4.7.0`, as POP3 and IMAP close theirs.

use super::*;

impl Session {
    pub(super) fn auth(&mut self, mechanism: u64, initial: &str, out: &mut Vec<u8>) {
        let sec = &self.state.world.security;
        if sec.smtp_auth == AuthMode::Off || !self.state.world.identity.advertises("AUTH") {
            return reply(out, 502, "5.5.1", "Error: authentication not enabled");
        }
        if self.helo.is_none() {
            return reply(out, 503, "5.5.1", "Error: send HELO/EHLO first");
        }
        if !self.tls && !sec.plaintext_auth {
            return reply(
                out,
                538,
                "5.7.11",
                "Encryption required for requested authentication mechanism",
            );
        }
        if self.auth_user.is_some() {
            return reply(out, 503, "5.5.1", "Error: already authenticated");
        }
        if self.tx.is_some() {
            return reply(out, 503, "5.5.1", "Error: MAIL transaction in progress");
        }
        match mechanism {
            AUTH_PLAIN if initial.is_empty() => {
                self.mode = Mode::AuthPlain;
                reply(out, 334, "", "");
            }
            AUTH_PLAIN => self.auth_plain_response(initial.as_bytes(), out),
            AUTH_LOGIN if initial.is_empty() => {
                self.mode = Mode::AuthLoginUser;
                reply(out, 334, "", "VXNlcm5hbWU6");
            }
            AUTH_LOGIN => match B64
                .decode(initial)
                .ok()
                .and_then(|u| String::from_utf8(u).ok())
            {
                Some(user) => {
                    self.mode = Mode::AuthLoginPassword(user);
                    reply(out, 334, "", "UGFzc3dvcmQ6");
                }
                None => reply(out, 501, "5.5.2", "Error: invalid base64 data"),
            },
            _ => reply(
                out,
                504,
                "5.5.4",
                "Error: unsupported authentication mechanism",
            ),
        }
    }

    pub(super) fn auth_plain_response(&mut self, text: &[u8], out: &mut Vec<u8>) {
        if text == b"*" {
            return reply(out, 501, "5.7.0", "Authentication aborted");
        }
        let Ok(decoded) = B64.decode(text) else {
            return reply(out, 501, "5.5.2", "Error: invalid base64 data");
        };
        match crate::sasl::decode_plain(&decoded) {
            Ok(c) => self.check_credentials(&c.authcid, &c.password, out),
            Err(e) if e.is_failed_login() => {
                self.auth_failed(&format!("Error: authentication failed: {e}"), out)
            }
            Err(e) => reply(out, 501, "5.5.2", &format!("Error: {e}")),
        }
    }

    /// A failed login: `535 5.7.8`, and after `max_auth_failures` of them
    /// `421 4.7.0` and the connection closed.
    fn auth_failed(&mut self, text: &str, out: &mut Vec<u8>) {
        reply(out, 535, "5.7.8", text);
        self.auth_failures += 1;
        if self.auth_failures >= self.state.world.limits.max_auth_failures {
            let bye = format!(
                "{} Error: too many failed authentication attempts",
                self.hostname()
            );
            reply(out, 421, "4.7.0", &bye);
            self.close_after_reply = true;
        }
    }

    pub(super) fn check_credentials(&mut self, user: &str, pass: &str, out: &mut Vec<u8>) {
        let fired = self.faults(
            Stage::Auth,
            Facts {
                user: Some(user),
                ..Facts::default()
            },
            None,
        );
        let forced_fail = fired.iter().any(|f| f.action == Fault::FailLogin);
        if let Some(action) = self.apply_command_faults(&fired, out) {
            if matches!(action, Action::Close) {
                self.close_after_reply = true;
            }
            return;
        }
        if !forced_fail && self.state.world.authenticate(user, pass).is_some() {
            self.auth_user = Some(user.into());
            reply(out, 235, "2.7.0", "Authentication successful");
        } else {
            self.auth_failed("Error: authentication failed", out);
        }
    }
}
