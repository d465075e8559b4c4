//! The CSV mailbox list (`[probe] mailboxes_csv`): `address,user,password`,
//! one mailbox a line, for lists too long to write as `[[mailbox]]` tables.
//!
//! Deliberately small, not a general CSV reader: `#` starts a comment line, an
//! optional header line starting with `address` is skipped, fields may be
//! double-quoted (with `""` for a quote), `user` and `password` may be empty
//! (user = the address, password = the `[read]` default), and a password
//! written `env:NAME` is taken from the environment variable `NAME` so the
//! file itself holds no secret.

use crate::target::{TargetError, check_address};

/// One line of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CsvMailbox {
    pub line: usize,
    pub address: String,
    pub user: Option<String>,
    pub password: Option<String>,
}

pub(crate) fn parse(
    text: &str,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<CsvMailbox>, TargetError> {
    let err = |line: usize, message: String| TargetError::at_line(file, line, message);
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields = split(trimmed).map_err(|m| err(line, m))?;
        if out.is_empty() && fields[0].eq_ignore_ascii_case("address") {
            continue;
        }
        if fields.len() > 3 {
            return Err(err(
                line,
                format!(
                    "expected address,user,password but found {} fields",
                    fields.len()
                ),
            ));
        }
        let address = fields[0].trim().to_string();
        check_address(&address).map_err(|m| err(line, m))?;
        let non_empty = |i: usize| {
            fields
                .get(i)
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty())
        };
        let password = match non_empty(2) {
            Some(p) => match p.strip_prefix("env:") {
                Some(var) => Some(env(var).ok_or_else(|| {
                    err(
                        line,
                        format!("environment variable {var} (password of {address}) is not set"),
                    )
                })?),
                None => Some(p),
            },
            None => None,
        };
        out.push(CsvMailbox {
            line,
            user: non_empty(1),
            password,
            address,
        });
    }
    Ok(out)
}

/// Splits one line at commas, honouring double quotes.
fn split(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', false) if cur.trim().is_empty() => {
                cur.clear();
                quoted = true;
            }
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            ('"', true) => quoted = false,
            (',', false) => fields.push(std::mem::take(&mut cur).trim().to_string()),
            (c, _) => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".to_string());
    }
    fields.push(cur.trim().to_string());
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn rows_header_comments_quotes_and_defaults() {
        let text = "# list\naddress,user,password\nanna@kanzlei.test,,secret\n\"bernd@kanzlei.test\",\"b\"\"x\",\"p,w\"\nclara@kanzlei.test\n";
        let rows = parse(text, "m.csv", &no_env).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].address, "anna@kanzlei.test");
        assert_eq!(rows[0].user, None);
        assert_eq!(rows[0].password.as_deref(), Some("secret"));
        assert_eq!(rows[1].user.as_deref(), Some("b\"x"));
        assert_eq!(rows[1].password.as_deref(), Some("p,w"));
        assert_eq!(rows[2].line, 5);
        assert_eq!(rows[2].password, None);
    }

    #[test]
    fn env_passwords_and_errors_name_the_line() {
        let env = |k: &str| (k == "PW").then(|| "from-env".to_string());
        let rows = parse("a@b.test,,env:PW\n", "m.csv", &env).unwrap();
        assert_eq!(rows[0].password.as_deref(), Some("from-env"));
        let e = parse("a@b.test,,env:NOPE\n", "m.csv", &env)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "m.csv:1:1: environment variable NOPE (password of a@b.test) is not set"
        );
        let e = parse("\n\nnot-an-address\n", "m.csv", &no_env)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("m.csv:3:1: 'not-an-address' is not a mailbox address"),
            "{e}"
        );
        let e = parse("a@b.test,u,p,extra\n", "m.csv", &no_env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("4 fields"), "{e}");
        let e = parse("\"a@b.test,u\n", "m.csv", &no_env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unterminated"), "{e}");
    }
}
