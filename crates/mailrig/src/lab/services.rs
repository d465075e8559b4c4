//! The lab's processes: started each in its own process group with its output in
//! `DIR/logs/NAME.log`, waited for until their ports answer, and stopped by group, so nothing a
//! service forked (Dovecot's children) outlives `lab stop`.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::state::ServiceState;

/// How long a service may take until its ports answer.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// A service without ports must still run after this long to count as started.
const SETTLE: Duration = Duration::from_millis(300);

/// A service to start: rendered command, environment and ports.
pub struct Launch {
    pub name: String,
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub ready: Vec<u16>,
    pub watched: BTreeMap<String, String>,
    pub pidfile: Option<std::path::PathBuf>,
}

/// The first port of `ports` that cannot be bound on 127.0.0.1, if any.
pub fn first_taken(ports: impl IntoIterator<Item = u16>) -> Option<u16> {
    ports
        .into_iter()
        .find(|p| TcpListener::bind((Ipv4Addr::LOCALHOST, *p)).is_err())
}

/// A port base (from 20000 in steps of 100) where every offset is free.
pub fn choose_base(offsets: &[u16]) -> Option<u16> {
    let top = offsets.iter().copied().max().unwrap_or(0);
    (20000u16..=60000u16.saturating_sub(top))
        .step_by(100)
        .find(|base| first_taken(offsets.iter().map(|o| base + o)).is_none())
}

/// Starts one service and waits until its ports accept connections.
pub fn start(dir: &Path, launch: &Launch) -> anyhow::Result<ServiceState> {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let log_path = logs.join(format!("{}.log", launch.name));
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let mut cmd = Command::new(&launch.argv[0]);
    cmd.args(&launch.argv[1..])
        .envs(&launch.env)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| {
        anyhow::anyhow!(
            "service '{}': cannot run {}: {e}{}",
            launch.name,
            launch.argv[0],
            if e.kind() == std::io::ErrorKind::NotFound {
                " (install the test dependencies: scripts/install-test-deps.sh)"
            } else {
                ""
            }
        )
    })?;
    let pid = child.id();
    let started = Instant::now();
    let result = wait_ready(&mut child, launch, started);
    if let Err(e) = result {
        kill_group(pid);
        if let Some(daemon) = launch.pidfile.as_deref().and_then(daemon_pid) {
            kill_group(daemon);
        }
        let _ = child.wait();
        bail!(
            "{e}\n--- {} (last lines) ---\n{}",
            log_path.display(),
            tail(&log_path, 15)
        );
    }
    Ok(ServiceState {
        name: launch.name.clone(),
        pid,
        start_ticks: start_ticks(pid).unwrap_or(0),
        watched: launch.watched.clone(),
        pidfile: launch.pidfile.clone(),
    })
}

fn wait_ready(child: &mut Child, launch: &Launch, started: Instant) -> anyhow::Result<()> {
    let mut waiting: Vec<u16> = launch.ready.clone();
    loop {
        if let Some(status) = child.try_wait()?
            && launch.pidfile.as_deref().and_then(daemon_pid).is_none()
        {
            bail!("service '{}' exited at start ({status})", launch.name);
        }
        waiting.retain(|p| {
            TcpStream::connect_timeout(
                &SocketAddr::from((Ipv4Addr::LOCALHOST, *p)),
                Duration::from_millis(200),
            )
            .is_err()
        });
        if waiting.is_empty() && (!launch.ready.is_empty() || started.elapsed() >= SETTLE) {
            return Ok(());
        }
        if started.elapsed() > READY_TIMEOUT {
            bail!(
                "service '{}' did not answer on 127.0.0.1 port {} within {}s",
                launch.name,
                waiting
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                READY_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Whether the process recorded in `s` still runs (and is not a zombie, nor another process that
/// got its pid).
pub fn alive(s: &ServiceState) -> bool {
    let leader = match proc_stat(s.pid) {
        Some((state, ticks)) => state != 'Z' && (s.start_ticks == 0 || ticks == s.start_ticks),
        None => false,
    };
    leader || s.pidfile.as_deref().and_then(daemon_pid).is_some()
}

/// The live process named in a daemon's pid file.
fn daemon_pid(path: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
    proc_stat(pid)
        .filter(|(state, _)| *state != 'Z')
        .map(|_| pid)
}

/// Stops a service's whole process group: SIGTERM, up to 5 s, then SIGKILL.
pub fn stop(s: &ServiceState) {
    if let Some(daemon) = s.pidfile.as_deref().and_then(daemon_pid) {
        // Its own session leader: the group id is its pid.
        terminate_group(daemon);
    }
    if !alive(s) {
        // The leader is gone; children of its group may live on.
        if group_exists(s.pid) && s.start_ticks != 0 {
            kill_group(s.pid);
        }
        return;
    }
    terminate_group(s.pid);
}

fn terminate_group(pgid: u32) {
    signal_group(pgid, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while group_exists(pgid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if group_exists(pgid) {
        kill_group(pgid);
    }
}

fn kill_group(pgid: u32) {
    signal_group(pgid, libc::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(2);
    while group_exists(pgid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal_group(pgid: u32, sig: libc::c_int) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    if pgid > 1 {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

/// True while any process (not a zombie) is in group `pgid`.
fn group_exists(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            return false;
        };
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| parse_stat(&s))
            .is_some_and(|st| st.pgrp == pgid && st.state != 'Z')
    })
}

struct Stat {
    state: char,
    pgrp: u32,
    start_ticks: u64,
}

/// `/proc/PID/stat`: the command may contain spaces and parentheses, so fields are counted from the
/// last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: f.first()?.chars().next()?,
        pgrp: f.get(2)?.parse().ok()?,
        start_ticks: f.get(19)?.parse().ok()?,
    })
}

fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let s = parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
    Some((s.state, s.start_ticks))
}

fn start_ticks(pid: u32) -> Option<u64> {
    proc_stat(pid).map(|s| s.1)
}

/// The last `n` lines of a log file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Waits (up to 5 s) until every port can be bound again; returns those still taken.
pub fn wait_ports_free(ports: &[u16]) -> Vec<u16> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let taken: Vec<u16> = ports
            .iter()
            .copied()
            .filter(|p| first_taken([*p]).is_some())
            .collect();
        if taken.is_empty() || Instant::now() > deadline {
            return taken;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let line = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.pgrp, 4242);
        assert_eq!(s.start_ticks, 987654);
    }

    #[test]
    fn a_bound_port_is_taken_and_a_base_avoids_it() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        assert_eq!(first_taken([port]), Some(port));
        drop(l);
    }

    #[test]
    fn a_started_group_is_stopped_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let launch = Launch {
            name: "sleeper".into(),
            argv: vec!["sh".into(), "-c".into(), "sleep 30 & sleep 30".into()],
            env: BTreeMap::new(),
            ready: vec![],
            watched: BTreeMap::new(),
            pidfile: None,
        };
        let s = start(dir.path(), &launch).unwrap();
        assert!(alive(&s));
        assert!(group_exists(s.pid));
        stop(&s);
        assert!(!group_exists(s.pid), "a child of the group survived");
        assert!(!alive(&s));
    }
}
