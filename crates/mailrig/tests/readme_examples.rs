//! Every example of README.md, checked the way a reader uses it: each fenced
//! block is found by parsing the README at test time and carries a
//! `<!-- example: KIND ... -->` marker (see `support::readme`) saying how.
//! Scenario and fault-rule TOML goes through `mailrig scenario check`, target
//! TOML through the prober's target loader and `mailrig probe`, shell blocks
//! run with `bash -e` against a `mailrig serve` on free loopback ports (the
//! README's default ports and CA path rewritten to the ones it got), usage
//! synopses are compared with `--help`, shown output with the real output,
//! and the Rust example with the compiled test file. A block without a
//! marker fails, so a new example cannot be skipped silently.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::readme::{Block, Kind, Marker, quoted, readme_blocks, repo_root, words};

use support::BIN;

/// The README's listener table: flag, default port (as the README and
/// `mailrig serve --help` give them).
const LISTENERS: &[(&str, u16)] = &[
    ("smtp", 2525),
    ("smtps", 4650),
    ("imap", 1143),
    ("imaps", 9930),
    ("pop3", 1110),
    ("pop3s", 9950),
    ("http", 8025),
];

/// The CA path the README's examples use (`--ca-out` default with TMPDIR unset).
const README_CA: &[&str] = &["/tmp/mailrig-ca.pem", "$TMPDIR/mailrig-ca.pem"];

fn blocks_of(kind: Kind) -> Vec<(Block, Marker)> {
    readme_blocks()
        .into_iter()
        .filter_map(|b| {
            let m = b.marker.clone().ok()?;
            (m.kind == kind).then_some((b, m))
        })
        .collect()
}

fn where_(b: &Block) -> String {
    format!("README.md:{} (```{} block)", b.line, b.lang)
}

/// A scratch directory that looks like a checkout: every top-level entry of
/// the repository (testdata/, docs/, ...) linked in, so the README's relative
/// paths work, while files the examples write (run.json) land here. `bin/`
/// holds `mailrig`, put first on PATH; `.curlrc` makes curl fail on HTTP
/// errors, as a reader would notice a 4xx.
struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    fn new() -> Workdir {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = repo_root();
        for e in std::fs::read_dir(&root)
            .expect("read repository root")
            .flatten()
        {
            let name = e.file_name();
            let n = name.to_string_lossy();
            if n.starts_with('.') || n == "target" {
                continue;
            }
            std::os::unix::fs::symlink(e.path(), dir.path().join(&name)).expect("symlink");
        }
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        std::os::unix::fs::symlink(BIN, dir.path().join("bin/mailrig")).unwrap();
        std::fs::write(dir.path().join(".curlrc"), "fail-with-body\nshow-error\n").unwrap();
        Workdir { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        let path = std::env::var("PATH").unwrap_or_default();
        c.current_dir(self.path())
            .env(
                "PATH",
                format!("{}:{path}", self.path().join("bin").display()),
            )
            .env("CURL_HOME", self.path())
            .env("MAILRIG_LOG", "warn");
        c
    }
}

