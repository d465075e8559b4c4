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
    domain: String,
}

/// Why a string is not a usable mail address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("address '{0}' has no '@'")]
    MissingAt(String),
    #[error("address '{0}' has an empty local part")]
    EmptyLocal(String),
    #[error("address '{0}' has an empty domain")]
    EmptyDomain(String),
    #[error("address '{0}' contains whitespace or a control character")]
    BadCharacter(String),
}

impl Address {
    /// Parses `local@domain` (no angle brackets). The domain is lower-cased;
    /// the local part keeps its spelling for display but compares lower-cased.
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let text = text.trim();
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(AddressError::BadCharacter(text.to_string()));
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
            domain: domain.to_lowercase(),
        }
    }

    pub fn local(&self) -> &str {
        &self.local
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
    }
}
