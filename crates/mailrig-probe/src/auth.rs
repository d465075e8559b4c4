//! Sender authentication of a delivered copy, as its headers tell it: the
//! topmost `Authentication-Results` field (RFC 8601, written by the server
//! that delivered it), else `Received-SPF` (RFC 7208 §9.1) for SPF, and
//! whether the copy carries a `DKIM-Signature` at all; and `--require`
//! (`dkim=pass,dmarc=pass`), which a delivered copy must meet.
//!
//! Pure parsing, no I/O. No crate parses the field (mail-auth writes it,
//! mail-parser leaves it raw), so this is a small parser of the RFC's
//! grammar: comments (nested, with quoted pairs) and quoted strings are
//! honoured, `;` separates the results, a result is `method[/version]=result`
//! followed by reasons and properties, which are not needed here.

use serde::{Deserialize, Serialize};

/// spf, dkim and dmarc of one copy; `None`: the headers do not say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthResults {
    pub spf: Option<String>,
    /// `pass` when any signature passed, else the first result.
    pub dkim: Option<String>,
    pub dmarc: Option<String>,
    /// The copy carries a `DKIM-Signature` field.
    pub dkim_signed: bool,
    /// Who wrote the results (the topmost `Authentication-Results`' authserv-id).
    pub authserv_id: Option<String>,
}

/// A method `--require` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Spf,
    Dkim,
    Dmarc,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Spf => "spf",
            Method::Dkim => "dkim",
            Method::Dmarc => "dmarc",
        }
    }

    /// The results RFC 8601 §2.7 defines for the method.
    fn results(self) -> &'static [&'static str] {
        match self {
            Method::Spf => &[
                "none",
                "neutral",
                "pass",
                "fail",
                "softfail",
                "temperror",
                "permerror",
            ],
            Method::Dkim => &[
                "none",
                "pass",
                "fail",
                "policy",
                "neutral",
                "temperror",
                "permerror",
            ],
            Method::Dmarc => &["none", "pass", "fail", "temperror", "permerror"],
        }
    }
}

/// One `method=result` a delivered copy must show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    pub method: Method,
    pub result: String,
}

impl std::fmt::Display for Requirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.method.as_str(), self.result)
    }
}

/// Why a `--require` list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RequireError(pub String);

/// Parses `dkim=pass,dmarc=pass` (spaces allowed; each method once).
pub fn parse_requirements(text: &str) -> Result<Vec<Requirement>, RequireError> {
    let mut out: Vec<Requirement> = Vec::new();
    for item in text.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(RequireError(format!(
                "'{text}': an empty item; write METHOD=RESULT items separated by commas, e.g. dkim=pass,dmarc=pass"
            )));
        }
        let Some((m, r)) = item.split_once('=') else {
            return Err(RequireError(format!(
                "'{item}' is not METHOD=RESULT (e.g. dkim=pass)"
            )));
        };
        let (m, r) = (m.trim().to_ascii_lowercase(), r.trim().to_ascii_lowercase());
        let method = match m.as_str() {
            "spf" => Method::Spf,
            "dkim" => Method::Dkim,
            "dmarc" => Method::Dmarc,
            _ => {
                return Err(RequireError(format!(
                    "'{item}': unknown method '{m}' (spf, dkim or dmarc)"
                )));
            }
        };
        if !method.results().contains(&r.as_str()) {
            return Err(RequireError(format!(
                "'{item}': '{r}' is not a {} result ({})",
                method.as_str(),
                method.results().join(", ")
            )));
        }
        if out.iter().any(|q| q.method == method) {
            return Err(RequireError(format!(
                "'{text}': {} is required twice",
                method.as_str()
            )));
        }
        out.push(Requirement { method, result: r });
    }
    Ok(out)
}

impl AuthResults {
    /// From a header block's fields, in order (unfolded `(lower-case name, value)` pairs).
    pub fn from_fields(fields: &[(String, String)]) -> AuthResults {
        let mut a = AuthResults {
            dkim_signed: fields.iter().any(|(k, _)| k == "dkim-signature"),
            ..AuthResults::default()
        };
        if let Some((_, v)) = fields.iter().find(|(k, _)| k == "authentication-results") {
            let parsed = parse_authentication_results(v);
            a.authserv_id = parsed.authserv_id;
            for (method, result) in parsed.results {
                match method.as_str() {
                    "spf" if a.spf.is_none() => a.spf = Some(result),
                    "dmarc" if a.dmarc.is_none() => a.dmarc = Some(result),
                    "dkim" if a.dkim.is_none() || result == "pass" => a.dkim = Some(result),
                    _ => {}
                }
            }
        }
        if a.spf.is_none()
            && let Some((_, v)) = fields.iter().find(|(k, _)| k == "received-spf")
        {
            a.spf = strip_comments(v)
                .split_whitespace()
                .next()
                .map(str::to_ascii_lowercase);
        }
        a
    }

