//! Where a message's recipients come from: a pool of addresses, built from literal addresses, range patterns
//! such as `user{01..25}@patente.test` or `user01..user25@patente.test` (the one range syntax of
//! [`mailrig_core::range`], the same as in scenario files and fault selectors), a file, or a list the caller
//! extracted from a scenario. Every address passes the one address check, [`mailrig_core::Address::parse`].
//!
//! Recipients are assigned deterministically from the message's sequence number, so a verifier can work
//! out who should have received message `SEQ` from the report alone, without a per-message log.

use crate::errors::LoadError;

/// The most addresses one pattern (or the whole pool) may expand to, so a typo like `{1..999999999}` fails
/// quickly instead of eating memory.
pub const MAX_RECIPIENTS: usize = 10_000_000;

/// The addresses messages are sent to, in a fixed order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientPool {
    addresses: Vec<String>,
}

impl RecipientPool {
    /// A pool from ready addresses (e.g. extracted from a scenario file by the binary). Each is checked.
    pub fn from_addresses(addresses: Vec<String>) -> Result<RecipientPool, LoadError> {
        for a in &addresses {
            check_address(a)?;
        }
        if addresses.is_empty() {
            return Err(LoadError::InvalidFlag {
                flag: "--to",
                reason: "needs at least one recipient".into(),
            });
        }
        Ok(RecipientPool { addresses })
    }

    /// A pool from `--to` values: each is an address or a range pattern; commas separate several.
    pub fn from_patterns<S: AsRef<str>>(patterns: &[S]) -> Result<RecipientPool, LoadError> {
        let mut addresses = Vec::new();
        for value in patterns {
            for item in value.as_ref().split(',') {
                let item = item.trim();
                if item.is_empty() {
                    continue;
                }
                addresses.extend(expand_pattern(item)?);
                if addresses.len() > MAX_RECIPIENTS {
                    return Err(too_many(item));
                }
            }
        }
        RecipientPool::from_addresses(addresses)
    }

    /// The addresses in pool order.
    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// Number of addresses.
    pub fn len(&self) -> usize {
        self.addresses.len()
    }

    /// Always false: a pool has at least one address.
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty()
    }

    /// The `slot`-th recipient (0-based) of message `seq` when each message has `per_message` recipients:
    /// address number `(seq * per_message + slot) mod len`. Consecutive messages walk the pool round-robin.
    pub fn recipient(&self, seq: u64, per_message: u32, slot: u32) -> &str {
        &self.addresses[recipient_index(self.addresses.len(), seq, per_message, slot)]
    }
}

/// The pool index of a message's recipient; see [`RecipientPool::recipient`].
pub fn recipient_index(pool_len: usize, seq: u64, per_message: u32, slot: u32) -> usize {
    let len = pool_len.max(1) as u128;
    let i = (u128::from(seq) * u128::from(per_message) + u128::from(slot)) % len;
    // i < len <= usize::MAX
    i as usize
}

/// Expands a range pattern with [`mailrig_core::range::expand`]: `user{01..25}@d` or `user01..user25@d`
/// give `user01@d` .. `user25@d`; text without a range is returned as is.
pub fn expand_pattern(pattern: &str) -> Result<Vec<String>, LoadError> {
    Ok(mailrig_core::range::expand(pattern)?)
}

fn too_many(input: &str) -> LoadError {
    LoadError::Recipient {
        input: input.to_string(),
        reason: format!("expands to more than {MAX_RECIPIENTS} addresses"),
    }
}

/// Rejects what is not a bare mail address, with [`mailrig_core::Address::parse`] (the check scenarios,
/// probe targets and the SMTP server use), so nothing can break the SMTP command line it is put in.
pub fn check_address(address: &str) -> Result<(), LoadError> {
    mailrig_core::Address::parse(address)
        .map(drop)
        .map_err(|e| LoadError::Recipient {
            input: address.to_string(),
            reason: e.reason().to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_padded_range() {
        let v = expand_pattern("user{01..25}@patente.test").unwrap();
        assert_eq!(v.len(), 25);
        assert_eq!(v[0], "user01@patente.test");
        assert_eq!(v[8], "user09@patente.test");
        assert_eq!(v[24], "user25@patente.test");
    }

    #[test]
    fn unpadded_and_descending_ranges() {
        assert_eq!(
            expand_pattern("u{8..11}@d").unwrap(),
            ["u8@d", "u9@d", "u10@d", "u11@d"]
        );
        assert_eq!(
            expand_pattern("u{3..1}@d").unwrap(),
            ["u3@d", "u2@d", "u1@d"]
        );
        assert_eq!(expand_pattern("u{001..2}@d").unwrap(), ["u001@d", "u002@d"]);
    }

    #[test]
    fn the_scenario_spelling_works_too() {
        assert_eq!(
            expand_pattern("user01..user25@patente.test").unwrap(),
            expand_pattern("user{01..25}@patente.test").unwrap()
        );
    }

    #[test]
    fn several_ranges_multiply() {
        assert_eq!(
            expand_pattern("u{1..2}@d{0..1}.test").unwrap(),
            ["u1@d0.test", "u1@d1.test", "u2@d0.test", "u2@d1.test"]
        );
    }

    #[test]
    fn bad_patterns_say_why() {
        for bad in ["u{1..}@d", "u{a..3}@d", "u{1-3}@d", "u{1..3@d", "u1..3}@d"] {
            let e = expand_pattern(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
            // One range syntax: the error is crate::range's, as a scenario file would get it.
            let core = mailrig_core::range::expand(bad).unwrap_err().to_string();
            assert_eq!(e, format!("--to: {core}"));
        }
        assert!(
            expand_pattern("u{0..99999999999}@d")
                .unwrap_err()
                .to_string()
                .contains("more than")
        );
    }

    #[test]
    fn pool_from_patterns_and_round_robin() {
        let pool = RecipientPool::from_patterns(&["a@x, u{1..3}@y"]).unwrap();
        assert_eq!(pool.len(), 4);
        // two per message: message 0 gets a@x,u1@y; message 1 gets u2@y,u3@y; message 2 wraps.
        assert_eq!(pool.recipient(0, 2, 0), "a@x");
        assert_eq!(pool.recipient(0, 2, 1), "u1@y");
        assert_eq!(pool.recipient(1, 2, 1), "u3@y");
        assert_eq!(pool.recipient(2, 2, 0), "a@x");
    }

    #[test]
    fn injection_and_empty_pools_are_refused() {
        assert!(RecipientPool::from_addresses(vec!["a@b>\r\nDATA".into()]).is_err());
        assert!(RecipientPool::from_addresses(vec!["no-at".into()]).is_err());
        assert!(RecipientPool::from_addresses(vec![]).is_err());
        assert!(RecipientPool::from_patterns(&[" , "]).is_err());
    }
}
