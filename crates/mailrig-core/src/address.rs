//! Mail addresses as the world and the router see them: a local part and a
//! domain, compared case-insensitively.
//!
//! SMTP hands us addresses in many shapes (`<a@b>`, UTF-8 local parts under
//! SMTPUTF8, quoted local parts); this module turns them into one canonical,
//! lower-cased `local@domain` key so that lookups are a single hash probe.

use std::fmt;

/// A parsed mail address: `local@domain`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    local: String,
    /// Lower-cased; shared by the mailboxes of one domain in a world
    /// (see [`Address::share_domain`]).
    domain: std::sync::Arc<str>,
}

/// The longest address accepted: RFC 5321's 256-octet path minus its angle brackets.
pub const MAX_ADDRESS_LEN: usize = 254;

/// Why a string is not a usable mail address. `Display` names the text and
/// says what is wrong: `'anna' is not a mailbox address (local@domain): has no '@'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressError {
    Empty,
    MissingAt(String),
    EmptyLocal(String),
    EmptyDomain(String),
    BadCharacter(String),
    /// `<`, `>` or `,`: the text is a path or a list, not one bare address.
    Delimiter(String),
    TooLong(String),
}

impl AddressError {
    /// What is wrong, without the text: `has no '@'`.
    pub fn reason(&self) -> String {
        match self {
            AddressError::Empty => "is empty".into(),
            AddressError::MissingAt(_) => "has no '@'".into(),
            AddressError::EmptyLocal(_) => "has an empty local part".into(),
            AddressError::EmptyDomain(_) => "has an empty domain".into(),
            AddressError::BadCharacter(_) => "contains whitespace or a control character".into(),
            AddressError::Delimiter(_) => "contains '<', '>' or ',' (give one bare address)".into(),
            AddressError::TooLong(_) => {
                format!("is longer than {MAX_ADDRESS_LEN} characters")
            }
        }
    }

    /// The text that was refused.
    pub fn text(&self) -> &str {
        match self {
            AddressError::Empty => "",
            AddressError::MissingAt(t)
            | AddressError::EmptyLocal(t)
            | AddressError::EmptyDomain(t)
            | AddressError::BadCharacter(t)
            | AddressError::Delimiter(t)
            | AddressError::TooLong(t) => t,
        }
    }
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "'{}' is not a mailbox address (local@domain): {}",
            self.text(),
            self.reason()
        )
    }
}

impl std::error::Error for AddressError {}

impl Address {
    /// The one address check of mailrig: scenario files, fault rules, probe
    /// targets, the load driver's `--to`/`--from` and the SMTP server's
    /// MAIL/RCPT/VRFY all call it, so an address is valid everywhere or
    /// nowhere. It takes one bare `local@domain` (no angle brackets, no
    /// surrounding spaces, at most [`MAX_ADDRESS_LEN`] octets; UTF-8 local
    /// parts are fine). The domain is lower-cased (a trailing dot dropped);
    /// the local part keeps its spelling for display but compares lower-cased.
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        if text.is_empty() {
            return Err(AddressError::Empty);
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(AddressError::BadCharacter(text.to_string()));
        }
        if text.contains(['<', '>', ',']) {
            return Err(AddressError::Delimiter(text.to_string()));
        }
        if text.len() > MAX_ADDRESS_LEN {
            return Err(AddressError::TooLong(text.to_string()));
        }
        let at = text
            .rfind('@')
            .ok_or_else(|| AddressError::MissingAt(text.to_string()))?;
        let (local, domain) = (&text[..at], &text[at + 1..]);
        if local.is_empty() {
            return Err(AddressError::EmptyLocal(text.to_string()));
        }
        let domain = domain.trim_end_matches('.');
        if domain.is_empty() {
            return Err(AddressError::EmptyDomain(text.to_string()));
        }
        Ok(Self::new(local, domain))
    }

    /// Builds an address from parts that are already known to be valid.
    pub fn new(local: &str, domain: &str) -> Self {
        Address {
            local: local.to_string(),
            domain: domain.to_lowercase().into(),
        }
    }

    pub fn local(&self) -> &str {
        &self.local
    }

    /// Makes this address hold `domain` (the same domain, lower-cased) instead
    /// of its own copy: the mailboxes of a big world share one.
    pub fn share_domain(&mut self, domain: &std::sync::Arc<str>) {
        if *self.domain == **domain {
            self.domain = domain.clone();
        }
    }

    /// The domain as the shared text it is held in.
    pub fn domain_text(&self) -> std::sync::Arc<str> {
        self.domain.clone()
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The canonical lookup key: the whole address lower-cased.
    pub fn key(&self) -> String {
        format!("{}@{}", self.local.to_lowercase(), self.domain)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

impl std::str::FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let a = Address::parse("Anna@Kanzlei.TEST").unwrap();
        assert_eq!(a.local(), "Anna");
        assert_eq!(a.domain(), "kanzlei.test");
        assert_eq!(a.key(), "anna@kanzlei.test");
        assert_eq!(a.to_string(), "Anna@kanzlei.test");
    }

    #[test]
    fn utf8_local_parts_are_fine() {
        let a = Address::parse("jörg@patente.test").unwrap();
        assert_eq!(a.key(), "jörg@patente.test");
    }

    #[test]
    fn rejects_broken_addresses() {
        assert!(matches!(
            Address::parse("anna"),
            Err(AddressError::MissingAt(_))
        ));
        assert!(matches!(
            Address::parse("@x.test"),
            Err(AddressError::EmptyLocal(_))
        ));
        assert!(matches!(
            Address::parse("a@"),
            Err(AddressError::EmptyDomain(_))
        ));
        assert!(matches!(
            Address::parse("a b@x"),
            Err(AddressError::BadCharacter(_))
        ));
        assert!(matches!(
            Address::parse(" a@x"),
            Err(AddressError::BadCharacter(_))
        ));
        assert!(matches!(Address::parse(""), Err(AddressError::Empty)));
        for t in ["<a@x>", "a@x,b@x", "a@b>\r\nDATA"] {
            assert!(Address::parse(t).is_err(), "{t}");
        }
        assert!(matches!(
            Address::parse("<a@x>"),
            Err(AddressError::Delimiter(_))
        ));
        let long = format!("{}@x.test", "a".repeat(MAX_ADDRESS_LEN));
        assert!(matches!(
            Address::parse(&long),
            Err(AddressError::TooLong(_))
        ));
        assert!(Address::parse(&long[long.len() - MAX_ADDRESS_LEN..]).is_ok());
    }

    #[test]
    fn errors_name_the_text_and_the_reason() {
        assert_eq!(
            Address::parse("anna").unwrap_err().to_string(),
            "'anna' is not a mailbox address (local@domain): has no '@'"
        );
        assert_eq!(
            Address::parse("a@").unwrap_err().reason(),
            "has an empty domain"
        );
    }
}
