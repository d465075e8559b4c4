//! SASL PLAIN (RFC 4616) responses, read by one rule for SMTP AUTH and IMAP
//! AUTHENTICATE alike: `authzid NUL authcid NUL passwd`, where an
//! authorization identity other than the authentication identity is refused
//! (the fake world has no proxy users), so both protocols let in the same
//! clients and say the same when they do not.

/// The credentials of a PLAIN response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainCredentials {
    /// Who logs in (the authentication identity).
    pub authcid: String,
    pub password: String,
}

/// Why a PLAIN response is refused; `Display` is the text both protocols
/// put after their own code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PlainError {
    #[error("malformed PLAIN response: expected authzid NUL authcid NUL password in UTF-8")]
    Malformed,
    #[error("cannot act as another user (the authorization identity differs from the login)")]
    OtherUser,
}

impl PlainError {
    /// Whether this counts as a failed login (a wrong identity does; a
    /// response that cannot be read is a syntax error).
    pub fn is_failed_login(self) -> bool {
        self == PlainError::OtherUser
    }
}

/// Reads a decoded (no longer base64) PLAIN response.
pub fn decode_plain(response: &[u8]) -> Result<PlainCredentials, PlainError> {
    let mut parts = response.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(PlainError::Malformed);
    };
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| PlainError::Malformed);
    let (authzid, authcid, password) = (text(authzid)?, text(authcid)?, text(password)?);
    if authcid.is_empty() {
        return Err(PlainError::Malformed);
    }
    // Logins are case-insensitive in the world, so the comparison is too.
    if !authzid.is_empty() && authzid.to_lowercase() != authcid.to_lowercase() {
        return Err(PlainError::OtherUser);
    }
    Ok(PlainCredentials { authcid, password })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_responses() {
        let ok = |user: &str, pass: &str| {
            Ok(PlainCredentials {
                authcid: user.into(),
                password: pass.into(),
            })
        };
        let cases: [(&[u8], Result<PlainCredentials, PlainError>); 10] = [
            (b"\0a@d.test\0p", ok("a@d.test", "p")),
            (b"a@d.test\0a@d.test\0p", ok("a@d.test", "p")),
            (b"A@D.test\0a@d.test\0p", ok("a@d.test", "p")),
            (b"\0a@d.test\0", ok("a@d.test", "")),
            (b"\0a@d.test\0p w\0rd", Err(PlainError::Malformed)),
            (b"b@d.test\0a@d.test\0p", Err(PlainError::OtherUser)),
            (b"a@d.test\0p", Err(PlainError::Malformed)),
            (b"\0\0p", Err(PlainError::Malformed)),
            (b"\0a@d.test\0\xff", Err(PlainError::Malformed)),
            (b"", Err(PlainError::Malformed)),
        ];
        for (input, want) in cases {
            assert_eq!(
                decode_plain(input),
                want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }
}
