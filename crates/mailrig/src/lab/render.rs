//! Template placeholders: `{{dir}}`, `{{run}}`, `{{id}}`, `{{mailrig}}`, `{{port.NAME}}`,
//! `{{uid:USER}}` and `{{gid:USER}}`, filled in when a lab's files and commands are written out.
//!
//! One small syntax for every file of a lab (configs, commands, the probe target), so a trainer
//! learns it once; an unknown placeholder is an error with its place, never left in a config.

use std::collections::BTreeMap;

/// What the placeholders stand for in one lab directory.
#[derive(Debug, Clone)]
pub struct Vars {
    /// The lab directory, absolute.
    pub dir: String,
    /// A short directory for sockets (Unix socket paths max out at 108 bytes).
    pub run: String,
    /// A short id of the lab directory (instance names).
    pub id: String,
    /// This program.
    pub mailrig: String,
    /// Port name → port number.
    pub ports: BTreeMap<String, u16>,
}

/// A placeholder that cannot be filled: its byte offset in the text and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderError {
    pub offset: usize,
    pub message: String,
}

/// Fills every `{{...}}` of `text`.
pub fn render(text: &str, vars: &Vars) -> Result<String, RenderError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut consumed = 0;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(RenderError {
                offset: consumed + start,
                message: "`{{` without a closing `}}`".into(),
            });
        };
        let name = after[..end].trim();
        out.push_str(&value(name, vars).map_err(|message| RenderError {
            offset: consumed + start,
            message,
        })?);
        let skip = start + 2 + end + 2;
        consumed += skip;
        rest = &rest[skip..];
    }
    out.push_str(rest);
    Ok(out)
}

fn value(name: &str, vars: &Vars) -> Result<String, String> {
    match name {
        "dir" => return Ok(vars.dir.clone()),
        "run" => return Ok(vars.run.clone()),
        "id" => return Ok(vars.id.clone()),
        "mailrig" => return Ok(vars.mailrig.clone()),
        _ => {}
    }
    if let Some(port) = name.strip_prefix("port.") {
        return vars.ports.get(port).map(u16::to_string).ok_or_else(|| {
            format!(
                "unknown port '{port}' in {{{{{name}}}}} (lab.toml's [ports] names {})",
                vars.ports.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        });
    }
    for (prefix, field) in [("uid:", 2), ("gid:", 3)] {
        if let Some(user) = name.strip_prefix(prefix) {
            return system_user(user, field)
                .ok_or_else(|| format!("no user '{user}' in /etc/passwd for {{{{{name}}}}}"));
        }
    }
    Err(format!(
        "unknown placeholder {{{{{name}}}}} (known: dir, run, id, mailrig, port.NAME, uid:USER, gid:USER)"
    ))
}

/// Field 2 (uid) or 3 (gid) of `user`'s /etc/passwd line.
fn system_user(user: &str, field: usize) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&user))
            .then(|| fields.get(field).map(|s| s.to_string()))
            .flatten()
    })
}

/// A short, stable id of a path (FNV-1a, 32 bits, hex).
pub fn short_id(text: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in text.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars {
            dir: "/tmp/lab".into(),
            run: "/tmp/r".into(),
            id: "abcd".into(),
            mailrig: "/bin/mailrig".into(),
            ports: [("smtp".to_string(), 20000)].into(),
        }
    }

    #[test]
    fn fills_every_placeholder() {
        let out = render(
            "{{mailrig}} --smtp 127.0.0.1:{{port.smtp}} {{dir}}/x {{ id }} {{uid:root}}",
            &vars(),
        )
        .unwrap();
        assert_eq!(out, "/bin/mailrig --smtp 127.0.0.1:20000 /tmp/lab/x abcd 0");
    }

    #[test]
    fn unknown_and_unclosed_placeholders_are_located() {
        let e = render("a\n{{port.imap}}", &vars()).unwrap_err();
        assert_eq!(e.offset, 2);
        assert!(e.message.contains("unknown port 'imap'"), "{}", e.message);
        let e = render("ab {{dir", &vars()).unwrap_err();
        assert_eq!(e.offset, 3);
        let e = render("{{home}}", &vars()).unwrap_err();
        assert!(
            e.message.contains("unknown placeholder {{home}}"),
            "{}",
            e.message
        );
    }

    #[test]
    fn short_ids_differ() {
        assert_ne!(short_id("/tmp/a"), short_id("/tmp/b"));
        assert_eq!(short_id("/tmp/a").len(), 8);
    }
}
