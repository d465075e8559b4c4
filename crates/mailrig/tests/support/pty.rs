//! Running `mailrig` under a pseudo-terminal (as a person at a terminal
//! meets it) and starting Postfix's `smtp-sink` on a free loopback port.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::BIN;

/// Drives a command under a pseudo-terminal with Python's `pty` module: stdin, stdout and stderr are all
/// the terminal, so `is_terminal()` is true for each. Arguments: the time limit in seconds, a text to wait
/// for ("" for none), what to do when it appears ("" nothing, "keys:..." types those bytes, e.g. Ctrl-C,
/// "signal:NAME" sends that signal), then the command. Writes everything the terminal showed to stdout
/// and exits with the command's exit code (128 + N for signal N, 124 after the time limit).
const PTY_DRIVER: &str = r#"
import os, pty, select, signal, sys, time
limit, wait, action, cmd = float(sys.argv[1]), sys.argv[2].encode(), sys.argv[3], sys.argv[4:]
pid, fd = pty.fork()
if pid == 0:
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
out, done, deadline, timed_out = b"", False, time.time() + limit, False
while True:
    if time.time() > deadline:
        os.kill(pid, signal.SIGKILL)
        timed_out = True
    r, _, _ = select.select([fd], [], [], 0.1)
    if r:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if not data:
            break
        out += data
    if wait and not done and wait in out:
        done = True
        if action.startswith("keys:"):
            os.write(fd, action[5:].encode().decode("unicode_escape").encode())
        elif action.startswith("signal:"):
            os.kill(pid, getattr(signal, action[7:]))
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
sys.stdout.flush()
code = os.waitstatus_to_exitcode(status)
sys.exit(124 if timed_out else (128 - code if code < 0 else code))
"#;

/// What a command showed on its terminal and how it ended.
#[derive(Debug)]
pub struct PtyRun {
    /// The exit code (128 + N after signal N, 124 when the time limit killed it).
    pub code: i32,
    /// Everything written to the terminal (stdout and stderr interleaved, `\r\n` line ends).
    pub screen: String,
}

impl PtyRun {
    /// The screen with `\r` and ANSI escape sequences (colours, line clearing) removed.
    pub fn text(&self) -> String {
        strip_ansi(&self.screen).replace('\r', "")
    }
}

/// Removes ANSI CSI sequences (`ESC [ ... letter`).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// A run of `mailrig ARGS` under a pseudo-terminal.
pub struct Pty {
    args: Vec<String>,
    env: Vec<(String, String)>,
    limit: Duration,
    wait_for: String,
    action: String,
}

impl Pty {
    pub fn mailrig<S: AsRef<str>>(args: &[S]) -> Pty {
        Pty {
            args: args.iter().map(|a| a.as_ref().to_string()).collect(),
            env: Vec::new(),
            limit: Duration::from_secs(60),
            wait_for: String::new(),
            action: String::new(),
        }
    }

    pub fn env(mut self, key: &str, value: &str) -> Pty {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn limit(mut self, limit: Duration) -> Pty {
        self.limit = limit;
        self
    }

    /// Once `text` has appeared on the terminal, types `keys` (e.g. "\\x03" for Ctrl-C).
    pub fn type_after(mut self, text: &str, keys: &str) -> Pty {
        self.wait_for = text.into();
        self.action = format!("keys:{keys}");
        self
    }

    /// Once `text` has appeared on the terminal, sends the signal (e.g. "SIGTERM").
    pub fn signal_after(mut self, text: &str, signal: &str) -> Pty {
        self.wait_for = text.into();
        self.action = format!("signal:{signal}");
        self
    }

    pub fn run(self) -> PtyRun {
        let mut cmd = Command::new("python3");
        cmd.arg("-c")
            .arg(PTY_DRIVER)
            .arg(format!("{}", self.limit.as_secs_f64()))
            .arg(&self.wait_for)
            .arg(&self.action)
            .arg(BIN)
            .args(&self.args)
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap_or_else(|e| {
            panic!(
                "cannot run python3 for the pseudo-terminal ({e}): run scripts/install-test-deps.sh"
            )
        });
        let code = out.status.code().unwrap_or(-1);
        if code == 124 {
            panic!(
                "mailrig {:?} did not finish within {:?} under a pseudo-terminal; it showed:\n{}",
                self.args,
                self.limit,
                String::from_utf8_lossy(&out.stdout)
            );
        }
        assert!(
            out.stderr.is_empty(),
            "the pty driver failed (exit {code}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PtyRun {
            code,
            screen: String::from_utf8_lossy(&out.stdout).into_owned(),
        }
    }
}

/// Postfix's `smtp-sink` on a free loopback port, killed on drop.
pub struct SmtpSink {
    child: Child,
    pub addr: SocketAddr,
}

impl SmtpSink {
    /// Starts `smtp-sink` on a port picked by binding port 0 and releasing it; retried when another
    /// process takes the port in between.
    pub fn start() -> SmtpSink {
        let bin = ["/usr/sbin/smtp-sink", "/usr/bin/smtp-sink"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or_else(|| {
                panic!("smtp-sink (Postfix) is not installed: run scripts/install-test-deps.sh")
            });
        for _attempt in 0..10 {
            let addr = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free loopback port");
            let mut cmd = Command::new(bin);
            // smtp-sink refuses to run as root without a user to drop to.
            #[cfg(unix)]
            if is_root() {
                cmd.args(["-u", "nobody"]);
            }
            let mut child = cmd
                .arg(addr.to_string())
                .arg("256")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start smtp-sink");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // the port was taken: try another
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return SmtpSink { child, addr };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("smtp-sink did not start listening on any of 10 free ports");
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(unix)]
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A port that was free a moment ago (bind port 0, release it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
