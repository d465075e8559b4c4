//! Where a message's recipients come from: a pool of addresses, built from literal addresses, range patterns
//! such as `user{01..25}@patente.test`, a file, or a list the caller extracted from a scenario.
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

/// Expands `{A..B}` ranges in an address, bash-style: `user{01..25}@d` gives `user01@d` .. `user25@d`
/// (zero-padded to the wider bound when a bound is written with a leading zero); several ranges multiply
/// out; `B < A` counts down. Text without braces is returned as is.
pub fn expand_pattern(pattern: &str) -> Result<Vec<String>, LoadError> {
    let err = |reason: &str| LoadError::Recipient {
        input: pattern.to_string(),
        reason: reason.to_string(),
    };
    let Some(open) = pattern.find('{') else {
        if pattern.contains('}') {
            return Err(err("'}' without '{'"));
        }
        return Ok(vec![pattern.to_string()]);
    };
    let close = pattern[open..]
        .find('}')
        .map(|i| open + i)
        .ok_or_else(|| err("'{' without '}'"))?;
    let inner = &pattern[open + 1..close];
    let (a, b) = inner
        .split_once("..")
        .ok_or_else(|| err("a range looks like {01..25}"))?;
    let parse = |s: &str| -> Result<u64, LoadError> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(err(&format!(
                "range bound '{s}' is not a non-negative number"
            )));
        }
        s.parse::<u64>()
            .map_err(|_| err(&format!("range bound '{s}' is too large")))
    };
    let (start, end) = (parse(a)?, parse(b)?);
    let padded = (a.len() > 1 && a.starts_with('0')) || (b.len() > 1 && b.starts_with('0'));
    let width = if padded { a.len().max(b.len()) } else { 0 };
    let count = start.abs_diff(end).saturating_add(1);
    if count > MAX_RECIPIENTS as u64 {
        return Err(too_many(pattern));
    }
    let prefix = &pattern[..open];
    let tails = expand_pattern(&pattern[close + 1..])?;
    if (count as usize).saturating_mul(tails.len()) > MAX_RECIPIENTS {
        return Err(too_many(pattern));
    }
    let mut out = Vec::with_capacity(count as usize * tails.len());
    let numbers: Box<dyn Iterator<Item = u64>> = if start <= end {
        Box::new(start..=end)
    } else {
        Box::new((end..=start).rev())
    };
    for n in numbers {
        for tail in &tails {
            out.push(format!("{prefix}{n:0width$}{tail}"));
        }
    }
    Ok(out)
}

fn too_many(input: &str) -> LoadError {
    LoadError::Recipient {
        input: input.to_string(),
        reason: format!("expands to more than {MAX_RECIPIENTS} addresses"),
    }
}

/// Rejects addresses that would break the SMTP command line they are put in.
pub fn check_address(address: &str) -> Result<(), LoadError> {
    let bad = |reason: &str| LoadError::Recipient {
        input: address.to_string(),
        reason: reason.to_string(),
    };
    if address.is_empty() {
        return Err(bad("is empty"));
    }
    if address.len() > 254 {
        return Err(bad("is longer than 254 characters"));
    }
    if address
        .chars()
        .any(|c| c.is_control() || c == ' ' || c == '<' || c == '>')
    {
        return Err(bad(
            "contains a space, '<', '>' or a control character (give the bare address)",
        ));
    }
    if !address.contains('@') {
        return Err(bad("has no '@'"));
    }
    Ok(())
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
