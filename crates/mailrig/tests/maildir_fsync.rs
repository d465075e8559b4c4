//! "fsync before 250" with `--maildir` covers the directory entry too: run
//! `mailrig serve --maildir` under strace, deliver one message over SMTP, and
//! check the order of system calls: the file's rename into `new/`, then an
//! fsync of `new/` and of `tmp/`, and only then the `250` reply.

mod support;

use support::serve::{Serve, send_smtp};

/// strace's lines, with `<unfinished ...>` / `<... resumed>` pairs joined.
fn joined_lines(trace: &str) -> Vec<String> {
    let mut pending: std::collections::HashMap<String, String> = Default::default();
    let mut out = Vec::new();
    for line in trace.lines() {
        // strace pads the pid column: "1129  rename(...)" but "31129 rename(...)".
        let (pid, rest) = line.split_once(' ').unwrap_or(("", line));
        let rest = rest.trim_start();
        if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
            pending.insert(pid.to_string(), head.to_string());
        } else if let Some(pos) = rest.find(" resumed>") {
            let head = pending.remove(pid).unwrap_or_default();
            out.push(format!("{head}{}", &rest[pos + " resumed>".len()..]));
        } else {
            out.push(rest.to_string());
        }
    }
    out
}

/// The fd an `openat(..., "path", ...) = fd` line returned.
fn opened_fd(line: &str, path: &str) -> Option<String> {
    if !line.starts_with("openat(") || !line.contains(&format!("\"{path}\"")) {
        return None;
    }
    let fd = line.rsplit_once(" = ")?.1.trim();
    fd.parse::<u32>().ok().map(|n| n.to_string())
}

#[test]
fn delivery_fsyncs_new_and_tmp_after_the_rename_and_before_250() {
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = dir.path().join("strace.out");
    let maildir = dir.path().join("mail");
    let trace_s = trace.display().to_string();
    let serve = Serve::start(
        &[
            "strace",
            "-f",
            "-qq",
            "-s",
            "200",
            "-e",
            "trace=rename,renameat,renameat2,openat,fsync,fdatasync,write,writev,sendto",
            "-o",
            &trace_s,
        ],
        &["--maildir", &maildir.display().to_string()],
    );
    send_smtp(serve.smtp, "alice@example.test");
    serve.stop();
    let text = std::fs::read_to_string(&trace).expect("strace output");
    let lines = joined_lines(&text);
    let mbox = maildir.join("example.test/alice");
    let new_dir = mbox.join("new").display().to_string();
    let tmp_dir = mbox.join("tmp").display().to_string();

    let rename = lines
        .iter()
        .position(|l| l.starts_with("rename") && l.contains(&format!("{new_dir}/")))
        .unwrap_or_else(|| panic!("no rename into {new_dir} in the trace:\n{text}"));
    let reply = lines
        .iter()
        .position(|l| l.contains("250 2.0.0 Ok: queued"))
        .unwrap_or_else(|| panic!("no 250 reply in the trace:\n{text}"));
    assert!(rename < reply, "rename after the 250 reply");
    for d in [&new_dir, &tmp_dir] {
        let synced = lines[rename..reply].iter().enumerate().any(|(i, l)| {
            opened_fd(l, d).is_some_and(|fd| {
                lines[rename + i..reply]
                    .iter()
                    .any(|l| l.starts_with(&format!("fsync({fd})")) && l.ends_with("= 0"))
            })
        });
        assert!(
            synced,
            "no fsync of {d} between the rename and the 250 reply:\n{}",
            lines[rename..=reply].join("\n")
        );
    }
}
