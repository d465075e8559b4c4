//! Mailbox ranges: the one syntax for "many numbered names", and its one
//! expander, used by scenario files (`mailboxes`), fault selectors (`mailbox`,
//! `except`) and the load driver's recipients (`--to`) alike.
//!
//! Two spellings name the same thing, and every caller accepts both:
//!
//! * `user01..user25` — a name ending in a number, `..`, the same prefix with
//!   another number; whatever follows the second number (`@patente.test`) is
//!   appended to every name: `user03..user25@patente.test`.
//! * `user{01..25}@patente.test` — bash-style braces anywhere in the text;
//!   several braces multiply out (`u{1..2}@d{0..1}.test` gives four names).
//!
//! In both, a range may count down (`u3..u1`), and when either bound is
//! written with a leading zero every number is zero-padded to the wider
//! bound (`{01..100}` gives `001` .. `100`, as bash does). Text with neither
//! `..` nor braces is one name, returned as it is. An expansion larger than
//! [`MAX_NAMES`] is refused, so a typo with one digit too many fails at once
//! instead of eating memory.

/// The most names one range text may expand to.
pub const MAX_NAMES: usize = 1_000_000;

/// Why a text is not a usable range. The text is named in every message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("range '{0}' must end in numbers on both sides, like 'user01..user25'")]
    MissingNumber(String),
    #[error("range '{range}' has different prefixes '{left}' and '{right}'")]
    DifferentPrefixes {
        range: String,
        left: String,
        right: String,
    },
    #[error("range '{range}' has a bound '{bound}' that is not a non-negative number")]
    BadBound { range: String, bound: String },
    #[error("range '{range}' has a number too large ('{bound}')")]
    NumberTooLarge { range: String, bound: String },
    #[error("range '{0}' has '{{' without '}}'")]
    Unclosed(String),
    #[error("range '{0}' has '}}' without '{{'")]
    Unopened(String),
    #[error("range '{0}' needs two numbers inside braces, like 'user{{01..25}}'")]
    NotARange(String),
    #[error("range '{0}' has more than one '..'; write one range, or braces for several")]
    SeveralRanges(String),
    #[error("range '{0}' names more than {MAX_NAMES} mailboxes")]
    TooMany(String),
}

/// Whether a text is written as a range (and so expands to several names).
pub fn is_range(text: &str) -> bool {
    text.contains("..") || text.contains(['{', '}'])
}

/// Expands a range text into its names, in order; a plain name gives itself.
pub fn expand(text: &str) -> Result<Vec<String>, RangeError> {
    if text.contains(['{', '}']) {
        let names = expand_braces(text, text)?;
        return Ok(names);
    }
    match text.split_once("..") {
        None => Ok(vec![text.to_string()]),
        Some((left, right)) => expand_dotted(text, left, right),
    }
}

/// `user01..user25@suffix`.
fn expand_dotted(text: &str, left: &str, right: &str) -> Result<Vec<String>, RangeError> {
    let digits = left.len() - left.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (prefix, low) = left.split_at(left.len() - digits);
    let right_prefix_len = right
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(right.len());
    let (right_prefix, rest) = right.split_at(right_prefix_len);
    let high_len = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (high, suffix) = rest.split_at(high_len);
    if low.is_empty() || high.is_empty() {
        return Err(RangeError::MissingNumber(text.to_string()));
    }
    if suffix.contains("..") {
        return Err(RangeError::SeveralRanges(text.to_string()));
    }
    if !prefix.eq_ignore_ascii_case(right_prefix) {
        return Err(RangeError::DifferentPrefixes {
            range: text.to_string(),
            left: prefix.to_string(),
            right: right_prefix.to_string(),
        });
    }
    let numbers = Numbers::parse(text, low, high)?;
    Ok(numbers.map(|n| format!("{prefix}{n}{suffix}")).collect())
}

