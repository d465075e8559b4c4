//! The life of a lab directory: build it from a lab's templates and start its services, restart
//! what the trainee's edits touch, reset it to the broken start, lay the reference fix over it, and
//! stop it so that no process and no listening port is left.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use super::render::{self, Vars};
use super::services::{self, Launch};
use super::source::LabSource;
use super::state::{self, LabState};

/// The placeholders of a running lab.
pub fn vars(state: &LabState) -> Vars {
    Vars {
        dir: state.dir.display().to_string(),
        run: state.run_dir.display().to_string(),
        id: render::short_id(&state.dir.display().to_string()),
        mailrig: std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "mailrig".into()),
        ports: state.ports.clone(),
    }
}

/// Builds the broken environment in `dir` and starts it.
pub fn start(source: &LabSource, dir: &Path, port_base: Option<u16>) -> anyhow::Result<LabState> {
    if let Ok(old) = LabState::load(dir)
        && old.running
    {
        bail!(
            "a lab ({}) is already running in {}: `mailrig lab stop --dir {}` first",
            old.lab,
            dir.display(),
            dir.display()
        );
    }
    if dir.exists() && !LabState::path(dir).is_file() {
        let empty = std::fs::read_dir(dir)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty {
            bail!(
                "{} exists and is not a lab directory: choose another --dir",
                dir.display()
            );
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = state::absolute(dir);
    if source.drops_root() {
        check_traversable(&dir)?;
    }
    let offsets: Vec<(String, u16)> = source
        .spec
        .ports
        .iter()
        .map(|(k, v)| (k.clone(), *v.get_ref()))
        .collect();
    let base = match port_base {
        Some(b) => {
            let ports: BTreeMap<String, u16> = offsets
                .iter()
                .map(|(k, o)| {
                    Ok((
                        k.clone(),
                        b.checked_add(*o).context("--port-base too high")?,
                    ))
                })
                .collect::<anyhow::Result<_>>()?;
            if let Some(taken) = services::first_taken(ports.values().copied()) {
                let name = ports
                    .iter()
                    .find(|(_, p)| **p == taken)
                    .map_or("", |(n, _)| n.as_str());
                bail!(
                    "port {taken} ({name}, --port-base {b} + {}) on 127.0.0.1 is in use: choose another --port-base (this lab uses {} to {})",
                    taken - b,
                    b + offsets.iter().map(|o| o.1).min().unwrap_or(0),
                    b + offsets.iter().map(|o| o.1).max().unwrap_or(0)
                );
            }
            b
        }
        None => services::choose_base(&offsets.iter().map(|o| o.1).collect::<Vec<_>>())
            .context("no free range of ports from 20000 up: give --port-base")?,
    };
    let mut st = LabState {
        schema: state::SCHEMA.into(),
        lab: source.name.clone(),
        source: source.origin.clone(),
        run_dir: PathBuf::from(format!(
            "/tmp/mailrig-lab-{}",
            render::short_id(&dir.display().to_string())
        )),
        dir,
        port_base: base,
        ports: offsets.into_iter().map(|(k, o)| (k, base + o)).collect(),
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        hints_used: 0,
        running: false,
        revealed: false,
        services: Vec::new(),
        answer: None,
        solved: None,
    };
    build(source, &mut st)?;
    Ok(st)
}

/// Writes the broken start into the directory, runs the setup and starts every service.
fn build(source: &LabSource, st: &mut LabState) -> anyhow::Result<()> {
    std::fs::set_permissions(&st.dir, std::fs::Permissions::from_mode(0o755))?;
    std::fs::create_dir_all(&st.run_dir)?;
    std::fs::set_permissions(&st.run_dir, std::fs::Permissions::from_mode(0o755))?;
    let vars = vars(st);
    write_set(source, "files", &source.files, &st.dir, &vars)?;
    std::fs::create_dir_all(st.dir.join("logs"))?;
    for argv in &source.spec.setup {
        let argv: Vec<String> = argv
            .iter()
            .map(|a| source.render_str("setup command", a, &vars))
            .collect::<Result<_, _>>()?;
        let Some((cmd, args)) = argv.split_first() else {
            continue;
        };
        let out = Command::new(cmd)
            .args(args)
            .current_dir(&st.dir)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("setup: cannot run {cmd}"))?;
        if !out.status.success() {
            bail!(
                "setup command failed ({}): {}\n{}",
                out.status,
                argv.join(" "),
                String::from_utf8_lossy(&out.stderr).trim_end()
            );
        }
    }
    st.running = true;
    st.save()?;
    for spec in &source.spec.service {
        match launch(source, st, spec.get_ref()).and_then(|l| services::start(&st.dir, &l)) {
            Ok(s) => {
                st.services.push(s);
                st.save()?;
            }
            Err(e) => {
                stop(st);
                return Err(e);
            }
        }
    }
    st.save()
}

fn write_set(
    source: &LabSource,
    sub: &str,
    set: &BTreeMap<String, Vec<u8>>,
    dir: &Path,
    vars: &Vars,
) -> anyhow::Result<()> {
    for (rel, bytes) in set {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let data = source.render_file(sub, rel, bytes, vars)?;
        std::fs::write(&path, data).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn launch(
    source: &LabSource,
    st: &LabState,
    spec: &super::spec::ServiceSpec,
) -> anyhow::Result<Launch> {
    let vars = vars(st);
    let argv = spec
        .run
        .iter()
        .map(|a| source.render_str("service command", a, &vars))
        .collect::<Result<Vec<_>, _>>()?;
    let env = spec
        .env
        .iter()
        .map(|(k, v)| Ok((k.clone(), source.render_str("service env", v, &vars)?)))
        .collect::<anyhow::Result<_>>()?;
    let ready = spec
        .ready
        .iter()
        .filter_map(|p| st.ports.get(p.get_ref()).copied())
        .collect();
    let pidfile = match &spec.pidfile {
        Some(p) => Some(PathBuf::from(source.render_str(
            "service pidfile",
            p,
            &vars,
        )?)),
        None => None,
    };
    Ok(Launch {
        pidfile,
        name: spec.name.clone(),
        argv,
        env,
        ready,
        watched: hashes(&st.dir, &spec.restart_when_changed),
    })
}

fn hashes(dir: &Path, files: &[String]) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|f| {
            let mut h = DefaultHasher::new();
            std::fs::read(dir.join(f)).ok().hash(&mut h);
            (f.clone(), format!("{:016x}", h.finish()))
        })
        .collect()
}

/// Restarts every service whose watched files changed, or that died. Returns what was restarted;
/// a service that cannot start again is an error naming it, with its log's tail.
pub fn refresh(source: &LabSource, st: &mut LabState) -> anyhow::Result<Vec<String>> {
    let mut restarted = Vec::new();
    for spec in &source.spec.service {
        let spec = spec.get_ref();
        let Some(i) = st.services.iter().position(|s| s.name == spec.name) else {
            continue;
        };
        let now = hashes(&st.dir, &spec.restart_when_changed);
        let old = &st.services[i];
        if now == old.watched && services::alive(old) {
            continue;
        }
        services::stop(old);
        let l = launch(source, st, spec)?;
        match services::start(&st.dir, &l) {
            Ok(s) => {
                st.services[i] = s;
                st.save()?;
                restarted.push(spec.name.clone());
            }
            Err(e) => {
                // Remember the files so the next check tries again only after another edit.
                st.services[i].watched = now;
                st.services[i].start_ticks = u64::MAX;
                st.save()?;
                return Err(e.context(format!(
                    "service '{}' does not start with the current files",
                    spec.name
                )));
            }
        }
    }
    Ok(restarted)
}

/// True when every service recorded runs (a lab whose service cannot start is still running: the
/// trainee fixes the file).
pub fn is_running(st: &LabState) -> bool {
    st.running
}

/// Stops every service (last started first), removes the socket directory and marks the state.
/// Returns the ports still taken afterwards (none, normally).
pub fn stop(st: &mut LabState) -> Vec<u16> {
    for s in st.services.iter().rev() {
        services::stop(s);
    }
    st.services.clear();
    st.running = false;
    let _ = std::fs::remove_dir_all(&st.run_dir);
    let _ = st.save();
    services::wait_ports_free(&st.ports.values().copied().collect::<Vec<_>>())
}

/// Back to the broken start: stops everything, empties the directory (keeping the state), writes
/// the templates again and starts. Hints used and the start time are kept; the answer and a solved
/// mark are cleared.
pub fn reset(source: &LabSource, st: &mut LabState) -> anyhow::Result<()> {
    let taken = stop(st);
    if !taken.is_empty() {
        bail!("ports still taken after stopping: {taken:?}");
    }
    for entry in std::fs::read_dir(&st.dir)? {
        let p = entry?.path();
        if p.file_name().is_some_and(|n| n == state::STATE_DIR) {
            continue;
        }
        if p.is_dir() {
            std::fs::remove_dir_all(&p)?;
        } else {
            std::fs::remove_file(&p)?;
        }
    }
    st.answer = None;
    st.solved = None;
    build(source, st)
}

/// Lays the reference fix over the directory (fix-it labs) or gives the reference answer (find-it
/// labs), and marks the lab as revealed: its score is 0 from now on.
pub fn apply_fix(source: &LabSource, st: &mut LabState) -> anyhow::Result<()> {
    let vars = vars(st);
    write_set(source, "fix", &source.fix, &st.dir, &vars)?;
    if let Some(sol) = &source.spec.solution {
        let (outcome, boxes) = sol.get_ref().answer();
        st.answer = Some(super::state::Answer {
            mailboxes: boxes
                .iter()
                .flat_map(|b| mailrig_core::range::expand(b).unwrap_or_default())
                .collect(),
            outcome,
            stage: Some(sol.get_ref().stage.clone()),
        });
    }
    st.revealed = true;
    st.save()
}

/// Postfix and Dovecot drop root: every parent of the lab directory must be searchable by others.
fn check_traversable(dir: &Path) -> anyhow::Result<()> {
    for parent in dir.ancestors().skip(1) {
        if parent == Path::new("/") {
            break;
        }
        let mode = std::fs::metadata(parent)?.permissions().mode();
        if mode & 0o001 == 0 {
            bail!(
                "{} is not searchable by other users (mode {:o}); the lab's servers drop root, so put the lab directory under a world-searchable one (chmod o+x {}, or --dir /tmp/...)",
                parent.display(),
                mode & 0o777,
                parent.display()
            );
        }
    }
    Ok(())
}