    /// The result for `m` as shown (`none` when the headers do not say).
    pub fn get(&self, m: Method) -> &str {
        let v = match m {
            Method::Spf => &self.spf,
            Method::Dkim => &self.dkim,
            Method::Dmarc => &self.dmarc,
        };
        v.as_deref().unwrap_or("none")
    }

    /// The requirements not met, as `dkim=fail (required: pass)`.
    pub fn unmet(&self, require: &[Requirement]) -> Vec<String> {
        require
            .iter()
            .filter(|q| self.get(q.method) != q.result)
            .map(|q| {
                format!(
                    "{}={} (required: {})",
                    q.method.as_str(),
                    self.get(q.method),
                    q.result
                )
            })
            .collect()
    }

    /// Whether the headers said nothing about authentication at all (a
    /// server that does not check).
    pub fn is_empty(&self) -> bool {
        self.spf.is_none()
            && self.dkim.is_none()
            && self.dmarc.is_none()
            && !self.dkim_signed
            && self.authserv_id.is_none()
    }

    /// `spf=pass dkim=fail dmarc=pass` (what a table shows).
    pub fn summary(&self) -> String {
        format!(
            "spf={} dkim={} dmarc={}",
            self.get(Method::Spf),
            self.get(Method::Dkim),
            self.get(Method::Dmarc)
        )
    }
}

/// An `Authentication-Results` value taken apart.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ParsedResults {
    pub authserv_id: Option<String>,
    /// `(method, result)`, lower case, in order.
    pub results: Vec<(String, String)>,
}

/// RFC 8601 §2.2: `authserv-id [version] *(";" resinfo)`, or `; none`.
pub(crate) fn parse_authentication_results(value: &str) -> ParsedResults {
    let clean = strip_comments(value);
    let mut parts = split_outside_quotes(&clean, ';').into_iter();
    let mut out = ParsedResults {
        authserv_id: parts
            .next()
            .and_then(|p| p.split_whitespace().next().map(str::to_string))
            .filter(|s| !s.is_empty()),
        results: Vec::new(),
    };
    for part in parts {
        let Some(first) = part.split_whitespace().next() else {
            continue;
        };
        let Some((method, result)) = first.split_once('=') else {
            continue; // `none`, or nothing we know
        };
        let method = method.split('/').next().unwrap_or(method);
        if method.is_empty() || result.is_empty() {
            continue;
        }
        out.results
            .push((method.to_ascii_lowercase(), result.to_ascii_lowercase()));
    }
    out
}