/// `pre{A..B}post`, several braces multiplying out.
fn expand_braces(whole: &str, text: &str) -> Result<Vec<String>, RangeError> {
    let Some(open) = text.find('{') else {
        if text.contains('}') {
            return Err(RangeError::Unopened(whole.to_string()));
        }
        return Ok(vec![text.to_string()]);
    };
    if text[..open].contains('}') {
        return Err(RangeError::Unopened(whole.to_string()));
    }
    let close = text[open..]
        .find('}')
        .map(|i| open + i)
        .ok_or_else(|| RangeError::Unclosed(whole.to_string()))?;
    let (low, high) = text[open + 1..close]
        .split_once("..")
        .ok_or_else(|| RangeError::NotARange(whole.to_string()))?;
    let numbers = Numbers::parse(whole, low, high)?;
    let tails = expand_braces(whole, &text[close + 1..])?;
    if numbers.count.saturating_mul(tails.len() as u64) > MAX_NAMES as u64 {
        return Err(RangeError::TooMany(whole.to_string()));
    }
    let prefix = &text[..open];
    let mut out = Vec::with_capacity(numbers.count as usize * tails.len());
    for n in numbers {
        for tail in &tails {
            out.push(format!("{prefix}{n}{tail}"));
        }
    }
    Ok(out)
}

/// The numbers of one range, formatted with their padding.
struct Numbers {
    next: u64,
    count: u64,
    down: bool,
    width: usize,
}

impl Numbers {
    fn parse(whole: &str, low: &str, high: &str) -> Result<Numbers, RangeError> {
        let number = |s: &str| -> Result<u64, RangeError> {
            if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
                return Err(RangeError::BadBound {
                    range: whole.to_string(),
                    bound: s.to_string(),
                });
            }
            s.parse::<u64>().map_err(|_| RangeError::NumberTooLarge {
                range: whole.to_string(),
                bound: s.to_string(),
            })
        };
        let (a, b) = (number(low)?, number(high)?);
        let count = a.abs_diff(b).saturating_add(1);
        if count > MAX_NAMES as u64 {
            return Err(RangeError::TooMany(whole.to_string()));
        }
        let padded =
            (low.len() > 1 && low.starts_with('0')) || (high.len() > 1 && high.starts_with('0'));
        Ok(Numbers {
            next: a,
            count,
            down: b < a,
            width: if padded { low.len().max(high.len()) } else { 0 },
        })
    }
}

impl Iterator for Numbers {
    type Item = String;
    fn next(&mut self) -> Option<String> {
        if self.count == 0 {
            return None;
        }
        let n = self.next;
        self.count -= 1;
        if self.count > 0 {
            self.next = if self.down { n - 1 } else { n + 1 };
        }
        Some(format!("{n:0width$}", width = self.width))
    }
}