/// Waits for a child with a deadline; on timeout kills its process group.
fn wait_bounded(mut child: Child, limit: Duration, what: &str) -> Output {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                kill_group(child.id());
                let _ = child.kill();
                let out = child.wait_with_output().expect("wait");
                panic!(
                    "{what}: did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    child.wait_with_output().expect("wait")
}

/// Ends whatever is left of a process group we started (background jobs of a script).
fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

fn run_bounded(mut c: Command, limit: Duration, what: &str) -> Output {
    use std::os::unix::process::CommandExt;
    c.process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let pgid = child.id();
    let out = wait_bounded(child, limit, what);
    kill_group(pgid);
    out
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A `mailrig serve` started for an example: every listener the example
/// does not place itself on 127.0.0.1:0, the addresses read from its banner.
struct Served {
    child: Child,
    ports: BTreeMap<&'static str, u16>,
    /// `--dns ADDR` of the example: its port, and the free port it got instead.
    dns: Option<(u16, u16)>,
    ca: PathBuf,
    log: PathBuf,
}

impl Served {
    fn start(work: &Workdir, args: &[String]) -> Result<Served, String> {
        let n = std::fs::read_dir(work.path()).map_or(0, |d| d.count());
        let log = work.path().join(format!("serve-{n}.out"));
        let err = work.path().join(format!("serve-{n}.err"));
        let mut c = work.command(BIN);
        // `--dns ADDR` (off by default) moves to a free port too.
        let mut dns_port = None;
        let args: Vec<String> = args
            .iter()
            .enumerate()
            .map(|(i, a)| {
                if i > 0 && args[i - 1] == "--dns" && a != "off" {
                    dns_port = a.rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
                    "127.0.0.1:0".to_string()
                } else {
                    a.clone()
                }
            })
            .collect();
        let args = args.as_slice();
        c.arg("serve").args(args);
        for (flag, _) in LISTENERS {
            let f = format!("--{flag}");
            if !args
                .iter()
                .any(|a| a == &f || a.starts_with(&format!("{f}=")))
            {
                c.args([f.as_str(), "127.0.0.1:0"]);
            }
        }
        let ca = work.path().join(format!("ca-{n}.pem"));
        if !args.iter().any(|a| a.starts_with("--ca-out")) {
            c.arg("--ca-out").arg(&ca);
        }
        let mut child = c
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .map_err(|e| format!("cannot start mailrig serve: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let banner = loop {
            let out = std::fs::read_to_string(&log).unwrap_or_default();
            if out.contains("Press Ctrl-C") {
                break out;
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "mailrig serve {} exited ({status}) before listening:\n{out}{}",
                    args.join(" "),
                    std::fs::read_to_string(&err).unwrap_or_default()
                ));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "mailrig serve printed no banner within 60 s:\n{out}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut ports = BTreeMap::new();
        let mut dns = None;
        for line in banner.lines() {
            let mut w = line.split_whitespace();
            let (Some(name), Some(addr)) = (w.next(), w.next()) else {
                continue;
            };
            let addr = addr.trim_start_matches("http://").trim_end_matches('/');
            let port = addr.rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
            let flag = LISTENERS
                .iter()
                .find(|(f, _)| f.eq_ignore_ascii_case(name))
                .map(|(f, _)| *f);
            if let (Some(flag), Some(port)) = (flag, port) {
                ports.insert(flag, port);
            }
            if let (Some(from), Some(to), "DNS") = (dns_port, port, name) {
                dns = Some((from, to));
            }
        }
        Ok(Served {
            child,
            ports,
            dns,
            ca,
            log,
        })
    }

    /// The example text with the README's default ports and CA path
    /// replaced by this server's.
    fn rewrite(&self, text: &str) -> String {
        let mut t = text.to_string();
        for (flag, default) in LISTENERS {
            if let Some(port) = self.ports.get(flag) {
                for form in ["127.0.0.1:", "localhost:", "port = "] {
                    t = t.replace(&format!("{form}{default}"), &format!("{form}{port}"));
                }
            }
        }
        if let Some((from, to)) = self.dns {
            for form in ["127.0.0.1:", "-p "] {
                t = t.replace(&format!("{form}{from}"), &format!("{form}{to}"));
            }
        }
        for ca in README_CA {
            t = t.replace(ca, &self.ca.display().to_string());
        }
        t
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("mailrig serve ({}) needed SIGKILL", self.log.display());
    }
}

fn fail_all(what: &str, failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} of the README's {what} failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

// ---- the tests -----------------------------------------------------------------

#[test]
fn every_readme_block_is_marked_with_how_it_is_checked() {
    let blocks = readme_blocks();
    assert!(
        blocks.len() >= 10,
        "README.md parsed into {} blocks",
        blocks.len()
    );
    let mut counts: BTreeMap<Kind, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for b in &blocks {
        match &b.marker {
            Ok(m) => {
                *counts.entry(m.kind).or_default() += 1;
                if m.kind == Kind::NotRun {
                    eprintln!("{}: not run: {}", where_(b), m.options[0].1);
                }
            }
            Err(e) => failures.push(format!("{}: {e}", where_(b))),
        }
    }
    eprintln!("README.md: {} blocks: {counts:?}", blocks.len());
    fail_all("blocks", failures);
}

#[test]
fn readme_scenarios_and_fault_rules_pass_scenario_check() {
    let work = Workdir::new();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (kind, header) in [(Kind::Scenario, 0), (Kind::FaultRule, 1)] {
        for (b, m) in blocks_of(kind) {
            checked += 1;
            let (src, offset, want_faults) = if header == 0 {
                (b.text.clone(), 0, None)
            } else {
                let base_path = m
                    .get("base")
                    .unwrap_or("crates/mailrig-core/catalog/kanzlei.toml");
                let base = std::fs::read_to_string(repo_root().join(base_path))
                    .unwrap_or_else(|e| panic!("{}: base {base_path}: {e}", where_(&b)));
                let base_faults = base.lines().filter(|l| l.trim() == "[[fault]]").count();
                let own = b.text.lines().filter(|l| l.trim() == "[[fault]]").count();
                let joined = format!("{}\n{}", base.trim_end(), b.text);
                (
                    joined,
                    base.trim_end().lines().count() + 1,
                    Some(base_faults + own),
                )
            };
            let file = work.path().join(format!("readme-line-{}.toml", b.line));
            std::fs::write(&file, &src).unwrap();
            let mut c = work.command(BIN);
            c.args(["scenario", "check"]).arg(&file);
            let o = run_bounded(c, Duration::from_secs(60), "mailrig scenario check");
            let out = String::from_utf8_lossy(&o.stdout).into_owned();
            let problem = if !o.status.success() {
                Some("`mailrig scenario check` refused it")
            } else if !out.lines().any(|l| l.trim() == "ok") {
                Some("no `ok` line")
            } else if out.contains("warning:") {
                Some("it has warnings")
            } else if let Some(n) = want_faults
                && !out.contains(&format!("{n} fault rule(s)"))
            {
                Some("the fault rules were not all read")
            } else {
                None
            };
            if let Some(p) = problem {
                failures.push(format!(
                    "{}: {p} (file lines {}+ are the block's lines 1+; block starts at README line {}):\n{}",
                    where_(&b),
                    offset + 1,
                    b.line + 1,
                    text(&o)
                ));
            }
        }
    }
    assert!(
        checked >= 2,
        "the README has scenario and fault-rule examples"
    );
    fail_all("scenario and fault-rule examples", failures);
}

#[test]
fn readme_targets_load_and_probe_the_fake_server() {
    let work = Workdir::new();
    let mut failures = Vec::new();
    let targets = blocks_of(Kind::Target);
    assert!(!targets.is_empty(), "the README has a target example");
    for (b, m) in targets {
        let served = match m.get("serve") {
            Some(args) => match Served::start(&work, &words(args)) {
                Ok(s) => Some(s),
                Err(e) => {
                    failures.push(format!("{}: {e}", where_(&b)));
                    continue;
                }
            },
            None => None,
        };
        let src = served
            .as_ref()
            .map_or(b.text.clone(), |s| s.rewrite(&b.text));
        let file = work.path().join(format!("target-line-{}.toml", b.line));
        std::fs::write(&file, &src).unwrap();
        if let Err(e) = mailrig_probe::Target::load(&file) {
            failures.push(format!(
                "{}: the target loader refused it (line N of the file is README line {} + N): {e}",
                where_(&b),
                b.line
            ));
            continue;
        }
        if served.is_some() {
            let want = match m.exit() {
                Ok(w) => w,
                Err(e) => {
                    failures.push(format!("{}: {e}", where_(&b)));
                    continue;
                }
            };
            let mut c = work.command(BIN);
            c.args(["probe", "--target"]).arg(&file);
            let o = run_bounded(c, Duration::from_secs(120), "mailrig probe");
            if o.status.code() != Some(want) {
                failures.push(format!(
                    "{}: `mailrig probe --target` of it should exit {want}:\n{}",
                    where_(&b),
                    text(&o)
                ));
            }
        }
    }
    fail_all("target examples", failures);
}

/// Runs one shell block; Err says what went wrong.
fn run_shell_block(work: &Workdir, b: &Block, m: &Marker) -> Result<(), String> {
    let want = m.exit()?;
    // `mailrig serve ... &` lines become servers started here on free ports
    // (blank lines keep the line numbers); so does the marker's `serve ARGS`.
    let mut serve_args: Vec<Vec<String>> = m.all("serve").into_iter().map(words).collect();
    let mut body = String::new();
    for line in b.text.lines() {
        match support::readme::serve_line_args(line) {
            Some(args) => {
                serve_args.push(args);
                body.push('\n');
            }
            None => {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    if serve_args.len() > 1 {
        return Err("more than one `mailrig serve` for one block: ports would clash".into());
    }
    let served = match serve_args.first() {
        Some(args) => Some(Served::start(work, args)?),
        None => None,
    };
    if let Some(s) = &served {
        body = s.rewrite(&body);
    }
    for r in m.all("replace") {
        let q = quoted(r)?;
        let [from, to] = q.as_slice() else {
            return Err(format!("`replace {r}`: give two quoted strings"));
        };
        if !body.contains(from.as_str()) {
            return Err(format!("`replace {r}`: the block has no `{from}`"));
        }
        body = body.replace(from.as_str(), to);
    }
    const PRELUDE: &str =
        "set -e\ntrap 'echo \"readme-example: exit $? at line $LINENO: $BASH_COMMAND\" >&2' ERR\n";
    let script = work.path().join(format!("block-line-{}.sh", b.line));
    std::fs::write(&script, format!("{PRELUDE}{body}")).unwrap();
    let mut c = work.command("bash");
    c.arg("-e").arg(&script);
    let o = run_bounded(c, Duration::from_secs(240), &where_(b));
    drop(served);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    if o.status.code() != Some(want) {
        return Err(format!(
            "should exit {want} (script line N is README line {} + N - 2; the script ran with the ports rewritten):\n{}\nscript:\n{body}",
            b.line,
            text(&o)
        ));
    }
    if want != 0 {
        // The promised failure must come from the block's last command.
        let (first, last) = support::readme::last_command_lines(&body).ok_or("empty block")?;
        let prelude = PRELUDE.lines().count();
        let failed_at = all
            .lines()
            .filter_map(|l| l.strip_prefix("readme-example: exit "))
            .filter_map(|l| l.split(" at line ").nth(1))
            .filter_map(|l| l.split(':').next()?.parse::<usize>().ok())
            .map(|n| n.saturating_sub(prelude))
            .next_back();
        if !failed_at.is_some_and(|n| n >= first && n <= last) {
            return Err(format!(
                "exit {want} must come from the last command (block lines {first}-{last}), not line {failed_at:?}:\n{}",
                text(&o)
            ));
        }
    }
    for e in m.all("expect") {
        for s in quoted(e)? {
            if !all.contains(&s) {
                return Err(format!("output lacks `{s}`:\n{}", text(&o)));
            }
        }
    }
    Ok(())
}

#[test]
fn readme_shell_blocks_run_on_loopback() {
    for tool in ["swaks", "curl"] {
        let found = Command::new(tool).arg("--version").output();
        assert!(
            found.is_ok(),
            "{tool} is needed by the README's examples: run `bash scripts/install-test-deps.sh`"
        );
    }
    let blocks = blocks_of(Kind::Sh);
    assert!(blocks.len() >= 3, "the README has runnable shell examples");
    let mut failures = Vec::new();
    for (b, m) in &blocks {
        let work = Workdir::new();
        let started = Instant::now();
        match run_shell_block(&work, b, m) {
            Ok(()) => eprintln!(
                "{}: ran ({:.1} s)",
                where_(b),
                started.elapsed().as_secs_f64()
            ),
            Err(e) => failures.push(format!("{}: {e}", where_(b))),
        }
    }
    eprintln!("{} shell blocks run", blocks.len());
    fail_all("shell examples", failures);
}

/// `--flag` words of a text.
fn flags(text: &str) -> std::collections::BTreeSet<String> {
    text.split(|c: char| c.is_whitespace() || "[]|,=<>()`".contains(c))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(str::to_string)
        .collect()
}

#[test]
fn readme_usage_synopses_list_exactly_the_flags_of_help() {
    let blocks = blocks_of(Kind::Usage);
    assert!(!blocks.is_empty(), "the README has usage synopses");
    let mut failures = Vec::new();
    for (b, _) in blocks {
        let first = b.text.lines().next().unwrap_or("");
        let cmd: Vec<&str> = first
            .split_whitespace()
            .take_while(|w| !w.starts_with('[') && !w.starts_with('-'))
            .collect();
        if cmd.first() != Some(&"mailrig") || cmd.len() < 2 {
            failures.push(format!(
                "{}: a synopsis starts with `mailrig SUBCOMMAND`",
                where_(&b)
            ));
            continue;
        }
        let o = Command::new(BIN)
            .args(&cmd[1..])
            .arg("--help")
            .output()
            .expect("mailrig --help");
        let help: std::collections::BTreeSet<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| {
                let l = l.trim_start();
                let l = l
                    .strip_prefix("-")
                    .filter(|r| r.chars().nth(1) == Some(','))
                    .map_or(l, |r| r[2..].trim_start());
                let f = l
                    .split(|c: char| c.is_whitespace() || c == '<' || c == '=')
                    .next()?;
                (f.starts_with("--") && f != "--help" && f != "--version").then(|| f.to_string())
            })
            .collect();
        let shown = flags(&b.text);
        let missing: Vec<_> = help.difference(&shown).collect();
        let unknown: Vec<_> = shown.difference(&help).collect();
        if !missing.is_empty() || !unknown.is_empty() {
            failures.push(format!(
                "{}: `{}`: flags of --help not in the README: {missing:?}; README flags --help does not know: {unknown:?}",
                where_(&b),
                cmd.join(" ")
            ));
        }
    }
    fail_all("usage synopses", failures);
}

#[test]
fn readme_outputs_match_the_real_output_in_shape() {
    let blocks = blocks_of(Kind::Output);
    assert!(!blocks.is_empty(), "the README shows `make run` output");
    let mut failures = Vec::new();
    for (b, m) in blocks {
        let Some(run) = m.get("run") else {
            failures.push(format!(
                "{}: an output block needs `run mailrig ARGS`",
                where_(&b)
            ));
            continue;
        };
        let w = words(run);
        if w.first().map(String::as_str) != Some("mailrig") {
            failures.push(format!("{}: `run {run}`: only mailrig is run", where_(&b)));
            continue;
        }
        let want = match m.exit() {
            Ok(x) => x,
            Err(e) => {
                failures.push(format!("{}: {e}", where_(&b)));
                continue;
            }
        };
        let work = Workdir::new();
        let mut c = work.command(BIN);
        c.args(&w[1..]);
        let o = run_bounded(c, Duration::from_secs(120), run);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        if o.status.code() != Some(want) {
            failures.push(format!(
                "{}: `{run}` should exit {want}:\n{}",
                where_(&b),
                text(&o)
            ));
        } else if let Some(line) = support::readme::shape_mismatch(&b.text, &out) {
            failures.push(format!(
                "{}: the README line\n  {line}\nmatches no line of `{run}` (after the previous match):\n{out}",
                where_(&b)
            ));
        }
    }
    fail_all("output examples", failures);
}

#[test]
fn readme_rust_examples_are_the_text_of_compiled_files() {
    let blocks = blocks_of(Kind::Compiled);
    assert!(!blocks.is_empty(), "the README has the MockServer example");
    let mut failures = Vec::new();
    for (b, m) in blocks {
        let Some(file) = m.get("file") else {
            failures.push(format!("{}: `compiled` needs `file PATH`", where_(&b)));
            continue;
        };
        let src = match std::fs::read_to_string(repo_root().join(file)) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{}: {file}: {e}", where_(&b)));
                continue;
            }
        };
        // The file minus its leading `//!` lines and the blank line after them.
        let shown_part: String = src
            .lines()
            .skip_while(|l| l.starts_with("//!"))
            .skip_while(|l| l.trim().is_empty())
            .map(|l| format!("{l}\n"))
            .collect();
        if shown_part != b.text {
            let (n, (want, got)) = shown_part
                .lines()
                .chain(std::iter::repeat("<end>"))
                .zip(b.text.lines().chain(std::iter::repeat("<end>")))
                .enumerate()
                .find(|(_, (a, b))| a != b)
                .unwrap_or((0, ("", "")));
            failures.push(format!(
                "{}: differs from {file} at block line {}:\n  file:   {want}\n  README: {got}\n(copy the file's text after its //! lines into the README)",
                where_(&b),
                n + 1
            ));
        }
    }
    fail_all("compiled examples", failures);
}
/// The README reader's own tests (here, not in `support/`, so they run once).
mod readme_reader {
    use super::support::readme::*;

    #[test]
    fn blocks_and_markers_are_found_and_a_missing_marker_is_an_error() {
        let md = "text\n\n<!-- example: scenario -->\n```toml\na = 1\n```\n\n```sh\nls\n```\n\
                  <!-- example: sh; serve --scenario x; replace \"-n 9\" \"-n 1\"; exit 1 -->\n\n```sh\nls\n```\n\
                  <!-- example: not-run; needs a terminal; really -->\n```\nx\n```\n\
                  <!-- example: sh -->\n```toml\nx\n```\n<!-- example: sh; color red -->\n```sh\n```\n";
        let b = parse_blocks(md);
        assert_eq!(b.len(), 6);
        assert_eq!(b[0].line, 4);
        assert_eq!(b[0].text, "a = 1\n");
        assert_eq!(b[0].marker.as_ref().unwrap().kind, Kind::Scenario);
        assert!(
            b[1].marker
                .as_ref()
                .unwrap_err()
                .contains("no `<!-- example")
        );
        let m = b[2].marker.as_ref().unwrap();
        assert_eq!(m.get("serve"), Some("--scenario x"));
        assert_eq!(
            quoted(m.get("replace").unwrap()).unwrap(),
            vec!["-n 9", "-n 1"]
        );
        assert_eq!(m.exit(), Ok(1));
        assert_eq!(
            b[3].marker.as_ref().unwrap().options[0].1,
            "needs a terminal; really"
        );
        assert!(b[4].marker.as_ref().unwrap_err().contains("```toml"));
        assert!(
            b[5].marker
                .as_ref()
                .unwrap_err()
                .contains("no option `color`")
        );
        assert!(parse_marker("<!-- example: not-run -->").is_err());
        assert!(parse_marker("<!-- example: frobnicate -->").is_err());
    }

    #[test]
    fn shape_matching_lets_measurements_vary_but_not_counts() {
        let shown = "patente.test  2/25 delivered, 23 missing\n  user01@x  delivered   0.01 s\n  ...\n\
                     16:43:07.927  route  <mrp…-5@probe.invalid> -> user03@x\n";
        let real = "header\npatente.test  2/25 delivered, 23 missing\n  user01@x    delivered   0.12 s\n\
                    more\n21:43:26.224  route   <mrp0549f9-5@probe.invalid> -> user03@x\n";
        assert_eq!(shape_mismatch(shown, real), None);
        let wrong = real.replace("2/25", "3/25");
        assert_eq!(
            shape_mismatch(shown, &wrong).as_deref(),
            Some("patente.test  2/25 delivered, 23 missing")
        );
        assert!(shape_mismatch(shown, &real.replace("-5@", "-6@")).is_some());
        assert!(!token_matches("0.01", "12"));
        assert!(token_matches("0.01", "12.5"));
        // order matters
        let swapped =
            "  user01@x    delivered   0.12 s\npatente.test  2/25 delivered, 23 missing\n";
        assert!(shape_mismatch(shown, swapped).is_some());
    }

    #[test]
    fn last_command_and_serve_lines() {
        let s = "# c\na \\\n  b\n\nc \\\n  d \\\n  e\n# end\n";
        assert_eq!(last_command_lines(s), Some((5, 7)));
        assert_eq!(
            serve_line_args("mailrig serve --scenario x.toml &"),
            Some(vec!["--scenario".into(), "x.toml".into()])
        );
        assert_eq!(serve_line_args("mailrig serve"), Some(vec![]));
        assert_eq!(serve_line_args("mailrig server"), None);
        assert_eq!(serve_line_args("mailrig probe --target x"), None);
    }
}