/// The value without its comments (`( ... )`, nested, `\` quoting), quoted
/// strings kept as they are.
fn strip_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let (mut depth, mut quoted, mut escaped) = (0usize, false, false);
    for c in value.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' if quoted || depth > 0 => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    out.push(' ');
                }
            }
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Splits at `sep` outside quoted strings.
fn split_outside_quotes(text: &str, sep: char) -> Vec<String> {
    let mut out = vec![String::new()];
    let (mut quoted, mut escaped) = (false, false);
    for c in text.chars() {
        let cur = out.last_mut().expect("never empty");
        if escaped {
            escaped = false;
            cur.push(c);
            continue;
        }
        match c {
            '\\' if quoted => {
                escaped = true;
                cur.push(c);
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c == sep && !quoted => out.push(String::new()),
            c => cur.push(c),
        }
    }
    out.into_iter().map(|s| s.trim().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn rfc8601_appendix_examples() {
        // B.2: nothing was checked.
        let r = parse_authentication_results("example.org 1; none");
        assert_eq!(r.authserv_id.as_deref(), Some("example.org"));
        assert!(r.results.is_empty());
        // B.4: SPF and Sender ID, with comments and properties.
        let r = parse_authentication_results(
            "example.com;\r\n spf=pass smtp.mailfrom=example.net\r\n  (mail-from: sender@example.net)",
        );
        assert_eq!(r.results, [("spf".to_string(), "pass".to_string())]);
        // B.5: several methods, with a comment before the authserv-id and a version.
        let r = parse_authentication_results(
            "(example) mail-router.example.net; dkim/1=pass (good signature) header.d=newyork.example.com header.b=oINEO8hg; dkim=fail (bad signature) header.d=newyork.example.com",
        );
        assert_eq!(r.authserv_id.as_deref(), Some("mail-router.example.net"));
        assert_eq!(
            r.results,
            [
                ("dkim".to_string(), "pass".to_string()),
                ("dkim".to_string(), "fail".to_string())
            ]
        );
    }

    #[test]
    fn quotes_and_nested_comments_do_not_split_or_hide_results() {
        let r = parse_authentication_results(
            "mx.test; spf=PASS (a; (nested) comment \\) still) smtp.mailfrom=\"a;b\"@x.test; dmarc=fail header.from=x.test",
        );
        assert_eq!(
            r.results,
            [
                ("spf".to_string(), "pass".to_string()),
                ("dmarc".to_string(), "fail".to_string())
            ]
        );
        // Garbage is not a result, and never a panic.
        for bad in [
            "",
            ";",
            "(((",
            "x; =pass; dkim=",
            "\"unterminated; spf=pass",
            "x; )spf=pass",
        ] {
            let _ = parse_authentication_results(bad);
        }
        assert!(
            parse_authentication_results("x; =pass; dkim=")
                .results
                .is_empty()
        );
    }

    #[test]
    fn what_mailrig_writes_is_read_back() {
        // The field the fake server writes (crates/mailrig-server/src/sender_auth).
        let a = AuthResults::from_fields(&fields(&[
            ("received", "from x"),
            (
                "authentication-results",
                "mx.mailrig.test; dkim=fail (signature verification failed) header.d=signer.test header.s=s1 header.b=abc; spf=pass (mx.mailrig.test: domain of probe@signer.test designates 127.0.0.1 as permitted sender) smtp.mailfrom=probe@signer.test; dmarc=pass header.from=signer.test",
            ),
            ("dkim-signature", "v=1; a=rsa-sha256; d=signer.test; s=s1"),
        ]));
        assert_eq!(a.summary(), "spf=pass dkim=fail dmarc=pass");
        assert!(a.dkim_signed);
        assert_eq!(a.authserv_id.as_deref(), Some("mx.mailrig.test"));
    }

    #[test]
    fn topmost_field_wins_any_passing_signature_counts_and_received_spf_fills_in() {
        let a = AuthResults::from_fields(&fields(&[
            ("authentication-results", "mx.final; dkim=fail; dkim=pass"),
            (
                "authentication-results",
                "forged.by.sender; dmarc=pass; spf=pass",
            ),
            (
                "received-spf",
                "softfail (mx.final: transitioning) client-ip=192.0.2.1",
            ),
        ]));
        assert_eq!(a.summary(), "spf=softfail dkim=pass dmarc=none");
        assert!(!a.dkim_signed);
        let none = AuthResults::from_fields(&[]);
        assert_eq!(none.summary(), "spf=none dkim=none dmarc=none");
        assert_eq!(none.authserv_id, None);
    }

    #[test]
    fn requirements_parse_and_judge() {
        let req = parse_requirements("dkim=pass, DMARC=pass").unwrap();
        assert_eq!(
            req.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["dkim=pass", "dmarc=pass"]
        );
        let a = AuthResults {
            spf: Some("pass".into()),
            dkim: Some("fail".into()),
            dmarc: Some("pass".into()),
            ..AuthResults::default()
        };
        assert_eq!(a.unmet(&req), ["dkim=fail (required: pass)"]);
        assert!(AuthResults::default().unmet(&[]).is_empty());
        assert_eq!(
            AuthResults::default().unmet(&req),
            ["dkim=none (required: pass)", "dmarc=none (required: pass)"]
        );
    }

    #[test]
    fn bad_requirements_say_what_is_wrong() {
        let e = |s: &str| parse_requirements(s).unwrap_err().to_string();
        assert_eq!(
            e("foo=bar"),
            "'foo=bar': unknown method 'foo' (spf, dkim or dmarc)"
        );
        assert_eq!(
            e("dkim=great"),
            "'dkim=great': 'great' is not a dkim result (none, pass, fail, policy, neutral, temperror, permerror)"
        );
        assert_eq!(e("dkim"), "'dkim' is not METHOD=RESULT (e.g. dkim=pass)");
        assert!(e("dkim=pass,").contains("an empty item"));
        assert_eq!(
            e("dkim=pass,dkim=fail"),
            "'dkim=pass,dkim=fail': dkim is required twice"
        );
    }
}