/// The other way round: names (`user03@patente.test`, `user04@...`) written as short as the range
/// syntax allows, for messages a person reads. Runs of four or more names that differ only in a
/// consecutive number of the same width (`user03`..`user25`, same suffix) become one range
/// (`user03..user25@patente.test`), which [`expand`] turns back into the same names; everything
/// else stays as it is, in the order given.
pub fn compress<S: AsRef<str>>(names: &[S]) -> Vec<String> {
    // (prefix, number text, suffix) of a name whose local part ends in digits.
    fn split(name: &str) -> Option<(&str, &str, &str)> {
        let at = name.find('@').unwrap_or(name.len());
        let local = &name[..at];
        let digits = local.len() - local.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        (digits > 0 && digits < 19).then(|| {
            (
                &local[..local.len() - digits],
                &local[local.len() - digits..],
                &name[at..],
            )
        })
    }
    let mut out = Vec::new();
    let mut run: Vec<&str> = Vec::new();
    let flush = |run: &mut Vec<&str>, out: &mut Vec<String>| {
        if run.len() >= 4 {
            let first = split(run[0]).expect("runs hold numbered names");
            let last = split(run[run.len() - 1]).expect("runs hold numbered names");
            out.push(format!(
                "{}{}..{}{}{}",
                first.0, first.1, last.0, last.1, last.2
            ));
        } else {
            out.extend(run.iter().map(|n| n.to_string()));
        }
        run.clear();
    };
    for name in names.iter().map(AsRef::as_ref) {
        let follows = match (run.last().and_then(|l| split(l)), split(name)) {
            (Some((p0, n0, s0)), Some((p1, n1, s1))) => {
                p0 == p1
                    && s0 == s1
                    && n0.len() == n1.len()
                    && n0.parse::<u64>().ok().map(|n| n + 1) == n1.parse::<u64>().ok()
            }
            _ => false,
        };
        if !follows {
            flush(&mut run, &mut out);
        }
        if split(name).is_some() {
            run.push(name);
        } else {
            out.push(name.to_string());
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Vec<String> {
        expand(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn plain_names_are_themselves() {
        assert_eq!(ok("anna"), ["anna"]);
        assert_eq!(ok("user0*"), ["user0*"]);
        assert!(!is_range("anna@kanzlei.test"));
        assert!(is_range("u1..u2") && is_range("u{1..2}"));
    }

    #[test]
    fn both_spellings_give_the_same_names() {
        let dotted = ok("user01..user25");
        assert_eq!(dotted.len(), 25);
        assert_eq!(dotted[0], "user01");
        assert_eq!(dotted[24], "user25");
        assert_eq!(dotted, ok("user{01..25}"));
        assert_eq!(
            ok("user03..user25@patente.test"),
            ok("user{03..25}@patente.test")
        );
        assert_eq!(ok("user03..user05@patente.test")[2], "user05@patente.test");
    }

    #[test]
    fn padding_follows_the_wider_zero_padded_bound() {
        assert_eq!(ok("u8..u10"), ["u8", "u9", "u10"]);
        assert_eq!(ok("box001..box003"), ["box001", "box002", "box003"]);
        assert_eq!(ok("u{001..2}@d"), ["u001@d", "u002@d"]);
        assert_eq!(ok("u{01..100}").last().map(String::as_str), Some("u100"));
        assert_eq!(ok("u{01..100}")[0], "u001");
    }

    #[test]
    fn ranges_may_count_down_and_multiply() {
        assert_eq!(ok("u3..u1"), ["u3", "u2", "u1"]);
        assert_eq!(ok("u{3..1}@d"), ["u3@d", "u2@d", "u1@d"]);
        assert_eq!(ok("u{0..0}"), ["u0"]);
        assert_eq!(
            ok("u{1..2}@d{0..1}.test"),
            ["u1@d0.test", "u1@d1.test", "u2@d0.test", "u2@d1.test"]
        );
    }

    #[test]
    fn errors_name_the_text_and_say_what_is_wrong() {
        let cases = [
            ("user..user25", "must end in numbers on both sides"),
            ("a..b", "must end in numbers on both sides"),
            ("user01..", "must end in numbers on both sides"),
            ("user01..box25", "different prefixes 'user' and 'box'"),
            ("u1..u99999999999999999999", "number too large"),
            ("u{1..}@d", "not a non-negative number"),
            ("u{a..3}@d", "not a non-negative number"),
            ("u{1-3}@d", "needs two numbers inside braces"),
            ("u{1..3@d", "'{' without '}'"),
            ("u1..3}@d", "'}' without '{'"),
            ("u}{1..3}", "'}' without '{'"),
            ("u{0..99999999999}@d", "more than 1000000"),
            ("u0..u1000000", "more than 1000000"),
            ("u{0..999}{0..9999}", "more than 1000000"),
            ("u1..u2..u3", "more than one '..'"),
        ];
        for (text, want) in cases {
            let e = expand(text).unwrap_err().to_string();
            assert!(e.contains(&format!("'{text}'")), "{text}: {e}");
            assert!(e.contains(want), "{text}: {e}");
        }
        assert_eq!(ok("u1..u1000000").len(), MAX_NAMES);
    }

    #[test]
    fn compress_writes_runs_as_ranges_that_expand_back() {
        let names: Vec<String> = [
            "anna@kanzlei.test",
            "user01@patente.test",
            "user02@patente.test",
        ]
        .into_iter()
        .map(String::from)
        .chain(expand("user05..user25@patente.test").unwrap())
        .chain(
            [
                "user27@patente.test",
                "user28@patente.test",
                "user29@patente.test",
            ]
            .map(String::from),
        )
        .chain(["u9@x.test", "u10@x.test", "u11@x.test", "u12@x.test"].map(String::from))
        .collect();
        let short = compress(&names);
        assert_eq!(
            short,
            [
                "anna@kanzlei.test",
                "user01@patente.test",
                "user02@patente.test",
                "user05..user25@patente.test",
                "user27@patente.test",
                "user28@patente.test",
                "user29@patente.test",
                "u9@x.test",
                "u10@x.test",
                "u11@x.test",
                "u12@x.test",
            ],
            "runs of 4 or more of one width: three stay listed, u9..u12 changes width"
        );
        let back: Vec<String> = short.iter().flat_map(|s| expand(s).unwrap()).collect();
        assert_eq!(back, names);
    }
}
