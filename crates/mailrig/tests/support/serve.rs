//! Starting `mailrig serve` as a user does, on free ports (`127.0.0.1:0`),
//! reading the addresses it got from its banner, and stopping it with
//! SIGTERM; optionally under a wrapper program (strace).

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use super::BIN;

/// A running `mailrig serve`.
pub struct Serve {
    child: Child,
    out: BufReader<ChildStdout>,
    pub banner: String,
    pub smtp: SocketAddr,
    pub imap: SocketAddr,
    pub http: SocketAddr,
    ca: std::path::PathBuf,
    wrapped: bool,
    _dir: tempfile::TempDir,
}

fn addr(banner: &str, name: &str) -> SocketAddr {
    banner
        .lines()
        .find_map(|l| l.trim().strip_prefix(name))
        .map(|rest| rest.trim().trim_start_matches("http://"))
        .and_then(|rest| rest.split(['/', ' ']).next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no {name} address in the banner:\n{banner}"))
}

impl Serve {
    /// `wrapper` (e.g. `["strace", "-f", ...]`) runs the binary; `args` follow `serve`.
    pub fn start(wrapper: &[&str], args: &[&str]) -> Serve {
        Serve::start_env(wrapper, args, &[])
    }

    /// As [`Serve::start`], with environment variables set for the server
    /// (`MAILRIG_HTTP_TOKEN` is unset unless given here, so the user's
    /// environment never changes what a test sees).
    pub fn start_env(wrapper: &[&str], args: &[&str], env: &[(&str, &str)]) -> Serve {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = dir.path().join("ca.pem");
        let mut cmd = match wrapper.split_first() {
            Some((prog, rest)) => {
                let mut c = Command::new(prog);
                c.args(rest).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        // One flag moves every listener to a free loopback port.
        cmd.args(["serve", "--listen", "127.0.0.1:0"]);
        cmd.arg("--ca-out").arg(&ca).args(args);
        cmd.env_remove("MAILRIG_HTTP_TOKEN")
            .env("MAILRIG_LOG", "error")
            .envs(env.iter().copied());
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {:?} ({e}); scripts/install-test-deps.sh installs what the tests need",
                    wrapper.first().unwrap_or(&BIN)
                )
            });
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut banner = String::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            banner.push_str(&line);
            if line.contains("Press Ctrl-C") {
                break;
            }
        }
        let (smtp, imap, http) = (
            addr(&banner, "SMTP "),
            addr(&banner, "IMAP "),
            addr(&banner, "HTTP "),
        );
        Serve {
            child,
            out,
            banner,
            smtp,
            imap,
            http,
            ca,
            wrapped: !wrapper.is_empty(),
            _dir: dir,
        }
    }

    /// `http://ADDR{path}` of the control API.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// The body of `GET {path}` on the control API (HTTP/1.0 over a plain
    /// socket, so no HTTP client is needed); panics unless the status is 200.
    pub fn get(&self, path: &str) -> String {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(self.http).expect("connect to HTTP");
        write!(s, "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.http).expect("send");
        let mut all = String::new();
        s.read_to_string(&mut all).expect("read the HTTP answer");
        let (head, body) = all.split_once("\r\n\r\n").unwrap_or((&all, ""));
        assert!(
            head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
            "GET {path}: {head}"
        );
        body.to_string()
    }

    /// Where the server wrote its CA certificate.
    pub fn ca(&self) -> &std::path::Path {
        &self.ca
    }

    /// The process id of the server (of the wrapper, when there is one).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits (15 s at most) for a clean exit; returns the rest of stdout.
    pub fn stop(mut self) -> String {
        // Under a wrapper (strace) the server is the wrapper's child.
        let pid = self.child.id();
        let target = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .ok()
            .and_then(|c| c.split_whitespace().next().map(str::to_string))
            .filter(|_| self.wrapped)
            .unwrap_or_else(|| pid.to_string());
        let _ = Command::new("kill").args(["-TERM", &target]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("mailrig serve did not stop within 15 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut rest = String::new();
        let _ = self.out.read_to_string(&mut rest);
        assert!(
            status.success(),
            "mailrig serve exited with {status:?}\n{rest}"
        );
        rest
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One SMTP transaction over a plain socket; panics unless every reply is as expected.
pub fn send_smtp(addr: SocketAddr, to: &str) {
    use std::io::Write;
    let s = std::net::TcpStream::connect(addr).expect("connect to SMTP");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    let expect = |code: &str, r: &mut BufReader<std::net::TcpStream>| loop {
        let mut line = String::new();
        r.read_line(&mut line).expect("SMTP reply");
        assert!(line.starts_with(code), "expected {code}, got {line:?}");
        if line.as_bytes().get(3) != Some(&b'-') {
            break;
        }
    };
    expect("220", &mut r);
    for (cmd, code) in [
        ("EHLO t.test".to_string(), "250"),
        ("MAIL FROM:<s@x.test>".to_string(), "250"),
        (format!("RCPT TO:<{to}>"), "250"),
        ("DATA".to_string(), "354"),
        ("Subject: t\r\n\r\nhello\r\n.".to_string(), "250"),
        ("QUIT".to_string(), "221"),
    ] {
        w.write_all(format!("{cmd}\r\n").as_bytes()).unwrap();
        expect(code, &mut r);
    }
}
